//! The OAuth 2.1 / OIDC protocol endpoints against the real binary and Postgres: discovery and
//! JWKS read by the `openidconnect` crate, client credentials, introspection, revocation, the
//! device grant with refresh rotation, userinfo, and the attacks each must refuse.

use std::time::Duration;

use mgpass_e2e::{
    TestServer, grpc_reason, rest_reason,
    oauth::{App, assign_role, claims, create_app, create_resource, create_role, form, rest},
    proto::oauth as pb,
};
use openidconnect::{
    ClientId, ClientSecret, IssuerUrl, OAuth2TokenResponse,
    core::{CoreClient, CoreProviderMetadata},
};
use serde_json::{Value, json};

const API: &str = "https://api.example.com";

fn http_client() -> openidconnect::reqwest::Client {
    openidconnect::reqwest::ClientBuilder::new().redirect(openidconnect::reqwest::redirect::Policy::none()).build().unwrap()
}

/// An M2M app allowed `content:read stream:live` of the API, holding a role that gives only
/// `content:read`.
async fn m2m_app(server: &TestServer, admin: &str) -> App {
    create_resource(server, admin, API, &["content:read", "stream:live"]).await;
    let role = create_role(server, admin, "reader", API, &["content:read"], false).await;
    let app = create_app(
        server,
        admin,
        json!({"name": "Backend", "applicationType": "APPLICATION_TYPE_M2M",
               "allowedResources": [{"resource": API, "scopes": ["content:read", "stream:live"]}]}),
    )
    .await;
    assign_role(server, admin, &role, json!({"applicationIds": [app.id]})).await;
    app
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_and_jwks_satisfy_the_openidconnect_crate() {
    let server = TestServer::start().await;
    let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(server.base_url.clone()).unwrap(), &http_client())
        .await
        .expect("the openidconnect crate accepts our discovery document and JWKS");
    assert_eq!(metadata.issuer().as_str(), server.base_url);
    assert_eq!(metadata.token_endpoint().unwrap().as_str(), server.url("/oauth2/token"));
    assert!(!metadata.jwks().keys().is_empty());
    let (_, rfc8414) = rest(&server, "", "GET", "/.well-known/oauth-authorization-server", None).await;
    assert_eq!(rfc8414["code_challenge_methods_supported"], json!(["S256"]));
    assert!(!rfc8414["grant_types_supported"].as_array().unwrap().contains(&json!("implicit")));
}

#[tokio::test(flavor = "multi_thread")]
async fn client_credentials_scopes_come_from_roles_and_allowance() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let app = m2m_app(&server, &admin).await;

    // Basic authentication, nothing asked: everything allowed that the roles give.
    let (status, body) = form(&server, "/oauth2/token", Some((&app.client_id, &app.secret)), &[("grant_type", "client_credentials"), ("resource", API)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "content:read");
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["aud"], API);
    assert_eq!(c["scope"], "content:read");
    assert_eq!(c["client_id"], app.client_id.as_str());
    assert_eq!(c["sub"], app.id.as_str());
    assert_eq!(c["iss"], server.base_url.as_str());

    // client_secret_post, asking for both: the role narrows to content:read.
    let (status, body) = form(
        &server,
        "/oauth2/token",
        None,
        &[("grant_type", "client_credentials"), ("client_id", &app.client_id), ("client_secret", &app.secret), ("scope", "content:read stream:live")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "content:read");

    // The oauth2 flow of the openidconnect crate (client_secret_basic).
    let client = CoreClient::new(ClientId::new(app.client_id.clone()), IssuerUrl::new(server.base_url.clone()).unwrap(), Default::default())
        .set_client_secret(ClientSecret::new(app.secret.clone()))
        .set_token_uri(openidconnect::TokenUrl::new(server.url("/oauth2/token")).unwrap());
    let token = client
        .exchange_client_credentials()
        .add_scope(openidconnect::Scope::new("content:read".into()))
        .add_extra_param("resource", API)
        .request_async(&http_client())
        .await
        .expect("client credentials through the openidconnect crate");
    assert_eq!(claims(token.access_token().secret())["aud"], API);

    // Native gRPC.
    let mut grpc = pb::token_service_client::TokenServiceClient::new(server.channel().await);
    let t = grpc
        .issue_client_credentials_token(pb::IssueClientCredentialsTokenRequest {
            client_id: app.client_id.clone(),
            client_secret: app.secret.clone(),
            scope: "content:read".into(),
            resource: API.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(t.scope, "content:read");
    let err = grpc
        .issue_client_credentials_token(pb::IssueClientCredentialsTokenRequest {
            client_id: app.client_id.clone(),
            client_secret: "mgs_wrong".into(),
            scope: String::new(),
            resource: API.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    assert_eq!(grpc_reason(&err), "INVALID_CLIENT");

    // Refusals, with the RFC error and nothing issued.
    let cases: Vec<(Vec<(&str, &str)>, u16, &str)> = vec![
        (vec![("grant_type", "client_credentials"), ("scope", "content:write")], 400, "invalid_scope"),
        (vec![("grant_type", "client_credentials"), ("scope", "openid")], 400, "invalid_scope"),
        (vec![("grant_type", "client_credentials"), ("resource", "https://other.example.com")], 400, "invalid_target"),
        (vec![("grant_type", "password"), ("username", "a"), ("password", "b")], 400, "unsupported_grant_type"),
        (vec![("grant_type", "implicit")], 400, "unsupported_grant_type"),
        (vec![("grant_type", "authorization_code"), ("code", "x"), ("redirect_uri", "https://x")], 400, "unauthorized_client"),
        (vec![("scope", "content:read")], 400, "invalid_request"),
    ];
    for (fields, status, error) in cases {
        let (got, body) = form(&server, "/oauth2/token", Some((&app.client_id, &app.secret)), &fields).await;
        assert_eq!((got, body["error"].as_str().unwrap_or_default()), (status, error), "{fields:?}: {body}");
        assert!(body.get("access_token").is_none());
    }
    let (status, body) = form(&server, "/oauth2/token", Some((&app.client_id, "mgs_wrong")), &[("grant_type", "client_credentials")]).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (401, "invalid_client"));
    let (status, body) = form(&server, "/oauth2/token", Some(("no-such-client", "x")), &[("grant_type", "client_credentials")]).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (401, "invalid_client"));
    // Two authentication methods at once.
    let (status, body) = form(
        &server,
        "/oauth2/token",
        Some((&app.client_id, &app.secret)),
        &[("grant_type", "client_credentials"), ("client_secret", &app.secret)],
    )
    .await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "invalid_request"));
}

#[tokio::test(flavor = "multi_thread")]
async fn introspection_and_revocation_of_access_tokens() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let app = m2m_app(&server, &admin).await;
    // An admin client: the `admin` system role gives `mgpass:admin` on the mgpass API.
    let admin_app = create_app(
        &server,
        &admin,
        json!({"name": "Ops", "applicationType": "APPLICATION_TYPE_M2M",
               "allowedResources": [{"resource": "mgpass", "scopes": ["mgpass:admin"]}]}),
    )
    .await;
    let (_, roles) = rest(&server, &admin, "GET", "/v1/roles?pageSize=50", None).await;
    let admin_role = roles["roles"].as_array().unwrap().iter().find(|r| r["name"] == "admin").unwrap()["id"].as_str().unwrap().to_string();
    assign_role(&server, &admin, &admin_role, json!({"applicationIds": [admin_app.id]})).await;

    let (_, t) = form(&server, "/oauth2/token", Some((&admin_app.client_id, &admin_app.secret)), &[("grant_type", "client_credentials"), ("resource", "mgpass")]).await;
    let ops_token = t["access_token"].as_str().unwrap().to_string();
    assert_eq!(t["scope"], "mgpass:admin");
    // The admin client manages mgpass with it.
    let (status, _) = rest(&server, &ops_token, "GET", "/v1/applications", None).await;
    assert_eq!(status, 200);

    // The resource server (the M2M app) introspects it.
    let (status, i) = form(&server, "/oauth2/introspect", Some((&app.client_id, &app.secret)), &[("token", &ops_token)]).await;
    assert_eq!(status, 200, "{i}");
    assert_eq!(i["active"], true);
    assert_eq!(i["scope"], "mgpass:admin");
    assert_eq!(i["client_id"], admin_app.client_id.as_str());
    assert_eq!(i["aud"], "mgpass");
    assert_eq!(i["token_type"], "Bearer");
    assert!(i["exp"].as_i64().unwrap() > i["iat"].as_i64().unwrap());
    // Introspection needs client authentication.
    let (status, _) = form(&server, "/oauth2/introspect", None, &[("token", &ops_token)]).await;
    assert_eq!(status, 401);

    // Another client cannot revoke it (silently ignored, RFC 7009); its own client can.
    let (status, _) = form(&server, "/oauth2/revoke", Some((&app.client_id, &app.secret)), &[("token", &ops_token)]).await;
    assert_eq!(status, 200);
    let (_, i) = form(&server, "/oauth2/introspect", Some((&app.client_id, &app.secret)), &[("token", &ops_token)]).await;
    assert_eq!(i["active"], true);
    let (status, _) = form(&server, "/oauth2/revoke", Some((&admin_app.client_id, &admin_app.secret)), &[("token", &ops_token)]).await;
    assert_eq!(status, 200);
    let (_, i) = form(&server, "/oauth2/introspect", Some((&app.client_id, &app.secret)), &[("token", &ops_token)]).await;
    assert_eq!(i, json!({"active": false}));
    let (status, _) = rest(&server, &ops_token, "GET", "/v1/applications", None).await;
    assert_eq!(status, 401, "a revoked token stops working at the management API");
    // Garbage is simply inactive; revoking garbage is fine.
    let (_, i) = form(&server, "/oauth2/introspect", Some((&app.client_id, &app.secret)), &[("token", "not-a-token")]).await;
    assert_eq!(i, json!({"active": false}));
    let (status, _) = form(&server, "/oauth2/revoke", Some((&app.client_id, &app.secret)), &[("token", "not-a-token")]).await;
    assert_eq!(status, 200);

    // A token for the API resource does not open the management API, whatever its scopes.
    let (_, t) = form(&server, "/oauth2/token", Some((&app.client_id, &app.secret)), &[("grant_type", "client_credentials"), ("resource", API)]).await;
    let (status, body) = rest(&server, t["access_token"].as_str().unwrap(), "GET", "/v1/applications", None).await;
    assert_eq!(status, 401, "{body}");
}

/// A device-grant user session: a native app asks, a signed-in user approves over the API.
struct DeviceTokens {
    access: String,
    refresh: String,
    id_token: String,
}

async fn device_flow(server: &TestServer, app: &App, user_token: &str, scope: &str) -> DeviceTokens {
    let (status, d) = form(server, "/oauth2/device_authorization", None, &[("client_id", &app.client_id), ("scope", scope)]).await;
    assert_eq!(status, 200, "{d}");
    let device_code = d["device_code"].as_str().unwrap().to_string();
    let user_code = d["user_code"].as_str().unwrap().to_string();
    assert_eq!(d["verification_uri"], server.url("/oauth2/device"));
    assert!(d["verification_uri_complete"].as_str().unwrap().contains(&user_code));
    let poll = || poll_device(server, &app.client_id, &device_code);
    let (status, body) = poll().await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "authorization_pending"));
    let (status, body) = poll().await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "slow_down"), "polling without waiting");
    // Approval with the code as people type it (lower case, no dash).
    let typed = user_code.replace('-', "").to_lowercase();
    let (status, body) = rest(server, user_token, "POST", "/v1/me/deviceAuthorizations:approve", Some(json!({"userCode": typed}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["clientId"], app.client_id.as_str());
    // slow_down added 5 s to the 1 s interval.
    tokio::time::sleep(Duration::from_millis(6100)).await;
    let (status, t) = poll().await;
    assert_eq!(status, 200, "{t}");
    let (status, again) = poll().await;
    assert_eq!((status, again["error"].as_str().unwrap()), (400, "invalid_grant"), "a device code works once");
    DeviceTokens {
        access: t["access_token"].as_str().unwrap().to_string(),
        refresh: t["refresh_token"].as_str().unwrap_or_default().to_string(),
        id_token: t["id_token"].as_str().unwrap_or_default().to_string(),
    }
}

async fn poll_device(server: &TestServer, client_id: &str, device_code: &str) -> (u16, Value) {
    let grant = "urn:ietf:params:oauth:grant-type:device_code";
    form(server, "/oauth2/token", None, &[("grant_type", grant), ("client_id", client_id), ("device_code", device_code)]).await
}

async fn refresh_grant(server: &TestServer, client_id: &str, refresh_token: &str) -> (u16, Value) {
    form(server, "/oauth2/token", None, &[("grant_type", "refresh_token"), ("client_id", client_id), ("refresh_token", refresh_token)]).await
}

async fn native_app(server: &TestServer, admin: &str, name: &str) -> App {
    create_app(
        server,
        admin,
        json!({"name": name, "applicationType": "APPLICATION_TYPE_NATIVE",
               "redirectUris": ["http://127.0.0.1/callback"],
               "grantTypes": ["GRANT_TYPE_AUTHORIZATION_CODE", "GRANT_TYPE_REFRESH_TOKEN", "GRANT_TYPE_DEVICE_CODE"],
               "allowedScopes": ["openid", "profile", "email", "offline_access"]}),
    )
    .await
}

async fn user(server: &TestServer, admin: &str, email: &str) -> (String, String) {
    let (status, body) = rest(
        server,
        admin,
        "POST",
        "/v1/users",
        Some(json!({"user": {"email": email, "givenName": "Ama", "familyName": "Mensah"}, "password": "correct horse battery staple"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    (body["user"]["id"].as_str().unwrap().to_string(), server.login(email, "correct horse battery staple").await)
}

#[tokio::test(flavor = "multi_thread")]
async fn device_grant_refresh_rotation_userinfo_and_reuse_detection() {
    let server = TestServer::start_with(&[("MGPASS_OAUTH__DEVICE_POLL_INTERVAL_SECS", "1")]).await;
    let admin = server.admin_token().await;
    let tv = native_app(&server, &admin, "TV").await;
    let other = native_app(&server, &admin, "Other").await;
    let (user_id, user_token) = user(&server, &admin, "ama@example.com").await;

    let tokens = device_flow(&server, &tv, &user_token, "openid profile email offline_access").await;
    let id = claims(&tokens.id_token);
    assert_eq!(id["sub"], user_id.as_str());
    assert_eq!(id["aud"], tv.client_id.as_str());
    assert_eq!(id["email"], "ama@example.com");
    assert_eq!(id["given_name"], "Ama");
    assert!(id["at_hash"].is_string() && id["auth_time"].is_i64());
    let access = claims(&tokens.access);
    assert_eq!(access["sub"], user_id.as_str());
    assert_eq!(access["client_id"], tv.client_id.as_str());

    // UserInfo releases what the scopes allow.
    let info: Value = server.http.get(server.url("/oauth2/userinfo")).bearer_auth(&tokens.access).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["sub"], user_id.as_str());
    assert_eq!(info["email"], "ama@example.com");
    assert_eq!(info["name"], "Ama Mensah");
    assert!(info.get("phone_number").is_none());
    let resp = server.http.get(server.url("/oauth2/userinfo")).bearer_auth("garbage").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));

    // Another client cannot use the refresh token; it still works for its own client after.
    let (status, body) = form(&server, "/oauth2/token", None, &[("grant_type", "refresh_token"), ("client_id", &other.client_id), ("refresh_token", &tokens.refresh)]).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "invalid_grant"));
    let refresh = |rt: String| {
        let client_id = tv.client_id.clone();
        let server = &server;
        async move { refresh_grant(server, &client_id, &rt).await }
    };
    let (status, r1) = refresh(tokens.refresh.clone()).await;
    assert_eq!(status, 200, "{r1}");
    let rt1 = r1["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, tokens.refresh, "rotated");
    assert!(r1["id_token"].is_string());
    // Narrowing is allowed, widening is not.
    let (status, body) = form(&server, "/oauth2/token", None, &[("grant_type", "refresh_token"), ("client_id", &tv.client_id), ("refresh_token", &rt1), ("scope", "openid phone")]).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "invalid_scope"));
    // Replaying the first refresh token revokes the family: the newest one dies with it.
    let (status, body) = refresh(tokens.refresh.clone()).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "invalid_grant"));
    let (status, _) = refresh(rt1.clone()).await;
    assert_eq!(status, 400, "the family is revoked");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let resp = server.http.get(server.url("/oauth2/userinfo")).bearer_auth(r1["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(resp.status(), 401, "access tokens of a revoked grant stop working");

    // A user token of the identity API cannot be refreshed at the OAuth endpoint, nor the reverse.
    let mut auth = mgpass_e2e::proto::identity::authentication_service_client::AuthenticationServiceClient::new(server.channel().await);
    let tokens2 = device_flow(&server, &tv, &user_token, "openid offline_access").await;
    let err = auth
        .refresh_token(mgpass_e2e::proto::identity::RefreshTokenRequest { refresh_token: tokens2.refresh.clone() })
        .await
        .unwrap_err();
    assert_eq!(grpc_reason(&err), "INVALID_GRANT");
    let (status, body) = form(&server, "/oauth2/token", None, &[("grant_type", "refresh_token"), ("client_id", &tv.client_id), ("refresh_token", &tokens2.refresh)]).await;
    assert_eq!(status, 200, "the OAuth refresh token still works for its client: {body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn device_grant_denied_and_revoked_refresh_tokens() {
    let server = TestServer::start_with(&[("MGPASS_OAUTH__DEVICE_POLL_INTERVAL_SECS", "1")]).await;
    let admin = server.admin_token().await;
    let tv = native_app(&server, &admin, "TV").await;
    let (_, user_token) = user(&server, &admin, "kofi@example.com").await;

    let (_, d) = form(&server, "/oauth2/device_authorization", None, &[("client_id", &tv.client_id), ("scope", "openid")]).await;
    let (status, _) = rest(&server, &user_token, "POST", "/v1/me/deviceAuthorizations:approve", Some(json!({"userCode": d["user_code"], "deny": true}))).await;
    assert_eq!(status, 200);
    let (status, body) = form(&server, "/oauth2/token", None, &[("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("client_id", &tv.client_id), ("device_code", d["device_code"].as_str().unwrap())]).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "access_denied"));
    // A decided code cannot be decided again.
    let (status, body) = rest(&server, &user_token, "POST", "/v1/me/deviceAuthorizations:approve", Some(json!({"userCode": d["user_code"]}))).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_USER_CODE"), "{body}");
    // Scopes the app may not ask for are refused at the start.
    let (status, body) = form(&server, "/oauth2/device_authorization", None, &[("client_id", &tv.client_id), ("scope", "openid phone")]).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "invalid_scope"));

    // Revoking a refresh token ends the grant.
    let tokens = device_flow(&server, &tv, &user_token, "openid offline_access").await;
    let (status, _) = form(&server, "/oauth2/revoke", None, &[("client_id", &tv.client_id), ("token", &tokens.refresh)]).await;
    assert_eq!(status, 200);
    let (status, body) = form(&server, "/oauth2/token", None, &[("grant_type", "refresh_token"), ("client_id", &tv.client_id), ("refresh_token", &tokens.refresh)]).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "invalid_grant"));
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_tokens_are_refused() {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let app = m2m_app(&server, &admin).await;
    let (_, t) = form(&server, "/oauth2/token", Some((&app.client_id, &app.secret)), &[("grant_type", "client_credentials"), ("resource", API)]).await;
    let good = t["access_token"].as_str().unwrap().to_string();
    let parts: Vec<&str> = good.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let kid = header["kid"].as_str().unwrap();
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    // alg none.
    let none = format!("{}.{}.", enc(&json!({"alg": "none", "typ": "at+jwt", "kid": kid})), parts[1]);
    // HS256 keyed with the public JWK's text.
    let (_, jwks) = rest(&server, "", "GET", "/oauth2/jwks", None).await;
    let public = serde_json::to_string(&jwks["keys"][0]).unwrap();
    let hs_header = enc(&json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, public.as_bytes());
    let sig = ring::hmac::sign(&key, format!("{hs_header}.{}", parts[1]).as_bytes());
    let hs256 = format!("{hs_header}.{}.{}", parts[1], URL_SAFE_NO_PAD.encode(sig.as_ref()));
    // Unknown kid, valid otherwise.
    let unknown_kid = format!("{}.{}.{}", enc(&json!({"alg": "ES256", "typ": "at+jwt", "kid": "nope"})), parts[1], parts[2]);
    // Tampered claims.
    let mut c = claims(&good);
    c["scope"] = json!("content:read stream:live");
    let tampered = format!("{}.{}.{}", parts[0], enc(&c), parts[2]);
    for (name, token) in [("none", none), ("hs256", hs256), ("unknown kid", unknown_kid), ("tampered", tampered)] {
        let (_, i) = form(&server, "/oauth2/introspect", Some((&app.client_id, &app.secret)), &[("token", &token)]).await;
        assert_eq!(i, json!({"active": false}), "{name}");
        let (status, _) = rest(&server, &token, "GET", "/v1/me", None).await;
        assert_eq!(status, 401, "{name}");
    }
    let (_, i) = form(&server, "/oauth2/introspect", Some((&app.client_id, &app.secret)), &[("token", &good)]).await;
    assert_eq!(i["active"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_for_browser_clients_follows_allowed_origins() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let spa = create_app(
        &server,
        &admin,
        json!({"name": "SPA", "applicationType": "APPLICATION_TYPE_SPA",
               "redirectUris": ["https://spa.example.com/cb"], "allowedOrigins": ["https://spa.example.com"]}),
    )
    .await;
    let preflight = |origin: &'static str| {
        server
            .http
            .request(reqwest::Method::OPTIONS, server.url("/oauth2/token"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let ok = preflight("https://spa.example.com").await.unwrap();
    assert_eq!(ok.headers()["access-control-allow-origin"], "https://spa.example.com");
    assert!(ok.headers()["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    let evil = preflight("https://evil.example.com").await.unwrap();
    assert!(evil.headers().get("access-control-allow-origin").is_none());
    // The answer itself (here an error: the code is made up) carries the header for the app's origin only.
    let post = |origin: &'static str| {
        server
            .http
            .post(server.url("/oauth2/token"))
            .header("origin", origin)
            .form(&[("grant_type", "authorization_code"), ("client_id", spa.client_id.as_str()), ("code", "x"), ("redirect_uri", "https://spa.example.com/cb"), ("code_verifier", &"a".repeat(43))])
            .send()
    };
    let resp = post("https://spa.example.com").await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["access-control-allow-origin"], "https://spa.example.com");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let resp = post("https://evil.example.com").await.unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
}
