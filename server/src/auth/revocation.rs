//! Access tokens revoked before they expire (RFC 7009), by `jti`, known to every instance.
//!
//! JWT access tokens are checked without a database round trip, so each instance keeps the set
//! of revoked, not yet expired `jti`s in memory and polls the table every second for newcomers:
//! a revocation anywhere stops the token everywhere within about a second.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use chrono::{DateTime, Utc};
use diesel::{prelude::*, upsert::on_constraint};
use diesel_async::RunQueryDsl;

use crate::{
    db::{DbPool, schema::revoked_access_tokens as revoked},
    error::Result,
};

#[derive(Clone)]
pub struct RevocationList {
    pool: DbPool,
    revoked: Arc<RwLock<HashMap<String, DateTime<Utc>>>>,
    /// Newest `revoked_at` seen, so each poll reads only what is new.
    seen_until: Arc<RwLock<DateTime<Utc>>>,
}

impl RevocationList {
    pub fn new(pool: DbPool) -> Self {
        Self {
            pool,
            revoked: Arc::default(),
            seen_until: Arc::new(RwLock::new(DateTime::<Utc>::UNIX_EPOCH)),
        }
    }

    pub fn is_revoked(&self, jti: &str) -> bool {
        self.revoked
            .read()
            .expect("revocation lock")
            .contains_key(jti)
    }

    /// Revokes a token until it would have expired anyway.
    pub async fn revoke(&self, jti: &str, expires_at: DateTime<Utc>) -> Result<()> {
        let mut conn = self.pool.get().await?;
        diesel::insert_into(revoked::table)
            .values((revoked::jti.eq(jti), revoked::expires_at.eq(expires_at)))
            .on_conflict(on_constraint("revoked_access_tokens_pkey"))
            .do_nothing()
            .execute(&mut conn)
            .await?;
        self.revoked
            .write()
            .expect("revocation lock")
            .insert(jti.to_string(), expires_at);
        Ok(())
    }

    /// Reads revocations made since the last poll (by any instance) and forgets expired ones.
    pub async fn poll(&self) -> Result<()> {
        let since = *self.seen_until.read().expect("revocation lock");
        // Transactions commit out of `revoked_at` order; re-reading a few seconds back catches
        // a revocation whose timestamp is older than one already seen.
        let since = if since == DateTime::<Utc>::UNIX_EPOCH {
            since
        } else {
            since - chrono::Duration::seconds(5)
        };
        let now = Utc::now();
        let mut conn = self.pool.get().await?;
        let rows: Vec<(String, DateTime<Utc>, DateTime<Utc>)> = revoked::table
            .filter(revoked::revoked_at.ge(since))
            .filter(revoked::expires_at.gt(now))
            .select((revoked::jti, revoked::expires_at, revoked::revoked_at))
            .load(&mut conn)
            .await?;
        let mut set = self.revoked.write().expect("revocation lock");
        set.retain(|_, exp| *exp > now);
        let mut newest = *self.seen_until.read().expect("revocation lock");
        for (jti, exp, at) in rows {
            newest = newest.max(at);
            set.insert(jti, exp);
        }
        drop(set);
        *self.seen_until.write().expect("revocation lock") = newest;
        Ok(())
    }

    /// Polls every second until the process ends; also deletes rows of expired tokens now and then.
    pub fn spawn_poller(&self) {
        let list = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut rounds: u64 = 0;
            loop {
                tick.tick().await;
                if let Err(err) = list.poll().await {
                    tracing::warn!(error = %err, "reading revoked access tokens failed");
                }
                rounds += 1;
                if rounds % 3600 == 0 {
                    if let Err(err) = list.purge_expired().await {
                        tracing::warn!(error = %err, "purging revoked access tokens failed");
                    }
                }
            }
        });
    }

    async fn purge_expired(&self) -> Result<()> {
        let mut conn = self.pool.get().await?;
        diesel::delete(
            revoked::table
                .filter(revoked::expires_at.lt(Utc::now() - chrono::Duration::minutes(5))),
        )
        .execute(&mut conn)
        .await?;
        Ok(())
    }
}
