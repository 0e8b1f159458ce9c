-- The delivery outbox: emails and SMS queued in the caller's transaction and sent by the delivery
-- worker (server/src/delivery). The rendered message carries codes and links, so it is stored
-- sealed under the master key (AES-256-GCM, context `outbox:<id>`) and wiped once the message is
-- sent or given up; the metadata stays for support and audit.

CREATE TABLE outbox (
    id              uuid PRIMARY KEY,
    channel         text NOT NULL CHECK (channel IN ('email', 'sms')),
    recipient       text NOT NULL,
    template        text NOT NULL,
    -- The locale whose template variant was rendered (after fallback).
    locale          text NOT NULL,
    -- Sealed JSON of the rendered message; NULL once the message is sent or failed.
    sealed_body     bytea,
    -- pending: due at next_attempt_at; sending: claimed by a worker, whose lease ends at
    -- next_attempt_at (past it, a claim whose worker died is taken again); sent and failed are
    -- final.
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    -- Attempts started so far (a claim counts as one).
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- Why the last attempt failed (never the message itself).
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    CHECK ((status IN ('sent', 'failed')) = (sealed_body IS NULL))
);

-- What the worker scans: only live messages, oldest due first.
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE status IN ('pending', 'sending');
CREATE INDEX outbox_recipient_idx ON outbox (recipient, created_at DESC);
