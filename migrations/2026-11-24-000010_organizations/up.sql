-- Organizations (tenants): their members, organization roles (separate from global roles),
-- invitations by email and feature flags. Everything of an organization goes with it
-- (ON DELETE CASCADE), and every child row names its organization, so every query can be scoped.

CREATE TABLE organizations (
    id            uuid PRIMARY KEY,
    name          text NOT NULL,
    description   text NOT NULL DEFAULT '',
    avatar_url    text NOT NULL DEFAULT '',
    -- Mirrors the one membership whose role is `owner` (changed only by a transfer).
    owner_user_id uuid NOT NULL,
    properties    jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX organizations_name_idx ON organizations (name, id);

CREATE TABLE org_roles (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            text NOT NULL,
    description     text NOT NULL DEFAULT '',
    -- [{"resource": "mgpass", "scopes": ["org.members.read"]}]
    scopes          jsonb NOT NULL DEFAULT '[]',
    system          boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, name)
);

CREATE TABLE org_members (
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, user_id),
    -- A member's role exists in the same organization; a role in use cannot be deleted.
    FOREIGN KEY (organization_id, role) REFERENCES org_roles (organization_id, name)
);
-- At most one owner per organization, whatever runs concurrently.
CREATE UNIQUE INDEX org_members_one_owner ON org_members (organization_id) WHERE role = 'owner';
CREATE INDEX org_members_user_idx ON org_members (user_id);
CREATE INDEX org_members_created_idx ON org_members (organization_id, created_at DESC, user_id DESC);

CREATE TABLE org_invitations (
    id               uuid PRIMARY KEY,
    organization_id  uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email            text NOT NULL,
    role             text NOT NULL,
    -- SHA-256 of the single-use token; the token itself only travels in the email.
    token_hash       bytea NOT NULL UNIQUE,
    inviter_user_id  uuid REFERENCES users (id) ON DELETE SET NULL,
    -- `pending`, `accepted`, `revoked` or `expired` (a pending one past expires_at is expired).
    status           text NOT NULL DEFAULT 'pending',
    expires_at       timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    closed_at        timestamptz,
    accepter_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    -- A role with pending invitations cannot be deleted (the service refuses); closed ones go
    -- with it.
    FOREIGN KEY (organization_id, role) REFERENCES org_roles (organization_id, name) ON DELETE CASCADE
);
-- One pending invitation per address and organization.
CREATE UNIQUE INDEX org_invitations_pending ON org_invitations (organization_id, lower(email)) WHERE status = 'pending';
CREATE INDEX org_invitations_created_idx ON org_invitations (organization_id, created_at DESC, id DESC);

CREATE TABLE org_feature_flags (
    organization_id  uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name             text NOT NULL,
    bool_value       boolean,
    string_value     text,
    include_in_token boolean NOT NULL DEFAULT false,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, name),
    CHECK ((bool_value IS NULL) <> (string_value IS NULL))
);
