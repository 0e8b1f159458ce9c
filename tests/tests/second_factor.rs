//! Second factors end to end: the email and SMS codes a deployment requires at sign-in (the
//! session's token is refused everywhere else until the code is verified), TOTP authenticators
//! with codes computed by an independent implementation, recovery codes, replay and tries.


use mgpass_e2e::{
    bearer, grpc_reason,
    proto::identity::{GetMyProfileRequest, profile_service_client::ProfileServiceClient},
    rest_reason,
    sms::SmsProvider,
    smtp::SmtpServer,
};
use serde_json::{Value, json};
use totp_rs::{Builder, Secret};
use crate::verification_support::*;

const PW: &str = "a long passphrase 2";
const EMAIL_2FA: [(&str, &str); 2] = [
    ("MGPASS_VERIFICATION__EMAIL_2FA__IS_ACTIVE", "true"),
    ("MGPASS_VERIFICATION__EMAIL_2FA_REQUIRED_FOR_LOGIN", "true"),
];

fn access(body: &Value) -> String {
    body["accessToken"].as_str().unwrap_or_else(|| panic!("no accessToken: {body}")).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn email_second_factor_blocks_the_session_until_the_code_is_verified() {
    let smtp = SmtpServer::start();
    let server = start(&smtp, None, &EMAIL_2FA).await;
    register_user(&server, json!({"email": "ama@example.com"}), PW).await;
    let (status, body) = login(&server, "ama@example.com", PW).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["pendingSecondFactor"], "SECOND_FACTOR_METHOD_EMAIL", "the answer says a factor is owed");
    let token = access(&body);

    // Every protected call fails with 403 and the seed's errCode, over REST and gRPC.
    let (status, body) = get(&server, "/v1/me", &token).await;
    assert_eq!((status, rest_reason(&body).as_str()), (403, "EMAIL_TWO_FACTOR_NEEDED"), "{body}");
    assert_eq!(body["errCode"], "EmailTwoFactorNeeded", "{body}");
    let mut req = tonic::Request::new(GetMyProfileRequest {});
    req.metadata_mut().insert("authorization", bearer(&token));
    let err = ProfileServiceClient::new(server.channel().await).get_my_profile(req).await.unwrap_err();
    assert_eq!((err.code(), grpc_reason(&err).as_str()), (tonic::Code::PermissionDenied, "EMAIL_TWO_FACTOR_NEEDED"));

    let code = code_in(&nth_email(&smtp, 1, "ama@example.com").await);
    assert!(!dump_contains(&dump(&server), &code), "the code is stored only as a digest");
    let (status, body) = post(&server, "/v1/me/secondFactors:sendCode", Some(&token), json!({})).await;
    assert_eq!((status, rest_reason(&body).as_str()), (429, "RESEND_TOO_SOON"), "login just sent one: {body}");
    let wrong = if code == "123456" { "654321" } else { "123456" };
    let (status, body) = post(&server, "/v1/me/secondFactors:verify", Some(&token), json!({"code": wrong})).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_CODE"), "{body}");
    let (status, body) = post(&server, "/v1/me/secondFactors:verify", Some(&token), json!({"code": code})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["authenticationMethods"], json!(["pwd", "email", "mfa"]), "{body}");
    assert!(body["session"].get("pendingSecondFactor").is_none_or(|p| p == "SECOND_FACTOR_METHOD_UNSPECIFIED"));

    let (status, body) = get(&server, "/v1/me", &token).await;
    assert_eq!(status, 200, "the same token works now: {body}");
    let (status, body) = post(&server, "/v1/me/secondFactors:verify", Some(&token), json!({"code": code})).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "SECOND_FACTOR_NOT_PENDING"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mobile_second_factor_over_sms() {
    let smtp = SmtpServer::start();
    let sms = SmsProvider::start().await;
    let server = start(
        &smtp,
        Some(&sms),
        &[
            ("MGPASS_VERIFICATION__MOBILE_2FA__IS_ACTIVE", "true"),
            ("MGPASS_VERIFICATION__MOBILE_2FA_REQUIRED_FOR_LOGIN", "true"),
        ],
    )
    .await;
    register_user(&server, json!({"email": "esi@example.com", "mobile": "+233201112233"}), PW).await;
    let (_, body) = login(&server, "esi@example.com", PW).await;
    let token = access(&body);
    let (status, body) = get(&server, "/v1/me/sessions", &token).await;
    assert_eq!((status, body["errCode"].as_str()), (403, Some("MobileTwoFactorNeeded")), "{body}");
    let code = code_in(&nth_sms(&sms, 1, "+233201112233").await);
    let (status, body) = post(&server, "/v1/me/secondFactors:verify", Some(&token), json!({"code": code})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["authenticationMethods"], json!(["pwd", "sms", "mfa"]));
    assert_eq!(get(&server, "/v1/me/sessions", &token).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn too_many_wrong_second_factor_codes_end_the_session() {
    let smtp = SmtpServer::start();
    let mut env = EMAIL_2FA.to_vec();
    env.push(("MGPASS_VERIFICATION__MAX_ATTEMPTS", "3"));
    let server = start(&smtp, None, &env).await;
    register_user(&server, json!({"email": "kofi@example.com"}), PW).await;
    let (_, body) = login(&server, "kofi@example.com", PW).await;
    let token = access(&body);
    let code = code_in(&nth_email(&smtp, 1, "kofi@example.com").await);
    let wrong = if code == "111111" { "222222" } else { "111111" };
    for expected in ["INVALID_CODE", "INVALID_CODE", "TOO_MANY_ATTEMPTS"] {
        let (_, body) = post(&server, "/v1/me/secondFactors:verify", Some(&token), json!({"code": wrong})).await;
        assert_eq!(rest_reason(&body), expected, "{body}");
    }
    let (status, _) = post(&server, "/v1/me/secondFactors:verify", Some(&token), json!({"code": code})).await;
    assert_eq!(status, 401, "the session is revoked: sign in again");
}

fn totp_of(secret_base32: &str) -> totp_rs::Totp {
    let secret = Secret::try_from_base32(secret_base32).expect("base32 secret");
    Builder::new().with_secret(secret.as_bytes().to_vec()).build().unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test(flavor = "multi_thread")]
async fn totp_enrolment_sign_in_replay_and_single_use_recovery_codes() {
    let smtp = SmtpServer::start();
    let server = start(&smtp, None, &[]).await;
    create_user(&server, json!({"email": "yaa@example.com"}), PW).await;
    let (_, body) = login(&server, "yaa@example.com", PW).await;
    let token = access(&body);

    let (status, body) = post(&server, "/v1/me/secondFactors/totp:enroll", Some(&token), json!({"password": "not it!!"})).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "WRONG_PASSWORD"), "{body}");
    let (status, body) = post(&server, "/v1/me/secondFactors/totp:confirm", Some(&token), json!({"code": "123456"})).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "TOTP_ENROLLMENT_NOT_STARTED"), "{body}");
    let (status, body) = post(&server, "/v1/me/secondFactors/totp:enroll", Some(&token), json!({"password": PW})).await;
    assert_eq!(status, 200, "{body}");
    let secret = body["secret"].as_str().unwrap().to_string();
    let uri = body["otpauthUri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/mgpass") && uri.contains(&format!("secret={secret}")), "{uri}");
    let totp = totp_of(&secret);

    let code = totp.generate(now()).to_string();
    let (status, body) = post(&server, "/v1/me/secondFactors/totp:confirm", Some(&token), json!({"code": code})).await;
    assert_eq!(status, 200, "{body}");
    let recovery: Vec<String> =
        body["recoveryCodes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    assert_eq!(recovery.len(), 10);
    let (_, state) = get(&server, "/v1/me/secondFactors", &token).await;
    assert_eq!((state["totpEnrolled"].as_bool(), state["recoveryCodesRemaining"].as_i64()), (Some(true), Some(10)), "{state}");
    let db = dump(&server);
    assert!(!db.contains(&secret), "the TOTP secret is sealed at rest");
    assert!(recovery.iter().all(|c| !db.contains(c.as_str())), "recovery codes are stored hashed");

    // Signing in now owes the authenticator.
    let (_, body) = login(&server, "yaa@example.com", PW).await;
    let t2 = access(&body);
    let (status, body) = get(&server, "/v1/me", &t2).await;
    assert_eq!((status, rest_reason(&body).as_str()), (403, "TOTP_TWO_FACTOR_NEEDED"), "{body}");
    assert_eq!(body["errCode"], "TotpTwoFactorNeeded");
    let (status, body) = post(&server, "/v1/me/secondFactors:sendCode", Some(&t2), json!({})).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "SECOND_FACTOR_NOT_PENDING"), "TOTP has no code to send: {body}");
    let (status, body) = post(&server, "/v1/me/secondFactors:verify", Some(&t2), json!({"code": code})).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_CODE"), "a replayed code is refused: {body}");
    // The next time step's code (within the accepted skew) has not been used yet.
    let next = totp.generate(now() + 30).to_string();
    let (status, body) = post(&server, "/v1/me/secondFactors:verify", Some(&t2), json!({"code": next})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["authenticationMethods"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(get(&server, "/v1/me", &t2).await.0, 200);

    // A recovery code satisfies the factor once.
    let (_, body) = login(&server, "yaa@example.com", PW).await;
    let t3 = access(&body);
    let (status, body) = post(
        &server,
        "/v1/me/secondFactors:verify",
        Some(&t3),
        json!({"method": "SECOND_FACTOR_METHOD_RECOVERY_CODE", "code": recovery[0].to_uppercase()}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["recoveryCodesRemaining"], 9);
    let (_, body) = login(&server, "yaa@example.com", PW).await;
    let t4 = access(&body);
    let (status, body) = post(&server, "/v1/me/secondFactors:verify", Some(&t4), json!({"code": recovery[0]})).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_CODE"), "a used recovery code is spent: {body}");
    let (status, body) = post(&server, "/v1/me/secondFactors:verify", Some(&t4), json!({"code": recovery[1]})).await;
    assert_eq!(status, 200, "{body}");

    // Enrolling twice is refused; disabling with a recovery code removes it.
    let (status, body) = post(&server, "/v1/me/secondFactors/totp:enroll", Some(&t4), json!({"password": PW})).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "TOTP_ALREADY_ENROLLED"), "{body}");
    let (status, body) = post(&server, "/v1/me/secondFactors/totp:disable", Some(&t4), json!({"code": recovery[2]})).await;
    assert_eq!(status, 200, "{body}");
    let (_, state) = get(&server, "/v1/me/secondFactors", &t4).await;
    assert_eq!(state["totpEnrolled"].as_bool().unwrap_or(false), false, "{state}");
    let (_, body) = login(&server, "yaa@example.com", PW).await;
    assert_eq!(get(&server, "/v1/me", &access(&body)).await.0, 200, "no second factor owed any more");
}

#[tokio::test(flavor = "multi_thread")]
async fn magic_link_sign_in_still_owes_an_enrolled_authenticator() {
    let smtp = SmtpServer::start();
    let server = start(&smtp, None, &[("MGPASS_VERIFICATION__MAGIC_LINK__IS_ACTIVE", "true")]).await;
    let id = create_user(&server, json!({"email": "adjoa@example.com"}), PW).await;
    let (_, body) = login(&server, "adjoa@example.com", PW).await;
    let token = access(&body);
    let (_, body) = post(&server, "/v1/me/secondFactors/totp:enroll", Some(&token), json!({"password": PW})).await;
    let totp = totp_of(body["secret"].as_str().unwrap());
    let (status, _) =
        post(&server, "/v1/me/secondFactors/totp:confirm", Some(&token), json!({"code": totp.generate(now()).to_string()})).await;
    assert_eq!(status, 200);

    post(&server, "/v1/verifications/magicLink:request", None, json!({"email": "adjoa@example.com"})).await;
    let link = link_in(&nth_email(&smtp, 1, "adjoa@example.com").await);
    let (status, body) = post(&server, "/v1/verifications/magicLink:confirm", None, json!({"token": token_of(&link)})).await;
    assert_eq!((status, body["pendingSecondFactor"].as_str()), (200, Some("SECOND_FACTOR_METHOD_TOTP")), "{body}");
    let (status, body) = get(&server, "/v1/me", &access(&body)).await;
    assert_eq!((status, rest_reason(&body).as_str()), (403, "TOTP_TWO_FACTOR_NEEDED"));

    // An administrator removes the authenticator of a user who lost it.
    let admin = server.admin_token().await;
    let (status, body) = post(&server, &format!("/v1/users/{id}/secondFactors:reset"), Some(&admin), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = login(&server, "adjoa@example.com", PW).await;
    assert_eq!(get(&server, "/v1/me", &access(&body)).await.0, 200);
}
