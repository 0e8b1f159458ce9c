DROP INDEX roles_scopes_idx;
DROP INDEX applications_resources_idx;
DROP INDEX roles_name_lower_key;
DROP INDEX application_roles_role_idx;
DROP INDEX users_roles_idx;
