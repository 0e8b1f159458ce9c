-- Interactions of the hosted pages: an authorization request (or a device code entry) waiting
-- for its user to sign in, pass a second factor or consent. The id travels in the pages' URLs
-- and forms; only its SHA-256 is stored. An interaction is bound to the browser that started it
-- by the SHA-256 of that browser's CSRF cookie, so a leaked id is useless elsewhere.
CREATE TABLE oauth_interactions (
    id_hash      bytea PRIMARY KEY,
    browser_hash bytea NOT NULL,
    -- `authorize` (request: an AuthorizationRequest) or `device` (request: {"user_code": "..."}).
    kind         text NOT NULL CHECK (kind IN ('authorize', 'device')),
    request      jsonb NOT NULL,
    -- The session signed in during this interaction: it satisfies `prompt=login` and `max_age`
    -- of the request, so the user is not sent back to sign in again.
    session_id   uuid REFERENCES sessions (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX oauth_interactions_browser_idx ON oauth_interactions (browser_hash, created_at DESC);
CREATE INDEX oauth_interactions_expiry_idx ON oauth_interactions (expires_at);
