//! The points ledger: double-entry and append-only. Every movement is one transaction whose
//! entries sum to zero; a user's balance is the sum of the entries of the user's account and
//! never goes below zero (a CHECK on the materialised balance row is the final guard). User
//! credits make lots (expiring per `loyalty.points_expire_after_months`); user debits consume
//! lots first-in first-out. This is the one API every loyalty branch posts through (see
//! `docs/loyalty.md`).

mod accounts;
pub mod expiry;
pub mod grpc;
mod lots;
mod posting;
pub mod queries;
pub mod service;
pub mod store;
mod types;
pub mod verify;

use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use crate::error::Result;

pub use lots::{configure_expiry, expiry_months};
pub use posting::{PlannedPosting, post_planned};
pub use types::{Account, NewTransaction, Posting, TransactionKind};

/// Posts one balanced transaction inside the caller's database transaction (a savepoint, so a
/// refused posting leaves the caller's transaction usable), and returns its id. Refuses
/// unbalanced postings. Debits of `Account::User` consume the user's lots first-in first-out;
/// credits to `Account::User` create a lot. A balance never goes below zero: the error is
/// `INSUFFICIENT_POINTS` (FAILED_PRECONDITION), enforced by the database CHECK.
pub async fn post(conn: &mut AsyncPgConnection, tx: NewTransaction) -> Result<Uuid> {
    let postings = tx.postings.iter().map(|p| PlannedPosting { posting: p.clone(), lots: Vec::new() }).collect();
    post_planned(conn, &tx, postings).await
}

/// Reverses a posted transaction exactly (entries negated, account by account and lot by lot),
/// with the kind given by the caller. A transaction is reversed at most once:
/// `TRANSACTION_ALREADY_REVERSED` (FAILED_PRECONDITION) otherwise; `TRANSACTION_NOT_FOUND` when
/// there is no such transaction; `INSUFFICIENT_POINTS` when the user has spent the points.
pub async fn reverse(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    kind: TransactionKind,
    reason: Option<String>,
    actor: Option<Uuid>,
) -> Result<Uuid> {
    posting::reverse(conn, id, kind, reason, actor).await
}

/// The user's available points (0 for a user who never had any).
pub async fn balance(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<i64> {
    accounts::materialised_balance(conn, Account::User(user_id)).await
}

/// The points a user's payouts in progress hold.
pub async fn held_balance(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<i64> {
    accounts::materialised_balance(conn, Account::UserHold(user_id)).await
}
