-- Mobile-money cashback: quotes, and the payout outbox the worker drives to a confirmed outcome.

CREATE TABLE loyalty_payout_quotes (
    id                UUID PRIMARY KEY,
    user_id           UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    points            BIGINT NOT NULL CHECK (points > 0),
    amount_minor      BIGINT NOT NULL CHECK (amount_minor > 0),
    currency          TEXT NOT NULL,
    rate_points       BIGINT NOT NULL CHECK (rate_points > 0),
    rate_amount_minor BIGINT NOT NULL CHECK (rate_amount_minor > 0),
    mobile            TEXT NOT NULL,
    expires_at        TIMESTAMPTZ NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE loyalty_payouts (
    id                      UUID PRIMARY KEY,
    user_id                 UUID NOT NULL REFERENCES users(id),
    -- One payout per quote: RequestPayout is idempotent by quote.
    quote_id                UUID NOT NULL UNIQUE REFERENCES loyalty_payout_quotes(id),
    points                  BIGINT NOT NULL CHECK (points > 0),
    amount_minor            BIGINT NOT NULL CHECK (amount_minor > 0),
    currency                TEXT NOT NULL,
    mobile                  TEXT NOT NULL,
    provider                TEXT NOT NULL,
    -- The X-Reference-Id, the same on every retry.
    reference_id            UUID NOT NULL UNIQUE,
    provider_transaction_id TEXT,
    status                  TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'manual_review')),
    -- How far the transfer of a pending payout got (payout_flow::Phase).
    phase                   TEXT NOT NULL CHECK (phase IN ('submit', 'unknown', 'accepted')),
    failure_reason          TEXT,
    submit_count            INTEGER NOT NULL DEFAULT 0,
    status_check_count      INTEGER NOT NULL DEFAULT 0,
    last_status_check_at    TIMESTAMPTZ,
    hold_transaction_id     UUID NOT NULL REFERENCES loyalty_transactions(id),
    settle_transaction_id   UUID REFERENCES loyalty_transactions(id),
    resolver_user_id        UUID REFERENCES users(id),
    resolution_note         TEXT,
    -- The worker's schedule and lease: due when next_attempt_at <= now().
    next_attempt_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error              TEXT,
    created_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at            TIMESTAMPTZ,
    -- Settled means a settlement transaction, and only then.
    CHECK ((status IN ('succeeded', 'failed')) = (settle_transaction_id IS NOT NULL))
);

CREATE INDEX loyalty_payouts_due ON loyalty_payouts (next_attempt_at) WHERE status = 'pending';
CREATE INDEX loyalty_payouts_user ON loyalty_payouts (user_id, created_at DESC, id DESC);
CREATE INDEX loyalty_payouts_created ON loyalty_payouts (created_at DESC, id DESC);
CREATE INDEX loyalty_payouts_status ON loyalty_payouts (status, created_at DESC, id DESC);
CREATE INDEX loyalty_payout_quotes_user ON loyalty_payout_quotes (user_id);
