-- Organization tokens from the authorization code flow (`organization` on /oauth2/authorize):
-- the code and the grant session it creates remember the organization, so refreshes stay
-- organization tokens. Deleting the organization ends those grants rather than widening them.
ALTER TABLE authorization_codes ADD COLUMN organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE;
ALTER TABLE sessions ADD COLUMN organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE;

-- The ID-token algorithm an application asks for: '' (the deployment's) or 'RS256'.
ALTER TABLE applications ADD COLUMN id_token_signing_alg text NOT NULL DEFAULT ''
    CHECK (id_token_signing_alg IN ('', 'RS256'));

-- An organization always has an owner: a user who owns one cannot be deleted until the ownership
-- is transferred or the organization deleted.
ALTER TABLE organizations ADD CONSTRAINT organizations_owner_fk
    FOREIGN KEY (owner_user_id) REFERENCES users (id) ON DELETE RESTRICT;
-- Organization groups and grants to organizations or their roles go with the organization.
ALTER TABLE user_groups ADD CONSTRAINT user_groups_organization_fk
    FOREIGN KEY (organization_id) REFERENCES organizations (id) ON DELETE CASCADE;
ALTER TABLE permission_grants ADD CONSTRAINT permission_grants_organization_fk
    FOREIGN KEY (organization_id) REFERENCES organizations (id) ON DELETE CASCADE;
ALTER TABLE permission_grants ADD CONSTRAINT permission_grants_org_role_fk
    FOREIGN KEY (org_role_id) REFERENCES org_roles (id) ON DELETE CASCADE;

-- Decisions read memberships and organization roles (grants to organizations and their roles):
-- changing them drops the cached decisions like every other input.
CREATE TRIGGER org_members_changed AFTER INSERT OR UPDATE OR DELETE ON org_members
    FOR EACH STATEMENT EXECUTE FUNCTION mgpass_access_changed();
CREATE TRIGGER org_roles_changed AFTER UPDATE OR DELETE ON org_roles
    FOR EACH STATEMENT EXECUTE FUNCTION mgpass_access_changed();

-- Leaving an organization (or being removed) also leaves its groups.
CREATE FUNCTION org_member_left() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM user_group_members m USING user_groups g
     WHERE m.group_id = g.id AND g.organization_id = OLD.organization_id AND m.user_id = OLD.user_id;
    RETURN NULL;
END $$;
CREATE TRIGGER org_member_left AFTER DELETE ON org_members
    FOR EACH ROW EXECUTE FUNCTION org_member_left();
