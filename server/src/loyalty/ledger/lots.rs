//! Lots: the points one user credit made, consumed first-in first-out by debits and expired as a
//! whole by the expiry job. Every lot change happens while the user's account row is locked by
//! the balance update of the same posting, so no two postings of a user race on their lots.

use std::sync::atomic::{AtomicU32, Ordering};

use diesel::{
    OptionalExtension, QueryableByName,
    sql_types::{BigInt, Integer, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::error::{Error, Result};

/// `loyalty.points_expire_after_months`, set once at start (`configure_expiry`); 0 means never.
static EXPIRE_AFTER_MONTHS: AtomicU32 = AtomicU32::new(12);

/// Sets the expiry policy of new lots (called by `serve` from the configuration).
pub fn configure_expiry(months: u32) {
    EXPIRE_AFTER_MONTHS.store(months, Ordering::Relaxed);
}

pub fn expiry_months() -> u32 {
    AtomicU32::load(&EXPIRE_AFTER_MONTHS, Ordering::Relaxed)
}

#[derive(QueryableByName)]
struct Taken {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = BigInt)]
    taken: i64,
}

/// Creates a lot of `points` for the user, expiring per the policy; returns its id.
pub async fn create(conn: &mut AsyncPgConnection, user_id: Uuid, transaction_id: Uuid, points: i64) -> Result<Uuid> {
    let id = Uuid::now_v7();
    diesel::sql_query(
        "INSERT INTO loyalty_lots (id, user_id, transaction_id, earned_points, remaining_points, expire_at) \
         VALUES ($1, $2, $3, $4, $4, CASE WHEN $5 = 0 THEN NULL ELSE now() + make_interval(months => $5) END)",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<SqlUuid, _>(user_id)
    .bind::<SqlUuid, _>(transaction_id)
    .bind::<BigInt, _>(points)
    .bind::<Integer, _>(expiry_months() as i32)
    .execute(conn)
    .await?;
    Ok(id)
}

/// Gives back up to `points` to a lot a debit consumed (a refund or release restores the points
/// where they came from, with their original expiry). Returns how many it took back: a lot never
/// holds more than it earned.
pub async fn restore(conn: &mut AsyncPgConnection, user_id: Uuid, lot_id: Uuid, points: i64) -> Result<i64> {
    let row: Option<Taken> = diesel::sql_query(
        "UPDATE loyalty_lots l SET remaining_points = l.remaining_points + LEAST($3, l.earned_points - l.remaining_points) \
         FROM (SELECT id, earned_points - remaining_points AS room FROM loyalty_lots WHERE id = $1) o \
         WHERE l.id = o.id AND l.user_id = $2 RETURNING l.id, LEAST($3, o.room) AS taken",
    )
    .bind::<SqlUuid, _>(lot_id)
    .bind::<SqlUuid, _>(user_id)
    .bind::<BigInt, _>(points)
    .get_result(conn)
    .await
    .optional()?;
    Ok(row.map(|r| r.taken).unwrap_or(0))
}

/// Takes up to `points` from one lot (a reversal takes back the lot its award made; the expiry
/// job expires one lot). Returns how many it took.
pub async fn take(conn: &mut AsyncPgConnection, user_id: Uuid, lot_id: Uuid, points: i64) -> Result<i64> {
    let row: Option<Taken> = diesel::sql_query(
        "UPDATE loyalty_lots l SET remaining_points = l.remaining_points - LEAST($3, l.remaining_points) \
         FROM (SELECT id, remaining_points AS before FROM loyalty_lots WHERE id = $1) o \
         WHERE l.id = o.id AND l.user_id = $2 RETURNING l.id, LEAST($3, o.before) AS taken",
    )
    .bind::<SqlUuid, _>(lot_id)
    .bind::<SqlUuid, _>(user_id)
    .bind::<BigInt, _>(points)
    .get_result(conn)
    .await
    .optional()?;
    Ok(row.map(|r| r.taken).unwrap_or(0))
}

/// Consumes `points` from the user's lots, oldest first, in one statement; returns the pieces
/// (lot, points taken). The balance row was already debited (its CHECK passed), and lots always
/// add up to the balance, so they cover the debit; if not, the ledger is inconsistent.
pub async fn consume_fifo(conn: &mut AsyncPgConnection, user_id: Uuid, points: i64) -> Result<Vec<(Uuid, i64)>> {
    let rows: Vec<Taken> = diesel::sql_query(
        "WITH ordered AS ( \
             SELECT id, remaining_points, \
                    (sum(remaining_points) OVER (ORDER BY earned_at, id))::bigint - remaining_points AS before \
             FROM loyalty_lots WHERE user_id = $1 AND remaining_points > 0), \
         pick AS (SELECT id, LEAST(remaining_points, $2 - before) AS taken FROM ordered WHERE before < $2) \
         UPDATE loyalty_lots l SET remaining_points = l.remaining_points - pick.taken \
         FROM pick WHERE l.id = pick.id RETURNING l.id, pick.taken",
    )
    .bind::<SqlUuid, _>(user_id)
    .bind::<BigInt, _>(points)
    .load(conn)
    .await?;
    let covered: i64 = rows.iter().map(|r| r.taken).sum();
    if covered != points {
        return Err(Error::internal(format!(
            "ledger: lots of user {user_id} cover {covered} of a {points}-point debit (run `mgpass ledger verify`)"
        )));
    }
    Ok(rows.into_iter().map(|r| (r.id, r.taken)).collect())
}
