-- Sealed keys cannot be unsealed in SQL (the master key is not in the database), so going back
-- deletes them; the older server creates a clear key at start. Tokens they signed stop verifying.
DELETE FROM signing_keys;
ALTER TABLE signing_keys DROP CONSTRAINT signing_keys_private_until_retired;
ALTER TABLE signing_keys DROP COLUMN private_sealed;
ALTER TABLE signing_keys ADD COLUMN private_der bytea NOT NULL;
