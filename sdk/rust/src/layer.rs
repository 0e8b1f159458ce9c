//! [`VerifyLayer`]: the token verifier as a tower layer, for axum routers and tonic servers alike.
//! A request with a valid `Authorization: Bearer` token reaches the inner service with its
//! [`Claims`] in the request extensions; any other is answered here: for gRPC requests
//! (`content-type: application/grpc*`) with `UNAUTHENTICATED` / `PERMISSION_DENIED` (insufficient
//! scope) in the grpc-status trailers-only form, for others with HTTP 401 / 403 and a
//! `WWW-Authenticate: Bearer` challenge (RFC 6750).

use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response, StatusCode, header};

use crate::verifier::{Claims, TokenErrorReason, TokenVerifier};

#[derive(Clone)]
pub struct VerifyLayer {
    verifier: TokenVerifier,
}

impl VerifyLayer {
    pub fn new(verifier: TokenVerifier) -> Self {
        Self { verifier }
    }
}

impl<S> tower::Layer<S> for VerifyLayer {
    type Service = VerifyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyService { inner, verifier: self.verifier.clone() }
    }
}

#[derive(Clone)]
pub struct VerifyService<S> {
    inner: S,
    verifier: TokenVerifier,
}

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for VerifyService<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The ready inner service handles this request; its clone waits for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        Box::pin(async move {
            let grpc = request
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/grpc"));
            let token = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
            let verified = match token.and_then(|t| t.strip_prefix("Bearer ")) {
                Some(token) => verifier.verify(token).await.map_err(|e| (e.reason, e.message)),
                None => Err((TokenErrorReason::TokenMissing, "an `Authorization: Bearer` token is required".into())),
            };
            match verified {
                Ok(claims) => {
                    request.extensions_mut().insert::<Claims>(claims);
                    inner.call(request).await
                }
                Err((reason, message)) => Ok(refusal(grpc, reason, &message)),
            }
        })
    }
}

fn refusal<B: Default>(grpc: bool, reason: TokenErrorReason, message: &str) -> Response<B> {
    let forbidden = reason == TokenErrorReason::InsufficientScope;
    let mut response = Response::new(B::default());
    if !grpc {
        *response.status_mut() = if forbidden { StatusCode::FORBIDDEN } else { StatusCode::UNAUTHORIZED };
    }
    let headers = response.headers_mut();
    if grpc {
        let code = if forbidden { tonic::Code::PermissionDenied } else { tonic::Code::Unauthenticated };
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert("grpc-status", HeaderValue::from(code as i32));
        // grpc-message is percent-encoded; keep to a plain-ASCII summary.
        let summary: String = message.chars().filter(|c| c.is_ascii_alphanumeric() || *c == ' ').collect();
        if let Ok(value) = HeaderValue::from_str(&summary.replace(' ', "%20")) {
            headers.insert("grpc-message", value);
        }
    } else {
        let challenge = match reason {
            TokenErrorReason::TokenMissing => "Bearer".to_string(),
            TokenErrorReason::InsufficientScope => "Bearer error=\"insufficient_scope\"".to_string(),
            _ => "Bearer error=\"invalid_token\"".to_string(),
        };
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
    }
    response
}
