//! A stand-in SMS provider for tests: an HTTP server on loopback, in the test process, that
//! records every request (headers and body) and answers `200`, or `500` to the first N calls.
//! It lives as long as the test's tokio runtime (or until dropped).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, http::StatusCode};

/// One call the provider received.
#[derive(Debug, Clone)]
pub struct SmsRequest {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub body: String,
    /// What it answered.
    pub status: u16,
    pub at: Instant,
}

impl SmsRequest {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("the SMS body is not JSON ({e}): {}", self.body))
    }
}

#[derive(Default)]
struct Inner {
    requests: Vec<SmsRequest>,
    fail_first: usize,
}

/// A running provider.
pub struct SmsProvider {
    /// The URL for `delivery.sms_url`.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    task: tokio::task::JoinHandle<()>,
}

impl SmsProvider {
    /// Answers 200 to everything.
    pub async fn start() -> Self {
        Self::start_failing(0).await
    }

    /// Answers 500 to the first `n` calls, then 200.
    pub async fn start_failing(n: usize) -> Self {
        let inner = Arc::new(Mutex::new(Inner { requests: Vec::new(), fail_first: n }));
        let app = Router::new().fallback(record).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url: format!("http://{addr}/v1/sms"), inner, task }
    }

    /// Every call so far, failed ones included.
    pub fn requests(&self) -> Vec<SmsRequest> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// The calls answered 200.
    pub fn delivered(&self) -> Vec<SmsRequest> {
        self.requests().into_iter().filter(|r| r.status == 200).collect()
    }

    /// Waits until at least `n` calls were answered 200 (panics after `timeout`).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<SmsRequest> {
        let deadline = Instant::now() + timeout;
        loop {
            let delivered = self.delivered();
            if delivered.len() >= n {
                return delivered;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} SMS delivered within {timeout:?} ({} calls)",
                delivered.len(),
                self.requests().len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmsProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut inner = inner.lock().unwrap();
    let status = if inner.requests.len() < inner.fail_first { 500 } else { 200 };
    inner.requests.push(SmsRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_ascii_lowercase(), v.to_str().unwrap_or_default().to_string()))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
        status,
        at: Instant::now(),
    });
    StatusCode::from_u16(status).unwrap()
}
