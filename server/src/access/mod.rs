//! Access control: roles (collections of scopes across API resources) and their assignments.
//! Organizations, groups, permissions and API keys join here with the access-control issue.

pub mod abac;
pub mod api_key_service;
pub mod api_key_store;
pub mod decision;
pub mod group_service;
pub mod group_store;
pub mod grpc;
pub mod names;
pub mod permission_service;
pub mod permission_store;
pub mod role_service;
pub mod role_store;
