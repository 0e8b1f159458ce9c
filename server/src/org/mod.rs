//! Organizations (tenants): organizations with custom properties, members holding one
//! organization role each, organization roles (the system roles owner, admin, member, viewer and
//! custom ones), invitations by email and feature flags.
//!
//! Each part has its `*_store.rs` (SQL), `*_service.rs` (rules) and a `grpc/` adapter.
//! [`access::OrgAccess`] answers the auth layer's question "does this user's role in this
//! organization give this permission" (see `docs/architecture.md`, Authorization).
//!
//! Lock order, shared by every writer: the organization row, then roles, then members and
//! invitations. Every change of membership or ownership locks the organization row first, so
//! they run one at a time per organization.

pub mod access;
pub mod cursor;
pub mod flag_service;
pub mod flag_store;
pub mod grpc;
pub mod invitation_service;
pub mod invitation_store;
pub mod org_role_service;
pub mod org_role_store;
pub mod org_store;
pub mod organization_service;
pub mod permissions;

use uuid::Uuid;

use crate::error::{Error, Result};

pub(crate) fn parse_id(id: &str, field: &'static str) -> Result<Uuid> {
    Uuid::parse_str(id)
        .map_err(|_| Error::invalid("INVALID_ID", field, format!("`{id}` is not a valid id")))
}

pub(crate) fn parse_org_id(id: &str) -> Result<Uuid> {
    parse_id(id, "organization_id")
}

pub(crate) fn org_not_found() -> Error {
    Error::not_found("ORGANIZATION_NOT_FOUND", "no such organization")
}

pub(crate) fn failed(reason: &'static str, message: impl Into<String>) -> Error {
    Error::FailedPrecondition {
        reason,
        message: message.into(),
    }
}

/// A letter, then letters, digits, `_`, `.` or `-`, at most 64 characters (role and flag names).
pub(crate) fn check_name(name: &str, field: &'static str) -> Result<()> {
    let mut bytes = name.bytes();
    let valid = name.len() <= 64
        && bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !valid {
        return Err(Error::invalid(
            "INVALID_ARGUMENT",
            field,
            format!(
                "`{name}` is not a valid name: a letter, then letters, digits, `_`, `.` or `-`, at most 64"
            ),
        ));
    }
    Ok(())
}

/// A user's memberships as the `orgs` claim of their tokens (`[{id, role}]`).
pub async fn org_claims(
    conn: &mut diesel_async::AsyncPgConnection,
    user: Uuid,
) -> Result<Vec<crate::auth::tokens::OrgClaim>> {
    Ok(org_store::memberships_of(conn, user)
        .await?
        .into_iter()
        .map(|m| crate::auth::tokens::OrgClaim {
            id: m.organization_id.to_string(),
            role: m.role,
        })
        .collect())
}

/// What a member's organization role gives in organization tokens: the role's name and its
/// scopes by resource; `None` when the user is not a member. Both ways to an organization token
/// (the token exchange and `/oauth2/authorize` with `organization`) and refreshes use it.
pub async fn member_token_scopes(
    conn: &mut diesel_async::AsyncPgConnection,
    organization: Uuid,
    user: Uuid,
) -> Result<Option<(String, Vec<crate::oauth::model::ResourceScopes>)>> {
    let Some(member) = org_store::get_member(conn, organization, user).await? else {
        return Ok(None);
    };
    let Some(role) = org_role_store::by_name(conn, organization, &member.role).await? else {
        return Ok(None);
    };
    Ok(Some((
        member.role,
        permissions::token_scopes(&role.name, role.system, &role.resource_scopes()),
    )))
}
