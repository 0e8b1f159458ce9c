//! Sessions and refresh tokens: rotation, reuse detection, sign-out, listing and revocation,
//! and brute-force protection that survives a restart.

use std::time::{Duration, Instant};

use mgpass_e2e::{TestServer, rest_reason};
use serde_json::{Value, json};

async fn post(server: &TestServer, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = server.http.post(server.url(path)).json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn login(server: &TestServer, identifier: &str, password: &str) -> (u16, Value) {
    post(server, "/v1/auth/login", None, json!({"identifier": identifier, "password": password})).await
}

async fn get_status(server: &TestServer, path: &str, token: &str) -> u16 {
    server.http.get(server.url(path)).bearer_auth(token).send().await.unwrap().status().as_u16()
}

async fn create_user(server: &TestServer, admin: &str, email: &str, password: &str) -> String {
    let (status, body) =
        post(server, "/v1/users", Some(admin), json!({"user": {"email": email}, "password": password})).await;
    assert_eq!(status, 200, "{body}");
    body["user"]["id"].as_str().unwrap().to_string()
}

/// Revocations reach every instance within the one-second session cache.
async fn past_session_cache() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    create_user(&server, &admin, "kofi@example.com", "kofi's long password").await;
    let (status, first) = login(&server, "kofi@example.com", "kofi's long password").await;
    assert_eq!(status, 200);
    let access = first["accessToken"].as_str().unwrap().to_string();
    let r1 = first["refreshToken"].as_str().unwrap().to_string();
    assert!(r1.starts_with("mgr_") && r1.len() > 40);

    let (status, second) = post(&server, "/v1/auth/token:refresh", None, json!({"refreshToken": r1})).await;
    assert_eq!(status, 200, "{second}");
    let r2 = second["refreshToken"].as_str().unwrap().to_string();
    assert_ne!(r1, r2, "the refresh token rotates");
    let access2 = second["accessToken"].as_str().unwrap().to_string();
    assert_eq!(get_status(&server, "/v1/me/sessions", &access2).await, 200);

    // Presenting the used token again: the thief and the holder both lose the session.
    let (status, body) = post(&server, "/v1/auth/token:refresh", None, json!({"refreshToken": r1})).await;
    assert_eq!((status, rest_reason(&body).as_str()), (401, "REFRESH_TOKEN_REUSED"), "{body}");
    let (status, body) = post(&server, "/v1/auth/token:refresh", None, json!({"refreshToken": r2})).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_GRANT"), "{body}");
    past_session_cache().await;
    assert_eq!(get_status(&server, "/v1/me/sessions", &access).await, 401, "access tokens of the session die too");
    assert_eq!(get_status(&server, "/v1/me/sessions", &access2).await, 401);

    let (status, body) = post(&server, "/v1/auth/token:refresh", None, json!({"refreshToken": "mgr_unknown"})).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_GRANT"));
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_refreshes_of_one_token_never_both_win() {
    let server = TestServer::start().await;
    let (_, tokens) = login(&server, &server.admin_email, &server.admin_password).await;
    let refresh = tokens["refreshToken"].as_str().unwrap().to_string();
    let attempts = (0..8).map(|_| post(&server, "/v1/auth/token:refresh", None, json!({"refreshToken": refresh})));
    let results = futures::future::join_all(attempts).await;
    let winners = results.iter().filter(|(s, _)| *s == 200).count();
    assert!(winners <= 1, "at most one rotation of one token: {results:?}");
    assert!(results.iter().any(|(s, b)| *s == 401 && rest_reason(b) == "REFRESH_TOKEN_REUSED"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_listed_and_revoked_by_their_user_and_by_admins() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let user_id = create_user(&server, &admin, "esi@example.com", "esi's long password").await;
    let (_, phone) = login(&server, "esi@example.com", "esi's long password").await;
    let (_, laptop) = login(&server, "ESI@example.com", "esi's long password").await;
    let phone = phone["accessToken"].as_str().unwrap().to_string();
    let laptop_tokens = laptop.clone();
    let laptop = laptop["accessToken"].as_str().unwrap().to_string();

    let resp = server.http.get(server.url("/v1/me/sessions")).bearer_auth(&laptop).header("user-agent", "laptop-browser").send().await.unwrap();
    let body: Value = resp.json().await.unwrap();
    let sessions = body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{body}");
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(sessions.iter().all(|s| s["ipAddress"] == "127.0.0.1" && s["authenticationMethods"] == json!(["pwd"])));

    // Sign out the other device.
    let (status, body) = post(&server, "/v1/me/sessions:revokeOthers", Some(&laptop), json!({})).await;
    assert_eq!((status, body["revokedSessionCount"].as_i64()), (200, Some(1)), "{body}");
    past_session_cache().await;
    assert_eq!(get_status(&server, "/v1/me/sessions", &phone).await, 401);
    assert_eq!(get_status(&server, "/v1/me/sessions", &laptop).await, 200);

    // An administrator sees and revokes the remaining one.
    let resp = server.http.get(server.url(&format!("/v1/users/{user_id}/sessions"))).bearer_auth(&admin).send().await.unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["sessions"].as_array().unwrap().len(), 1, "{body}");
    let (status, _) = post(&server, &format!("/v1/users/{user_id}/sessions:revokeAll"), Some(&admin), json!({})).await;
    assert_eq!(status, 200);
    past_session_cache().await;
    assert_eq!(get_status(&server, "/v1/me/sessions", &laptop).await, 401);
    let refresh = laptop_tokens["refreshToken"].as_str().unwrap();
    let (status, _) = post(&server, "/v1/auth/token:refresh", None, json!({"refreshToken": refresh})).await;
    assert_eq!(status, 400, "a revoked session cannot be refreshed");

    // A user cannot touch another user's sessions; an unknown user is 404.
    let (_, esi) = login(&server, "esi@example.com", "esi's long password").await;
    let esi = esi["accessToken"].as_str().unwrap().to_string();
    assert_eq!(get_status(&server, &format!("/v1/users/{user_id}/sessions"), &esi).await, 403);
    let missing = uuid::Uuid::new_v4();
    assert_eq!(get_status(&server, &format!("/v1/users/{missing}/sessions"), &admin).await, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_ends_the_session() {
    let server = TestServer::start().await;
    let (_, tokens) = login(&server, &server.admin_email, &server.admin_password).await;
    let access = tokens["accessToken"].as_str().unwrap();
    let (status, _) = post(&server, "/v1/auth/logout", Some(access), json!({})).await;
    assert_eq!(status, 200);
    past_session_cache().await;
    assert_eq!(get_status(&server, "/v1/users", access).await, 401);
    let (status, _) = post(&server, "/v1/auth/token:refresh", None, json!({"refreshToken": tokens["refreshToken"]})).await;
    assert_eq!(status, 400);
    let (status, _) = post(&server, "/v1/auth/logout", None, json!({})).await;
    assert_eq!(status, 401, "signing out needs a credential");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_users_and_wrong_passwords_are_indistinguishable() {
    let server = TestServer::start_with(&[("MGPASS_SESSIONS__LOCKOUT_THRESHOLD", "1000"), ("MGPASS_SESSIONS__IP_LOCKOUT_THRESHOLD", "1000")]).await;
    let mut wrong = Duration::ZERO;
    let mut unknown = Duration::ZERO;
    let mut answers = Vec::new();
    for i in 0..6 {
        let t = Instant::now();
        answers.push(login(&server, &server.admin_email, &format!("wrong password {i}")).await);
        wrong += t.elapsed();
        let t = Instant::now();
        answers.push(login(&server, &format!("nobody{i}@example.com"), "wrong password").await);
        unknown += t.elapsed();
    }
    for (status, body) in &answers {
        assert_eq!((*status, rest_reason(body).as_str()), (401, "INVALID_CREDENTIALS"), "{body}");
        assert_eq!(body["message"], answers[0].1["message"]);
    }
    // Both paths run one argon2id verification; a skipped hash would be several times faster.
    let ratio = unknown.as_secs_f64() / wrong.as_secs_f64();
    assert!(ratio > 0.5, "unknown identifiers answer {ratio:.2}x as fast as wrong passwords");
}

#[tokio::test(flavor = "multi_thread")]
async fn lockout_after_failures_survives_restart_and_admins_unlock() {
    let env = [("MGPASS_SESSIONS__LOCKOUT_THRESHOLD", "3"), ("MGPASS_SESSIONS__LOCKOUT_BASE_SECS", "300")];
    let mut server = TestServer::start_with(&env).await;
    let admin = server.admin_token().await;
    let user_id = create_user(&server, &admin, "ama@example.com", "ama's long password").await;
    for _ in 0..3 {
        let (status, _) = login(&server, "ama@example.com", "wrong password").await;
        assert_eq!(status, 401);
    }
    let (status, body) = login(&server, "Ama@Example.com", "ama's long password").await;
    assert_eq!((status, rest_reason(&body).as_str()), (429, "TOO_MANY_ATTEMPTS"), "even the right password waits");

    // Identifiers without an account lock the same way, so locking reveals nothing.
    for _ in 0..3 {
        login(&server, "ghost@example.com", "wrong password").await;
    }
    let (status, body) = login(&server, "ghost@example.com", "wrong password").await;
    assert_eq!((status, rest_reason(&body).as_str()), (429, "TOO_MANY_ATTEMPTS"));

    // The counters live in Postgres: a restarted server still refuses.
    let db = server.database_url.clone();
    let admin_password = server.admin_password.clone();
    server.terminate();
    let server = TestServer::start_on(db, &[env[0], env[1], ("MGPASS_BOOTSTRAP__ADMIN_PASSWORD", &admin_password)]).await;
    let (status, _) = login(&server, "ama@example.com", "ama's long password").await;
    assert_eq!(status, 429);

    let admin = server.login(&server.admin_email, &admin_password).await;
    let (status, _) = post(&server, &format!("/v1/users/{user_id}:unlock"), Some(&admin), json!({})).await;
    assert_eq!(status, 200);
    let (status, body) = login(&server, "ama@example.com", "ama's long password").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn suspended_users_cannot_sign_in_or_refresh() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let user_id = create_user(&server, &admin, "yaw@example.com", "yaw's long password").await;
    let (_, tokens) = login(&server, "yaw@example.com", "yaw's long password").await;
    let (status, _) = post(&server, &format!("/v1/users/{user_id}:suspend"), Some(&admin), json!({"reason": "test"})).await;
    assert_eq!(status, 200);
    let (status, body) = login(&server, "yaw@example.com", "yaw's long password").await;
    assert_eq!((status, rest_reason(&body).as_str()), (403, "USER_SUSPENDED"));
    // Suspension ended the user's sessions: no refresh, and the access token stops working.
    let (status, body) = post(&server, "/v1/auth/token:refresh", None, json!({"refreshToken": tokens["refreshToken"]})).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_GRANT"));
    past_session_cache().await;
    assert_eq!(get_status(&server, "/v1/me/sessions", tokens["accessToken"].as_str().unwrap()).await, 401);
    let (status, _) = post(&server, &format!("/v1/users/{user_id}:unsuspend"), Some(&admin), json!({})).await;
    assert_eq!(status, 200);
    let (status, _) = login(&server, "yaw@example.com", "yaw's long password").await;
    assert_eq!(status, 200, "an unsuspended user signs in again");
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_read_from_header_then_cookie_then_query_when_allowed() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let cookie = server.http.get(server.url("/v1/users")).header("cookie", format!("theme=dark; mgpass_at={token}")).send().await.unwrap();
    assert_eq!(cookie.status(), 200, "the browser cookie carries the token");
    let query = server.http.get(server.url(&format!("/v1/users?access_token={token}"))).send().await.unwrap();
    assert_eq!(query.status(), 401, "query tokens are off by default");
    // A client cannot smuggle the gateway's internal header.
    let smuggled = server.http.get(server.url("/v1/users")).header("x-mgpass-query-token", &token).send().await.unwrap();
    assert_eq!(smuggled.status(), 401);

    let lenient = TestServer::start_with(&[("MGPASS_SERVER__ALLOW_QUERY_ACCESS_TOKEN", "true")]).await;
    let token = lenient.admin_token().await;
    let query = lenient.http.get(lenient.url(&format!("/v1/users?pageSize=5&access_token={token}"))).send().await.unwrap();
    assert_eq!(query.status(), 200, "allowed, and the parameter is not taken for a request field");
    let smuggled = lenient.http.get(lenient.url("/v1/users")).header("x-mgpass-query-token", &token).send().await.unwrap();
    assert_eq!(smuggled.status(), 401, "the internal header is stripped at the edge");
}
