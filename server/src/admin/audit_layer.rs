//! The one place the audit log is written: a tower layer right inside the auth layer, so every
//! transport (gRPC, grpc-web, REST) passes it with the caller's [`Principal`] already known.
//!
//! Every mgpass method that is not a read (a read is bound to HTTP GET, or named
//! Get/List/Lookup/Check/Search/Batch...) is audited, public ones included: sign-in successes and
//! failures, registrations, verifications, and every management change. The layer buffers the
//! unary request and response (management messages are small; the gateway bounds bodies), decodes
//! them with the descriptors, redacts secrets ([`super::audit_redact`]) and appends one entry with
//! the outcome read from the gRPC status. Calls refused by the auth layer itself (no or bad
//! credential, missing permission) never reach the services and are not entries: they change
//! nothing, and an unauthenticated flood must not grow the log.

use std::{
    collections::HashMap,
    convert::Infallible,
    net::SocketAddr,
    sync::Arc,
    task::{Context, Poll},
};

use axum::extract::ConnectInfo;
use bytes::Bytes;
use chrono::Utc;
use futures::future::BoxFuture;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, ReflectMessage, Value};
use tonic_types::StatusExt;
use tower::{Layer, Service};
use uuid::Uuid;

use crate::{
    admin::{
        audit_before::{BeforeRead, get_request, pairing},
        audit_redact::redacted_json,
        audit_service::AuditLog,
        audit_store::AuditRow,
    },
    auth::{CredentialKind, Principal},
};

/// Name prefixes of methods that only read.
const READ_PREFIXES: [&str; 7] = ["Get", "List", "Lookup", "Check", "Search", "BatchGet", "Introspect"];

/// What the layer knows of an audited method.
struct Audited {
    /// The full RPC name, `mgpass.identity.v1.UserService/UpdateUser`.
    action: String,
    input: MessageDescriptor,
    output: MessageDescriptor,
    /// How to read the target before a change ([`super::audit_before`]).
    before: Option<BeforeRead>,
}

/// Partner event ingestion: thousands of calls a second whose record is the ledger itself (every
/// award is a transaction naming its event), so the audit log would only duplicate it.
const HIGH_VOLUME_UNAUDITED: [&str; 2] =
    ["mgpass.loyalty.v1.EventService.IngestEvent", "mgpass.loyalty.v1.EventService.BatchIngestEvents"];

/// Whether a method changes something (or is security-relevant), hence is audited.
pub fn is_audited(method: &prost_reflect::MethodDescriptor) -> bool {
    if method.is_client_streaming() || method.is_server_streaming() {
        return false;
    }
    if HIGH_VOLUME_UNAUDITED.contains(&method.full_name()) {
        return false;
    }
    let name = method.name();
    if READ_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return false;
    }
    let pool = method.parent_pool();
    if let Some(http) = pool.get_extension_by_name("google.api.http") {
        let options = method.options();
        if options.has_extension(&http) {
            if let Value::Message(rule) = options.get_extension(&http).as_ref() {
                if rule.get_field_by_name("get").is_some_and(|v| v.as_str().is_some_and(|s| !s.is_empty())) {
                    return false;
                }
            }
        }
    }
    true
}

struct AuditState {
    methods: HashMap<String, Audited>,
    log: AuditLog,
}

#[derive(Clone)]
pub struct AuditLayer {
    state: Arc<AuditState>,
}

impl AuditLayer {
    pub fn new(pool: &DescriptorPool, log: AuditLog) -> Self {
        let mut methods = HashMap::new();
        for service in pool.services().filter(|s| s.full_name().starts_with("mgpass.")) {
            for method in service.methods().filter(is_audited) {
                methods.insert(
                    format!("/{}/{}", service.full_name(), method.name()),
                    Audited {
                        action: format!("{}/{}", service.full_name(), method.name()),
                        input: method.input(),
                        output: method.output(),
                        before: pairing(&method),
                    },
                );
            }
        }
        Self { state: Arc::new(AuditState { methods, log }) }
    }
}

impl<S> Layer<S> for AuditLayer {
    type Service = AuditService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AuditService { inner, state: self.state.clone() }
    }
}

#[derive(Clone)]
pub struct AuditService<S> {
    inner: S,
    state: Arc<AuditState>,
}

/// The message of a one-message gRPC body (5-byte frame header, then the message). Compressed
/// or malformed bodies give `None`; the service will refuse those itself.
fn decode(body: &[u8], descriptor: &MessageDescriptor) -> Option<DynamicMessage> {
    let (header, rest) = body.split_at_checked(5)?;
    let len = u32::from_be_bytes(header[1..5].try_into().ok()?) as usize;
    if header[0] != 0 || rest.len() < len {
        return None;
    }
    DynamicMessage::decode(descriptor.clone(), &rest[..len]).ok()
}

fn header(headers: &http::HeaderMap, name: &str) -> String {
    headers.get(name).and_then(|v| v.to_str().ok()).map(|v| v.chars().take(512).collect()).unwrap_or_default()
}

fn string_field(message: &DynamicMessage, name: &str) -> Option<String> {
    message.get_field_by_name(name).and_then(|v| v.as_str().map(str::to_string)).filter(|s| !s.is_empty())
}

/// The target of a call: the first `<type>_id` field of the request (`user_id`, `api_key_id`),
/// else the `id` of a message field (`role.id`), else the same in the response (a creation), else
/// the organization, else a sign-in's identifier.
fn target(request: Option<&DynamicMessage>, response: Option<&DynamicMessage>) -> (String, String) {
    for message in [request, response].into_iter().flatten() {
        let mut fields: Vec<_> = message.descriptor().fields().collect();
        fields.sort_by_key(|f| f.number());
        for field in &fields {
            let name = field.name();
            if let Some(kind) = name.strip_suffix("_id").filter(|k| *k != "organization") {
                if let Some(id) = string_field(message, name) {
                    return (kind.to_string(), id);
                }
            }
        }
        for field in &fields {
            if let Value::Message(inner) = message.get_field(field).as_ref() {
                if let Some(id) = string_field(inner, "id") {
                    return (field.name().to_string(), id);
                }
            }
        }
    }
    if let Some(org) = request.and_then(organization_of) {
        return ("organization".into(), org.to_string());
    }
    if let Some(identifier) = request.and_then(|r| string_field(r, "identifier")) {
        return ("identifier".into(), identifier);
    }
    (String::new(), String::new())
}

/// The organization a request names, at the top or in its main message (`api_key.organization_id`).
fn organization_of(message: &DynamicMessage) -> Option<Uuid> {
    if let Some(id) = string_field(message, "organization_id") {
        return Uuid::parse_str(&id).ok();
    }
    message.fields().find_map(|(_, value)| match value {
        Value::Message(inner) => string_field(inner, "organization_id").and_then(|id| Uuid::parse_str(&id).ok()),
        _ => None,
    })
}

/// The outcome of a gRPC answer: `None` for OK, else the error reason (or the code's name).
fn failure(headers: &http::HeaderMap) -> Option<Option<String>> {
    let status = tonic::Status::from_header_map(headers)?;
    if status.code() == tonic::Code::Ok {
        return None;
    }
    let reason = status.get_details_error_info().map(|i| i.reason).unwrap_or_else(|| format!("{:?}", status.code()));
    Some(Some(reason))
}

fn credential_kind(principal: Option<&Principal>) -> &'static str {
    match principal.map(|p| p.credential_kind) {
        None => "none",
        Some(CredentialKind::Jwt) => "access_token",
        Some(CredentialKind::ApiKey) => "api_key",
        Some(CredentialKind::PartnerApiKey) => "partner_api_key",
    }
}

/// The target as the paired `Get` returns it, redacted; `None` when it cannot be read (it does
/// not exist, or the caller may not read it).
async fn read_before<S>(
    inner: S,
    read: &BeforeRead,
    request: &DynamicMessage,
    extensions: &http::Extensions,
) -> Option<serde_json::Value>
where
    S: Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>, Error = Infallible>,
{
    use tower::ServiceExt;
    let body = get_request(read, request)?;
    let mut get = http::Request::builder()
        .method(http::Method::POST)
        .uri(read.path.as_str())
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header("te", "trailers")
        .body(tonic::body::Body::new(http_body_util::Full::new(body)))
        .ok()?;
    *get.extensions_mut() = extensions.clone();
    let response = inner.oneshot(get).await.ok()?;
    if failure(response.headers()).is_some() {
        return None;
    }
    let collected = response.into_body().collect().await.ok()?;
    if collected.trailers().and_then(failure).is_some() {
        return None;
    }
    decode(&collected.to_bytes(), &read.output).and_then(redacted_json)
}

/// A body that replays buffered data and trailers.
fn replay(data: Bytes, trailers: Option<http::HeaderMap>) -> tonic::body::Body {
    let mut frames = Vec::new();
    if !data.is_empty() {
        frames.push(Ok::<_, Infallible>(Frame::data(data)));
    }
    if let Some(trailers) = trailers {
        frames.push(Ok(Frame::trailers(trailers)));
    }
    tonic::body::Body::new(StreamBody::new(futures::stream::iter(frames)))
}

impl<S, B> Service<http::Request<B>> for AuditService<S>
where
    S: Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();
        Box::pin(async move {
            if !state.methods.contains_key(request.uri().path()) {
                return inner.call(request.map(tonic::body::Body::new)).await;
            }
            let (parts, body) = request.into_parts();
            let body = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => {
                    let status = tonic::Status::cancelled("the request body could not be read");
                    return Ok(status.into_http());
                }
            };
            let method = &state.methods[parts.uri.path()];
            let request_message = decode(&body, &method.input);
            let principal = parts.extensions.get::<Principal>().cloned();
            let mut row = AuditRow {
                id: Uuid::now_v7(),
                credential_kind: credential_kind(principal.as_ref()).into(),
                actor_user_id: principal
                    .as_ref()
                    .filter(|p| p.api_key_organization_id.is_none() && p.partner_id.is_none())
                    .map(|p| p.user_id),
                actor_application_id: principal.as_ref().and_then(|p| p.client_id.clone()),
                actor_api_key_id: principal.as_ref().and_then(|p| p.api_key_id),
                action: method.action.clone(),
                target_type: String::new(),
                target_id: String::new(),
                organization_id: request_message
                    .as_ref()
                    .and_then(organization_of)
                    .or(principal.as_ref().and_then(|p| p.api_key_organization_id)),
                request: request_message.clone().and_then(redacted_json),
                before: None,
                after: None,
                success: true,
                error_reason: String::new(),
                ip_address: parts
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip().to_string())
                    .unwrap_or_default(),
                user_agent: header(&parts.headers, "user-agent"),
                request_id: header(&parts.headers, "x-request-id"),
                created_at: Utc::now(),
            };
            if let (Some(read), Some(message)) = (&method.before, &request_message) {
                row.before = read_before(inner.clone(), read, message, &parts.extensions).await;
            }
            let response = inner
                .call(http::Request::from_parts(parts, tonic::body::Body::new(http_body_util::Full::new(body))))
                .await?;
            // An error answer is "trailers-only": its status is in the headers.
            if let Some(reason) = failure(response.headers()) {
                (row.target_type, row.target_id) = target(request_message.as_ref(), None);
                row.success = false;
                row.error_reason = reason.unwrap_or_default();
                state.log.append(row).await;
                return Ok(response);
            }
            let (parts, body) = response.into_parts();
            let (data, trailers) = match body.collect().await {
                Ok(collected) => {
                    let trailers = collected.trailers().cloned();
                    (collected.to_bytes(), trailers)
                }
                Err(_) => {
                    row.success = false;
                    row.error_reason = "INTERNAL".into();
                    state.log.append(row).await;
                    return Ok(tonic::Status::internal("the answer could not be read").into_http());
                }
            };
            let response_message = decode(&data, &method.output);
            if let Some(reason) = trailers.as_ref().and_then(failure) {
                row.success = false;
                row.error_reason = reason.unwrap_or_default();
            } else {
                row.after = response_message.clone().and_then(redacted_json);
            }
            (row.target_type, row.target_id) = target(request_message.as_ref(), response_message.as_ref());
            state.log.append(row).await;
            Ok(http::Response::from_parts(parts, replay(data, trailers)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method(path: &str) -> prost_reflect::MethodDescriptor {
        let (service, name) = path.split_once('/').unwrap();
        let pool = mgpass_proto::descriptor_pool();
        pool.get_service_by_name(service).unwrap().methods().find(|m| m.name() == name).unwrap()
    }

    #[test]
    fn reads_are_not_audited() {
        assert!(!is_audited(&method("mgpass.identity.v1.UserService/GetUser")));
        assert!(!is_audited(&method("mgpass.access.v1.ApiKeyService/ListMyApiKeys")));
        assert!(is_audited(&method("mgpass.identity.v1.UserService/UpdateUser")));
        assert!(is_audited(&method("mgpass.identity.v1.AuthenticationService/Login")));
        assert!(is_audited(&method("mgpass.access.v1.ApiKeyService/RevokeApiKey")));
    }

    #[test]
    fn partner_ingestion_is_not_audited_but_reversals_are() {
        assert!(!is_audited(&method("mgpass.loyalty.v1.EventService/IngestEvent")));
        assert!(!is_audited(&method("mgpass.loyalty.v1.EventService/BatchIngestEvents")));
        assert!(is_audited(&method("mgpass.loyalty.v1.EventService/ReverseEvent")));
        assert!(is_audited(&method("mgpass.loyalty.v1.PartnerService/CreatePartnerApiKey")));
    }

    #[test]
    fn targets() {
        let pool = mgpass_proto::descriptor_pool();
        let req = DynamicMessage::deserialize(
            pool.get_message_by_name("mgpass.access.v1.RevokeApiKeyRequest").unwrap(),
            serde_json::json!({"apiKeyId": "k1"}),
        )
        .unwrap();
        assert_eq!(target(Some(&req), None), ("api_key".into(), "k1".into()));
    }
}
