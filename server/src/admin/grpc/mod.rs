//! The tonic adapters of administration: protobuf in, domain call, protobuf out. No rules here.

mod audit;

pub use audit::AuditGrpc;
