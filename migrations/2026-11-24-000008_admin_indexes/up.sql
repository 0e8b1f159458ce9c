-- Indexes of the admin APIs of applications, API resources and roles.

-- Role assignments: "who holds this role" without scanning every user or application.
CREATE INDEX users_roles_idx ON users USING gin (roles);
CREATE INDEX application_roles_role_idx ON application_roles (role_id, created_at DESC, application_id DESC);

-- Role names differing only in case (`Admin` next to `admin`) would be told apart by nobody.
CREATE UNIQUE INDEX roles_name_lower_key ON roles (lower(name));

-- Which applications and roles reference an API resource (its deletion and scope changes
-- remove the references).
CREATE INDEX applications_resources_idx ON applications USING gin (allowed_resources jsonb_path_ops);
CREATE INDEX roles_scopes_idx ON roles USING gin (scopes jsonb_path_ops);
