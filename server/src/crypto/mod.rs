//! Secrets and signatures: password hashing, high-entropy secrets and their digests, and the
//! keys that sign tokens.

pub mod jwt;
pub mod keys;
pub mod password;
pub mod sealed;
pub mod secret;
