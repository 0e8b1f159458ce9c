//! The tonic adapters of earning: protobuf in, domain call, protobuf out. No rules here.

mod events;
mod rules;
mod tiers;

pub use events::EventGrpc;
pub use rules::RuleGrpc;
pub use tiers::TierGrpc;

use crate::error::Error;

fn required<T>(value: Option<T>, field: &'static str) -> Result<T, Error> {
    value.ok_or_else(|| Error::invalid("INVALID_ARGUMENT", field, format!("`{field}` is required")))
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn opt_id(s: &str, field: &'static str) -> Result<Option<uuid::Uuid>, Error> {
    if s.is_empty() {
        Ok(None)
    } else {
        super::parse_id(s, field).map(Some)
    }
}

fn opt_uuid(id: Option<uuid::Uuid>) -> String {
    id.map(|u| u.to_string()).unwrap_or_default()
}
