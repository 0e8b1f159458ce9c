//! What earning needs to know of partners (owned by the loyalty core): whether one exists, its
//! declared event types and whether it is active.

use diesel::{
    QueryableByName,
    sql_types::{Array, Bool, Text, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::error::{Error, Result};

#[derive(QueryableByName)]
pub struct PartnerFacts {
    #[diesel(sql_type = Array<Text>)]
    pub event_types: Vec<String>,
    #[diesel(sql_type = Bool)]
    pub active: bool,
}

pub async fn facts(conn: &mut AsyncPgConnection, partner: Uuid) -> Result<Option<PartnerFacts>> {
    use diesel::OptionalExtension;
    Ok(diesel::sql_query(
        "SELECT event_types, status = 'active' AS active FROM loyalty_partners WHERE id = $1",
    )
    .bind::<SqlUuid, _>(partner)
    .get_result(conn)
    .await
    .optional()?)
}

pub fn partner_not_found() -> Error {
    Error::not_found("PARTNER_NOT_FOUND", "no such partner")
}

pub fn unknown_event_type(event_type: &str, field: &'static str) -> Error {
    Error::invalid(
        "UNKNOWN_EVENT_TYPE",
        field,
        format!("the partner declares no event type `{event_type}`"),
    )
}

/// A lower-case letter, then lower-case letters, digits, `_` or `.`, at most 64 characters.
pub fn check_event_type(event_type: &str, field: &'static str) -> Result<()> {
    let mut bytes = event_type.bytes();
    let valid = event_type.len() <= 64
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(
            "UNKNOWN_EVENT_TYPE",
            field,
            format!("`{event_type}` is not a valid event type"),
        ))
    }
}
