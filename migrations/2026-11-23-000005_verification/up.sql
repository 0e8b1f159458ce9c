-- One-time secrets of the verification flows (email and mobile verification, password reset,
-- magic links, email and SMS second factors), pending email/mobile changes, and TOTP
-- authenticators with their recovery codes.

-- A code or link token sent to a user. Only a digest is stored: SHA-256 of `<id>:<code>` for a
-- short code (salted by the row id), SHA-256 of the token for a link token (high-entropy, looked
-- up by its digest). Only the newest row of a flow and destination (or session) is live: sending
-- again supersedes the older ones.
CREATE TABLE verification_codes (
    id              uuid PRIMARY KEY,
    -- email_verification, mobile_verification, password_reset_by_email, password_reset_by_mobile,
    -- magic_link, email_2fa, mobile_2fa
    flow            text NOT NULL,
    -- NULL for a start request whose identifier has no account: the row exists so that the
    -- answer and the resend window are the same as for an account, and never matches.
    user_id         uuid REFERENCES users (id) ON DELETE CASCADE,
    -- The session a second-factor code belongs to.
    session_id      uuid REFERENCES sessions (id) ON DELETE CASCADE,
    -- Where it was sent: a lower-cased email address or an E.164 number.
    destination     text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('code', 'link')),
    secret_hash     bytea NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    consumed_at     timestamptz,
    -- used (confirmed), superseded (a newer one was sent), burnt (too many wrong tries)
    consumed_reason text CHECK (consumed_reason IN ('used', 'superseded', 'burnt')),
    CHECK ((consumed_at IS NULL) = (consumed_reason IS NULL))
);
CREATE INDEX verification_codes_dest_idx ON verification_codes (flow, destination, created_at DESC);
CREATE INDEX verification_codes_session_idx ON verification_codes (session_id) WHERE session_id IS NOT NULL;
CREATE INDEX verification_codes_user_idx ON verification_codes (user_id);
CREATE UNIQUE INDEX verification_codes_link_key ON verification_codes (secret_hash) WHERE kind = 'link';

-- An email address or mobile number waiting for its verification before it replaces the
-- current one (ChangeMyEmail / ChangeMyMobile).
CREATE TABLE pending_identifier_changes (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind IN ('email', 'mobile')),
    new_value  text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, kind)
);

-- A user's authenticator app (RFC 6238). The shared secret is sealed under the master key
-- (AES-256-GCM, context `totp:<user_id>`). Unconfirmed until a code from the app is confirmed;
-- an unconfirmed secret is discarded after `pending_expires_at`.
CREATE TABLE totp_factors (
    user_id            uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed      bytea NOT NULL,
    confirmed_at       timestamptz,
    pending_expires_at timestamptz,
    -- The newest time step accepted, so one code is never accepted twice.
    last_used_step     bigint NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now()
);

-- Single-use recovery codes of a user with an authenticator, stored as SHA-256 of
-- `<user_id>:<normalised code>`.
CREATE TABLE recovery_codes (
    id         uuid PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    used_at    timestamptz
);
CREATE INDEX recovery_codes_user_idx ON recovery_codes (user_id);
