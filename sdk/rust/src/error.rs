//! A failed call as its gRPC code plus the stable reason of its `google.rpc.ErrorInfo`.

use std::collections::HashMap;

use tonic_types::StatusExt;

/// An mgpass error. Branch on `reason` (`USER_NOT_FOUND`, `PERMISSION_DENIED`, ...; see
/// docs/errors.md), not on the message. `tonic::Status` converts into it with `?`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code:?} {reason}: {message}")]
pub struct Error {
    pub code: tonic::Code,
    /// Empty when the failure happened before the server (connection, configuration).
    pub reason: String,
    pub message: String,
    pub metadata: HashMap<String, String>,
}

impl Error {
    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self { code: tonic::Code::InvalidArgument, reason: String::new(), message: message.into(), metadata: HashMap::new() }
    }
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        let info = status.get_details_error_info();
        Self {
            code: status.code(),
            message: status.message().to_string(),
            reason: info.as_ref().map(|i| i.reason.clone()).unwrap_or_default(),
            metadata: info.map(|i| i.metadata).unwrap_or_default(),
        }
    }
}
