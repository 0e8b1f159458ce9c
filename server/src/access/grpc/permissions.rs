//! Serves `mgpass.access.v1.PermissionService`.

use mgpass_proto::access::{
    self as pb, grantee::Kind as GranteeKind, permission_service_server::PermissionService,
    subject::Kind as SubjectKind,
};
use tonic::{Request, Response, Status};

use crate::{
    access::{
        decision::{Decision, Held, Source, Subject},
        permission_service::{
            Definition, Grant, Grantee, PermissionGroup, PermissionService as Permissions, Rule,
            RuleFields, parse_subject,
        },
    },
    auth::principal,
    convert::{struct_to_json, timestamp},
    error::Error,
};

fn required<T>(value: Option<T>, field: &'static str) -> Result<T, Error> {
    value.ok_or_else(|| Error::invalid("INVALID_ARGUMENT", field, format!("`{field}` is required")))
}

fn group_to_proto(g: PermissionGroup) -> pb::PermissionGroup {
    pb::PermissionGroup {
        id: g.row.id.to_string(),
        name: g.row.name,
        description: g.row.description,
        permissions: g
            .permissions
            .into_iter()
            .map(|p| pb::PermissionDefinition {
                name: p.name,
                description: p.description,
            })
            .collect(),
        create_time: Some(timestamp(g.row.created_at)),
        update_time: Some(timestamp(g.row.updated_at)),
    }
}

fn definitions(g: &pb::PermissionGroup) -> Vec<Definition> {
    g.permissions
        .iter()
        .map(|p| Definition {
            name: p.name.clone(),
            description: p.description.clone(),
        })
        .collect()
}

fn grantee(g: Option<pb::Grantee>) -> Option<Grantee> {
    Some(match g?.kind? {
        GranteeKind::RoleId(id) => Grantee::Role(id),
        GranteeKind::OrgRoleId(id) => Grantee::OrgRole(id),
        GranteeKind::UserId(id) => Grantee::User(id),
        GranteeKind::GroupId(id) => Grantee::Group(id),
        GranteeKind::OrganizationId(id) => Grantee::Organization(id),
    })
}

fn object(o: Option<pb::ObjectRef>) -> Option<(String, String)> {
    o.map(|o| (o.object_type, o.object_id))
}

fn object_ref(o: Option<(String, String)>) -> Option<pb::ObjectRef> {
    o.map(|(object_type, object_id)| pb::ObjectRef {
        object_type,
        object_id,
    })
}

fn grant_to_proto(g: Grant) -> pb::PermissionGrant {
    let r = g.row;
    let kind = match (
        r.role_id,
        r.org_role_id,
        r.user_id,
        r.group_id,
        r.organization_id,
    ) {
        (Some(id), ..) => Some(GranteeKind::RoleId(id.to_string())),
        (_, Some(id), ..) => Some(GranteeKind::OrgRoleId(id.to_string())),
        (_, _, Some(id), ..) => Some(GranteeKind::UserId(id.to_string())),
        (_, _, _, Some(id), _) => Some(GranteeKind::GroupId(id.to_string())),
        (.., Some(id)) => Some(GranteeKind::OrganizationId(id.to_string())),
        _ => None,
    };
    pb::PermissionGrant {
        id: r.id.to_string(),
        permission: g.permission,
        grantee: Some(pb::Grantee { kind }),
        object: object_ref((!r.object_type.is_empty()).then_some((r.object_type, r.object_id))),
        creator_user_id: r.creator_user_id.map(|c| c.to_string()).unwrap_or_default(),
        create_time: Some(timestamp(r.created_at)),
    }
}

fn rule_to_proto(r: Rule) -> pb::AbacRule {
    pb::AbacRule {
        id: r.row.id.to_string(),
        name: r.row.name,
        description: r.row.description,
        object_type: r.row.object_type,
        condition: r.row.condition,
        permissions: r.permissions,
        enabled: r.row.enabled,
        create_time: Some(timestamp(r.row.created_at)),
        update_time: Some(timestamp(r.row.updated_at)),
    }
}

fn rule_fields(r: pb::AbacRule) -> RuleFields {
    RuleFields {
        name: r.name,
        description: r.description,
        object_type: r.object_type,
        condition: r.condition,
        permissions: r.permissions,
        enabled: r.enabled,
    }
}

fn subject(s: Option<pb::Subject>) -> Result<Subject, Error> {
    let s = required(s, "subject")?;
    let (user, app) = match &s.kind {
        Some(SubjectKind::UserId(u)) => (Some(u.as_str()), None),
        Some(SubjectKind::ApplicationId(a)) => (None, Some(a.as_str())),
        None => (None, None),
    };
    Ok(parse_subject(user, app, &s.organization_id)?)
}

fn source(s: Source) -> pb::DecisionSource {
    match s {
        Source::User => pb::DecisionSource::User,
        Source::Group => pb::DecisionSource::Group,
        Source::Role => pb::DecisionSource::Role,
        Source::OrgRole => pb::DecisionSource::OrgRole,
        Source::Organization => pb::DecisionSource::Organization,
        Source::Rule => pb::DecisionSource::AbacRule,
    }
}

fn held_to_proto(h: Held) -> pb::HeldPermission {
    pb::HeldPermission {
        permission: h.permission,
        object: object_ref(h.object),
        source: source(h.source) as i32,
        permission_grant_id: h.grant_id.to_string(),
    }
}

fn json(s: Option<prost_types::Struct>) -> serde_json::Value {
    serde_json::Value::Object(s.map(struct_to_json).unwrap_or_default())
}

/// Serves `mgpass.access.v1.PermissionService`.
pub struct PermissionGrpc(pub Permissions);

#[tonic::async_trait]
impl PermissionService for PermissionGrpc {
    async fn create_permission_group(
        &self,
        request: Request<pb::CreatePermissionGroupRequest>,
    ) -> Result<Response<pb::CreatePermissionGroupResponse>, Status> {
        let g = required(request.into_inner().permission_group, "permission_group")?;
        let group = self
            .0
            .create_group(&g.name, &g.description, definitions(&g))
            .await?;
        Ok(Response::new(pb::CreatePermissionGroupResponse {
            permission_group: Some(group_to_proto(group)),
        }))
    }

    async fn get_permission_group(
        &self,
        request: Request<pb::GetPermissionGroupRequest>,
    ) -> Result<Response<pb::GetPermissionGroupResponse>, Status> {
        let group = self
            .0
            .get_group(&request.into_inner().permission_group_id)
            .await?;
        Ok(Response::new(pb::GetPermissionGroupResponse {
            permission_group: Some(group_to_proto(group)),
        }))
    }

    async fn list_permission_groups(
        &self,
        request: Request<pb::ListPermissionGroupsRequest>,
    ) -> Result<Response<pb::ListPermissionGroupsResponse>, Status> {
        let req = request.into_inner();
        let (groups, next_page_token) = self.0.list_groups(req.page_size, &req.page_token).await?;
        Ok(Response::new(pb::ListPermissionGroupsResponse {
            permission_groups: groups.into_iter().map(group_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn update_permission_group(
        &self,
        request: Request<pb::UpdatePermissionGroupRequest>,
    ) -> Result<Response<pb::UpdatePermissionGroupResponse>, Status> {
        let req = request.into_inner();
        let g = required(req.permission_group, "permission_group")?;
        let mask = required(req.update_mask, "update_mask")?;
        let defs = definitions(&g);
        let group = self
            .0
            .update_group(&g.id, g.description, defs, &mask.paths)
            .await?;
        Ok(Response::new(pb::UpdatePermissionGroupResponse {
            permission_group: Some(group_to_proto(group)),
        }))
    }

    async fn delete_permission_group(
        &self,
        request: Request<pb::DeletePermissionGroupRequest>,
    ) -> Result<Response<pb::DeletePermissionGroupResponse>, Status> {
        self.0
            .delete_group(&request.into_inner().permission_group_id)
            .await?;
        Ok(Response::new(pb::DeletePermissionGroupResponse {}))
    }

    async fn create_permission_grant(
        &self,
        request: Request<pb::CreatePermissionGrantRequest>,
    ) -> Result<Response<pb::CreatePermissionGrantResponse>, Status> {
        let creator = principal(&request).ok().map(|p| p.user_id);
        let g = required(request.into_inner().permission_grant, "permission_grant")?;
        let grant = self
            .0
            .create_grant(&g.permission, grantee(g.grantee), object(g.object), creator)
            .await?;
        Ok(Response::new(pb::CreatePermissionGrantResponse {
            permission_grant: Some(grant_to_proto(grant)),
        }))
    }

    async fn list_permission_grants(
        &self,
        request: Request<pb::ListPermissionGrantsRequest>,
    ) -> Result<Response<pb::ListPermissionGrantsResponse>, Status> {
        let req = request.into_inner();
        let (grants, next_page_token) = self
            .0
            .list_grants(
                &req.permission,
                grantee(req.grantee),
                object(req.object),
                req.page_size,
                &req.page_token,
            )
            .await?;
        Ok(Response::new(pb::ListPermissionGrantsResponse {
            permission_grants: grants.into_iter().map(grant_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn delete_permission_grant(
        &self,
        request: Request<pb::DeletePermissionGrantRequest>,
    ) -> Result<Response<pb::DeletePermissionGrantResponse>, Status> {
        self.0
            .delete_grant(&request.into_inner().permission_grant_id)
            .await?;
        Ok(Response::new(pb::DeletePermissionGrantResponse {}))
    }

    async fn create_abac_rule(
        &self,
        request: Request<pb::CreateAbacRuleRequest>,
    ) -> Result<Response<pb::CreateAbacRuleResponse>, Status> {
        let r = required(request.into_inner().abac_rule, "abac_rule")?;
        let rule = self.0.create_rule(rule_fields(r)).await?;
        Ok(Response::new(pb::CreateAbacRuleResponse {
            abac_rule: Some(rule_to_proto(rule)),
        }))
    }

    async fn get_abac_rule(
        &self,
        request: Request<pb::GetAbacRuleRequest>,
    ) -> Result<Response<pb::GetAbacRuleResponse>, Status> {
        let rule = self.0.get_rule(&request.into_inner().abac_rule_id).await?;
        Ok(Response::new(pb::GetAbacRuleResponse {
            abac_rule: Some(rule_to_proto(rule)),
        }))
    }

    async fn list_abac_rules(
        &self,
        request: Request<pb::ListAbacRulesRequest>,
    ) -> Result<Response<pb::ListAbacRulesResponse>, Status> {
        let req = request.into_inner();
        let (rules, next_page_token) = self
            .0
            .list_rules(&req.object_type, req.page_size, &req.page_token)
            .await?;
        Ok(Response::new(pb::ListAbacRulesResponse {
            abac_rules: rules.into_iter().map(rule_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn update_abac_rule(
        &self,
        request: Request<pb::UpdateAbacRuleRequest>,
    ) -> Result<Response<pb::UpdateAbacRuleResponse>, Status> {
        let req = request.into_inner();
        let r = required(req.abac_rule, "abac_rule")?;
        let mask = required(req.update_mask, "update_mask")?;
        let id = r.id.clone();
        let rule = self.0.update_rule(&id, rule_fields(r), &mask.paths).await?;
        Ok(Response::new(pb::UpdateAbacRuleResponse {
            abac_rule: Some(rule_to_proto(rule)),
        }))
    }

    async fn delete_abac_rule(
        &self,
        request: Request<pb::DeleteAbacRuleRequest>,
    ) -> Result<Response<pb::DeleteAbacRuleResponse>, Status> {
        self.0
            .delete_rule(&request.into_inner().abac_rule_id)
            .await?;
        Ok(Response::new(pb::DeleteAbacRuleResponse {}))
    }

    async fn check_permission(
        &self,
        request: Request<pb::CheckPermissionRequest>,
    ) -> Result<Response<pb::CheckPermissionResponse>, Status> {
        let req = request.into_inner();
        let subject = subject(req.subject)?;
        let decision = self
            .0
            .check(
                subject,
                &req.permission,
                object(req.object),
                &json(req.object_attributes),
                &json(req.context),
            )
            .await?;
        let mut answer = pb::CheckPermissionResponse::default();
        match decision {
            Decision::Denied => {}
            Decision::Grant {
                grant_id,
                source: s,
            } => {
                answer.allowed = true;
                answer.source = source(s) as i32;
                answer.permission_grant_id = grant_id.to_string();
            }
            Decision::Rule { rule_id } => {
                answer.allowed = true;
                answer.source = pb::DecisionSource::AbacRule as i32;
                answer.abac_rule_id = rule_id.to_string();
            }
        }
        Ok(Response::new(answer))
    }

    async fn list_permissions(
        &self,
        request: Request<pb::ListPermissionsRequest>,
    ) -> Result<Response<pb::ListPermissionsResponse>, Status> {
        let req = request.into_inner();
        let subject = subject(req.subject)?;
        let (held, next_page_token) = self.0.held(subject, req.page_size, &req.page_token).await?;
        Ok(Response::new(pb::ListPermissionsResponse {
            permissions: held.into_iter().map(held_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn list_objects(
        &self,
        request: Request<pb::ListObjectsRequest>,
    ) -> Result<Response<pb::ListObjectsResponse>, Status> {
        let req = request.into_inner();
        let subject = subject(req.subject)?;
        let (object_ids, next_page_token, all_objects, rules) = self
            .0
            .objects(
                subject,
                &req.permission,
                &req.object_type,
                req.page_size,
                &req.page_token,
            )
            .await?;
        Ok(Response::new(pb::ListObjectsResponse {
            object_ids,
            next_page_token,
            all_objects,
            abac_rule_ids: rules.into_iter().map(|r| r.to_string()).collect(),
        }))
    }
}
