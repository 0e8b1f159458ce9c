//! Helpers of the verification and second-factor tests: a server wired to the real SMTP sink
//! and SMS provider, REST calls, and reading codes and links out of delivered messages.


use std::{process::Command, time::Duration};

use mgpass_e2e::{TestServer, sms::SmsProvider, smtp::SmtpServer};
use serde_json::{Value, json};

pub const WAIT: Duration = Duration::from_secs(15);

/// Starts mgpass delivering to `smtp` (and `sms`), polling fast, with `extra` settings.
pub async fn start(
    smtp: &SmtpServer,
    sms: Option<&SmsProvider>,
    extra: &[(&str, &str)],
) -> TestServer {
    let smtp_url = smtp.url();
    let mut env: Vec<(String, String)> = vec![
        ("MGPASS_DELIVERY__SMTP_URL".into(), smtp_url),
        (
            "MGPASS_DELIVERY__EMAIL_FROM".into(),
            "mgpass <no-reply@mgpass.test>".into(),
        ),
        ("MGPASS_DELIVERY__POLL_INTERVAL_MS".into(), "100".into()),
    ];
    if let Some(sms) = sms {
        env.push(("MGPASS_DELIVERY__SMS_URL".into(), sms.url.clone()));
    }
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    TestServer::start_with(&refs).await
}

pub async fn call(
    server: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = server
        .http
        .request(method.parse().unwrap(), server.url(path));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

pub async fn post(
    server: &TestServer,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    call(server, "POST", path, token, Some(body)).await
}

pub async fn get(server: &TestServer, path: &str, token: &str) -> (u16, Value) {
    call(server, "GET", path, Some(token), None).await
}

pub async fn login(server: &TestServer, identifier: &str, password: &str) -> (u16, Value) {
    post(
        server,
        "/v1/auth/login",
        None,
        json!({"identifier": identifier, "password": password}),
    )
    .await
}

/// Creates a user as the administrator; returns its id.
pub async fn create_user(server: &TestServer, user: Value, password: &str) -> String {
    let admin = server.admin_token().await;
    let (status, body) = post(
        server,
        "/v1/users",
        Some(&admin),
        json!({"user": user, "password": password}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["user"]["id"].as_str().unwrap().to_string()
}

/// The one standalone 6-digit number of a message.
pub fn code_in(text: &str) -> String {
    let codes: Vec<&str> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| w.len() == 6)
        .collect();
    assert_eq!(codes.len(), 1, "exactly one 6-digit code in: {text}");
    codes[0].to_string()
}

/// The first http(s) link of a message.
pub fn link_in(text: &str) -> String {
    let start = text
        .find("http")
        .unwrap_or_else(|| panic!("no link in: {text}"));
    text[start..].split_whitespace().next().unwrap().to_string()
}

/// The token at the end of a link.
pub fn token_of(link: &str) -> String {
    link.rsplit('/').next().unwrap().to_string()
}

/// Waits for the `n`-th email (1-based) and returns its text, checking its recipient.
pub async fn nth_email(smtp: &SmtpServer, n: usize, to: &str) -> String {
    let mails = smtp.wait_for(n, WAIT).await;
    let mail = &mails[n - 1];
    assert_eq!(mail.rcpt_tos, [to.to_string()], "email {n}: {mail:?}");
    mail.text.clone().expect("a text part")
}

/// Waits for the `n`-th delivered SMS and returns its text, checking its recipient.
pub async fn nth_sms(sms: &SmsProvider, n: usize, to: &str) -> String {
    let delivered = sms.wait_for(n, WAIT).await;
    let body = delivered[n - 1].json();
    assert_eq!(body["to"], to, "{body}");
    body["text"].as_str().unwrap().to_string()
}

/// The whole database as SQL text (pg_dump), to prove a secret is stored nowhere in clear.
pub fn dump(server: &TestServer) -> String {
    let out = Command::new("pg_dump")
        .args(["--data-only", &server.database_url])
        .output()
        .expect("pg_dump runs");
    assert!(
        out.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether `secret` appears in the dump as a token of its own (not inside a longer run of
/// letters and digits, such as a hex digest).
pub fn dump_contains(dump: &str, secret: &str) -> bool {
    dump.match_indices(secret).any(|(i, _)| {
        let before = dump[..i].chars().next_back();
        let after = dump[i + secret.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

/// The `retry_after_seconds` of an error body's ErrorInfo.
pub fn retry_after(body: &Value) -> Option<u64> {
    body["details"]
        .as_array()?
        .iter()
        .find_map(|d| d["metadata"]["retry_after_seconds"].as_str()?.parse().ok())
}

/// Lets the one-second session cache of the auth layer expire.
pub async fn past_session_cache() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

/// Registers a user through public registration; returns its id.
pub async fn register_user(server: &TestServer, user: Value, password: &str) -> String {
    let (status, body) = post(
        server,
        "/v1/auth/register",
        None,
        json!({"user": user, "password": password}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["user"]["id"].as_str().unwrap().to_string()
}
