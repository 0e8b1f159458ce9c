-- Roles: named collections of scopes across API resources. Users name their global roles in
-- `users.roles`; machine-to-machine applications get theirs through `application_roles`.

CREATE TABLE roles (
    id                    uuid PRIMARY KEY,
    name                  text NOT NULL UNIQUE,
    description           text NOT NULL DEFAULT '',
    -- [{"resource": "https://api...", "scopes": ["content:read"]}]
    scopes                jsonb NOT NULL DEFAULT '[]',
    default_for_new_users boolean NOT NULL DEFAULT false,
    m2m_only              boolean NOT NULL DEFAULT false,
    system                boolean NOT NULL DEFAULT false,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX roles_created_idx ON roles (created_at DESC, id DESC);

CREATE TABLE application_roles (
    application_id uuid NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    role_id        uuid NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (application_id, role_id)
);

-- The management API is a resource like any other; `mgpass:admin` is its scope.
INSERT INTO api_resources (id, indicator, name, description, scopes, system)
VALUES ('00000000-0000-4000-8000-000000000001', 'mgpass', 'mgpass management API',
        'The management APIs of this mgpass deployment.',
        '[{"name": "mgpass:admin", "description": "Manage everything"}]', true);

-- System roles, as the Mindbricks guide names them.
INSERT INTO roles (id, name, description, scopes, system) VALUES
 ('00000000-0000-4000-8000-000000000101', 'superAdmin', 'Everything, including other admins.',
  '[{"resource": "mgpass", "scopes": ["mgpass:admin"]}]', true),
 ('00000000-0000-4000-8000-000000000102', 'admin', 'Manages users, applications and loyalty.',
  '[{"resource": "mgpass", "scopes": ["mgpass:admin"]}]', true),
 ('00000000-0000-4000-8000-000000000103', 'user', 'A signed-in user: their own profile, sessions and points.',
  '[]', true);
UPDATE roles SET default_for_new_users = true WHERE name = 'user';
