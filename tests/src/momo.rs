//! A stand-in MTN MoMo disbursement API for tests: an axum server on a random loopback port, in
//! the test process, that speaks the protocol mgpass's adapter uses (`POST /disbursement/token/`
//! with Basic auth, `POST /disbursement/v1_0/transfer` with `X-Reference-Id` → 202 or 409, `GET
//! /disbursement/v1_0/transfer/{referenceId}` → status or 404, callbacks to `X-Callback-Url`)
//! and can be scripted to misbehave: hang past the client's timeout (before or after creating the
//! transfer), answer 5xx, decline, succeed only after a delay, stay pending, send each callback
//! several times, or send any callback the test writes (out of order, forged).

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};

pub const API_USER: &str = "momo-api-user";
pub const API_KEY: &str = "momo-api-key";

/// How a transfer ends.
#[derive(Debug, Clone)]
pub enum Outcome {
    Succeed,
    /// FAILED with this reason (`PAYEE_NOT_FOUND`, `NOT_ENOUGH_FUNDS`, ...).
    Decline(String),
    /// PENDING until this long after creation, then SUCCESSFUL.
    SucceedAfter(Duration),
    /// PENDING for ever.
    Pending,
}

/// A scripted misbehaviour of the next call of an endpoint.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer this status (5xx...) without doing anything.
    Status(u16),
    /// Hang past any sane client timeout without creating the transfer.
    HangBefore,
    /// Create the transfer, then hang (the client times out although it got through).
    HangAfter,
}

#[derive(Debug, Clone)]
pub struct FakeTransfer {
    pub body: Value,
    pub created: Instant,
    pub outcome: Outcome,
    pub financial_transaction_id: String,
}

impl FakeTransfer {
    fn status(&self) -> Value {
        let (status, reason) = match &self.outcome {
            Outcome::Succeed => ("SUCCESSFUL", None),
            Outcome::Decline(r) => ("FAILED", Some(r.clone())),
            Outcome::SucceedAfter(d) if self.created.elapsed() >= *d => ("SUCCESSFUL", None),
            Outcome::SucceedAfter(_) | Outcome::Pending => ("PENDING", None),
        };
        let mut body = self.body.clone();
        body["status"] = json!(status);
        if status == "SUCCESSFUL" {
            body["financialTransactionId"] = json!(self.financial_transaction_id);
        }
        if let Some(r) = reason {
            body["reason"] = json!(r);
        }
        body
    }
}

#[derive(Default)]
pub struct Inner {
    pub transfers: HashMap<String, FakeTransfer>,
    /// Every transfer request: (reference id, status answered; 0 for a hang).
    pub transfer_calls: Vec<(String, u16)>,
    /// Every status read: (reference id, status answered).
    pub status_calls: Vec<(String, u16)>,
    pub token_calls: usize,
    tokens: HashSet<String>,
    transfer_faults: VecDeque<Fault>,
    status_faults: VecDeque<Fault>,
    default_outcome: Option<Outcome>,
    outcome_by_party: HashMap<String, Outcome>,
    callback_copies: usize,
    hang: Duration,
}

/// A running fake provider.
pub struct FakeMomo {
    /// The base URL for `loyalty.payouts.momo_base_url`.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    http: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

type Shared = Arc<Mutex<Inner>>;

impl FakeMomo {
    /// Transfers succeed at once; each callback is sent once.
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            default_outcome: Some(Outcome::Succeed),
            callback_copies: 1,
            hang: Duration::from_secs(5),
            ..Default::default()
        }));
        let app = Router::new()
            .route("/disbursement/token/", post(token))
            .route("/disbursement/v1_0/transfer", post(transfer))
            .route("/disbursement/v1_0/transfer/{reference}", get(status))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url: format!("http://{addr}"), inner, http: reqwest::Client::new(), task }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap())
    }

    /// How transfers to numbers without their own outcome end.
    pub fn set_outcome(&self, outcome: Outcome) {
        self.with(|i| i.default_outcome = Some(outcome));
    }

    /// How transfers to this MSISDN (E.164 with or without `+`) end.
    pub fn set_outcome_for(&self, mobile: &str, outcome: Outcome) {
        self.with(|i| i.outcome_by_party.insert(mobile.trim_start_matches('+').to_string(), outcome));
    }

    /// Changes the outcome of an existing transfer (a late success, a late decline).
    pub fn settle(&self, reference: &str, outcome: Outcome) {
        self.with(|i| i.transfers.get_mut(reference).expect("transfer exists").outcome = outcome);
    }

    /// The next transfer requests misbehave like this, in order.
    pub fn fail_transfers(&self, faults: impl IntoIterator<Item = Fault>) {
        self.with(|i| i.transfer_faults.extend(faults));
    }

    /// The next status reads misbehave like this, in order.
    pub fn fail_status_reads(&self, faults: impl IntoIterator<Item = Fault>) {
        self.with(|i| i.status_faults.extend(faults));
    }

    /// Sends every settled transfer's callback this many times.
    pub fn duplicate_callbacks(&self, copies: usize) {
        self.with(|i| i.callback_copies = copies);
    }

    /// Makes every issued token invalid (the next call answers 401).
    pub fn revoke_tokens(&self) {
        self.with(|i| i.tokens.clear());
    }

    pub fn transfer(&self, reference: &str) -> Option<FakeTransfer> {
        self.with(|i| i.transfers.get(reference).cloned())
    }

    pub fn transfer_count(&self) -> usize {
        self.with(|i| i.transfers.len())
    }

    pub fn transfer_calls(&self) -> Vec<(String, u16)> {
        self.with(|i| i.transfer_calls.clone())
    }

    pub fn status_calls(&self) -> Vec<(String, u16)> {
        self.with(|i| i.status_calls.clone())
    }

    pub fn token_calls(&self) -> usize {
        self.with(|i| i.token_calls)
    }

    /// Sends a callback the test wrote to `url` (as MoMo does: PUT with a JSON body).
    pub async fn send_callback(&self, url: &str, body: Value) -> u16 {
        self.http.put(url).json(&body).send().await.map(|r| r.status().as_u16()).unwrap_or(0)
    }
}

impl Drop for FakeMomo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn error(status: StatusCode, code: &str) -> Response {
    (status, Json(json!({"code": code, "message": code}))).into_response()
}

fn authorized(inner: &Inner, headers: &HeaderMap) -> bool {
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    bearer.is_some_and(|t| inner.tokens.contains(t))
}

async fn token(State(inner): State<Shared>, headers: HeaderMap) -> Response {
    use base64::Engine;
    let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{API_USER}:{API_KEY}")));
    let mut i = inner.lock().unwrap();
    i.token_calls += 1;
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    }
    let token = uuid::Uuid::new_v4().to_string();
    i.tokens.insert(token.clone());
    Json(json!({"access_token": token, "token_type": "access_token", "expires_in": 3600})).into_response()
}

async fn transfer(State(inner): State<Shared>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let reference = headers.get("x-reference-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let callback = headers.get("x-callback-url").and_then(|v| v.to_str().ok()).map(str::to_string);
    let (fault, hang) = {
        let mut i = inner.lock().unwrap();
        if !authorized(&i, &headers) {
            i.transfer_calls.push((reference, 401));
            return error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN");
        }
        (i.transfer_faults.pop_front(), i.hang)
    };
    let record = |code: u16| inner.lock().unwrap().transfer_calls.push((reference.clone(), code));
    match fault {
        Some(Fault::Status(code)) => {
            record(code);
            return error(StatusCode::from_u16(code).unwrap(), "INTERNAL_PROCESSING_ERROR");
        }
        Some(Fault::HangBefore) => {
            record(0);
            tokio::time::sleep(hang).await;
            return error(StatusCode::SERVICE_UNAVAILABLE, "TOO_LATE");
        }
        _ => {}
    }
    if uuid::Uuid::parse_str(&reference).is_err() {
        record(400);
        return error(StatusCode::BAD_REQUEST, "INVALID_REFERENCE_ID");
    }
    let created = {
        let mut i = inner.lock().unwrap();
        if i.transfers.contains_key(&reference) {
            None
        } else {
            let party = body["payee"]["partyId"].as_str().unwrap_or_default().to_string();
            let outcome =
                i.outcome_by_party.get(&party).cloned().or(i.default_outcome.clone()).unwrap_or(Outcome::Succeed);
            let t = FakeTransfer {
                body: body.clone(),
                created: Instant::now(),
                outcome,
                financial_transaction_id: format!("ft-{}", &reference[..8]),
            };
            i.transfers.insert(reference.clone(), t);
            Some(i.callback_copies)
        }
    };
    let Some(copies) = created else {
        record(409);
        return error(StatusCode::CONFLICT, "RESOURCE_ALREADY_EXIST");
    };
    if let Some(url) = callback {
        tokio::spawn(send_callbacks(inner.clone(), reference.clone(), url, copies));
    }
    if matches!(fault, Some(Fault::HangAfter)) {
        record(0);
        tokio::time::sleep(hang).await;
        return StatusCode::ACCEPTED.into_response();
    }
    record(202);
    StatusCode::ACCEPTED.into_response()
}

/// Waits until the transfer settles (checking every 50 ms, for at most a minute), then sends its
/// status `copies` times.
async fn send_callbacks(inner: Shared, reference: String, url: String, copies: usize) {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let body = inner.lock().unwrap().transfers.get(&reference).map(FakeTransfer::status);
        let Some(mut body) = body else { return };
        if body["status"] != "PENDING" {
            body["referenceId"] = json!(reference);
            for _ in 0..copies {
                let _ = http.put(&url).json(&body).send().await;
            }
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn status(State(inner): State<Shared>, headers: HeaderMap, Path(reference): Path<String>) -> Response {
    let (fault, hang) = {
        let mut i = inner.lock().unwrap();
        if !authorized(&i, &headers) {
            i.status_calls.push((reference, 401));
            return error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN");
        }
        (i.status_faults.pop_front(), i.hang)
    };
    let record = |code: u16| inner.lock().unwrap().status_calls.push((reference.clone(), code));
    match fault {
        Some(Fault::Status(code)) => {
            record(code);
            return error(StatusCode::from_u16(code).unwrap(), "INTERNAL_PROCESSING_ERROR");
        }
        Some(Fault::HangBefore | Fault::HangAfter) => {
            record(0);
            tokio::time::sleep(hang).await;
            return error(StatusCode::SERVICE_UNAVAILABLE, "TOO_LATE");
        }
        None => {}
    }
    let body = inner.lock().unwrap().transfers.get(&reference).map(FakeTransfer::status);
    match body {
        Some(body) => {
            record(200);
            Json(body).into_response()
        }
        None => {
            record(404);
            error(StatusCode::NOT_FOUND, "RESOURCE_NOT_FOUND")
        }
    }
}
