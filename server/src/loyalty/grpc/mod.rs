//! The tonic adapters of loyalty: protobuf in, domain call, protobuf out. No rules here.

mod payouts;

pub use payouts::PayoutGrpc;
