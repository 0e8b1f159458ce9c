//! The SDK against the real mgpass binary on a fresh database (the e2e harness starts it).

use std::time::{Duration, Instant};

use axum::{Extension, Router, body::Body, routing::get};
use base64::Engine;
use mgpass_e2e::{TestServer, run_mgpass};
use mgpass_sdk::{
    Claims, Credential, MgpassClient, TokenErrorReason, TokenVerifier, VerifyLayer,
    proto::identity::{GetMyProfileRequest, GetUserRequest, ListUsersRequest, LoginRequest, CreateUserRequest, User},
};
use tower::ServiceExt;

/// Key checks every second so that a rotation reaches signing within the test.
const FAST_KEYS: [(&str, &str); 2] =
    [("MGPASS_TOKENS__KEY_CHECK_INTERVAL_SECS", "1"), ("MGPASS_TOKENS__KEY_PUBLISH_LEAD_SECS", "1")];

struct Login {
    token: String,
    user_id: String,
}

async fn login(client: &MgpassClient, identifier: &str, password: &str) -> Login {
    let mut auth = client.identity.authentication.clone();
    let response = auth
        .login(LoginRequest { identifier: identifier.into(), password: password.into() })
        .await
        .unwrap_or_else(|e| panic!("login of {identifier}: {e}"))
        .into_inner();
    Login { token: response.access_token, user_id: response.user_id }
}

/// A user without roles, created by the admin; returns their access token.
async fn plain_user_token(admin: &MgpassClient, anonymous: &MgpassClient) -> String {
    let email = format!("rs-{}@example.com", uuid::Uuid::new_v4());
    let password = format!("pw-{}", uuid::Uuid::new_v4());
    admin
        .identity
        .user
        .clone()
        .create_user(CreateUserRequest {
            user: Some(User { email: email.clone(), given_name: "Plain".into(), family_name: "User".into(), ..Default::default() }),
            password: password.clone(),
        })
        .await
        .unwrap();
    login(anonymous, &email, &password).await.token
}

fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn signs_in_reads_my_profile_and_gets_typed_errors() {
    let server = TestServer::start().await;
    let anonymous = MgpassClient::builder(server.base_url.clone()).connect().await.unwrap();
    let admin_login = login(&anonymous, &server.admin_email, &server.admin_password).await;
    let admin = MgpassClient::builder(server.base_url.clone()).bearer_token(&admin_login.token).connect().await.unwrap();

    let me = admin.identity.profile.clone().get_my_profile(GetMyProfileRequest {}).await.unwrap().into_inner();
    let me = me.user.expect("profile user");
    assert_eq!((me.email.as_str(), me.id.as_str()), (server.admin_email.as_str(), admin_login.user_id.as_str()));

    // 404: a typed error with the stable reason.
    let missing = admin
        .identity
        .user
        .clone()
        .get_user(GetUserRequest { user_id: uuid::Uuid::new_v4().to_string() })
        .await
        .map_err(mgpass_sdk::Error::from)
        .unwrap_err();
    assert_eq!((missing.code, missing.reason.as_str()), (tonic::Code::NotFound, "USER_NOT_FOUND"));

    // 403: a plain user may not list users.
    let plain = anonymous.with(Credential::access_token(&plain_user_token(&admin, &anonymous).await).unwrap());
    let denied = plain.identity.user.clone().list_users(ListUsersRequest::default()).await.map_err(mgpass_sdk::Error::from).unwrap_err();
    assert_eq!((denied.code, denied.reason.as_str()), (tonic::Code::PermissionDenied, "PERMISSION_DENIED"));

    // Without a credential the same client is refused as unauthenticated.
    let anonymous_err =
        anonymous.identity.profile.clone().get_my_profile(GetMyProfileRequest {}).await.map_err(mgpass_sdk::Error::from).unwrap_err();
    assert_eq!(anonymous_err.code, tonic::Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread")]
async fn sends_a_partner_event_with_a_partner_key_and_reads_the_balance_back() {
    use mgpass_sdk::proto::loyalty::{
        CreatePartnerApiKeyRequest, CreatePartnerRequest, CreateRuleRequest, Event, GetBalanceRequest, IngestEventRequest,
        Partner, PartnerApiKey, Rule, event, rule,
    };

    let server = TestServer::start().await;
    let anonymous = MgpassClient::builder(server.base_url.clone()).connect().await.unwrap();
    let admin_login = login(&anonymous, &server.admin_email, &server.admin_password).await;
    let admin = anonymous.with(Credential::access_token(&admin_login.token).unwrap());
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let event_type = format!("rs.purchase.{suffix}");

    let partner = admin
        .loyalty
        .partner
        .clone()
        .create_partner(CreatePartnerRequest {
            partner: Some(Partner {
                name: format!("rs-shop-{suffix}"),
                event_types: vec![event_type.clone()],
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .partner
        .unwrap();
    let key = admin
        .loyalty
        .partner
        .clone()
        .create_partner_api_key(CreatePartnerApiKeyRequest {
            partner_id: partner.id.clone(),
            api_key: Some(PartnerApiKey { name: "pos".into(), ..Default::default() }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(key.key.starts_with("mgpp_"));
    assert_eq!(key.api_key.unwrap().partner_id, partner.id);
    admin
        .loyalty
        .rule
        .clone()
        .create_rule(CreateRuleRequest {
            rule: Some(Rule {
                name: format!("rs-fixed-{suffix}"),
                partner_id: partner.id.clone(),
                event_type: event_type.clone(),
                points: Some(rule::Points::FixedPoints(25)),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let member = admin
        .identity
        .user
        .clone()
        .create_user(CreateUserRequest {
            user: Some(User {
                email: format!("rs-member-{suffix}@example.com"),
                given_name: "Loyal".into(),
                family_name: "Member".into(),
                ..Default::default()
            }),
            password: format!("pw-{}", uuid::Uuid::new_v4()),
        })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    let balance = async || {
        let request = GetBalanceRequest { user_id: member.id.clone() };
        admin.loyalty.ledger.clone().get_balance(request).await.unwrap().into_inner().balance.unwrap().points
    };

    let shop = MgpassClient::builder(server.base_url.clone()).partner_key(&key.key).connect().await.unwrap();
    let sent = Event {
        partner_event_id: format!("order-{suffix}"),
        event_type,
        user: Some(event::User::UserId(member.id.clone())),
        occur_time: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
        ..Default::default()
    };
    let ingest = async || {
        let request = IngestEventRequest { event: Some(sent.clone()) };
        shop.loyalty.event.clone().ingest_event(request).await.unwrap().into_inner()
    };
    let first = ingest().await;
    assert!(!first.replayed);
    let awarded = first.event.unwrap();
    assert_eq!((awarded.points, awarded.resolved_user_id.as_str()), (25, member.id.as_str()));
    assert_eq!(balance().await, 25);

    // The same event again is a replay of the original: nothing more is awarded.
    let again = ingest().await;
    assert!(again.replayed);
    assert_eq!(again.event.unwrap().id, awarded.id);
    assert_eq!(balance().await, 25);
}

#[tokio::test(flavor = "multi_thread")]
async fn verifier_checks_the_claims_and_follows_key_rotation() {
    let server = TestServer::start_with(&FAST_KEYS).await;
    let anonymous = MgpassClient::builder(server.base_url.clone()).connect().await.unwrap();
    let first = login(&anonymous, &server.admin_email, &server.admin_password).await;
    let verifier = TokenVerifier::builder(server.base_url.clone(), "mgpass")
        .require_scope("mgpass:admin")
        .min_refetch_interval(Duration::ZERO)
        .build();
    let claims = verifier.verify(&format!("Bearer {}", first.token)).await.unwrap();
    assert_eq!(claims.sub, first.user_id);
    assert!(claims.has_scope("mgpass:admin"));

    let refused = |verifier: TokenVerifier, token: String, reason: TokenErrorReason| async move {
        let err = verifier.verify(&token).await.unwrap_err();
        assert_eq!(err.reason, reason, "{err}");
    };
    refused(TokenVerifier::builder(server.base_url.clone(), "billing").build(), first.token.clone(), TokenErrorReason::WrongAudience).await;
    refused(
        TokenVerifier::builder("https://elsewhere.example", "mgpass").jwks_url(server.url("/.well-known/jwks.json")).build(),
        first.token.clone(),
        TokenErrorReason::WrongIssuer,
    )
    .await;
    refused(
        TokenVerifier::builder(server.base_url.clone(), "mgpass").require_scope("loyalty:write").build(),
        first.token.clone(),
        TokenErrorReason::InsufficientScope,
    )
    .await;
    let parts: Vec<&str> = first.token.split('.').collect();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut payload: serde_json::Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    payload["sub"] = uuid::Uuid::new_v4().to_string().into();
    let forged = format!("{}.{}.{}", parts[0], b64.encode(payload.to_string()), parts[2]);
    refused(verifier.clone(), forged, TokenErrorReason::TokenSignatureInvalid).await;
    refused(verifier.clone(), "not-a-jwt".into(), TokenErrorReason::TokenMalformed).await;

    // Rotate: the new key signs at once; the verifier has cached the old set, so accepting the new
    // token proves it fetched the JWKS again for the unknown key id.
    let out = run_mgpass(&["keys", "rotate", "--lead-secs", "0"], &[("MGPASS_DATABASE__URL", &server.database_url)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let new_kid = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_ne!(new_kid, kid_of(&first.token));
    let deadline = Instant::now() + Duration::from_secs(20);
    let second = loop {
        let token = login(&anonymous, &server.admin_email, &server.admin_password).await;
        if kid_of(&token.token) == new_kid {
            break token;
        }
        assert!(Instant::now() < deadline, "tokens never switched to {new_kid}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(verifier.verify(&second.token).await.unwrap().sub, first.user_id);
    // Tokens of the previous key still verify.
    assert_eq!(verifier.verify(&first.token).await.unwrap().sub, first.user_id);

    // A cold verifier shared by concurrent requests: every one of them verifies (the misses wait
    // for one fetch instead of failing or racing the cache).
    let cold = TokenVerifier::builder(server.base_url.clone(), "mgpass").build();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..16 {
        let (cold, token) = (cold.clone(), if i % 2 == 0 { first.token.clone() } else { second.token.clone() });
        calls.spawn(async move { cold.verify(&token).await.map(|c| c.sub) });
    }
    while let Some(result) = calls.join_next().await {
        assert_eq!(result.unwrap().unwrap(), first.user_id);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_layer_guards_axum_and_tonic_services() {
    let server = TestServer::start().await;
    let anonymous = MgpassClient::builder(server.base_url.clone()).connect().await.unwrap();
    let admin_login = login(&anonymous, &server.admin_email, &server.admin_password).await;
    let admin = anonymous.with(Credential::access_token(&admin_login.token).unwrap());
    let plain_token = plain_user_token(&admin, &anonymous).await;
    let verifier = TokenVerifier::builder(server.base_url.clone(), "mgpass").require_scope("mgpass:admin").build();

    // axum: the claims reach the handler; missing and under-scoped tokens are refused.
    let app = Router::new()
        .route("/whoami", get(|Extension(claims): Extension<Claims>| async move { claims.sub }))
        .layer(VerifyLayer::new(verifier.clone()));
    let call = |token: Option<&str>| {
        let mut request = http::Request::get("/whoami");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        app.clone().oneshot(request.body(Body::empty()).unwrap())
    };
    let ok = call(Some(&admin_login.token)).await.unwrap();
    assert_eq!(ok.status(), 200);
    let body = axum::body::to_bytes(ok.into_body(), 1 << 16).await.unwrap();
    assert_eq!(body, admin_login.user_id.as_bytes());
    let missing = call(None).await.unwrap();
    assert_eq!((missing.status().as_u16(), missing.headers()["www-authenticate"].to_str().unwrap()), (401, "Bearer"));
    let forbidden = call(Some(&plain_token)).await.unwrap();
    assert_eq!(forbidden.status(), 403);
    assert_eq!(forbidden.headers()["www-authenticate"], "Bearer error=\"insufficient_scope\"");
    assert_eq!(call(Some("garbage")).await.unwrap().status(), 401);

    // tonic: a real gRPC server (the health service) behind the layer, called over the network.
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(VerifyLayer::new(verifier))
            .add_service(health)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let check = |credential: Credential| {
        let channel = channel.clone();
        async move {
            let mut client = tonic_health::pb::health_client::HealthClient::with_interceptor(channel, credential);
            client.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await
        }
    };
    check(Credential::access_token(&admin_login.token).unwrap()).await.expect("the admin token passes");
    assert_eq!(check(Credential::none()).await.unwrap_err().code(), tonic::Code::Unauthenticated);
    assert_eq!(check(Credential::access_token(&plain_token).unwrap()).await.unwrap_err().code(), tonic::Code::PermissionDenied);
}

#[test]
fn clients_cover_every_service_of_the_contract() {
    let pool = mgpass_sdk::proto::descriptor_pool();
    let mut contract: Vec<String> =
        pool.services().map(|s| s.full_name().to_string()).filter(|n| n.starts_with("mgpass.")).collect();
    contract.sort();
    let mut covered: Vec<String> = mgpass_sdk::SERVICES.iter().map(|s| s.to_string()).collect();
    covered.sort();
    assert_eq!(covered, contract);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_quickstart_example_runs() {
    // `cargo test` builds the crate's examples next to the test binaries.
    let examples = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("examples/quickstart");
    assert!(examples.exists(), "{} is missing", examples.display());
    let server = TestServer::start().await;
    let anonymous = MgpassClient::builder(server.base_url.clone()).connect().await.unwrap();
    let admin = login(&anonymous, &server.admin_email, &server.admin_password).await;
    let out = tokio::process::Command::new(&examples)
        .env("MGPASS_URL", &server.base_url)
        .env("MGPASS_EMAIL", &server.admin_email)
        .env("MGPASS_PASSWORD", &server.admin_password)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("signed in as {} ({})", server.admin_email, admin.user_id)), "{stdout}");
    assert!(stdout.contains(&format!("token verified offline: sub={}", admin.user_id)), "{stdout}");
}
