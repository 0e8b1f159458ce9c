//! The mgpass HTTP edge: one port for native gRPC, gRPC-Web, REST/JSON and the server's pages.
//!
//! ```text
//! request ─ request id ─ trace span ─┬─ content-type application/grpc* ─ GrpcWebLayer ─ grpc
//!                                    └─ otherwise ─ pages ─(no route)─ REST transcoder ─ grpc
//! ```
//! REST calls go through the same `grpc` service as native gRPC, in process, so the server's
//! auth and rate-limit layers see every call whatever its transport.

mod edge;
mod transcode;

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use tower::{Layer, ServiceExt};

pub use transcode::{DOMAIN, QUERY_TOKEN_HEADER, TRANSPORT_HEADER, http_status_for};

/// The server's gRPC side (tonic `Routes` with its layers), type-erased.
pub type GrpcService =
    tower::util::BoxCloneSyncService<http::Request<axum::body::Body>, http::Response<tonic::body::Body>, std::convert::Infallible>;

#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// Largest REST request body accepted; larger bodies get 400 `BODY_TOO_LARGE`.
    pub max_body_bytes: usize,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions { max_body_bytes: 1024 * 1024 }
    }
}

/// One router for the whole port: requests whose content-type starts with `application/grpc`
/// (native gRPC and grpc-web, through tonic_web::GrpcWebLayer applied to the gRPC service only)
/// go to `grpc`; everything else goes to `pages` (server-provided HTML / health routes), and
/// unmatched requests fall back to the REST transcoder.
///
/// # Panics
/// When the `google.api.http` bindings in `pool` are invalid or ambiguous (two bindings with the
/// same HTTP method and path template): a contract bug that must stop the server at start.
pub fn router(grpc: GrpcService, pool: prost_reflect::DescriptorPool, pages: axum::Router, opts: GatewayOptions) -> axum::Router {
    let transcoder = Arc::new(transcode::Transcoder::new(&pool, grpc.clone(), opts.max_body_bytes));
    // `fallback` replaces any fallback `pages` had: REST owns every path the pages do not.
    let http_side = pages.fallback(move |req: Request| async move { transcoder.handle(req).await });

    // GrpcWebLayer hands its inner service a tonic body; our service takes an axum body.
    let grpc_side = tonic_web::GrpcWebLayer::new().layer(grpc.map_request(|req: http::Request<tonic::body::Body>| req.map(Body::new)));

    // Dispatch by content-type rather than by merging routers: tonic's `Routes` has its own
    // catch-all fallback, and GrpcWebLayer would answer 400 to plain HTTP/1.1 pages and REST.
    let dispatch = tower::service_fn(move |req: Request| {
        let grpc_side = grpc_side.clone();
        let http_side = http_side.clone();
        async move {
            if is_grpc(&req) {
                let res = grpc_side.oneshot(req).await?;
                Ok::<_, Infallible>(res.map(Body::new))
            } else {
                http_side.oneshot(req).await
            }
        }
    });
    edge::layer(Router::new().fallback_service(dispatch))
}

fn is_grpc(req: &Request) -> bool {
    req.headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/grpc"))
}
