//! Serves `mgpass.access.v1.GroupService`.

use mgpass_proto::access::{self as pb, group_service_server::GroupService};
use tonic::{Request, Response, Status};

use crate::{
    access::{
        group_service::{Group, GroupFields, GroupService as Groups},
        group_store::MemberRow,
    },
    auth::principal,
    convert::timestamp,
    error::Error,
};

fn group_to_proto(g: Group) -> pb::Group {
    let row = g.row;
    pb::Group {
        id: row.id.to_string(),
        organization_id: row
            .organization_id
            .map(|o| o.to_string())
            .unwrap_or_default(),
        name: row.name,
        description: row.description,
        avatar_url: row.avatar_url,
        member_count: i32::try_from(g.member_count).unwrap_or(i32::MAX),
        create_time: Some(timestamp(row.created_at)),
        update_time: Some(timestamp(row.updated_at)),
    }
}

fn member_to_proto(m: MemberRow) -> pb::GroupMember {
    pb::GroupMember {
        group_id: m.group_id.to_string(),
        user_id: m.user_id.to_string(),
        email: m.email.unwrap_or_default(),
        display_name: m.full_name,
        adder_user_id: m.adder_user_id.map(|a| a.to_string()).unwrap_or_default(),
        create_time: Some(timestamp(m.created_at)),
    }
}

fn fields(g: pb::Group) -> GroupFields {
    GroupFields {
        organization_id: g.organization_id,
        name: g.name,
        description: g.description,
        avatar_url: g.avatar_url,
    }
}

fn required<T>(value: Option<T>, field: &'static str) -> Result<T, Error> {
    value.ok_or_else(|| Error::invalid("INVALID_ARGUMENT", field, format!("`{field}` is required")))
}

/// Serves `mgpass.access.v1.GroupService`.
pub struct GroupGrpc(pub Groups);

#[tonic::async_trait]
impl GroupService for GroupGrpc {
    async fn create_group(
        &self,
        request: Request<pb::CreateGroupRequest>,
    ) -> Result<Response<pb::CreateGroupResponse>, Status> {
        let group = required(request.into_inner().group, "group")?;
        let group = self.0.create(fields(group)).await?;
        Ok(Response::new(pb::CreateGroupResponse {
            group: Some(group_to_proto(group)),
        }))
    }

    async fn get_group(
        &self,
        request: Request<pb::GetGroupRequest>,
    ) -> Result<Response<pb::GetGroupResponse>, Status> {
        let req = request.into_inner();
        let group = self.0.get(&req.group_id, &req.organization_id).await?;
        Ok(Response::new(pb::GetGroupResponse {
            group: Some(group_to_proto(group)),
        }))
    }

    async fn list_groups(
        &self,
        request: Request<pb::ListGroupsRequest>,
    ) -> Result<Response<pb::ListGroupsResponse>, Status> {
        let req = request.into_inner();
        let (groups, next_page_token) = self
            .0
            .list(
                &req.organization_id,
                &req.query,
                &req.user_id,
                req.page_size,
                &req.page_token,
            )
            .await?;
        Ok(Response::new(pb::ListGroupsResponse {
            groups: groups.into_iter().map(group_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn update_group(
        &self,
        request: Request<pb::UpdateGroupRequest>,
    ) -> Result<Response<pb::UpdateGroupResponse>, Status> {
        let req = request.into_inner();
        let group = required(req.group, "group")?;
        let mask = required(req.update_mask, "update_mask")?;
        let id = group.id.clone();
        let group = self.0.update(&id, fields(group), &mask.paths).await?;
        Ok(Response::new(pb::UpdateGroupResponse {
            group: Some(group_to_proto(group)),
        }))
    }

    async fn delete_group(
        &self,
        request: Request<pb::DeleteGroupRequest>,
    ) -> Result<Response<pb::DeleteGroupResponse>, Status> {
        let req = request.into_inner();
        self.0.delete(&req.group_id, &req.organization_id).await?;
        Ok(Response::new(pb::DeleteGroupResponse {}))
    }

    async fn add_group_member(
        &self,
        request: Request<pb::AddGroupMemberRequest>,
    ) -> Result<Response<pb::AddGroupMemberResponse>, Status> {
        let adder = principal(&request).ok().map(|p| p.user_id);
        let req = request.into_inner();
        let member = self
            .0
            .add_member(&req.group_id, &req.organization_id, &req.user_id, adder)
            .await?;
        Ok(Response::new(pb::AddGroupMemberResponse {
            member: Some(member_to_proto(member)),
        }))
    }

    async fn remove_group_member(
        &self,
        request: Request<pb::RemoveGroupMemberRequest>,
    ) -> Result<Response<pb::RemoveGroupMemberResponse>, Status> {
        let req = request.into_inner();
        self.0
            .remove_member(&req.group_id, &req.organization_id, &req.user_id)
            .await?;
        Ok(Response::new(pb::RemoveGroupMemberResponse {}))
    }

    async fn list_group_members(
        &self,
        request: Request<pb::ListGroupMembersRequest>,
    ) -> Result<Response<pb::ListGroupMembersResponse>, Status> {
        let req = request.into_inner();
        let (rows, next_page_token) = self
            .0
            .members(
                &req.group_id,
                &req.organization_id,
                req.page_size,
                &req.page_token,
            )
            .await?;
        Ok(Response::new(pb::ListGroupMembersResponse {
            members: rows.into_iter().map(member_to_proto).collect(),
            next_page_token,
        }))
    }
}
