//! Loyalty earning: partner events (idempotent, pending until their customer is a user), the
//! versioned CEL rules that turn them into points, per-user caps and tiers.
//!
//! An award is one database transaction: the event row (its unique key makes retries find the
//! first result), the cap counters (row locks, so concurrent events cannot exceed a cap), the
//! ledger transaction and the tier upgrade. Lock order inside it: the event row, then cap
//! counters by (rule id, period), then the ledger, then the member's tier row.

pub mod caps;
pub mod engine;
pub mod event_hash;
pub mod event_service;
pub mod event_store;
pub mod grpc;
pub mod jobs;
pub mod partners;
pub mod rule_service;
pub mod rule_store;
pub mod tier_service;
pub mod tier_store;

use uuid::Uuid;

use crate::error::{Error, Result};

pub(crate) fn parse_id(id: &str, field: &'static str) -> Result<Uuid> {
    Uuid::parse_str(id)
        .map_err(|_| Error::invalid("INVALID_ID", field, format!("`{id}` is not a valid id")))
}

pub(crate) fn failed(reason: &'static str, message: impl Into<String>) -> Error {
    Error::FailedPrecondition {
        reason,
        message: message.into(),
    }
}

/// An ISO 4217 alphabetic code: three upper-case letters.
pub(crate) fn check_currency(code: &str, field: &'static str) -> Result<()> {
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(Error::invalid(
            "INVALID_CURRENCY",
            field,
            format!("`{code}` is not an ISO 4217 code like GHS"),
        ))
    }
}
