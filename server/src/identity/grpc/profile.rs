//! `mgpass.identity.v1.ProfileService`: the signed-in user's own account.

use mgpass_proto::identity::{self as pb, profile_service_server::ProfileService};
use tonic::{Request, Response, Status};

use super::{required, user_fields, user_to_proto, verification::dispatch_to_proto};
use crate::{
    auth::principal,
    convert::{json_to_struct, timestamp},
    identity::service::{IdentityService, UserUpdate},
};

/// Serves `mgpass.identity.v1.ProfileService`.
pub struct ProfileGrpc(pub IdentityService);

#[tonic::async_trait]
impl ProfileService for ProfileGrpc {
    async fn get_my_profile(
        &self,
        request: Request<pb::GetMyProfileRequest>,
    ) -> Result<Response<pb::GetMyProfileResponse>, Status> {
        let row = self.0.my_profile(principal(&request)?.user_id).await?;
        Ok(Response::new(pb::GetMyProfileResponse {
            user: Some(user_to_proto(row)),
        }))
    }

    async fn update_my_profile(
        &self,
        request: Request<pb::UpdateMyProfileRequest>,
    ) -> Result<Response<pb::UpdateMyProfileResponse>, Status> {
        let me = principal(&request)?.user_id;
        let req = request.into_inner();
        let user = required(req.user, "user")?;
        let mask = required(req.update_mask, "update_mask")?;
        let row = self
            .0
            .update_my_profile(
                me,
                UserUpdate {
                    fields: user_fields(user),
                    paths: mask.paths,
                },
            )
            .await?;
        Ok(Response::new(pb::UpdateMyProfileResponse {
            user: Some(user_to_proto(row)),
        }))
    }

    async fn change_my_password(
        &self,
        request: Request<pb::ChangeMyPasswordRequest>,
    ) -> Result<Response<pb::ChangeMyPasswordResponse>, Status> {
        let me = principal(&request)?.clone();
        let req = request.into_inner();
        let revoked = self
            .0
            .change_my_password(
                me.user_id,
                me.session_id,
                &req.current_password,
                req.new_password,
            )
            .await?;
        Ok(Response::new(pb::ChangeMyPasswordResponse {
            revoked_session_count: revoked as i32,
        }))
    }

    async fn change_my_email(
        &self,
        request: Request<pb::ChangeMyEmailRequest>,
    ) -> Result<Response<pb::ChangeMyEmailResponse>, Status> {
        let me = principal(&request)?.user_id;
        let req = request.into_inner();
        let change = self
            .0
            .change_my_email(me, &req.new_email, &req.password)
            .await?;
        Ok(Response::new(pb::ChangeMyEmailResponse {
            user: Some(user_to_proto(change.user)),
            pending_email: change.pending.unwrap_or_default(),
            verification: change.dispatch.map(dispatch_to_proto),
        }))
    }

    async fn change_my_mobile(
        &self,
        request: Request<pb::ChangeMyMobileRequest>,
    ) -> Result<Response<pb::ChangeMyMobileResponse>, Status> {
        let me = principal(&request)?.user_id;
        let req = request.into_inner();
        let change = self
            .0
            .change_my_mobile(me, &req.new_mobile, &req.password)
            .await?;
        Ok(Response::new(pb::ChangeMyMobileResponse {
            user: Some(user_to_proto(change.user)),
            pending_mobile: change.pending.unwrap_or_default(),
            verification: change.dispatch.map(dispatch_to_proto),
        }))
    }

    async fn delete_my_account(
        &self,
        request: Request<pb::DeleteMyAccountRequest>,
    ) -> Result<Response<pb::DeleteMyAccountResponse>, Status> {
        let me = principal(&request)?.user_id;
        self.0
            .delete_my_account(me, &request.into_inner().password)
            .await?;
        Ok(Response::new(pb::DeleteMyAccountResponse {}))
    }

    async fn export_my_data(
        &self,
        request: Request<pb::ExportMyDataRequest>,
    ) -> Result<Response<pb::ExportMyDataResponse>, Status> {
        let me = principal(&request)?.user_id;
        let data = self.0.export_my_data(me).await?;
        Ok(Response::new(pb::ExportMyDataResponse {
            data: Some(json_to_struct(data)),
            export_time: Some(timestamp(chrono::Utc::now())),
        }))
    }
}
