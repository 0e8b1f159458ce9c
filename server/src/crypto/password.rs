//! Password hashing with argon2id, always off the async runtime (a hash costs tens of
//! milliseconds of CPU).

use std::{
    sync::{
        Arc, LazyLock,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng},
};

use crate::{
    config::PasswordConfig,
    error::{Error, Result},
};

/// Hashes running now, and when the last one ended (ms since `EPOCH`): the memory trimmer
/// returns argon2's freed working memory to the OS only once hashing has paused, so a burst of
/// sign-ins reuses the allocator's memory (no page faults) and an idle server stays small.
static HASHES_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static LAST_HASH_END_MS: AtomicU64 = AtomicU64::new(0);
static TRIMMED: AtomicBool = AtomicBool::new(true);
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// At most one hash per core at a time: more only makes them share the cores (and their caches:
/// each hash walks 19 MiB), so every sign-in waits longer and a burst of bad passwords cannot
/// starve the rest of the server of threads.
static HASH_SLOTS: LazyLock<tokio::sync::Semaphore> = LazyLock::new(|| {
    tokio::sync::Semaphore::new(
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
    )
});

/// Runs `work` (an argon2 call) on the blocking pool, tracked for the memory trimmer.
async fn run_hash<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let _slot = HASH_SLOTS.acquire().await.map_err(Error::internal)?;
    HASHES_IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
    TRIMMED.store(false, Ordering::SeqCst);
    let result = tokio::task::spawn_blocking(work)
        .await
        .map_err(Error::internal);
    LAST_HASH_END_MS.store(EPOCH.elapsed().as_millis() as u64, Ordering::SeqCst);
    HASHES_IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    result
}

/// Every 250 ms: once no hash has run for half a second, hands the allocator's free memory (each
/// argon2id hash uses 19 MiB) back to the OS, once.
pub fn spawn_memory_trimmer() {
    tokio::spawn(async {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            let idle_ms = (EPOCH.elapsed().as_millis() as u64)
                .saturating_sub(LAST_HASH_END_MS.load(Ordering::SeqCst));
            if HASHES_IN_FLIGHT.load(Ordering::SeqCst) == 0
                && idle_ms >= 500
                && !TRIMMED.swap(true, Ordering::SeqCst)
            {
                #[cfg(all(target_os = "linux", target_env = "gnu"))]
                // SAFETY: malloc_trim only releases free memory; it is safe to call at any time.
                unsafe {
                    libc::malloc_trim(0);
                }
            }
        }
    });
}

#[derive(Clone)]
pub struct PasswordHasherService {
    argon: Arc<Argon2<'static>>,
    params: Params,
    min_length: usize,
    refuse_common: bool,
}

/// The bundled list of common passwords (see server/data/README.md), lower-cased.
static COMMON_PASSWORDS: LazyLock<std::collections::HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../../data/common-passwords.txt")
        .lines()
        .collect()
});

/// Verified against when the account does not exist, so an unknown identifier costs as much time
/// as a wrong password and the answer's timing does not reveal which it was.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let argon = Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19456, 2, 1, None).expect("params"),
    );
    argon
        .hash_password(b"not-a-real-password", &SaltString::generate(&mut OsRng))
        .expect("hash")
        .to_string()
});

impl PasswordHasherService {
    pub fn new(config: &PasswordConfig) -> anyhow::Result<Self> {
        let params = Params::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        Ok(Self {
            argon: Arc::new(Argon2::new(
                Algorithm::Argon2id,
                Version::V0x13,
                params.clone(),
            )),
            params,
            min_length: config.min_length,
            refuse_common: config.refuse_common_passwords,
        })
    }

    /// Checks the password policy (length; the identity issue adds the common-password list).
    pub fn check_policy(&self, password: &str) -> Result<()> {
        if password.chars().count() < self.min_length {
            return Err(Error::invalid(
                "WEAK_PASSWORD",
                "password",
                format!("password must have at least {} characters", self.min_length),
            ));
        }
        if password.len() > 1024 {
            return Err(Error::invalid(
                "WEAK_PASSWORD",
                "password",
                "password is longer than 1024 bytes",
            ));
        }
        if self.refuse_common && COMMON_PASSWORDS.contains(password.to_lowercase().as_str()) {
            return Err(Error::invalid(
                "WEAK_PASSWORD",
                "password",
                "this password is among the most common ones",
            ));
        }
        Ok(())
    }

    /// Whether a stored hash was made with other parameters (or another algorithm) than the
    /// configured ones, so it should be replaced at the next successful sign-in.
    pub fn needs_rehash(&self, hash: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(hash) else {
            return true;
        };
        let Ok(stored) = Params::try_from(&parsed) else {
            return true;
        };
        parsed.algorithm != argon2::ARGON2ID_IDENT
            || stored.m_cost() != self.params.m_cost()
            || stored.t_cost() != self.params.t_cost()
            || stored.p_cost() != self.params.p_cost()
    }

    pub async fn hash(&self, password: String) -> Result<String> {
        let argon = self.argon.clone();
        run_hash(move || {
            argon
                .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
                .map(|h| h.to_string())
                .map_err(Error::internal)
        })
        .await?
    }

    /// Verifies `password` against `hash`, or against a dummy hash when there is no account, so
    /// both failures take the same time.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool> {
        let argon = self.argon.clone();
        run_hash(move || {
            let known = hash.is_some();
            let stored = hash.unwrap_or_else(|| DUMMY_HASH.clone());
            let parsed = PasswordHash::new(&stored).map_err(Error::internal)?;
            let ok = argon.verify_password(password.as_bytes(), &parsed).is_ok();
            Ok(known && ok)
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> PasswordHasherService {
        PasswordHasherService::new(&PasswordConfig::default()).unwrap()
    }

    #[tokio::test]
    async fn hashes_verify_and_are_argon2id() {
        let h = hasher();
        let hash = h.hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            h.verify("correct horse".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!h.verify("wrong horse".into(), Some(hash)).await.unwrap());
        assert!(!h.verify("correct horse".into(), None).await.unwrap());
    }

    #[test]
    fn policy_refuses_short_and_common_passwords() {
        assert!(hasher().check_policy("short").is_err());
        assert!(hasher().check_policy("long enough").is_ok());
        assert!(hasher().check_policy("password1").is_err());
        assert!(
            hasher().check_policy("PassWord1").is_err(),
            "case does not help"
        );
        assert!(COMMON_PASSWORDS.len() > 19_000);
        let lenient = PasswordHasherService::new(&PasswordConfig {
            refuse_common_passwords: false,
            ..Default::default()
        })
        .unwrap();
        assert!(lenient.check_policy("password1").is_ok());
    }

    #[tokio::test]
    async fn hashes_with_other_parameters_need_rehash() {
        let h = hasher();
        let current = h.hash("correct horse".into()).await.unwrap();
        assert!(!h.needs_rehash(&current));
        let weaker = PasswordHasherService::new(&PasswordConfig {
            argon2_memory_kib: 8192,
            ..Default::default()
        })
        .unwrap();
        let old = weaker.hash("correct horse".into()).await.unwrap();
        assert!(h.needs_rehash(&old));
        assert!(
            h.verify("correct horse".into(), Some(old)).await.unwrap(),
            "old hashes still verify"
        );
    }
}
