//! The three ledger transactions of a payout, each posted inside the caller's database
//! transaction together with the payout row's change: hold `[User -N, UserHold +N]` at request,
//! capture `[UserHold -N, Payouts +N]` on a confirmed success, release `[UserHold -N, User +N]`
//! on a confirmed failure.

use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use super::ledger::{self, Account, NewTransaction, Posting, TransactionKind};
use crate::error::Result;

fn posting(account: Account, points: i64) -> Posting {
    Posting { account, points, rule: None }
}

async fn post(
    conn: &mut AsyncPgConnection,
    kind: TransactionKind,
    user_id: Uuid,
    payout_id: Uuid,
    actor: Option<Uuid>,
    reason: Option<String>,
    postings: Vec<Posting>,
) -> Result<Uuid> {
    ledger::post(
        conn,
        NewTransaction {
            kind,
            user_id,
            event_id: None,
            order_id: None,
            payout_id: Some(payout_id),
            reversed_transaction_id: None,
            reason,
            actor_user_id: actor,
            postings,
        },
    )
    .await
}

/// Moves the points out of the user's balance (INSUFFICIENT_POINTS when it does not cover them).
pub async fn hold(conn: &mut AsyncPgConnection, user_id: Uuid, payout_id: Uuid, points: i64) -> Result<Uuid> {
    let postings = vec![posting(Account::User(user_id), -points), posting(Account::UserHold(user_id), points)];
    post(conn, TransactionKind::PayoutHold, user_id, payout_id, Some(user_id), None, postings).await
}

/// The transfer succeeded: the held points are spent.
pub async fn capture(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    payout_id: Uuid,
    points: i64,
    actor: Option<Uuid>,
) -> Result<Uuid> {
    let postings = vec![posting(Account::UserHold(user_id), -points), posting(Account::Payouts, points)];
    post(conn, TransactionKind::PayoutCapture, user_id, payout_id, actor, None, postings).await
}

/// The transfer failed: the held points go back to the user.
pub async fn release(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    payout_id: Uuid,
    points: i64,
    actor: Option<Uuid>,
    reason: String,
) -> Result<Uuid> {
    let postings = vec![posting(Account::UserHold(user_id), -points), posting(Account::User(user_id), points)];
    post(conn, TransactionKind::PayoutRelease, user_id, payout_id, actor, Some(reason), postings).await
}
