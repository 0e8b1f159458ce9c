//! Identity: users, their credentials and sign-in.
//!
//! `store` holds the SQL, `service` the rules, `grpc` the tonic adapters; only `grpc` knows
//! protobuf types.

pub mod grpc;
pub mod identifiers;
pub mod service;
pub mod store;
