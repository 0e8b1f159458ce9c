//! What `mgp_` API keys and `mgpp_` partner keys share: answers cached by the key's SHA-256
//! digest for at most [`TTL`] (so a revocation or suspension on any instance reaches every
//! instance within a second, while a busy key costs one indexed lookup per second per instance),
//! bounded in memory, and last-use writes throttled to once a minute per key per instance.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use uuid::Uuid;

use crate::crypto::secret::constant_time_eq;

/// How long a looked-up answer is trusted.
pub const TTL: Duration = Duration::from_secs(1);
/// How often this instance records a key's use.
const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// Past this many entries a map starts over, bounding its memory.
const MAX_ENTRIES: usize = 100_000;

/// Answers by key digest, each trusted for [`TTL`].
#[derive(Clone)]
pub struct DigestCache<T> {
    entries: Arc<Mutex<HashMap<Vec<u8>, (T, Instant)>>>,
}

impl<T> Default for DigestCache<T> {
    fn default() -> Self {
        Self { entries: Arc::default() }
    }
}

impl<T: Clone> DigestCache<T> {
    /// The fresh answer for `hash`, if any. The map finds the entry by the digest; the
    /// constant-time comparison keeps the final equality check free of timing differences.
    pub fn get(&self, hash: &[u8]) -> Option<T> {
        let entries = self.entries.lock().expect("key cache");
        let (stored, (value, at)) = entries.get_key_value(hash)?;
        (at.elapsed() < TTL && constant_time_eq(stored, hash)).then(|| value.clone())
    }

    pub fn insert(&self, hash: Vec<u8>, value: T) {
        let mut entries = self.entries.lock().expect("key cache");
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(hash, (value, Instant::now()));
    }

    /// Drops every answer: a key changed on this instance takes effect here at once.
    pub fn clear(&self) {
        self.entries.lock().expect("key cache").clear();
    }
}

/// When this instance last recorded each key's use.
#[derive(Clone, Default)]
pub struct UseThrottle {
    touched: Arc<Mutex<HashMap<Uuid, Instant>>>,
}

impl UseThrottle {
    /// Whether key `id`'s use should be recorded now (and notes that it is).
    pub fn due(&self, id: Uuid) -> bool {
        let mut touched = self.touched.lock().expect("key touches");
        if touched.get(&id).is_some_and(|at| at.elapsed() < TOUCH_EVERY) {
            return false;
        }
        if touched.len() >= MAX_ENTRIES {
            touched.clear();
        }
        touched.insert(id, Instant::now());
        true
    }
}
