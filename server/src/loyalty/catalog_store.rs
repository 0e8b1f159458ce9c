//! SQL of catalog items. No protobuf types and no business rules here.

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    result::{DatabaseErrorKind, Error as DieselError},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    db::schema::{loyalty_catalog_items as items, loyalty_orders as orders},
    error::{Error, Result},
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = items, treat_none_as_null = true)]
pub struct ItemRow {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub image_url: String,
    pub points_cost: i64,
    pub unlimited_stock: bool,
    pub stock: i64,
    pub per_user_limit: i32,
    pub eligible_tier_ids: Vec<Uuid>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub status: String,
    pub redeemed_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub async fn insert(conn: &mut AsyncPgConnection, row: &ItemRow) -> Result<ItemRow> {
    Ok(diesel::insert_into(items::table).values(row).returning(ItemRow::as_returning()).get_result(conn).await?)
}

pub async fn update(conn: &mut AsyncPgConnection, row: &ItemRow) -> Result<ItemRow> {
    Ok(diesel::update(items::table.find(row.id)).set(row).returning(ItemRow::as_returning()).get_result(conn).await?)
}

pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<ItemRow>> {
    Ok(items::table.find(id).select(ItemRow::as_select()).first(conn).await.optional()?)
}

/// The item, locked until the transaction ends: redemptions of one item run one at a time.
pub async fn get_for_update(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<ItemRow>> {
    Ok(items::table.find(id).select(ItemRow::as_select()).for_update().first(conn).await.optional()?)
}

/// Deletes an item nobody ever redeemed; `false` when there is no such item.
pub async fn delete_unused(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool> {
    let used: i64 = orders::table.filter(orders::catalog_item_id.eq(id)).count().get_result(conn).await?;
    if used > 0 {
        return Err(Error::FailedPrecondition {
            reason: "CATALOG_ITEM_IN_USE",
            message: "the item has orders; disable it instead".into(),
        });
    }
    match diesel::delete(items::table.find(id)).execute(conn).await {
        Ok(n) => Ok(n == 1),
        // An order placed meanwhile.
        Err(DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)) => Err(Error::FailedPrecondition {
            reason: "CATALOG_ITEM_IN_USE",
            message: "the item has orders; disable it instead".into(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// Moves stock and the redeemed count by the given amounts (a redemption: -q, +q; a
/// cancellation: +q, -q; an administrator: delta, 0). The CHECK refuses a negative stock.
pub async fn move_stock(conn: &mut AsyncPgConnection, id: Uuid, stock: i64, redeemed: i64) -> Result<Option<ItemRow>> {
    let result = diesel::update(items::table.find(id))
        .set((
            items::stock.eq(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                "CASE WHEN unlimited_stock THEN stock ELSE stock + ",
            )
            .bind::<diesel::sql_types::BigInt, _>(stock)
            .sql(" END")),
            items::redeemed_count.eq(items::redeemed_count + redeemed),
            items::updated_at.eq(Utc::now()),
        ))
        .returning(ItemRow::as_returning())
        .get_result(conn)
        .await
        .optional();
    match result {
        Ok(row) => Ok(row),
        Err(DieselError::DatabaseError(DatabaseErrorKind::CheckViolation, _)) => Err(Error::FailedPrecondition {
            reason: "INSUFFICIENT_STOCK",
            message: "the stock would go negative".into(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// Filters of an item listing.
#[derive(Debug, Clone, Default)]
pub struct ItemFilter {
    pub query: Option<String>,
    pub status: Option<&'static str>,
    pub tier_id: Option<Uuid>,
    /// Only what is offered at this time (active and within the window).
    pub offered_at: Option<DateTime<Utc>>,
}

fn filtered(f: &ItemFilter) -> items::BoxedQuery<'static, diesel::pg::Pg> {
    let mut q = items::table.into_boxed();
    if let Some(text) = &f.query {
        let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        q = q.filter(items::name.ilike(format!("%{escaped}%")));
    }
    if let Some(status) = f.status {
        q = q.filter(items::status.eq(status));
    }
    if let Some(tier) = f.tier_id {
        q = q.filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>("(cardinality(eligible_tier_ids) = 0 OR ")
                .bind::<diesel::sql_types::Uuid, _>(tier)
                .sql(" = ANY(eligible_tier_ids))"),
        );
    }
    if let Some(now) = f.offered_at {
        q = q
            .filter(items::status.eq("active"))
            .filter(items::starts_at.is_null().or(items::starts_at.le(now)))
            .filter(items::ends_at.is_null().or(items::ends_at.gt(now)));
    }
    q
}

/// Items by name, after the `(name, id)` cursor.
pub async fn list_by_name(
    conn: &mut AsyncPgConnection,
    f: &ItemFilter,
    after: Option<(String, Uuid)>,
    limit: i64,
) -> Result<Vec<ItemRow>> {
    let mut q = filtered(f);
    if let Some((name, id)) = after {
        q = q.filter(items::name.gt(name.clone()).or(items::name.eq(name).and(items::id.gt(id))));
    }
    Ok(q.order((items::name.asc(), items::id.asc())).limit(limit).select(ItemRow::as_select()).load(conn).await?)
}

/// Items by points cost, after the `(cost, id)` cursor, optionally at most `max_cost`.
pub async fn list_by_cost(
    conn: &mut AsyncPgConnection,
    f: &ItemFilter,
    max_cost: Option<i64>,
    after: Option<(i64, Uuid)>,
    limit: i64,
) -> Result<Vec<ItemRow>> {
    let mut q = filtered(f);
    if let Some(max) = max_cost {
        q = q.filter(items::points_cost.le(max));
    }
    if let Some((cost, id)) = after {
        q = q.filter(items::points_cost.gt(cost).or(items::points_cost.eq(cost).and(items::id.gt(id))));
    }
    Ok(q.order((items::points_cost.asc(), items::id.asc()))
        .limit(limit)
        .select(ItemRow::as_select())
        .load(conn)
        .await?)
}
