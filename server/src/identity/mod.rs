//! Identity: users, their credentials and sign-in.
//!
//! `store` holds the SQL, `service` the rules, `grpc` the tonic adapters; only `grpc` knows
//! protobuf types.

pub mod grpc;
pub mod identifiers;
pub mod policy;
pub mod profile_service;
pub mod registration;
pub mod second_factor;
pub mod service;
pub mod session_service;
pub mod session_store;
pub mod store;
pub mod verification;
pub mod verification_service;
pub mod verification_store;
