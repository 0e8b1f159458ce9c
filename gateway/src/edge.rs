//! Layers around the whole port: request ids and one tracing span plus one log line per request.

use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::response::Response;
use http::HeaderValue;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::transcode::{QUERY_TOKEN_HEADER, TRANSPORT_HEADER};

const REQUEST_ID: &str = "x-request-id";

/// Wraps `router` (outermost first): sanitize, set request id, trace, propagate request id.
pub fn layer(router: Router) -> Router {
    router
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(make_span)
                .on_request(())
                .on_response(on_response)
                // One line per request: the status in `on_response` already tells failures.
                .on_failure(()),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(tower::util::MapRequestLayer::new(sanitize))
}

/// Drops a client request id unfit for logs and headers downstream (so a UUID replaces it), and
/// any client-sent transport marker, which only the REST transcoder may set.
fn sanitize(mut req: Request) -> Request {
    let headers = req.headers_mut();
    headers.remove(TRANSPORT_HEADER);
    headers.remove(QUERY_TOKEN_HEADER);
    if headers.get(REQUEST_ID).is_some_and(|v| !valid_request_id(v)) {
        headers.remove(REQUEST_ID);
    }
    req
}

fn valid_request_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    (1..=128).contains(&b.len()) && b.iter().all(|c| c.is_ascii_alphanumeric() || b"-_.:+/=".contains(c))
}

fn make_span(req: &Request) -> Span {
    // Headers and bodies are never logged: they carry credentials and personal data.
    let request_id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id)
}

fn on_response(res: &Response, latency: Duration, _span: &Span) {
    tracing::info!(status = res.status().as_u16(), latency_ms = latency.as_secs_f64() * 1e3, "request completed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_id_validation() {
        assert!(valid_request_id(&HeaderValue::from_static("0b6f4c1e-8a0b-4f5e-9a51-3d1b2c3d4e5f")));
        assert!(valid_request_id(&HeaderValue::from_static("trace.abc:1")));
        assert!(!valid_request_id(&HeaderValue::from_static("")));
        assert!(!valid_request_id(&HeaderValue::from_static("has space")));
        assert!(!valid_request_id(&HeaderValue::from_str(&"a".repeat(129)).unwrap()));
    }
}
