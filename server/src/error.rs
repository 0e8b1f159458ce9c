//! The server's one error type and its single mapping to a gRPC status. Every error carries a
//! stable UPPER_SNAKE reason (documented in `docs/errors.md`) sent as a `google.rpc.ErrorInfo`;
//! the gateway turns the same status into the REST JSON error, so there is no second mapping.

use std::collections::HashMap;

use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

/// The `domain` of every `google.rpc.ErrorInfo` mgpass sends.
pub const ERROR_DOMAIN: &str = "mgpass.net";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{message}")]
    InvalidArgument { reason: &'static str, field: &'static str, message: String },
    #[error("{message}")]
    NotFound { reason: &'static str, message: String },
    #[error("{message}")]
    AlreadyExists { reason: &'static str, message: String },
    #[error("{message}")]
    Unauthenticated { reason: &'static str, message: String },
    #[error("{message}")]
    PermissionDenied { reason: &'static str, message: String },
    #[error("{message}")]
    FailedPrecondition { reason: &'static str, message: String },
    #[error("{message}")]
    ResourceExhausted { reason: &'static str, message: String },
    /// RESOURCE_EXHAUSTED with a `google.rpc.RetryInfo` and `metadata.retry_after_seconds`.
    #[error("{message}")]
    RetryLater { reason: &'static str, message: String, retry_after_secs: u64 },
    /// OUT_OF_RANGE: a value outside the range the deployment allows.
    #[error("{message}")]
    OutOfRange { reason: &'static str, message: String },
    /// UNAVAILABLE with a reason: an outside dependency (a payout provider) did not answer.
    #[error("{message}")]
    DependencyUnavailable { reason: &'static str, message: String },
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure; details go to the log, never to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(reason: &'static str, field: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidArgument { reason, field, message: message.into() }
    }
    pub fn not_found(reason: &'static str, message: impl Into<String>) -> Self {
        Self::NotFound { reason, message: message.into() }
    }
    pub fn already_exists(reason: &'static str, message: impl Into<String>) -> Self {
        Self::AlreadyExists { reason, message: message.into() }
    }
    pub fn unauthenticated(reason: &'static str, message: impl Into<String>) -> Self {
        Self::Unauthenticated { reason, message: message.into() }
    }
    pub fn permission_denied(reason: &'static str, message: impl Into<String>) -> Self {
        Self::PermissionDenied { reason, message: message.into() }
    }
    pub fn internal(err: impl std::fmt::Display) -> Self {
        Self::Internal(err.to_string())
    }

    /// The stable reason code (`docs/errors.md`).
    pub fn reason(&self) -> &'static str {
        self.code_and_reason().1
    }

    fn code_and_reason(&self) -> (Code, &'static str) {
        match self {
            Self::InvalidArgument { reason, .. } => (Code::InvalidArgument, reason),
            Self::NotFound { reason, .. } => (Code::NotFound, reason),
            Self::AlreadyExists { reason, .. } => (Code::AlreadyExists, reason),
            Self::Unauthenticated { reason, .. } => (Code::Unauthenticated, reason),
            Self::PermissionDenied { reason, .. } => (Code::PermissionDenied, reason),
            Self::FailedPrecondition { reason, .. } => (Code::FailedPrecondition, reason),
            Self::ResourceExhausted { reason, .. } => (Code::ResourceExhausted, reason),
            Self::RetryLater { reason, .. } => (Code::ResourceExhausted, reason),
            Self::OutOfRange { reason, .. } => (Code::OutOfRange, reason),
            Self::DependencyUnavailable { reason, .. } => (Code::Unavailable, reason),
            Self::Unavailable(_) => (Code::Unavailable, "UNAVAILABLE"),
            Self::Internal(_) => (Code::Internal, "INTERNAL"),
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(err: Error) -> Self {
        let (code, reason) = err.code_and_reason();
        let message = match &err {
            Error::Internal(detail) => {
                tracing::error!(reason, detail = %detail, "internal error");
                "internal error".to_string()
            }
            Error::Unavailable(detail) => {
                tracing::warn!(reason, detail = %detail, "dependency unavailable");
                "service temporarily unavailable".to_string()
            }
            other => other.to_string(),
        };
        let mut metadata = HashMap::<String, String>::new();
        if let Some(code) = seed_error_code(reason) {
            metadata.insert("errCode".into(), code.into());
        }
        if let Error::RetryLater { retry_after_secs, .. } = &err {
            metadata.insert("retry_after_seconds".into(), retry_after_secs.to_string());
        }
        let mut details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata);
        if let Error::InvalidArgument { field, message, .. } = &err {
            details.add_bad_request_violation(*field, message.clone());
        }
        if let Error::RetryLater { retry_after_secs, .. } = &err {
            details.set_retry_info(Some(std::time::Duration::from_secs(*retry_after_secs)));
        }
        tonic::Status::with_error_details(code, message, details)
    }
}

/// The `errCode` the Mindbricks-style frontends of the seed documents branch on, for the reasons
/// they know.
fn seed_error_code(reason: &str) -> Option<&'static str> {
    match reason {
        "EMAIL_VERIFICATION_NEEDED" => Some("EmailVerificationNeeded"),
        "MOBILE_VERIFICATION_NEEDED" => Some("MobileVerificationNeeded"),
        "EMAIL_TWO_FACTOR_NEEDED" => Some("EmailTwoFactorNeeded"),
        "MOBILE_TWO_FACTOR_NEEDED" => Some("MobileTwoFactorNeeded"),
        "TOTP_TWO_FACTOR_NEEDED" => Some("TotpTwoFactorNeeded"),
        _ => None,
    }
}

impl From<diesel::result::Error> for Error {
    fn from(err: diesel::result::Error) -> Self {
        Self::Internal(format!("database: {err}"))
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for Error {
    fn from(err: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        Self::Unavailable(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    /// Every reason the server can send is documented in docs/errors.md, the one place clients
    /// look them up.
    #[test]
    fn every_reason_is_documented() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let doc = std::fs::read_to_string(root.join("../docs/errors.md")).unwrap();
        let mut sources = Vec::new();
        let mut dirs = vec![root.join("src")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    sources.push(std::fs::read_to_string(path).unwrap());
                }
            }
        }
        let mut undocumented = Vec::new();
        let mut seen = 0;
        for source in &sources {
            // Reasons are the first argument of the Error constructors or a `reason:` field.
            for part in source.split('"').skip(1).step_by(2) {
                let is_reason = part.len() > 3
                    && part.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                    && part.contains('_')
                    && !part.starts_with("MGPASS")
                    && !part.starts_with("CARGO")
                    && part != "DATABASE_URL";
                if is_reason {
                    seen += 1;
                    if !doc.contains(&format!("| `{part}` |")) {
                        undocumented.push(part.to_string());
                    }
                }
            }
        }
        assert!(seen > 10, "the scan finds the reasons ({seen})");
        assert!(undocumented.is_empty(), "reasons missing from docs/errors.md: {undocumented:?}");
    }
}
