//! The tonic adapters of oauth: protobuf in, domain call, protobuf out. No rules here.

mod api_resources;
mod applications;
mod tokens;

pub use api_resources::ApiResourceGrpc;
pub use applications::ApplicationGrpc;
pub use tokens::TokenGrpc;
