//! The ledger's read-side SQL: listings, lots, balances' details and reports. No rules here.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::{
    prelude::*,
    sql_types::{BigInt, Date, Nullable, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::store::TransactionRow;
use crate::{
    db::schema::{loyalty_lots, loyalty_transactions as txs, users},
    error::Result,
};

/// Filters of a transaction listing.
#[derive(Debug, Clone, Default)]
pub struct TransactionFilter {
    pub user_id: Option<Uuid>,
    pub kind: Option<&'static str>,
    pub partner_id: Option<Uuid>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

/// Transactions newest first, after the `(created_at, id)` cursor.
pub async fn list_transactions(
    conn: &mut AsyncPgConnection,
    f: &TransactionFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<TransactionRow>> {
    let mut q = txs::table.select(TransactionRow::as_select()).into_boxed();
    if let Some(user) = f.user_id {
        q = q.filter(txs::user_id.eq(user));
    }
    if let Some(kind) = f.kind {
        q = q.filter(txs::kind.eq(kind));
    }
    if let Some(partner) = f.partner_id {
        q = q.filter(txs::partner_id.eq(partner));
    }
    if let Some(at) = f.created_after {
        q = q.filter(txs::created_at.ge(at));
    }
    if let Some(at) = f.created_before {
        q = q.filter(txs::created_at.lt(at));
    }
    if let Some((at, id)) = after {
        q = q.filter(txs::created_at.lt(at).or(txs::created_at.eq(at).and(txs::id.lt(id))));
    }
    Ok(q.order((txs::created_at.desc(), txs::id.desc())).limit(limit).load(conn).await?)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = loyalty_lots)]
pub struct LotRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub transaction_id: Uuid,
    pub earned_points: i64,
    pub remaining_points: i64,
    pub earned_at: DateTime<Utc>,
    pub expire_at: Option<DateTime<Utc>>,
}

/// Where lots that never expire sort: after every dated lot.
pub fn never() -> DateTime<Utc> {
    DateTime::from_timestamp(253_402_214_400, 0).expect("9999-12-31 is a valid time")
}

/// A user's lots, soonest expiry first (never-expiring last), after the `(expiry, id)` cursor.
pub async fn list_lots(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    include_exhausted: bool,
    expire_before: Option<DateTime<Utc>>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<LotRow>> {
    use diesel::dsl::sql;
    let key = sql::<Timestamptz>("coalesce(expire_at, '9999-12-31T00:00:00Z'::timestamptz)");
    let mut q = loyalty_lots::table.filter(loyalty_lots::user_id.eq(user_id)).select(LotRow::as_select()).into_boxed();
    if !include_exhausted {
        q = q.filter(loyalty_lots::remaining_points.gt(0));
    }
    if let Some(before) = expire_before {
        q = q.filter(loyalty_lots::expire_at.lt(before));
    }
    if let Some((at, id)) = after {
        q = q.filter(key.clone().gt(at).or(key.clone().eq(at).and(loyalty_lots::id.gt(id))));
    }
    Ok(q.order((key.asc(), loyalty_lots::id.asc())).limit(limit).load(conn).await?)
}

pub async fn user_exists(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<bool> {
    Ok(users::table.find(user_id).select(users::id).first::<Uuid>(conn).await.optional()?.is_some())
}

#[derive(QueryableByName)]
struct Sum {
    #[diesel(sql_type = BigInt)]
    points: i64,
}

/// Awards and positive adjustments, net of reversals.
pub async fn lifetime_earned(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<i64> {
    let row: Sum = diesel::sql_query(
        "SELECT coalesce(sum(points), 0)::bigint AS points FROM loyalty_transactions WHERE user_id = $1 \
         AND (kind IN ('award', 'reversal') OR (kind = 'adjustment' AND points > 0))",
    )
    .bind::<SqlUuid, _>(user_id)
    .get_result(conn)
    .await?;
    Ok(row.points)
}

#[derive(QueryableByName)]
pub struct NextExpiry {
    #[diesel(sql_type = BigInt)]
    pub points: i64,
    #[diesel(sql_type = Timestamptz)]
    pub expire_at: DateTime<Utc>,
}

/// The points expiring next and when.
pub async fn next_expiry(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<Option<NextExpiry>> {
    Ok(diesel::sql_query(
        "SELECT sum(remaining_points)::bigint AS points, expire_at FROM loyalty_lots \
         WHERE user_id = $1 AND remaining_points > 0 AND expire_at IS NOT NULL \
         GROUP BY expire_at ORDER BY expire_at LIMIT 1",
    )
    .bind::<SqlUuid, _>(user_id)
    .get_result(conn)
    .await
    .optional()?)
}

#[derive(QueryableByName)]
pub struct IssuanceRow {
    #[diesel(sql_type = Uuid_)]
    pub partner_id: Uuid,
    #[diesel(sql_type = Date)]
    pub day: NaiveDate,
    #[diesel(sql_type = BigInt)]
    pub awarded: i64,
    #[diesel(sql_type = BigInt)]
    pub reversed: i64,
    #[diesel(sql_type = BigInt)]
    pub events: i64,
}
type Uuid_ = SqlUuid;

/// Points issued per partner per day (in `time_zone`), from the transactions themselves: no
/// running total row is updated by awards. Ordered by day then partner, after the cursor.
pub async fn partner_issuance(
    conn: &mut AsyncPgConnection,
    time_zone: &str,
    start: NaiveDate,
    end: NaiveDate,
    partner: Option<Uuid>,
    after: Option<(NaiveDate, Uuid)>,
    limit: i64,
) -> Result<Vec<IssuanceRow>> {
    Ok(diesel::sql_query(
        "SELECT partner_id, day, awarded, reversed, events FROM ( \
           SELECT partner_id, (created_at AT TIME ZONE $1)::date AS day, \
                  coalesce(sum(points) FILTER (WHERE kind = 'award'), 0)::bigint AS awarded, \
                  coalesce(-sum(points) FILTER (WHERE kind = 'reversal'), 0)::bigint AS reversed, \
                  count(*) FILTER (WHERE kind = 'award') AS events \
           FROM loyalty_transactions \
           WHERE partner_id IS NOT NULL AND ($4::uuid IS NULL OR partner_id = $4) \
             AND created_at >= ($2::date)::timestamp AT TIME ZONE $1 \
             AND created_at < ($3::date + 1)::timestamp AT TIME ZONE $1 \
           GROUP BY 1, 2) r \
         WHERE $5::date IS NULL OR (day, partner_id) > ($5::date, $6::uuid) \
         ORDER BY day, partner_id LIMIT $7",
    )
    .bind::<Text, _>(time_zone)
    .bind::<Date, _>(start)
    .bind::<Date, _>(end)
    .bind::<Nullable<SqlUuid>, _>(partner)
    .bind::<Nullable<Date>, _>(after.map(|a| a.0))
    .bind::<Nullable<SqlUuid>, _>(after.map(|a| a.1))
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?)
}

#[derive(QueryableByName)]
pub struct LiabilityRow {
    #[diesel(sql_type = BigInt)]
    pub outstanding: i64,
    #[diesel(sql_type = BigInt)]
    pub held: i64,
    #[diesel(sql_type = BigInt)]
    pub members: i64,
    #[diesel(sql_type = BigInt)]
    pub expiring_30_days: i64,
    #[diesel(sql_type = Timestamptz)]
    pub as_of: DateTime<Utc>,
}

/// What the programme owes its members, in one snapshot.
pub async fn liabilities(conn: &mut AsyncPgConnection) -> Result<LiabilityRow> {
    Ok(diesel::sql_query(
        "SELECT \
           coalesce((SELECT sum(balance) FROM loyalty_accounts WHERE account_type = 'user'), 0)::bigint AS outstanding, \
           coalesce((SELECT sum(balance) FROM loyalty_accounts WHERE account_type = 'user_hold'), 0)::bigint AS held, \
           (SELECT count(*) FROM loyalty_accounts WHERE account_type = 'user' AND balance > 0) AS members, \
           coalesce((SELECT sum(remaining_points) FROM loyalty_lots \
                     WHERE remaining_points > 0 AND expire_at < now() + interval '30 days'), 0)::bigint AS expiring_30_days, \
           now() AS as_of",
    )
    .get_result(conn)
    .await?)
}
