//! Signing keys: sealed at rest, rotated on a schedule by instances that agree, published before
//! they sign, retired only after their last token expired, and never a valid token refused while
//! keys change. Periods are shortened through `MGPASS_TOKENS__*` so each test runs in seconds.

use std::{
    collections::HashSet,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::Engine;
use mgpass_e2e::{TestServer, fresh_database, mgpass_bin, psql, run_mgpass};
use serde_json::Value;

/// Checks every second, publishes 2 s before signing, 1 s of clock leeway.
const FAST: [(&str, &str); 3] = [
    ("MGPASS_TOKENS__KEY_CHECK_INTERVAL_SECS", "1"),
    ("MGPASS_TOKENS__KEY_PUBLISH_LEAD_SECS", "2"),
    ("MGPASS_TOKENS__LEEWAY_SECS", "1"),
];

/// The first PKCS#8 bytes of every P-256 private key (`SEQUENCE { INTEGER 0, SEQUENCE { ...`).
const PKCS8_P256_PREFIX_HEX: &str = "308187020100301306";

/// The super admin's password on databases shared by several servers.
const SHARED_ADMIN_PASSWORD: &str = "keys-test-admin-password";

/// A migrated, bootstrapped database for several servers: when they start together, none races
/// the others to migrate or to create the super admin.
fn shared_database() -> String {
    let db = fresh_database();
    mgpass_ok(&["migrate"], &db, &[]);
    mgpass_ok(&["bootstrap"], &db, &[("MGPASS_BOOTSTRAP__ADMIN_PASSWORD", SHARED_ADMIN_PASSWORD)]);
    db
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.expect("kid")
}

fn now_secs() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

async fn jwks_kids(server: &TestServer, path: &str) -> Vec<String> {
    let resp = server.http.get(server.url(path)).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    let jwks: Value = resp.json().await.unwrap();
    jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_string()).collect()
}

/// Status of an authenticated call (`GET /v1/users`) made with `token`.
async fn call_with(http: &reqwest::Client, base_url: &str, token: &str) -> (u16, String) {
    let resp = http.get(format!("{base_url}/v1/users?pageSize=1")).bearer_auth(token).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap_or_default())
}

fn mgpass_ok(args: &[&str], database_url: &str, extra: &[(&str, &str)]) -> String {
    let mut env = vec![("MGPASS_DATABASE__URL", database_url)];
    env.extend_from_slice(extra);
    let out = run_mgpass(args, &env);
    assert!(out.status.success(), "mgpass {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `mgpass keys list` as (kid, state) pairs.
fn listed_states(database_url: &str) -> Vec<(String, String)> {
    let out = mgpass_ok(&["keys", "list"], database_url, &[]);
    let mut lines = out.lines();
    assert!(lines.next().unwrap().starts_with("KID"), "a header line:\n{out}");
    lines
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols[0].to_string(), cols.last().unwrap().to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn private_keys_are_sealed_and_another_master_key_cannot_start() {
    let server = TestServer::start().await;
    let db = server.database_url.as_str();
    let kid = psql(db, "SELECT kid FROM signing_keys");
    let sealed_hex = psql(db, "SELECT encode(private_sealed, 'hex') FROM signing_keys");
    assert!(sealed_hex.len() > 2 * 100, "a sealed P-256 key is stored: {sealed_hex}");
    assert!(!sealed_hex.contains(PKCS8_P256_PREFIX_HEX), "no clear PKCS#8 in {sealed_hex}");
    assert_eq!(
        psql(
            db,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'signing_keys' AND column_name = 'private_der'"
        ),
        "0",
        "the clear column is gone"
    );

    // Another master key: the server refuses to start, naming the key and the cause.
    let other_key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(mgpass_bin())
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("MGPASS_DATABASE__URL", db)
        .env("MGPASS_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("MGPASS_SECRETS__MASTER_KEY", &other_key)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("a server with another master key kept running");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&kid) && err.contains("master key is wrong"), "a clear message:\n{err}");

    // Nor can the CLI add a key sealed under the wrong master key.
    let out =
        run_mgpass(&["keys", "rotate"], &[("MGPASS_DATABASE__URL", db), ("MGPASS_SECRETS__MASTER_KEY", &other_key)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("master key is wrong"));
    assert_eq!(psql(db, "SELECT count(*) FROM signing_keys"), "1");

    // The rightly configured server still signs, and the CLI lists its key.
    let token = server.admin_token().await;
    assert_eq!(kid_of(&token), kid);
    assert_eq!(listed_states(db), vec![(kid, "active".to_string())]);
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_publishes_before_signing_and_older_tokens_keep_working() {
    let server = TestServer::start_with(&FAST).await;
    let first_token = server.admin_token().await;
    let old_kid = kid_of(&first_token);
    let new_kid = mgpass_ok(&["keys", "rotate", "--lead-secs", "3"], &server.database_url, &[]).trim().to_string();
    assert_ne!(new_kid, old_kid);

    // Fetch the JWKS, then sign in, until tokens carry the new kid.
    let deadline = Instant::now() + Duration::from_secs(15);
    let (mut published, mut old_tokens_while_published) = (false, 0);
    let new_token = loop {
        assert!(Instant::now() < deadline, "tokens never switched to {new_kid}");
        published |= jwks_kids(&server, "/.well-known/jwks.json").await.contains(&new_kid);
        let token = server.admin_token().await;
        if kid_of(&token) == new_kid {
            assert!(published, "a token carried {new_kid} before the JWKS published it");
            break token;
        }
        assert_eq!(kid_of(&token), old_kid);
        if published {
            old_tokens_while_published += 1;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    };
    assert!(old_tokens_while_published > 0, "the new key was published ahead of signing");

    // The seed's /publickey and the REST path serve the same JWKS, with both keys.
    let kids = jwks_kids(&server, "/.well-known/jwks.json").await;
    assert_eq!(kids.iter().collect::<HashSet<_>>(), HashSet::from([&old_kid, &new_kid]));
    assert_eq!(jwks_kids(&server, "/publickey").await, kids);
    assert_eq!(jwks_kids(&server, "/v1/auth/jwks").await, kids);

    // Tokens of both keys are accepted.
    assert_eq!(call_with(&server.http, &server.base_url, &first_token).await.0, 200);
    assert_eq!(call_with(&server.http, &server.base_url, &new_token).await.0, 200);
    let states = listed_states(&server.database_url);
    assert_eq!(states, vec![(new_kid, "active".into()), (old_kid, "published".into())]);
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_on_one_database_create_exactly_one_pending_key() {
    let db = shared_database();
    // Rotate every 8.6 s, with a lead long enough that the next key stays pending.
    let env = [
        ("MGPASS_TOKENS__KEY_CHECK_INTERVAL_SECS", "1"),
        ("MGPASS_TOKENS__KEY_ROTATION_PERIOD_DAYS", "0.0001"),
        ("MGPASS_TOKENS__KEY_PUBLISH_LEAD_SECS", "120"),
    ];
    // Started together on an empty key table, they also race for the first key.
    let (a, b, c) = tokio::join!(
        TestServer::start_on(db.clone(), &env),
        TestServer::start_on(db.clone(), &env),
        TestServer::start_on(db.clone(), &env)
    );
    let count = |filter: &str| psql(&db, &format!("SELECT count(*) FROM signing_keys WHERE {filter}"));
    assert_eq!(count("true"), "1", "one first key");

    // Block writes to the key table from before the rotation falls due until every instance has
    // checked a few times: each instance that decides to insert waits on its INSERT, so instances
    // that the advisory lock did not serialise would all insert at the release.
    let due_in: f64 =
        psql(&db, "SELECT extract(epoch FROM activates_at + interval '8.64 s' - now()) FROM signing_keys")
            .parse()
            .unwrap();
    assert!(due_in > 1.0, "the servers took too long to start: the rotation is due in {due_in:.1} s");
    let hold =
        format!("BEGIN; LOCK TABLE signing_keys IN EXCLUSIVE MODE; SELECT pg_sleep({:.1}); COMMIT;", due_in + 3.0);
    let held = Command::new("psql").args([db.as_str(), "-qAtc", &hold]).output().unwrap();
    assert!(held.status.success(), "{}", String::from_utf8_lossy(&held.stderr));

    let deadline = Instant::now() + Duration::from_secs(10);
    while count("activates_at > now()") == "0" {
        assert!(Instant::now() < deadline, "no scheduled rotation");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every instance checks each second; give them several rounds to (wrongly) add more.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(count("activates_at > now()"), "1", "exactly one pending key");
    assert_eq!(count("true"), "2");
    let pending = psql(&db, "SELECT kid FROM signing_keys WHERE activates_at > now()");
    for server in [&a, &b, &c] {
        assert!(jwks_kids(server, "/.well-known/jwks.json").await.contains(&pending), "every instance publishes it");
        let token = server.login(&server.admin_email, SHARED_ADMIN_PASSWORD).await;
        assert_ne!(kid_of(&token), pending, "and none signs with it yet");
    }
    let states: Vec<String> = listed_states(&db).into_iter().map(|(_, s)| s).collect();
    assert_eq!(states, ["pending", "active"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_old_key_leaves_the_jwks_only_after_its_last_token_expired() {
    const TTL: f64 = 30.0;
    const LEEWAY: f64 = 1.0;
    let mut env = FAST.to_vec();
    env.push(("MGPASS_TOKENS__ACCESS_TOKEN_TTL_SECS", "30"));
    let server = TestServer::start_with(&env).await;
    let db = server.database_url.clone();
    let old_kid = kid_of(&server.admin_token().await);
    // Without --lead-secs the configured lead (2 s) applies.
    let new_kid = mgpass_ok(&["keys", "rotate"], &db, &FAST).trim().to_string();

    // Keep the last token of the old key: the one that lives longest.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last_old_token = None;
    loop {
        assert!(Instant::now() < deadline, "tokens never switched to {new_kid}");
        let token = server.admin_token().await;
        if kid_of(&token) == new_kid {
            break;
        }
        last_old_token = Some(token);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let last_old_token = last_old_token.expect("a token of the old key");
    let payload = last_old_token.split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let exp = claims["exp"].as_f64().unwrap();
    let switched_at: f64 =
        psql(&db, &format!("SELECT extract(epoch FROM activates_at) FROM signing_keys WHERE kid = '{new_kid}'"))
            .parse()
            .unwrap();

    let gone_at = loop {
        let now = now_secs();
        assert!(now < switched_at + TTL + LEEWAY + 10.0, "the old key was never retired");
        if now < exp - 0.5 {
            let (status, body) = call_with(&server.http, &server.base_url, &last_old_token).await;
            assert_eq!(status, 200, "the old key's last token is accepted until it expires: {body}");
        }
        if !jwks_kids(&server, "/.well-known/jwks.json").await.contains(&old_kid) {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        gone_at >= switched_at + TTL + LEEWAY,
        "retired {:.1} s after the switch, before the old key's last token could expire",
        gone_at - switched_at
    );
    assert_eq!(
        psql(
            &db,
            &format!(
                "SELECT retired_at IS NOT NULL AND private_sealed IS NULL FROM signing_keys WHERE kid = '{old_kid}'"
            )
        ),
        "t",
        "retired, private half erased"
    );
    assert_eq!(call_with(&server.http, &server.base_url, &last_old_token).await.0, 401);
    assert_eq!(listed_states(&db), vec![(new_kid, "active".into()), (old_kid, "retired".into())]);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_valid_token_is_refused_while_keys_rotate() {
    let db = shared_database();
    // Instances of one deployment share the issuer, so each accepts the other's tokens.
    let mut env = FAST.to_vec();
    env.push(("MGPASS_SERVER__PUBLIC_URL", "http://mgpass.test"));
    // Started one after the other, their once-a-second checks are out of step, as in production.
    let a = TestServer::start_on(db.clone(), &env).await;
    let b = TestServer::start_on(db.clone(), &env).await;
    let password = SHARED_ADMIN_PASSWORD.to_string();
    let bases = Arc::new(vec![a.base_url.clone(), b.base_url.clone()]);
    let tokens = Arc::new(Mutex::new(vec![a.login(&a.admin_email, &password).await]));
    let refused = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let http = reqwest::Client::new();

    // Sign in at both instances in turn, all along.
    let minter = {
        let (tokens, bases, stop, http, password) =
            (tokens.clone(), bases.clone(), stop.clone(), http.clone(), password.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let resp = http
                    .post(format!("{}/v1/auth/login", bases[i % 2]))
                    .json(&serde_json::json!({"identifier": "admin@admin.com", "password": password}))
                    .send()
                    .await
                    .unwrap();
                let body: Value = resp.json().await.unwrap();
                tokens.lock().unwrap().push(body["accessToken"].as_str().expect("a token").to_string());
                i += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    // Call both instances with every token issued so far, newest first.
    let mut hammers = Vec::new();
    for worker in 0..4usize {
        let (tokens, bases, stop, http, refused) =
            (tokens.clone(), bases.clone(), stop.clone(), http.clone(), refused.clone());
        hammers.push(tokio::spawn(async move {
            let mut calls = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let batch: Vec<String> = tokens.lock().unwrap().iter().rev().take(8).cloned().collect();
                for token in batch {
                    let base = &bases[(calls + worker) % 2];
                    let (status, body) = call_with(&http, base, &token).await;
                    if status != 200 {
                        refused
                            .lock()
                            .unwrap()
                            .push(format!("{base} refused a token of {}: {status} {body}", kid_of(&token)));
                    }
                    calls += 1;
                }
            }
            calls
        }));
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    mgpass_ok(&["keys", "rotate", "--lead-secs", "2"], &db, &[]);
    tokio::time::sleep(Duration::from_secs(4)).await;
    // No lead at all: instances that have not reloaded yet meet the new kid in tokens first.
    mgpass_ok(&["keys", "rotate", "--lead-secs", "0"], &db, &[]);
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    minter.await.unwrap();
    let mut calls = 0;
    for hammer in hammers {
        calls += hammer.await.unwrap();
    }

    let refused = refused.lock().unwrap();
    assert!(refused.is_empty(), "{} of {calls} calls refused:\n{}", refused.len(), refused.join("\n"));
    let kids: HashSet<String> = tokens.lock().unwrap().iter().map(|t| kid_of(t)).collect();
    assert_eq!(kids.len(), 3, "tokens of three keys were in flight: {kids:?}");
    assert!(calls > 100, "only {calls} calls");
}
