//! Secrets and signatures: password hashing, high-entropy secrets and their digests, and the
//! keys that sign tokens.

pub mod keys;
pub mod password;
pub mod secret;
