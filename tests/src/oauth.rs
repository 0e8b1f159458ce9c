//! Setting up OAuth fixtures through the real admin REST API: API resources, roles,
//! applications. Shared by the OAuth tests of every client language.

use serde_json::{Value, json};

pub use crate::rest;
use crate::TestServer;

/// Creates an API resource with these scopes; returns its indicator.
pub async fn create_resource(server: &TestServer, admin: &str, indicator: &str, scopes: &[&str]) -> String {
    let scopes: Vec<Value> = scopes.iter().map(|s| json!({"name": s, "description": format!("Scope {s}")})).collect();
    let (status, body) = rest(
        server,
        admin,
        "POST",
        "/v1/apiResources",
        Some(json!({"indicator": indicator, "name": indicator, "scopes": scopes})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    indicator.to_string()
}

/// Creates a role giving `scopes` of `resource`; returns its id.
pub async fn create_role(server: &TestServer, admin: &str, name: &str, resource: &str, scopes: &[&str], m2m_only: bool) -> String {
    let (status, body) = rest(
        server,
        admin,
        "POST",
        "/v1/roles",
        Some(json!({"name": name, "scopes": [{"resource": resource, "scopes": scopes}], "m2mOnly": m2m_only})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["role"]["id"].as_str().or(body["id"].as_str()).expect("role id").to_string()
}

/// Assigns a role: `{"userIds": [...]}` or `{"applicationIds": [...]}`.
pub async fn assign_role(server: &TestServer, admin: &str, role_id: &str, assignee: Value) {
    let (status, body) = rest(server, admin, "POST", &format!("/v1/roles/{role_id}:assign"), Some(assignee)).await;
    assert_eq!(status, 200, "{body}");
}

/// An application as created: the resource (JSON, camelCase) and its secret (empty for public
/// clients).
pub struct App {
    pub id: String,
    pub client_id: String,
    pub secret: String,
    pub body: Value,
}

/// Creates an application from its JSON (camelCase proto JSON, e.g.
/// `{"name": "x", "applicationType": "APPLICATION_TYPE_WEB", "redirectUris": [...]}`).
pub async fn create_app(server: &TestServer, admin: &str, application: Value) -> App {
    let (status, body) = rest(server, admin, "POST", "/v1/applications", Some(application)).await;
    assert_eq!(status, 200, "{body}");
    App {
        id: body["application"]["id"].as_str().unwrap().to_string(),
        client_id: body["application"]["clientId"].as_str().unwrap().to_string(),
        secret: body["clientSecret"].as_str().unwrap_or_default().to_string(),
        body,
    }
}

/// A form POST (the OAuth endpoints): the status and the JSON body (Null when not JSON).
pub async fn form(server: &TestServer, path: &str, basic: Option<(&str, &str)>, fields: &[(&str, &str)]) -> (u16, Value) {
    let mut req = server.http.post(server.url(path)).form(fields);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The claims of a JWT, unverified (tests verify signatures separately).
pub fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}
