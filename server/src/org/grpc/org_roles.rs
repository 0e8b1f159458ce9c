//! Serves `mgpass.org.v1.OrgRoleService`.

use mgpass_proto::{
    oauth as oauth_pb,
    org::{self as pb, org_role_service_server::OrgRoleService},
};
use tonic::{Request, Response, Status};

use crate::{
    auth::principal,
    convert::timestamp,
    oauth::model::ResourceScopes,
    org::{
        grpc::required,
        org_role_service::{OrgRole, OrgRoleFields, OrgRoleService as Roles},
    },
};

fn role_to_proto(r: OrgRole) -> pb::OrgRole {
    let row = r.row;
    pb::OrgRole {
        scopes: row
            .resource_scopes()
            .into_iter()
            .map(|s| oauth_pb::ResourceScopes {
                resource: s.resource,
                scopes: s.scopes,
            })
            .collect(),
        id: row.id.to_string(),
        organization_id: row.organization_id.to_string(),
        name: row.name,
        description: row.description,
        system: row.system,
        member_count: i32::try_from(r.member_count).unwrap_or(i32::MAX),
        create_time: Some(timestamp(row.created_at)),
        update_time: Some(timestamp(row.updated_at)),
    }
}

fn role_fields(r: pb::OrgRole) -> OrgRoleFields {
    OrgRoleFields {
        name: r.name,
        description: r.description,
        scopes: r
            .scopes
            .into_iter()
            .map(|s| ResourceScopes {
                resource: s.resource,
                scopes: s.scopes,
            })
            .collect(),
    }
}

/// Serves `mgpass.org.v1.OrgRoleService`.
pub struct OrgRoleGrpc(pub Roles);

#[tonic::async_trait]
impl OrgRoleService for OrgRoleGrpc {
    async fn create_org_role(
        &self,
        request: Request<pb::CreateOrgRoleRequest>,
    ) -> Result<Response<pb::CreateOrgRoleResponse>, Status> {
        let caller = principal(&request)?.clone();
        let req = request.into_inner();
        let role = required(req.org_role, "org_role")?;
        let created = self
            .0
            .create(&caller, &req.organization_id, role_fields(role))
            .await?;
        Ok(Response::new(pb::CreateOrgRoleResponse {
            org_role: Some(role_to_proto(created)),
        }))
    }

    async fn get_org_role(
        &self,
        request: Request<pb::GetOrgRoleRequest>,
    ) -> Result<Response<pb::GetOrgRoleResponse>, Status> {
        let req = request.into_inner();
        let role = self.0.get(&req.organization_id, &req.org_role_id).await?;
        Ok(Response::new(pb::GetOrgRoleResponse {
            org_role: Some(role_to_proto(role)),
        }))
    }

    async fn list_org_roles(
        &self,
        request: Request<pb::ListOrgRolesRequest>,
    ) -> Result<Response<pb::ListOrgRolesResponse>, Status> {
        let req = request.into_inner();
        let (rows, next_page_token) = self
            .0
            .list(&req.organization_id, req.page_size, &req.page_token)
            .await?;
        Ok(Response::new(pb::ListOrgRolesResponse {
            org_roles: rows.into_iter().map(role_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn update_org_role(
        &self,
        request: Request<pb::UpdateOrgRoleRequest>,
    ) -> Result<Response<pb::UpdateOrgRoleResponse>, Status> {
        let caller = principal(&request)?.clone();
        let req = request.into_inner();
        let role = required(req.org_role, "org_role")?;
        let mask = required(req.update_mask, "update_mask")?;
        let (org, id) = (role.organization_id.clone(), role.id.clone());
        let updated = self
            .0
            .update(&caller, &org, &id, role_fields(role), &mask.paths)
            .await?;
        Ok(Response::new(pb::UpdateOrgRoleResponse {
            org_role: Some(role_to_proto(updated)),
        }))
    }

    async fn delete_org_role(
        &self,
        request: Request<pb::DeleteOrgRoleRequest>,
    ) -> Result<Response<pb::DeleteOrgRoleResponse>, Status> {
        let req = request.into_inner();
        self.0
            .delete(&req.organization_id, &req.org_role_id)
            .await?;
        Ok(Response::new(pb::DeleteOrgRoleResponse {}))
    }
}
