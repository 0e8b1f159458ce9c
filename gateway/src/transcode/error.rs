//! Errors the gateway raises itself, rendered exactly like the server's errors: a canonical
//! `google.rpc.Status` JSON body carrying one `google.rpc.ErrorInfo`, so REST clients parse a
//! single error shape whoever produced it.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};
use tonic::Code;

/// The `ErrorInfo.domain` of errors raised by mgpass.
pub const DOMAIN: &str = "mgpass.net";

/// The HTTP status a gRPC status code maps to (the google.api / grpc-gateway table). One
/// function, so gateway-made errors and transcoded server errors can never disagree.
pub fn http_status_for(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).expect("499 is a valid status"),
        Code::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument => StatusCode::BAD_REQUEST,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::FailedPrecondition => StatusCode::BAD_REQUEST,
        Code::Aborted => StatusCode::CONFLICT,
        Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
    }
}

/// An error detected by the transcoder before or after calling the gRPC service.
#[derive(Debug)]
pub struct RestError {
    pub status: StatusCode,
    pub code: Code,
    pub reason: &'static str,
    pub message: String,
    pub metadata: Vec<(&'static str, String)>,
    /// Value of the `Allow` header of a 405.
    pub allow: Option<String>,
}

impl RestError {
    fn new(code: Code, reason: &'static str, message: impl Into<String>) -> Self {
        let message = message.into();
        RestError { status: http_status_for(code), code, reason, message, metadata: Vec::new(), allow: None }
    }

    pub fn malformed_json(detail: impl std::fmt::Display) -> Self {
        Self::new(Code::InvalidArgument, "MALFORMED_JSON", format!("the request body is not valid JSON: {detail}"))
    }

    pub fn unknown_field(field: &str) -> Self {
        let mut e = Self::new(Code::InvalidArgument, "UNKNOWN_FIELD", format!("unknown field `{field}`"));
        e.metadata.push(("field", field.to_owned()));
        e
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, "INVALID_ARGUMENT", message)
    }

    pub fn body_too_large(limit: usize) -> Self {
        let mut e = Self::new(Code::InvalidArgument, "BODY_TOO_LARGE", format!("the request body exceeds {limit} bytes"));
        e.metadata.push(("limit", limit.to_string()));
        e
    }

    pub fn method_not_found(method: &http::Method, path: &str) -> Self {
        Self::new(Code::NotFound, "METHOD_NOT_FOUND", format!("no API method is bound to {method} {path}"))
    }

    /// 405 has no gRPC code of its own; UNIMPLEMENTED is what grpc-gateway reports with it.
    pub fn method_not_allowed(allowed: &[http::Method]) -> Self {
        let allow = allowed.iter().map(http::Method::as_str).collect::<Vec<_>>().join(", ");
        let mut e = Self::new(Code::Unimplemented, "METHOD_NOT_ALLOWED", format!("method not allowed; allowed: {allow}"));
        e.status = StatusCode::METHOD_NOT_ALLOWED;
        e.metadata.push(("allow", allow.clone()));
        e.allow = Some(allow);
        e
    }

    pub fn streaming_not_supported(method: &str) -> Self {
        Self::new(
            Code::Unimplemented,
            "STREAMING_NOT_SUPPORTED",
            format!("{method} is a streaming method, available over gRPC and gRPC-Web only"),
        )
    }

    /// Something between the gateway and the gRPC service went wrong (bad framing, undecodable
    /// reply): the client did nothing wrong.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Code::Internal, "GATEWAY_INTERNAL", message)
    }

    fn to_json(&self) -> Value {
        let mut info = Map::new();
        info.insert("@type".into(), "type.googleapis.com/google.rpc.ErrorInfo".into());
        info.insert("reason".into(), self.reason.into());
        info.insert("domain".into(), DOMAIN.into());
        if !self.metadata.is_empty() {
            let meta = self.metadata.iter().map(|(k, v)| ((*k).to_owned(), Value::from(v.as_str())));
            info.insert("metadata".into(), Value::Object(meta.collect()));
        }
        json!({"code": self.code as i32, "message": self.message, "details": [info]})
    }
}

impl std::fmt::Display for RestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.reason, self.status, self.message)
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.to_json()).expect("a JSON value serializes");
        let mut res = json_response(self.status, body);
        if let Some(allow) = self.allow.as_deref().and_then(|a| HeaderValue::from_str(a).ok()) {
            res.headers_mut().insert(header::ALLOW, allow);
        }
        res
    }
}

/// A response with a JSON body already serialized.
pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut res = Response::new(axum::body::Body::from(body));
    *res.status_mut() = status;
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_google_api() {
        let cases = [
            (Code::Ok, 200),
            (Code::Cancelled, 499),
            (Code::Unknown, 500),
            (Code::InvalidArgument, 400),
            (Code::DeadlineExceeded, 504),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::PermissionDenied, 403),
            (Code::ResourceExhausted, 429),
            (Code::FailedPrecondition, 400),
            (Code::Aborted, 409),
            (Code::OutOfRange, 400),
            (Code::Unimplemented, 501),
            (Code::Internal, 500),
            (Code::Unavailable, 503),
            (Code::DataLoss, 500),
            (Code::Unauthenticated, 401),
        ];
        for (code, status) in cases {
            assert_eq!(http_status_for(code).as_u16(), status, "{code:?}");
        }
    }

    #[test]
    fn error_body_is_a_status_with_error_info() {
        let v = RestError::unknown_field("nickname").to_json();
        assert_eq!(v["code"], 3);
        assert_eq!(v["details"][0]["@type"], "type.googleapis.com/google.rpc.ErrorInfo");
        assert_eq!(v["details"][0]["reason"], "UNKNOWN_FIELD");
        assert_eq!(v["details"][0]["domain"], DOMAIN);
        assert_eq!(v["details"][0]["metadata"]["field"], "nickname");
    }
}
