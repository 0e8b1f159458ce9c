//! The binary as an operator meets it: configuration errors, bootstrap, signing keys and JWKS,
//! health, and graceful shutdown.

use mgpass_e2e::{TestServer, fresh_database, run_mgpass};
use serde_json::Value;

#[test]
fn bad_configuration_is_reported_one_line_per_value() {
    let out = run_mgpass(
        &["migrate"],
        &[
            ("MGPASS_DATABASE__URL", "mysql://nope"),
            ("MGPASS_SERVER__LISTEN", "not-an-address"),
            ("MGPASS_SERVER__LOG_FORMAT", "xml"),
            ("MGPASS_TOKENS__ACCESS_TOKEN_TTL_SECS", "5"),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for key in ["database.url", "server.listen", "server.log_format", "tokens.access_token_ttl_secs"] {
        assert_eq!(err.lines().filter(|l| l.contains(key)).count(), 1, "{key} reported once in:\n{err}");
    }
    let out = run_mgpass(&["migrate"], &[("MGPASS_DATABASE__URL", "postgres://x@127.0.0.1:1/x"), ("MGPASS_SERVER__NOPE", "1")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"), "unknown keys are refused");
}

#[test]
fn help_documents_every_command() {
    let out = run_mgpass(&["--help"], &[]);
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in ["serve", "migrate", "bootstrap", "keys", "version"] {
        assert!(help.contains(cmd), "{cmd} in help:\n{help}");
    }
    let out = run_mgpass(&["version"], &[]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("mgpass "));
}

#[tokio::test(flavor = "multi_thread")]
async fn bootstrap_generates_a_password_once_and_never_a_fixed_one() {
    let db = fresh_database();
    let env = [("MGPASS_DATABASE__URL", db.as_str())];
    assert!(run_mgpass(&["migrate"], &env).status.success());
    let first = run_mgpass(&["bootstrap"], &env);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let stdout = String::from_utf8_lossy(&first.stdout);
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("password:"))
        .map(|p| p.trim().to_string())
        .expect("the generated password is printed");
    assert!(password.len() >= 20);
    let second = run_mgpass(&["bootstrap"], &env);
    assert!(second.status.success());
    assert!(!String::from_utf8_lossy(&second.stdout).contains("password"), "shown once only");

    // Another database gets another password.
    let db2 = fresh_database();
    let env2 = [("MGPASS_DATABASE__URL", db2.as_str())];
    assert!(run_mgpass(&["migrate"], &env2).status.success());
    let other = String::from_utf8_lossy(&run_mgpass(&["bootstrap"], &env2).stdout).to_string();
    assert!(!other.contains(&password));

    // The printed password signs in, and the token carries mgpass:admin.
    let server = TestServer::start_on(db, &[("MGPASS_BOOTSTRAP__ADMIN_PASSWORD", "")]).await;
    let token = server.login("admin@admin.com", &password).await;
    let claims = verify_with_jwks(&server, &token).await;
    assert_eq!(claims["scope"], "mgpass:admin");
    assert_eq!(claims["roles"], serde_json::json!(["superAdmin"]));
}

/// Verifies a token the way a resource server would: JWKS from the well-known URL, the
/// jsonwebtoken crate, iss/aud/exp checked.
async fn verify_with_jwks(server: &TestServer, token: &str) -> Value {
    let jwks: Value = server.http.get(server.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    let kid = header.kid.expect("kid");
    let jwk = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid.as_str()).expect("kid in JWKS");
    assert_eq!((jwk["kty"].as_str(), jwk["crv"].as_str(), jwk["use"].as_str()), (Some("EC"), Some("P-256"), Some("sig")));
    assert!(jwk.get("d").is_none(), "no private material in the JWKS");
    let key = jsonwebtoken::DecodingKey::from_ec_components(jwk["x"].as_str().unwrap(), jwk["y"].as_str().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_issuer(&[server.base_url.as_str()]);
    validation.set_audience(&["mgpass"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation).expect("token verifies against the JWKS").claims
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_verify_against_the_jwks_and_rotation_publishes_before_signing() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let claims = verify_with_jwks(&server, &token).await;
    for claim in ["sub", "iss", "aud", "iat", "exp", "jti", "email", "roles", "scope", "orgs"] {
        assert!(claims.get(claim).is_some(), "{claim} in {claims}");
    }
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() == 900);

    let jwks: Value = server.http.get(server.url("/v1/auth/jwks")).send().await.unwrap().json().await.unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    let out = run_mgpass(&["keys", "rotate", "--lead-secs", "3600"], &[("MGPASS_DATABASE__URL", server.database_url.as_str())]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let new_kid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // A freshly started instance publishes the new key but still signs with the old one.
    let second = TestServer::start_on(server.database_url.clone(), &[]).await;
    let jwks: Value = second.http.get(second.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert!(kids.contains(&new_kid.as_str()) && kids.len() == 2, "{kids:?}");
    let token = second.login(&second.admin_email, &server.admin_password).await;
    assert_ne!(jsonwebtoken::decode_header(&token).unwrap().kid.unwrap(), new_kid);
}

#[tokio::test(flavor = "multi_thread")]
async fn health_readiness_and_graceful_shutdown() {
    let mut server = TestServer::start().await;
    assert_eq!(server.http.get(server.url("/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(server.http.get(server.url("/readyz")).send().await.unwrap().status(), 200);
    let resp = server.http.get(server.url("/")).send().await.unwrap();
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(resp.headers().contains_key("x-request-id"));

    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    let resp = health
        .check(tonic_health::pb::HealthCheckRequest { service: "mgpass.identity.v1.UserService".into() })
        .await
        .unwrap();
    assert_eq!(resp.into_inner().status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);

    // A call in flight when SIGTERM arrives still completes (login hashes for tens of ms).
    let http = server.http.clone();
    // Warm the keep-alive connection so the login below is surely on the wire before SIGTERM.
    http.get(server.url("/healthz")).send().await.unwrap();
    let url = server.url("/v1/auth/login");
    let body = serde_json::json!({"identifier": server.admin_email, "password": server.admin_password});
    let in_flight = tokio::spawn(async move { http.post(url).json(&body).send().await.map(|r| r.status().as_u16()) });
    tokio::time::sleep(std::time::Duration::from_millis(15)).await;
    let status = tokio::task::spawn_blocking(move || server.terminate()).await.unwrap().expect("process status");
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    assert_eq!(in_flight.await.unwrap().unwrap(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_applies_to_rest_and_grpc_alike() {
    let server = TestServer::start_with(&[("MGPASS_SERVER__RATE_LIMIT_PER_IP", "5")]).await;
    let mut limited = 0;
    for _ in 0..20 {
        let resp = server.http.get(server.url("/v1/auth/jwks")).send().await.unwrap();
        if resp.status() == 429 {
            let body: Value = resp.json().await.unwrap();
            assert_eq!(mgpass_e2e::rest_reason(&body), "RATE_LIMITED");
            limited += 1;
        }
    }
    assert!(limited >= 10, "REST calls beyond 5/s are refused ({limited} of 20)");
    let mut grpc = mgpass_e2e::proto::identity::authentication_service_client::AuthenticationServiceClient::new(
        server.channel().await,
    );
    let mut grpc_limited = 0;
    for _ in 0..20 {
        if let Err(status) = grpc.get_jwks(mgpass_e2e::proto::identity::GetJwksRequest {}).await {
            assert_eq!(status.code(), tonic::Code::ResourceExhausted);
            assert_eq!(mgpass_e2e::grpc_reason(&status), "RATE_LIMITED");
            grpc_limited += 1;
        }
    }
    assert!(grpc_limited >= 10, "gRPC calls share the same limit ({grpc_limited} of 20)");
}

/// The OAuth endpoints and the hosted pages draw on the same per-IP budget as the APIs: a client
/// guessing codes or passwords through them is slowed like anyone else.
#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_covers_the_oauth_endpoints_and_hosted_pages() {
    let server = TestServer::start_with(&[("MGPASS_SERVER__RATE_LIMIT_PER_IP", "5")]).await;
    let form = [("grant_type", "authorization_code"), ("code", "guess"), ("client_id", "nobody")];
    let mut answers = Vec::new();
    for _ in 0..20 {
        let resp = server.http.post(server.url("/oauth2/token")).form(&form).send().await.unwrap();
        let status = resp.status().as_u16();
        let retry_after = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
        let body: Value = resp.json().await.unwrap();
        answers.push((status, retry_after, body["error"].as_str().unwrap_or_default().to_string()));
    }
    let limited: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 429).collect();
    assert!(limited.len() >= 10, "token requests beyond 5/s are refused: {answers:?}");
    assert!(limited.iter().all(|(_, retry, error)| retry.as_deref() == Some("1") && error == "rate_limited"), "{answers:?}");
    // The ones let through got the protocol's own answer, not a rate-limit one.
    assert!(answers.iter().filter(|(s, _, _)| *s != 429).all(|(_, _, e)| e == "invalid_client"), "{answers:?}");

    // The budget is per address and per second, shared: a spent budget also refuses the device
    // page, and a second later discovery answers again.
    let mut page_statuses = Vec::new();
    for _ in 0..10 {
        page_statuses.push(server.http.get(server.url("/oauth2/device")).send().await.unwrap().status().as_u16());
    }
    assert!(page_statuses.contains(&429), "{page_statuses:?}");
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let status = server.http.get(server.url("/.well-known/openid-configuration")).send().await.unwrap().status().as_u16();
    assert_eq!(status, 200, "the budget refills");
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_are_structured_carry_request_ids_and_no_secrets() {
    let server = TestServer::start_with(&[("MGPASS_SERVER__LOG_FORMAT", "json"), ("RUST_LOG", "debug")]).await;
    let token = server.admin_token().await;
    let resp = server
        .http
        .post(server.url("/v1/users"))
        .bearer_auth(&token)
        .header("x-request-id", "test-request-42")
        .json(&serde_json::json!({"user": {"email": "logs@example.com"}, "password": "my secret password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], "test-request-42");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let logs = server.logs();
    assert!(!logs.is_empty());
    for secret in [server.admin_password.as_str(), "my secret password", token.as_str()] {
        assert!(!logs.contains(secret), "a secret reached the log");
    }
    let mut saw_request = false;
    for line in logs.lines() {
        let event: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        if line.contains("test-request-42") {
            saw_request = true;
            assert!(event.get("timestamp").is_some() && event.get("level").is_some(), "{line}");
        }
    }
    assert!(saw_request, "the request id appears in the log:\n{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn eddsa_can_be_chosen_and_verifies_with_an_independent_library() {
    let server = TestServer::start_with(&[("MGPASS_TOKENS__ALGORITHM", "EdDSA")]).await;
    let token = server.admin_token().await;
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    let jwks: Value = server.http.get(server.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let jwk = &jwks["keys"][0];
    assert_eq!((jwk["kty"].as_str(), jwk["crv"].as_str(), jwk["alg"].as_str()), (Some("OKP"), Some("Ed25519"), Some("EdDSA")));
    assert!(jwk.get("y").is_none(), "OKP keys have no y: {jwk}");
    let key = jsonwebtoken::DecodingKey::from_ed_components(jwk["x"].as_str().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_issuer(&[server.base_url.as_str()]);
    validation.set_audience(&["mgpass"]);
    jsonwebtoken::decode::<Value>(&token, &key, &validation).expect("the EdDSA token verifies");
    let resp = server.http.get(server.url("/v1/users")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 200, "the server accepts its own EdDSA tokens");

    let out = run_mgpass(&["migrate"], &[("MGPASS_DATABASE__URL", "postgres://x@127.0.0.1:1/x"), ("MGPASS_TOKENS__ALGORITHM", "RS256")]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("tokens.algorithm"));
}
