//! Access control: roles (collections of scopes across API resources) and their assignments.
//! Organizations, groups, permissions and API keys join here with the access-control issue.

pub mod grpc;
pub mod role_service;
pub mod role_store;
