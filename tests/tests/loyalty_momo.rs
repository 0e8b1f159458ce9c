//! The MTN MoMo adapter (`MomoClient`) against the fake provider: the protocol and each failure
//! it must survive (timeouts, 5xx, 409 on a reused reference, 404 for a transfer never created,
//! declines, delayed success, expired tokens).

use std::time::{Duration, Instant};

use mgpass_e2e::momo::{API_KEY, API_USER, FakeMomo, Fault, Outcome};
use mgpass_server::loyalty::momo::{MomoClient, MomoSettings, PayoutProvider, SubmitOutcome, Transfer, TransferStatus};
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_millis(400);

fn client(momo: &FakeMomo, api_key: &str) -> MomoClient {
    MomoClient::new(MomoSettings {
        base_url: format!("{}/", momo.url),
        api_user: API_USER.into(),
        api_key: api_key.into(),
        subscription_key: "sub-key".into(),
        target_environment: "sandbox".into(),
        callback_url: String::new(),
        timeout: TIMEOUT,
        minor_digits: 2,
    })
    .unwrap()
}

fn transfer(mobile: &str) -> Transfer {
    Transfer {
        reference_id: Uuid::new_v4(),
        amount_minor: 1050,
        currency: "GHS".into(),
        mobile: mobile.into(),
        external_id: Uuid::now_v7().to_string(),
        note: "cashback".into(),
    }
}

#[tokio::test]
async fn a_transfer_is_accepted_then_successful_with_one_cached_token() {
    let momo = FakeMomo::start().await;
    let c = client(&momo, API_KEY);
    let t = transfer("+233241234567");
    assert_eq!(c.submit(&t).await.unwrap(), SubmitOutcome::Accepted);
    let sent = momo.transfer(&t.reference_id.to_string()).expect("the fake holds the transfer");
    assert_eq!(sent.body["amount"], "10.50");
    assert_eq!(sent.body["currency"], "GHS");
    assert_eq!(sent.body["payee"]["partyIdType"], "MSISDN");
    assert_eq!(sent.body["payee"]["partyId"], "233241234567");
    assert_eq!(sent.body["externalId"], t.external_id.as_str());
    match c.status(t.reference_id).await.unwrap() {
        TransferStatus::Successful { financial_transaction_id } => assert!(financial_transaction_id.is_some()),
        other => panic!("expected a success, got {other:?}"),
    }
    assert_eq!(c.status(t.reference_id).await.unwrap(), c.status(t.reference_id).await.unwrap());
    assert_eq!(momo.token_calls(), 1, "the token is cached across calls");
}

#[tokio::test]
async fn a_reused_reference_is_a_conflict_and_never_a_second_transfer() {
    let momo = FakeMomo::start().await;
    let c = client(&momo, API_KEY);
    let t = transfer("+233241234567");
    assert_eq!(c.submit(&t).await.unwrap(), SubmitOutcome::Accepted);
    assert_eq!(c.submit(&t).await.unwrap(), SubmitOutcome::AlreadyExists);
    assert_eq!(momo.transfer_count(), 1);
    let codes: Vec<u16> = momo.transfer_calls().into_iter().map(|(_, c)| c).collect();
    assert_eq!(codes, vec![202, 409]);
}

#[tokio::test]
async fn a_transfer_never_created_is_not_found() {
    let momo = FakeMomo::start().await;
    let c = client(&momo, API_KEY);
    assert_eq!(c.status(Uuid::new_v4()).await.unwrap(), TransferStatus::NotFound);
}

#[tokio::test]
async fn declines_carry_the_provider_reason() {
    let momo = FakeMomo::start().await;
    momo.set_outcome_for("+233200000001", Outcome::Decline("PAYEE_NOT_FOUND".into()));
    let c = client(&momo, API_KEY);
    let t = transfer("+233200000001");
    assert_eq!(c.submit(&t).await.unwrap(), SubmitOutcome::Accepted);
    assert_eq!(c.status(t.reference_id).await.unwrap(), TransferStatus::Failed { reason: "PAYEE_NOT_FOUND".into() });
}

#[tokio::test]
async fn server_errors_prove_nothing() {
    let momo = FakeMomo::start().await;
    let c = client(&momo, API_KEY);
    let t = transfer("+233241234567");
    momo.fail_transfers([Fault::Status(500), Fault::Status(503)]);
    assert!(c.submit(&t).await.is_err(), "500 is unknown");
    assert!(c.submit(&t).await.is_err(), "503 is unknown");
    assert_eq!(momo.transfer_count(), 0);
    assert_eq!(c.submit(&t).await.unwrap(), SubmitOutcome::Accepted, "the same reference then goes through");
    momo.fail_status_reads([Fault::Status(502)]);
    assert!(c.status(t.reference_id).await.is_err());
    assert!(matches!(c.status(t.reference_id).await.unwrap(), TransferStatus::Successful { .. }));
}

#[tokio::test]
async fn timeouts_are_bounded_and_a_timed_out_transfer_may_exist() {
    let momo = FakeMomo::start().await;
    let c = client(&momo, API_KEY);
    let lost = transfer("+233241234567");
    momo.fail_transfers([Fault::HangBefore]);
    let started = Instant::now();
    assert!(c.submit(&lost).await.is_err());
    assert!(started.elapsed() < TIMEOUT * 3, "the call gave up after its timeout ({:?})", started.elapsed());
    assert_eq!(c.status(lost.reference_id).await.unwrap(), TransferStatus::NotFound, "it never got through");

    let through = transfer("+233241234567");
    momo.fail_transfers([Fault::HangAfter]);
    assert!(c.submit(&through).await.is_err(), "the client saw a timeout");
    assert!(matches!(c.status(through.reference_id).await.unwrap(), TransferStatus::Successful { .. }), "yet it exists");
    assert_eq!(c.submit(&through).await.unwrap(), SubmitOutcome::AlreadyExists);

    momo.fail_status_reads([Fault::HangBefore]);
    assert!(c.status(through.reference_id).await.is_err());
}

#[tokio::test]
async fn a_delayed_success_is_pending_first() {
    let momo = FakeMomo::start().await;
    momo.set_outcome(Outcome::SucceedAfter(Duration::from_millis(600)));
    let c = client(&momo, API_KEY);
    let t = transfer("+233241234567");
    c.submit(&t).await.unwrap();
    assert_eq!(c.status(t.reference_id).await.unwrap(), TransferStatus::Pending);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(matches!(c.status(t.reference_id).await.unwrap(), TransferStatus::Successful { .. }));
}

#[tokio::test]
async fn a_rejected_token_is_renewed_once() {
    let momo = FakeMomo::start().await;
    let c = client(&momo, API_KEY);
    let t = transfer("+233241234567");
    c.submit(&t).await.unwrap();
    momo.revoke_tokens();
    assert!(matches!(c.status(t.reference_id).await.unwrap(), TransferStatus::Successful { .. }));
    assert_eq!(momo.token_calls(), 2);
}

#[tokio::test]
async fn wrong_credentials_are_an_error() {
    let momo = FakeMomo::start().await;
    let c = client(&momo, "wrong-key");
    assert!(c.submit(&transfer("+233241234567")).await.is_err());
    assert_eq!(momo.transfer_count(), 0);
}
