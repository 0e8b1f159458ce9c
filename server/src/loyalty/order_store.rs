//! SQL of redemption orders. No protobuf types and no business rules here.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{db::schema::loyalty_orders as orders, error::Result};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = orders)]
pub struct OrderRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub catalog_item_id: Uuid,
    pub item_name: String,
    pub quantity: i32,
    pub points: i64,
    pub status: String,
    pub details: serde_json::Value,
    pub fulfillment_reference: String,
    pub cancel_reason: String,
    pub debit_transaction_id: Uuid,
    pub refund_transaction_id: Option<Uuid>,
    pub request_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub fulfilled_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

pub async fn insert(conn: &mut AsyncPgConnection, row: &OrderRow) -> Result<OrderRow> {
    Ok(diesel::insert_into(orders::table).values(row).returning(OrderRow::as_returning()).get_result(conn).await?)
}

pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<OrderRow>> {
    Ok(orders::table.find(id).select(OrderRow::as_select()).first(conn).await.optional()?)
}

pub async fn get_for_update(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<OrderRow>> {
    Ok(orders::table.find(id).select(OrderRow::as_select()).for_update().first(conn).await.optional()?)
}

pub async fn by_request(conn: &mut AsyncPgConnection, user_id: Uuid, request_id: Uuid) -> Result<Option<OrderRow>> {
    Ok(orders::table
        .filter(orders::user_id.eq(user_id))
        .filter(orders::request_id.eq(request_id))
        .select(OrderRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Units of the item the user redeemed, cancelled orders excluded.
pub async fn units_redeemed(conn: &mut AsyncPgConnection, user_id: Uuid, item_id: Uuid) -> Result<i64> {
    let units: Option<i64> = orders::table
        .filter(orders::user_id.eq(user_id))
        .filter(orders::catalog_item_id.eq(item_id))
        .filter(orders::status.ne("cancelled"))
        .select(diesel::dsl::sum(orders::quantity))
        .first(conn)
        .await?;
    Ok(units.unwrap_or(0))
}

pub async fn mark_fulfilled(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    reference: &str,
    now: DateTime<Utc>,
) -> Result<OrderRow> {
    Ok(diesel::update(orders::table.find(id))
        .set((
            orders::status.eq("fulfilled"),
            orders::fulfillment_reference.eq(reference),
            orders::fulfilled_at.eq(now),
        ))
        .returning(OrderRow::as_returning())
        .get_result(conn)
        .await?)
}

pub async fn mark_cancelled(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    reason: &str,
    refund: Uuid,
    now: DateTime<Utc>,
) -> Result<OrderRow> {
    Ok(diesel::update(orders::table.find(id))
        .set((
            orders::status.eq("cancelled"),
            orders::cancel_reason.eq(reason),
            orders::refund_transaction_id.eq(refund),
            orders::cancelled_at.eq(now),
        ))
        .returning(OrderRow::as_returning())
        .get_result(conn)
        .await?)
}

/// Filters of an order listing.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub user_id: Option<Uuid>,
    pub catalog_item_id: Option<Uuid>,
    pub status: Option<&'static str>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

/// Orders newest first, after the `(created_at, id)` cursor.
pub async fn list(
    conn: &mut AsyncPgConnection,
    f: &OrderFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<OrderRow>> {
    let mut q = orders::table.select(OrderRow::as_select()).into_boxed();
    if let Some(user) = f.user_id {
        q = q.filter(orders::user_id.eq(user));
    }
    if let Some(item) = f.catalog_item_id {
        q = q.filter(orders::catalog_item_id.eq(item));
    }
    if let Some(status) = f.status {
        q = q.filter(orders::status.eq(status));
    }
    if let Some(at) = f.created_after {
        q = q.filter(orders::created_at.ge(at));
    }
    if let Some(at) = f.created_before {
        q = q.filter(orders::created_at.lt(at));
    }
    if let Some((at, id)) = after {
        q = q.filter(orders::created_at.lt(at).or(orders::created_at.eq(at).and(orders::id.lt(id))));
    }
    Ok(q.order((orders::created_at.desc(), orders::id.desc())).limit(limit).load(conn).await?)
}
