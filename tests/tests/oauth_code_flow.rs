//! The authorization-code flow end to end with the Rust `openidconnect` crate as the client and
//! the hosted pages driven like a browser: discovery, PKCE, ID-token validation, refresh,
//! userinfo, logout; then every attack on the flow, each refused with the RFC error and nothing
//! issued.

use std::time::Duration;

use futures::future::join_all;
use mgpass_e2e::{
    TestServer,
    browser::{Browser, query},
    oauth::{App, claims, create_app, form, rest},
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndSessionUrl, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
    core::{CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata},
};
use serde_json::json;

const REDIRECT: &str = "https://app.example.com/callback";
const PASSWORD: &str = "correct horse battery staple";

fn http_client() -> openidconnect::reqwest::Client {
    openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn web_app(server: &TestServer, admin: &str, extra: serde_json::Value) -> App {
    let mut body = json!({"name": "Shop", "applicationType": "APPLICATION_TYPE_WEB",
        "redirectUris": [REDIRECT], "postLogoutRedirectUris": ["https://app.example.com/signed-out"],
        "allowedScopes": ["openid", "profile", "email", "offline_access"]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    create_app(server, admin, body).await
}

async fn user(server: &TestServer, admin: &str, email: &str) -> String {
    let (status, body) = rest(
        server,
        admin,
        "POST",
        "/v1/users",
        Some(json!({"user": {"email": email, "givenName": "Esi", "familyName": "Owusu"}, "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["user"]["id"].as_str().unwrap().to_string()
}

/// An authorization URL built by hand, for the attacks the crate would not let us build.
fn authorize_url(server: &TestServer, params: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&server.url("/oauth2/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}

fn pkce() -> (String, String) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    (challenge.as_str().to_string(), verifier.secret().to_string())
}

/// Signs in through the pages and returns a fresh code for `app` (with its PKCE verifier).
async fn code_for(server: &TestServer, browser: &Browser, app: &App, email: &str) -> (String, String) {
    let (challenge, verifier) = pkce();
    let url = authorize_url(
        server,
        &[
            ("response_type", "code"),
            ("client_id", &app.client_id),
            ("redirect_uri", REDIRECT),
            ("scope", "openid offline_access"),
            ("state", "s1"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let page = browser.authorize(&url, email, PASSWORD).await;
    let to = page.left_to.unwrap_or_else(|| panic!("no redirect: {}", page.body));
    let q = query(&to);
    (q.get("code").unwrap_or_else(|| panic!("no code in {to}")).clone(), verifier)
}

async fn redeem(server: &TestServer, app: &App, code: &str, verifier: Option<&str>) -> (u16, serde_json::Value) {
    let mut fields = vec![("grant_type", "authorization_code"), ("code", code), ("redirect_uri", REDIRECT)];
    if let Some(v) = verifier {
        fields.push(("code_verifier", v));
    }
    form(server, "/oauth2/token", Some((&app.client_id, &app.secret)), &fields).await
}

#[tokio::test(flavor = "multi_thread")]
async fn openidconnect_crate_code_flow_refresh_userinfo_logout() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let app = web_app(&server, &admin, json!({})).await;
    let user_id = user(&server, &admin, "esi@example.com").await;

    let http = http_client();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(server.base_url.clone()).unwrap(), &http).await.unwrap();
    let end_session: EndSessionUrl = EndSessionUrl::new(server.url("/oauth2/end_session")).unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(app.client_id.clone()),
        Some(ClientSecret::new(app.secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();

    // A third-party app: sign in, then consent, then back to the app with code, state and iss.
    let browser = Browser::new(&server.base_url);
    let first = browser.get(auth_url.as_str()).await;
    assert!(first.has_form("/oauth2/signin"), "{}", first.body);
    let page = browser
        .submit(&first, "/oauth2/signin", &[("identifier", "esi@example.com"), ("password", PASSWORD)], None)
        .await;
    assert!(page.has_form("/oauth2/consent"), "consent is asked of a third-party app: {}", page.body);
    assert!(page.body.contains("Your email address"));
    let page = browser.submit(&page, "/oauth2/consent", &[], Some(("decision", "allow"))).await;
    let q = query(page.left_to.as_deref().expect("back to the app"));
    assert_eq!(q["state"], *csrf.secret());
    assert_eq!(q["iss"], server.base_url);

    let tokens = client
        .exchange_code(AuthorizationCode::new(q["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange through the openidconnect crate");
    let verifier = client.id_token_verifier().set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]);
    let id_token = tokens.id_token().expect("an ID token");
    let id_claims = id_token.claims(&verifier, &nonce).expect("the crate validates signature, iss, aud, exp, nonce");
    assert_eq!(id_claims.subject().as_str(), user_id);
    assert_eq!(id_claims.email().unwrap().as_str(), "esi@example.com");
    assert!(id_claims.auth_time().is_some());
    let at_hash = id_claims.access_token_hash().expect("at_hash");
    let expected = openidconnect::AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(at_hash, &expected);
    assert_eq!(claims(id_token.to_string().as_str())["amr"], json!(["pwd"]));

    // A token for no API is good for UserInfo only, never for the user's account at the mgpass
    // API (a third-party app must not change the password with it).
    let access = tokens.access_token().secret();
    assert_eq!(claims(access)["aud"], server.url("/oauth2/userinfo"));
    let (status, _) = rest(&server, access, "GET", "/v1/me", None).await;
    assert_eq!(status, 401);
    let (status, own) = rest(&server, &server.login("esi@example.com", PASSWORD).await, "GET", "/v1/me", None).await;
    assert_eq!(status, 200, "{own}");

    // Userinfo through the crate.
    let info: openidconnect::core::CoreUserInfoClaims =
        client.user_info(tokens.access_token().clone(), None).unwrap().request_async(&http).await.expect("userinfo");
    assert_eq!(info.subject().as_str(), user_id);
    assert_eq!(info.given_name().unwrap().get(None).unwrap().as_str(), "Esi");

    // Refresh through the crate: rotated.
    let refreshed = client
        .exchange_refresh_token(tokens.refresh_token().expect("offline_access gives a refresh token"))
        .unwrap()
        .request_async(&http)
        .await
        .expect("refresh");
    assert_ne!(refreshed.refresh_token().unwrap().secret(), tokens.refresh_token().unwrap().secret());

    // A second authorization: signed in and consented, so straight back with a code.
    let (challenge2, _) = pkce();
    let again = authorize_url(
        &server,
        &[
            ("response_type", "code"),
            ("client_id", &app.client_id),
            ("redirect_uri", REDIRECT),
            ("scope", "openid email"),
            ("state", "s2"),
            ("code_challenge", &challenge2),
            ("code_challenge_method", "S256"),
        ],
    );
    let page = browser.get(&again).await;
    assert!(query(page.left_to.as_deref().expect("silent")).contains_key("code"));

    // RP-initiated logout: back to the registered post-logout URI with the state.
    let logout = format!(
        "{}?id_token_hint={}&post_logout_redirect_uri={}&state=bye",
        end_session.url(),
        id_token,
        url::form_urlencoded::byte_serialize(b"https://app.example.com/signed-out").collect::<String>()
    );
    let mut page = browser.get(&logout).await;
    if page.has_form("/oauth2/end_session") {
        page = browser.submit(&page, "/oauth2/end_session", &[], Some(("confirm", "yes"))).await;
    }
    let to = page.left_to.expect("redirect after logout");
    assert!(to.starts_with("https://app.example.com/signed-out"), "{to}");
    assert_eq!(query(&to)["state"], "bye");
    // Signed out: prompt=none now answers login_required at the redirect URI.
    let none = authorize_url(
        &server,
        &[
            ("response_type", "code"),
            ("client_id", &app.client_id),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("state", "s3"),
            ("prompt", "none"),
            ("code_challenge", &challenge2),
            ("code_challenge_method", "S256"),
        ],
    );
    let page = browser.get(&none).await;
    let q = query(page.left_to.as_deref().expect("redirect"));
    assert_eq!(q["error"], "login_required");
    assert_eq!(q["state"], "s3");
    // RP logout ends the browser session, not the app's offline grant (a session of its own).
    let (status, _) = form(
        &server,
        "/oauth2/token",
        Some((&app.client_id, &app.secret)),
        &[("grant_type", "refresh_token"), ("refresh_token", refreshed.refresh_token().unwrap().secret())],
    )
    .await;
    assert_eq!(status, 200);
}

/// An application asking for RS256 ID tokens works with the crate's default verifier (which
/// accepts RS256 only); its access tokens keep the deployment's algorithm, and the RSA key verifies
/// nothing but ID tokens.
#[tokio::test(flavor = "multi_thread")]
async fn rs256_id_tokens_for_applications_that_ask_for_them() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let app = web_app(&server, &admin, json!({"idTokenSigningAlg": "RS256", "firstParty": true})).await;
    assert_eq!(app.body["application"]["idTokenSigningAlg"], "RS256");
    let user_id = user(&server, &admin, "kofi@example.com").await;

    let http = http_client();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(server.base_url.clone()).unwrap(), &http).await.unwrap();
    assert!(metadata.id_token_signing_alg_values_supported().contains(&CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256));
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(app.client_id.clone()),
        Some(ClientSecret::new(app.secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, _, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .set_pkce_challenge(challenge)
        .url();
    let page = Browser::new(&server.base_url).authorize(auth_url.as_str(), "kofi@example.com", PASSWORD).await;
    let q = query(page.left_to.as_deref().expect("back to the app"));
    let tokens = client
        .exchange_code(AuthorizationCode::new(q["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("an ID token");
    // The default verifier: RS256 only, keys from the JWKS.
    let id_verifier = client.id_token_verifier();
    let id_claims = id_token.claims(&id_verifier, &nonce).expect("an RS256 ID token the crate validates by default");
    assert_eq!(id_claims.subject().as_str(), user_id);
    let expected = openidconnect::AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(id_claims.access_token_hash(), Some(&expected));

    // Access tokens stay ES256 and still work.
    let header = |jwt: &str| {
        use base64::Engine;
        let head = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(jwt.split('.').next().unwrap()).unwrap();
        serde_json::from_slice::<serde_json::Value>(&head).unwrap()
    };
    assert_eq!(header(tokens.access_token().secret())["alg"], "ES256");
    assert_eq!(header(&id_token.to_string())["alg"], "RS256");
    let info: openidconnect::core::CoreUserInfoClaims =
        client.user_info(tokens.access_token().clone(), None).unwrap().request_async(&http).await.expect("userinfo");
    assert_eq!(info.subject().as_str(), user_id);
    // The JWKS publishes the RSA key next to the EC one.
    let jwks: serde_json::Value =
        server.http.get(server.url("/oauth2/jwks")).send().await.unwrap().json().await.unwrap();
    let kinds: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kty"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"RSA") && kinds.contains(&"EC"), "{jwks}");
    // An ID token is no access token: the RSA-signed token opens nothing.
    let (status, _) = rest(&server, &id_token.to_string(), "GET", "/v1/me", None).await;
    assert_eq!(status, 401);
    // The ID token still works as a logout hint.
    let logout = format!("/oauth2/end_session?id_token_hint={id_token}&client_id={}", app.client_id);
    let resp = server.http.get(server.url(&logout)).send().await.unwrap();
    assert!(resp.status().is_success() || resp.status().is_redirection(), "{}", resp.status());

    // Only RS256 or nothing.
    let (status, body) = rest(
        &server,
        &admin,
        "POST",
        "/v1/applications",
        Some(json!({"name": "Bad",
        "applicationType": "APPLICATION_TYPE_WEB", "redirectUris": [REDIRECT], "idTokenSigningAlg": "HS256"})),
    )
    .await;
    assert_eq!((status, mgpass_e2e::rest_reason(&body).as_str()), (400, "INVALID_ARGUMENT"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unregistered_and_lookalike_redirect_uris_get_an_error_page() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let app = web_app(&server, &admin, json!({})).await;
    let (challenge, _) = pkce();
    let lookalikes = [
        "https://evil.example.com/callback",
        "https://app.example.com/callback/",
        "https://app.example.com/callbackx",
        "https://app.example.com/callbac",
        "https://APP.example.com/callback",
        "https://app.example.com/CALLBACK",
        "http://app.example.com/callback",
        "https://app.example.com@evil.com/callback",
        "https://evil.com@app.example.com/callback",
        "https://app.example.com/callback/..;/evil",
        "https://app.example.com/callback/%2e%2e/evil",
        "https://app.example.com/callback%2F..%2Fevil",
        "https://app.example.com/callback?next=https://evil.com",
        "https://app.example.com/callback#fragment",
        "javascript:alert(document.domain)//https://app.example.com/callback",
        "data:text/html,<script>alert(1)</script>",
        "https://app.example.com.evil.com/callback",
        "https://localhost.evil/callback",
        "",
    ];
    for uri in lookalikes {
        let url = authorize_url(
            &server,
            &[
                ("response_type", "code"),
                ("client_id", &app.client_id),
                ("redirect_uri", uri),
                ("scope", "openid"),
                ("state", "x"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        );
        let resp = server.http.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{uri:?} must not be accepted");
        assert!(resp.headers().get("location").is_none(), "{uri:?}: never a redirect to an unregistered URI");
    }
    // An unknown client: an error page too.
    let url = authorize_url(&server, &[("response_type", "code"), ("client_id", "nope"), ("redirect_uri", REDIRECT)]);
    let resp = server.http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn protocol_errors_redirect_with_the_rfc_error() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let app = web_app(&server, &admin, json!({})).await;
    let (challenge, _) = pkce();
    let base = [("client_id", app.client_id.as_str()), ("redirect_uri", REDIRECT), ("state", "st")];
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![
                ("response_type", "token"),
                ("scope", "openid"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
            "unsupported_response_type",
        ),
        (vec![("response_type", "code"), ("scope", "openid")], "invalid_request"), // no PKCE
        (
            vec![
                ("response_type", "code"),
                ("scope", "openid"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
        ),
        (vec![("response_type", "code"), ("scope", "openid"), ("code_challenge", &challenge)], "invalid_request"), // plain by default
        (
            vec![
                ("response_type", "code"),
                ("scope", "openid phone"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
            "invalid_scope",
        ),
        (
            vec![
                ("response_type", "code"),
                ("scope", "openid admin:everything"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
            "invalid_scope",
        ),
        (
            vec![
                ("response_type", "code"),
                ("scope", "openid"),
                ("resource", "https://not-allowed.example.com"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
            "invalid_target",
        ),
        (
            vec![
                ("response_type", "code"),
                ("scope", "openid"),
                ("prompt", "none"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
            "login_required",
        ),
    ];
    for (extra, error) in cases {
        let params: Vec<(&str, &str)> = base.iter().copied().chain(extra.iter().copied()).collect();
        let resp = no_redirects.get(authorize_url(&server, &params)).send().await.unwrap();
        assert!(resp.status().is_redirection(), "{extra:?}: {}", resp.status());
        let to = resp.headers()["location"].to_str().unwrap().to_string();
        assert!(to.starts_with(REDIRECT), "{to}");
        let q = query(&to);
        assert_eq!(q["error"], error, "{extra:?}");
        assert_eq!(q["state"], "st");
        assert_eq!(q["iss"], server.base_url);
        assert!(!q.contains_key("code"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn code_attacks_replay_concurrency_other_client_pkce() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let app = web_app(&server, &admin, json!({"firstParty": true})).await;
    let other = web_app(&server, &admin, json!({"name": "Other", "firstParty": true})).await;
    user(&server, &admin, "yaw@example.com").await;
    let browser = Browser::new(&server.base_url);

    // Replay: the second redemption fails and revokes what the first issued.
    let (code, verifier) = code_for(&server, &browser, &app, "yaw@example.com").await;
    let (status, first) = redeem(&server, &app, &code, Some(&verifier)).await;
    assert_eq!(status, 200, "{first}");
    let (status, body) = redeem(&server, &app, &code, Some(&verifier)).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "invalid_grant"));
    let (_, r) = form(
        &server,
        "/oauth2/token",
        Some((&app.client_id, &app.secret)),
        &[("grant_type", "refresh_token"), ("refresh_token", first["refresh_token"].as_str().unwrap())],
    )
    .await;
    assert_eq!(r["error"], "invalid_grant", "the replay revoked the first redemption's grant");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let resp = server
        .http
        .get(server.url("/oauth2/userinfo"))
        .bearer_auth(first["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "and its access token");

    // 50 concurrent redemptions of one code: exactly one succeeds.
    let (code, verifier) = code_for(&server, &browser, &app, "yaw@example.com").await;
    let results = join_all((0..50).map(|_| redeem(&server, &app, &code, Some(&verifier)))).await;
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(ok, 1, "{results:?}");
    assert!(results.iter().filter(|(s, _)| *s != 200).all(|(s, b)| *s == 400 && b["error"] == "invalid_grant"));

    // A code issued to another client: refused, and not burnt for its owner.
    let (code, verifier) = code_for(&server, &browser, &app, "yaw@example.com").await;
    let (status, body) = form(
        &server,
        "/oauth2/token",
        Some((&other.client_id, &other.secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "invalid_grant"));
    let (status, _) = redeem(&server, &app, &code, Some(&verifier)).await;
    assert_eq!(status, 200);

    // PKCE: missing verifier, wrong verifier, another redirect_uri.
    for (verifier_sent, redirect) in
        [(None, REDIRECT), (Some("x".repeat(43)), REDIRECT), (Some(String::new()), "https://app.example.com/other")]
    {
        let (code, verifier) = code_for(&server, &browser, &app, "yaw@example.com").await;
        let v = match &verifier_sent {
            Some(v) if v.is_empty() => Some(verifier.clone()),
            other => other.clone(),
        };
        let mut fields =
            vec![("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", redirect)];
        if let Some(v) = &v {
            fields.push(("code_verifier", v));
        }
        let (status, body) = form(&server, "/oauth2/token", Some((&app.client_id, &app.secret)), &fields).await;
        assert_eq!((status, body["error"].as_str().unwrap()), (400, "invalid_grant"), "{verifier_sent:?} {redirect}");
        assert!(body.get("access_token").is_none());
        // The failed attempt spent the code.
        let (status, _) = redeem(&server, &app, &code, Some(&verifier)).await;
        assert_eq!(status, 400);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pkce_downgrade_expired_code_and_max_age() {
    let server = TestServer::start_with(&[("MGPASS_OAUTH__AUTHORIZATION_CODE_TTL_SECS", "10")]).await;
    let admin = server.admin_token().await;
    // A confidential app whose admin turned PKCE off: codes issued without a challenge.
    let app = web_app(&server, &admin, json!({"firstParty": true, "requirePkce": false})).await;
    user(&server, &admin, "abena@example.com").await;
    let browser = Browser::new(&server.base_url);
    let plain = authorize_url(
        &server,
        &[
            ("response_type", "code"),
            ("client_id", &app.client_id),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("state", "d"),
        ],
    );
    let page = browser.authorize(&plain, "abena@example.com", PASSWORD).await;
    let code = query(page.left_to.as_deref().unwrap())["code"].clone();
    // Downgrade: a verifier for a code that had no challenge.
    let (status, body) = redeem(&server, &app, &code, Some(&"a".repeat(43))).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "invalid_grant"));

    // Expired: a code redeemed after its lifetime.
    let page = browser.get(&plain).await;
    let code = query(page.left_to.as_deref().unwrap())["code"].clone();
    tokio::time::sleep(Duration::from_secs(11)).await;
    let (status, body) = redeem(&server, &app, &code, None).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "invalid_grant"), "expired");

    // max_age=1 after 2 s: the user must sign in again.
    let aged = format!("{plain}&max_age=1");
    let page = browser.get(&aged).await;
    assert!(page.has_form("/oauth2/signin"), "re-authentication is asked: {:?}", page.left_to);
    let page = browser
        .submit(&page, "/oauth2/signin", &[("identifier", "abena@example.com"), ("password", PASSWORD)], None)
        .await;
    let code = query(page.left_to.as_deref().expect("back with a code"))["code"].clone();
    let (status, t) = redeem(&server, &app, &code, None).await;
    assert_eq!(status, 200, "{t}");
    let id = claims(t["id_token"].as_str().unwrap());
    let auth_time = id["auth_time"].as_i64().unwrap();
    assert!(id["iat"].as_i64().unwrap() - auth_time <= 2, "auth_time is the new sign-in");
}

#[tokio::test(flavor = "multi_thread")]
async fn open_redirects_through_logout_are_refused() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let app = web_app(&server, &admin, json!({})).await;
    for uri in [
        "https://evil.example.com/",
        "https://app.example.com/signed-out/../x",
        "https://app.example.com/signed-outx",
        "javascript:alert(1)",
    ] {
        let url = format!(
            "{}?client_id={}&post_logout_redirect_uri={}",
            server.url("/oauth2/end_session"),
            app.client_id,
            url::form_urlencoded::byte_serialize(uri.as_bytes()).collect::<String>()
        );
        let resp = server.http.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{uri}");
        assert!(resp.headers().get("location").is_none(), "{uri}");
    }
    // Without a client, a post-logout URI is never followed.
    let url = format!(
        "{}?post_logout_redirect_uri=https%3A%2F%2Fapp.example.com%2Fsigned-out",
        server.url("/oauth2/end_session")
    );
    let resp = server.http.get(&url).send().await.unwrap();
    assert!(resp.headers().get("location").is_none());
}
