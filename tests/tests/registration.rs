//! Registration under the deployment's identity rules: public or restricted, identifier settings,
//! name type, custom properties, password policy, verification requirements and throttling.

use mgpass_e2e::{TestServer, rest_reason};
use serde_json::{Value, json};

async fn register(server: &TestServer, body: Value) -> (u16, Value) {
    let resp = server.http.post(server.url("/v1/auth/register")).json(&body).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn login_status(server: &TestServer, identifier: &str, password: &str) -> (u16, Value) {
    let resp = server
        .http
        .post(server.url("/v1/auth/login"))
        .json(&json!({"identifier": identifier, "password": password}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn user_count(server: &TestServer) -> usize {
    let admin = server.admin_token().await;
    let resp = server.http.get(server.url("/v1/users?pageSize=1000")).bearer_auth(admin).send().await.unwrap();
    let body: Value = resp.json().await.unwrap();
    body["users"].as_array().map(Vec::len).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn public_registration_gives_the_default_role_and_signs_in() {
    let server = TestServer::start().await;
    let (status, body) = register(
        &server,
        json!({"user": {"email": "Adwoa@Example.com", "givenName": "Adwoa", "roles": ["superAdmin"]},
               "password": "adwoa's long password"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["roles"], json!(["user"]), "roles asked for at registration are ignored");
    assert!(body.get("emailVerificationNeeded").is_none(), "not required by default: {body}");
    let (status, _) = login_status(&server, "adwoa@example.com", "adwoa's long password").await;
    assert_eq!(status, 200);

    let before = user_count(&server).await;
    for (body, reason) in [
        (json!({"user": {"email": "bad1@example.com"}, "password": "password123"}), "WEAK_PASSWORD"),
        (json!({"user": {"email": "bad2@example.com"}, "password": ""}), "WEAK_PASSWORD"),
        (json!({"user": {"email": "bad3@example.com", "givenName": "x".repeat(201)}, "password": "a long passphrase"}), "INVALID_ARGUMENT"),
        (json!({"user": {"email": "bad4@example.com", "fullName": "Full Name"}, "password": "a long passphrase"}), "INVALID_ARGUMENT"),
        (json!({"user": {"mobile": "+233201234567"}, "password": "a long passphrase"}), "IDENTIFIER_REQUIRED"),
        (json!({"user": {"email": "bad5@example.com", "mobile": "12"}, "password": "a long passphrase"}), "INVALID_MOBILE"),
        (json!({"user": {"email": "bad6@example.com", "properties": {"undeclared": 1}}, "password": "a long passphrase"}), "INVALID_PROPERTY"),
        (json!({"user": {"email": "ADWOA@example.com"}, "password": "a long passphrase"}), "EMAIL_TAKEN"),
    ] {
        let (status, answer) = register(&server, body.clone()).await;
        assert!(status == 400 || status == 409, "{body}: {status}");
        assert_eq!(rest_reason(&answer), reason, "{body}: {answer}");
    }
    assert_eq!(user_count(&server).await, before, "nothing was written");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_registrations_of_one_email_make_one_account() {
    let server = TestServer::start().await;
    let attempts = (0..12).map(|_| {
        register(&server, json!({"user": {"email": "twin@example.com"}, "password": "a long passphrase"}))
    });
    let results = futures::future::join_all(attempts).await;
    let created = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(created, 1, "{results:?}");
    // The others are refused as taken, or throttled (5 registrations per identifier per hour).
    assert!(
        results.iter().all(|(s, b)| *s == 200
            || (*s == 409 && rest_reason(b) == "EMAIL_TAKEN")
            || (*s == 429 && rest_reason(b) == "RATE_LIMITED")),
        "{results:?}"
    );
    assert!(results.iter().any(|(s, _)| *s == 409));
    let admin = server.admin_token().await;
    let resp = server.http.get(server.url("/v1/users?query=twin")).bearer_auth(admin).send().await.unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["users"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn restricted_registration_is_for_administrators() {
    let server = TestServer::start_with(&[("MGPASS_IDENTITY__REGISTRATION_PUBLIC", "false")]).await;
    let (status, body) = register(&server, json!({"user": {"email": "x@example.com"}, "password": "a long passphrase"})).await;
    assert_eq!((status, rest_reason(&body).as_str()), (403, "REGISTRATION_RESTRICTED"));
    let policy: Value = server.http.get(server.url("/v1/auth/registrationPolicy")).send().await.unwrap().json().await.unwrap();
    assert!(policy.get("registrationOpen").is_none(), "closed: {policy}");
    let admin = server.admin_token().await;
    let resp = server
        .http
        .post(server.url("/v1/auth/register"))
        .bearer_auth(admin)
        .json(&json!({"user": {"email": "x@example.com"}, "password": "a long passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn registrations_are_throttled_per_ip() {
    let server = TestServer::start_with(&[("MGPASS_IDENTITY__REGISTRATIONS_PER_IP_PER_HOUR", "3")]).await;
    let mut statuses = Vec::new();
    for i in 0..5 {
        let (status, body) =
            register(&server, json!({"user": {"email": format!("r{i}@example.com")}, "password": "a long passphrase"})).await;
        statuses.push((status, rest_reason(&body)));
    }
    assert_eq!(statuses.iter().filter(|(s, _)| *s == 200).count(), 3, "{statuses:?}");
    assert!(statuses[3..].iter().all(|(s, r)| *s == 429 && r == "RATE_LIMITED"), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mobile_first_deployments_sign_in_by_mobile_only() {
    let server = TestServer::start_with(&[
        ("MGPASS_IDENTITY__PRIMARY_IDENTIFIER", "mobile"),
        ("MGPASS_IDENTITY__SECONDARY_IDENTIFIER", "none"),
        ("MGPASS_IDENTITY__USER_NAME_TYPE", "asFullname"),
    ])
    .await;
    // The default super admin becomes +10000000001, as the Mindbricks guide specifies.
    let (status, _) = login_status(&server, "+10000000001", &server.admin_password).await;
    assert_eq!(status, 200);
    let (status, body) =
        register(&server, json!({"user": {"mobile": "+233 24 000 1111", "fullName": "Kojo Antwi"}, "password": "a long passphrase"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["mobile"], "+233240001111");
    let (status, body) = register(
        &server,
        json!({"user": {"mobile": "+233240001112", "email": "k@example.com"}, "password": "a long passphrase"}),
    )
    .await;
    assert_eq!(status, 400, "no email in a mobile-only deployment: {body}");
    let (status, body) =
        register(&server, json!({"user": {"mobile": "+233240001113", "givenName": "Kojo"}, "password": "a long passphrase"})).await;
    assert_eq!(status, 400, "names are full names here: {body}");
    let (status, _) = login_status(&server, "+233 24 000 1111", "a long passphrase").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_properties_are_typed_defaulted_required_and_unique() {
    let config = mgpass_e2e::ConfigFile::new(
        r#"
[[identity.properties]]
name = "plan"
type = "enum"
values = ["free", "plus"]
required = true

[[identity.properties]]
name = "newsletter"
type = "boolean"
default = false

[[identity.properties]]
name = "memberNumber"
type = "string"
unique = true
"#,
    );
    let server = TestServer::start_with(&[("MGPASS_CONFIG", config.path())]).await;
    let policy: Value = server.http.get(server.url("/v1/auth/registrationPolicy")).send().await.unwrap().json().await.unwrap();
    assert_eq!(policy["userProperties"].as_array().unwrap().len(), 3, "{policy}");

    let (status, body) = register(
        &server,
        json!({"user": {"email": "p1@example.com", "properties": {"plan": "plus", "memberNumber": "M-1"}}, "password": "a long passphrase"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["properties"]["newsletter"], false, "the default is applied");

    let before = user_count(&server).await;
    for props in [
        json!({}),
        json!({"plan": "gold"}),
        json!({"plan": "free", "newsletter": "yes"}),
        json!({"plan": "free", "memberNumber": "M-1"}),
    ] {
        let (status, body) =
            register(&server, json!({"user": {"email": "p2@example.com", "properties": props}, "password": "a long passphrase"})).await;
        assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_PROPERTY"), "{props}: {body}");
    }
    assert_eq!(user_count(&server).await, before, "nothing was written");
}

#[tokio::test(flavor = "multi_thread")]
async fn email_verification_can_be_required_for_sign_in() {
    let server = TestServer::start_with(&[("MGPASS_IDENTITY__EMAIL_VERIFICATION_REQUIRED_FOR_LOGIN", "true")]).await;
    let (status, body) = register(&server, json!({"user": {"email": "v@example.com"}, "password": "a long passphrase"})).await;
    assert_eq!((status, body["emailVerificationNeeded"].as_bool()), (200, Some(true)), "{body}");
    let (status, body) = login_status(&server, "v@example.com", "a long passphrase").await;
    assert_eq!((status, rest_reason(&body).as_str()), (403, "EMAIL_VERIFICATION_NEEDED"), "{body}");
    assert_eq!(body["errCode"], "EmailVerificationNeeded", "the seed's errCode: {body}");
    let (status, _) = login_status(&server, &server.admin_email, &server.admin_password).await;
    assert_eq!(status, 200, "the bootstrapped admin is verified");
}

#[tokio::test(flavor = "multi_thread")]
async fn national_mobile_numbers_take_the_configured_country_code() {
    let server = TestServer::start_with(&[("MGPASS_IDENTITY__DEFAULT_COUNTRY_CODE", "233")]).await;
    let (status, body) =
        register(&server, json!({"user": {"email": "gh@example.com", "mobile": "020 123 4567"}, "password": "a long passphrase"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["mobile"], "+233201234567");
}
