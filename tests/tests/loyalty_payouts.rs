//! Mobile-money cashback end to end: the real mgpass (worker included) against the fake MoMo
//! provider, on a real database. Balances are checked in SQL on the ledger's accounts.

use std::time::{Duration, Instant};

use futures::future::join_all;
use mgpass_e2e::{
    TestServer, free_port, fresh_database,
    momo::{API_KEY, API_USER, FakeMomo, Fault, Outcome},
    psql, rest, rest_reason, run_mgpass,
};

use crate::loyalty_support::adjust;
use serde_json::{Value, json};

const PW: &str = "a long enough password";
const CALLBACK_PATH: &str = "/v1/loyalty/payoutCallbacks/mtn_momo";

/// Settings of one test's server.
struct Setup {
    pending_limit_secs: u64,
    retry_delay_ms: u64,
    callbacks: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Self { pending_limit_secs: 120, retry_delay_ms: 100, callbacks: false }
    }
}

/// Starts mgpass on `database` and `port`, paying out through `momo`.
async fn start_on(database: String, port: u16, momo: &FakeMomo, setup: &Setup) -> TestServer {
    let callback = format!("http://127.0.0.1:{port}{CALLBACK_PATH}");
    let pending = setup.pending_limit_secs.to_string();
    let retry = setup.retry_delay_ms.to_string();
    let max_retry = (setup.retry_delay_ms * 4).to_string();
    let mut env = vec![
        ("MGPASS_LOYALTY__PAYOUTS__MOMO_BASE_URL", momo.url.as_str()),
        ("MGPASS_LOYALTY__PAYOUTS__MOMO_API_USER", API_USER),
        ("MGPASS_LOYALTY__PAYOUTS__MOMO_API_KEY", API_KEY),
        ("MGPASS_LOYALTY__PAYOUTS__REQUEST_TIMEOUT_MS", "1500"),
        ("MGPASS_LOYALTY__PAYOUTS__POLL_INTERVAL_MS", "100"),
        ("MGPASS_LOYALTY__PAYOUTS__RETRY_DELAY_MS", retry.as_str()),
        ("MGPASS_LOYALTY__PAYOUTS__MAX_RETRY_DELAY_MS", max_retry.as_str()),
        ("MGPASS_LOYALTY__PAYOUTS__PENDING_LIMIT_SECS", pending.as_str()),
        ("MGPASS_LOYALTY__PAYOUTS__LEASE_SECS", "4"),
        // 100 points = GHS 1.00
        ("MGPASS_LOYALTY__PAYOUTS__RATE_POINTS", "100"),
        ("MGPASS_LOYALTY__PAYOUTS__RATE_AMOUNT_MINOR", "100"),
    ];
    if setup.callbacks {
        env.push(("MGPASS_LOYALTY__PAYOUTS__MOMO_CALLBACK_URL", callback.as_str()));
    }
    TestServer::start_on_port(database, port, &env).await
}

async fn start(momo: &FakeMomo, setup: Setup) -> TestServer {
    start_on(fresh_database(), free_port(), momo, &setup).await
}

/// A user with `mobile` (verified unless `verified` is false) and `points`; returns (id, token).
async fn member(server: &TestServer, admin: &str, mobile: &str, verified: bool, points: i64) -> (String, String) {
    let email = format!("m-{}@example.com", uuid::Uuid::new_v4().simple());
    let (status, body) = rest(
        server,
        admin,
        "POST",
        "/v1/users",
        Some(json!({"user": {"email": email, "mobile": mobile, "givenName": "Ama", "familyName": "Mensah"}, "password": PW})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["user"]["id"].as_str().unwrap().to_string();
    if verified {
        // Test setup: the SMS verification flow itself is covered by `verification::`.
        psql(&server.database_url, &format!("UPDATE users SET mobile_verified = true WHERE id = '{id}'"));
    }
    if points > 0 {
        adjust(server, admin, &id, points).await;
    }
    (id, server.login(&email, PW).await)
}

/// `mgpass ledger verify` on the server's database passes (balances, lots and entries agree).
fn ledger_verified(server: &TestServer) {
    let out = run_mgpass(&["ledger", "verify"], &[("MGPASS_DATABASE__URL", server.database_url.as_str())]);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// (available, held) points of a user, from the ledger's accounts.
fn balances(server: &TestServer, user: &str) -> (i64, i64) {
    let of = |t: &str| -> i64 {
        psql(
            &server.database_url,
            &format!("SELECT coalesce(sum(balance), 0) FROM loyalty_accounts WHERE account_type = '{t}' AND owner_id = '{user}'"),
        )
        .parse()
        .unwrap()
    };
    (of("user"), of("user_hold"))
}

/// Ledger transactions of a payout, by kind (`payout_capture:1,payout_hold:1`).
fn ledger_of(server: &TestServer, payout: &str) -> String {
    psql(
        &server.database_url,
        &format!(
            "SELECT coalesce(string_agg(kind || ':' || n, ',' ORDER BY kind), '') FROM
               (SELECT kind, count(*) n FROM loyalty_transactions WHERE payout_id = '{payout}' GROUP BY kind) t"
        ),
    )
}

async fn quote(server: &TestServer, token: &str, points: i64) -> (u16, Value) {
    rest(server, token, "POST", "/v1/me/loyalty/payouts:quote", Some(json!({"points": points.to_string()}))).await
}

async fn request(server: &TestServer, token: &str, quote_id: &str) -> (u16, Value) {
    rest(server, token, "POST", "/v1/me/loyalty/payouts", Some(json!({"quoteId": quote_id}))).await
}

/// Quotes and requests a payout; returns the payout.
async fn pay_out(server: &TestServer, token: &str, points: i64) -> Value {
    let (status, body) = quote(server, token, points).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = request(server, token, body["quote"]["id"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["payout"]["status"], "PAYOUT_STATUS_PENDING", "{body}");
    body["payout"].clone()
}

/// Waits until the payout leaves PENDING; returns it.
async fn settled(server: &TestServer, token: &str, id: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (status, body) = rest(server, token, "GET", format!("/v1/me/loyalty/payouts/{id}"), None).await;
        assert_eq!(status, 200, "{body}");
        if body["payout"]["status"] != "PAYOUT_STATUS_PENDING" {
            return body["payout"].clone();
        }
        assert!(Instant::now() < deadline, "payout {id} still pending: {body}\n{}", server.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn a_confirmed_success_captures_the_points() {
    let momo = FakeMomo::start().await;
    let server = start(&momo, Setup::default()).await;
    let admin = server.admin_token().await;
    let (user, token) = member(&server, &admin, "+233241110001", true, 1000).await;

    let (status, q) = quote(&server, &token, 450).await;
    assert_eq!(status, 200, "{q}");
    assert_eq!(q["quote"]["amount"], json!({"amountMinor": "450", "currency": "GHS"}));
    assert_eq!(q["quote"]["mobile"], "+233241110001");
    assert_eq!(balances(&server, &user), (1000, 0), "a quote holds nothing");

    let quote_id = q["quote"]["id"].as_str().unwrap();
    let (_, first) = request(&server, &token, quote_id).await;
    let payout = first["payout"].clone();
    let id = payout["id"].as_str().unwrap();
    let (_, again) = request(&server, &token, quote_id).await;
    assert_eq!(again["payout"]["id"], payout["id"], "idempotent by quote");

    let done = settled(&server, &token, id, WAIT).await;
    assert_eq!(done["status"], "PAYOUT_STATUS_SUCCEEDED", "{done}");
    assert!(!done["providerTransactionId"].as_str().unwrap_or_default().is_empty(), "{done}");
    assert!(!done["settleTransactionId"].as_str().unwrap_or_default().is_empty(), "{done}");
    assert_eq!(balances(&server, &user), (550, 0));
    assert_eq!(ledger_of(&server, id), "payout_capture:1,payout_hold:1");
    assert_eq!(momo.transfer_count(), 1);
    let sent = momo.transfer(payout["referenceId"].as_str().unwrap()).expect("transfer under the payout's reference");
    assert_eq!(sent.body["amount"], "4.50");
    assert_eq!(sent.body["payee"]["partyId"], "233241110001");

    let (_, mine) = rest(&server, &token, "GET", "/v1/me/loyalty/payouts", None).await;
    assert_eq!(mine["payouts"].as_array().unwrap().len(), 1);
    let (status, body) = rest(&server, &admin, "GET", format!("/v1/me/loyalty/payouts/{id}"), None).await;
    assert_eq!((status, rest_reason(&body).as_str()), (404, "PAYOUT_NOT_FOUND"), "another user's payout");
    let (status, body) = rest(&server, &admin, "GET", format!("/v1/loyalty/payouts/{id}"), None).await;
    assert_eq!((status, body["payout"]["status"].as_str()), (200, Some("PAYOUT_STATUS_SUCCEEDED")));
    let (_, list) = rest(&server, &admin, "GET", format!("/v1/loyalty/payouts?userId={user}&status=PAYOUT_STATUS_SUCCEEDED"), None).await;
    assert_eq!(list["payouts"].as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_confirmed_decline_returns_the_points() {
    let momo = FakeMomo::start().await;
    momo.set_outcome_for("+233241110002", Outcome::Pending);
    let server = start(&momo, Setup::default()).await;
    let admin = server.admin_token().await;
    let (user, token) = member(&server, &admin, "+233241110002", true, 800).await;
    let payout = pay_out(&server, &token, 300).await;
    let reference = payout["referenceId"].as_str().unwrap();
    let deadline = Instant::now() + WAIT;
    while momo.status_calls().iter().all(|(r, _)| r != reference) {
        assert!(Instant::now() < deadline, "never read");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(balances(&server, &user), (500, 300), "held while the provider has no outcome");
    momo.settle(reference, Outcome::Decline("PAYEE_NOT_FOUND".into()));
    let done = settled(&server, &token, payout["id"].as_str().unwrap(), WAIT).await;
    assert_eq!(done["status"], "PAYOUT_STATUS_FAILED");
    assert_eq!(done["failureReason"], "PAYEE_NOT_FOUND");
    assert_eq!(balances(&server, &user), (800, 0));
    assert_eq!(ledger_of(&server, payout["id"].as_str().unwrap()), "payout_hold:1,payout_release:1");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timeout_is_resolved_by_a_status_read_not_a_second_transfer() {
    let momo = FakeMomo::start().await;
    // The first request gets through but its answer never comes back in time.
    momo.fail_transfers([Fault::HangAfter]);
    let server = start(&momo, Setup::default()).await;
    let admin = server.admin_token().await;
    let (user, token) = member(&server, &admin, "+233241110003", true, 1000).await;
    let payout = pay_out(&server, &token, 200).await;
    let done = settled(&server, &token, payout["id"].as_str().unwrap(), WAIT).await;
    assert_eq!(done["status"], "PAYOUT_STATUS_SUCCEEDED", "{done}");
    assert_eq!(momo.transfer_calls().len(), 1, "no second transfer request: {:?}", momo.transfer_calls());
    let reference = payout["referenceId"].as_str().unwrap();
    assert!(momo.status_calls().iter().any(|(r, code)| r == reference && *code == 200));
    assert_eq!(balances(&server, &user), (800, 0));

    // A request that never got through: the status read finds nothing, and the transfer is sent
    // again under the same reference.
    momo.fail_transfers([Fault::HangBefore]);
    let payout = pay_out(&server, &token, 100).await;
    let done = settled(&server, &token, payout["id"].as_str().unwrap(), WAIT).await;
    assert_eq!(done["status"], "PAYOUT_STATUS_SUCCEEDED", "{done}");
    let reference = payout["referenceId"].as_str().unwrap();
    let calls: Vec<_> = momo.transfer_calls().into_iter().filter(|(r, _)| r == reference).collect();
    assert_eq!(calls.iter().map(|(_, c)| *c).collect::<Vec<_>>(), vec![0, 202], "{calls:?}");
    assert!(momo.status_calls().iter().any(|(r, code)| r == reference && *code == 404), "read before resending");
    assert_eq!(balances(&server, &user), (700, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_are_retried_with_the_same_reference() {
    let momo = FakeMomo::start().await;
    momo.fail_transfers([Fault::Status(500), Fault::Status(503), Fault::Status(500)]);
    momo.fail_status_reads([Fault::Status(500)]);
    let server = start(&momo, Setup::default()).await;
    let admin = server.admin_token().await;
    let (user, token) = member(&server, &admin, "+233241110004", true, 1000).await;
    let payout = pay_out(&server, &token, 1000).await;
    let done = settled(&server, &token, payout["id"].as_str().unwrap(), WAIT).await;
    assert_eq!(done["status"], "PAYOUT_STATUS_SUCCEEDED", "{done}");
    let calls = momo.transfer_calls();
    assert!(calls.len() >= 2, "{calls:?}");
    assert!(calls.iter().all(|(r, _)| r == payout["referenceId"].as_str().unwrap()), "one reference: {calls:?}");
    assert_eq!(momo.transfer_count(), 1);
    assert_eq!(balances(&server, &user), (0, 0));
    assert_eq!(ledger_of(&server, payout["id"].as_str().unwrap()), "payout_capture:1,payout_hold:1");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_mid_transfer_completes_exactly_once_after_restart() {
    let momo = FakeMomo::start().await;
    let database = fresh_database();
    let setup = Setup::default();
    let mut first = start_on(database.clone(), free_port(), &momo, &setup).await;
    let admin = first.admin_token().await;
    let (user, token) = member(&first, &admin, "+233241110005", true, 1000).await;
    // The transfer reaches the provider, then the process dies while waiting for the answer.
    momo.fail_transfers([Fault::HangAfter]);
    let payout = pay_out(&first, &token, 600).await;
    let id = payout["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + WAIT;
    while momo.transfer_count() == 0 {
        assert!(Instant::now() < deadline, "the worker never sent the transfer");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill();
    assert_eq!(psql(&database, &format!("SELECT status FROM loyalty_payouts WHERE id = '{id}'")), "pending");

    let second = start_on(database.clone(), free_port(), &momo, &setup).await;
    let token = second.login(&psql(&database, &format!("SELECT email FROM users WHERE id = '{user}'")), PW).await;
    let done = settled(&second, &token, &id, WAIT).await;
    assert_eq!(done["status"], "PAYOUT_STATUS_SUCCEEDED", "{done}");
    assert_eq!(momo.transfer_count(), 1, "paid once");
    let reference = payout["referenceId"].as_str().unwrap();
    let calls: Vec<u16> = momo.transfer_calls().into_iter().filter(|(r, _)| r == reference).map(|(_, c)| c).collect();
    assert_eq!(calls, vec![0, 409], "the restarted worker repeated the request under the same reference");
    assert_eq!(ledger_of(&second, &id), "payout_capture:1,payout_hold:1", "captured once");
    assert_eq!(balances(&second, &user), (400, 0));
    ledger_verified(&second);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payout_stuck_pending_goes_to_manual_review_and_an_administrator_settles_it() {
    let momo = FakeMomo::start().await;
    momo.set_outcome(Outcome::Pending);
    let server = start(&momo, Setup { pending_limit_secs: 2, ..Setup::default() }).await;
    let admin = server.admin_token().await;
    let (user, token) = member(&server, &admin, "+233241110006", true, 1000).await;
    let a = pay_out(&server, &token, 300).await;
    let b = pay_out(&server, &token, 200).await;
    let c = pay_out(&server, &token, 100).await;
    for p in [&a, &b, &c] {
        let done = settled(&server, &token, p["id"].as_str().unwrap(), WAIT).await;
        assert_eq!(done["status"], "PAYOUT_STATUS_MANUAL_REVIEW", "{done}");
    }
    assert_eq!(balances(&server, &user), (400, 600), "never refunded blindly: the points stay held");
    let (_, queue) = rest(&server, &admin, "GET", "/v1/loyalty/payouts?status=PAYOUT_STATUS_MANUAL_REVIEW", None).await;
    assert_eq!(queue["payouts"].as_array().unwrap().len(), 3, "{queue}");

    let resolve = |id: &str, outcome: &str, note: &str| {
        let body = json!({"outcome": outcome, "note": note});
        let path = format!("/v1/loyalty/payouts/{id}:resolve");
        let admin = admin.clone();
        let server = &server;
        async move { rest(server, &admin, "POST", path, Some(body)).await }
    };
    let (a_id, b_id, c_id) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap(), c["id"].as_str().unwrap());
    let (status, body) = resolve(a_id, "PAYOUT_STATUS_FAILED", "").await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_ARGUMENT"), "a note is required");

    // The provider reports a late success for A: an administrator cannot fail it.
    momo.settle(a["referenceId"].as_str().unwrap(), Outcome::Succeed);
    let (status, body) = resolve(a_id, "PAYOUT_STATUS_FAILED", "customer says unpaid").await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "PROVIDER_STATUS_CONFLICT"), "{body}");
    let (status, body) = resolve(a_id, "PAYOUT_STATUS_SUCCEEDED", "provider statement line 17").await;
    assert_eq!((status, body["payout"]["status"].as_str()), (200, Some("PAYOUT_STATUS_SUCCEEDED")), "{body}");
    assert_eq!(body["payout"]["resolutionNote"], "provider statement line 17");
    assert!(!body["payout"]["resolverUserId"].as_str().unwrap_or_default().is_empty());

    // B is still pending at the provider: the administrator's evidence decides.
    let (status, body) = resolve(b_id, "PAYOUT_STATUS_FAILED", "provider ticket 42: never paid").await;
    assert_eq!((status, body["payout"]["status"].as_str()), (200, Some("PAYOUT_STATUS_FAILED")), "{body}");
    let (status, body) = resolve(b_id, "PAYOUT_STATUS_SUCCEEDED", "again").await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "PAYOUT_NOT_IN_REVIEW"));

    // C: an administrator's refresh while the provider fails changes nothing; once the provider
    // declines, a refresh applies it.
    momo.fail_status_reads([Fault::Status(500)]);
    let (status, body) = rest(&server, &admin, "POST", format!("/v1/loyalty/payouts/{c_id}:refreshStatus"), Some(json!({}))).await;
    assert_eq!((status, rest_reason(&body).as_str()), (503, "PROVIDER_UNAVAILABLE"), "{body}");
    let (_, body) = rest(&server, &admin, "GET", format!("/v1/loyalty/payouts/{c_id}"), None).await;
    assert_eq!(body["payout"]["status"], "PAYOUT_STATUS_MANUAL_REVIEW");
    momo.settle(c["referenceId"].as_str().unwrap(), Outcome::Decline("NOT_ENOUGH_FUNDS".into()));
    let (status, body) = rest(&server, &admin, "POST", format!("/v1/loyalty/payouts/{c_id}:refreshStatus"), Some(json!({}))).await;
    assert_eq!((status, body["payout"]["status"].as_str()), (200, Some("PAYOUT_STATUS_FAILED")), "{body}");

    assert_eq!(balances(&server, &user), (400 + 200 + 100, 0));
    assert_eq!(ledger_of(&server, a_id), "payout_capture:1,payout_hold:1");
    assert_eq!(ledger_of(&server, b_id), "payout_hold:1,payout_release:1");
    assert_eq!(ledger_of(&server, c_id), "payout_hold:1,payout_release:1");
    ledger_verified(&server);
}

#[tokio::test(flavor = "multi_thread")]
async fn callbacks_are_hints_confirmed_by_a_status_read() {
    let momo = FakeMomo::start().await;
    momo.duplicate_callbacks(3);
    momo.set_outcome(Outcome::SucceedAfter(Duration::from_millis(800)));
    momo.set_outcome_for("+233241110008", Outcome::Pending);
    // The worker's next status read is a minute away: only the callback can settle in time.
    let server = start(&momo, Setup { retry_delay_ms: 60_000, callbacks: true, ..Setup::default() }).await;
    let admin = server.admin_token().await;
    let (user, token) = member(&server, &admin, "+233241110007", true, 1000).await;
    let payout = pay_out(&server, &token, 500).await;
    let id = payout["id"].as_str().unwrap();
    let done = settled(&server, &token, id, WAIT).await;
    assert_eq!(done["status"], "PAYOUT_STATUS_SUCCEEDED", "{done}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ledger_of(&server, id), "payout_capture:1,payout_hold:1", "duplicates change nothing");
    assert_eq!(balances(&server, &user), (500, 0));

    // A forged (or out-of-order) SUCCESSFUL callback for a transfer still pending changes nothing.
    let (other, other_token) = member(&server, &admin, "+233241110008", true, 1000).await;
    let pending = pay_out(&server, &other_token, 400).await;
    let reference = pending["referenceId"].as_str().unwrap().to_string();
    let deadline = Instant::now() + WAIT;
    while momo.transfer(&reference).is_none() {
        assert!(Instant::now() < deadline, "never sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let url = server.url(CALLBACK_PATH);
    let forged = json!({"referenceId": reference, "status": "SUCCESSFUL", "financialTransactionId": "forged"});
    assert_eq!(momo.send_callback(&url, forged).await, 200);
    let (_, now) = rest(&server, &other_token, "GET", format!("/v1/me/loyalty/payouts/{}", pending["id"].as_str().unwrap()), None).await;
    assert_eq!(now["payout"]["status"], "PAYOUT_STATUS_PENDING", "{now}");
    assert_eq!(balances(&server, &other), (600, 400));
    // Then the provider declines; a late SUCCESSFUL callback still cannot capture.
    momo.settle(&reference, Outcome::Decline("PAYER_LIMIT_REACHED".into()));
    let late = json!({"referenceId": reference, "status": "SUCCESSFUL"});
    assert_eq!(momo.send_callback(&url, late).await, 200);
    let done = settled(&server, &other_token, pending["id"].as_str().unwrap(), WAIT).await;
    assert_eq!(done["status"], "PAYOUT_STATUS_FAILED", "{done}");
    assert_eq!(balances(&server, &other), (1000, 0));

    // Unknown references are acknowledged; unknown providers and bodies without a reference are not.
    assert_eq!(momo.send_callback(&url, json!({"referenceId": uuid::Uuid::new_v4().to_string(), "status": "SUCCESSFUL"})).await, 200);
    assert_eq!(momo.send_callback(&server.url("/v1/loyalty/payoutCallbacks/acme_pay"), json!({"referenceId": reference})).await, 404);
    assert_eq!(momo.send_callback(&url, json!({"status": "SUCCESSFUL"})).await, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_change_nothing() {
    let momo = FakeMomo::start().await;
    let server = start(&momo, Setup::default()).await;
    let admin = server.admin_token().await;
    let (unverified, token) = member(&server, &admin, "+233241110009", false, 1000).await;
    let (status, body) = quote(&server, &token, 500).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "MOBILE_NOT_VERIFIED"), "{body}");

    let (user, token) = member(&server, &admin, "+233241110010", true, 300).await;
    let (status, body) = quote(&server, &token, 500).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INSUFFICIENT_POINTS"), "{body}");
    let (status, body) = quote(&server, &token, 50).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "PAYOUT_AMOUNT_OUT_OF_RANGE"), "below the minimum: {body}");
    let (status, body) = quote(&server, &token, -5).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "PAYOUT_AMOUNT_OUT_OF_RANGE"), "{body}");
    // Two quotes the balance covers one at a time: the second request is refused.
    let (_, q1) = quote(&server, &token, 200).await;
    let (_, q2) = quote(&server, &token, 200).await;
    let (status, _) = request(&server, &token, q1["quote"]["id"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    let (status, body) = request(&server, &token, q2["quote"]["id"].as_str().unwrap()).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INSUFFICIENT_POINTS"), "{body}");
    // A quote past its validity (its clock moved on) is refused.
    let (_, q3) = quote(&server, &token, 100).await;
    let q3 = q3["quote"]["id"].as_str().unwrap();
    psql(&server.database_url, &format!("UPDATE loyalty_payout_quotes SET expires_at = now() - interval '1 second' WHERE id = '{q3}'"));
    let (status, body) = request(&server, &token, q3).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "QUOTE_EXPIRED"), "{body}");
    let (status, body) = request(&server, &token, &uuid::Uuid::new_v4().to_string()).await;
    assert_eq!((status, rest_reason(&body).as_str()), (404, "QUOTE_NOT_FOUND"), "{body}");
    let (_, other_token) = member(&server, &admin, "+233241110012", true, 500).await;
    let (_, theirs) = quote(&server, &other_token, 100).await;
    let (status, body) = request(&server, &token, theirs["quote"]["id"].as_str().unwrap()).await;
    assert_eq!((status, rest_reason(&body).as_str()), (404, "QUOTE_NOT_FOUND"), "{body}");

    assert_eq!(psql(&server.database_url, &format!("SELECT count(*) FROM loyalty_payouts WHERE user_id = '{unverified}'")), "0");
    assert_eq!(psql(&server.database_url, &format!("SELECT count(*) FROM loyalty_payouts WHERE user_id = '{user}'")), "1");
    assert_eq!(balances(&server, &unverified), (1000, 0));

    // Without a provider, cashback is off.
    let off = TestServer::start().await;
    let admin = off.admin_token().await;
    let (status, body) = quote(&off, &admin, 500).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "FEATURE_DISABLED"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_requests_never_overdraw() {
    let momo = FakeMomo::start().await;
    momo.set_outcome(Outcome::Pending);
    let server = start(&momo, Setup::default()).await;
    let admin = server.admin_token().await;
    let (user, token) = member(&server, &admin, "+233241110011", true, 1000).await;
    let mut quotes = Vec::new();
    for _ in 0..10 {
        let (status, q) = quote(&server, &token, 300).await;
        assert_eq!(status, 200, "{q}");
        quotes.push(q["quote"]["id"].as_str().unwrap().to_string());
    }
    let answers = join_all(quotes.iter().map(|q| request(&server, &token, q))).await;
    let ok = answers.iter().filter(|(s, _)| *s == 200).count();
    let refused = answers.iter().filter(|(s, b)| *s == 400 && rest_reason(b) == "INSUFFICIENT_POINTS").count();
    assert_eq!((ok, refused), (3, 7), "{answers:?}");
    // One quote requested many times at once is one payout.
    let (_, q) = quote(&server, &token, 100).await;
    let q = q["quote"]["id"].as_str().unwrap().to_string();
    let answers = join_all((0..8).map(|_| request(&server, &token, &q))).await;
    let ids: std::collections::HashSet<_> = answers.iter().map(|(s, b)| (*s, b["payout"]["id"].clone())).collect();
    assert_eq!(ids.len(), 1, "{answers:?}");

    let db = &server.database_url;
    assert_eq!(balances(&server, &user), (0, 1000));
    assert_eq!(psql(db, "SELECT count(*) FROM loyalty_accounts WHERE balance < 0"), "0");
    assert_eq!(
        psql(db, &format!("SELECT count(*), sum(points) FROM loyalty_payouts WHERE user_id = '{user}'")),
        "4|1000"
    );
    assert_eq!(
        psql(db, &format!("SELECT count(*) FROM loyalty_transactions WHERE user_id = '{user}' AND kind = 'payout_hold'")),
        "4",
        "a hold for each payout, none for the refused ones"
    );
    ledger_verified(&server);

    // The caller's four payouts, newest first, in pages of three.
    let (_, first) = rest(&server, &token, "GET", "/v1/me/loyalty/payouts?pageSize=3", None).await;
    let token_2 = first["nextPageToken"].as_str().expect("a second page").to_string();
    let (_, second) = rest(&server, &token, "GET", format!("/v1/me/loyalty/payouts?pageSize=3&pageToken={token_2}"), None).await;
    let ids: Vec<_> = first["payouts"].as_array().unwrap().iter().chain(second["payouts"].as_array().unwrap()).map(|p| p["id"].clone()).collect();
    assert_eq!(ids.len(), 4, "{first} {second}");
    assert!(second["nextPageToken"].as_str().unwrap_or_default().is_empty());
    assert_eq!(ids.iter().collect::<std::collections::HashSet<_>>().len(), 4);
    let (status, body) = rest(&server, &admin, "GET", "/v1/loyalty/payouts/not-an-id", None).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_ID"), "{body}");
}
