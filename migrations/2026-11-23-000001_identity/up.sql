-- Users and the keys that sign their tokens.

CREATE TABLE users (
    id              uuid PRIMARY KEY,
    email           text,
    mobile          text,
    given_name      text NOT NULL DEFAULT '',
    family_name     text NOT NULL DEFAULT '',
    full_name       text NOT NULL DEFAULT '',
    avatar_url      text NOT NULL DEFAULT '',
    password_hash   text,
    email_verified  boolean NOT NULL DEFAULT false,
    mobile_verified boolean NOT NULL DEFAULT false,
    roles           text[] NOT NULL DEFAULT '{}',
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    properties      jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (email IS NOT NULL OR mobile IS NOT NULL)
);

-- Identifier uniqueness lives in the database, so concurrent registrations cannot both win.
CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX users_mobile_key ON users (mobile) WHERE mobile IS NOT NULL;
-- Keyset pagination: newest first, ties broken by id.
CREATE INDEX users_created_idx ON users (created_at DESC, id DESC);

CREATE TABLE signing_keys (
    kid          text PRIMARY KEY,
    algorithm    text NOT NULL,
    -- PKCS#8 DER of the private key. The identity issue encrypts it at rest under the master key.
    private_der  bytea NOT NULL,
    public_jwk   jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- Keys publish before they sign and stay published after they stop signing.
    activates_at timestamptz NOT NULL DEFAULT now(),
    retired_at   timestamptz
);
