//! Delivery: the outbox, its worker, SMTP (a real aiosmtpd on loopback) and the SMS provider
//! adapter (a recording HTTP server). Nothing in the API queues messages yet, so most tests drive
//! `Outbox::enqueue` and `Worker` as a library on a fresh migrated database; the last ones run the
//! real binary, whose own worker delivers what the library queued in its database.

use std::time::{Duration, Instant};

use diesel::{QueryableByName, sql_types::{BigInt, Text, Uuid as SqlUuid}};
use diesel_async::{AsyncConnection, RunQueryDsl};
use mgpass_e2e::{TEST_MASTER_KEY, TestServer, fresh_database, grpc_reason, sms::SmsProvider, smtp::SmtpServer};
use mgpass_server::{
    config::DeliveryConfig,
    crypto::sealed::MasterKey,
    db::DbPool,
    delivery::{Outbox, OutboxRow, OutgoingMessage, Status, Worker},
};
use tokio::sync::watch;
use uuid::Uuid;

const FROM: &str = "mgpass <no-reply@mgpass.test>";
const WAIT: Duration = Duration::from_secs(20);

async fn fresh_db() -> (String, DbPool) {
    let url = fresh_database();
    mgpass_server::db::migrate(&url).await.expect("migrations apply");
    let pool = mgpass_server::db::pool(&url, 8).unwrap();
    (url, pool)
}

fn key() -> MasterKey {
    MasterKey::from_base64(TEST_MASTER_KEY).unwrap()
}

/// Fast polling and backoff; channels off until a test turns them on.
fn config() -> DeliveryConfig {
    DeliveryConfig {
        email_from: FROM.into(),
        poll_interval_ms: 100,
        retry_base_ms: 100,
        retry_max_ms: 2_000,
        max_attempts: 5,
        send_timeout_secs: 5,
        lease_secs: 30,
        ..DeliveryConfig::default()
    }
}

fn with_smtp(smtp: &SmtpServer) -> DeliveryConfig {
    DeliveryConfig { smtp_url: smtp.url(), ..config() }
}

fn with_sms(sms: &SmsProvider) -> DeliveryConfig {
    DeliveryConfig { sms_url: sms.url.clone(), sms_auth_header: "Bearer test-sms-key".into(), ..config() }
}

/// A random code, as a verification flow would put in a message.
fn code() -> String {
    Uuid::new_v4().simple().to_string()[..10].to_uppercase()
}

struct Running {
    stop: watch::Sender<bool>,
    worker: Worker,
}

fn start_worker(pool: &DbPool, config: &DeliveryConfig) -> Running {
    let (stop, stopped) = watch::channel(false);
    let worker = Worker::spawn(pool.clone(), config.clone(), key(), stopped).unwrap();
    Running { stop, worker }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(15), self.worker.join()).await.expect("the worker stops on shutdown");
    }
}

async fn enqueue(pool: &DbPool, outbox: &Outbox, msg: OutgoingMessage) -> Uuid {
    let mut conn = pool.get().await.unwrap();
    outbox.enqueue(&mut conn, msg).await.unwrap()
}

async fn row(pool: &DbPool, id: Uuid) -> OutboxRow {
    let mut conn = pool.get().await.unwrap();
    Outbox::get(&mut conn, id).await.unwrap().expect("the outbox row exists")
}

async fn wait_status(pool: &DbPool, id: Uuid, status: Status) -> OutboxRow {
    let deadline = Instant::now() + WAIT;
    loop {
        let r = row(pool, id).await;
        if r.status() == Some(status) {
            return r;
        }
        assert!(Instant::now() < deadline, "message {id} is {} (not {status:?}) after {WAIT:?}: {r:?}", r.status);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Rows where `needle` appears in any column, the raw bytes of the sealed body included.
async fn rows_mentioning(pool: &DbPool, needle: &str) -> i64 {
    let mut conn = pool.get().await.unwrap();
    let c: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM outbox o
          WHERE strpos(o::text, $1) > 0
             OR strpos(encode(coalesce(o.sealed_body, ''::bytea), 'escape'), $1) > 0",
    )
    .bind::<Text, _>(needle)
    .get_result(&mut conn)
    .await
    .unwrap();
    c.n
}

async fn body_is_null(pool: &DbPool, id: Uuid) -> bool {
    let mut conn = pool.get().await.unwrap();
    let c: Count = diesel::sql_query("SELECT count(*) AS n FROM outbox WHERE id = $1 AND sealed_body IS NULL")
        .bind::<SqlUuid, _>(id)
        .get_result(&mut conn)
        .await
        .unwrap();
    c.n == 1
}

async fn count_status(pool: &DbPool, status: &str) -> i64 {
    let mut conn = pool.get().await.unwrap();
    let c: Count = diesel::sql_query("SELECT count(*) AS n FROM outbox WHERE status = $1")
        .bind::<Text, _>(status)
        .get_result(&mut conn)
        .await
        .unwrap();
    c.n
}

#[tokio::test(flavor = "multi_thread")]
async fn email_arrives_rendered_and_its_body_is_sealed_then_wiped() {
    let smtp = SmtpServer::start();
    let (_, pool) = fresh_db().await;
    let config = with_smtp(&smtp);
    let outbox = Outbox::new(&config, key()).unwrap();
    let code = code();
    let msg = OutgoingMessage::email("ama@example.test", "verify_email")
        .var("code", code.as_str())
        .var("name", "Ama")
        .var("expires_minutes", 15);
    let id = enqueue(&pool, &outbox, msg).await;

    // At rest, before delivery: sealed, the code nowhere in the table.
    let queued = row(&pool, id).await;
    assert_eq!(queued.status(), Some(Status::Pending));
    assert_eq!((queued.channel.as_str(), queued.recipient.as_str(), queued.template.as_str()), ("email", "ama@example.test", "verify_email"));
    assert_eq!(queued.locale, "en");
    assert!(!body_is_null(&pool, id).await, "the sealed body is stored until delivery");
    assert_eq!(rows_mentioning(&pool, &code).await, 0, "the code is not readable in the outbox");

    let worker = start_worker(&pool, &config);
    let mails = smtp.wait_for(1, WAIT).await;
    let mail = &mails[0];
    assert_eq!(mail.subject, "Verify your email address");
    assert_eq!(mail.mail_from, "no-reply@mgpass.test");
    assert_eq!(mail.rcpt_tos, ["ama@example.test"]);
    assert!(mail.from.contains("no-reply@mgpass.test") && mail.from.contains("mgpass"), "From: {}", mail.from);
    assert!(mail.to.contains("ama@example.test"), "To: {}", mail.to);
    let text = mail.text.as_deref().expect("a text/plain part");
    assert!(text.starts_with("Hello Ama,"), "{text}");
    assert!(text.contains(&code) && text.contains("15 minutes"), "{text}");
    let html = mail.html.as_deref().expect("a text/html part");
    assert!(html.contains(&code) && html.contains("<p>Hello Ama,</p>"), "{html}");
    assert_eq!(mail.message_id, format!("<{id}@mgpass.test>"), "the Message-ID follows the outbox id");

    let sent = wait_status(&pool, id, Status::Sent).await;
    assert_eq!(sent.attempts, 1);
    assert!(sent.sent_at.is_some() && sent.last_error.is_none());
    assert!(body_is_null(&pool, id).await, "the body is wiped once sent");
    assert_eq!(rows_mentioning(&pool, &code).await, 0);
    worker.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.messages().len(), 1, "sent once");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_locale_variant_is_used_when_present_and_english_otherwise() {
    let smtp = SmtpServer::start();
    let (_, pool) = fresh_db().await;
    let dir = std::env::temp_dir().join(format!("mgpass-templates-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(dir.join("email")).unwrap();
    std::fs::write(dir.join("email/verify_email.fr.subject"), "Vérifiez votre adresse e-mail\n").unwrap();
    std::fs::write(dir.join("email/verify_email.fr.txt"), "Bonjour,\n\nVotre code : {{ code }}\n").unwrap();
    let config = DeliveryConfig { templates_dir: dir.to_str().unwrap().into(), ..with_smtp(&smtp) };
    let outbox = Outbox::new(&config, key()).unwrap();
    let worker = start_worker(&pool, &config);

    let (fr_code, de_code, plain_code) = (code(), code(), code());
    let fr = enqueue(&pool, &outbox, OutgoingMessage::email("fr@example.test", "verify_email").locale("fr-CA").var("code", fr_code.as_str())).await;
    let de = enqueue(&pool, &outbox, OutgoingMessage::email("de@example.test", "verify_email").locale("de").var("code", de_code.as_str())).await;
    let none = enqueue(&pool, &outbox, OutgoingMessage::email("en@example.test", "verify_email").var("code", plain_code.as_str())).await;
    let mails = smtp.wait_for(3, WAIT).await;
    let by_rcpt = |to: &str| mails.iter().find(|m| m.rcpt_tos == [to]).unwrap_or_else(|| panic!("no mail to {to}"));

    let m = by_rcpt("fr@example.test");
    assert_eq!(m.subject, "Vérifiez votre adresse e-mail");
    assert_eq!(m.text.as_deref().unwrap().trim_end(), format!("Bonjour,\n\nVotre code : {fr_code}"));
    assert!(m.html.is_none(), "the fr variant has no HTML, and English HTML is not mixed in");
    for (to, c) in [("de@example.test", &de_code), ("en@example.test", &plain_code)] {
        let m = by_rcpt(to);
        assert_eq!(m.subject, "Verify your email address", "{to} falls back to English");
        assert!(m.text.as_deref().unwrap().contains(c.as_str()));
    }
    assert_eq!(row(&pool, fr).await.locale, "fr");
    assert_eq!(row(&pool, de).await.locale, "en");
    assert_eq!(row(&pool, none).await.locale, "en");
    worker.stop().await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sms_provider_gets_the_json_body_and_the_auth_header() {
    let sms = SmsProvider::start().await;
    let (_, pool) = fresh_db().await;
    let config = with_sms(&sms);
    let outbox = Outbox::new(&config, key()).unwrap();
    let worker = start_worker(&pool, &config);
    let code = code();
    let id = enqueue(&pool, &outbox, OutgoingMessage::sms("+233201234567", "mobile_2fa").var("code", code.as_str())).await;

    let calls = sms.wait_for(1, WAIT).await;
    let call = &calls[0];
    assert_eq!((call.method.as_str(), call.path.as_str()), ("POST", "/v1/sms"));
    assert_eq!(call.headers["authorization"], "Bearer test-sms-key");
    assert!(call.headers["content-type"].starts_with("application/json"));
    let body = call.json();
    assert_eq!(body["to"], "+233201234567");
    assert_eq!(body["text"], format!("Your sign-in code is {code}. Never share it."));
    assert_eq!(body.as_object().unwrap().len(), 2, "the default body template: {body}");

    let sent = wait_status(&pool, id, Status::Sent).await;
    assert_eq!(sent.attempts, 1);
    assert!(body_is_null(&pool, id).await);
    assert_eq!(rows_mentioning(&pool, &code).await, 0);
    worker.stop().await;
    assert_eq!(sms.requests().len(), 1, "sent once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_failing_twice_gets_the_message_on_the_third_attempt() {
    let sms = SmsProvider::start_failing(2).await;
    let (_, pool) = fresh_db().await;
    let config = with_sms(&sms);
    let outbox = Outbox::new(&config, key()).unwrap();
    let code = code();
    let id = enqueue(&pool, &outbox, OutgoingMessage::sms("+14155550123", "verify_mobile").var("code", code.as_str())).await;
    let worker = start_worker(&pool, &config);

    let sent = wait_status(&pool, id, Status::Sent).await;
    assert_eq!(sent.attempts, 3);
    let calls = sms.requests();
    assert_eq!(calls.iter().map(|c| c.status).collect::<Vec<_>>(), [500, 500, 200]);
    assert!(calls.iter().all(|c| c.json()["text"].as_str().unwrap().contains(&code)), "each attempt sends the same message");
    // Exponential backoff: 100 ms, then 200 ms.
    let gap1 = calls[1].at - calls[0].at;
    let gap2 = calls[2].at - calls[1].at;
    assert!(gap1 >= Duration::from_millis(90), "first retry after {gap1:?}");
    assert!(gap2 >= Duration::from_millis(190), "second retry after {gap2:?}");
    assert!(body_is_null(&pool, id).await);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn smtp_answering_try_again_later_is_retried() {
    let smtp = SmtpServer::start_failing(1);
    let (_, pool) = fresh_db().await;
    let config = with_smtp(&smtp);
    let outbox = Outbox::new(&config, key()).unwrap();
    let worker = start_worker(&pool, &config);
    let code = code();
    let id = enqueue(&pool, &outbox, OutgoingMessage::email("kofi@example.test", "email_2fa").var("code", code.as_str())).await;
    let sent = wait_status(&pool, id, Status::Sent).await;
    assert_eq!(sent.attempts, 2);
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].text.as_deref().unwrap().contains(&code));
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_is_given_up_after_max_attempts_and_its_body_wiped() {
    let sms = SmsProvider::start_failing(usize::MAX).await;
    let (_, pool) = fresh_db().await;
    let config = DeliveryConfig { max_attempts: 3, ..with_sms(&sms) };
    let outbox = Outbox::new(&config, key()).unwrap();
    let worker = start_worker(&pool, &config);
    let code = code();
    let id = enqueue(&pool, &outbox, OutgoingMessage::sms("+447700900123", "password_reset").var("code", code.as_str())).await;

    let failed = wait_status(&pool, id, Status::Failed).await;
    assert_eq!(failed.attempts, 3);
    let error = failed.last_error.expect("the last error is kept");
    assert!(error.contains("500"), "{error}");
    assert!(!error.contains(&code));
    assert!(body_is_null(&pool, id).await, "the body is wiped once given up");
    assert_eq!(rows_mentioning(&pool, &code).await, 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sms.requests().len(), 3, "no attempt after the last");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_sharing_a_database_deliver_each_message_exactly_once() {
    let smtp = SmtpServer::start();
    let (url, pool) = fresh_db().await;
    let config = DeliveryConfig { batch_size: 3, ..with_smtp(&smtp) };
    let outbox = Outbox::new(&config, key()).unwrap();
    // Three "instances", each with its own pool.
    let pools: Vec<DbPool> = (0..3).map(|_| mgpass_server::db::pool(&url, 4).unwrap()).collect();
    let workers: Vec<Running> = pools.iter().map(|p| start_worker(p, &config)).collect();

    let mut codes = Vec::new();
    // Half in one transaction (one wake-up for all workers at once), half one by one.
    let mut conn = pool.get().await.unwrap();
    let batch: Vec<(String, OutgoingMessage)> = (0..20)
        .map(|i| {
            let c = code();
            (c.clone(), OutgoingMessage::email(format!("batch{i}@example.test"), "email_2fa").var("code", c.as_str()))
        })
        .collect();
    let outbox2 = outbox.clone();
    let batch_codes: Vec<String> = batch.iter().map(|(c, _)| c.clone()).collect();
    conn.transaction(async move |conn| {
        for (_, msg) in batch {
            outbox2.enqueue(conn, msg).await?;
        }
        Ok::<_, mgpass_server::error::Error>(())
    })
    .await
    .unwrap();
    drop(conn);
    codes.extend(batch_codes);
    for i in 0..20 {
        let c = code();
        enqueue(&pool, &outbox, OutgoingMessage::email(format!("single{i}@example.test"), "email_2fa").var("code", c.as_str())).await;
        codes.push(c);
    }

    smtp.wait_for(40, WAIT).await;
    let deadline = Instant::now() + WAIT;
    while count_status(&pool, "sent").await < 40 {
        assert!(Instant::now() < deadline, "all 40 marked sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mails = smtp.messages();
    assert_eq!(mails.len(), 40, "no message sent twice");
    for c in &codes {
        let n = mails.iter().filter(|m| m.text.as_deref().unwrap().contains(c.as_str())).count();
        assert_eq!(n, 1, "code {c} delivered {n} times");
    }
    let mut conn = pool.get().await.unwrap();
    let attempts: Count = diesel::sql_query("SELECT coalesce(sum(attempts), 0)::int8 AS n FROM outbox")
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(attempts.n, 40, "one attempt each");
    for w in workers {
        w.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_queued_while_no_worker_runs_are_delivered_when_one_starts() {
    let smtp = SmtpServer::start();
    let sms = SmsProvider::start().await;
    let (_, pool) = fresh_db().await;
    let config = DeliveryConfig { smtp_url: smtp.url(), ..with_sms(&sms) };
    let outbox = Outbox::new(&config, key()).unwrap();

    // A first worker runs, then stops (a deploy).
    let first = start_worker(&pool, &config);
    let early = enqueue(&pool, &outbox, OutgoingMessage::email("a@example.test", "magic_link").var("link", "https://id.example/m?t=1")).await;
    wait_status(&pool, early, Status::Sent).await;
    first.stop().await;

    let mut ids = Vec::new();
    for i in 0..3 {
        let link = format!("https://id.example/m?t={}", code());
        ids.push(enqueue(&pool, &outbox, OutgoingMessage::email(format!("q{i}@example.test"), "magic_link").var("link", link)).await);
    }
    ids.push(enqueue(&pool, &outbox, OutgoingMessage::sms("+233201234567", "verify_mobile").var("code", code())).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.messages().len(), 1, "nothing is sent while no worker runs");
    assert!(sms.requests().is_empty());
    for id in &ids {
        assert_eq!(row(&pool, *id).await.status(), Some(Status::Pending));
    }

    let second = start_worker(&pool, &config);
    for id in &ids {
        wait_status(&pool, *id, Status::Sent).await;
    }
    assert_eq!(smtp.messages().len(), 4);
    assert_eq!(sms.delivered().len(), 1);
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_claim_whose_worker_died_is_retried_after_its_lease() {
    let smtp = SmtpServer::start();
    let (_, pool) = fresh_db().await;
    let config = with_smtp(&smtp);
    let outbox = Outbox::new(&config, key()).unwrap();
    let id = enqueue(&pool, &outbox, OutgoingMessage::email("lease@example.test", "email_2fa").var("code", code())).await;
    // A worker claimed it (lease of 1.5 s) and died before sending.
    let mut conn = pool.get().await.unwrap();
    diesel::sql_query(
        "UPDATE outbox SET status = 'sending', attempts = 1, next_attempt_at = now() + interval '1.5 seconds'
          WHERE id = $1",
    )
    .bind::<SqlUuid, _>(id)
    .execute(&mut conn)
    .await
    .unwrap();
    drop(conn);

    let started = Instant::now();
    let worker = start_worker(&pool, &config);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(smtp.messages().is_empty(), "a live claim is left alone");
    let sent = wait_status(&pool, id, Status::Sent).await;
    assert!(started.elapsed() >= Duration::from_millis(1200), "taken over only once the lease ran out");
    assert_eq!(sent.attempts, 2);
    assert_eq!(smtp.messages().len(), 1);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_commits_or_rolls_back_with_the_callers_transaction() {
    let smtp = SmtpServer::start();
    let (_, pool) = fresh_db().await;
    let config = with_smtp(&smtp);
    let outbox = Outbox::new(&config, key()).unwrap();
    let worker = start_worker(&pool, &config);

    let mut conn = pool.get().await.unwrap();
    let rolled_back = code();
    let (o, c) = (outbox.clone(), rolled_back.clone());
    let result = conn
        .transaction(async move |conn| {
            o.enqueue(conn, OutgoingMessage::email("rb@example.test", "email_2fa").var("code", c.as_str())).await?;
            Err::<(), _>(mgpass_server::error::Error::internal("the caller's own write failed"))
        })
        .await;
    assert!(result.is_err());
    let committed = code();
    let (o, c) = (outbox.clone(), committed.clone());
    let id = conn
        .transaction(async move |conn| o.enqueue(conn, OutgoingMessage::email("ok@example.test", "email_2fa").var("code", c.as_str())).await)
        .await
        .unwrap();
    drop(conn);

    wait_status(&pool, id, Status::Sent).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].rcpt_tos, ["ok@example.test"]);
    assert!(!mails.iter().any(|m| m.raw.contains(&rolled_back)), "a rolled-back message is never sent");
    assert_eq!(count_status(&pool, "pending").await + count_status(&pool, "sending").await, 0);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_channel_without_transport_and_bad_messages_are_refused() {
    let (_, pool) = fresh_db().await;
    let smtp = SmtpServer::start();
    let outbox = Outbox::new(&with_smtp(&smtp), key()).unwrap(); // email on, SMS off
    let mut conn = pool.get().await.unwrap();
    let reason = |err: mgpass_server::error::Error| grpc_reason(&tonic::Status::from(err));

    let err = outbox.enqueue(&mut conn, OutgoingMessage::sms("+233201234567", "mobile_2fa").var("code", "1")).await.unwrap_err();
    assert!(err.to_string().contains("delivery.sms_url"), "{err}");
    assert_eq!(reason(err), "FEATURE_DISABLED");
    let off = Outbox::new(&config(), key()).unwrap();
    let err = off.enqueue(&mut conn, OutgoingMessage::email("a@example.test", "email_2fa").var("code", "1")).await.unwrap_err();
    assert_eq!(reason(err), "FEATURE_DISABLED");

    let err = outbox.enqueue(&mut conn, OutgoingMessage::email("not an address", "email_2fa").var("code", "1")).await.unwrap_err();
    assert_eq!(reason(err), "INVALID_EMAIL");
    let sms_outbox = Outbox::new(&DeliveryConfig { sms_url: "http://127.0.0.1:9/".into(), ..config() }, key()).unwrap();
    let err = sms_outbox.enqueue(&mut conn, OutgoingMessage::sms("0201234567", "mobile_2fa").var("code", "1")).await.unwrap_err();
    assert_eq!(reason(err), "INVALID_MOBILE");
    // A template that needs `code` without one, and an unknown template: nothing is queued.
    assert!(outbox.enqueue(&mut conn, OutgoingMessage::email("a@example.test", "email_2fa")).await.is_err());
    assert!(outbox.enqueue(&mut conn, OutgoingMessage::email("a@example.test", "no_such")).await.is_err());
    drop(conn);
    assert_eq!(count_status(&pool, "pending").await, 0);
}

/// The real binary: its worker (wired into `serve`) delivers what is queued in its database, the
/// configuration comes from `MGPASS_DELIVERY__*`, the log has one line per delivery without the
/// code, and a message queued while the server is down goes out when it is back.
#[tokio::test(flavor = "multi_thread")]
async fn the_server_delivers_its_outbox_and_survives_a_restart() {
    let smtp = SmtpServer::start();
    let sms = SmsProvider::start().await;
    let smtp_url = smtp.url();
    let body_template = r#"{"messages":[{"dest":"{{to}}","body":"{{text}}"}],"sender":"mgpass"}"#;
    let env = [
        ("MGPASS_DELIVERY__SMTP_URL", smtp_url.as_str()),
        ("MGPASS_DELIVERY__EMAIL_FROM", FROM),
        ("MGPASS_DELIVERY__SMS_URL", sms.url.as_str()),
        ("MGPASS_DELIVERY__SMS_AUTH_HEADER_NAME", "X-Api-Key"),
        ("MGPASS_DELIVERY__SMS_AUTH_HEADER", "e2e-key"),
        ("MGPASS_DELIVERY__SMS_BODY_TEMPLATE", body_template),
        ("MGPASS_DELIVERY__POLL_INTERVAL_MS", "100"),
        ("RUST_LOG", "info"),
    ];
    let mut server = TestServer::start_with(&env).await;
    let pool = mgpass_server::db::pool(&server.database_url, 2).unwrap();
    let lib_config = DeliveryConfig { smtp_url: smtp.url(), sms_url: sms.url.clone(), ..config() };
    let outbox = Outbox::new(&lib_config, key()).unwrap();

    let (email_code, sms_code) = (code(), code());
    let email = enqueue(&pool, &outbox, OutgoingMessage::email("srv@example.test", "password_reset").var("code", email_code.as_str())).await;
    let text = enqueue(&pool, &outbox, OutgoingMessage::sms("+233201234567", "password_reset").var("code", sms_code.as_str())).await;
    let mails = smtp.wait_for(1, WAIT).await;
    assert_eq!(mails[0].subject, "Reset your password");
    assert_eq!(mails[0].mail_from, "no-reply@mgpass.test");
    assert!(mails[0].text.as_deref().unwrap().contains(&email_code));
    let calls = sms.wait_for(1, WAIT).await;
    assert_eq!(calls[0].headers["x-api-key"], "e2e-key");
    assert!(!calls[0].headers.contains_key("authorization"));
    let body = calls[0].json();
    assert_eq!(body["messages"][0]["dest"], "+233201234567");
    assert!(body["messages"][0]["body"].as_str().unwrap().contains(&sms_code));
    assert_eq!(body["sender"], "mgpass");
    wait_status(&pool, email, Status::Sent).await;
    wait_status(&pool, text, Status::Sent).await;

    let status = server.terminate().expect("the server was running");
    assert!(status.success(), "mgpass stops cleanly with its worker: {status:?}");
    let log = server.logs();
    for id in [email, text] {
        let line = log.lines().find(|l| l.contains(&id.to_string())).unwrap_or_else(|| panic!("no log line for {id}:\n{log}"));
        assert!(line.contains("sent") && line.contains("password_reset") && line.contains("attempt"), "{line}");
    }
    for secret in [&email_code, &sms_code, &"e2e-key".to_string()] {
        assert!(!log.contains(secret.as_str()), "the log shows a secret:\n{log}");
    }

    // Queued while the server is down: delivered once it is back.
    let later = code();
    let id = enqueue(&pool, &outbox, OutgoingMessage::email("later@example.test", "email_2fa").var("code", later.as_str())).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(row(&pool, id).await.status(), Some(Status::Pending));
    let _server = TestServer::start_on(server.database_url.clone(), &env).await;
    wait_status(&pool, id, Status::Sent).await;
    let mails = smtp.wait_for(2, WAIT).await;
    assert!(mails[1].text.as_deref().unwrap().contains(&later));
}
