//! Serves `mgpass.org.v1.InvitationService`.

use chrono::Utc;
use mgpass_proto::org::{
    self as pb, InvitationStatus, invitation_service_server::InvitationService,
};
use tonic::{Request, Response, Status};

use crate::{
    auth::principal,
    convert::timestamp,
    error::Error,
    org::{
        grpc::organizations::member_to_proto, invitation_service::InvitationService as Invitations,
        invitation_store::InvitationRow,
    },
};

fn status_to_proto(status: &str) -> InvitationStatus {
    match status {
        "pending" => InvitationStatus::Pending,
        "accepted" => InvitationStatus::Accepted,
        "revoked" => InvitationStatus::Revoked,
        "expired" => InvitationStatus::Expired,
        _ => InvitationStatus::Unspecified,
    }
}

fn invitation_to_proto(r: InvitationRow) -> pb::Invitation {
    let status = status_to_proto(r.effective_status(Utc::now()));
    pb::Invitation {
        id: r.id.to_string(),
        organization_id: r.organization_id.to_string(),
        email: r.email,
        role: r.role,
        inviter_user_id: r.inviter_user_id.map(|u| u.to_string()).unwrap_or_default(),
        status: status as i32,
        expire_time: Some(timestamp(r.expires_at)),
        create_time: Some(timestamp(r.created_at)),
        close_time: r.closed_at.map(timestamp),
        accepter_user_id: r
            .accepter_user_id
            .map(|u| u.to_string())
            .unwrap_or_default(),
    }
}

/// Serves `mgpass.org.v1.InvitationService`.
pub struct InvitationGrpc(pub Invitations);

#[tonic::async_trait]
impl InvitationService for InvitationGrpc {
    async fn create_invitation(
        &self,
        request: Request<pb::CreateInvitationRequest>,
    ) -> Result<Response<pb::CreateInvitationResponse>, Status> {
        let caller = principal(&request)?.clone();
        let req = request.into_inner();
        let ttl = match req.ttl {
            Some(d) if d.nanos != 0 || d.seconds <= 0 => {
                return Err(Error::invalid(
                    "INVALID_ARGUMENT",
                    "ttl",
                    "ttl must be a whole number of seconds",
                )
                .into());
            }
            Some(d) => Some(d.seconds),
            None => None,
        };
        let row = self
            .0
            .create(&caller, &req.organization_id, &req.email, &req.role, ttl)
            .await?;
        Ok(Response::new(pb::CreateInvitationResponse {
            invitation: Some(invitation_to_proto(row)),
        }))
    }

    async fn get_invitation(
        &self,
        request: Request<pb::GetInvitationRequest>,
    ) -> Result<Response<pb::GetInvitationResponse>, Status> {
        let req = request.into_inner();
        let row = self.0.get(&req.organization_id, &req.invitation_id).await?;
        Ok(Response::new(pb::GetInvitationResponse {
            invitation: Some(invitation_to_proto(row)),
        }))
    }

    async fn list_invitations(
        &self,
        request: Request<pb::ListInvitationsRequest>,
    ) -> Result<Response<pb::ListInvitationsResponse>, Status> {
        let req = request.into_inner();
        let status = match InvitationStatus::try_from(req.status) {
            Ok(InvitationStatus::Unspecified) => None,
            Ok(InvitationStatus::Pending) => Some("pending"),
            Ok(InvitationStatus::Accepted) => Some("accepted"),
            Ok(InvitationStatus::Revoked) => Some("revoked"),
            Ok(InvitationStatus::Expired) => Some("expired"),
            Err(_) => {
                return Err(Error::invalid(
                    "INVALID_ARGUMENT",
                    "status",
                    "unknown invitation status",
                )
                .into());
            }
        };
        let (rows, next_page_token) = self
            .0
            .list(&req.organization_id, status, req.page_size, &req.page_token)
            .await?;
        Ok(Response::new(pb::ListInvitationsResponse {
            invitations: rows.into_iter().map(invitation_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn revoke_invitation(
        &self,
        request: Request<pb::RevokeInvitationRequest>,
    ) -> Result<Response<pb::RevokeInvitationResponse>, Status> {
        let req = request.into_inner();
        let row = self
            .0
            .revoke(&req.organization_id, &req.invitation_id)
            .await?;
        Ok(Response::new(pb::RevokeInvitationResponse {
            invitation: Some(invitation_to_proto(row)),
        }))
    }

    async fn lookup_invitation(
        &self,
        request: Request<pb::LookupInvitationRequest>,
    ) -> Result<Response<pb::LookupInvitationResponse>, Status> {
        let p = self.0.lookup(&request.into_inner().token).await?;
        Ok(Response::new(pb::LookupInvitationResponse {
            organization_name: p.organization_name,
            organization_avatar_url: p.organization_avatar_url,
            email: p.email,
            role: p.role,
            inviter_display_name: p.inviter_display_name,
            expire_time: Some(timestamp(p.expire_time)),
            account_exists: p.account_exists,
        }))
    }

    async fn accept_invitation(
        &self,
        request: Request<pb::AcceptInvitationRequest>,
    ) -> Result<Response<pb::AcceptInvitationResponse>, Status> {
        let caller = principal(&request)?.clone();
        let member = self.0.accept(&caller, &request.into_inner().token).await?;
        Ok(Response::new(pb::AcceptInvitationResponse {
            member: Some(member_to_proto(member)),
        }))
    }
}
