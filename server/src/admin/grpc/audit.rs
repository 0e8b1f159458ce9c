//! Serves `mgpass.admin.v1.AuditService`.

use mgpass_proto::admin::{self as pb, audit_service_server::AuditService};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    admin::{
        audit_service::AuditLog,
        audit_store::{AuditFilter, AuditRow},
    },
    auth::principal,
    convert::{from_timestamp, json_to_struct, timestamp},
    error::Error,
};

fn kind_to_proto(kind: &str) -> pb::CredentialKind {
    match kind {
        "none" => pb::CredentialKind::None,
        "access_token" => pb::CredentialKind::AccessToken,
        "api_key" => pb::CredentialKind::ApiKey,
        "partner_api_key" => pb::CredentialKind::PartnerApiKey,
        "client_secret" => pb::CredentialKind::ClientSecret,
        "system" => pb::CredentialKind::System,
        _ => pb::CredentialKind::Unspecified,
    }
}

fn kind_filter(kind: i32) -> Result<Option<String>, Error> {
    let name = match pb::CredentialKind::try_from(kind) {
        Ok(pb::CredentialKind::Unspecified) => return Ok(None),
        Ok(pb::CredentialKind::None) => "none",
        Ok(pb::CredentialKind::AccessToken) => "access_token",
        Ok(pb::CredentialKind::ApiKey) => "api_key",
        Ok(pb::CredentialKind::PartnerApiKey) => "partner_api_key",
        Ok(pb::CredentialKind::ClientSecret) => "client_secret",
        Ok(pb::CredentialKind::System) => "system",
        Err(_) => {
            return Err(Error::invalid(
                "INVALID_ARGUMENT",
                "credential_kind",
                "unknown credential kind",
            ));
        }
    };
    Ok(Some(name.to_string()))
}

fn json(value: Option<serde_json::Value>) -> Option<prost_types::Struct> {
    match value? {
        serde_json::Value::Object(map) => Some(json_to_struct(map)),
        _ => None,
    }
}

fn event_to_proto(row: AuditRow) -> pb::AuditEvent {
    pb::AuditEvent {
        id: row.id.to_string(),
        actor: Some(pb::Actor {
            credential_kind: kind_to_proto(&row.credential_kind) as i32,
            user_id: row.actor_user_id.map(|u| u.to_string()).unwrap_or_default(),
            application_id: row.actor_application_id.unwrap_or_default(),
            api_key_id: row
                .actor_api_key_id
                .map(|k| k.to_string())
                .unwrap_or_default(),
            partner_id: String::new(),
        }),
        action: row.action,
        target_type: row.target_type,
        target_id: row.target_id,
        organization_id: row
            .organization_id
            .map(|o| o.to_string())
            .unwrap_or_default(),
        before: json(row.before),
        after: json(row.after),
        request: json(row.request),
        outcome: if row.success {
            pb::AuditOutcome::Success
        } else {
            pb::AuditOutcome::Failure
        } as i32,
        error_reason: row.error_reason,
        ip_address: row.ip_address,
        user_agent: row.user_agent,
        request_id: row.request_id,
        create_time: Some(timestamp(row.created_at)),
    }
}

fn optional_id(id: String, field: &'static str) -> Result<Option<Uuid>, Error> {
    if id.is_empty() {
        return Ok(None);
    }
    Uuid::parse_str(&id)
        .map(Some)
        .map_err(|_| Error::invalid("INVALID_ID", field, format!("`{id}` is not a valid id")))
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn time(
    t: Option<prost_types::Timestamp>,
    field: &'static str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, Error> {
    match t {
        None => Ok(None),
        Some(t) => from_timestamp(&t).map(Some).ok_or_else(|| {
            Error::invalid(
                "INVALID_ARGUMENT",
                field,
                format!("`{field}` is not a valid time"),
            )
        }),
    }
}

fn filter(req: pb::ListAuditEventsRequest) -> Result<AuditFilter, Error> {
    Ok(AuditFilter {
        organization_id: optional_id(req.organization_id, "organization_id")?,
        actor_user_id: optional_id(req.actor_user_id, "actor_user_id")?,
        actor_application_id: non_empty(req.actor_application_id),
        credential_kind: kind_filter(req.credential_kind)?,
        action: non_empty(req.action),
        target_type: non_empty(req.target_type),
        target_id: non_empty(req.target_id),
        success: match pb::AuditOutcome::try_from(req.outcome) {
            Ok(pb::AuditOutcome::Unspecified) => None,
            Ok(pb::AuditOutcome::Success) => Some(true),
            Ok(pb::AuditOutcome::Failure) => Some(false),
            Err(_) => {
                return Err(Error::invalid(
                    "INVALID_ARGUMENT",
                    "outcome",
                    "unknown outcome",
                ));
            }
        },
        request_id: non_empty(req.request_id),
        created_from: time(req.create_after, "create_after")?,
        created_before: time(req.create_before, "create_before")?,
    })
}

/// Serves `mgpass.admin.v1.AuditService`.
pub struct AuditGrpc(pub AuditLog);

#[tonic::async_trait]
impl AuditService for AuditGrpc {
    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let caller = principal(&request)?.clone();
        let req = request.into_inner();
        let (page_size, page_token) = (req.page_size, req.page_token.clone());
        let (rows, next_page_token) = self
            .0
            .list(&caller, filter(req)?, page_size, &page_token)
            .await?;
        Ok(Response::new(pb::ListAuditEventsResponse {
            audit_events: rows.into_iter().map(event_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn get_audit_event(
        &self,
        request: Request<pb::GetAuditEventRequest>,
    ) -> Result<Response<pb::GetAuditEventResponse>, Status> {
        let caller = principal(&request)?.clone();
        let row = self
            .0
            .get(&caller, &request.into_inner().audit_event_id)
            .await?;
        Ok(Response::new(pb::GetAuditEventResponse {
            audit_event: Some(event_to_proto(row)),
        }))
    }
}
