//! `mgp_` API keys to principals.
//!
//! A key is looked up by its SHA-256 digest and the answer cached for at most one second, so a
//! key revoked (or rotated, or its owner suspended) on any instance stops working everywhere
//! within a second, while a busy key costs one indexed lookup per second per instance. The
//! instance that revokes or rotates a key drops its cache at once. The last-use time is written
//! off the request path, at most once a minute per key.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    access::api_key_store as store,
    auth::{
        CredentialKind, Principal,
        key_cache::{DigestCache, UseThrottle},
    },
    crypto::secret::{constant_time_eq, digest},
    db::DbPool,
    error::{Error, Result},
};

/// The prefix that marks a bearer value as an API key.
pub const API_KEY_PREFIX: &str = "mgp_";
/// `mgp_` + 256 bits in base64url without padding.
pub const API_KEY_LEN: usize = 4 + 43;

#[derive(Clone)]
struct Cached {
    principal: Principal,
    /// The earliest of the key's expiry and, for a replaced value, the end of its overlap.
    valid_until: Option<DateTime<Utc>>,
}

#[derive(Clone)]
pub struct ApiKeyAuthenticator {
    pool: DbPool,
    cache: DigestCache<Cached>,
    touched: UseThrottle,
}

fn invalid() -> Error {
    Error::unauthenticated("UNAUTHENTICATED", "the API key is invalid, expired or revoked")
}

/// Whether a bearer value has the shape of an API key (checked before any lookup).
pub fn well_formed(key: &str) -> bool {
    key.len() == API_KEY_LEN
        && key.starts_with(API_KEY_PREFIX)
        && key[API_KEY_PREFIX.len()..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl ApiKeyAuthenticator {
    pub fn new(pool: DbPool) -> Self {
        Self { pool, cache: DigestCache::default(), touched: UseThrottle::default() }
    }

    /// The principal of a key: its user (personal key) or its organization, holding exactly the
    /// key's scopes.
    pub async fn authenticate(&self, key: &str) -> Result<Principal> {
        if !well_formed(key) {
            return Err(invalid());
        }
        let hash = digest(key);
        let now = Utc::now();
        let entry = match self.cache.get(&hash) {
            Some(entry) => entry,
            None => self.load(&hash, now).await?,
        };
        if entry.valid_until.is_some_and(|until| until <= now) {
            return Err(invalid());
        }
        self.touch(entry.principal.api_key_id.expect("api key principal has its id"));
        Ok(entry.principal)
    }

    async fn load(&self, hash: &[u8], now: DateTime<Utc>) -> Result<Cached> {
        let mut conn = self.pool.get().await?;
        let row = store::find_by_hash(&mut conn, hash, now).await?.ok_or_else(invalid)?;
        let current = constant_time_eq(&row.key_hash, hash);
        let previous = row.previous_key_hash.as_deref().is_some_and(|p| constant_time_eq(p, hash));
        if row.revoked_at.is_some() || !(current || previous) {
            return Err(invalid());
        }
        let user_id = match (row.user_id, row.organization_id) {
            (Some(user), _) => {
                if !store::user_is_active(&mut conn, user).await? {
                    return Err(invalid());
                }
                user
            }
            (None, Some(org)) => org,
            (None, None) => return Err(invalid()),
        };
        let valid_until = match (row.expires_at, previous.then_some(row.previous_key_expires_at).flatten()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let principal = Principal {
            user_id,
            scopes: row.scopes,
            credential_kind: CredentialKind::ApiKey,
            api_key_id: Some(row.id),
            api_key_organization_id: row.organization_id,
            // Organization-bound: its scopes act only on calls naming its organization.
            org_id: row.organization_id,
            ..Principal::default()
        };
        let entry = Cached { principal, valid_until };
        self.cache.insert(hash.to_vec(), entry.clone());
        Ok(entry)
    }

    /// Records the key's use in the background, at most once a minute from this instance (the
    /// SQL guard makes it once a minute across instances).
    fn touch(&self, id: Uuid) {
        if !self.touched.due(id) {
            return;
        }
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let result = async {
                let mut conn = pool.get().await?;
                store::touch(&mut conn, id, Utc::now()).await
            }
            .await;
            if let Err(err) = result {
                tracing::warn!(api_key_id = %id, error = %err, "recording an API key's use failed");
            }
        });
    }

    /// Drops every cached answer: a key changed on this instance takes effect here at once
    /// (other instances follow within [`key_cache::TTL`](crate::auth::key_cache::TTL)).
    pub fn forget_all(&self) {
        self.cache.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape() {
        let key = format!("mgp_{}", crate::crypto::secret::random_token(32));
        assert!(well_formed(&key), "{key}");
        assert!(!well_formed("mgp_short"));
        assert!(!well_formed(&key.replace("mgp_", "mgx_")));
        assert!(!well_formed(&format!("{}!", &key[..key.len() - 1])));
    }
}
