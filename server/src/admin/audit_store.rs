//! SQL for the audit log (`audit_events`): append and read, nothing else (a trigger refuses
//! UPDATE, DELETE and TRUNCATE). No protobuf types and no business rules here.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{db::schema::audit_events, error::Result};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events)]
pub struct AuditRow {
    pub id: Uuid,
    /// `none`, `access_token` or `api_key`.
    pub credential_kind: String,
    pub actor_user_id: Option<Uuid>,
    pub actor_application_id: Option<String>,
    pub actor_api_key_id: Option<Uuid>,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub organization_id: Option<Uuid>,
    pub request: Option<serde_json::Value>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub success: bool,
    pub error_reason: String,
    pub ip_address: String,
    pub user_agent: String,
    pub request_id: String,
    pub created_at: DateTime<Utc>,
}

/// Filters of a listing; `None` leaves a column unfiltered.
#[derive(Debug, Default)]
pub struct AuditFilter {
    pub organization_id: Option<Uuid>,
    pub actor_user_id: Option<Uuid>,
    pub actor_application_id: Option<String>,
    pub credential_kind: Option<String>,
    pub action: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub success: Option<bool>,
    pub request_id: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

pub async fn insert(conn: &mut AsyncPgConnection, row: &AuditRow) -> Result<()> {
    diesel::insert_into(audit_events::table)
        .values(row.clone())
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<AuditRow>> {
    Ok(audit_events::table
        .find(id)
        .select(AuditRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// One page, newest first, strictly after the `after` cursor `(created_at, id)`.
pub async fn list(
    conn: &mut AsyncPgConnection,
    f: &AuditFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<AuditRow>> {
    let mut query = audit_events::table
        .select(AuditRow::as_select())
        .into_boxed();
    if let Some(v) = f.organization_id {
        query = query.filter(audit_events::organization_id.eq(v));
    }
    if let Some(v) = f.actor_user_id {
        query = query.filter(audit_events::actor_user_id.eq(v));
    }
    if let Some(v) = &f.actor_application_id {
        query = query.filter(audit_events::actor_application_id.eq(v.clone()));
    }
    if let Some(v) = &f.credential_kind {
        query = query.filter(audit_events::credential_kind.eq(v.clone()));
    }
    if let Some(v) = &f.action {
        query = query.filter(audit_events::action.eq(v.clone()));
    }
    if let Some(v) = &f.target_type {
        query = query.filter(audit_events::target_type.eq(v.clone()));
    }
    if let Some(v) = &f.target_id {
        query = query.filter(audit_events::target_id.eq(v.clone()));
    }
    if let Some(v) = f.success {
        query = query.filter(audit_events::success.eq(v));
    }
    if let Some(v) = &f.request_id {
        query = query.filter(audit_events::request_id.eq(v.clone()));
    }
    if let Some(v) = f.created_from {
        query = query.filter(audit_events::created_at.ge(v));
    }
    if let Some(v) = f.created_before {
        query = query.filter(audit_events::created_at.lt(v));
    }
    if let Some((at, id)) = after {
        query = query.filter(
            audit_events::created_at
                .lt(at)
                .or(audit_events::created_at.eq(at).and(audit_events::id.lt(id))),
        );
    }
    Ok(query
        .order((audit_events::created_at.desc(), audit_events::id.desc()))
        .limit(limit)
        .load(conn)
        .await?)
}
