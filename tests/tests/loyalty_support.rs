//! Helpers shared by the loyalty test modules (ledger, partners, catalog).

use mgpass_e2e::{TestServer, rest};
use serde_json::{Value, json};

pub const PASSWORD: &str = "a long enough password";

/// Creates a plain user (default `user` role) and returns (id, access token).
pub async fn plain_user(server: &TestServer, admin: &str, email: &str) -> (String, String) {
    let (status, body) = rest(
        server,
        admin,
        "POST",
        "/v1/users",
        Some(json!({"user": {"email": email, "givenName": "Plain", "familyName": "User"}, "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["user"]["id"].as_str().unwrap().to_string();
    (id, server.login(email, PASSWORD).await)
}

/// Creates an active partner and returns its id.
pub async fn create_partner(server: &TestServer, admin: &str, name: &str) -> String {
    let (status, body) =
        rest(server, admin, "POST", "/v1/loyalty/partners", Some(json!({"name": name, "eventTypes": ["purchase"]})))
            .await;
    assert_eq!(status, 200, "{body}");
    body["partner"]["id"].as_str().unwrap().to_string()
}

/// Creates a key of the partner and returns (key id, key).
pub async fn partner_key(server: &TestServer, admin: &str, partner: &str) -> (String, String) {
    let (status, body) =
        rest(server, admin, "POST", format!("/v1/loyalty/partners/{partner}/apiKeys"), Some(json!({"name": "pos"})))
            .await;
    assert_eq!(status, 200, "{body}");
    (body["apiKey"]["id"].as_str().unwrap().to_string(), body["key"].as_str().unwrap().to_string())
}

/// A REST call carrying `X-API-Key` (and no bearer).
pub async fn with_api_key(
    server: &TestServer,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = server.http.request(method.parse().unwrap(), server.url(path)).header("x-api-key", key);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Credits (or debits) a member's points through AdjustPoints; returns the response.
pub async fn adjust(server: &TestServer, admin: &str, user: &str, points: i64) -> Value {
    let (status, body) = rest(
        server,
        admin,
        "POST",
        format!("/v1/loyalty/members/{user}/balance:adjust"),
        Some(json!({"points": points, "reason": "test credit", "requestId": uuid::Uuid::new_v4().to_string()})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}
