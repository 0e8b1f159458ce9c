//! The points ledger: the library API other loyalty branches post through (`post`, `reverse`,
//! `balance`) on a fresh migrated database, with the invariants checked in SQL; then the
//! LedgerService over gRPC and REST, the expiry job and `mgpass ledger verify`.

use diesel_async::{AsyncConnection, AsyncPgConnection};
use mgpass_e2e::{fresh_database, psql};
use mgpass_server::{
    db::DbPool,
    error::Error,
    loyalty::ledger::{self, Account, NewTransaction, Posting, TransactionKind},
};
use tokio::task::JoinSet;
use uuid::Uuid;

async fn fresh_db() -> (String, DbPool) {
    let url = fresh_database();
    mgpass_server::db::migrate(&url).await.expect("migrations apply");
    let pool = mgpass_server::db::pool(&url, 16).unwrap();
    (url, pool)
}

fn tx(kind: TransactionKind, user: Uuid, postings: Vec<Posting>) -> NewTransaction {
    NewTransaction {
        kind,
        user_id: user,
        event_id: None,
        order_id: None,
        payout_id: None,
        reversed_transaction_id: None,
        reason: None,
        actor_user_id: None,
        postings,
    }
}

fn posting(account: Account, points: i64) -> Posting {
    Posting { account, points, rule: None }
}

/// An award of `points` from `partner` to `user`, in its own database transaction.
async fn award(pool: &DbPool, partner: Uuid, user: Uuid, points: i64) -> Uuid {
    let mut conn = pool.get().await.unwrap();
    let mut t = tx(
        TransactionKind::Award,
        user,
        vec![
            posting(Account::PartnerIssuance(partner), -points),
            Posting { account: Account::User(user), points, rule: Some((Uuid::now_v7(), 1)) },
        ],
    );
    t.event_id = Some(Uuid::now_v7());
    conn.transaction(async |c| ledger::post(c, t).await).await.unwrap()
}

async fn redeem(pool: &DbPool, user: Uuid, points: i64) -> Result<Uuid, Error> {
    let mut conn = pool.get().await.unwrap();
    let t = tx(TransactionKind::Redemption, user, vec![posting(Account::User(user), -points), posting(Account::Redemptions, points)]);
    conn.transaction(async |c| ledger::post(c, t).await).await
}

/// The ledger's invariants, straight from SQL: every transaction sums to zero, every
/// materialised balance equals its entries and is not negative, lots add up to the balance.
pub fn assert_ledger_invariants(url: &str) {
    let unbalanced = psql(url, "SELECT count(*) FROM (SELECT transaction_id FROM loyalty_entries GROUP BY 1 HAVING sum(points) <> 0) t");
    assert_eq!(unbalanced, "0", "unbalanced transactions");
    let drift = psql(
        url,
        "SELECT count(*) FROM loyalty_accounts a WHERE a.balance IS NOT NULL AND \
         a.balance <> (SELECT coalesce(sum(points), 0) FROM loyalty_entries e WHERE e.account_id = a.id)",
    );
    assert_eq!(drift, "0", "balances differ from their entries");
    assert_eq!(psql(url, "SELECT count(*) FROM loyalty_accounts WHERE balance < 0"), "0");
    let lots = psql(
        url,
        "SELECT count(*) FROM loyalty_accounts a WHERE a.account_type = 'USER' AND \
         a.balance <> (SELECT coalesce(sum(remaining_points), 0) FROM loyalty_lots l WHERE l.user_id = a.owner_id)",
    );
    assert_eq!(lots, "0", "lots do not add up to balances");
}

#[tokio::test(flavor = "multi_thread")]
async fn awards_debit_lots_first_in_first_out_and_refunds_restore_them() {
    let (url, pool) = fresh_db().await;
    let (partner, user) = (Uuid::now_v7(), Uuid::now_v7());
    let first = award(&pool, partner, user, 60).await;
    let _second = award(&pool, partner, user, 40).await;
    let mut conn = pool.get().await.unwrap();
    assert_eq!(ledger::balance(&mut conn, user).await.unwrap(), 100);

    // 70 points: all 60 of the first lot, then 10 of the second.
    let redemption = redeem(&pool, user, 70).await.unwrap();
    let remaining = psql(&url, &format!("SELECT string_agg(remaining_points::text, ',' ORDER BY earned_at, id) FROM loyalty_lots WHERE user_id = '{user}'"));
    assert_eq!(remaining, "0,30");
    assert_eq!(psql(&url, &format!("SELECT count(*) FROM loyalty_entries WHERE transaction_id = '{redemption}'")), "3");
    assert_eq!(ledger::balance(&mut conn, user).await.unwrap(), 30);

    // The refund gives the points back to the lots they came from.
    let refund = conn
        .transaction(async |c| ledger::reverse(c, redemption, TransactionKind::Refund, Some("cancelled".into()), None).await)
        .await
        .unwrap();
    assert_eq!(ledger::balance(&mut conn, user).await.unwrap(), 100);
    let remaining = psql(&url, &format!("SELECT string_agg(remaining_points::text, ',' ORDER BY earned_at, id) FROM loyalty_lots WHERE user_id = '{user}'"));
    assert_eq!(remaining, "60,40");
    assert_eq!(
        psql(&url, &format!("SELECT kind || ' ' || points || ' ' || reversed_transaction_id FROM loyalty_transactions WHERE id = '{refund}'")),
        format!("REFUND 70 {redemption}")
    );

    // A transaction is reversed once.
    let again = conn.transaction(async |c| ledger::reverse(c, redemption, TransactionKind::Refund, None, None).await).await;
    assert_eq!(again.unwrap_err().reason(), "TRANSACTION_ALREADY_REVERSED");
    let missing = conn.transaction(async |c| ledger::reverse(c, Uuid::now_v7(), TransactionKind::Refund, None, None).await).await;
    assert_eq!(missing.unwrap_err().reason(), "TRANSACTION_NOT_FOUND");

    // Reversing the first award takes back its own lot, not the oldest one by chance.
    conn.transaction(async |c| ledger::reverse(c, first, TransactionKind::Reversal, None, None).await).await.unwrap();
    let remaining = psql(&url, &format!("SELECT string_agg(remaining_points::text, ',' ORDER BY earned_at, id) FROM loyalty_lots WHERE user_id = '{user}'"));
    assert_eq!(remaining, "0,40");
    assert_eq!(ledger::balance(&mut conn, user).await.unwrap(), 40);
    // The partner's issuance account nets out what it issued and took back.
    assert_eq!(
        psql(&url, &format!("SELECT sum(e.points) FROM loyalty_entries e JOIN loyalty_accounts a ON a.id = e.account_id WHERE a.account_type = 'PARTNER_ISSUANCE' AND a.owner_id = '{partner}'")),
        "-40"
    );
    assert_ledger_invariants(&url);
}

#[tokio::test(flavor = "multi_thread")]
async fn overdrafts_and_unbalanced_postings_are_refused_and_write_nothing() {
    let (url, pool) = fresh_db().await;
    let (partner, user) = (Uuid::now_v7(), Uuid::now_v7());
    award(&pool, partner, user, 50).await;
    let before = psql(&url, "SELECT count(*) FROM loyalty_transactions");

    let err = redeem(&pool, user, 51).await.unwrap_err();
    assert_eq!(err.reason(), "INSUFFICIENT_POINTS");
    // A user who never had points cannot be debited either (the account row is born negative).
    let err = redeem(&pool, Uuid::now_v7(), 1).await.unwrap_err();
    assert_eq!(err.reason(), "INSUFFICIENT_POINTS");

    let mut conn = pool.get().await.unwrap();
    let unbalanced = tx(TransactionKind::Adjustment, user, vec![posting(Account::User(user), 5), posting(Account::Adjustments, -4)]);
    assert!(matches!(ledger::post(&mut conn, unbalanced).await, Err(Error::Internal(_))));
    let foreign = tx(TransactionKind::Adjustment, user, vec![posting(Account::User(Uuid::now_v7()), 5), posting(Account::Adjustments, -5)]);
    assert!(matches!(ledger::post(&mut conn, foreign).await, Err(Error::Internal(_))));

    // The refused debit runs in a savepoint: the caller's transaction goes on.
    let outcome = conn
        .transaction(async |c| {
            let refused = ledger::post(c, tx(TransactionKind::Redemption, user, vec![posting(Account::User(user), -500), posting(Account::Redemptions, 500)])).await;
            assert_eq!(refused.unwrap_err().reason(), "INSUFFICIENT_POINTS");
            ledger::post(c, tx(TransactionKind::Redemption, user, vec![posting(Account::User(user), -20), posting(Account::Redemptions, 20)])).await
        })
        .await;
    assert!(outcome.is_ok(), "{outcome:?}");
    assert_eq!(ledger::balance(&mut conn, user).await.unwrap(), 30);
    let after: i64 = psql(&url, "SELECT count(*) FROM loyalty_transactions").parse().unwrap();
    assert_eq!(after, before.parse::<i64>().unwrap() + 1);
    assert_ledger_invariants(&url);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_debits_never_overdraw() {
    let (url, pool) = fresh_db().await;
    let (partner, user) = (Uuid::now_v7(), Uuid::now_v7());
    for _ in 0..5 {
        award(&pool, partner, user, 20).await;
    }
    // 100 points, 40 concurrent debits of 7 points: exactly 14 fit.
    let mut tasks = JoinSet::new();
    for _ in 0..40 {
        let pool = pool.clone();
        tasks.spawn(async move { redeem(&pool, user, 7).await });
    }
    let (mut ok, mut refused) = (0, 0);
    while let Some(outcome) = tasks.join_next().await {
        match outcome.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_eq!(e.reason(), "INSUFFICIENT_POINTS");
                refused += 1;
            }
        }
    }
    assert_eq!((ok, refused), (14, 26));
    let mut conn = pool.get().await.unwrap();
    assert_eq!(ledger::balance(&mut conn, user).await.unwrap(), 2);
    assert_ledger_invariants(&url);
}

#[tokio::test(flavor = "multi_thread")]
async fn payout_holds_move_points_between_user_accounts() {
    let (url, pool) = fresh_db().await;
    let (partner, user) = (Uuid::now_v7(), Uuid::now_v7());
    award(&pool, partner, user, 100).await;
    let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
    let hold = tx(TransactionKind::PayoutHold, user, vec![posting(Account::User(user), -80), posting(Account::UserHold(user), 80)]);
    let hold = conn.transaction(async |c| ledger::post(c, hold).await).await.unwrap();
    assert_eq!(ledger::balance(&mut conn, user).await.unwrap(), 20);
    assert_eq!(ledger::held_balance(&mut conn, user).await.unwrap(), 80);
    conn.transaction(async |c| ledger::reverse(c, hold, TransactionKind::PayoutRelease, None, None).await).await.unwrap();
    assert_eq!(ledger::balance(&mut conn, user).await.unwrap(), 100);
    assert_eq!(ledger::held_balance(&mut conn, user).await.unwrap(), 0);
    // A capture beyond the hold is refused by the hold's CHECK.
    let capture = tx(TransactionKind::PayoutCapture, user, vec![posting(Account::UserHold(user), -1), posting(Account::Payouts, 1)]);
    assert_eq!(ledger::post(&mut conn, capture).await.unwrap_err().reason(), "INSUFFICIENT_POINTS");
    assert_ledger_invariants(&url);
}

#[tokio::test(flavor = "multi_thread")]
async fn entries_and_transactions_are_append_only() {
    let (url, pool) = fresh_db().await;
    award(&pool, Uuid::now_v7(), Uuid::now_v7(), 10).await;
    for sql in [
        "UPDATE loyalty_entries SET points = points * 2",
        "DELETE FROM loyalty_entries",
        "UPDATE loyalty_transactions SET points = 0",
        "DELETE FROM loyalty_transactions",
        "TRUNCATE loyalty_entries CASCADE",
    ] {
        let out = std::process::Command::new("psql").args([url.as_str(), "-qAtc", sql]).output().unwrap();
        assert!(!out.status.success(), "{sql} was allowed");
        assert!(String::from_utf8_lossy(&out.stderr).contains("append-only"), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(psql(&url, "SELECT count(*) FROM loyalty_entries"), "2");
}
