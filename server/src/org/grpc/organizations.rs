//! Serves `mgpass.org.v1.OrganizationService`.

use mgpass_proto::org::{
    self as pb, feature_flag::Value as PbFlagValue,
    organization_service_server::OrganizationService,
};
use tonic::{Request, Response, Status};

use crate::{
    auth::principal,
    convert::{json_to_struct, struct_to_json, timestamp},
    org::{
        flag_service::{FlagService, FlagValue},
        flag_store::FlagRow,
        grpc::{non_empty, required},
        org_store::{MemberFilter, MemberView},
        organization_service::{OrgFields, Organization, OrganizationService as Orgs},
    },
};

pub(crate) fn organization_to_proto(o: Organization) -> pb::Organization {
    let row = o.row;
    pb::Organization {
        id: row.id.to_string(),
        name: row.name,
        description: row.description,
        avatar_url: row.avatar_url,
        owner_user_id: row.owner_user_id.to_string(),
        properties: Some(json_to_struct(
            row.properties.as_object().cloned().unwrap_or_default(),
        )),
        member_count: i32::try_from(o.member_count).unwrap_or(i32::MAX),
        create_time: Some(timestamp(row.created_at)),
        update_time: Some(timestamp(row.updated_at)),
    }
}

pub(crate) fn member_to_proto(m: MemberView) -> pb::OrganizationMember {
    pb::OrganizationMember {
        organization_id: m.member.organization_id.to_string(),
        user_id: m.member.user_id.to_string(),
        role: m.member.role,
        email: m.email.unwrap_or_default(),
        display_name: m.display_name,
        avatar_url: m.avatar_url,
        create_time: Some(timestamp(m.member.created_at)),
    }
}

fn flag_to_proto(f: FlagRow) -> pb::FeatureFlag {
    pb::FeatureFlag {
        name: f.name,
        value: match (f.bool_value, f.string_value) {
            (Some(b), _) => Some(PbFlagValue::BoolValue(b)),
            (None, Some(s)) => Some(PbFlagValue::StringValue(s)),
            (None, None) => None,
        },
        include_in_token: f.include_in_token,
        update_time: Some(timestamp(f.updated_at)),
    }
}

fn org_fields(o: pb::Organization) -> OrgFields {
    OrgFields {
        name: o.name,
        description: o.description,
        avatar_url: o.avatar_url,
        properties: o.properties.map(struct_to_json).unwrap_or_default(),
    }
}

/// Serves `mgpass.org.v1.OrganizationService`.
pub struct OrganizationGrpc {
    pub orgs: Orgs,
    pub flags: FlagService,
}

#[tonic::async_trait]
impl OrganizationService for OrganizationGrpc {
    async fn create_organization(
        &self,
        request: Request<pb::CreateOrganizationRequest>,
    ) -> Result<Response<pb::CreateOrganizationResponse>, Status> {
        let req = request.into_inner();
        let org = required(req.organization, "organization")?;
        let created = self
            .orgs
            .create(&req.owner_user_id, org_fields(org))
            .await?;
        Ok(Response::new(pb::CreateOrganizationResponse {
            organization: Some(organization_to_proto(created)),
        }))
    }

    async fn create_my_organization(
        &self,
        request: Request<pb::CreateMyOrganizationRequest>,
    ) -> Result<Response<pb::CreateMyOrganizationResponse>, Status> {
        let caller = principal(&request)?.clone();
        let org = required(request.into_inner().organization, "organization")?;
        let created = self.orgs.create_mine(&caller, org_fields(org)).await?;
        Ok(Response::new(pb::CreateMyOrganizationResponse {
            organization: Some(organization_to_proto(created)),
        }))
    }

    async fn get_organization(
        &self,
        request: Request<pb::GetOrganizationRequest>,
    ) -> Result<Response<pb::GetOrganizationResponse>, Status> {
        let org = self.orgs.get(&request.into_inner().organization_id).await?;
        Ok(Response::new(pb::GetOrganizationResponse {
            organization: Some(organization_to_proto(org)),
        }))
    }

    async fn list_organizations(
        &self,
        request: Request<pb::ListOrganizationsRequest>,
    ) -> Result<Response<pb::ListOrganizationsResponse>, Status> {
        let req = request.into_inner();
        let (rows, next_page_token) = self
            .orgs
            .list(
                non_empty(req.query),
                non_empty(req.user_id),
                req.page_size,
                &req.page_token,
            )
            .await?;
        Ok(Response::new(pb::ListOrganizationsResponse {
            organizations: rows.into_iter().map(organization_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn list_my_organizations(
        &self,
        request: Request<pb::ListMyOrganizationsRequest>,
    ) -> Result<Response<pb::ListMyOrganizationsResponse>, Status> {
        let caller = principal(&request)?.clone();
        let req = request.into_inner();
        let (rows, next_page_token) = self
            .orgs
            .list_mine(&caller, req.page_size, &req.page_token)
            .await?;
        Ok(Response::new(pb::ListMyOrganizationsResponse {
            memberships: rows
                .into_iter()
                .map(|(org, m)| pb::OrganizationMembership {
                    organization: Some(organization_to_proto(org)),
                    role: m.role,
                    join_time: Some(timestamp(m.joined_at)),
                })
                .collect(),
            next_page_token,
        }))
    }

    async fn update_organization(
        &self,
        request: Request<pb::UpdateOrganizationRequest>,
    ) -> Result<Response<pb::UpdateOrganizationResponse>, Status> {
        let req = request.into_inner();
        let org = required(req.organization, "organization")?;
        let mask = required(req.update_mask, "update_mask")?;
        let id = org.id.clone();
        let updated = self.orgs.update(&id, org_fields(org), &mask.paths).await?;
        Ok(Response::new(pb::UpdateOrganizationResponse {
            organization: Some(organization_to_proto(updated)),
        }))
    }

    async fn delete_organization(
        &self,
        request: Request<pb::DeleteOrganizationRequest>,
    ) -> Result<Response<pb::DeleteOrganizationResponse>, Status> {
        self.orgs
            .delete(&request.into_inner().organization_id)
            .await?;
        Ok(Response::new(pb::DeleteOrganizationResponse {}))
    }

    async fn list_organization_members(
        &self,
        request: Request<pb::ListOrganizationMembersRequest>,
    ) -> Result<Response<pb::ListOrganizationMembersResponse>, Status> {
        let req = request.into_inner();
        let filter = MemberFilter {
            role: non_empty(req.role),
            query: non_empty(req.query),
        };
        let (rows, next_page_token) = self
            .orgs
            .list_members(&req.organization_id, filter, req.page_size, &req.page_token)
            .await?;
        Ok(Response::new(pb::ListOrganizationMembersResponse {
            members: rows.into_iter().map(member_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn add_organization_member(
        &self,
        request: Request<pb::AddOrganizationMemberRequest>,
    ) -> Result<Response<pb::AddOrganizationMemberResponse>, Status> {
        let caller = principal(&request)?.clone();
        let req = request.into_inner();
        let member = required(req.member, "member")?;
        let added = self
            .orgs
            .add_member(&caller, &req.organization_id, &member.user_id, &member.role)
            .await?;
        Ok(Response::new(pb::AddOrganizationMemberResponse {
            member: Some(member_to_proto(added)),
        }))
    }

    async fn update_organization_member(
        &self,
        request: Request<pb::UpdateOrganizationMemberRequest>,
    ) -> Result<Response<pb::UpdateOrganizationMemberResponse>, Status> {
        let caller = principal(&request)?.clone();
        let req = request.into_inner();
        let member = required(req.member, "member")?;
        let mask = required(req.update_mask, "update_mask")?;
        let updated = self
            .orgs
            .update_member(
                &caller,
                &req.organization_id,
                &member.user_id,
                &member.role,
                &mask.paths,
            )
            .await?;
        Ok(Response::new(pb::UpdateOrganizationMemberResponse {
            member: Some(member_to_proto(updated)),
        }))
    }

    async fn remove_organization_member(
        &self,
        request: Request<pb::RemoveOrganizationMemberRequest>,
    ) -> Result<Response<pb::RemoveOrganizationMemberResponse>, Status> {
        let caller = principal(&request)?.clone();
        let req = request.into_inner();
        self.orgs
            .remove_member(&caller, &req.organization_id, &req.user_id)
            .await?;
        Ok(Response::new(pb::RemoveOrganizationMemberResponse {}))
    }

    async fn transfer_ownership(
        &self,
        request: Request<pb::TransferOwnershipRequest>,
    ) -> Result<Response<pb::TransferOwnershipResponse>, Status> {
        let caller = principal(&request)?.clone();
        let req = request.into_inner();
        let org = self
            .orgs
            .transfer(&caller, &req.organization_id, &req.new_owner_user_id)
            .await?;
        Ok(Response::new(pb::TransferOwnershipResponse {
            organization: Some(organization_to_proto(org)),
        }))
    }

    async fn leave_organization(
        &self,
        request: Request<pb::LeaveOrganizationRequest>,
    ) -> Result<Response<pb::LeaveOrganizationResponse>, Status> {
        let caller = principal(&request)?.clone();
        self.orgs
            .leave(&caller, &request.into_inner().organization_id)
            .await?;
        Ok(Response::new(pb::LeaveOrganizationResponse {}))
    }

    async fn list_feature_flags(
        &self,
        request: Request<pb::ListFeatureFlagsRequest>,
    ) -> Result<Response<pb::ListFeatureFlagsResponse>, Status> {
        let req = request.into_inner();
        let (rows, next_page_token) = self
            .flags
            .list(&req.organization_id, req.page_size, &req.page_token)
            .await?;
        Ok(Response::new(pb::ListFeatureFlagsResponse {
            feature_flags: rows.into_iter().map(flag_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn set_feature_flag(
        &self,
        request: Request<pb::SetFeatureFlagRequest>,
    ) -> Result<Response<pb::SetFeatureFlagResponse>, Status> {
        let req = request.into_inner();
        let flag = required(req.feature_flag, "feature_flag")?;
        let value = flag.value.map(|v| match v {
            PbFlagValue::BoolValue(b) => FlagValue::Bool(b),
            PbFlagValue::StringValue(s) => FlagValue::String(s),
        });
        let row = self
            .flags
            .set(
                &req.organization_id,
                &flag.name,
                value,
                flag.include_in_token,
            )
            .await?;
        Ok(Response::new(pb::SetFeatureFlagResponse {
            feature_flag: Some(flag_to_proto(row)),
        }))
    }

    async fn delete_feature_flag(
        &self,
        request: Request<pb::DeleteFeatureFlagRequest>,
    ) -> Result<Response<pb::DeleteFeatureFlagResponse>, Status> {
        let req = request.into_inner();
        self.flags.delete(&req.organization_id, &req.name).await?;
        Ok(Response::new(pb::DeleteFeatureFlagResponse {}))
    }
}
