//! SQL of payouts and their quotes. No rules here: `payout_service` decides, this only reads
//! and writes rows (inside the caller's transaction where it matters).

use chrono::{DateTime, Utc};
use diesel::{
    BoolExpressionMethods, ExpressionMethods, OptionalExtension, QueryDsl, Queryable, Selectable, SelectableHelper,
    sql_types::{BigInt, Double},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    db::schema::{loyalty_payout_quotes, loyalty_payouts, users},
    error::Result,
    paging::Cursor,
};

#[derive(Debug, Clone, Queryable, Selectable, diesel::Insertable)]
#[diesel(table_name = loyalty_payout_quotes)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct QuoteRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub points: i64,
    pub amount_minor: i64,
    pub currency: String,
    pub rate_points: i64,
    pub rate_amount_minor: i64,
    pub mobile: String,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable, diesel::QueryableByName)]
#[diesel(table_name = loyalty_payouts)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct PayoutRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub quote_id: Uuid,
    pub points: i64,
    pub amount_minor: i64,
    pub currency: String,
    pub mobile: String,
    pub provider: String,
    pub reference_id: Uuid,
    pub provider_transaction_id: Option<String>,
    pub status: String,
    pub phase: String,
    pub failure_reason: Option<String>,
    pub submit_count: i32,
    pub status_check_count: i32,
    pub last_status_check_at: Option<DateTime<Utc>>,
    pub hold_transaction_id: Uuid,
    pub settle_transaction_id: Option<Uuid>,
    pub resolver_user_id: Option<Uuid>,
    pub resolution_note: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// A new payout, inserted with its hold.
#[derive(Debug, Clone, diesel::Insertable)]
#[diesel(table_name = loyalty_payouts)]
pub struct NewPayout {
    pub id: Uuid,
    pub user_id: Uuid,
    pub quote_id: Uuid,
    pub points: i64,
    pub amount_minor: i64,
    pub currency: String,
    pub mobile: String,
    pub provider: String,
    pub reference_id: Uuid,
    pub status: String,
    pub phase: String,
    pub hold_transaction_id: Uuid,
}

/// The user's mobile number and whether it is verified.
pub async fn user_mobile(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<Option<(Option<String>, bool)>> {
    Ok(users::table
        .find(user_id)
        .select((users::mobile, users::mobile_verified))
        .first(conn)
        .await
        .optional()?)
}

pub async fn insert_quote(conn: &mut AsyncPgConnection, quote: &QuoteRow) -> Result<()> {
    diesel::insert_into(loyalty_payout_quotes::table).values(quote).execute(conn).await?;
    Ok(())
}

pub async fn get_quote(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<QuoteRow>> {
    Ok(loyalty_payout_quotes::table.find(id).select(QuoteRow::as_select()).first(conn).await.optional()?)
}

/// Inserts the payout unless its quote already has one; `false` when it had.
pub async fn insert_payout(conn: &mut AsyncPgConnection, payout: &NewPayout) -> Result<bool> {
    let n = diesel::insert_into(loyalty_payouts::table)
        .values(payout)
        .on_conflict(loyalty_payouts::quote_id)
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(n == 1)
}

pub async fn by_quote(conn: &mut AsyncPgConnection, quote_id: Uuid) -> Result<Option<PayoutRow>> {
    Ok(loyalty_payouts::table
        .filter(loyalty_payouts::quote_id.eq(quote_id))
        .select(PayoutRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<PayoutRow>> {
    Ok(loyalty_payouts::table.find(id).select(PayoutRow::as_select()).first(conn).await.optional()?)
}

pub async fn get_for_update(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<PayoutRow>> {
    Ok(loyalty_payouts::table.find(id).select(PayoutRow::as_select()).for_update().first(conn).await.optional()?)
}

pub async fn by_reference(conn: &mut AsyncPgConnection, provider: &str, reference_id: Uuid) -> Result<Option<PayoutRow>> {
    Ok(loyalty_payouts::table
        .filter(loyalty_payouts::provider.eq(provider))
        .filter(loyalty_payouts::reference_id.eq(reference_id))
        .select(PayoutRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Filters of the listings.
#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    pub user_id: Option<Uuid>,
    pub status: Option<&'static str>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

/// Newest first, keyset-paged on `(created_at, id)`.
pub async fn list(conn: &mut AsyncPgConnection, filter: &ListFilter, after: Option<Cursor>, limit: i64) -> Result<Vec<PayoutRow>> {
    let mut q = loyalty_payouts::table.select(PayoutRow::as_select()).into_boxed();
    if let Some(user) = filter.user_id {
        q = q.filter(loyalty_payouts::user_id.eq(user));
    }
    if let Some(status) = filter.status {
        q = q.filter(loyalty_payouts::status.eq(status));
    }
    if let Some(t) = filter.created_after {
        q = q.filter(loyalty_payouts::created_at.ge(t));
    }
    if let Some(t) = filter.created_before {
        q = q.filter(loyalty_payouts::created_at.lt(t));
    }
    if let Some((at, id)) = after {
        q = q.filter(
            loyalty_payouts::created_at
                .lt(at)
                .or(loyalty_payouts::created_at.eq(at).and(loyalty_payouts::id.lt(id))),
        );
    }
    Ok(q.order((loyalty_payouts::created_at.desc(), loyalty_payouts::id.desc())).limit(limit).load(conn).await?)
}

/// Claims up to `limit` due pending payouts for `lease_secs` (`FOR UPDATE SKIP LOCKED`: workers
/// of several instances never take the same one; a worker that dies leaves the lease to run out).
pub async fn claim(conn: &mut AsyncPgConnection, limit: i64, lease_secs: f64) -> Result<Vec<PayoutRow>> {
    Ok(diesel::sql_query(
        "UPDATE loyalty_payouts p
            SET next_attempt_at = now() + make_interval(secs => $2)
           FROM (SELECT id FROM loyalty_payouts
                  WHERE status = 'pending' AND next_attempt_at <= now()
                  ORDER BY next_attempt_at
                  LIMIT $1
                  FOR UPDATE SKIP LOCKED) due
          WHERE p.id = due.id
      RETURNING p.*",
    )
    .bind::<BigInt, _>(limit)
    .bind::<Double, _>(lease_secs)
    .load(conn)
    .await?)
}

/// Counts a transfer request.
pub async fn count_submit(conn: &mut AsyncPgConnection, id: Uuid) -> Result<()> {
    diesel::update(loyalty_payouts::table.find(id))
        .set(loyalty_payouts::submit_count.eq(loyalty_payouts::submit_count + 1))
        .execute(conn)
        .await?;
    Ok(())
}

/// Counts a status read.
pub async fn count_status_check(conn: &mut AsyncPgConnection, id: Uuid) -> Result<()> {
    diesel::update(loyalty_payouts::table.find(id))
        .set((
            loyalty_payouts::status_check_count.eq(loyalty_payouts::status_check_count + 1),
            loyalty_payouts::last_status_check_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// A pending payout stays pending in `phase`, next due at `next_attempt_at`.
pub async fn set_pending(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    phase: &str,
    next_attempt_at: DateTime<Utc>,
    last_error: Option<String>,
) -> Result<()> {
    diesel::update(loyalty_payouts::table.find(id))
        .set((
            loyalty_payouts::phase.eq(phase),
            loyalty_payouts::next_attempt_at.eq(next_attempt_at),
            loyalty_payouts::last_error.eq(last_error),
            loyalty_payouts::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_manual_review(conn: &mut AsyncPgConnection, id: Uuid, last_error: Option<String>) -> Result<()> {
    diesel::update(loyalty_payouts::table.find(id))
        .set((
            loyalty_payouts::status.eq("manual_review"),
            loyalty_payouts::last_error.eq(last_error),
            loyalty_payouts::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// A settled payout: `succeeded` (with the capture) or `failed` (with the release).
pub struct Settlement {
    pub status: &'static str,
    pub settle_transaction_id: Uuid,
    pub provider_transaction_id: Option<String>,
    pub failure_reason: Option<String>,
    pub resolver_user_id: Option<Uuid>,
    pub resolution_note: Option<String>,
}

pub async fn settle(conn: &mut AsyncPgConnection, id: Uuid, s: Settlement) -> Result<()> {
    diesel::update(loyalty_payouts::table.find(id))
        .set((
            loyalty_payouts::status.eq(s.status),
            loyalty_payouts::settle_transaction_id.eq(s.settle_transaction_id),
            loyalty_payouts::provider_transaction_id.eq(s.provider_transaction_id),
            loyalty_payouts::failure_reason.eq(s.failure_reason),
            loyalty_payouts::resolver_user_id.eq(s.resolver_user_id),
            loyalty_payouts::resolution_note.eq(s.resolution_note),
            loyalty_payouts::last_error.eq(None::<String>),
            loyalty_payouts::updated_at.eq(diesel::dsl::now),
            loyalty_payouts::completed_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn get_quote_for_update(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<QuoteRow>> {
    Ok(loyalty_payout_quotes::table.find(id).select(QuoteRow::as_select()).for_update().first(conn).await.optional()?)
}
