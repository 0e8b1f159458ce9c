//! Helpers of the earning tests: a server with a real partner and its real `X-API-Key`, users,
//! partner calls over REST and gRPC, and the SQL sums that check what was awarded.

use std::time::Duration;

use mgpass_e2e::{TestServer, psql, rest};
use serde_json::{Value, json};

pub use crate::loyalty_support::PASSWORD as PW;
use crate::loyalty_support::{partner_key, with_api_key};

/// A server, its admin token, one partner declaring `purchase` and `trip.completed`, and the
/// partner's API key.
pub struct Loyalty {
    pub server: TestServer,
    pub admin: String,
    pub partner_id: String,
    pub key: String,
}

impl Loyalty {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    pub async fn start_with(env: &[(&str, &str)]) -> Self {
        let mut all = vec![("MGPASS_LOYALTY__EARNING__PENDING_MATCH_INTERVAL_SECS", "1")];
        all.extend_from_slice(env);
        let server = TestServer::start_with(&all).await;
        let admin = server.admin_token().await;
        let (partner_id, key) = create_partner(&server, &admin, "Shop").await;
        Self {
            server,
            admin,
            partner_id,
            key,
        }
    }

    /// A REST call authenticated with the partner's key.
    pub async fn partner(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        partner_call(&self.server, &self.key, method, path, body).await
    }

    pub async fn ingest(&self, event: Value) -> (u16, Value) {
        self.partner("POST", "/v1/loyalty/events", event).await
    }

    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        rest(&self.server, &self.admin, method, path, body).await
    }

    /// Creates a rule over REST; its id.
    pub async fn rule(&self, rule: Value) -> String {
        let (status, body) = self.admin("POST", "/v1/loyalty/rules", Some(rule)).await;
        assert_eq!(status, 200, "{body}");
        body["rule"]["id"].as_str().unwrap().to_string()
    }

    pub async fn user(&self, email: &str) -> String {
        create_user(&self.server, &self.admin, email).await
    }

    /// A user's points in the ledger: the sum of the entries of their account.
    pub fn points_of(&self, user: &str) -> i64 {
        sum(
            &self.server,
            &format!(
                "SELECT COALESCE(SUM(e.points), 0) FROM loyalty_entries e JOIN loyalty_accounts a ON a.id = e.account_id \
             WHERE a.account_type = 'user' AND a.owner_id = '{user}'"
            ),
        )
    }

    /// `mgpass ledger verify` finds no breach (sums, balances, awards traceable to their event and
    /// rule version).
    pub fn assert_ledger_verified(&self) {
        let out = mgpass_e2e::run_mgpass(
            &["ledger", "verify"],
            &[("MGPASS_DATABASE__URL", &self.server.database_url)],
        );
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn sql(&self, query: &str) -> String {
        psql(&self.server.database_url, query)
    }
}

pub fn sum(server: &TestServer, query: &str) -> i64 {
    psql(&server.database_url, query).parse().unwrap()
}

/// A partner declaring `purchase` and `trip.completed`, and a key of it.
pub async fn create_partner(server: &TestServer, admin: &str, name: &str) -> (String, String) {
    let (status, body) = rest(
        server,
        admin,
        "POST",
        "/v1/loyalty/partners",
        Some(json!({"name": name, "eventTypes": ["purchase", "trip.completed"]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let partner_id = body["partner"]["id"].as_str().unwrap().to_string();
    let (_, key) = partner_key(server, admin, &partner_id).await;
    (partner_id, key)
}

/// A partner call with `X-API-Key`; GET calls carry no body.
pub async fn partner_call(
    server: &TestServer,
    key: &str,
    method: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    with_api_key(server, key, method, path, (method != "GET").then_some(body)).await
}

pub async fn create_user(server: &TestServer, admin: &str, email: &str) -> String {
    crate::loyalty_support::plain_user(server, admin, email)
        .await
        .0
}
/// An event for a user id. All occur at one instant (the first call's), so sending one twice is
/// sending the same event.
pub fn purchase(id: &str, user: &str, amount_minor: i64) -> Value {
    static OCCUR: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    json!({
        "partnerEventId": id,
        "eventType": "purchase",
        "userId": user,
        "occurTime": OCCUR.get_or_init(now),
        "amount": {"amountMinor": amount_minor.to_string(), "currency": "GHS"},
        "attributes": {"store": "accra-1"},
    })
}

/// The current time in RFC 3339, as JSON timestamps are written.
pub fn now() -> String {
    prost_types::Timestamp::from(std::time::SystemTime::now()).to_string()
}

/// An int64 of proto3 JSON (written as a string) or a plain number.
pub fn int(v: &Value) -> i64 {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

/// A proto3 JSON boolean, omitted when false.
pub fn flag(v: &Value) -> bool {
    v.as_bool().unwrap_or(false)
}

/// Waits until `check` holds (background jobs), at most 20 s.
pub async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
