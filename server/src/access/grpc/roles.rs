//! Serves `mgpass.access.v1.RoleService`.

use mgpass_proto::{
    access::{
        self as pb, role_assignment::Assignee as PbAssignee, role_service_server::RoleService,
    },
    oauth as oauth_pb,
};
use tonic::{Request, Response, Status};

use crate::{
    access::{
        role_service::{
            Assignee, RoleAssignment, RoleFields, RoleQuery, RoleService as Roles, RoleUpdate,
        },
        role_store::RoleRow,
    },
    convert::timestamp,
    error::Error,
    oauth::model::ResourceScopes,
};

fn role_to_proto(row: RoleRow) -> pb::Role {
    pb::Role {
        scopes: row
            .resource_scopes()
            .into_iter()
            .map(|r| oauth_pb::ResourceScopes {
                resource: r.resource,
                scopes: r.scopes,
            })
            .collect(),
        id: row.id.to_string(),
        name: row.name,
        description: row.description,
        default_for_new_users: row.default_for_new_users,
        m2m_only: row.m2m_only,
        system: row.system,
        create_time: Some(timestamp(row.created_at)),
        update_time: Some(timestamp(row.updated_at)),
    }
}

fn role_fields(role: pb::Role) -> RoleFields {
    RoleFields {
        name: role.name,
        description: role.description,
        scopes: role
            .scopes
            .into_iter()
            .map(|r| ResourceScopes {
                resource: r.resource,
                scopes: r.scopes,
            })
            .collect(),
        default_for_new_users: role.default_for_new_users,
        m2m_only: role.m2m_only,
    }
}

fn assignment_to_proto(a: RoleAssignment) -> pb::RoleAssignment {
    pb::RoleAssignment {
        role_id: a.role_id.to_string(),
        assignee: Some(match a.assignee {
            Assignee::User(id) => PbAssignee::UserId(id.to_string()),
            Assignee::Application(id) => PbAssignee::ApplicationId(id.to_string()),
        }),
        create_time: a.assigned_at.map(timestamp),
    }
}

fn required<T>(value: Option<T>, field: &'static str) -> Result<T, Error> {
    value.ok_or_else(|| Error::invalid("INVALID_ARGUMENT", field, format!("`{field}` is required")))
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// Serves `mgpass.access.v1.RoleService`.
pub struct RoleGrpc(pub Roles);

#[tonic::async_trait]
impl RoleService for RoleGrpc {
    async fn create_role(
        &self,
        request: Request<pb::CreateRoleRequest>,
    ) -> Result<Response<pb::CreateRoleResponse>, Status> {
        let role = required(request.into_inner().role, "role")?;
        let row = self.0.create(role_fields(role)).await?;
        Ok(Response::new(pb::CreateRoleResponse {
            role: Some(role_to_proto(row)),
        }))
    }

    async fn get_role(
        &self,
        request: Request<pb::GetRoleRequest>,
    ) -> Result<Response<pb::GetRoleResponse>, Status> {
        let row = self.0.get(&request.into_inner().role_id).await?;
        Ok(Response::new(pb::GetRoleResponse {
            role: Some(role_to_proto(row)),
        }))
    }

    async fn list_roles(
        &self,
        request: Request<pb::ListRolesRequest>,
    ) -> Result<Response<pb::ListRolesResponse>, Status> {
        let req = request.into_inner();
        let query = RoleQuery {
            query: non_empty(req.query),
            user_id: non_empty(req.user_id),
            application_id: non_empty(req.application_id),
        };
        let (rows, next_page_token) = self.0.list(query, req.page_size, &req.page_token).await?;
        Ok(Response::new(pb::ListRolesResponse {
            roles: rows.into_iter().map(role_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn update_role(
        &self,
        request: Request<pb::UpdateRoleRequest>,
    ) -> Result<Response<pb::UpdateRoleResponse>, Status> {
        let req = request.into_inner();
        let role = required(req.role, "role")?;
        let mask = required(req.update_mask, "update_mask")?;
        let id = role.id.clone();
        let row = self
            .0
            .update(
                &id,
                RoleUpdate {
                    fields: role_fields(role),
                    paths: mask.paths,
                },
            )
            .await?;
        Ok(Response::new(pb::UpdateRoleResponse {
            role: Some(role_to_proto(row)),
        }))
    }

    async fn delete_role(
        &self,
        request: Request<pb::DeleteRoleRequest>,
    ) -> Result<Response<pb::DeleteRoleResponse>, Status> {
        self.0.delete(&request.into_inner().role_id).await?;
        Ok(Response::new(pb::DeleteRoleResponse {}))
    }

    async fn assign_role(
        &self,
        request: Request<pb::AssignRoleRequest>,
    ) -> Result<Response<pb::AssignRoleResponse>, Status> {
        let req = request.into_inner();
        self.0
            .assign(&req.role_id, &req.user_ids, &req.application_ids)
            .await?;
        Ok(Response::new(pb::AssignRoleResponse {}))
    }

    async fn unassign_role(
        &self,
        request: Request<pb::UnassignRoleRequest>,
    ) -> Result<Response<pb::UnassignRoleResponse>, Status> {
        let req = request.into_inner();
        self.0
            .unassign(&req.role_id, &req.user_ids, &req.application_ids)
            .await?;
        Ok(Response::new(pb::UnassignRoleResponse {}))
    }

    async fn list_role_assignments(
        &self,
        request: Request<pb::ListRoleAssignmentsRequest>,
    ) -> Result<Response<pb::ListRoleAssignmentsResponse>, Status> {
        let req = request.into_inner();
        let (rows, next_page_token) = self
            .0
            .list_assignments(&req.role_id, req.page_size, &req.page_token)
            .await?;
        Ok(Response::new(pb::ListRoleAssignmentsResponse {
            assignments: rows.into_iter().map(assignment_to_proto).collect(),
            next_page_token,
        }))
    }
}
