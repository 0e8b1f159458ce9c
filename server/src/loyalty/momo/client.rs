//! The MTN MoMo disbursement client: `POST /disbursement/token/` (Basic auth with the API user
//! and key; the bearer token is cached until shortly before `expires_in`), `POST
//! /disbursement/v1_0/transfer` with `X-Reference-Id` (202), `GET
//! /disbursement/v1_0/transfer/{referenceId}`. Every call has a timeout; a 401 drops the cached
//! token and the call is made once more with a fresh one.

use std::time::{Duration, Instant};

use base64::{Engine, engine::general_purpose::STANDARD};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::{PROVIDER_MTN_MOMO, PayoutProvider, ProviderError, SubmitOutcome, Transfer, TransferStatus};

/// How to reach the provider. No `Debug`: it holds the API key.
#[derive(Clone)]
pub struct MomoSettings {
    /// Base URL, e.g. `https://sandbox.momodeveloper.mtn.com` (no trailing slash needed).
    pub base_url: String,
    pub api_user: String,
    pub api_key: String,
    /// `Ocp-Apim-Subscription-Key`.
    pub subscription_key: String,
    /// `X-Target-Environment` (`sandbox`, `mtnghana`, ...).
    pub target_environment: String,
    /// `X-Callback-Url`; empty: none (status polling only).
    pub callback_url: String,
    /// Limit of each HTTP call, connection included.
    pub timeout: Duration,
    /// Digits of the currency's minor unit (2 for GHS): MoMo takes amounts in major units.
    pub minor_digits: u32,
}

/// A token is refreshed this long before the provider says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(30);

pub struct MomoClient {
    http: reqwest::Client,
    settings: MomoSettings,
    token: Mutex<Option<(String, Instant)>>,
}

impl MomoClient {
    pub fn new(mut settings: MomoSettings) -> Result<Self, String> {
        settings.base_url = settings.base_url.trim_end_matches('/').to_string();
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { http, settings, token: Mutex::new(None) })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.settings.base_url, path)
    }

    /// The cached bearer token, or a new one.
    async fn token(&self) -> Result<String, ProviderError> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref() {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let basic = STANDARD.encode(format!("{}:{}", self.settings.api_user, self.settings.api_key));
        let resp = self
            .http
            .post(self.url("/disbursement/token/"))
            .header("Authorization", format!("Basic {basic}"))
            .header("Ocp-Apim-Subscription-Key", &self.settings.subscription_key)
            .send()
            .await
            .map_err(describe)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(ProviderError(format!("token request answered {status}")));
        }
        let body: Value = resp.json().await.map_err(describe)?;
        let token = body["access_token"]
            .as_str()
            .ok_or_else(|| ProviderError("token answer without access_token".into()))?
            .to_string();
        let ttl = Duration::from_secs(body["expires_in"].as_u64().unwrap_or(3600));
        let until = Instant::now() + ttl.saturating_sub(TOKEN_MARGIN);
        *cached = Some((token.clone(), until));
        Ok(token)
    }

    async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    /// Sends the request built by `build` with a bearer token; on 401, once more with a new token.
    async fn send_authed(
        &self,
        build: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ProviderError> {
        let token = self.token().await?;
        let resp = build(&token).send().await.map_err(describe)?;
        if resp.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        self.forget_token().await;
        let token = self.token().await?;
        build(&token).send().await.map_err(describe)
    }

    async fn submit_transfer(&self, transfer: &Transfer) -> Result<SubmitOutcome, ProviderError> {
        let body = json!({
            "amount": major_units(transfer.amount_minor, self.settings.minor_digits),
            "currency": transfer.currency,
            "externalId": transfer.external_id,
            "payee": {"partyIdType": "MSISDN", "partyId": transfer.mobile.trim_start_matches('+')},
            "payerMessage": transfer.note,
            "payeeNote": transfer.note,
        });
        let resp = self
            .send_authed(|token| {
                let mut req = self
                    .http
                    .post(self.url("/disbursement/v1_0/transfer"))
                    .bearer_auth(token)
                    .header("X-Reference-Id", transfer.reference_id.to_string())
                    .header("X-Target-Environment", &self.settings.target_environment)
                    .header("Ocp-Apim-Subscription-Key", &self.settings.subscription_key)
                    .json(&body);
                if !self.settings.callback_url.is_empty() {
                    req = req.header("X-Callback-Url", &self.settings.callback_url);
                }
                req
            })
            .await?;
        let status = resp.status();
        match status.as_u16() {
            200..=299 => Ok(SubmitOutcome::Accepted),
            409 => Ok(SubmitOutcome::AlreadyExists),
            code @ 400..=499 => {
                let detail = resp.text().await.unwrap_or_default().chars().take(200).collect();
                Ok(SubmitOutcome::Refused { status: code, detail })
            }
            _ => Err(ProviderError(format!("transfer request answered {status}"))),
        }
    }

    async fn read_status(&self, reference_id: Uuid) -> Result<TransferStatus, ProviderError> {
        let path = format!("/disbursement/v1_0/transfer/{reference_id}");
        let resp = self
            .send_authed(|token| {
                self.http
                    .get(self.url(&path))
                    .bearer_auth(token)
                    .header("X-Target-Environment", &self.settings.target_environment)
                    .header("Ocp-Apim-Subscription-Key", &self.settings.subscription_key)
            })
            .await?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(TransferStatus::NotFound);
        }
        if !status.is_success() {
            return Err(ProviderError(format!("status read answered {status}")));
        }
        let body: Value = resp.json().await.map_err(describe)?;
        parse_status(&body)
    }
}

/// The transfer status of a MoMo status body (also the shape of its callbacks).
pub fn parse_status(body: &Value) -> Result<TransferStatus, ProviderError> {
    match body["status"].as_str().unwrap_or_default() {
        "SUCCESSFUL" => Ok(TransferStatus::Successful {
            financial_transaction_id: body["financialTransactionId"].as_str().map(str::to_string),
        }),
        "FAILED" | "REJECTED" | "TIMEOUT" => Ok(TransferStatus::Failed { reason: failure_reason(&body["reason"]) }),
        "PENDING" | "CREATED" | "ONGOING" => Ok(TransferStatus::Pending),
        other => Err(ProviderError(format!("unknown transfer status {other:?}"))),
    }
}

/// MoMo sends the reason as a string or as `{code, message}`.
fn failure_reason(reason: &Value) -> String {
    let text = match reason {
        Value::String(s) => s.clone(),
        Value::Object(o) => o.get("code").and_then(Value::as_str).unwrap_or_default().to_string(),
        _ => String::new(),
    };
    if text.is_empty() { "UNSPECIFIED".into() } else { text }
}

/// `1050` minor units with 2 digits is `"10.50"`.
fn major_units(amount_minor: i64, digits: u32) -> String {
    if digits == 0 {
        return amount_minor.to_string();
    }
    let scale = 10i64.pow(digits);
    format!("{}.{:0width$}", amount_minor / scale, amount_minor % scale, width = digits as usize)
}

fn describe(err: reqwest::Error) -> ProviderError {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    ProviderError(format!("provider call {kind}: {err}"))
}

impl PayoutProvider for MomoClient {
    fn name(&self) -> &'static str {
        PROVIDER_MTN_MOMO
    }

    fn submit(&self, transfer: &Transfer) -> BoxFuture<'_, Result<SubmitOutcome, ProviderError>> {
        let transfer = transfer.clone();
        Box::pin(async move { self.submit_transfer(&transfer).await })
    }

    fn status(&self, reference_id: Uuid) -> BoxFuture<'_, Result<TransferStatus, ProviderError>> {
        Box::pin(self.read_status(reference_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_major_units() {
        assert_eq!(major_units(1050, 2), "10.50");
        assert_eq!(major_units(5, 2), "0.05");
        assert_eq!(major_units(700, 0), "700");
        assert_eq!(major_units(1234, 3), "1.234");
    }

    #[test]
    fn statuses_and_reasons_parse() {
        assert_eq!(parse_status(&json!({"status": "PENDING"})).unwrap(), TransferStatus::Pending);
        assert_eq!(
            parse_status(&json!({"status": "SUCCESSFUL", "financialTransactionId": "42"})).unwrap(),
            TransferStatus::Successful { financial_transaction_id: Some("42".into()) }
        );
        assert_eq!(
            parse_status(&json!({"status": "FAILED", "reason": "PAYEE_NOT_FOUND"})).unwrap(),
            TransferStatus::Failed { reason: "PAYEE_NOT_FOUND".into() }
        );
        assert_eq!(
            parse_status(&json!({"status": "FAILED", "reason": {"code": "NOT_ENOUGH_FUNDS", "message": "x"}})).unwrap(),
            TransferStatus::Failed { reason: "NOT_ENOUGH_FUNDS".into() }
        );
        assert!(parse_status(&json!({"status": "WHATEVER"})).is_err());
        assert!(parse_status(&json!({})).is_err());
    }
}
