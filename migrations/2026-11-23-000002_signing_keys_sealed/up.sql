-- Private signing keys move from clear PKCS#8 DER (`private_der`) to AES-256-GCM sealed under
-- the deployment's master key (`private_sealed`, see server/src/crypto/sealed.rs).
--
-- SQL cannot seal: the master key lives only in the server's configuration. So the keys stored
-- in clear are deleted, and the server creates a fresh sealed key when it starts. Access tokens
-- signed by the deleted keys stop verifying; they are short-lived (tokens.access_token_ttl_secs,
-- 15 minutes by default) and clients get new ones with their refresh token, which this does not
-- touch.
DELETE FROM signing_keys;
ALTER TABLE signing_keys DROP COLUMN private_der;
-- Null once the key is retired: a key that will never sign again needs no private half.
ALTER TABLE signing_keys ADD COLUMN private_sealed bytea;
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_private_until_retired
    CHECK (retired_at IS NOT NULL OR private_sealed IS NOT NULL);
