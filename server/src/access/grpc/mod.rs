//! The tonic adapters of access control: protobuf in, domain call, protobuf out. No rules here.

mod api_keys;
mod groups;
mod permissions;
mod roles;

pub use api_keys::ApiKeyGrpc;
pub use groups::GroupGrpc;
pub use permissions::PermissionGrpc;
pub use roles::RoleGrpc;
