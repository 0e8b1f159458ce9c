//! Redemptions: a user spends points on catalog units. Redeeming locks the item row, debits its
//! stock (CHECK stock >= 0) and the user's points (the ledger's CHECK) and opens a pending order,
//! all in one database transaction: concurrent redemptions never oversell nor overdraw.
//! Cancelling gives the points back to the lots they came from and the units to the stock.

use chrono::{DateTime, Utc};
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    catalog_service::{item_not_found, parse_item_id},
    catalog_store as items, catalog_tiers,
    ledger::{self, Account, NewTransaction, Posting, TransactionKind},
    order_store::{self as orders, OrderFilter, OrderRow},
};
use crate::{
    db::DbPool,
    error::{Error, Result},
    paging::Page,
};

const MAX_DETAILS_BYTES: usize = 4096;

fn order_not_found() -> Error {
    Error::not_found("ORDER_NOT_FOUND", "no such order")
}

fn not_pending() -> Error {
    Error::FailedPrecondition {
        reason: "ORDER_NOT_PENDING",
        message: "the order was already fulfilled or cancelled".into(),
    }
}

fn precondition(reason: &'static str, message: &str) -> Error {
    Error::FailedPrecondition { reason, message: message.into() }
}

pub fn parse_order_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| Error::invalid("INVALID_ID", "order_id", format!("`{id}` is not an order id")))
}

#[derive(Clone)]
pub struct RedemptionService {
    pool: DbPool,
}

impl RedemptionService {
    pub fn new(pool: DbPool) -> Self {
        Self { pool }
    }

    /// Redeems `quantity` units (0 means 1) for `user`; idempotent by `request_id`.
    pub async fn redeem(
        &self,
        user: Uuid,
        item_id: &str,
        quantity: i32,
        request_id: &str,
        details: serde_json::Map<String, serde_json::Value>,
    ) -> Result<OrderRow> {
        let item_id = parse_item_id(item_id)?;
        let quantity = if quantity == 0 { 1 } else { quantity };
        if !(1..=100).contains(&quantity) {
            return Err(Error::invalid("INVALID_ARGUMENT", "quantity", "quantity must be between 1 and 100"));
        }
        let request_id = Uuid::parse_str(request_id)
            .map_err(|_| Error::invalid("INVALID_ARGUMENT", "request_id", "request_id must be a UUID"))?;
        let details = serde_json::Value::Object(details);
        if details.to_string().len() > MAX_DETAILS_BYTES {
            return Err(Error::invalid("INVALID_ARGUMENT", "details", "details are limited to 4 KiB of JSON"));
        }
        let mut conn = self.pool.get().await?;
        conn.transaction(async |conn| {
            // Retries of one request wait for each other, then find the first order.
            diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 1))")
                .bind::<Text, _>(format!("{user}:{request_id}"))
                .execute(conn)
                .await?;
            if let Some(earlier) = orders::by_request(conn, user, request_id).await? {
                let same =
                    earlier.catalog_item_id == item_id && earlier.quantity == quantity && earlier.details == details;
                return if same {
                    Ok(earlier)
                } else {
                    Err(Error::already_exists("IDEMPOTENCY_KEY_REUSED", "request_id was used with a different body"))
                };
            }
            // Lock order: the item, then (inside the ledger) the user's account.
            let item = items::get_for_update(conn, item_id).await?.ok_or_else(item_not_found)?;
            let now = Utc::now();
            let offered = item.status == "active"
                && item.starts_at.is_none_or(|s| s <= now)
                && item.ends_at.is_none_or(|e| e > now);
            if !offered {
                return Err(precondition(
                    "CATALOG_ITEM_UNAVAILABLE",
                    "the item is disabled or outside its active window",
                ));
            }
            let tier = catalog_tiers::member_tier(conn, user).await?;
            if !catalog_tiers::eligible(&item.eligible_tier_ids, tier) {
                return Err(precondition("TIER_NOT_ELIGIBLE", "the caller's tier may not redeem this item"));
            }
            if !item.unlimited_stock && item.stock < i64::from(quantity) {
                return Err(precondition("OUT_OF_STOCK", "not enough units left"));
            }
            if item.per_user_limit > 0 {
                let mine = orders::units_redeemed(conn, user, item_id).await?;
                if mine + i64::from(quantity) > i64::from(item.per_user_limit) {
                    return Err(precondition(
                        "REDEMPTION_LIMIT_REACHED",
                        "the per-user limit of this item would be exceeded",
                    ));
                }
            }
            let points = item
                .points_cost
                .checked_mul(i64::from(quantity))
                .ok_or_else(|| Error::invalid("INVALID_ARGUMENT", "quantity", "the total cost is out of range"))?;
            items::move_stock(conn, item_id, -i64::from(quantity), i64::from(quantity)).await?;
            let order_id = Uuid::now_v7();
            let debit = ledger::post(
                conn,
                NewTransaction {
                    kind: TransactionKind::Redemption,
                    user_id: user,
                    event_id: None,
                    order_id: Some(order_id),
                    payout_id: None,
                    reversed_transaction_id: None,
                    reason: None,
                    actor_user_id: Some(user),
                    postings: vec![
                        Posting { account: Account::User(user), points: -points, rule: None },
                        Posting { account: Account::Redemptions, points, rule: None },
                    ],
                },
            )
            .await?;
            orders::insert(
                conn,
                &OrderRow {
                    id: order_id,
                    user_id: user,
                    catalog_item_id: item_id,
                    item_name: item.name.clone(),
                    quantity,
                    points,
                    status: "pending".into(),
                    details: details.clone(),
                    fulfillment_reference: String::new(),
                    cancel_reason: String::new(),
                    debit_transaction_id: debit,
                    refund_transaction_id: None,
                    request_id,
                    created_at: now,
                    fulfilled_at: None,
                    cancelled_at: None,
                },
            )
            .await
        })
        .await
    }

    pub async fn list(&self, filter: OrderFilter, page_size: i32, page_token: &str) -> Result<(Vec<OrderRow>, String)> {
        let page = Page::parse(page_size, page_token)?;
        let mut conn = self.pool.get().await?;
        let rows = orders::list(&mut conn, &filter, page.after, page.fetch()).await?;
        Ok(page.finish(rows, |r| (r.created_at, r.id)))
    }

    /// One order; `owner` restricts it to that user's (another's is `ORDER_NOT_FOUND`).
    pub async fn get(&self, id: &str, owner: Option<Uuid>) -> Result<OrderRow> {
        let id = parse_order_id(id)?;
        let mut conn = self.pool.get().await?;
        let row = orders::get(&mut conn, id).await?.ok_or_else(order_not_found)?;
        if owner.is_some_and(|o| o != row.user_id) {
            return Err(order_not_found());
        }
        Ok(row)
    }

    pub async fn fulfill(&self, id: &str, reference: &str) -> Result<OrderRow> {
        let id = parse_order_id(id)?;
        if reference.chars().count() > 500 {
            return Err(Error::invalid("INVALID_ARGUMENT", "fulfillment_reference", "at most 500 characters"));
        }
        let mut conn = self.pool.get().await?;
        conn.transaction(async |conn| {
            let order = orders::get_for_update(conn, id).await?.ok_or_else(order_not_found)?;
            if order.status != "pending" {
                return Err(not_pending());
            }
            orders::mark_fulfilled(conn, id, reference.trim(), Utc::now()).await
        })
        .await
    }

    /// Cancels a pending order: refund (points back to their lots) and units back, atomically.
    pub async fn cancel(&self, id: &str, reason: &str, actor: Uuid) -> Result<OrderRow> {
        let id = parse_order_id(id)?;
        let reason = reason.trim().to_string();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(Error::invalid("INVALID_ARGUMENT", "reason", "a reason of 1 to 500 characters is required"));
        }
        let mut conn = self.pool.get().await?;
        conn.transaction(async |conn| {
            let order = orders::get_for_update(conn, id).await?.ok_or_else(order_not_found)?;
            if order.status != "pending" {
                return Err(not_pending());
            }
            // Same lock order as redeeming: the item, then the user's account.
            items::get_for_update(conn, order.catalog_item_id).await?.ok_or_else(item_not_found)?;
            let refund = ledger::reverse(
                conn,
                order.debit_transaction_id,
                TransactionKind::Refund,
                Some(reason.clone()),
                Some(actor),
            )
            .await?;
            items::move_stock(conn, order.catalog_item_id, i64::from(order.quantity), -i64::from(order.quantity))
                .await?;
            let now: DateTime<Utc> = Utc::now();
            orders::mark_cancelled(conn, id, &reason, refund, now).await
        })
        .await
    }
}
