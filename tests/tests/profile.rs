//! Self-service: my profile, my password, my data, my account.

use std::time::Duration;

use mgpass_e2e::{TestServer, rest_reason};
use serde_json::{Value, json};

async fn call(server: &TestServer, method: reqwest::Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = server.http.request(method, server.url(path)).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn sign_up(server: &TestServer, email: &str, password: &str) -> String {
    let admin = server.admin_token().await;
    let body = json!({"user": {"email": email, "givenName": "Abena"}, "password": password});
    let (status, body) = call(server, reqwest::Method::POST, "/v1/users", &admin, Some(body)).await;
    assert_eq!(status, 200, "{body}");
    server.login(email, password).await
}

#[tokio::test(flavor = "multi_thread")]
async fn read_and_update_my_profile_but_not_my_roles() {
    let server = TestServer::start().await;
    let me = sign_up(&server, "abena@example.com", "abena's long password").await;
    let (status, body) = call(&server, reqwest::Method::GET, "/v1/me", &me, None).await;
    assert_eq!((status, body["user"]["email"].as_str()), (200, Some("abena@example.com")), "{body}");

    let (status, body) = call(
        &server,
        reqwest::Method::PATCH,
        "/v1/me?updateMask=familyName",
        &me,
        Some(json!({"familyName": "Owusu", "givenName": "ignored"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["user"]["familyName"].as_str(), body["user"]["givenName"].as_str()), (Some("Owusu"), Some("Abena")));

    for path in ["roles", "email", "emailVerified"] {
        let (status, body) = call(
            &server,
            reqwest::Method::PATCH,
            &format!("/v1/me?updateMask={path}"),
            &me,
            Some(json!({"roles": ["superAdmin"], "email": "x@example.com"})),
        )
        .await;
        assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_UPDATE_MASK"), "{path}: {body}");
    }
    let (_, body) = call(&server, reqwest::Method::GET, "/v1/me", &me, None).await;
    assert_eq!(body["user"]["roles"], json!(["user"]), "nothing was written");
}

#[tokio::test(flavor = "multi_thread")]
async fn changing_my_password_signs_out_my_other_sessions() {
    let server = TestServer::start().await;
    let here = sign_up(&server, "kwame@example.com", "kwame's old password").await;
    let elsewhere = server.login("kwame@example.com", "kwame's old password").await;

    let body = json!({"currentPassword": "not my password", "newPassword": "kwame's new password"});
    let (status, body) = call(&server, reqwest::Method::POST, "/v1/me:changePassword", &here, Some(body)).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "WRONG_PASSWORD"));
    let body = json!({"currentPassword": "kwame's old password", "newPassword": "short"});
    let (status, body) = call(&server, reqwest::Method::POST, "/v1/me:changePassword", &here, Some(body)).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "WEAK_PASSWORD"));

    let body = json!({"currentPassword": "kwame's old password", "newPassword": "kwame's new password"});
    let (status, body) = call(&server, reqwest::Method::POST, "/v1/me:changePassword", &here, Some(body)).await;
    assert_eq!((status, body["revokedSessionCount"].as_i64()), (200, Some(1)), "{body}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(call(&server, reqwest::Method::GET, "/v1/me", &elsewhere, None).await.0, 401);
    assert_eq!(call(&server, reqwest::Method::GET, "/v1/me", &here, None).await.0, 200, "this session stays");

    let resp = server.http.post(server.url("/v1/auth/login")).json(&json!({"identifier": "kwame@example.com", "password": "kwame's old password"})).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    server.login("kwame@example.com", "kwame's new password").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn export_then_delete_my_account() {
    let server = TestServer::start().await;
    let me = sign_up(&server, "efua@example.com", "efua's long password").await;
    let (status, body) = call(&server, reqwest::Method::GET, "/v1/me:export", &me, None).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["user"]["email"], "efua@example.com");
    assert_eq!(data["sessions"].as_array().unwrap().len(), 1);
    let text = body.to_string();
    assert!(!text.contains("argon2") && !text.contains("passwordHash"), "no secrets in the export");
    assert!(body["exportTime"].as_str().unwrap().ends_with('Z'));

    let (status, body) = call(&server, reqwest::Method::POST, "/v1/me:delete", &me, Some(json!({"password": "wrong"}))).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "WRONG_PASSWORD"));
    let (status, _) = call(&server, reqwest::Method::POST, "/v1/me:delete", &me, Some(json!({"password": "efua's long password"}))).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(call(&server, reqwest::Method::GET, "/v1/me", &me, None).await.0, 401, "the session went with the account");
    let resp = server.http.post(server.url("/v1/auth/login")).json(&json!({"identifier": "efua@example.com", "password": "efua's long password"})).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let admin = server.admin_token().await;
    let (_, body) = call(&server, reqwest::Method::GET, "/v1/users?query=efua", &admin, None).await;
    assert!(body.get("users").is_none(), "{body}");
}
