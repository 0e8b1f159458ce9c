DROP TABLE application_roles;
DROP TABLE roles;
DELETE FROM api_resources WHERE indicator = 'mgpass';
