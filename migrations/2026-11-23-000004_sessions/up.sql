-- Sign-in sessions, their rotating refresh tokens, and brute-force counters.

CREATE TABLE sessions (
    id                    uuid PRIMARY KEY,
    user_id               uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    application_id        text NOT NULL DEFAULT '',
    user_agent            text NOT NULL DEFAULT '',
    ip_address            text NOT NULL DEFAULT '',
    -- RFC 8176 authentication method references (`pwd`, `otp`, `mfa`, ...).
    amr                   text[] NOT NULL DEFAULT '{}',
    -- A second factor still owed before the session may call protected methods.
    pending_second_factor text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    last_used_at          timestamptz NOT NULL DEFAULT now(),
    -- Absolute end of the session, however often its refresh token rotates.
    expires_at            timestamptz NOT NULL,
    revoked_at            timestamptz,
    revoked_reason        text
);
CREATE INDEX sessions_user_idx ON sessions (user_id, created_at DESC, id DESC);

-- Only the SHA-256 of a refresh token is stored. All tokens of a session form one family:
-- presenting a used one revokes the session.
CREATE TABLE refresh_tokens (
    token_hash bytea PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

-- Failed sign-ins per identifier (`account:<identifier>`) and per client IP (`ip:<address>`).
-- Kept in the database so a restart does not reset them.
CREATE TABLE login_throttle (
    key             text PRIMARY KEY,
    failures        integer NOT NULL DEFAULT 0,
    locked_until    timestamptz,
    last_failure_at timestamptz NOT NULL DEFAULT now()
);
