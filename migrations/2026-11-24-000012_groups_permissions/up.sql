-- User groups, the backends' permissions, grants of them, attribute-based rules, and the
-- notification that tells every instance to drop its cached decisions.

-- `organization_id` names an organization for organization groups (NULL: a global group). The
-- organizations table arrives with the organizations work; its foreign key is added there.
CREATE TABLE user_groups (
    id              uuid PRIMARY KEY,
    organization_id uuid,
    name            text NOT NULL,
    description     text NOT NULL DEFAULT '',
    avatar_url      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- Names are unique per scope, case-insensitively, so concurrent creates of one name make one group.
CREATE UNIQUE INDEX user_groups_global_name_key ON user_groups (lower(name)) WHERE organization_id IS NULL;
CREATE UNIQUE INDEX user_groups_org_name_key ON user_groups (organization_id, lower(name))
    WHERE organization_id IS NOT NULL;

CREATE TABLE user_group_members (
    group_id      uuid NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    adder_user_id uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX user_group_members_user_idx ON user_group_members (user_id);
CREATE INDEX user_group_members_created_idx ON user_group_members (group_id, created_at DESC, user_id DESC);

CREATE TABLE permission_groups (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX permission_groups_name_key ON permission_groups (lower(name));

-- One row per permission; `full_name` is `<group>.<permission>`. Grants reference the row, so a
-- permission removed from its group takes its grants with it.
CREATE TABLE permissions (
    id          uuid PRIMARY KEY,
    group_id    uuid NOT NULL REFERENCES permission_groups (id) ON DELETE CASCADE,
    name        text NOT NULL,
    full_name   text NOT NULL UNIQUE,
    description text NOT NULL DEFAULT '',
    position    integer NOT NULL
);
CREATE UNIQUE INDEX permissions_group_name_key ON permissions (group_id, lower(name));

-- Exactly one grantee column is set. Roles, users and groups cascade; organizations and their
-- roles get their foreign keys with the organizations work. An empty object type means every object.
CREATE TABLE permission_grants (
    id              uuid PRIMARY KEY,
    permission_id   uuid NOT NULL REFERENCES permissions (id) ON DELETE CASCADE,
    role_id         uuid REFERENCES roles (id) ON DELETE CASCADE,
    org_role_id     uuid,
    user_id         uuid REFERENCES users (id) ON DELETE CASCADE,
    group_id        uuid REFERENCES user_groups (id) ON DELETE CASCADE,
    organization_id uuid,
    object_type     text NOT NULL DEFAULT '',
    object_id       text NOT NULL DEFAULT '',
    creator_user_id uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (num_nonnulls(role_id, org_role_id, user_id, group_id, organization_id) = 1),
    CHECK ((object_type = '') = (object_id = ''))
);
-- Granting what is granted returns the existing grant: one row per (permission, grantee, object).
CREATE UNIQUE INDEX permission_grants_key ON permission_grants
    (permission_id, COALESCE(role_id, org_role_id, user_id, group_id, organization_id), object_type, object_id);
CREATE INDEX permission_grants_created_idx ON permission_grants (created_at DESC, id DESC);
CREATE INDEX permission_grants_user_idx ON permission_grants (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX permission_grants_group_idx ON permission_grants (group_id) WHERE group_id IS NOT NULL;
CREATE INDEX permission_grants_role_idx ON permission_grants (role_id) WHERE role_id IS NOT NULL;

CREATE TABLE abac_rules (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    object_type text NOT NULL,
    condition   text NOT NULL,
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX abac_rules_name_key ON abac_rules (lower(name));

CREATE TABLE abac_rule_permissions (
    rule_id       uuid NOT NULL REFERENCES abac_rules (id) ON DELETE CASCADE,
    permission_id uuid NOT NULL REFERENCES permissions (id) ON DELETE CASCADE,
    PRIMARY KEY (rule_id, permission_id)
);

-- Every change that can change a decision notifies `mgpass_access` at commit, whoever makes it
-- (the services here, role assignment, user updates, cascades): each instance listens and drops
-- its cached decisions. Statement-level, so a bulk change notifies once.
CREATE FUNCTION mgpass_access_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mgpass_access', '');
    RETURN NULL;
END $$;

CREATE TRIGGER user_group_members_changed AFTER INSERT OR UPDATE OR DELETE ON user_group_members
    FOR EACH STATEMENT EXECUTE FUNCTION mgpass_access_changed();
CREATE TRIGGER user_groups_changed AFTER UPDATE OR DELETE ON user_groups
    FOR EACH STATEMENT EXECUTE FUNCTION mgpass_access_changed();
CREATE TRIGGER permissions_changed AFTER INSERT OR UPDATE OR DELETE ON permissions
    FOR EACH STATEMENT EXECUTE FUNCTION mgpass_access_changed();
CREATE TRIGGER permission_grants_changed AFTER INSERT OR UPDATE OR DELETE ON permission_grants
    FOR EACH STATEMENT EXECUTE FUNCTION mgpass_access_changed();
CREATE TRIGGER abac_rules_changed AFTER INSERT OR UPDATE OR DELETE ON abac_rules
    FOR EACH STATEMENT EXECUTE FUNCTION mgpass_access_changed();
CREATE TRIGGER abac_rule_permissions_changed AFTER INSERT OR UPDATE OR DELETE ON abac_rule_permissions
    FOR EACH STATEMENT EXECUTE FUNCTION mgpass_access_changed();
CREATE TRIGGER users_roles_changed AFTER UPDATE OF roles OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION mgpass_access_changed();
CREATE TRIGGER roles_changed AFTER UPDATE OR DELETE ON roles
    FOR EACH STATEMENT EXECUTE FUNCTION mgpass_access_changed();
CREATE TRIGGER application_roles_changed AFTER INSERT OR UPDATE OR DELETE ON application_roles
    FOR EACH STATEMENT EXECUTE FUNCTION mgpass_access_changed();
