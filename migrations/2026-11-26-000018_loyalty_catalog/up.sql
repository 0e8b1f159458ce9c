-- The reward catalog and redemption orders. Redeeming locks the item row, debits its stock
-- (CHECK stock >= 0) and the user's points (the ledger's CHECK) in one transaction.
CREATE TABLE loyalty_catalog_items (
    id                uuid PRIMARY KEY,
    name              text NOT NULL,
    description       text NOT NULL DEFAULT '',
    image_url         text NOT NULL DEFAULT '',
    points_cost       bigint NOT NULL CHECK (points_cost > 0),
    unlimited_stock   boolean NOT NULL DEFAULT false,
    stock             bigint NOT NULL DEFAULT 0 CHECK (stock >= 0),
    per_user_limit    integer NOT NULL DEFAULT 0 CHECK (per_user_limit >= 0),
    -- Tiers whose members may redeem it (tiers belong to the earning module); empty: everybody.
    eligible_tier_ids uuid[] NOT NULL DEFAULT '{}',
    starts_at         timestamptz,
    ends_at           timestamptz,
    -- `active` or `disabled`.
    status            text NOT NULL CHECK (status IN ('active', 'disabled')),
    -- Units redeemed, cancelled orders excluded.
    redeemed_count    bigint NOT NULL DEFAULT 0 CHECK (redeemed_count >= 0),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (starts_at IS NULL OR ends_at IS NULL OR ends_at > starts_at)
);
CREATE INDEX loyalty_catalog_items_name_idx ON loyalty_catalog_items (name, id);
CREATE INDEX loyalty_catalog_items_cost_idx ON loyalty_catalog_items (points_cost, id);

CREATE TABLE loyalty_orders (
    id                    uuid PRIMARY KEY,
    user_id               uuid NOT NULL,
    catalog_item_id       uuid NOT NULL REFERENCES loyalty_catalog_items (id),
    item_name             text NOT NULL,
    quantity              integer NOT NULL CHECK (quantity BETWEEN 1 AND 100),
    points                bigint NOT NULL CHECK (points > 0),
    -- `pending`, `fulfilled` or `cancelled`; never back to pending.
    status                text NOT NULL CHECK (status IN ('pending', 'fulfilled', 'cancelled')),
    details               jsonb NOT NULL DEFAULT '{}',
    fulfillment_reference text NOT NULL DEFAULT '',
    cancel_reason         text NOT NULL DEFAULT '',
    debit_transaction_id  uuid NOT NULL REFERENCES loyalty_transactions (id),
    refund_transaction_id uuid REFERENCES loyalty_transactions (id),
    -- The client's idempotency key (RedeemCatalogItem.request_id), per user.
    request_id            uuid NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    fulfilled_at          timestamptz,
    cancelled_at          timestamptz,
    UNIQUE (user_id, request_id)
);
CREATE INDEX loyalty_orders_user_idx ON loyalty_orders (user_id, created_at DESC, id DESC);
CREATE INDEX loyalty_orders_created_idx ON loyalty_orders (created_at DESC, id DESC);
CREATE INDEX loyalty_orders_item_user_idx ON loyalty_orders (catalog_item_id, user_id) WHERE status <> 'cancelled';
