//! SQL for earning rules: one `loyalty_rules` row per rule (which version is current) and one
//! immutable `loyalty_rule_versions` row per version. No protobuf and no rules here.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    db::schema::{loyalty_rule_versions as v, loyalty_rules as r},
    error::Result,
};

/// Rule status values (= proto `RuleStatus`).
pub const STATUS_ACTIVE: i16 = 1;
pub const STATUS_DISABLED: i16 = 2;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = v)]
pub struct RuleVersionRow {
    pub rule_id: Uuid,
    pub version: i32,
    pub name: String,
    pub description: String,
    pub partner_id: Option<Uuid>,
    pub event_type: String,
    pub condition: String,
    pub fixed_points: Option<i64>,
    pub rate_points: Option<i64>,
    pub rate_per_amount_minor: Option<i64>,
    pub rate_currency: Option<String>,
    pub rounding: i16,
    pub tier_multipliers: serde_json::Value,
    pub caps: serde_json::Value,
    pub start_at: Option<DateTime<Utc>>,
    pub end_at: Option<DateTime<Utc>>,
    pub priority: i32,
    pub stacking: i16,
    pub status: i16,
    pub updater_user_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// A version with the creation time of its rule (the first version).
#[derive(Debug, Clone)]
pub struct RuleRow {
    pub version: RuleVersionRow,
    pub rule_created_at: DateTime<Utc>,
}

pub async fn insert_rule(conn: &mut AsyncPgConnection, row: &RuleVersionRow) -> Result<RuleRow> {
    let created_at: DateTime<Utc> = diesel::insert_into(r::table)
        .values((
            r::id.eq(row.rule_id),
            r::current_version.eq(row.version),
            r::created_at.eq(row.created_at),
        ))
        .returning(r::created_at)
        .get_result(conn)
        .await?;
    let version = diesel::insert_into(v::table)
        .values(row)
        .returning(RuleVersionRow::as_returning())
        .get_result(conn)
        .await?;
    Ok(RuleRow {
        version,
        rule_created_at: created_at,
    })
}

/// Locks the rule's row, so versions are made one at a time; its current version.
pub async fn current_version_for_update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<(i32, DateTime<Utc>)>> {
    Ok(r::table
        .find(id)
        .select((r::current_version, r::created_at))
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

pub async fn insert_version(
    conn: &mut AsyncPgConnection,
    row: &RuleVersionRow,
) -> Result<RuleVersionRow> {
    let inserted = diesel::insert_into(v::table)
        .values(row)
        .returning(RuleVersionRow::as_returning())
        .get_result(conn)
        .await?;
    diesel::update(r::table.find(row.rule_id))
        .set(r::current_version.eq(row.version))
        .execute(conn)
        .await?;
    Ok(inserted)
}

/// The given version, or the current one for `None`.
pub async fn get(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    version: Option<i32>,
) -> Result<Option<RuleRow>> {
    let mut query = r::table
        .inner_join(v::table.on(v::rule_id.eq(r::id)))
        .filter(r::id.eq(id))
        .into_boxed();
    query = match version {
        Some(n) => query.filter(v::version.eq(n)),
        None => query.filter(v::version.eq(r::current_version)),
    };
    let row: Option<(DateTime<Utc>, RuleVersionRow)> = query
        .select((r::created_at, RuleVersionRow::as_select()))
        .first(conn)
        .await
        .optional()?;
    Ok(row.map(|(rule_created_at, version)| RuleRow {
        version,
        rule_created_at,
    }))
}

pub async fn exists(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool> {
    Ok(diesel::select(diesel::dsl::exists(r::table.find(id)))
        .get_result(conn)
        .await?)
}

/// Filters of the rule listing.
#[derive(Default)]
pub struct RuleFilter {
    pub partner_id: Option<Uuid>,
    pub event_type: Option<String>,
    pub status: Option<i16>,
}

/// Current versions by priority (highest first), then creation, then id; `after` is the last
/// row of the previous page as (priority, created_at, id).
pub async fn list_current(
    conn: &mut AsyncPgConnection,
    filter: &RuleFilter,
    after: Option<(i32, DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<RuleRow>> {
    let mut query = r::table
        .inner_join(v::table.on(v::rule_id.eq(r::id).and(v::version.eq(r::current_version))))
        .into_boxed();
    if let Some(p) = filter.partner_id {
        query = query.filter(v::partner_id.eq(p).or(v::partner_id.is_null()));
    }
    if let Some(t) = &filter.event_type {
        query = query.filter(v::event_type.eq(t.clone()));
    }
    if let Some(s) = filter.status {
        query = query.filter(v::status.eq(s));
    }
    if let Some((priority, created, id)) = after {
        query = query.filter(
            v::priority
                .lt(priority)
                .or(v::priority.eq(priority).and(r::created_at.gt(created)))
                .or(v::priority
                    .eq(priority)
                    .and(r::created_at.eq(created))
                    .and(r::id.gt(id))),
        );
    }
    let rows: Vec<(DateTime<Utc>, RuleVersionRow)> = query
        .order((v::priority.desc(), r::created_at.asc(), r::id.asc()))
        .limit(limit)
        .select((r::created_at, RuleVersionRow::as_select()))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(rule_created_at, version)| RuleRow {
            version,
            rule_created_at,
        })
        .collect())
}

/// The versions of a rule, newest first, below `before` when given.
pub async fn versions(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    before: Option<i32>,
    limit: i64,
) -> Result<Vec<RuleRow>> {
    let mut query = r::table
        .inner_join(v::table.on(v::rule_id.eq(r::id)))
        .filter(r::id.eq(id))
        .into_boxed();
    if let Some(b) = before {
        query = query.filter(v::version.lt(b));
    }
    let rows: Vec<(DateTime<Utc>, RuleVersionRow)> = query
        .order(v::version.desc())
        .limit(limit)
        .select((r::created_at, RuleVersionRow::as_select()))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(rule_created_at, version)| RuleRow {
            version,
            rule_created_at,
        })
        .collect())
}

/// The current versions of the active rules that may apply to an event of this partner and type.
pub async fn candidates(
    conn: &mut AsyncPgConnection,
    partner_id: Uuid,
    event_type: &str,
) -> Result<Vec<RuleRow>> {
    let rows: Vec<(DateTime<Utc>, RuleVersionRow)> = r::table
        .inner_join(v::table.on(v::rule_id.eq(r::id).and(v::version.eq(r::current_version))))
        .filter(v::event_type.eq(event_type))
        .filter(v::status.eq(STATUS_ACTIVE))
        .filter(v::partner_id.eq(partner_id).or(v::partner_id.is_null()))
        .select((r::created_at, RuleVersionRow::as_select()))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(rule_created_at, version)| RuleRow {
            version,
            rule_created_at,
        })
        .collect())
}

/// Whether any rule's current version names the tier in its multipliers.
pub async fn tier_referenced(conn: &mut AsyncPgConnection, tier_id: Uuid) -> Result<bool> {
    let needle = serde_json::json!([{ "tier_id": tier_id.to_string() }]);
    let query = r::table
        .inner_join(v::table.on(v::rule_id.eq(r::id).and(v::version.eq(r::current_version))))
        .filter(v::tier_multipliers.contains(needle));
    Ok(diesel::select(diesel::dsl::exists(query))
        .get_result(conn)
        .await?)
}
