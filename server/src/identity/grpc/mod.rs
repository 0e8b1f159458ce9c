//! The tonic adapters of identity: protobuf in, domain call, protobuf out. No rules here.

mod authentication;
mod profile;
mod registration;
mod second_factor;
mod sessions;
mod verification;

pub use authentication::AuthenticationGrpc;
pub use profile::ProfileGrpc;
pub use registration::RegistrationGrpc;
pub use second_factor::SecondFactorGrpc;
pub use sessions::SessionGrpc;
pub use verification::VerificationGrpc;

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use mgpass_proto::identity::{self as pb, user_service_server::UserService};
use tonic::{Request, Response, Status};

use crate::{
    convert::{from_timestamp, json_to_struct, struct_to_json, timestamp},
    error::Error,
    identity::{
        service::{IdentityService, UserFields, UserUpdate},
        session_service::ClientInfo,
        store::{UserFilter, UserRow},
    },
};

/// The caller's address and user agent, as the transport saw them.
fn client_info<T>(request: &Request<T>) -> ClientInfo {
    ClientInfo {
        ip: request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip()),
        user_agent: request
            .metadata()
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
    }
}

fn user_to_proto(row: UserRow) -> pb::User {
    let status = match row.status.as_str() {
        "active" => pb::UserStatus::Active,
        "suspended" => pb::UserStatus::Suspended,
        _ => pb::UserStatus::Unspecified,
    };
    pb::User {
        id: row.id.to_string(),
        email: row.email.unwrap_or_default(),
        mobile: row.mobile.unwrap_or_default(),
        given_name: row.given_name,
        family_name: row.family_name,
        full_name: row.full_name,
        avatar_url: row.avatar_url,
        email_verified: row.email_verified,
        mobile_verified: row.mobile_verified,
        roles: row.roles,
        status: status as i32,
        create_time: Some(timestamp(row.created_at)),
        update_time: Some(timestamp(row.updated_at)),
        properties: match row.properties {
            serde_json::Value::Object(map) if !map.is_empty() => Some(json_to_struct(map)),
            _ => None,
        },
    }
}

fn user_fields(user: pb::User) -> UserFields {
    UserFields {
        email: user.email,
        mobile: user.mobile,
        given_name: user.given_name,
        family_name: user.family_name,
        full_name: user.full_name,
        avatar_url: user.avatar_url,
        roles: user.roles,
        properties: user.properties.map(struct_to_json).unwrap_or_default(),
    }
}

fn required<T>(value: Option<T>, field: &'static str) -> Result<T, Error> {
    value.ok_or_else(|| Error::invalid("INVALID_ARGUMENT", field, format!("`{field}` is required")))
}

/// Serves `mgpass.identity.v1.UserService`.
pub struct UserGrpc(pub IdentityService);

#[tonic::async_trait]
impl UserService for UserGrpc {
    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        let req = request.into_inner();
        let user = required(req.user, "user")?;
        let password = (!req.password.is_empty()).then_some(req.password);
        let row = self
            .0
            .create_user(user_fields(user), password, false)
            .await?;
        Ok(Response::new(pb::CreateUserResponse {
            user: Some(user_to_proto(row)),
        }))
    }

    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::GetUserResponse>, Status> {
        let row = self.0.get_user(&request.into_inner().user_id).await?;
        Ok(Response::new(pb::GetUserResponse {
            user: Some(user_to_proto(row)),
        }))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let req = request.into_inner();
        let organization = match req.organization_id.as_str() {
            "" => None,
            id => Some(uuid::Uuid::parse_str(id).map_err(|_| {
                Status::from(crate::error::Error::invalid(
                    "INVALID_ID",
                    "organization_id",
                    format!("`{id}` is not a valid organization id"),
                ))
            })?),
        };
        let status = match pb::UserStatus::try_from(req.status).unwrap_or_default() {
            pb::UserStatus::Active => Some("active".to_string()),
            pb::UserStatus::Suspended => Some("suspended".to_string()),
            pb::UserStatus::Unspecified => None,
        };
        let filter = UserFilter {
            query: (!req.query.is_empty()).then_some(req.query),
            status,
            role: (!req.role.is_empty()).then_some(req.role),
            created_after: req.created_after.as_ref().and_then(from_timestamp),
            created_before: req.created_before.as_ref().and_then(from_timestamp),
            organization,
        };
        let (rows, next_page_token) = self
            .0
            .list_users(filter, req.page_size, &req.page_token)
            .await?;
        Ok(Response::new(pb::ListUsersResponse {
            users: rows.into_iter().map(user_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn update_user(
        &self,
        request: Request<pb::UpdateUserRequest>,
    ) -> Result<Response<pb::UpdateUserResponse>, Status> {
        let req = request.into_inner();
        let user = required(req.user, "user")?;
        let mask = required(req.update_mask, "update_mask")?;
        let id = user.id.clone();
        let row = self
            .0
            .update_user(
                &id,
                UserUpdate {
                    fields: user_fields(user),
                    paths: mask.paths,
                },
            )
            .await?;
        Ok(Response::new(pb::UpdateUserResponse {
            user: Some(user_to_proto(row)),
        }))
    }

    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        self.0.delete_user(&request.into_inner().user_id).await?;
        Ok(Response::new(pb::DeleteUserResponse {}))
    }

    async fn suspend_user(
        &self,
        request: Request<pb::SuspendUserRequest>,
    ) -> Result<Response<pb::SuspendUserResponse>, Status> {
        let row = self
            .0
            .set_status(&request.into_inner().user_id, "suspended")
            .await?;
        Ok(Response::new(pb::SuspendUserResponse {
            user: Some(user_to_proto(row)),
        }))
    }

    async fn unsuspend_user(
        &self,
        request: Request<pb::UnsuspendUserRequest>,
    ) -> Result<Response<pb::UnsuspendUserResponse>, Status> {
        let row = self
            .0
            .set_status(&request.into_inner().user_id, "active")
            .await?;
        Ok(Response::new(pb::UnsuspendUserResponse {
            user: Some(user_to_proto(row)),
        }))
    }

    async fn unlock_user(
        &self,
        request: Request<pb::UnlockUserRequest>,
    ) -> Result<Response<pb::UnlockUserResponse>, Status> {
        self.0.unlock_user(&request.into_inner().user_id).await?;
        Ok(Response::new(pb::UnlockUserResponse {}))
    }

    async fn force_password_reset(
        &self,
        request: Request<pb::ForcePasswordResetRequest>,
    ) -> Result<Response<pb::ForcePasswordResetResponse>, Status> {
        self.0
            .force_password_reset(&request.into_inner().user_id)
            .await?;
        Ok(Response::new(pb::ForcePasswordResetResponse {}))
    }
}
