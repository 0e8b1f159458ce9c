//! SQL for partner events and the user lookups they need. No protobuf and no rules here.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::engine::UserFacts;
use crate::{
    db::schema::{loyalty_events as e, users},
    error::Result,
};

/// Event statuses (= proto `EventStatus`).
pub const STATUS_PROCESSED: i16 = 1;
pub const STATUS_PENDING_USER: i16 = 2;
pub const STATUS_REVERSED: i16 = 3;
pub const STATUS_EXPIRED: i16 = 4;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = e)]
pub struct EventRow {
    pub id: Uuid,
    pub partner_id: Uuid,
    pub partner_event_id: String,
    pub request_hash: Vec<u8>,
    pub event_type: String,
    pub user_id: Option<Uuid>,
    pub email: Option<String>,
    pub mobile: Option<String>,
    pub occur_at: DateTime<Utc>,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    pub attributes: serde_json::Value,
    pub status: i16,
    pub resolved_user_id: Option<Uuid>,
    pub points: i64,
    pub awards: serde_json::Value,
    pub transaction_id: Option<Uuid>,
    pub reversal_transaction_id: Option<Uuid>,
    pub received_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
    pub pending_expires_at: Option<DateTime<Utc>>,
    pub reversed_at: Option<DateTime<Utc>>,
}

/// Inserts the event unless the partner already sent one with its id: `false` then. A copy
/// being inserted by a concurrent transaction makes this wait for it and then answer `false`.
pub async fn insert_new(conn: &mut AsyncPgConnection, row: &EventRow) -> Result<bool> {
    Ok(diesel::insert_into(e::table)
        .values(row)
        .on_conflict((e::partner_id, e::partner_event_id))
        .do_nothing()
        .execute(conn)
        .await?
        == 1)
}

pub async fn by_key(
    conn: &mut AsyncPgConnection,
    partner: Uuid,
    partner_event_id: &str,
) -> Result<Option<EventRow>> {
    Ok(e::table
        .filter(
            e::partner_id
                .eq(partner)
                .and(e::partner_event_id.eq(partner_event_id)),
        )
        .select(EventRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub async fn by_key_for_update(
    conn: &mut AsyncPgConnection,
    partner: Uuid,
    partner_event_id: &str,
) -> Result<Option<EventRow>> {
    Ok(e::table
        .filter(
            e::partner_id
                .eq(partner)
                .and(e::partner_event_id.eq(partner_event_id)),
        )
        .select(EventRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<EventRow>> {
    Ok(e::table
        .find(id)
        .select(EventRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub async fn get_for_update(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<EventRow>> {
    Ok(e::table
        .find(id)
        .select(EventRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

/// Writes the outcome of processing (status, user, points, awards, ledger transaction).
pub async fn save_outcome(conn: &mut AsyncPgConnection, row: &EventRow) -> Result<()> {
    diesel::update(e::table.find(row.id))
        .set((
            e::status.eq(row.status),
            e::resolved_user_id.eq(row.resolved_user_id),
            e::points.eq(row.points),
            e::awards.eq(&row.awards),
            e::transaction_id.eq(row.transaction_id),
            e::processed_at.eq(row.processed_at),
            e::pending_expires_at.eq(row.pending_expires_at),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn mark_reversed(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    reversal: Option<Uuid>,
) -> Result<EventRow> {
    Ok(diesel::update(e::table.find(id))
        .set((
            e::status.eq(STATUS_REVERSED),
            e::reversal_transaction_id.eq(reversal),
            e::reversed_at.eq(Utc::now()),
        ))
        .returning(EventRow::as_returning())
        .get_result(conn)
        .await?)
}

/// Filters of the event listing.
#[derive(Default)]
pub struct EventFilter {
    pub partner_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub event_type: Option<String>,
    pub status: Option<i16>,
    pub partner_event_id: Option<String>,
    pub occur_after: Option<DateTime<Utc>>,
    pub occur_before: Option<DateTime<Utc>>,
}

/// Most recently received first.
pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: &EventFilter,
    after: Option<crate::paging::Cursor>,
    limit: i64,
) -> Result<Vec<EventRow>> {
    let mut query = e::table.into_boxed();
    if let Some(p) = filter.partner_id {
        query = query.filter(e::partner_id.eq(p));
    }
    if let Some(u) = filter.user_id {
        query = query.filter(e::resolved_user_id.eq(u));
    }
    if let Some(t) = &filter.event_type {
        query = query.filter(e::event_type.eq(t.clone()));
    }
    if let Some(s) = filter.status {
        query = query.filter(e::status.eq(s));
    }
    if let Some(id) = &filter.partner_event_id {
        query = query.filter(e::partner_event_id.eq(id.clone()));
    }
    if let Some(t) = filter.occur_after {
        query = query.filter(e::occur_at.ge(t));
    }
    if let Some(t) = filter.occur_before {
        query = query.filter(e::occur_at.lt(t));
    }
    if let Some((at, id)) = after {
        query = query.filter(
            e::received_at
                .lt(at)
                .or(e::received_at.eq(at).and(e::id.lt(id))),
        );
    }
    Ok(query
        .order((e::received_at.desc(), e::id.desc()))
        .limit(limit)
        .select(EventRow::as_select())
        .load(conn)
        .await?)
}

/// The active user with this id.
pub async fn user_exists(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool> {
    Ok(diesel::select(diesel::dsl::exists(users::table.find(id)))
        .get_result(conn)
        .await?)
}

/// The user whose verified email this is (case ignored).
pub async fn user_by_verified_email(
    conn: &mut AsyncPgConnection,
    email: &str,
) -> Result<Option<Uuid>> {
    Ok(users::table
        .filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>("lower(email) = lower(")
                .bind::<diesel::sql_types::Text, _>(email)
                .sql(")"),
        )
        .filter(users::email_verified.eq(true))
        .select(users::id)
        .first(conn)
        .await
        .optional()?)
}

/// The user whose verified mobile this is.
pub async fn user_by_verified_mobile(
    conn: &mut AsyncPgConnection,
    mobile: &str,
) -> Result<Option<Uuid>> {
    Ok(users::table
        .filter(users::mobile.eq(mobile))
        .filter(users::mobile_verified.eq(true))
        .select(users::id)
        .first(conn)
        .await
        .optional()?)
}

/// What rule conditions see of a user.
pub async fn user_facts(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<UserFacts>> {
    let row: Option<(Vec<String>, serde_json::Value)> = users::table
        .find(id)
        .select((users::roles, users::properties))
        .first(conn)
        .await
        .optional()?;
    Ok(row.map(|(roles, properties)| UserFacts {
        id: Some(id),
        roles,
        properties,
    }))
}

/// Pending events whose email or mobile a user has verified since: (event id, user id), oldest
/// first, at most `limit`.
pub async fn pending_matches(
    conn: &mut AsyncPgConnection,
    limit: i64,
) -> Result<Vec<(Uuid, Uuid)>> {
    #[derive(QueryableByName)]
    struct Match {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        event_id: Uuid,
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        user_id: Uuid,
    }
    let rows: Vec<Match> = diesel::sql_query(
        "SELECT ev.id AS event_id, u.id AS user_id FROM loyalty_events ev \
         JOIN users u ON (ev.email IS NOT NULL AND lower(u.email) = lower(ev.email) AND u.email_verified) \
                      OR (ev.mobile IS NOT NULL AND u.mobile = ev.mobile AND u.mobile_verified) \
         WHERE ev.status = 2 AND ev.pending_expires_at > now() \
         ORDER BY ev.received_at LIMIT $1",
    )
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|m| (m.event_id, m.user_id)).collect())
}

/// Marks the pending events past their expiry as expired; how many.
pub async fn expire_pending(conn: &mut AsyncPgConnection) -> Result<usize> {
    Ok(diesel::update(
        e::table
            .filter(e::status.eq(STATUS_PENDING_USER))
            .filter(e::pending_expires_at.le(Utc::now())),
    )
    .set(e::status.eq(STATUS_EXPIRED))
    .execute(conn)
    .await?)
}
