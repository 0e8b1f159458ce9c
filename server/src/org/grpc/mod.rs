//! The tonic adapters of organizations: protobuf in, domain call, protobuf out. No rules here.

mod invitations;
mod org_roles;
mod organizations;

pub use invitations::InvitationGrpc;
pub use org_roles::OrgRoleGrpc;
pub use organizations::OrganizationGrpc;

use crate::error::Error;

fn required<T>(value: Option<T>, field: &'static str) -> Result<T, Error> {
    value.ok_or_else(|| Error::invalid("INVALID_ARGUMENT", field, format!("`{field}` is required")))
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}
