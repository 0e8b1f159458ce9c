ALTER TABLE applications DROP COLUMN id_token_signing_alg;
ALTER TABLE sessions DROP COLUMN organization_id;
ALTER TABLE authorization_codes DROP COLUMN organization_id;
