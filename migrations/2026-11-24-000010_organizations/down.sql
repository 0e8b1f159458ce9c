DROP TABLE org_feature_flags;
DROP TABLE org_invitations;
DROP TABLE org_members;
DROP TABLE org_roles;
DROP TABLE organizations;
