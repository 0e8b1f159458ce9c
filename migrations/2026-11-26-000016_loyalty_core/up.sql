-- Loyalty foundation: reward partners and their API keys, and the double-entry points ledger.

-- Reward partners. Never deleted (the ledger refers to them): suspended instead.
CREATE TABLE loyalty_partners (
    id            uuid PRIMARY KEY,
    name          text NOT NULL,
    description   text NOT NULL DEFAULT '',
    contact_name  text NOT NULL DEFAULT '',
    contact_email text NOT NULL DEFAULT '',
    contact_phone text NOT NULL DEFAULT '',
    -- `active` or `suspended`.
    status        text NOT NULL CHECK (status IN ('active', 'suspended')),
    event_types   text[] NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX loyalty_partners_name_key ON loyalty_partners (lower(name));

-- Partner API keys (`mgpp_` + 256 random bits, base64url), sent as `X-API-Key`. Only the
-- SHA-256 digest is stored; the key is shown once at creation.
CREATE TABLE loyalty_partner_api_keys (
    id           uuid PRIMARY KEY,
    partner_id   uuid NOT NULL REFERENCES loyalty_partners (id),
    name         text NOT NULL,
    -- The first 13 characters of the key (`mgpp_` + 8), to recognise it in listings.
    prefix       text NOT NULL,
    key_hash     bytea NOT NULL UNIQUE,
    expires_at   timestamptz,
    last_used_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
CREATE INDEX loyalty_partner_api_keys_partner_idx
    ON loyalty_partner_api_keys (partner_id, created_at DESC, id DESC);

-- Ledger accounts, one per (type, owner), created on first use. System accounts (redemptions,
-- expiry, adjustments, payouts) have the nil owner.
--
-- `balance` is materialised only for the accounts whose balance must never go negative (USER and
-- USER_HOLD): it is updated in the same database transaction as the entries, and its CHECK is
-- the final guard against overspending. Shared accounts (partner issuance, redemptions, ...) keep
-- NULL: updating one shared row on every award would serialise all awards on it. Their balance is
-- the sum of their entries.
CREATE TABLE loyalty_accounts (
    id           uuid PRIMARY KEY,
    account_type text NOT NULL CHECK (account_type IN
        ('user', 'user_hold', 'partner_issuance', 'redemptions', 'expiry', 'adjustments', 'payouts')),
    owner_id     uuid NOT NULL,
    balance      bigint,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_type, owner_id),
    CONSTRAINT loyalty_accounts_materialised
        CHECK ((account_type IN ('user', 'user_hold')) = (balance IS NOT NULL)),
    CONSTRAINT loyalty_accounts_balance_not_negative CHECK (balance IS NULL OR balance >= 0)
);

-- A transaction: one balanced movement of points. Append-only (trigger below).
CREATE TABLE loyalty_transactions (
    id                      uuid PRIMARY KEY,
    kind                    text NOT NULL CHECK (kind IN ('award', 'reversal', 'redemption', 'refund',
        'expiry', 'adjustment', 'payout_hold', 'payout_capture', 'payout_release')),
    user_id                 uuid NOT NULL,
    -- The net change of the user's available points (entries of the USER account).
    points                  bigint NOT NULL,
    -- The partner whose issuance account moved (awards and reversals), for reports.
    partner_id              uuid,
    event_id                uuid,
    order_id                uuid,
    payout_id               uuid,
    -- A transaction is reversed at most once.
    reversed_transaction_id uuid UNIQUE REFERENCES loyalty_transactions (id),
    reason                  text,
    actor_user_id           uuid,
    created_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX loyalty_transactions_user_idx ON loyalty_transactions (user_id, created_at DESC, id DESC);
CREATE INDEX loyalty_transactions_created_idx ON loyalty_transactions (created_at DESC, id DESC);
CREATE INDEX loyalty_transactions_partner_idx ON loyalty_transactions (partner_id, created_at)
    WHERE partner_id IS NOT NULL;
CREATE INDEX loyalty_transactions_event_idx ON loyalty_transactions (event_id) WHERE event_id IS NOT NULL;
CREATE INDEX loyalty_transactions_order_idx ON loyalty_transactions (order_id) WHERE order_id IS NOT NULL;
CREATE INDEX loyalty_transactions_payout_idx ON loyalty_transactions (payout_id) WHERE payout_id IS NOT NULL;

-- A lot: the points one credit gave a user. Debits consume lots first-in first-out; the expiry
-- job expires what remains of a lot at `expire_at` (NULL: never). The remaining points of a
-- user's lots always add up to the user's balance (`mgpass ledger verify` checks it).
CREATE TABLE loyalty_lots (
    id               uuid PRIMARY KEY,
    user_id          uuid NOT NULL,
    transaction_id   uuid NOT NULL REFERENCES loyalty_transactions (id),
    earned_points    bigint NOT NULL CHECK (earned_points > 0),
    remaining_points bigint NOT NULL CHECK (remaining_points >= 0 AND remaining_points <= earned_points),
    earned_at        timestamptz NOT NULL DEFAULT now(),
    expire_at        timestamptz
);
CREATE INDEX loyalty_lots_fifo_idx ON loyalty_lots (user_id, earned_at, id) WHERE remaining_points > 0;
CREATE INDEX loyalty_lots_user_expiry_idx ON loyalty_lots (user_id, expire_at, id);
CREATE INDEX loyalty_lots_expiry_idx ON loyalty_lots (expire_at) WHERE remaining_points > 0;

-- An entry: points added to (positive) or taken from (negative) one account. The entries of a
-- transaction sum to zero. Append-only (trigger below).
CREATE TABLE loyalty_entries (
    id             bigserial PRIMARY KEY,
    transaction_id uuid NOT NULL REFERENCES loyalty_transactions (id),
    account_id     uuid NOT NULL REFERENCES loyalty_accounts (id),
    points         bigint NOT NULL CHECK (points <> 0),
    -- The rule (and its version) that produced an award entry.
    rule_id        uuid,
    rule_version   integer,
    -- The lot credited or consumed, for USER entries.
    lot_id         uuid REFERENCES loyalty_lots (id),
    CHECK ((rule_id IS NULL) = (rule_version IS NULL))
);
CREATE INDEX loyalty_entries_transaction_idx ON loyalty_entries (transaction_id);
CREATE INDEX loyalty_entries_account_idx ON loyalty_entries (account_id);

-- Idempotency of administrators' adjustments (AdjustPoints.request_id).
CREATE TABLE loyalty_adjustment_requests (
    request_id     uuid PRIMARY KEY,
    user_id        uuid NOT NULL,
    points         bigint NOT NULL,
    reason         text NOT NULL,
    transaction_id uuid NOT NULL REFERENCES loyalty_transactions (id),
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- Transactions and entries are never updated or deleted, by any role: corrections are new
-- transactions.
CREATE FUNCTION loyalty_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the loyalty ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
END
$$;
CREATE TRIGGER loyalty_transactions_append_only BEFORE UPDATE OR DELETE ON loyalty_transactions
    FOR EACH ROW EXECUTE FUNCTION loyalty_refuse_change();
CREATE TRIGGER loyalty_transactions_no_truncate BEFORE TRUNCATE ON loyalty_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty_refuse_change();
CREATE TRIGGER loyalty_entries_append_only BEFORE UPDATE OR DELETE ON loyalty_entries
    FOR EACH ROW EXECUTE FUNCTION loyalty_refuse_change();
CREATE TRIGGER loyalty_entries_no_truncate BEFORE TRUNCATE ON loyalty_entries
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty_refuse_change();
