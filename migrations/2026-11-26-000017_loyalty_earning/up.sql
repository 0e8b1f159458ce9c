-- Loyalty earning: rules (immutable versions), tiers and members' standing, partner events
-- (idempotent per partner event id, pending while the customer is not a user yet) and the per-user
-- cap counters that make caps atomic with awards. Ledger rows live in the loyalty core migration.

-- One row per rule: its identity and which version is current. The versions never change.
CREATE TABLE loyalty_rules (
    id              uuid PRIMARY KEY,
    current_version integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE loyalty_rule_versions (
    rule_id               uuid NOT NULL REFERENCES loyalty_rules (id),
    version               integer NOT NULL CHECK (version >= 1),
    name                  text NOT NULL,
    description           text NOT NULL DEFAULT '',
    -- NULL: every partner.
    partner_id            uuid,
    event_type            text NOT NULL,
    condition             text NOT NULL DEFAULT '',
    -- Exactly one way to compute points: fixed, or a rate of the amount.
    fixed_points          bigint,
    rate_points           bigint,
    rate_per_amount_minor bigint,
    rate_currency         text,
    rounding              smallint NOT NULL,
    -- [{"tier_id": "...", "multiplier_bps": 15000}]
    tier_multipliers      jsonb NOT NULL DEFAULT '[]',
    -- [{"period": 1, "max_points": 500}]
    caps                  jsonb NOT NULL DEFAULT '[]',
    start_at              timestamptz,
    end_at                timestamptz,
    priority              integer NOT NULL DEFAULT 0,
    stacking              smallint NOT NULL,
    status                smallint NOT NULL,
    updater_user_id       uuid,
    created_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rule_id, version),
    CHECK ((fixed_points IS NOT NULL) <> (rate_points IS NOT NULL)),
    CHECK (end_at IS NULL OR start_at IS NULL OR end_at > start_at)
);
CREATE INDEX loyalty_rule_versions_type_idx ON loyalty_rule_versions (event_type);

-- Versions are immutable: corrections are new versions.
CREATE FUNCTION loyalty_rule_versions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'loyalty_rule_versions rows are immutable';
END $$;
CREATE TRIGGER loyalty_rule_versions_immutable BEFORE UPDATE OR DELETE ON loyalty_rule_versions
    FOR EACH ROW EXECUTE FUNCTION loyalty_rule_versions_immutable();

CREATE TABLE loyalty_tiers (
    id                     uuid PRIMARY KEY,
    name                   text NOT NULL UNIQUE,
    description            text NOT NULL DEFAULT '',
    threshold_points       bigint NOT NULL UNIQUE CHECK (threshold_points >= 0),
    earning_multiplier_bps integer NOT NULL DEFAULT 0 CHECK (earning_multiplier_bps >= 0),
    perks                  text[] NOT NULL DEFAULT '{}',
    image_url              text NOT NULL DEFAULT '',
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);

-- A member's current tier; the row is also the lock that serialises their tier changes.
CREATE TABLE loyalty_user_tiers (
    user_id    uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    tier_id    uuid REFERENCES loyalty_tiers (id),
    since      timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX loyalty_user_tiers_tier_idx ON loyalty_user_tiers (tier_id);

CREATE TABLE loyalty_tier_changes (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    from_tier_id  uuid,
    to_tier_id    uuid,
    reason        smallint NOT NULL,
    window_points bigint NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX loyalty_tier_changes_user_idx ON loyalty_tier_changes (user_id, created_at DESC, id DESC);

-- Partner events. (partner_id, partner_event_id) is the idempotency key: the insert of a second
-- copy waits for the first one's transaction and then finds it. `request_hash` is the SHA-256 of
-- the canonical body, compared to tell a replay from a reused key.
CREATE TABLE loyalty_events (
    id                      uuid PRIMARY KEY,
    partner_id              uuid NOT NULL,
    partner_event_id        text NOT NULL,
    request_hash            bytea NOT NULL,
    event_type              text NOT NULL,
    -- The identifier as sent: exactly one of the three.
    user_id                 uuid,
    email                   text,
    mobile                  text,
    occur_at                timestamptz NOT NULL,
    amount_minor            bigint CHECK (amount_minor >= 0),
    currency                text,
    attributes              jsonb NOT NULL DEFAULT '{}',
    -- 1 processed, 2 pending user, 3 reversed, 4 expired (= proto EventStatus).
    status                  smallint NOT NULL,
    resolved_user_id        uuid REFERENCES users (id),
    points                  bigint NOT NULL DEFAULT 0,
    -- [{"rule_id", "rule_version", "base_points", "multiplier_bps", "points", "capped"}]
    awards                  jsonb NOT NULL DEFAULT '[]',
    transaction_id          uuid,
    reversal_transaction_id uuid,
    received_at             timestamptz NOT NULL DEFAULT now(),
    processed_at            timestamptz,
    pending_expires_at      timestamptz,
    reversed_at             timestamptz,
    UNIQUE (partner_id, partner_event_id),
    CHECK (num_nonnulls(user_id, email, mobile) = 1)
);
CREATE INDEX loyalty_events_received_idx ON loyalty_events (received_at DESC, id DESC);
CREATE INDEX loyalty_events_user_idx ON loyalty_events (resolved_user_id, processed_at) WHERE resolved_user_id IS NOT NULL;
-- The pending matcher and the expiry sweep read only pending events.
CREATE INDEX loyalty_events_pending_email_idx ON loyalty_events (email) WHERE status = 2 AND email IS NOT NULL;
CREATE INDEX loyalty_events_pending_mobile_idx ON loyalty_events (mobile) WHERE status = 2 AND mobile IS NOT NULL;
CREATE INDEX loyalty_events_pending_expiry_idx ON loyalty_events (pending_expires_at) WHERE status = 2;

-- Points a rule gave a user in one cap period (period 1 day .. 4 lifetime; `period_start` is the
-- first day of the period in the loyalty time zone, 1970-01-01 for lifetime). One row per
-- (rule, user, period): awards lock it, so concurrent events cannot exceed a cap, and no row is
-- shared between users.
CREATE TABLE loyalty_cap_counters (
    rule_id      uuid NOT NULL REFERENCES loyalty_rules (id),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    period       smallint NOT NULL,
    period_start date NOT NULL,
    points       bigint NOT NULL DEFAULT 0 CHECK (points >= 0),
    PRIMARY KEY (rule_id, user_id, period, period_start)
);
