//! Serves `mgpass.loyalty.v1.PartnerService`: protobuf in, domain call, protobuf out.

use mgpass_proto::loyalty::{self as pb, partner_service_server::PartnerService as PartnerApi};
use tonic::{Request, Response, Status};

use super::{
    partner_service::{PartnerFields, PartnerService},
    partner_store::{PartnerKeyRow, PartnerRow},
};
use crate::{
    convert::{from_timestamp, timestamp},
    error::Error,
};

pub struct PartnerGrpc(pub PartnerService);

fn partner_to_proto(r: PartnerRow) -> pb::Partner {
    pb::Partner {
        id: r.id.to_string(),
        name: r.name,
        description: r.description,
        contact_name: r.contact_name,
        contact_email: r.contact_email,
        contact_phone: r.contact_phone,
        status: match r.status.as_str() {
            "active" => pb::PartnerStatus::Active,
            _ => pb::PartnerStatus::Suspended,
        } as i32,
        event_types: r.event_types,
        create_time: Some(timestamp(r.created_at)),
        update_time: Some(timestamp(r.updated_at)),
    }
}

fn key_to_proto(r: PartnerKeyRow) -> pb::PartnerApiKey {
    pb::PartnerApiKey {
        id: r.id.to_string(),
        partner_id: r.partner_id.to_string(),
        name: r.name,
        prefix: r.prefix,
        expire_time: r.expires_at.map(timestamp),
        last_use_time: r.last_used_at.map(timestamp),
        create_time: Some(timestamp(r.created_at)),
        revoke_time: r.revoked_at.map(timestamp),
    }
}

/// `None` for UNSPECIFIED; an unknown number is refused.
fn status(n: i32) -> Result<Option<&'static str>, Error> {
    match pb::PartnerStatus::try_from(n) {
        Ok(pb::PartnerStatus::Unspecified) => Ok(None),
        Ok(pb::PartnerStatus::Active) => Ok(Some("active")),
        Ok(pb::PartnerStatus::Suspended) => Ok(Some("suspended")),
        Err(_) => Err(Error::invalid("INVALID_ARGUMENT", "status", format!("{n} is not a partner status"))),
    }
}

fn fields(p: pb::Partner) -> Result<PartnerFields, Error> {
    Ok(PartnerFields {
        name: p.name,
        description: p.description,
        contact_name: p.contact_name,
        contact_email: p.contact_email,
        contact_phone: p.contact_phone,
        status: status(p.status)?,
        event_types: p.event_types,
    })
}

fn required<T>(value: Option<T>, field: &'static str) -> Result<T, Error> {
    value.ok_or_else(|| Error::invalid("INVALID_ARGUMENT", field, format!("`{field}` is required")))
}

#[tonic::async_trait]
impl PartnerApi for PartnerGrpc {
    async fn create_partner(
        &self,
        request: Request<pb::CreatePartnerRequest>,
    ) -> Result<Response<pb::CreatePartnerResponse>, Status> {
        let partner = required(request.into_inner().partner, "partner")?;
        let row = self.0.create(fields(partner)?).await?;
        Ok(Response::new(pb::CreatePartnerResponse { partner: Some(partner_to_proto(row)) }))
    }

    async fn get_partner(
        &self,
        request: Request<pb::GetPartnerRequest>,
    ) -> Result<Response<pb::GetPartnerResponse>, Status> {
        let row = self.0.get(&request.into_inner().partner_id).await?;
        Ok(Response::new(pb::GetPartnerResponse { partner: Some(partner_to_proto(row)) }))
    }

    async fn list_partners(
        &self,
        request: Request<pb::ListPartnersRequest>,
    ) -> Result<Response<pb::ListPartnersResponse>, Status> {
        let r = request.into_inner();
        let (rows, next_page_token) = self.0.list(r.page_size, &r.page_token, &r.query, status(r.status)?).await?;
        Ok(Response::new(pb::ListPartnersResponse {
            partners: rows.into_iter().map(partner_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn update_partner(
        &self,
        request: Request<pb::UpdatePartnerRequest>,
    ) -> Result<Response<pb::UpdatePartnerResponse>, Status> {
        let r = request.into_inner();
        let partner = required(r.partner, "partner")?;
        let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
        let id = partner.id.clone();
        let row = self.0.update(&id, fields(partner)?, &paths).await?;
        Ok(Response::new(pb::UpdatePartnerResponse { partner: Some(partner_to_proto(row)) }))
    }

    async fn create_partner_api_key(
        &self,
        request: Request<pb::CreatePartnerApiKeyRequest>,
    ) -> Result<Response<pb::CreatePartnerApiKeyResponse>, Status> {
        let r = request.into_inner();
        let key = required(r.api_key, "api_key")?;
        let expires_at = match &key.expire_time {
            Some(t) => Some(from_timestamp(t).ok_or_else(|| {
                Error::invalid("INVALID_ARGUMENT", "api_key.expire_time", "expire_time is not a valid time")
            })?),
            None => None,
        };
        let (row, key) = self.0.create_key(&r.partner_id, &key.name, expires_at).await?;
        Ok(Response::new(pb::CreatePartnerApiKeyResponse { api_key: Some(key_to_proto(row)), key }))
    }

    async fn list_partner_api_keys(
        &self,
        request: Request<pb::ListPartnerApiKeysRequest>,
    ) -> Result<Response<pb::ListPartnerApiKeysResponse>, Status> {
        let r = request.into_inner();
        let (rows, next_page_token) = self.0.list_keys(&r.partner_id, r.page_size, &r.page_token).await?;
        Ok(Response::new(pb::ListPartnerApiKeysResponse {
            api_keys: rows.into_iter().map(key_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn revoke_partner_api_key(
        &self,
        request: Request<pb::RevokePartnerApiKeyRequest>,
    ) -> Result<Response<pb::RevokePartnerApiKeyResponse>, Status> {
        let r = request.into_inner();
        let row = self.0.revoke_key(&r.partner_id, &r.api_key_id).await?;
        Ok(Response::new(pb::RevokePartnerApiKeyResponse { api_key: Some(key_to_proto(row)) }))
    }
}
