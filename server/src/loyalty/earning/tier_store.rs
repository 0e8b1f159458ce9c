//! SQL for tiers, members' current tier, tier changes and window points. No protobuf here.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    db::schema::{
        loyalty_events as e, loyalty_tier_changes as tc, loyalty_tiers as t,
        loyalty_user_tiers as ut,
    },
    error::Result,
};

/// Tier change reasons (= proto `TierChangeReason`).
pub const REASON_THRESHOLD_CROSSED: i16 = 1;
pub const REASON_REEVALUATION: i16 = 2;
pub const REASON_TIER_CONFIGURATION: i16 = 3;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = t)]
pub struct TierRow {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub threshold_points: i64,
    pub earning_multiplier_bps: i32,
    pub perks: Vec<String>,
    pub image_url: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = tc)]
pub struct TierChangeRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub from_tier_id: Option<Uuid>,
    pub to_tier_id: Option<Uuid>,
    pub reason: i16,
    pub window_points: i64,
    pub created_at: DateTime<Utc>,
}

/// Every tier, lowest threshold first (tiers are few).
pub async fn all(conn: &mut AsyncPgConnection) -> Result<Vec<TierRow>> {
    Ok(t::table
        .order(t::threshold_points.asc())
        .select(TierRow::as_select())
        .load(conn)
        .await?)
}

pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<TierRow>> {
    Ok(t::table
        .find(id)
        .select(TierRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub async fn insert(conn: &mut AsyncPgConnection, row: &TierRow) -> Result<TierRow> {
    Ok(diesel::insert_into(t::table)
        .values(row)
        .returning(TierRow::as_returning())
        .get_result(conn)
        .await?)
}

pub async fn update(conn: &mut AsyncPgConnection, row: &TierRow) -> Result<TierRow> {
    Ok(diesel::update(t::table.find(row.id))
        .set(row)
        .returning(TierRow::as_returning())
        .get_result(conn)
        .await?)
}

pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool> {
    Ok(diesel::delete(t::table.find(id)).execute(conn).await? == 1)
}

pub async fn held_by_anyone(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool> {
    Ok(
        diesel::select(diesel::dsl::exists(ut::table.filter(ut::tier_id.eq(id))))
            .get_result(conn)
            .await?,
    )
}

/// A member's tier row: (tier, since).
pub async fn user_tier(
    conn: &mut AsyncPgConnection,
    user: Uuid,
) -> Result<Option<(Option<Uuid>, DateTime<Utc>)>> {
    Ok(ut::table
        .find(user)
        .select((ut::tier_id, ut::since))
        .first(conn)
        .await
        .optional()?)
}

/// Creates the member's tier row if missing and locks it: tier changes of one member run one
/// at a time. Returns the current tier.
pub async fn lock_user_tier(conn: &mut AsyncPgConnection, user: Uuid) -> Result<Option<Uuid>> {
    diesel::insert_into(ut::table)
        .values(ut::user_id.eq(user))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(ut::table
        .find(user)
        .select(ut::tier_id)
        .for_update()
        .first(conn)
        .await?)
}

/// Moves a member (whose row is locked) to `to` and records the change.
pub async fn change_tier(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    from: Option<Uuid>,
    to: Option<Uuid>,
    reason: i16,
    window_points: i64,
) -> Result<()> {
    let now = Utc::now();
    diesel::update(ut::table.find(user))
        .set((
            ut::tier_id.eq(to),
            ut::since.eq(now),
            ut::updated_at.eq(now),
        ))
        .execute(conn)
        .await?;
    diesel::insert_into(tc::table)
        .values(TierChangeRow {
            id: Uuid::new_v4(),
            user_id: user,
            from_tier_id: from,
            to_tier_id: to,
            reason,
            window_points,
            created_at: now,
        })
        .execute(conn)
        .await?;
    Ok(())
}

/// Points the member earned from events processed since `since` (reversed events excluded).
pub async fn window_points(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    since: DateTime<Utc>,
) -> Result<i64> {
    #[derive(QueryableByName)]
    struct Sum {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        points: i64,
    }
    let sum: Sum = diesel::sql_query(
        "SELECT COALESCE(SUM(points), 0)::bigint AS points FROM loyalty_events \
         WHERE resolved_user_id = $1 AND processed_at >= $2 AND status = $3",
    )
    .bind::<diesel::sql_types::Uuid, _>(user)
    .bind::<diesel::sql_types::Timestamptz, _>(since)
    .bind::<diesel::sql_types::SmallInt, _>(super::event_store::STATUS_PROCESSED)
    .get_result(conn)
    .await?;
    Ok(sum.points)
}

/// A page of a member's changes, newest first.
pub async fn changes(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    after: Option<crate::paging::Cursor>,
    limit: i64,
) -> Result<Vec<TierChangeRow>> {
    let mut query = tc::table.filter(tc::user_id.eq(user)).into_boxed();
    if let Some((at, id)) = after {
        query = query.filter(
            tc::created_at
                .lt(at)
                .or(tc::created_at.eq(at).and(tc::id.lt(id))),
        );
    }
    Ok(query
        .order((tc::created_at.desc(), tc::id.desc()))
        .limit(limit)
        .select(TierChangeRow::as_select())
        .load(conn)
        .await?)
}

/// Members who hold a tier or earned points in the window: those a re-evaluation looks at.
pub async fn members_to_evaluate(
    conn: &mut AsyncPgConnection,
    since: DateTime<Utc>,
) -> Result<Vec<Uuid>> {
    let mut users: Vec<Uuid> = ut::table.select(ut::user_id).load(conn).await?;
    let earners: Vec<Option<Uuid>> = e::table
        .filter(e::processed_at.ge(since))
        .filter(e::resolved_user_id.is_not_null())
        .select(e::resolved_user_id)
        .distinct()
        .load(conn)
        .await?;
    users.extend(earners.into_iter().flatten());
    users.sort();
    users.dedup();
    Ok(users)
}

/// Whether a catalog item restricts redemption to the tier (`eligible_tier_ids`).
pub async fn catalog_references(conn: &mut AsyncPgConnection, tier: Uuid) -> Result<bool> {
    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        found: bool,
    }
    let row: Found =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM loyalty_catalog_items WHERE $1 = ANY (eligible_tier_ids)) AS found")
            .bind::<diesel::sql_types::Uuid, _>(tier)
            .get_result(conn)
            .await?;
    Ok(row.found)
}
