-- OAuth 2.1 / OpenID Connect: API resources, applications (clients), their secrets, and the
-- short-lived grant state of the protocol flows.

CREATE TABLE api_resources (
    id          uuid PRIMARY KEY,
    -- RFC 8707 resource indicator, e.g. `https://api.example.com`; the `aud` of its tokens.
    indicator   text NOT NULL UNIQUE,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    -- [{"name": "content:read", "description": "..."}]
    scopes      jsonb NOT NULL DEFAULT '[]',
    -- The management API itself (`mgpass:admin`) is a system resource: not deletable.
    system      boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_resources_created_idx ON api_resources (created_at DESC, id DESC);

CREATE TABLE applications (
    id                        uuid PRIMARY KEY,
    client_id                 text NOT NULL UNIQUE,
    name                      text NOT NULL,
    description               text NOT NULL DEFAULT '',
    app_type                  text NOT NULL CHECK (app_type IN ('web', 'spa', 'native', 'm2m')),
    redirect_uris             text[] NOT NULL DEFAULT '{}',
    post_logout_redirect_uris text[] NOT NULL DEFAULT '{}',
    -- authorization_code, refresh_token, client_credentials, device_code, token_exchange
    grant_types               text[] NOT NULL DEFAULT '{}',
    -- OIDC and free scopes the app may ask for (openid, profile, email, phone, offline_access).
    allowed_scopes            text[] NOT NULL DEFAULT '{}',
    -- [{"resource": "https://api...", "scopes": ["content:read"]}]
    allowed_resources         jsonb NOT NULL DEFAULT '[]',
    allowed_origins           text[] NOT NULL DEFAULT '{}',
    access_token_ttl_secs     integer NOT NULL,
    refresh_token_ttl_secs    integer NOT NULL,
    id_token_ttl_secs         integer NOT NULL,
    first_party               boolean NOT NULL DEFAULT false,
    require_pkce              boolean NOT NULL DEFAULT true,
    -- {"logo_uri": "...", "primary_color": "#...", "background_color": "#..."}
    branding                  jsonb NOT NULL DEFAULT '{}',
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX applications_created_idx ON applications (created_at DESC, id DESC);

-- Client secrets: only the SHA-256 is stored. Rotation adds a secret and gives the old ones an
-- expiry (the overlap period), so deployments can roll without downtime.
CREATE TABLE client_secrets (
    id             uuid PRIMARY KEY,
    application_id uuid NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    secret_hash    bytea NOT NULL UNIQUE,
    -- The last four characters, to tell secrets apart in listings.
    hint           text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz,
    last_used_at   timestamptz
);
CREATE INDEX client_secrets_app_idx ON client_secrets (application_id);

-- Authorization codes: single use, 60 seconds. `grant_session_id` is the session the redemption
-- created, revoked if the code is ever presented again.
CREATE TABLE authorization_codes (
    code_hash        bytea PRIMARY KEY,
    application_id   uuid NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The browser (single sign-on) session that authorized it.
    browser_session_id uuid,
    redirect_uri     text NOT NULL,
    scope            text NOT NULL,
    resource         text,
    nonce            text,
    code_challenge   text,
    auth_time        timestamptz NOT NULL,
    amr              text[] NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    used_at          timestamptz,
    grant_session_id uuid
);
CREATE INDEX authorization_codes_expiry_idx ON authorization_codes (expires_at);

-- RFC 8628 device authorizations.
CREATE TABLE device_authorizations (
    device_code_hash bytea PRIMARY KEY,
    -- Stored normalised (upper case, no dash); unique while it lives.
    user_code        text NOT NULL UNIQUE,
    application_id   uuid NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    scope            text NOT NULL,
    resource         text,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied', 'consumed')),
    user_id          uuid REFERENCES users (id) ON DELETE CASCADE,
    auth_time        timestamptz,
    amr              text[] NOT NULL DEFAULT '{}',
    interval_secs    integer NOT NULL,
    last_polled_at   timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL
);

-- Scopes a user has consented to give an application.
CREATE TABLE consents (
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    application_id uuid NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    scopes         text[] NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, application_id)
);

-- Browser sessions of the hosted pages: the cookie holds a random value, this table its SHA-256.
CREATE TABLE browser_sessions (
    token_hash bytea PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX browser_sessions_session_idx ON browser_sessions (session_id);

-- Access tokens revoked before their expiry (RFC 7009), by `jti`. Kept until the token expires.
CREATE TABLE revoked_access_tokens (
    jti        text PRIMARY KEY,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX revoked_access_tokens_revoked_idx ON revoked_access_tokens (revoked_at);

-- Which application a refresh-token family belongs to: a session created by an OAuth grant
-- records its client in `sessions.application_id`; OAuth sessions also carry the granted scope.
ALTER TABLE sessions ADD COLUMN scope text NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN resource text;
ALTER TABLE sessions ADD COLUMN auth_time timestamptz NOT NULL DEFAULT now();
