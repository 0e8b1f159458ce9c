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
    Algorithm, Argon2, Block, Params, Version,
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng},
};
use subtle::ConstantTimeEq;

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

/// argon2's working memory (19 MiB at the default parameters), kept between the hashes of a
/// burst of sign-ins: allocating it per hash costs page faults and zeroing on every sign-in.
/// At most one buffer per hash slot; the memory trimmer drops them once hashing pauses, so an
/// idle server does not keep them.
static WORKING_MEMORY: std::sync::Mutex<Vec<Vec<Block>>> = std::sync::Mutex::new(Vec::new());

/// Runs `work` with a working-memory buffer of at least `blocks` blocks, reused when one is free.
/// Argon2 writes every block before reading it, so a buffer's previous contents never matter.
fn with_working_memory<T>(blocks: usize, work: impl FnOnce(&mut [Block]) -> T) -> T {
    let reused = WORKING_MEMORY.lock().unwrap_or_else(|e| e.into_inner()).pop();
    let mut memory = reused.filter(|m| m.len() >= blocks).unwrap_or_else(|| vec![Block::default(); blocks]);
    let result = work(&mut memory);
    WORKING_MEMORY.lock().unwrap_or_else(|e| e.into_inner()).push(memory);
    result
}

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
        let this = self.clone();
        run_hash(move || {
            let known = hash.is_some();
            let stored = hash.unwrap_or_else(|| DUMMY_HASH.clone());
            let parsed = PasswordHash::new(&stored).map_err(Error::internal)?;
            let ok = match this.verify_with_reused_memory(password.as_bytes(), &parsed) {
                Some(ok) => ok,
                // Other parameters (an old hash, rehashed after this sign-in): the library's path.
                None => this.argon.verify_password(password.as_bytes(), &parsed).is_ok(),
            };
            Ok(known && ok)
        })
        .await?
    }

    /// The verification of a hash made with the configured parameters, in reused working
    /// memory, compared in constant time; `None` when the hash was made otherwise.
    fn verify_with_reused_memory(&self, password: &[u8], parsed: &PasswordHash) -> Option<bool> {
        let stored = Params::try_from(parsed).ok()?;
        let same = parsed.algorithm == argon2::ARGON2ID_IDENT
            && parsed.version == Some(Version::V0x13 as u32)
            && (stored.m_cost(), stored.t_cost(), stored.p_cost())
                == (self.params.m_cost(), self.params.t_cost(), self.params.p_cost())
            && stored.keyid().is_empty()
            && stored.data().is_empty();
        let expected = parsed.hash?;
        if !same {
            return None;
        }
        let mut salt = [0u8; 64];
        let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
        let mut out = vec![0u8; expected.len()];
        let blocks = self.params.block_count();
        with_working_memory(blocks, |memory| self.argon.hash_password_into_with_memory(password, salt, &mut out, memory))
            .ok()?;
        Some(bool::from(out.as_slice().ct_eq(expected.as_bytes())))
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
    async fn reused_working_memory_gives_the_librarys_answers() {
        let h = hasher();
        let hash = h.hash("correct horse".into()).await.unwrap();
        let parsed = PasswordHash::new(&hash).unwrap();
        // Several rounds: from the second on, the buffer left by the previous hash is reused.
        for _ in 0..3 {
            assert_eq!(h.verify_with_reused_memory(b"correct horse", &parsed), Some(true));
            assert_eq!(h.verify_with_reused_memory(b"wrong horse", &parsed), Some(false));
            assert!(h.argon.verify_password(b"correct horse", &parsed).is_ok());
        }
        // A hash made with other parameters is left to the library.
        let weaker = PasswordHasherService::new(&PasswordConfig { argon2_memory_kib: 8192, ..Default::default() }).unwrap();
        let old = weaker.hash("correct horse".into()).await.unwrap();
        assert_eq!(h.verify_with_reused_memory(b"correct horse", &PasswordHash::new(&old).unwrap()), None);
        assert!(h.verify("correct horse".into(), Some(old)).await.unwrap());
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
