//! Serves `mgpass.access.v1.ApiKeyService`.

use chrono::Utc;
use mgpass_proto::access::{self as pb, api_key_service_server::ApiKeyService};
use tonic::{Request, Response, Status};

use crate::{
    access::{
        api_key_service::{ApiKeyService as Keys, IssuedApiKey, NewApiKey, is_active},
        api_key_store::{ApiKeyRow, StatusFilter},
    },
    auth::principal,
    convert::{from_timestamp, timestamp},
    error::Error,
};

fn status_of(row: &ApiKeyRow) -> pb::ApiKeyStatus {
    if row.revoked_at.is_some() {
        pb::ApiKeyStatus::Revoked
    } else if is_active(row, Utc::now()) {
        pb::ApiKeyStatus::Active
    } else {
        pb::ApiKeyStatus::Expired
    }
}

fn key_to_proto(row: ApiKeyRow) -> pb::ApiKey {
    let now = Utc::now();
    pb::ApiKey {
        status: status_of(&row) as i32,
        id: row.id.to_string(),
        name: row.name,
        prefix: row.prefix,
        user_id: row.user_id.map(|u| u.to_string()).unwrap_or_default(),
        organization_id: row
            .organization_id
            .map(|o| o.to_string())
            .unwrap_or_default(),
        creator_user_id: row.creator_user_id.to_string(),
        scopes: row.scopes,
        expire_time: row.expires_at.map(timestamp),
        last_use_time: row.last_used_at.map(timestamp),
        create_time: Some(timestamp(row.created_at)),
        rotate_time: row.rotated_at.map(timestamp),
        previous_key_expire_time: row
            .previous_key_expires_at
            .filter(|t| *t > now)
            .map(timestamp),
        revoke_time: row.revoked_at.map(timestamp),
    }
}

fn new_key(key: Option<pb::ApiKey>) -> Result<(NewApiKey, String), Error> {
    let key =
        key.ok_or_else(|| Error::invalid("INVALID_ARGUMENT", "api_key", "`api_key` is required"))?;
    let expires_at = match &key.expire_time {
        Some(t) => Some(from_timestamp(t).ok_or_else(|| {
            Error::invalid(
                "INVALID_ARGUMENT",
                "api_key.expire_time",
                "invalid `expire_time`",
            )
        })?),
        None => None,
    };
    Ok((
        NewApiKey {
            name: key.name,
            scopes: key.scopes,
            expires_at,
        },
        key.organization_id,
    ))
}

fn status_filter(status: i32) -> Result<StatusFilter, Error> {
    Ok(match pb::ApiKeyStatus::try_from(status) {
        Ok(pb::ApiKeyStatus::Unspecified) => StatusFilter::Any,
        Ok(pb::ApiKeyStatus::Active) => StatusFilter::Active,
        Ok(pb::ApiKeyStatus::Expired) => StatusFilter::Expired,
        Ok(pb::ApiKeyStatus::Revoked) => StatusFilter::Revoked,
        Err(_) => {
            return Err(Error::invalid(
                "INVALID_ARGUMENT",
                "status",
                "unknown status",
            ));
        }
    })
}

/// An overlap in whole seconds; negative values are left for the service to refuse.
fn overlap_secs(overlap: Option<prost_types::Duration>) -> i64 {
    overlap
        .map(|d| {
            if d.seconds == 0 && d.nanos < 0 {
                -1
            } else {
                d.seconds
            }
        })
        .unwrap_or(0)
}

fn issued(k: IssuedApiKey) -> (Option<pb::ApiKey>, String) {
    (Some(key_to_proto(k.row)), k.key)
}

/// Serves `mgpass.access.v1.ApiKeyService`.
pub struct ApiKeyGrpc(pub Keys);

#[tonic::async_trait]
impl ApiKeyService for ApiKeyGrpc {
    async fn create_my_api_key(
        &self,
        request: Request<pb::CreateMyApiKeyRequest>,
    ) -> Result<Response<pb::CreateMyApiKeyResponse>, Status> {
        let caller = principal(&request)?.clone();
        let (key, _) = new_key(request.into_inner().api_key)?;
        let (api_key, key) = issued(self.0.create_mine(&caller, key).await?);
        Ok(Response::new(pb::CreateMyApiKeyResponse { api_key, key }))
    }

    async fn list_my_api_keys(
        &self,
        request: Request<pb::ListMyApiKeysRequest>,
    ) -> Result<Response<pb::ListMyApiKeysResponse>, Status> {
        let caller = principal(&request)?.clone();
        let req = request.into_inner();
        let (rows, next_page_token) = self
            .0
            .list_mine(
                &caller,
                status_filter(req.status)?,
                req.page_size,
                &req.page_token,
            )
            .await?;
        Ok(Response::new(pb::ListMyApiKeysResponse {
            api_keys: rows.into_iter().map(key_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn rotate_my_api_key(
        &self,
        request: Request<pb::RotateMyApiKeyRequest>,
    ) -> Result<Response<pb::RotateMyApiKeyResponse>, Status> {
        let caller = principal(&request)?.clone();
        let req = request.into_inner();
        let (api_key, key) = issued(
            self.0
                .rotate_mine(&caller, &req.api_key_id, overlap_secs(req.overlap))
                .await?,
        );
        Ok(Response::new(pb::RotateMyApiKeyResponse { api_key, key }))
    }

    async fn revoke_my_api_key(
        &self,
        request: Request<pb::RevokeMyApiKeyRequest>,
    ) -> Result<Response<pb::RevokeMyApiKeyResponse>, Status> {
        let caller = principal(&request)?.clone();
        let row = self
            .0
            .revoke_mine(&caller, &request.into_inner().api_key_id)
            .await?;
        Ok(Response::new(pb::RevokeMyApiKeyResponse {
            api_key: Some(key_to_proto(row)),
        }))
    }

    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        let caller = principal(&request)?.clone();
        let (key, organization_id) = new_key(request.into_inner().api_key)?;
        let (api_key, key) = issued(
            self.0
                .create_for_organization(&caller, &organization_id, key)
                .await?,
        );
        Ok(Response::new(pb::CreateApiKeyResponse { api_key, key }))
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let caller = principal(&request)?.clone();
        let req = request.into_inner();
        let status = status_filter(req.status)?;
        let (rows, next_page_token) = self
            .0
            .list(
                &caller,
                &req.organization_id,
                &req.user_id,
                status,
                req.page_size,
                &req.page_token,
            )
            .await?;
        Ok(Response::new(pb::ListApiKeysResponse {
            api_keys: rows.into_iter().map(key_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn rotate_api_key(
        &self,
        request: Request<pb::RotateApiKeyRequest>,
    ) -> Result<Response<pb::RotateApiKeyResponse>, Status> {
        let caller = principal(&request)?.clone();
        let req = request.into_inner();
        let overlap = overlap_secs(req.overlap);
        let (api_key, key) = issued(
            self.0
                .rotate_managed(&caller, &req.api_key_id, &req.organization_id, overlap)
                .await?,
        );
        Ok(Response::new(pb::RotateApiKeyResponse { api_key, key }))
    }

    async fn revoke_api_key(
        &self,
        request: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::RevokeApiKeyResponse>, Status> {
        let caller = principal(&request)?.clone();
        let req = request.into_inner();
        let row = self
            .0
            .revoke_managed(&caller, &req.api_key_id, &req.organization_id)
            .await?;
        Ok(Response::new(pb::RevokeApiKeyResponse {
            api_key: Some(key_to_proto(row)),
        }))
    }
}
