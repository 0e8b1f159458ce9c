//! The per-client-IP request budget (`server.rate_limit_per_ip`), one for the whole port: the
//! auth layer charges gRPC, grpc-web and REST calls to it, and [`limit_http`] the OAuth endpoints
//! and the hosted pages, so switching transports buys a client no extra calls.

use std::{
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    sync::Arc,
    time::Duration,
};

use axum::{
    Json,
    extract::{ConnectInfo, Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// A shared per-IP limiter; the default (or a budget of 0) admits everything.
#[derive(Clone, Default)]
pub struct IpRateLimit(Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>);

impl IpRateLimit {
    /// `per_second` calls per second per client IP; 0 disables the limit. Must be called inside
    /// the runtime: a task forgets idle clients every minute so the memory stays bounded.
    pub fn per_second(per_second: u32) -> Self {
        let Some(n) = NonZeroU32::new(per_second) else {
            return Self(None);
        };
        let limiter = Arc::new(RateLimiter::keyed(Quota::per_second(n)));
        let weak = Arc::downgrade(&limiter);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let Some(limiter) = weak.upgrade() else { break };
                limiter.retain_recent();
            }
        });
        Self(Some(limiter))
    }

    /// Charges one call to `ip`; false once its budget for this second is spent. Calls whose
    /// peer address is unknown (in-process) are not limited.
    pub fn allows(&self, ip: Option<IpAddr>) -> bool {
        match (&self.0, ip) {
            (Some(limiter), Some(ip)) => limiter.check_key(&ip).is_ok(),
            _ => true,
        }
    }
}

/// axum middleware for the HTTP routes outside the gRPC router: 429 with `Retry-After` and an
/// RFC 6749-shaped JSON body once the caller's budget is spent.
pub async fn limit_http(
    State(limit): State<IpRateLimit>,
    request: Request,
    next: Next,
) -> Response {
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if limit.allows(ip) {
        return next.run(request).await;
    }
    let body = serde_json::json!({
        "error": "rate_limited",
        "error_description": "too many requests from this address; retry in a second",
    });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
