//! The verification flows end to end, with the codes and links read out of the messages a real
//! SMTP server (aiosmtpd) and a local SMS provider received: email and mobile verification,
//! password reset by email and by mobile, magic links, identifier changes, the administrator's
//! forced reset, tries, resend windows, testMode, and secrets never stored in clear.


use mgpass_e2e::{rest_reason, sms::SmsProvider, smtp::SmtpServer};
use serde_json::json;
use crate::verification_support::*;

const PW: &str = "a long passphrase 1";
const EMAIL_ON: (&str, &str) = ("MGPASS_VERIFICATION__EMAIL_VERIFICATION__IS_ACTIVE", "true");

#[tokio::test(flavor = "multi_thread")]
async fn register_then_verify_with_the_emailed_code_then_sign_in() {
    let smtp = SmtpServer::start();
    let server = start(&smtp, None, &[EMAIL_ON, ("MGPASS_IDENTITY__EMAIL_VERIFICATION_REQUIRED_FOR_LOGIN", "true")]).await;
    let (status, body) =
        post(&server, "/v1/auth/register", None, json!({"user": {"email": "Ama@Example.com"}, "password": PW})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["emailVerificationNeeded"], true);
    let dispatch = &body["emailVerification"];
    assert_eq!(dispatch["channel"], "VERIFICATION_CHANNEL_EMAIL", "{body}");
    assert_eq!(dispatch["verificationType"], "VERIFICATION_TYPE_CODE");
    assert_eq!(dispatch["destination"], "A***@Example.com");
    assert!(dispatch["expireTime"].is_string() && dispatch["resendTime"].is_string());
    assert!(dispatch.get("testModeSecret").is_none_or(|s| s == ""), "liveMode never returns the secret: {body}");

    let (status, body) = login(&server, "ama@example.com", PW).await;
    assert_eq!((status, rest_reason(&body).as_str()), (403, "EMAIL_VERIFICATION_NEEDED"), "{body}");

    let text = nth_email(&smtp, 1, "Ama@Example.com").await;
    let code = code_in(&text);
    let db = dump(&server);
    assert!(!dump_contains(&db, &code), "the code is stored only as a digest");

    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, body) =
        post(&server, "/v1/verifications/email:confirm", None, json!({"email": "ama@example.com", "code": wrong})).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_CODE"), "{body}");
    let (status, body) =
        post(&server, "/v1/verifications/email:confirm", None, json!({"email": "AMA@example.com", "code": code})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["email"], "Ama@Example.com");
    let (status, body) =
        post(&server, "/v1/verifications/email:confirm", None, json!({"email": "ama@example.com", "code": code})).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_CODE"), "single use: {body}");

    let (status, body) = login(&server, "ama@example.com", PW).await;
    assert_eq!(status, 200, "{body}");
    let (_, me) = get(&server, "/v1/me", body["accessToken"].as_str().unwrap()).await;
    assert_eq!(me["user"]["emailVerified"], true, "{me}");
}

#[tokio::test(flavor = "multi_thread")]
async fn email_verification_by_link() {
    let smtp = SmtpServer::start();
    let server = start(
        &smtp,
        None,
        &[
            EMAIL_ON,
            ("MGPASS_VERIFICATION__EMAIL_VERIFICATION__VERIFICATION_TYPE", "byLink"),
            ("MGPASS_VERIFICATION__LINK_BASE_URL", "https://app.example.com"),
        ],
    )
    .await;
    let (status, body) =
        post(&server, "/v1/auth/register", None, json!({"user": {"email": "kofi@example.com"}, "password": PW})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["emailVerification"]["verificationType"], "VERIFICATION_TYPE_LINK");
    let link = link_in(&nth_email(&smtp, 1, "kofi@example.com").await);
    assert!(link.starts_with("https://app.example.com/emailVerification/"), "{link}");
    let token = token_of(&link);
    assert!(token.len() >= 40, "a high-entropy token: {token}");
    assert!(!dump_contains(&dump(&server), &token), "the token is stored only as a digest");

    let (status, body) = post(&server, "/v1/verifications/email:confirm", None, json!({"token": "not-the-token"})).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_CODE"), "{body}");
    let (status, body) = post(&server, "/v1/verifications/email:confirm", None, json!({"token": token})).await;
    assert_eq!((status, body["email"].as_str()), (200, Some("kofi@example.com")), "{body}");
    let (status, body) = post(&server, "/v1/verifications/email:confirm", None, json!({"token": token})).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_CODE"), "single use: {body}");
    let (_, tokens) = login(&server, "kofi@example.com", PW).await;
    let (_, me) = get(&server, "/v1/me", tokens["accessToken"].as_str().unwrap()).await;
    assert_eq!(me["user"]["emailVerified"], true, "{me}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mobile_verification_through_the_sms_provider() {
    let smtp = SmtpServer::start();
    let sms = SmsProvider::start().await;
    let server = start(&smtp, Some(&sms), &[("MGPASS_VERIFICATION__MOBILE_VERIFICATION__IS_ACTIVE", "true")]).await;
    let (status, body) = post(
        &server,
        "/v1/auth/register",
        None,
        json!({"user": {"email": "esi@example.com", "mobile": "+233 20 123 4567"}, "password": PW}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["mobileVerification"]["channel"], "VERIFICATION_CHANNEL_SMS", "{body}");
    assert_eq!(body["mobileVerification"]["destination"], "+23320*****67");
    assert!(body.get("emailVerification").is_none(), "the email flow is off: {body}");
    let code = code_in(&nth_sms(&sms, 1, "+233201234567").await);

    let (status, body) =
        post(&server, "/v1/verifications/mobile:confirm", None, json!({"mobile": "+233201234567", "code": code})).await;
    assert_eq!((status, body["mobile"].as_str()), (200, Some("+233201234567")), "{body}");
    let (_, tokens) = login(&server, "esi@example.com", PW).await;
    let (_, me) = get(&server, "/v1/me", tokens["accessToken"].as_str().unwrap()).await;
    assert_eq!(me["user"]["mobileVerified"], true, "{me}");
    assert!(!me["user"]["emailVerified"].as_bool().unwrap_or(false), "only the mobile is verified: {me}");
}

#[tokio::test(flavor = "multi_thread")]
async fn password_reset_by_email_replaces_the_password_ends_sessions_and_unlocks() {
    let smtp = SmtpServer::start();
    let server = start(&smtp, None, &[("MGPASS_VERIFICATION__PASSWORD_RESET_BY_EMAIL__IS_ACTIVE", "true")]).await;
    create_user(&server, json!({"email": "yaw@example.com"}), PW).await;
    let (_, tokens) = login(&server, "yaw@example.com", PW).await;
    let old_access = tokens["accessToken"].as_str().unwrap().to_string();
    // Lock the account with wrong passwords.
    for _ in 0..5 {
        login(&server, "yaw@example.com", "wrong password!").await;
    }
    let (status, body) = login(&server, "yaw@example.com", PW).await;
    assert_eq!((status, rest_reason(&body).as_str()), (429, "TOO_MANY_ATTEMPTS"), "{body}");

    let (status, body) = post(&server, "/v1/verifications/passwordReset:request", None, json!({"email": "yaw@example.com"})).await;
    assert_eq!(status, 200, "{body}");
    let text = nth_email(&smtp, 1, "yaw@example.com").await;
    assert!(text.contains("reset"), "{text}");
    let code = code_in(&text);
    let (status, body) = post(
        &server,
        "/v1/verifications/passwordReset:confirm",
        None,
        json!({"email": "yaw@example.com", "code": code, "newPassword": "short"}),
    )
    .await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "WEAK_PASSWORD"), "{body}");
    let (status, body) = post(
        &server,
        "/v1/verifications/passwordReset:confirm",
        None,
        json!({"email": "yaw@example.com", "code": code, "newPassword": "a brand new passphrase"}),
    )
    .await;
    assert_eq!(status, 200, "the code survived the weak password: {body}");

    let (status, body) = login(&server, "yaw@example.com", PW).await;
    assert_eq!((status, rest_reason(&body).as_str()), (401, "INVALID_CREDENTIALS"), "the old password fails: {body}");
    let (status, body) = login(&server, "yaw@example.com", "a brand new passphrase").await;
    assert_eq!(status, 200, "the new password works and the lock is gone: {body}");
    past_session_cache().await;
    let (status, _) = get(&server, "/v1/me", &old_access).await;
    assert_eq!(status, 401, "sessions from before the reset are revoked");
    let (status, body) = post(
        &server,
        "/v1/verifications/passwordReset:confirm",
        None,
        json!({"email": "yaw@example.com", "code": code, "newPassword": "yet another passphrase"}),
    )
    .await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_CODE"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn password_reset_by_mobile() {
    let smtp = SmtpServer::start();
    let sms = SmsProvider::start().await;
    let server = start(&smtp, Some(&sms), &[("MGPASS_VERIFICATION__PASSWORD_RESET_BY_MOBILE__IS_ACTIVE", "true")]).await;
    create_user(&server, json!({"email": "efua@example.com", "mobile": "+233241112222"}), PW).await;
    let (_, tokens) = login(&server, "efua@example.com", PW).await;
    let old_access = tokens["accessToken"].as_str().unwrap().to_string();
    let (status, body) = post(&server, "/v1/verifications/passwordReset:request", None, json!({"mobile": "+233 24 111 2222"})).await;
    assert_eq!((status, body["verification"]["channel"].as_str()), (200, Some("VERIFICATION_CHANNEL_SMS")), "{body}");
    let code = code_in(&nth_sms(&sms, 1, "+233241112222").await);
    let (status, body) = post(
        &server,
        "/v1/verifications/passwordReset:confirm",
        None,
        json!({"mobile": "+233241112222", "code": code, "newPassword": "mobile reset passphrase"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(login(&server, "efua@example.com", PW).await.0, 401);
    assert_eq!(login(&server, "efua@example.com", "mobile reset passphrase").await.0, 200);
    past_session_cache().await;
    assert_eq!(get(&server, "/v1/me", &old_access).await.0, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn magic_link_signs_in() {
    let smtp = SmtpServer::start();
    let server = start(&smtp, None, &[("MGPASS_VERIFICATION__MAGIC_LINK__IS_ACTIVE", "true")]).await;
    create_user(&server, json!({"email": "abena@example.com"}), PW).await;
    let (status, body) = post(&server, "/v1/verifications/magicLink:request", None, json!({"email": "abena@example.com"})).await;
    assert_eq!((status, body["verification"]["verificationType"].as_str()), (200, Some("VERIFICATION_TYPE_LINK")), "{body}");
    let link = link_in(&nth_email(&smtp, 1, "abena@example.com").await);
    assert!(link.starts_with(&format!("{}/magicLink/", server.base_url)), "{link}");
    let token = token_of(&link);

    let (status, body) = post(&server, "/v1/verifications/magicLink:confirm", None, json!({"token": token})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tokenType"], "Bearer");
    assert!(body.get("pendingSecondFactor").is_none_or(|p| p == "SECOND_FACTOR_METHOD_UNSPECIFIED"), "{body}");
    let access = body["accessToken"].as_str().unwrap();
    let (status, sessions) = get(&server, "/v1/me/sessions", access).await;
    assert_eq!(status, 200, "{sessions}");
    assert_eq!(sessions["sessions"][0]["authenticationMethods"], json!(["email"]), "{sessions}");
    let (_, me) = get(&server, "/v1/me", access).await;
    assert_eq!(me["user"]["emailVerified"], true);
    let (status, body) = post(&server, "/v1/verifications/magicLink:confirm", None, json!({"token": token})).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_CODE"), "single use: {body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_codes_burn_the_code_after_the_maximum_tries() {
    let smtp = SmtpServer::start();
    let server = start(
        &smtp,
        None,
        &[
            EMAIL_ON,
            ("MGPASS_VERIFICATION__MAX_ATTEMPTS", "3"),
            ("MGPASS_VERIFICATION__EMAIL_VERIFICATION__RESEND_TIME_WINDOW", "1"),
        ],
    )
    .await;
    create_user(&server, json!({"email": "kwame@example.com"}), PW).await;
    let (status, body) = post(&server, "/v1/verifications/email:send", None, json!({"email": "kwame@example.com"})).await;
    assert_eq!(status, 200, "{body}");
    let code = code_in(&nth_email(&smtp, 1, "kwame@example.com").await);
    let wrong = if code == "999999" { "999998" } else { "999999" };
    let confirm = |c: String| {
        let server = &server;
        async move { post(server, "/v1/verifications/email:confirm", None, json!({"email": "kwame@example.com", "code": c})).await }
    };
    for _ in 0..2 {
        let (status, body) = confirm(wrong.into()).await;
        assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_CODE"), "{body}");
    }
    let (status, body) = confirm(wrong.into()).await;
    assert_eq!((status, rest_reason(&body).as_str()), (429, "TOO_MANY_ATTEMPTS"), "the third wrong try burns it: {body}");
    let (status, body) = confirm(code.clone()).await;
    assert_eq!((status, rest_reason(&body).as_str()), (429, "TOO_MANY_ATTEMPTS"), "even the right code: {body}");

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, _) = post(&server, "/v1/verifications/email:send", None, json!({"email": "kwame@example.com"})).await;
    assert_eq!(status, 200);
    let fresh = code_in(&nth_email(&smtp, 2, "kwame@example.com").await);
    let (status, body) = confirm(fresh).await;
    assert_eq!(status, 200, "a new code works: {body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn resend_within_the_window_is_refused_alike_for_unknown_addresses() {
    let smtp = SmtpServer::start();
    let server = start(&smtp, None, &[EMAIL_ON, ("MGPASS_VERIFICATION__EMAIL_VERIFICATION__RESEND_TIME_WINDOW", "120")]).await;
    create_user(&server, json!({"email": "akua@example.com"}), PW).await;
    for email in ["akua@example.com", "nobody@example.com"] {
        let (status, first) = post(&server, "/v1/verifications/email:send", None, json!({"email": email})).await;
        assert_eq!(status, 200, "{first}");
        assert_eq!(first["verification"]["channel"], "VERIFICATION_CHANNEL_EMAIL");
        let (status, body) = post(&server, "/v1/verifications/email:send", None, json!({"email": email})).await;
        assert_eq!((status, rest_reason(&body).as_str()), (429, "RESEND_TOO_SOON"), "{email}: {body}");
        let wait = retry_after(&body).expect("retry_after_seconds");
        assert!((100..=120).contains(&wait), "{wait}");
    }
    // Only the account got a message.
    smtp.wait_for(1, WAIT).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(smtp.messages().len(), 1);
    assert_eq!(smtp.messages()[0].rcpt_tos, ["akua@example.com"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn test_mode_returns_the_secret_in_the_answer() {
    let smtp = SmtpServer::start();
    let server = start(&smtp, None, &[EMAIL_ON, ("MGPASS_VERIFICATION__VERIFICATION_MODE", "testMode")]).await;
    assert!(server.logs().contains("testMode"), "a warning at start: {}", server.logs());
    let (status, body) =
        post(&server, "/v1/auth/register", None, json!({"user": {"email": "test@example.com"}, "password": PW})).await;
    assert_eq!(status, 200, "{body}");
    let secret = body["emailVerification"]["testModeSecret"].as_str().expect("the secret in testMode").to_string();
    assert_eq!(secret, code_in(&nth_email(&smtp, 1, "test@example.com").await), "the same code is delivered too");
    let (status, body) =
        post(&server, "/v1/verifications/email:confirm", None, json!({"email": "test@example.com", "code": secret})).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn changing_the_email_waits_for_the_new_address_to_be_confirmed() {
    let smtp = SmtpServer::start();
    let server = start(&smtp, None, &[EMAIL_ON]).await;
    create_user(&server, json!({"email": "old@example.com"}), PW).await;
    let (_, tokens) = login(&server, "old@example.com", PW).await;
    let access = tokens["accessToken"].as_str().unwrap();
    let (status, body) =
        post(&server, "/v1/me:changeEmail", Some(access), json!({"newEmail": "new@example.com", "password": "wrong one!!"})).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "WRONG_PASSWORD"), "{body}");
    let (status, body) =
        post(&server, "/v1/me:changeEmail", Some(access), json!({"newEmail": "new@example.com", "password": PW})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["user"]["email"].as_str(), body["pendingEmail"].as_str()), (Some("old@example.com"), Some("new@example.com")));
    assert_eq!(login(&server, "old@example.com", PW).await.0, 200, "the old address works until confirmed");
    let code = code_in(&nth_email(&smtp, 1, "new@example.com").await);
    let (status, body) =
        post(&server, "/v1/verifications/email:confirm", None, json!({"email": "new@example.com", "code": code})).await;
    assert_eq!((status, body["email"].as_str()), (200, Some("new@example.com")), "{body}");
    assert_eq!(login(&server, "old@example.com", PW).await.0, 401);
    let (status, tokens) = login(&server, "new@example.com", PW).await;
    assert_eq!(status, 200);
    let (_, me) = get(&server, "/v1/me", tokens["accessToken"].as_str().unwrap()).await;
    assert_eq!((me["user"]["email"].as_str(), me["user"]["emailVerified"].as_bool()), (Some("new@example.com"), Some(true)));

    create_user(&server, json!({"email": "taken@example.com"}), PW).await;
    let (status, body) = post(
        &server,
        "/v1/me:changeEmail",
        Some(tokens["accessToken"].as_str().unwrap()),
        json!({"newEmail": "Taken@example.com", "password": PW}),
    )
    .await;
    assert_eq!((status, rest_reason(&body).as_str()), (409, "EMAIL_TAKEN"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn forced_password_reset_stops_the_password_and_sends_a_reset() {
    let smtp = SmtpServer::start();
    let server = start(&smtp, None, &[("MGPASS_VERIFICATION__PASSWORD_RESET_BY_EMAIL__IS_ACTIVE", "true")]).await;
    let id = create_user(&server, json!({"email": "kojo@example.com"}), PW).await;
    let (_, tokens) = login(&server, "kojo@example.com", PW).await;
    let user_access = tokens["accessToken"].as_str().unwrap().to_string();
    let admin = server.admin_token().await;
    let (status, body) = post(&server, &format!("/v1/users/{id}:forcePasswordReset"), Some(&admin), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = login(&server, "kojo@example.com", PW).await;
    assert_eq!((status, rest_reason(&body).as_str()), (401, "INVALID_CREDENTIALS"), "{body}");
    past_session_cache().await;
    assert_eq!(get(&server, "/v1/me", &user_access).await.0, 401, "the user's sessions end");

    let code = code_in(&nth_email(&smtp, 1, "kojo@example.com").await);
    let (status, body) = post(
        &server,
        "/v1/verifications/passwordReset:confirm",
        None,
        json!({"email": "kojo@example.com", "code": code, "newPassword": "chosen after reset"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(login(&server, "kojo@example.com", "chosen after reset").await.0, 200);

    let (status, _) = post(&server, &format!("/v1/users/{id}:forcePasswordReset"), Some(&user_access), json!({})).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn inactive_flows_answer_feature_disabled() {
    let smtp = SmtpServer::start();
    let server = start(&smtp, None, &[]).await;
    for (path, body) in [
        ("/v1/verifications/email:send", json!({"email": "a@example.com"})),
        ("/v1/verifications/magicLink:request", json!({"email": "a@example.com"})),
        ("/v1/verifications/passwordReset:request", json!({"email": "a@example.com"})),
    ] {
        let (status, body) = post(&server, path, None, body).await;
        assert_eq!((status, rest_reason(&body).as_str()), (400, "FEATURE_DISABLED"), "{path}: {body}");
    }
    // Without the flow, an email change applies at once, unverified.
    create_user(&server, json!({"email": "direct@example.com"}), PW).await;
    let (_, tokens) = login(&server, "direct@example.com", PW).await;
    let (status, body) = post(
        &server,
        "/v1/me:changeEmail",
        Some(tokens["accessToken"].as_str().unwrap()),
        json!({"newEmail": "direct2@example.com", "password": PW}),
    )
    .await;
    assert_eq!((status, body["user"]["email"].as_str()), (200, Some("direct2@example.com")), "{body}");
    assert!(body.get("verification").is_none(), "{body}");
}

#[test]
fn an_active_flow_without_its_channel_is_refused_at_start() {
    let out = mgpass_e2e::run_mgpass(
        &["serve"],
        &[
            ("MGPASS_DATABASE__URL", "postgres://nobody@127.0.0.1:1/x"),
            ("MGPASS_VERIFICATION__MOBILE_VERIFICATION__IS_ACTIVE", "true"),
            ("MGPASS_VERIFICATION__EMAIL_2FA_REQUIRED_FOR_LOGIN", "true"),
            ("MGPASS_VERIFICATION__MAGIC_LINK__VERIFICATION_TYPE", "byPigeon"),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "verification.mobile_verification.is_active",
        "verification.email_2fa_required_for_login",
        "verification.magic_link.verification_type",
    ] {
        assert!(err.contains(key), "{key} missing from:\n{err}");
    }
}
