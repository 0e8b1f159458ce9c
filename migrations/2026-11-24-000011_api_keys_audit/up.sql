-- API keys (`mgp_` + 256 random bits, base64url): personal keys act as their user, organization
-- keys as their organization. Only SHA-256 digests are stored. A rotation keeps the replaced
-- digest in `previous_key_hash` until `previous_key_expires_at` (the overlap), then it stops.
-- An organization's keys go with it.
CREATE TABLE api_keys (
    id                      uuid PRIMARY KEY,
    name                    text NOT NULL,
    -- The first 12 characters of the current key (`mgp_` + 8), to recognise it in listings.
    prefix                  text NOT NULL,
    key_hash                bytea NOT NULL UNIQUE,
    previous_key_hash       bytea UNIQUE,
    previous_key_expires_at timestamptz,
    user_id                 uuid REFERENCES users (id) ON DELETE CASCADE,
    organization_id         uuid REFERENCES organizations (id) ON DELETE CASCADE,
    creator_user_id         uuid NOT NULL,
    scopes                  text[] NOT NULL DEFAULT '{}',
    expires_at              timestamptz,
    last_used_at            timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    rotated_at              timestamptz,
    revoked_at              timestamptz,
    -- Exactly one owner: a user (personal key) or an organization.
    CHECK ((user_id IS NULL) <> (organization_id IS NULL))
);
CREATE INDEX api_keys_user_idx ON api_keys (user_id, created_at DESC, id DESC);
CREATE INDEX api_keys_org_idx ON api_keys (organization_id, created_at DESC, id DESC);
CREATE INDEX api_keys_created_idx ON api_keys (created_at DESC, id DESC);

-- The audit log: append-only. The trigger below refuses UPDATE and DELETE to every role, so
-- not even a bug in mgpass can rewrite history through the application's connection.
CREATE TABLE audit_events (
    id                   uuid PRIMARY KEY,
    -- `none`, `access_token`, `api_key`, `partner_api_key`, `client_secret`, `system`.
    credential_kind      text NOT NULL,
    actor_user_id        uuid,
    actor_application_id text,
    actor_api_key_id     uuid,
    action               text NOT NULL,
    target_type          text NOT NULL DEFAULT '',
    target_id            text NOT NULL DEFAULT '',
    organization_id      uuid,
    -- The request message as JSON, secrets redacted.
    request              jsonb,
    before               jsonb,
    after                jsonb,
    success              boolean NOT NULL,
    error_reason         text NOT NULL DEFAULT '',
    ip_address           text NOT NULL DEFAULT '',
    user_agent           text NOT NULL DEFAULT '',
    request_id           text NOT NULL DEFAULT '',
    created_at           timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX audit_events_created_idx ON audit_events (created_at DESC, id DESC);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_user_id, created_at DESC, id DESC);
CREATE INDEX audit_events_target_idx ON audit_events (target_id, created_at DESC, id DESC);
CREATE INDEX audit_events_org_idx ON audit_events (organization_id, created_at DESC, id DESC);
CREATE INDEX audit_events_action_idx ON audit_events (action, created_at DESC, id DESC);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
