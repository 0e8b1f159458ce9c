//! What an organization role lets its holder do in its organization. The four system roles have
//! fixed mgpass permissions (documented on `mgpass.org.v1.OrgRole`); any role adds the scopes of
//! the mgpass API resource it lists. Pure functions: the auth layer and the services share them.

use std::{collections::BTreeSet, sync::OnceLock};

use crate::oauth::{
    api_resource_service::{SYSTEM_INDICATOR, mgpass_permission_scopes},
    model::ResourceScopes,
};

pub const OWNER: &str = "owner";
pub const ADMIN: &str = "admin";
pub const MEMBER: &str = "member";
pub const VIEWER: &str = "viewer";
/// The system roles, in the order they are listed.
pub const SYSTEM_ROLES: [&str; 4] = [OWNER, ADMIN, MEMBER, VIEWER];

/// Only the owner holds these; no other role may list them.
pub const OWNER_ONLY: [&str; 2] = ["org.organizations.delete", "org.organizations.transfer"];

/// The admin's permissions: these, plus every permission the descriptors declare under these
/// prefixes (`org.members.*`, ...), so a new RPC of those families is covered at once.
const ADMIN_EXPLICIT: &[&str] = &[
    "org.organizations.read",
    "org.organizations.update",
    "org.feature_flags.read",
    "admin.audit_events.read",
];
const ADMIN_FAMILIES: &[&str] = &[
    "org.members.",
    "org.invitations.",
    "org.roles.",
    "access.groups.",
    "access.api_keys.",
];
const MEMBER_PERMISSIONS: &[&str] = &[
    "org.organizations.read",
    "org.members.read",
    "org.roles.read",
    "access.groups.read",
];
const VIEWER_PERMISSIONS: &[&str] = &["org.organizations.read"];

fn admin_permissions() -> &'static [String] {
    static ADMIN: OnceLock<Vec<String>> = OnceLock::new();
    ADMIN.get_or_init(|| {
        let mut out: BTreeSet<String> = ADMIN_EXPLICIT.iter().map(|s| s.to_string()).collect();
        for scope in mgpass_permission_scopes() {
            if ADMIN_FAMILIES.iter().any(|f| scope.name.starts_with(f)) {
                out.insert(scope.name.clone());
            }
        }
        out.into_iter().collect()
    })
}

/// The fixed permissions of a system role (empty for custom roles).
pub fn system_permissions(role: &str) -> Vec<String> {
    let own = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match role {
        OWNER => admin_permissions()
            .iter()
            .cloned()
            .chain(own(&OWNER_ONLY))
            .collect(),
        ADMIN => admin_permissions().to_vec(),
        MEMBER => own(MEMBER_PERMISSIONS),
        VIEWER => own(VIEWER_PERMISSIONS),
        _ => Vec::new(),
    }
}

pub fn is_system(role: &str) -> bool {
    SYSTEM_ROLES.contains(&role)
}

/// Every mgpass permission a role gives: the fixed ones of a system role and the mgpass scopes
/// it lists. The owner-only permissions never come from a listed scope.
pub fn effective_permissions(
    role: &str,
    system: bool,
    scopes: &[ResourceScopes],
) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = if system {
        system_permissions(role).into_iter().collect()
    } else {
        BTreeSet::new()
    };
    for s in scopes
        .iter()
        .filter(|r| r.resource == SYSTEM_INDICATOR)
        .flat_map(|r| r.scopes.iter())
    {
        if !OWNER_ONLY.contains(&s.as_str()) {
            out.insert(s.clone());
        }
    }
    out
}

/// Every scope a role gives in organization tokens, by resource: what it lists, plus (for the
/// mgpass resource) its effective permissions.
pub fn token_scopes(role: &str, system: bool, scopes: &[ResourceScopes]) -> Vec<ResourceScopes> {
    let mut out: Vec<ResourceScopes> = scopes
        .iter()
        .filter(|r| r.resource != SYSTEM_INDICATOR)
        .cloned()
        .collect();
    let mgpass: Vec<String> = effective_permissions(role, system, scopes)
        .into_iter()
        .collect();
    if !mgpass.is_empty() {
        out.push(ResourceScopes {
            resource: SYSTEM_INDICATOR.to_string(),
            scopes: mgpass,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_roles_nest() {
        let owner = effective_permissions(OWNER, true, &[]);
        let admin = effective_permissions(ADMIN, true, &[]);
        let member = effective_permissions(MEMBER, true, &[]);
        let viewer = effective_permissions(VIEWER, true, &[]);
        assert!(viewer.is_subset(&member) && member.is_subset(&admin) && admin.is_subset(&owner));
        assert!(
            owner.contains("org.organizations.transfer")
                && !admin.contains("org.organizations.transfer")
        );
        assert!(!admin.contains("org.feature_flags.update"));
        for p in [
            "org.members.delete",
            "org.invitations.revoke",
            "org.roles.create",
            "access.api_keys.rotate",
        ] {
            assert!(admin.contains(p), "{p}");
        }
    }

    #[test]
    fn custom_roles_get_their_mgpass_scopes_but_never_owner_ones() {
        let scopes = vec![
            ResourceScopes {
                resource: "mgpass".into(),
                scopes: vec!["org.members.read".into(), "org.organizations.delete".into()],
            },
            ResourceScopes {
                resource: "https://api".into(),
                scopes: vec!["read".into()],
            },
        ];
        let p = effective_permissions("auditor", false, &scopes);
        assert_eq!(
            p.into_iter().collect::<Vec<_>>(),
            vec!["org.members.read".to_string()]
        );
        let t = token_scopes("auditor", false, &scopes);
        assert_eq!(t.len(), 2);
    }
}
