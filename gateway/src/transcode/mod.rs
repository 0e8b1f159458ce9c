//! REST/JSON transcoding driven by the `google.api.http` annotations of the descriptor pool.
//!
//! A request is matched against the route table ([`routes`], [`template`]), turned into the
//! request message ([`request`]), sent through the gRPC service in process ([`call`]), and the
//! reply rendered as canonical proto3 JSON. Errors raised here use [`error`]'s JSON shape.

mod call;
mod error;
mod request;
mod routes;
mod template;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::Request;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use prost_reflect::{DescriptorPool, MessageDescriptor};

pub use call::TRANSPORT_HEADER;
pub use error::{DOMAIN, http_status_for};
use error::RestError;
use routes::{Lookup, RouteTable};

use crate::GrpcService;

pub struct Transcoder {
    routes: RouteTable,
    grpc: GrpcService,
    /// `google.rpc.Status`, to render error details; absent only from a pool without it.
    status_desc: Option<MessageDescriptor>,
    max_body_bytes: usize,
}

impl Transcoder {
    /// # Panics
    /// On invalid or duplicate bindings in `pool` (see [`RouteTable::from_pool`]).
    pub fn new(pool: &DescriptorPool, grpc: GrpcService, max_body_bytes: usize) -> Transcoder {
        let routes = RouteTable::from_pool(pool);
        tracing::debug!(routes = routes.len(), "REST routes loaded");
        let status_desc = pool.get_message_by_name("google.rpc.Status");
        Transcoder { routes, grpc, status_desc, max_body_bytes }
    }

    pub async fn handle(&self, req: Request<Body>) -> Response {
        self.try_handle(req).await.unwrap_or_else(IntoResponse::into_response)
    }

    async fn try_handle(&self, req: Request<Body>) -> Result<Response, RestError> {
        let (parts, body) = req.into_parts();
        let (route, bindings) = match self.routes.lookup(&parts.method, parts.uri.path()) {
            Lookup::Found(route, bindings) => (route, bindings),
            Lookup::MethodNotAllowed(allowed) => return Err(RestError::method_not_allowed(&allowed)),
            Lookup::NotFound => return Err(RestError::method_not_found(&parts.method, parts.uri.path())),
        };
        if route.method.is_client_streaming() || route.method.is_server_streaming() {
            return Err(RestError::streaming_not_supported(route.method.full_name()));
        }
        let body = match self.read_body(body).await {
            Ok(body) => body,
            Err(err) => {
                // The rest of an oversize body is still on the wire: tell the client this
                // connection is done, so it does not send its next request after those bytes.
                let mut response = err.into_response();
                response.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
                return Ok(response);
            }
        };
        let (query, query_token) = split_access_token(parts.uri.query());
        let mut parts = parts;
        if let Some(token) = query_token.and_then(|t| http::HeaderValue::from_str(&t).ok()) {
            parts.headers.insert(QUERY_TOKEN_HEADER, token);
        }
        let msg = request::build(route, bindings, query.as_deref(), &body)?;
        call::invoke(&self.grpc, route, &msg, parts, self.status_desc.as_ref()).await
    }

    /// Reads the body, failing as soon as it exceeds the limit rather than after buffering it.
    async fn read_body(&self, body: Body) -> Result<bytes::Bytes, RestError> {
        match Limited::new(body, self.max_body_bytes).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(RestError::body_too_large(self.max_body_bytes)),
            Err(e) => Err(RestError::invalid_argument(format!("could not read the request body: {e}"))),
        }
    }
}

/// Carries an `access_token` query parameter to the server's auth layer, which accepts it only
/// when the deployment allows tokens in URLs. The edge strips client-sent copies.
pub const QUERY_TOKEN_HEADER: &str = "x-mgpass-query-token";

/// Takes the `access_token` parameter out of the query (it names no request field) and returns
/// the remaining query and the token.
fn split_access_token(query: Option<&str>) -> (Option<String>, Option<String>) {
    let Some(query) = query else { return (None, None) };
    if !query.split('&').any(|pair| pair.split('=').next() == Some("access_token")) {
        return (Some(query.to_string()), None);
    }
    let mut token = None;
    let mut rest = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key == "access_token" {
            token = Some(value.into_owned());
        } else {
            rest.append_pair(&key, &value);
        }
    }
    (Some(rest.finish()), token)
}

#[cfg(test)]
mod tests;
