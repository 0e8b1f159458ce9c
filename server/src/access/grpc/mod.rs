//! The tonic adapters of access control: protobuf in, domain call, protobuf out. No rules here.

mod roles;

pub use roles::RoleGrpc;
