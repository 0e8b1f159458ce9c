DROP TRIGGER org_roles_changed ON org_roles;
DROP TRIGGER org_members_changed ON org_members;
ALTER TABLE permission_grants DROP CONSTRAINT permission_grants_org_role_fk;
ALTER TABLE permission_grants DROP CONSTRAINT permission_grants_organization_fk;
ALTER TABLE user_groups DROP CONSTRAINT user_groups_organization_fk;
ALTER TABLE organizations DROP CONSTRAINT organizations_owner_fk;
ALTER TABLE applications DROP COLUMN id_token_signing_alg;
ALTER TABLE sessions DROP COLUMN organization_id;
ALTER TABLE authorization_codes DROP COLUMN organization_id;
