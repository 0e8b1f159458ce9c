//! Every end-to-end test in one binary: one link of the server library instead of one per file,
//! which keeps a clean build small enough for CI disks. Each module is one area of the product.

mod verification_support;

mod api_keys;
mod audit;
mod authorization_matrix;
mod delivery;
mod groups;
mod janitor;
mod keys;
mod loyalty_catalog;
mod loyalty_ledger;
mod loyalty_partners;
mod loyalty_support;
mod loyalty_momo;
mod loyalty_payouts;
mod loyalty_earning_support;
mod loyalty_event_load;
mod loyalty_events;
mod loyalty_rules;
mod loyalty_tiers;
mod oauth_admin;
mod oauth_clients;
mod oauth_code_flow;
mod oauth_pages;
mod oauth_protocol;
mod openapi;
mod org_isolation;
mod organizations;
mod permissions;
mod profile;
mod registration;
mod roles;
mod second_factor;
mod server;
mod sessions;
mod users;
mod verification;
