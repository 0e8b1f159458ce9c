//! mgpass server: the domains (identity today; oauth, access, org and loyalty next), their
//! Postgres stores, and the wiring that serves them on one port.

pub mod access;
pub mod admin;
pub mod app;
pub mod auth;
pub mod config;
pub mod convert;
pub mod crypto;
pub mod db;
pub mod delivery;
pub mod error;
pub mod identity;
pub mod loyalty;
pub mod oauth;
pub mod org;
pub mod paging;
