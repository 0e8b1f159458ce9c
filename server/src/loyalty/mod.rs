//! Loyalty: reward partners and their API keys, the double-entry points ledger, expiry, and
//! (next) the catalog and redemptions. Other loyalty concerns (earning, payouts) add their own
//! `pub mod` lines here.

pub mod catalog_grpc;
pub mod catalog_service;
pub mod catalog_store;
pub mod catalog_tiers;
pub mod config;
pub mod earning;
pub mod earning_config;
pub mod ledger;
pub mod order_store;
pub mod partner_grpc;
pub mod partner_keys;
pub mod partner_service;
pub mod partner_store;
pub mod redemption_service;
pub mod momo;
pub mod payout_config;
pub mod payout_flow;
pub mod payout_grpc;
pub mod payout_ledger;
pub mod payout_service;
pub mod payout_store;
pub mod payout_worker;
