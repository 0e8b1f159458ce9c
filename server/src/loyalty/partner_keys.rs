//! `mgpp_` partner API keys (sent as `X-API-Key`) to partner principals.
//!
//! Like `auth::api_keys`: a key is looked up by its SHA-256 digest and the answer cached for at
//! most one second, so a revocation (or a suspension) on any instance takes effect everywhere
//! within a second while a busy partner costs one indexed lookup per second per instance. The
//! instance that revokes drops its cache at once. The last-use time is written off the request
//! path, at most once a minute per key.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::partner_store as store;
use crate::{
    auth::{
        CredentialKind, Principal,
        key_cache::{DigestCache, UseThrottle},
    },
    crypto::secret::{constant_time_eq, digest, random_token},
    db::DbPool,
    error::{Error, Result},
};

/// The prefix of a partner key.
pub const PARTNER_KEY_PREFIX: &str = "mgpp_";
/// `mgpp_` + 256 bits in base64url without padding.
pub const PARTNER_KEY_LEN: usize = 5 + 43;
/// How much of a key listings show (`mgpp_` + 8).
pub const SHOWN_PREFIX_LEN: usize = 13;

#[derive(Clone)]
struct Cached {
    key_id: Uuid,
    partner_id: Uuid,
    suspended: bool,
    revoked: bool,
    expires_at: Option<DateTime<Utc>>,
}

#[derive(Clone)]
pub struct PartnerKeyAuthenticator {
    pool: DbPool,
    cache: DigestCache<Cached>,
    touched: UseThrottle,
}

fn invalid() -> Error {
    Error::unauthenticated("UNAUTHENTICATED", "the partner API key is invalid, expired or revoked")
}

/// A new key: the value to show once and the digest to store.
pub fn generate() -> (String, Vec<u8>) {
    let key = format!("{PARTNER_KEY_PREFIX}{}", random_token(32));
    let hash = digest(&key);
    (key, hash)
}

/// Whether a header value has the shape of a partner key (checked before any lookup).
pub fn well_formed(key: &str) -> bool {
    key.len() == PARTNER_KEY_LEN
        && key.starts_with(PARTNER_KEY_PREFIX)
        && key[PARTNER_KEY_PREFIX.len()..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl PartnerKeyAuthenticator {
    pub fn new(pool: DbPool) -> Self {
        Self { pool, cache: DigestCache::default(), touched: UseThrottle::default() }
    }

    /// The partner principal of a key. A suspended partner's key is refused with
    /// `PARTNER_SUSPENDED` (PERMISSION_DENIED): the key is right, the partner may not send.
    pub async fn authenticate(&self, key: &str) -> Result<Principal> {
        if !well_formed(key) {
            return Err(invalid());
        }
        let hash = digest(key);
        let entry = match self.cache.get(&hash) {
            Some(entry) => entry,
            None => self.load(&hash).await?,
        };
        if entry.revoked || entry.expires_at.is_some_and(|at| at <= Utc::now()) {
            return Err(invalid());
        }
        if entry.suspended {
            return Err(Error::permission_denied("PARTNER_SUSPENDED", "the partner is suspended"));
        }
        self.touch(entry.key_id);
        Ok(Principal {
            user_id: entry.partner_id,
            credential_kind: CredentialKind::PartnerApiKey,
            api_key_id: Some(entry.key_id),
            partner_id: Some(entry.partner_id),
            ..Principal::default()
        })
    }

    async fn load(&self, hash: &[u8]) -> Result<Cached> {
        let mut conn = self.pool.get().await?;
        let (row, status) = store::find_key_by_hash(&mut conn, hash).await?.ok_or_else(invalid)?;
        if !constant_time_eq(&row.key_hash, hash) {
            return Err(invalid());
        }
        let entry = Cached {
            key_id: row.id,
            partner_id: row.partner_id,
            suspended: status != "active",
            revoked: row.revoked_at.is_some(),
            expires_at: row.expires_at,
        };
        self.cache.insert(hash.to_vec(), entry.clone());
        Ok(entry)
    }

    fn touch(&self, id: Uuid) {
        if !self.touched.due(id) {
            return;
        }
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let result = async {
                let mut conn = pool.get().await?;
                store::touch_key(&mut conn, id, Utc::now()).await
            }
            .await;
            if let Err(err) = result {
                tracing::warn!(partner_api_key_id = %id, error = %err, "recording a partner key's use failed");
            }
        });
    }

    /// Drops every cached answer (a key revoked or a partner suspended on this instance).
    pub fn forget_all(&self) {
        self.cache.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_well_formed() {
        let (key, hash) = generate();
        assert!(well_formed(&key), "{key}");
        assert_eq!(hash, digest(&key));
        assert!(!well_formed("mgpp_short"));
        assert!(!well_formed(&key.replacen("mgpp_", "mgp__", 1)));
    }
}
