//! `mgpass.identity.v1.SessionService`: a user's own sessions, and administrators' view of
//! anyone's.

use mgpass_proto::identity::{self as pb, session_service_server::SessionService};
use tonic::{Request, Response, Status};

use crate::{
    auth::principal,
    convert::timestamp,
    identity::{service::IdentityService, session_store::SessionRow},
};

/// Serves `mgpass.identity.v1.SessionService`.
pub struct SessionGrpc(pub IdentityService);

pub(super) fn session_to_proto(row: SessionRow, current: Option<uuid::Uuid>) -> pb::Session {
    let pending = super::second_factor::factor_to_proto(row.pending_second_factor.as_deref());
    pb::Session {
        id: row.id.to_string(),
        user_id: row.user_id.to_string(),
        application_id: row.application_id,
        user_agent: row.user_agent,
        ip_address: row.ip_address,
        authentication_methods: row.amr,
        pending_second_factor: pending as i32,
        current: current == Some(row.id),
        create_time: Some(timestamp(row.created_at)),
        last_use_time: Some(timestamp(row.last_used_at)),
        expire_time: Some(timestamp(row.expires_at)),
    }
}

#[tonic::async_trait]
impl SessionService for SessionGrpc {
    async fn list_my_sessions(
        &self,
        request: Request<pb::ListMySessionsRequest>,
    ) -> Result<Response<pb::ListMySessionsResponse>, Status> {
        let me = principal(&request)?.clone();
        let req = request.into_inner();
        let (rows, next_page_token) = self
            .0
            .list_sessions(me.user_id, req.page_size, &req.page_token)
            .await?;
        let sessions = rows
            .into_iter()
            .map(|r| session_to_proto(r, me.session_id))
            .collect();
        Ok(Response::new(pb::ListMySessionsResponse {
            sessions,
            next_page_token,
        }))
    }

    async fn revoke_my_session(
        &self,
        request: Request<pb::RevokeMySessionRequest>,
    ) -> Result<Response<pb::RevokeMySessionResponse>, Status> {
        let me = principal(&request)?.user_id;
        self.0
            .revoke_session(me, &request.into_inner().session_id, "revoked_by_user")
            .await?;
        Ok(Response::new(pb::RevokeMySessionResponse {}))
    }

    async fn revoke_my_other_sessions(
        &self,
        request: Request<pb::RevokeMyOtherSessionsRequest>,
    ) -> Result<Response<pb::RevokeMyOtherSessionsResponse>, Status> {
        let me = principal(&request)?;
        let count = self
            .0
            .revoke_sessions(me.user_id, me.session_id, "revoked_by_user")
            .await?;
        Ok(Response::new(pb::RevokeMyOtherSessionsResponse {
            revoked_session_count: count as i32,
        }))
    }

    async fn list_user_sessions(
        &self,
        request: Request<pb::ListUserSessionsRequest>,
    ) -> Result<Response<pb::ListUserSessionsResponse>, Status> {
        let req = request.into_inner();
        let user_id = self.0.existing_user(&req.user_id).await?;
        let (rows, next_page_token) = self
            .0
            .list_sessions(user_id, req.page_size, &req.page_token)
            .await?;
        let sessions = rows
            .into_iter()
            .map(|r| session_to_proto(r, None))
            .collect();
        Ok(Response::new(pb::ListUserSessionsResponse {
            sessions,
            next_page_token,
        }))
    }

    async fn revoke_user_session(
        &self,
        request: Request<pb::RevokeUserSessionRequest>,
    ) -> Result<Response<pb::RevokeUserSessionResponse>, Status> {
        let req = request.into_inner();
        let user_id = self.0.existing_user(&req.user_id).await?;
        self.0
            .revoke_session(user_id, &req.session_id, "revoked_by_admin")
            .await?;
        Ok(Response::new(pb::RevokeUserSessionResponse {}))
    }

    async fn revoke_all_user_sessions(
        &self,
        request: Request<pb::RevokeAllUserSessionsRequest>,
    ) -> Result<Response<pb::RevokeAllUserSessionsResponse>, Status> {
        let user_id = self.0.existing_user(&request.into_inner().user_id).await?;
        let count = self
            .0
            .revoke_sessions(user_id, None, "revoked_by_admin")
            .await?;
        Ok(Response::new(pb::RevokeAllUserSessionsResponse {
            revoked_session_count: count as i32,
        }))
    }
}
