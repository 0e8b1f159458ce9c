//! # mgpass-sdk
//!
//! The Rust SDK of mgpass:
//! - [`MgpassClient`]: a builder that sets the endpoint and the credential (access token, API key
//!   or partner key) and hands out a tonic client for every service ([`Clients`]).
//! - [`Error`]: a failed call as its gRPC code and the stable `google.rpc.ErrorInfo` reason.
//! - [`TokenVerifier`]: offline access-token verification for resource servers (JWKS fetched and
//!   cached, rotation followed, `iss`/`aud`/`exp`/scope checked), and [`VerifyLayer`], the same as
//!   a tower layer for axum and tonic servers.
//!
//! The messages and tonic clients are those of the `mgpass-proto` crate, re-exported as
//! [`proto`]: the contract is compiled once for the server and the SDK, so they never disagree.

mod client;
mod clients;
mod error;
mod layer;
mod verifier;

pub use client::{AuthedChannel, Credential, MgpassClient, MgpassClientBuilder};
pub use clients::*;
pub use error::Error;
pub use layer::{VerifyLayer, VerifyService};
pub use verifier::{Claims, TokenError, TokenErrorReason, TokenVerifier, TokenVerifierBuilder};

/// The generated messages and tonic clients (and servers) of every mgpass package.
pub use mgpass_proto as proto;
