//! Whether the session behind an access token is still alive, and which second factor it still
//! owes. Answers are cached for one second, so a revoked session stops working on every instance
//! within a second while a busy token costs at most one primary-key lookup per second. The
//! instance that completes a second factor forgets its cached answer at once.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use uuid::Uuid;

use crate::{error::Result, identity::service::IdentityService};

const TTL: Duration = Duration::from_secs(1);
/// Past this many cached sessions the cache starts over, bounding its memory.
const MAX_ENTRIES: usize = 100_000;

#[derive(Clone)]
pub struct SessionCheck {
    identity: IdentityService,
    cache: Arc<Mutex<HashMap<Uuid, (SessionState, Instant)>>>,
}

/// What the auth layer needs to know about a session.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionState {
    pub active: bool,
    /// `email`, `mobile` or `totp` while a second factor is owed.
    pub pending_second_factor: Option<String>,
}

impl SessionCheck {
    pub fn new(identity: IdentityService) -> Self {
        Self {
            identity,
            cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub async fn is_active(&self, session_id: Uuid) -> Result<bool> {
        Ok(self.state(session_id).await?.active)
    }

    pub async fn state(&self, session_id: Uuid) -> Result<SessionState> {
        if let Some((state, at)) = self
            .cache
            .lock()
            .expect("cache lock")
            .get(&session_id)
            .cloned()
        {
            if at.elapsed() < TTL {
                return Ok(state);
            }
        }
        let (active, pending_second_factor) = self.identity.session_state(session_id).await?;
        let state = SessionState {
            active,
            pending_second_factor,
        };
        let mut cache = self.cache.lock().expect("cache lock");
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(session_id, (state.clone(), Instant::now()));
        Ok(state)
    }

    /// Drops the cached answer of a session whose state just changed on this instance.
    pub fn forget(&self, session_id: Uuid) {
        self.cache.lock().expect("cache lock").remove(&session_id);
    }
}
