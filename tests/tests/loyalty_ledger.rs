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
    let t = tx(
        TransactionKind::Redemption,
        user,
        vec![posting(Account::User(user), -points), posting(Account::Redemptions, points)],
    );
    conn.transaction(async |c| ledger::post(c, t).await).await
}

/// The ledger's invariants, straight from SQL: every transaction sums to zero, every
/// materialised balance equals its entries and is not negative, lots add up to the balance.
pub fn assert_ledger_invariants(url: &str) {
    let unbalanced = psql(
        url,
        "SELECT count(*) FROM (SELECT transaction_id FROM loyalty_entries GROUP BY 1 HAVING sum(points) <> 0) t",
    );
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
        "SELECT count(*) FROM loyalty_accounts a WHERE a.account_type = 'user' AND \
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
    let remaining = psql(
        &url,
        &format!(
            "SELECT string_agg(remaining_points::text, ',' ORDER BY earned_at, id) FROM loyalty_lots WHERE user_id = '{user}'"
        ),
    );
    assert_eq!(remaining, "0,30");
    assert_eq!(psql(&url, &format!("SELECT count(*) FROM loyalty_entries WHERE transaction_id = '{redemption}'")), "3");
    assert_eq!(ledger::balance(&mut conn, user).await.unwrap(), 30);

    // The refund gives the points back to the lots they came from.
    let refund = conn
        .transaction(async |c| {
            ledger::reverse(c, redemption, TransactionKind::Refund, Some("cancelled".into()), None).await
        })
        .await
        .unwrap();
    assert_eq!(ledger::balance(&mut conn, user).await.unwrap(), 100);
    let remaining = psql(
        &url,
        &format!(
            "SELECT string_agg(remaining_points::text, ',' ORDER BY earned_at, id) FROM loyalty_lots WHERE user_id = '{user}'"
        ),
    );
    assert_eq!(remaining, "60,40");
    assert_eq!(
        psql(
            &url,
            &format!(
                "SELECT kind || ' ' || points || ' ' || reversed_transaction_id FROM loyalty_transactions WHERE id = '{refund}'"
            )
        ),
        format!("refund 70 {redemption}")
    );

    // A transaction is reversed once.
    let again =
        conn.transaction(async |c| ledger::reverse(c, redemption, TransactionKind::Refund, None, None).await).await;
    assert_eq!(again.unwrap_err().reason(), "TRANSACTION_ALREADY_REVERSED");
    let missing =
        conn.transaction(async |c| ledger::reverse(c, Uuid::now_v7(), TransactionKind::Refund, None, None).await).await;
    assert_eq!(missing.unwrap_err().reason(), "TRANSACTION_NOT_FOUND");

    // Reversing the first award takes back its own lot, not the oldest one by chance.
    conn.transaction(async |c| ledger::reverse(c, first, TransactionKind::Reversal, None, None).await).await.unwrap();
    let remaining = psql(
        &url,
        &format!(
            "SELECT string_agg(remaining_points::text, ',' ORDER BY earned_at, id) FROM loyalty_lots WHERE user_id = '{user}'"
        ),
    );
    assert_eq!(remaining, "0,40");
    assert_eq!(ledger::balance(&mut conn, user).await.unwrap(), 40);
    // The partner's issuance account nets out what it issued and took back.
    assert_eq!(
        psql(
            &url,
            &format!(
                "SELECT sum(e.points) FROM loyalty_entries e JOIN loyalty_accounts a ON a.id = e.account_id WHERE a.account_type = 'partner_issuance' AND a.owner_id = '{partner}'"
            )
        ),
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
    let unbalanced =
        tx(TransactionKind::Adjustment, user, vec![posting(Account::User(user), 5), posting(Account::Adjustments, -4)]);
    assert!(matches!(ledger::post(&mut conn, unbalanced).await, Err(Error::Internal(_))));
    let foreign = tx(
        TransactionKind::Adjustment,
        user,
        vec![posting(Account::User(Uuid::now_v7()), 5), posting(Account::Adjustments, -5)],
    );
    assert!(matches!(ledger::post(&mut conn, foreign).await, Err(Error::Internal(_))));

    // The refused debit runs in a savepoint: the caller's transaction goes on.
    let outcome = conn
        .transaction(async |c| {
            let refused = ledger::post(
                c,
                tx(
                    TransactionKind::Redemption,
                    user,
                    vec![posting(Account::User(user), -500), posting(Account::Redemptions, 500)],
                ),
            )
            .await;
            assert_eq!(refused.unwrap_err().reason(), "INSUFFICIENT_POINTS");
            ledger::post(
                c,
                tx(
                    TransactionKind::Redemption,
                    user,
                    vec![posting(Account::User(user), -20), posting(Account::Redemptions, 20)],
                ),
            )
            .await
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
    let hold = tx(
        TransactionKind::PayoutHold,
        user,
        vec![posting(Account::User(user), -80), posting(Account::UserHold(user), 80)],
    );
    let hold = conn.transaction(async |c| ledger::post(c, hold).await).await.unwrap();
    assert_eq!(ledger::balance(&mut conn, user).await.unwrap(), 20);
    assert_eq!(ledger::held_balance(&mut conn, user).await.unwrap(), 80);
    conn.transaction(async |c| ledger::reverse(c, hold, TransactionKind::PayoutRelease, None, None).await)
        .await
        .unwrap();
    assert_eq!(ledger::balance(&mut conn, user).await.unwrap(), 100);
    assert_eq!(ledger::held_balance(&mut conn, user).await.unwrap(), 0);
    // A capture beyond the hold is refused by the hold's CHECK.
    let capture = tx(
        TransactionKind::PayoutCapture,
        user,
        vec![posting(Account::UserHold(user), -1), posting(Account::Payouts, 1)],
    );
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
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("append-only"),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(psql(&url, "SELECT count(*) FROM loyalty_entries"), "2");
}

// ---------------------------------------------------------------------------------------------
// LedgerService over REST and gRPC, the expiry job, `mgpass ledger verify`.

mod service {
    use std::time::{Duration, Instant};

    use diesel_async::{AsyncConnection, AsyncPgConnection};
    use mgpass_e2e::{TestServer, authed, grpc_reason, proto::loyalty as pb, psql, rest, rest_reason, run_mgpass};
    use mgpass_server::loyalty::ledger::{self, Account, Posting, TransactionKind};
    use serde_json::{Value, json};
    use tokio::task::JoinSet;
    use uuid::Uuid;

    use super::{assert_ledger_invariants, tx};
    use crate::loyalty_support::{adjust, create_partner, plain_user};

    fn adjust_body(points: i64, reason: &str, request_id: &str) -> Value {
        json!({"points": points, "reason": reason, "requestId": request_id})
    }

    /// An award posted by the ledger library into the server's database (the EventService of the
    /// earning module does this for real).
    async fn award(server: &TestServer, partner: &str, user: &str, points: i64) -> Uuid {
        let mut conn = AsyncPgConnection::establish(&server.database_url).await.unwrap();
        let (partner, user) = (Uuid::parse_str(partner).unwrap(), Uuid::parse_str(user).unwrap());
        let mut t = tx(
            TransactionKind::Award,
            user,
            vec![
                Posting { account: Account::PartnerIssuance(partner), points: -points, rule: None },
                Posting { account: Account::User(user), points, rule: Some((Uuid::now_v7(), 3)) },
            ],
        );
        t.event_id = Some(Uuid::now_v7());
        conn.transaction(async |c| ledger::post(c, t).await).await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn balances_histories_lots_adjustments_and_reports() {
        let server = TestServer::start().await;
        let admin = server.admin_token().await;
        let (user, token) = plain_user(&server, &admin, "member@example.com").await;
        let partner = create_partner(&server, &admin, "Kampala Coffee").await;

        let (status, body) = rest(&server, &token, "GET", "/v1/me/loyalty/balance", None).await;
        assert_eq!((status, body["balance"]["points"].as_str().unwrap_or("0")), (200, "0"), "{body}");
        award(&server, &partner, &user, 100).await;
        let first = adjust(&server, &admin, &user, 50).await;
        assert_eq!(first["transaction"]["kind"], "TRANSACTION_KIND_ADJUSTMENT");
        assert_eq!(first["balance"]["points"], "150");
        let debit = adjust(&server, &admin, &user, -30).await;
        assert_eq!(debit["balance"]["points"], "120");
        let entries = debit["transaction"]["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0]["account"]["accountType"], "ACCOUNT_TYPE_USER");
        assert_eq!(entries[0]["points"], "-30");
        assert_eq!(entries[1]["account"]["accountType"], "ACCOUNT_TYPE_ADJUSTMENTS");
        assert_eq!(debit["transaction"]["reason"], "test credit");

        let (_, mine) = rest(&server, &token, "GET", "/v1/me/loyalty/balance", None).await;
        let b = &mine["balance"];
        assert_eq!(
            (b["points"].as_str(), b["lifetimeEarnedPoints"].as_str(), b["nextExpiryPoints"].as_str()),
            (Some("120"), Some("150"), Some("70"))
        );
        assert!(b["nextExpireTime"].is_string());

        // History, newest first, two per page.
        let (_, page) = rest(&server, &token, "GET", "/v1/me/loyalty/transactions?pageSize=2", None).await;
        let kinds: Vec<&str> =
            page["transactions"].as_array().unwrap().iter().map(|t| t["points"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["-30", "50"]);
        let next = page["nextPageToken"].as_str().unwrap();
        let (_, page2) =
            rest(&server, &token, "GET", format!("/v1/me/loyalty/transactions?pageSize=2&pageToken={next}"), None)
                .await;
        assert_eq!(page2["transactions"][0]["kind"], "TRANSACTION_KIND_AWARD");
        assert_eq!(page2["transactions"][0]["entries"][1]["ruleVersion"], 3);
        assert!(page2["nextPageToken"].as_str().unwrap_or_default().is_empty());
        let (_, awards) =
            rest(&server, &token, "GET", "/v1/me/loyalty/transactions?kind=TRANSACTION_KIND_AWARD", None).await;
        assert_eq!(awards["transactions"].as_array().unwrap().len(), 1);
        let (status, err) = rest(&server, &token, "GET", "/v1/me/loyalty/transactions?pageSize=5000", None).await;
        assert_eq!((status, rest_reason(&err).as_str()), (400, "INVALID_ARGUMENT"));
        let (status, err) = rest(&server, &token, "GET", "/v1/me/loyalty/transactions?pageToken=garbage", None).await;
        assert_eq!((status, rest_reason(&err).as_str()), (400, "INVALID_PAGE_TOKEN"));

        // Lots: soonest expiry first; nothing expires within a day.
        let (_, lots) = rest(&server, &token, "GET", "/v1/me/loyalty/lots", None).await;
        let remaining: Vec<&str> =
            lots["lots"].as_array().unwrap().iter().map(|l| l["remainingPoints"].as_str().unwrap()).collect();
        assert_eq!(remaining, ["70", "50"]);
        let tomorrow = psql(
            &server.database_url,
            "SELECT to_char(now() AT TIME ZONE 'UTC' + interval '1 day', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
        );
        let (_, soon) =
            rest(&server, &token, "GET", format!("/v1/me/loyalty/lots?expireBefore={tomorrow}"), None).await;
        assert!(soon["lots"].as_array().map_or(true, |l| l.is_empty()), "{soon}");

        // Administrators' views.
        let (_, member) = rest(&server, &admin, "GET", format!("/v1/loyalty/members/{user}/balance"), None).await;
        assert_eq!(member["balance"]["points"], "120");
        let (_, member_lots) =
            rest(&server, &admin, "GET", format!("/v1/loyalty/members/{user}/lots?includeExhausted=true"), None).await;
        assert_eq!(member_lots["lots"].as_array().unwrap().len(), 2);
        let (_, theirs) = rest(&server, &admin, "GET", format!("/v1/loyalty/members/{user}/transactions"), None).await;
        assert_eq!(theirs["transactions"].as_array().unwrap().len(), 3);
        let (_, by_partner) =
            rest(&server, &admin, "GET", format!("/v1/loyalty/transactions?partnerId={partner}"), None).await;
        assert_eq!(by_partner["transactions"].as_array().unwrap().len(), 1);
        let tx_id = debit["transaction"]["id"].as_str().unwrap();
        let (_, one) = rest(&server, &admin, "GET", format!("/v1/loyalty/transactions/{tx_id}"), None).await;
        assert_eq!(one["transaction"]["id"], tx_id);
        let (status, err) =
            rest(&server, &admin, "GET", format!("/v1/loyalty/transactions/{}", Uuid::new_v4()), None).await;
        assert_eq!((status, rest_reason(&err).as_str()), (404, "TRANSACTION_NOT_FOUND"));
        let (status, err) =
            rest(&server, &admin, "GET", format!("/v1/loyalty/members/{}/balance", Uuid::new_v4()), None).await;
        assert_eq!((status, rest_reason(&err).as_str()), (404, "USER_NOT_FOUND"));
        let (status, err) = rest(&server, &admin, "GET", "/v1/loyalty/members/nope/balance", None).await;
        assert_eq!((status, rest_reason(&err).as_str()), (400, "INVALID_ID"));

        let (_, liabilities) = rest(&server, &admin, "GET", "/v1/loyalty/reports/liabilities", None).await;
        let l = &liabilities["liabilities"];
        assert_eq!(
            (l["outstandingPoints"].as_str(), l["memberCount"].as_str()),
            (Some("120"), Some("1")),
            "{liabilities}"
        );
        let (_, issuance) = rest(&server, &admin, "GET", "/v1/loyalty/reports/partnerIssuance", None).await;
        let row = &issuance["rows"][0];
        assert_eq!(
            (row["partnerId"].as_str(), row["pointsAwarded"].as_str(), row["eventCount"].as_str()),
            (Some(partner.as_str()), Some("100"), Some("1")),
            "{issuance}"
        );
        let (status, err) = rest(
            &server,
            &admin,
            "GET",
            "/v1/loyalty/reports/partnerIssuance?startDay=2025-01-01&endDay=2026-11-30",
            None,
        )
        .await;
        assert_eq!((status, rest_reason(&err).as_str()), (400, "INVALID_ARGUMENT"));
        let (status, _) =
            rest(&server, &admin, "GET", "/v1/loyalty/reports/partnerIssuance?startDay=24-11-2026", None).await;
        assert_eq!(status, 400);

        // gRPC, and who may call what.
        let mut client = pb::ledger_service_client::LedgerServiceClient::new(server.channel().await);
        let got = client.get_my_balance(authed(pb::GetMyBalanceRequest {}, &token)).await.unwrap().into_inner();
        assert_eq!(got.balance.unwrap().points, 120);
        let denied =
            client.get_balance(authed(pb::GetBalanceRequest { user_id: user.clone() }, &token)).await.unwrap_err();
        assert_eq!(grpc_reason(&denied), "PERMISSION_DENIED");
        let denied = client
            .adjust_points(authed(
                pb::AdjustPointsRequest {
                    user_id: user.clone(),
                    points: 1000,
                    reason: "mine".into(),
                    request_id: Uuid::new_v4().to_string(),
                },
                &token,
            ))
            .await
            .unwrap_err();
        assert_eq!(grpc_reason(&denied), "PERMISSION_DENIED");
        let (status, _) = rest(&server, &token, "GET", "/v1/loyalty/reports/liabilities", None).await;
        assert_eq!(status, 403);
        let (status, _) = rest(&server, "", "GET", "/v1/me/loyalty/balance", None).await;
        assert_eq!(status, 401);
        assert_ledger_invariants(&server.database_url);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn adjustments_refuse_bad_input_and_are_idempotent() {
        let server = TestServer::start().await;
        let admin = server.admin_token().await;
        let (user, _) = plain_user(&server, &admin, "member@example.com").await;
        adjust(&server, &admin, &user, 40).await;
        let count = || psql(&server.database_url, "SELECT count(*) FROM loyalty_transactions");
        let before = count();
        let path = format!("/v1/loyalty/members/{user}/balance:adjust");
        for (body, http, reason) in [
            (adjust_body(0, "zero", &Uuid::new_v4().to_string()), 400, "INVALID_ARGUMENT"),
            (adjust_body(5, "  ", &Uuid::new_v4().to_string()), 400, "INVALID_ARGUMENT"),
            (adjust_body(5, "why", "not-a-uuid"), 400, "INVALID_ARGUMENT"),
            (adjust_body(-41, "too much", &Uuid::new_v4().to_string()), 400, "INSUFFICIENT_POINTS"),
        ] {
            let (status, err) = rest(&server, &admin, "POST", &path, Some(body.clone())).await;
            assert_eq!((status, rest_reason(&err).as_str()), (http, reason), "{body}: {err}");
        }
        let (status, err) = rest(
            &server,
            &admin,
            "POST",
            format!("/v1/loyalty/members/{}/balance:adjust", Uuid::new_v4()),
            Some(adjust_body(5, "x", &Uuid::new_v4().to_string())),
        )
        .await;
        assert_eq!((status, rest_reason(&err).as_str()), (404, "USER_NOT_FOUND"));
        assert_eq!(count(), before, "refusals wrote nothing");

        // The same request id: concurrent retries give one transaction; another body conflicts.
        let request_id = Uuid::new_v4().to_string();
        let mut tasks = JoinSet::new();
        for _ in 0..10 {
            let (url, admin, path, body) =
                (server.url(&path), admin.clone(), path.clone(), adjust_body(-15, "correction", &request_id));
            let http = server.http.clone();
            let _ = path;
            tasks.spawn(async move {
                let resp = http.post(url).bearer_auth(admin).json(&body).send().await.unwrap();
                let status = resp.status().as_u16();
                (status, resp.json::<Value>().await.unwrap())
            });
        }
        let mut ids = std::collections::HashSet::new();
        while let Some(done) = tasks.join_next().await {
            let (status, body) = done.unwrap();
            assert_eq!(status, 200, "{body}");
            ids.insert(body["transaction"]["id"].as_str().unwrap().to_string());
        }
        assert_eq!(ids.len(), 1, "one transaction for one request id");
        let (status, err) =
            rest(&server, &admin, "POST", &path, Some(adjust_body(-16, "correction", &request_id))).await;
        assert_eq!((status, rest_reason(&err).as_str()), (409, "IDEMPOTENCY_KEY_REUSED"));
        let (_, balance) = rest(&server, &admin, "GET", format!("/v1/loyalty/members/{user}/balance"), None).await;
        assert_eq!(balance["balance"]["points"], "25");
        assert_ledger_invariants(&server.database_url);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_debits_over_rest_never_overdraw() {
        let server = TestServer::start().await;
        let admin = server.admin_token().await;
        let (user, _) = plain_user(&server, &admin, "member@example.com").await;
        adjust(&server, &admin, &user, 60).await;
        adjust(&server, &admin, &user, 40).await;
        let path = server.url(&format!("/v1/loyalty/members/{user}/balance:adjust"));
        let mut tasks = JoinSet::new();
        for _ in 0..30 {
            let (http, path, admin) = (server.http.clone(), path.clone(), admin.clone());
            tasks.spawn(async move {
                let body = adjust_body(-9, "concurrent", &Uuid::new_v4().to_string());
                let resp = http.post(path).bearer_auth(admin).json(&body).send().await.unwrap();
                let status = resp.status().as_u16();
                (status, resp.json::<Value>().await.unwrap())
            });
        }
        let (mut ok, mut refused) = (0, 0);
        while let Some(done) = tasks.join_next().await {
            let (status, body) = done.unwrap();
            match status {
                200 => ok += 1,
                400 => {
                    assert_eq!(rest_reason(&body), "INSUFFICIENT_POINTS");
                    refused += 1;
                }
                other => panic!("{other}: {body}"),
            }
        }
        assert_eq!((ok, refused), (11, 19));
        assert_eq!(psql(&server.database_url, "SELECT balance FROM loyalty_accounts WHERE account_type = 'user'"), "1");
        assert_ledger_invariants(&server.database_url);
        let out = run_mgpass(&["ledger", "verify"], &[("MGPASS_DATABASE__URL", &server.database_url)]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_expiry_job_expires_lots_past_their_date() {
        let server = TestServer::start_with(&[("MGPASS_LOYALTY__EXPIRY_INTERVAL_SECS", "1")]).await;
        let admin = server.admin_token().await;
        let (user, token) = plain_user(&server, &admin, "member@example.com").await;
        adjust(&server, &admin, &user, 100).await;
        adjust(&server, &admin, &user, 40).await;
        adjust(&server, &admin, &user, -30).await;
        // Credits expire 12 months out by default.
        let months = psql(
            &server.database_url,
            "SELECT DISTINCT (expire_at - earned_at) BETWEEN interval '364 days' AND interval '366 days' FROM loyalty_lots",
        );
        assert_eq!(months, "t");
        psql(
            &server.database_url,
            &format!(
                "UPDATE loyalty_lots SET expire_at = now() - interval '1 minute' WHERE user_id = '{user}' AND earned_points = 100"
            ),
        );
        let start = Instant::now();
        loop {
            let (_, body) = rest(&server, &token, "GET", "/v1/me/loyalty/balance", None).await;
            if body["balance"]["points"] == "40" {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "not expired: {body}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (_, expiries) =
            rest(&server, &token, "GET", "/v1/me/loyalty/transactions?kind=TRANSACTION_KIND_EXPIRY", None).await;
        let expired = &expiries["transactions"].as_array().unwrap();
        assert_eq!(expired.len(), 1, "expired once");
        assert_eq!(expired[0]["points"], "-70");
        assert_ledger_invariants(&server.database_url);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn ledger_expire_cli_and_never_expiring_points() {
        let server = TestServer::start_with(&[("MGPASS_LOYALTY__POINTS_EXPIRE_AFTER_MONTHS", "0")]).await;
        let admin = server.admin_token().await;
        let (user, _) = plain_user(&server, &admin, "member@example.com").await;
        adjust(&server, &admin, &user, 25).await;
        assert_eq!(psql(&server.database_url, "SELECT count(*) FROM loyalty_lots WHERE expire_at IS NULL"), "1");
        let env = [("MGPASS_DATABASE__URL", server.database_url.as_str())];
        let out = run_mgpass(&["ledger", "expire"], &env);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "expired 0 lot(s), 0 point(s)");
        psql(&server.database_url, "UPDATE loyalty_lots SET expire_at = now() - interval '1 day'");
        let out = run_mgpass(&["ledger", "expire"], &env);
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "expired 1 lot(s), 25 point(s)");
        let out = run_mgpass(&["ledger", "expire"], &env);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "expired 0 lot(s), 0 point(s)");
        assert_ledger_invariants(&server.database_url);
    }

    /// A copy of a database (CREATE DATABASE .. TEMPLATE), retried while the stopped server's
    /// connections drain.
    async fn clone_database(source_url: &str) -> String {
        let source = source_url.rsplit('/').next().unwrap();
        let name = format!("t_{}", Uuid::new_v4().simple());
        let start = Instant::now();
        loop {
            let out = std::process::Command::new("psql")
                .args([
                    mgpass_e2e::cluster_url().as_str(),
                    "-qAtc",
                    &format!("CREATE DATABASE {name} TEMPLATE {source}"),
                ])
                .output()
                .unwrap();
            if out.status.success() {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "{}", String::from_utf8_lossy(&out.stderr));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (base, _) = source_url.rsplit_once('/').unwrap();
        format!("{base}/{name}")
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn ledger_verify_passes_a_sound_ledger_and_names_each_breach() {
        let server = TestServer::start().await;
        let admin = server.admin_token().await;
        let (user, _) = plain_user(&server, &admin, "member@example.com").await;
        let partner = create_partner(&server, &admin, "Kampala Coffee").await;
        award(&server, &partner, &user, 80).await;
        adjust(&server, &admin, &user, -20).await;
        let env = [("MGPASS_DATABASE__URL", server.database_url.as_str())];
        let out = run_mgpass(&["ledger", "verify"], &env);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        assert!(String::from_utf8_lossy(&out.stdout).contains("no breach"));

        // Corrupt a copy: the triggers refuse it, so the test switches them off first.
        let source = server.database_url.clone();
        drop(server); // a template database must have no connections
        let copy = clone_database(&source).await;
        psql(&copy, "ALTER TABLE loyalty_entries DISABLE TRIGGER USER");
        psql(&copy, "ALTER TABLE loyalty_transactions DISABLE TRIGGER USER");
        psql(&copy, "UPDATE loyalty_entries SET points = points + 5 WHERE id = (SELECT min(id) FROM loyalty_entries)");
        psql(&copy, "UPDATE loyalty_transactions SET event_id = NULL WHERE kind = 'award'");
        psql(&copy, "UPDATE loyalty_entries SET rule_id = NULL, rule_version = NULL WHERE rule_id IS NOT NULL");
        let out = run_mgpass(&["ledger", "verify"], &[("MGPASS_DATABASE__URL", copy.as_str())]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{stdout}");
        for invariant in
            ["transaction entries sum to zero", "every award names its event", "every award names its rule version"]
        {
            assert!(stdout.contains(&format!("BREACH [{invariant}]")), "{invariant} missing from:\n{stdout}");
        }
        assert!(String::from_utf8_lossy(&out.stderr).contains("breach"));

        // A balance drifting from its entries (and a negative one) are named too.
        psql(&copy, "ALTER TABLE loyalty_accounts DROP CONSTRAINT loyalty_accounts_balance_not_negative");
        psql(&copy, "UPDATE loyalty_accounts SET balance = -1 WHERE account_type = 'user'");
        let out = run_mgpass(&["ledger", "verify"], &[("MGPASS_DATABASE__URL", copy.as_str())]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        for invariant in ["balance equals the sum of entries", "no negative balance", "lots add up to the balance"] {
            assert!(stdout.contains(&format!("BREACH [{invariant}]")), "{invariant} missing from:\n{stdout}");
        }
    }
}
