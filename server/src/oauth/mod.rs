//! OAuth 2.1 / OpenID Connect: applications and API resources (admin), the grants (authorization
//! code + PKCE, refresh, client credentials, device), ID tokens, revocation and introspection, the
//! protocol endpoints (`http`) and the hosted pages (`web`).
//!
//! Layout: `*_store` files hold SQL, `*_service` and the grant files the rules, `grpc/` the tonic
//! adapters, `http` and `web` the browser- and RFC-facing HTTP. Only `grpc/` knows protobuf.

pub mod api_resource_service;
pub mod api_resource_store;
pub mod application_service;
pub mod application_store;
pub mod authorize;
pub mod clients;
pub mod device;
pub mod exchange;
pub mod grant_store;
pub mod grants;
pub mod grpc;
pub mod http;
pub mod id_token;
pub mod introspection;
pub mod logout;
pub mod model;
pub mod scopes;
pub mod service;
pub mod web;

pub use service::OAuthService;
