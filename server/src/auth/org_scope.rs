//! Organization-scoped authorization, the second way through the auth layer's permission check.
//!
//! An `AUDIENCE_PERMISSION` method whose HTTP path names an organization (`{organization_id}`,
//! or `{organization.id}` / `{org_role.organization_id}` as `UpdateOrganization` and
//! `UpdateOrgRole` have it) admits a caller whose role *in that organization* gives the
//! permission, even without the permission globally. Every transport carries the same request
//! message, so the path binding only says which field to read. The request is
//! decoded with prost-reflect from the descriptors (the body is buffered for those methods
//! only), and the answer about the membership comes from [`OrgAccess`] (cached one second).
//!
//! Organization-bound credentials (an organization token, with `org_id`) never act globally:
//! they pass only on methods naming their own organization, and only while their user's current
//! role there still gives the permission.

use std::collections::HashMap;

use bytes::Bytes;
use prost_reflect::{
    DescriptorPool, DynamicMessage, Kind, MessageDescriptor, MethodDescriptor, Value,
};
use uuid::Uuid;

use crate::{
    auth::Principal,
    error::{Error, Result},
    org::{access::OrgAccess, org_not_found},
};

/// Where a method's request names its organization.
#[derive(Debug, Clone, PartialEq)]
enum OrgField {
    /// `organization_id` at the top.
    Direct,
    /// `<field>.<inner>` in a message field.
    Nested(String, String),
}

/// Largest request body buffered to find its organization.
const MAX_BODY: usize = 4 * 1024 * 1024;

pub struct OrgScope {
    access: OrgAccess,
    /// Request message and organization field of every org-scoped method, by gRPC path.
    methods: HashMap<String, (MessageDescriptor, OrgField)>,
}

/// The organization a method's HTTP path names (`{organization_id}`, `{organization.id}`,
/// `{org_role.organization_id}`): the resource the call acts on. A method whose path names no
/// organization (creating one, listing all) is judged on global permissions only, whatever its
/// body says.
fn org_field(method: &MethodDescriptor) -> Option<OrgField> {
    let ext = method
        .parent_pool()
        .get_extension_by_name("google.api.http")?;
    let options = method.options();
    if !options.has_extension(&ext) {
        return None;
    }
    let Value::Message(rule) = options.get_extension(&ext).into_owned() else {
        return None;
    };
    // The primary binding and the additional ones (`ListApiKeys` names the organization only in
    // `/v1/organizations/{organization_id}/apiKeys`): the request message is the same for all.
    let mut rules = vec![rule.clone()];
    if let Some(Value::List(more)) = rule
        .get_field_by_name("additional_bindings")
        .map(|v| v.into_owned())
    {
        rules.extend(more.into_iter().filter_map(|v| {
            if let Value::Message(m) = v {
                Some(m)
            } else {
                None
            }
        }));
    }
    let paths: Vec<String> = rules
        .iter()
        .filter_map(|rule| {
            ["get", "put", "post", "delete", "patch"]
                .iter()
                .find_map(|verb| {
                    rule.get_field_by_name(verb)
                        .and_then(|v| v.as_str().map(str::to_string))
                        .filter(|p| !p.is_empty())
                })
        })
        .collect();
    let vars = paths.iter().flat_map(|path| {
        path.split('{')
            .skip(1)
            .filter_map(|v| v.split(['}', '=']).next())
    });
    let input = method.input();
    for var in vars {
        match var.split_once('.') {
            None if var == "organization_id" => return Some(OrgField::Direct),
            Some((outer, inner))
                if inner == "organization_id" || (outer == "organization" && inner == "id") =>
            {
                let is_message = input
                    .get_field_by_name(outer)
                    .is_some_and(|f| matches!(f.kind(), Kind::Message(_)));
                return is_message.then(|| OrgField::Nested(outer.to_string(), inner.to_string()));
            }
            _ => {}
        }
    }
    None
}

impl OrgScope {
    /// Finds the org-scoped methods among the mgpass services.
    pub fn from_pool(pool: &DescriptorPool, access: OrgAccess) -> Self {
        let mut methods = HashMap::new();
        for service in pool
            .services()
            .filter(|s| s.full_name().starts_with("mgpass."))
        {
            for method in service.methods() {
                if let Some(field) = org_field(&method) {
                    methods.insert(
                        format!("/{}/{}", service.full_name(), method.name()),
                        (method.input(), field),
                    );
                }
            }
        }
        Self { access, methods }
    }

    /// Whether the method's request names an organization.
    pub fn applies(&self, path: &str) -> bool {
        self.methods.contains_key(path)
    }

    /// The organization a framed gRPC request body names; `None` when it names none (or a
    /// malformed id, or the body cannot be read: the call is then judged on global permissions
    /// alone, and the service reports the bad input).
    pub fn organization_of(&self, path: &str, body: &[u8]) -> Option<Uuid> {
        let (input, field) = self.methods.get(path)?;
        // One length-prefixed, uncompressed message (gRPC framing; the gateway frames REST too).
        if body.len() < 5 || body[0] != 0 {
            return None;
        }
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        let message = DynamicMessage::decode(input.clone(), body.get(5..5 + len)?).ok()?;
        let id = match field {
            OrgField::Direct => message
                .get_field_by_name("organization_id")?
                .as_str()?
                .to_string(),
            OrgField::Nested(outer, inner) => {
                let outer = message.get_field_by_name(outer)?;
                outer
                    .as_message()?
                    .get_field_by_name(inner)?
                    .as_str()?
                    .to_string()
            }
        };
        Uuid::parse_str(&id).ok()
    }

    /// Whether the principal may call a method needing `permission` on `org` (`None`: the
    /// request names no organization). Global holders pass everywhere; organization-bound
    /// credentials only in their organization; a user through their role there.
    ///
    /// A caller who is not a member of the organization named (or whose organization token is
    /// for another) gets `ORGANIZATION_NOT_FOUND`, as for an organization that does not exist:
    /// nothing tells a foreign organization's existence.
    pub async fn allows(
        &self,
        principal: &Principal,
        permission: &str,
        org: Option<Uuid>,
    ) -> Result<bool> {
        if let Some(bound) = principal.org_id {
            let Some(org) = org else { return Ok(false) };
            if org != bound {
                return Err(org_not_found());
            }
            let in_token = principal.scopes.iter().any(|s| s == permission);
            // An organization API key holds its scopes in its organization; no membership is
            // behind it (its subject is the organization itself).
            if principal.api_key_organization_id == Some(bound) {
                return Ok(in_token);
            }
            return Ok(in_token
                && self
                    .member_allows(principal.user_id, org, permission)
                    .await?);
        }
        if principal.has_permission(permission) {
            return Ok(true);
        }
        match org {
            Some(org) if principal.session_id.is_some() => {
                self.member_allows(principal.user_id, org, permission).await
            }
            _ => Ok(false),
        }
    }

    async fn member_allows(&self, user: Uuid, org: Uuid, permission: &str) -> Result<bool> {
        match self.access.grant(user, org).await? {
            Some(grant) => Ok(grant.permissions.contains(permission)),
            None => Err(org_not_found()),
        }
    }
}

/// Buffers a request body (up to [`MAX_BODY`]) so that it can be read and passed on.
pub async fn buffer(body: axum::body::Body) -> Result<Bytes> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        Error::invalid(
            "INVALID_ARGUMENT",
            "body",
            "the request body is unreadable or too large",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_organization_of_org_methods() {
        let pool = mgpass_proto::descriptor_pool();
        let find = |service: &str, method: &str| {
            let m = pool
                .get_service_by_name(service)
                .unwrap()
                .methods()
                .find(|m| m.name() == method)
                .unwrap();
            org_field(&m)
        };
        assert_eq!(
            find("mgpass.org.v1.OrganizationService", "GetOrganization"),
            Some(OrgField::Direct)
        );
        assert_eq!(
            find("mgpass.org.v1.OrganizationService", "UpdateOrganization"),
            Some(OrgField::Nested("organization".into(), "id".into()))
        );
        assert_eq!(
            find("mgpass.org.v1.OrgRoleService", "UpdateOrgRole"),
            Some(OrgField::Nested(
                "org_role".into(),
                "organization_id".into()
            ))
        );
        assert_eq!(
            find("mgpass.org.v1.OrganizationService", "ListOrganizations"),
            None
        );
        assert_eq!(
            find("mgpass.org.v1.OrganizationService", "CreateOrganization"),
            None
        );
        assert_eq!(
            find("mgpass.org.v1.OrganizationService", "ListFeatureFlags"),
            Some(OrgField::Direct)
        );
        assert_eq!(
            find("mgpass.org.v1.InvitationService", "RevokeInvitation"),
            Some(OrgField::Direct)
        );
    }

    #[test]
    fn reads_the_id_from_a_framed_request() {
        use prost::Message;
        let pool = mgpass_proto::descriptor_pool();
        let mut methods = HashMap::new();
        let m = pool
            .get_service_by_name("mgpass.org.v1.OrganizationService")
            .unwrap();
        let m = m
            .methods()
            .find(|m| m.name() == "UpdateOrganization")
            .unwrap();
        methods.insert("/x".to_string(), (m.input(), org_field(&m).unwrap()));
        let id = Uuid::new_v4();
        let req = mgpass_proto::org::UpdateOrganizationRequest {
            organization: Some(mgpass_proto::org::Organization {
                id: id.to_string(),
                ..Default::default()
            }),
            update_mask: None,
        };
        let bytes = req.encode_to_vec();
        let mut framed = vec![0u8];
        framed.extend((bytes.len() as u32).to_be_bytes());
        framed.extend(bytes);
        // A pool that never connects: reading the id needs no database.
        let db = crate::db::pool("postgres://nobody@127.0.0.1:1/none", 1).unwrap();
        let scope = OrgScope {
            access: OrgAccess::new(db),
            methods,
        };
        assert_eq!(scope.organization_of("/x", &framed), Some(id));
        assert_eq!(scope.organization_of("/x", &framed[..3]), None);
        assert_eq!(scope.organization_of("/y", &framed), None);
    }
}
