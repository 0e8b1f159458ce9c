//! The OAuth 2.1 / OpenID Connect protocol proven with clients nobody here wrote, each run as its
//! own process against the real binary: openid-client in Node (client credentials, introspection,
//! revocation, the device grant, userinfo, refresh), authlib in Python (the authorization code
//! flow of a confidential web app through the hosted sign-in and consent pages) and headless
//! Chromium driven by playwright-core (a SPA's sign-in, with a screenshot of every page in
//! `target/oauth-screenshots/`).
//!
//! The tools come from `scripts/install-deps.sh`; a missing one fails the test, never skips it.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::Duration,
};

use mgpass_e2e::{
    TestServer,
    oauth::{App, assign_role, create_app, create_resource, create_role, rest},
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

const API: &str = "https://api.example.com";
const PASSWORD: &str = "correct horse battery staple";
const CHROMIUM: &str = "/usr/bin/chromium";

fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The workspace's target directory (where the screenshots go).
fn target_dir() -> PathBuf {
    std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| tests_dir().join("../target"))
}

/// Runs a client script to completion and returns the JSON of its last stdout line; fails the
/// test with the script's stderr if it exits non-zero.
fn run_client(program: &str, script: &Path, args: &[&str], env: &[(&str, &str)]) -> Value {
    let mut cmd = Command::new(program);
    cmd.arg(script).args(args).current_dir(tests_dir().join("..")).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("{program} does not run ({e}): run scripts/install-deps.sh"));
    last_json_line(program, script, &out)
}

fn last_json_line(program: &str, script: &Path, out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{program} {} failed ({}; its packages come from scripts/install-deps.sh):\nstderr:\n{stderr}\nstdout:\n{stdout}",
        script.display(),
        out.status
    );
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_else(|| panic!("{} printed nothing; stderr:\n{stderr}", script.display()));
    let out: Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{} printed no JSON ({e}): {line}\nstderr:\n{stderr}", script.display()));
    // Shown when a test fails (or with --nocapture).
    println!("{} printed:\n{out:#}\nstderr:\n{stderr}", script.display());
    out
}

/// A user (Ama Mensah) with a password; returns the user id.
async fn user(server: &TestServer, admin: &str, email: &str) -> String {
    let (status, body) = rest(
        server,
        admin,
        "POST",
        "/v1/users",
        Some(json!({"user": {"email": email, "givenName": "Ama", "familyName": "Mensah"}, "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["user"]["id"].as_str().unwrap().to_string()
}

/// A free loopback port (nothing listens on it once this returns).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

// ---- openid-client (Node) --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn openid_client_client_credentials_introspection_and_revocation() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    // An M2M app allowed `content:read stream:live`, holding a role that gives only `content:read`.
    create_resource(&server, &admin, API, &["content:read", "stream:live"]).await;
    let role = create_role(&server, &admin, "reader", API, &["content:read"], false).await;
    let app = create_app(
        &server,
        &admin,
        json!({"name": "Backend", "applicationType": "APPLICATION_TYPE_M2M",
               "allowedResources": [{"resource": API, "scopes": ["content:read", "stream:live"]}]}),
    )
    .await;
    assign_role(&server, &admin, &role, json!({"applicationIds": [app.id]})).await;

    let out = run_client(
        "node",
        &tests_dir().join("node/oauth_client.mjs"),
        &["m2m"],
        &[
            ("MGPASS_URL", &server.base_url),
            ("CLIENT_ID", &app.client_id),
            ("CLIENT_SECRET", &app.secret),
            ("RESOURCE", API),
            ("SCOPE", "content:read stream:live"),
        ],
    );

    // Discovery as openid-client read it.
    let d = &out["discovery"];
    assert_eq!(d["issuer"], server.base_url.as_str());
    assert_eq!(d["token_endpoint"], server.url("/oauth2/token"));
    assert_eq!(d["introspection_endpoint"], server.url("/oauth2/introspect"));
    assert_eq!(d["revocation_endpoint"], server.url("/oauth2/revoke"));
    assert_eq!(d["device_authorization_endpoint"], server.url("/oauth2/device_authorization"));
    assert_eq!(d["supportsPKCE"], true);

    // Both authentication methods got a token; the role narrows what was asked to content:read.
    for method in ["basic", "post"] {
        let t = &out[method];
        assert_eq!(t["token_type"], "bearer", "{method}: openid-client lower-cases the type: {out}");
        assert_eq!(t["scope"], "content:read", "{method}: {out}");
        assert!(t["expires_in"].as_i64().unwrap() > 0, "{method}: {out}");
        assert_eq!(t["has_refresh_token"], false, "{method}: client credentials issue no refresh token");
        assert_eq!(t["has_id_token"], false, "{method}");
    }

    // A wrong secret is refused as RFC 6749 §5.2 says: 401, a Basic challenge, invalid_client.
    let refused = &out["refused_wrong_secret"];
    assert_eq!(refused["status"], 401, "{out}");
    assert_eq!(refused["challenge_schemes"], json!(["basic"]), "{out}");
    assert_eq!(refused["error"], "invalid_client", "{out}");

    // Introspection saw the token active, for the API, with its scope; after revocation, inactive.
    let before = &out["introspection_before_revocation"];
    assert_eq!(before["active"], true, "{out}");
    assert_eq!(before["scope"], "content:read");
    assert_eq!(before["aud"], API);
    assert_eq!(before["client_id"], app.client_id.as_str());
    assert_eq!(before["sub"], app.id.as_str());
    assert_eq!(before["iss"], server.base_url.as_str());
    assert_eq!(before["token_type"], "Bearer");
    assert!(before["exp"].as_i64().unwrap() > before["iat"].as_i64().unwrap());
    assert_eq!(out["introspection_after_revocation"], json!({"active": false}), "{out}");
    // Revoking one token leaves the other alone.
    assert_eq!(out["introspection_of_the_other_token"]["active"], true, "{out}");
}

async fn native_app(server: &TestServer, admin: &str) -> App {
    create_app(
        server,
        admin,
        json!({"name": "TV", "applicationType": "APPLICATION_TYPE_NATIVE",
               "redirectUris": ["http://127.0.0.1/callback"],
               "grantTypes": ["GRANT_TYPE_AUTHORIZATION_CODE", "GRANT_TYPE_REFRESH_TOKEN", "GRANT_TYPE_DEVICE_CODE"],
               "allowedScopes": ["openid", "profile", "email", "offline_access"]}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn openid_client_device_grant_id_token_userinfo_and_refresh() {
    let server = TestServer::start_with(&[("MGPASS_OAUTH__DEVICE_POLL_INTERVAL_SECS", "1")]).await;
    let admin = server.admin_token().await;
    let tv = native_app(&server, &admin).await;
    let user_id = user(&server, &admin, "ama@example.com").await;
    let user_token = server.login("ama@example.com", PASSWORD).await;

    // The script prints the device authorization, then polls until approved.
    let script = tests_dir().join("node/oauth_client.mjs");
    let mut child = tokio::process::Command::new("node")
        .arg(&script)
        .arg("device")
        .current_dir(tests_dir().join(".."))
        .env("MGPASS_URL", &server.base_url)
        .env("CLIENT_ID", &tv.client_id)
        .env("SCOPE", "openid profile email offline_access")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("node does not run ({e}): run scripts/install-deps.sh"));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first =
        tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await.expect("the device authorization within 30 s").unwrap();
    let Some(first) = first else {
        let out = child.wait_with_output().await.unwrap();
        panic!("oauth_client.mjs device printed nothing ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    };
    let started: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("not JSON ({e}): {first}"));
    let user_code = started["user_code"].as_str().expect("user_code").to_string();
    assert_eq!(started["verification_uri"], server.url("/oauth2/device"));
    assert!(started["verification_uri_complete"].as_str().unwrap().contains(&user_code), "{started}");
    assert_eq!(started["interval"], 1);

    // Let it poll at least once while pending, then approve as the signed-in user.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, body) =
        rest(&server, &user_token, "POST", "/v1/me/deviceAuthorizations:approve", Some(json!({"userCode": user_code}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["clientId"], tv.client_id.as_str());

    let rest_lines = async {
        let mut all = Vec::new();
        while let Some(l) = lines.next_line().await.unwrap() {
            all.push(l);
        }
        all
    };
    let (rest_lines, output) = tokio::time::timeout(Duration::from_secs(90), async { tokio::join!(rest_lines, child.wait_with_output()) })
        .await
        .expect("the device grant completes within 90 s");
    let mut output = output.unwrap();
    output.stdout = rest_lines.join("\n").into_bytes();
    let out = last_json_line("node", &script, &output);

    // openid-client validated the ID token (claims and, with non-repudiation checks, the ES256
    // signature against the JWKS); here is what it read.
    let id = &out["id_token_claims"];
    assert_eq!(id["iss"], server.base_url.as_str());
    assert_eq!(id["aud"], tv.client_id.as_str());
    assert_eq!(id["sub"], user_id.as_str());
    assert_eq!(id["email"], "ama@example.com");
    assert_eq!(id["given_name"], "Ama");
    assert!(id["exp"].as_i64().unwrap() > id["iat"].as_i64().unwrap());
    let tokens = &out["tokens"];
    assert_eq!(tokens["has_refresh_token"], true, "offline_access: {out}");
    assert_eq!(tokens["scope"], "openid profile email offline_access");

    // UserInfo (openid-client checked its sub against the ID token's).
    let info = &out["userinfo"];
    assert_eq!(info["sub"], user_id.as_str());
    assert_eq!(info["email"], "ama@example.com");
    assert_eq!(info["name"], "Ama Mensah");
    assert!(info.get("phone_number").is_none(), "{info}");

    // Refresh rotated the token and the new access token works at userinfo.
    assert_eq!(out["refresh_rotated"], true, "{out}");
    assert_eq!(out["refreshed"]["has_refresh_token"], true);
    assert_eq!(out["refreshed_id_token_sub"], user_id.as_str());
    assert_eq!(out["userinfo_after_refresh_sub"], user_id.as_str());
}

// ---- authlib (Python) ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn authlib_authorization_code_flow_for_a_confidential_web_app() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let user_id = user(&server, &admin, "kofi@example.com").await;
    // A third-party web app: the user is asked for consent.
    let redirect = format!("http://127.0.0.1:{}/auth/callback", free_port());
    let app = create_app(
        &server,
        &admin,
        json!({"name": "Photo Prints", "applicationType": "APPLICATION_TYPE_WEB",
               "redirectUris": [redirect],
               "grantTypes": ["GRANT_TYPE_AUTHORIZATION_CODE", "GRANT_TYPE_REFRESH_TOKEN"],
               "allowedScopes": ["openid", "profile", "email", "offline_access"]}),
    )
    .await;
    assert!(!app.secret.is_empty(), "a web app is confidential");

    let out = run_client(
        "python3",
        &tests_dir().join("python/authlib_code_flow.py"),
        &[],
        &[
            ("MGPASS_URL", &server.base_url),
            ("CLIENT_ID", &app.client_id),
            ("CLIENT_SECRET", &app.secret),
            ("REDIRECT_URI", &redirect),
            ("USERNAME", "kofi@example.com"),
            ("PASSWORD", PASSWORD),
            ("SCOPE", "openid profile email offline_access"),
        ],
    );

    // The pages the script went through: sign-in, then consent (a third-party app).
    let pages: Vec<&str> = out["pages"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert!(pages.iter().any(|p| p.starts_with("/oauth2/signin")), "{out}");
    assert!(pages.iter().any(|p| p.starts_with("/oauth2/consent")), "{out}");
    // The authorization response (RFC 9207 `iss` included).
    assert_eq!(out["callback"]["iss"], server.base_url.as_str(), "{out}");
    assert_eq!(out["callback"]["state_matches"], true);
    // authlib's token response, and the ID token it validated (signature, iss, aud, nonce, exp,
    // at_hash) against the JWKS.
    assert_eq!(out["token"]["token_type"], "Bearer");
    assert_eq!(out["token"]["has_refresh_token"], true, "{out}");
    let id = &out["id_token_claims"];
    assert_eq!(id["iss"], server.base_url.as_str());
    assert_eq!(id["aud"], app.client_id.as_str());
    assert_eq!(id["sub"], user_id.as_str());
    assert_eq!(id["nonce"], out["nonce"]);
    assert_eq!(id["email"], "kofi@example.com");
    // Refresh rotated the token and gave a new ID token for the same user.
    assert_eq!(out["refresh"]["rotated"], true, "{out}");
    assert_eq!(out["refresh"]["id_token_sub"], user_id.as_str());
    // UserInfo.
    assert_eq!(out["userinfo"]["sub"], user_id.as_str());
    assert_eq!(out["userinfo"]["email"], "kofi@example.com");
    assert_eq!(out["userinfo"]["name"], "Ama Mensah");
}

// ---- headless Chromium (playwright-core) -----------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn headless_chromium_signs_in_through_the_hosted_pages_for_a_spa() {
    assert!(Path::new(CHROMIUM).exists(), "{CHROMIUM} is missing: run scripts/install-deps.sh");
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let user_id = user(&server, &admin, "esi@example.com").await;
    // The script serves a stand-in page at the redirect URI and reads the code off the request to it.
    let redirect = format!("http://127.0.0.1:{}/callback", free_port());
    let app = create_app(
        &server,
        &admin,
        json!({"name": "Web Player", "applicationType": "APPLICATION_TYPE_SPA",
               "redirectUris": [redirect],
               "grantTypes": ["GRANT_TYPE_AUTHORIZATION_CODE", "GRANT_TYPE_REFRESH_TOKEN"],
               "allowedScopes": ["openid", "profile", "email"]}),
    )
    .await;
    assert!(app.secret.is_empty(), "a SPA is a public client");

    let shots = target_dir().join("oauth-screenshots");
    let out = run_client(
        "node",
        &tests_dir().join("node/browser_signin.mjs"),
        &[],
        &[
            ("MGPASS_URL", &server.base_url),
            ("CLIENT_ID", &app.client_id),
            ("REDIRECT_URI", &redirect),
            ("USERNAME", "esi@example.com"),
            ("PASSWORD", PASSWORD),
            ("SCOPE", "openid profile email"),
            ("CHROMIUM", CHROMIUM),
            ("SCREENSHOT_DIR", shots.to_str().unwrap()),
        ],
    );

    // The browser went through the sign-in and consent pages and was sent back with a code and
    // the state it sent.
    let pages: Vec<&str> = out["pages"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert!(pages.iter().any(|p| p.starts_with("/oauth2/signin")), "{out}");
    assert!(pages.iter().any(|p| p.starts_with("/oauth2/consent")), "{out}");
    assert_eq!(out["callback"]["state_matches"], true, "{out}");
    assert_eq!(out["callback"]["iss"], server.base_url.as_str());
    // Every page is on disk as a PNG.
    let screenshots = out["screenshots"].as_array().unwrap();
    assert!(screenshots.len() >= 2, "{out}");
    for s in screenshots {
        let png = std::fs::read(s.as_str().unwrap()).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 1000, "{s} is a screenshot");
    }
    // The code was exchanged (public client, PKCE) for tokens of this user.
    assert_eq!(out["token_status"], 200, "{out}");
    let token = &out["token"];
    assert_eq!(token["token_type"], "Bearer");
    let access = mgpass_e2e::oauth::claims(token["access_token"].as_str().expect("an access token"));
    assert_eq!(access["sub"], user_id.as_str());
    assert_eq!(access["client_id"], app.client_id.as_str());
    let id = mgpass_e2e::oauth::claims(token["id_token"].as_str().expect("an ID token"));
    assert_eq!(id["aud"], app.client_id.as_str());
    assert_eq!(id["nonce"], out["nonce"]);
    // The browser now has a session: the same code verifier cannot be replayed.
    assert_eq!(out["replay_status"], 400, "a code works once: {out}");
}
