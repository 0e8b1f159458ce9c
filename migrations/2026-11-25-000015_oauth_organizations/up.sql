-- Organization tokens from the authorization code flow (`organization` on /oauth2/authorize):
-- the code and the grant session it creates remember the organization, so refreshes stay
-- organization tokens. Deleting the organization ends those grants rather than widening them.
ALTER TABLE authorization_codes ADD COLUMN organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE;
ALTER TABLE sessions ADD COLUMN organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE;

-- The ID-token algorithm an application asks for: '' (the deployment's) or 'RS256'.
ALTER TABLE applications ADD COLUMN id_token_signing_alg text NOT NULL DEFAULT ''
    CHECK (id_token_signing_alg IN ('', 'RS256'));
