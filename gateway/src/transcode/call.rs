//! The in-process gRPC call of a REST request, and the REST response built from its reply.
//!
//! The request goes through the very tower service that serves native gRPC (with the server's
//! auth and rate-limit layers), so REST cannot bypass any check: it is just another gRPC client
//! that happens to live in the same process.

use axum::body::Body;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderValue, Method, Request, StatusCode, Version, header};
use http_body_util::BodyExt;
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use serde_json::{Value, json};
use tonic::Code;
use tower::ServiceExt;

use super::error::{RestError, http_status_for, json_response};
use super::routes::Route;
use crate::GrpcService;

/// Request headers the gRPC side needs: credentials, correlation, and client identity.
const FORWARDED_HEADERS: [&str; 7] =
    ["authorization", "cookie", "x-api-key", "x-request-id", "user-agent", "x-forwarded-for", super::QUERY_TOKEN_HEADER];
/// Response metadata that is meaningful to an HTTP client.
const RETURNED_HEADERS: [&str; 3] = ["set-cookie", "www-authenticate", "retry-after"];
/// Tells the server (audit log, cookie handling) that the call arrived as REST. Removed from
/// incoming requests at the edge, so only the gateway can set it.
pub const TRANSPORT_HEADER: &str = "x-mgpass-transport";

/// Status details are standard base64, but some peers drop the padding.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Calls `route`'s gRPC method with `msg`, carrying over headers and every request extension
/// (the server reads `ConnectInfo<SocketAddr>` from them for per-IP limits).
pub async fn invoke(
    grpc: &GrpcService,
    route: &Route,
    msg: &DynamicMessage,
    parts: http::request::Parts,
    status_desc: Option<&MessageDescriptor>,
) -> Result<Response, RestError> {
    let req = grpc_request(route, msg, parts);
    let Ok(res) = grpc.clone().oneshot(req).await;
    let (head, body) = res.into_parts();
    let collected = match body.collect().await {
        Ok(collected) => collected,
        // The body itself failed with a status (for example the call was cut short).
        Err(status) => return Ok(error_response(status.code(), status.message(), status.details(), status_desc)),
    };
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let data = collected.to_bytes();
    // A trailers-only reply (typical for errors) puts the status in the headers.
    let meta = if trailers.contains_key("grpc-status") { &trailers } else { &head.headers };
    let mut res = match meta.get("grpc-status") {
        Some(code) if Code::from_bytes(code.as_bytes()) == Code::Ok => success(route, &data)?,
        Some(code) => {
            let message = meta.get("grpc-message").map(|m| percent_encoding::percent_decode(m.as_bytes()).decode_utf8_lossy());
            let details = meta.get("grpc-status-details-bin").and_then(|d| BASE64.decode(d.as_bytes()).ok()).unwrap_or_default();
            error_response(Code::from_bytes(code.as_bytes()), message.as_deref().unwrap_or(""), &details, status_desc)
        }
        // Not a gRPC reply at all (a layer answered in plain HTTP): map its status like a gRPC
        // client would.
        None => {
            let code = code_from_http(head.status);
            error_response(code, &format!("the gRPC service answered HTTP {} without a grpc-status", head.status), &[], status_desc)
        }
    };
    for name in RETURNED_HEADERS {
        for value in head.headers.get_all(name).iter().chain(trailers.get_all(name).iter()) {
            res.headers_mut().append(name, value.clone());
        }
    }
    Ok(res)
}

fn grpc_request(route: &Route, msg: &DynamicMessage, parts: http::request::Parts) -> Request<Body> {
    // Length-prefixed message: compressed flag 0, big-endian u32 length, payload.
    let payload = msg.encode_to_vec();
    let mut frame = BytesMut::with_capacity(5 + payload.len());
    frame.put_u8(0);
    frame.put_u32(u32::try_from(payload.len()).expect("the body limit keeps messages far below 4 GiB"));
    frame.put_slice(&payload);

    let mut req = Request::new(Body::from(frame.freeze()));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = route.grpc_uri.clone();
    // gRPC is HTTP/2; a gRPC-Web layer inside the service would refuse HTTP/1.1.
    *req.version_mut() = Version::HTTP_2;
    *req.extensions_mut() = parts.extensions;
    let headers = req.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
    headers.insert(TRANSPORT_HEADER, HeaderValue::from_static("rest"));
    for name in FORWARDED_HEADERS {
        for value in parts.headers.get_all(name) {
            headers.append(name, value.clone());
        }
    }
    req
}

/// Decodes the single reply message and renders it as canonical proto3 JSON.
fn success(route: &Route, data: &Bytes) -> Result<Response, RestError> {
    let payload = unframe(data)?;
    let msg = DynamicMessage::decode(route.method.output(), payload)
        .map_err(|e| RestError::internal(format!("undecodable reply of {}: {e}", route.method.full_name())))?;
    // Default SerializeOptions: camelCase, defaults omitted, 64-bit ints as strings, enum names.
    let body = match &route.response_field {
        Some(field) => serde_json::to_vec(msg.get_field(field).as_message().expect("checked at start: a message field")),
        None => serde_json::to_vec(&msg),
    }
    .map_err(|e| RestError::internal(format!("reply of {} not representable as JSON: {e}", route.method.full_name())))?;
    Ok(json_response(StatusCode::OK, body))
}

fn unframe(data: &Bytes) -> Result<Bytes, RestError> {
    if data.len() < 5 {
        return Err(RestError::internal("the gRPC reply carries no message"));
    }
    if data[0] != 0 {
        return Err(RestError::internal("the gRPC reply is compressed, which the gateway never asks for"));
    }
    let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
    if data.len() < 5 + len {
        return Err(RestError::internal("the gRPC reply is truncated"));
    }
    Ok(data.slice(5..5 + len))
}

/// The REST error of a gRPC status: the full `google.rpc.Status` from the details when there is
/// one (so `Any` details render with `@type` through the pool), else code and message.
fn error_response(code: Code, message: &str, details: &[u8], status_desc: Option<&MessageDescriptor>) -> Response {
    let rich = status_desc
        .filter(|_| !details.is_empty())
        .and_then(|desc| DynamicMessage::decode(desc.clone(), details).ok())
        .and_then(|status| serde_json::to_value(&status).ok())
        .map(lift_err_code)
        .and_then(|status| serde_json::to_vec(&status).ok());
    let body = rich.unwrap_or_else(|| {
        let mut v = json!({"code": code as i32});
        if !message.is_empty() {
            v["message"] = message.into();
        }
        serde_json::to_vec(&v).expect("a JSON value serializes")
    });
    json_response(http_status_for(code), body)
}

/// Mindbricks-style clients (the seed documents) branch on a top-level `errCode`; the server
/// sends it as `ErrorInfo.metadata.errCode`, and REST bodies repeat it at the top.
fn lift_err_code(mut status: Value) -> Value {
    let code = status["details"]
        .as_array()
        .and_then(|details| details.iter().find_map(|d| d["metadata"]["errCode"].as_str().map(str::to_string)));
    if let (Some(code), Some(object)) = (code, status.as_object_mut()) {
        object.insert("errCode".into(), Value::String(code));
    }
    status
}

/// How gRPC clients read a non-gRPC HTTP status (grpc/doc/http-grpc-status-mapping.md).
fn code_from_http(status: StatusCode) -> Code {
    match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        200 => Code::Internal,
        _ => Code::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unframes_one_message() {
        let data = Bytes::from_static(&[0, 0, 0, 0, 2, 8, 1, 9]);
        assert_eq!(unframe(&data).unwrap(), Bytes::from_static(&[8, 1]));
        assert!(unframe(&Bytes::from_static(&[1, 0, 0, 0, 0])).is_err());
        assert!(unframe(&Bytes::from_static(&[0, 0, 0, 0, 9, 1])).is_err());
    }

    #[test]
    fn unpadded_details_decode() {
        assert_eq!(BASE64.decode("CAU").unwrap(), vec![8, 5]);
        assert_eq!(BASE64.decode("CAU=").unwrap(), vec![8, 5]);
    }

    #[test]
    fn plain_http_statuses_map_like_grpc_clients() {
        assert_eq!(code_from_http(StatusCode::UNAUTHORIZED), Code::Unauthenticated);
        assert_eq!(code_from_http(StatusCode::TOO_MANY_REQUESTS), Code::Unavailable);
    }
}
