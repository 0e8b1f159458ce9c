//! Administration: the audit log (appended by one layer in the gRPC stack, read by admins).

pub mod audit_before;
pub mod audit_layer;
pub mod audit_redact;
pub mod audit_service;
pub mod audit_store;
pub mod grpc;
