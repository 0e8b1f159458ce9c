//! Token signing keys (ES256 by default, or EdDSA). Keys live in Postgres, their private halves
//! sealed under the master key (`secrets.master_key`), so a database dump alone cannot mint tokens.
//!
//! RSA keys (RS256) form a second family that signs only the ID tokens of applications asking for
//! RS256. The first one is created the first time such an ID token is signed; from then on the
//! family rotates and retires like the main one.
//!
//! A key's life: *pending* (published in the JWKS, not signing yet, so verifiers that cache the
//! JWKS learn it first), *active* (the newest key whose `activates_at` has passed signs),
//! *published* (a newer key signs; kept until the last token it signed has expired), *retired*
//! (out of the JWKS, private half erased). Every instance reloads the keys every
//! `tokens.key_check_interval_secs` and then rotates and retires what is due, under a Postgres
//! advisory lock so that instances sharing a database make one decision.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use diesel::{prelude::*, sql_types::BigInt};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use p256::{SecretKey, elliptic_curve::sec1::ToEncodedPoint, pkcs8::EncodePrivateKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tokio::sync::{Mutex, RwLock};

use crate::{
    config::Config,
    crypto::jwt::{self, Alg, JwtSigner, JwtVerifier},
    crypto::sealed::MasterKey,
    db::{DbPool, schema::signing_keys},
    error::{Error, Result},
};

/// The advisory lock every instance takes before rotating or retiring keys ("mgpasske").
const ROTATION_LOCK: i64 = 0x6d67_7061_7373_6b65;

diesel::define_sql_function!(fn pg_try_advisory_xact_lock(key: BigInt) -> Bool);

/// A public key as published in the JWKS.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PublicJwk {
    pub kty: String,
    pub kid: String,
    #[serde(rename = "use")]
    pub use_: String,
    pub alg: String,
    /// EC and OKP keys.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub crv: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub x: String,
    /// EC keys only; OKP (Ed25519) keys have none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub y: String,
    /// RSA keys: modulus and exponent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub n: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub e: String,
}

impl PublicJwk {
    fn verifier(&self) -> std::result::Result<JwtVerifier, jwt::JwtError> {
        match Alg::parse(&self.alg).ok_or(jwt::JwtError::Malformed)? {
            Alg::Rs256 => JwtVerifier::from_rsa_jwk(&self.n, &self.e),
            alg => JwtVerifier::from_jwk(alg, &self.x, &self.y),
        }
    }
}

/// When keys rotate and retire, from `tokens.*`.
#[derive(Debug, Clone)]
pub struct KeyPolicy {
    /// The algorithm of keys created from now on.
    pub algorithm: Alg,
    pub rotation_period: chrono::Duration,
    pub publish_lead: chrono::Duration,
    pub check_interval: Duration,
    pub leeway_secs: u64,
    /// How long a key stays published after a newer key started signing: a token signed just
    /// before the switch lives `ttl`, is accepted `leeway` longer, and an instance that had not
    /// yet seen the new key may have signed with the old one until its next check.
    pub retire_after: chrono::Duration,
}

impl KeyPolicy {
    pub fn from_config(config: &Config) -> Self {
        let t = &config.tokens;
        let check = i64::from(t.key_check_interval_secs);
        Self {
            algorithm: Alg::parse(&t.algorithm).unwrap_or(Alg::Es256),
            rotation_period: chrono::Duration::milliseconds(
                (t.key_rotation_period_days * 86_400_000.0) as i64,
            ),
            publish_lead: chrono::Duration::seconds(i64::from(t.key_publish_lead_secs)),
            check_interval: Duration::from_secs(check as u64),
            leeway_secs: u64::from(t.leeway_secs),
            retire_after: chrono::Duration::seconds(
                i64::from(t.access_token_ttl_secs) + i64::from(t.leeway_secs) + check,
            ),
        }
    }
}

/// What one maintenance round does, decided from the non-retired keys.
#[derive(Debug, PartialEq)]
struct Plan {
    retire: Vec<String>,
    create_at: Option<DateTime<Utc>>,
}

/// `keys` are the non-retired `(kid, activates_at)`.
fn plan(keys: &[(String, DateTime<Utc>)], now: DateTime<Utc>, policy: &KeyPolicy) -> Plan {
    // A key is done once some newer key has been signing for `retire_after`.
    let retire = keys
        .iter()
        .filter(|(_, at)| {
            keys.iter()
                .any(|(_, newer)| newer > at && *newer + policy.retire_after <= now)
        })
        .map(|(kid, _)| kid.clone())
        .collect();
    let newest = keys.iter().map(|(_, at)| *at).max();
    let create_at = match newest {
        // Nothing can sign: a key is needed now, a lead would leave the server unable to sign.
        _ if !keys.iter().any(|(_, at)| *at <= now) => Some(now),
        // The newest key has been signing for a whole period (so no successor is pending yet).
        Some(newest) if newest + policy.rotation_period <= now => Some(now + policy.publish_lead),
        _ => None,
    };
    Plan { retire, create_at }
}

/// One key for `mgpass keys list`.
#[derive(Debug)]
pub struct KeyInfo {
    pub kid: String,
    pub algorithm: String,
    pub created_at: DateTime<Utc>,
    pub activates_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
    /// `pending`, `active`, `published` or `retired`.
    pub state: &'static str,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = signing_keys)]
struct KeyRow {
    kid: String,
    algorithm: String,
    private_sealed: Option<Vec<u8>>,
    public_jwk: serde_json::Value,
    activates_at: DateTime<Utc>,
}

struct Signer {
    kid: String,
    activates_at: DateTime<Utc>,
    key: JwtSigner,
}

#[derive(Default)]
struct LoadedKeys {
    /// Newest activation first. The signer is chosen per token (the first whose time has come),
    /// so instances switch at `activates_at`, not at their next reload.
    signers: Vec<Signer>,
    verifiers: HashMap<String, JwtVerifier>,
    jwks: Vec<PublicJwk>,
}

impl LoadedKeys {
    /// The signer whose time has come, of the RSA family or of the main one.
    fn current(&self, rsa: bool) -> Option<&Signer> {
        let now = Utc::now();
        self.signers
            .iter()
            .find(|s| s.activates_at <= now && (s.key.alg() == Alg::Rs256) == rsa)
    }
}

/// Signs and verifies mgpass JWTs with the keys stored in Postgres.
#[derive(Clone)]
pub struct KeyRing {
    pool: DbPool,
    master: MasterKey,
    policy: KeyPolicy,
    loaded: Arc<RwLock<LoadedKeys>>,
    /// When a token names an unknown kid the keys are reloaded, at most once a second, so a key
    /// created moments ago elsewhere (`mgpass keys rotate --lead-secs 0`) is not refused.
    last_lookup: Arc<Mutex<Option<Instant>>>,
    /// Held by each reload, so that a slow reload never replaces a newer one's keys.
    reloading: Arc<Mutex<()>>,
    /// Tokens whose signature was already checked: resource servers present the same token
    /// again and again, and the P-256 verification is most of the cost of checking one.
    verified: VerifiedTokens,
}

/// Signature checks already done, by SHA-256 of the token: (header `typ`, claims). A token's
/// bytes never change, so neither does the outcome; what can change (expiry, revocation, the
/// session) is checked on every use by the callers. Bounded; starts over when full.
#[derive(Clone, Default)]
struct VerifiedTokens {
    map: Arc<std::sync::RwLock<HashMap<[u8; 32], (String, serde_json::Value)>>>,
    /// Off only in benchmarks that measure the signature check itself.
    disabled: bool,
}

const MAX_VERIFIED_TOKENS: usize = 20_000;

impl VerifiedTokens {
    fn key(token: &str) -> [u8; 32] {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        key
    }

    fn get(&self, key: &[u8; 32]) -> Option<(String, serde_json::Value)> {
        if self.disabled {
            return None;
        }
        self.map
            .read()
            .expect("verified tokens lock")
            .get(key)
            .cloned()
    }

    fn insert(&self, key: [u8; 32], typ: String, claims: serde_json::Value) {
        if self.disabled {
            return;
        }
        let mut map = self.map.write().expect("verified tokens lock");
        if map.len() >= MAX_VERIFIED_TOKENS {
            map.clear();
        }
        map.insert(key, (typ, claims));
    }
}

fn seal_context(kid: &str) -> String {
    format!("signing-key:{kid}")
}

/// The private half of `row`, or an error naming the key when the master key does not open it.
fn open_key(master: &MasterKey, row: &KeyRow) -> Result<JwtSigner> {
    let wrong = || {
        Error::internal(format!(
            "signing key {} does not open with the configured master key: the master key is wrong \
             (secrets.master_key must be the key the signing keys were sealed with)",
            row.kid
        ))
    };
    let sealed = row.private_sealed.as_deref().ok_or_else(wrong)?;
    let der = master
        .open(&seal_context(&row.kid), sealed)
        .map_err(|_| wrong())?;
    let alg = Alg::parse(&row.algorithm).ok_or_else(|| {
        Error::internal(format!(
            "signing key {} has an unknown algorithm {}",
            row.kid, row.algorithm
        ))
    })?;
    JwtSigner::from_pkcs8(alg, &der)
        .map_err(|e| Error::internal(format!("signing key {}: {e}", row.kid)))
}

async fn load_rows(conn: &mut AsyncPgConnection) -> Result<Vec<KeyRow>> {
    Ok(signing_keys::table
        .filter(signing_keys::retired_at.is_null())
        .order(signing_keys::activates_at.desc())
        .select(KeyRow::as_select())
        .load(conn)
        .await?)
}

/// Inserts a new key of `alg` that starts signing at `activates_at`; returns its kid.
async fn insert_key(
    conn: &mut AsyncPgConnection,
    master: &MasterKey,
    alg: Alg,
    activates_at: DateTime<Utc>,
) -> Result<String> {
    let kid = crate::crypto::secret::random_token(12);
    let (der, jwk) = match alg {
        Alg::Es256 => {
            let secret = loop {
                let mut bytes = [0u8; 32];
                SystemRandom::new()
                    .fill(&mut bytes)
                    .map_err(|_| Error::internal("random generator failed"))?;
                // Rejection sampling: almost every 32-byte string is a valid P-256 scalar.
                if let Ok(key) = SecretKey::from_slice(&bytes) {
                    break key;
                }
            };
            let point = secret.public_key().to_encoded_point(false);
            let jwk = PublicJwk {
                kty: "EC".into(),
                kid: kid.clone(),
                use_: "sig".into(),
                alg: alg.name().into(),
                crv: "P-256".into(),
                x: URL_SAFE_NO_PAD.encode(point.x().ok_or_else(|| Error::internal("no x"))?),
                y: URL_SAFE_NO_PAD.encode(point.y().ok_or_else(|| Error::internal("no y"))?),
                ..PublicJwk::default()
            };
            (
                secret
                    .to_pkcs8_der()
                    .map_err(Error::internal)?
                    .as_bytes()
                    .to_vec(),
                jwk,
            )
        }
        Alg::EdDsa => {
            let (der, public) = JwtSigner::generate_ed25519().map_err(Error::internal)?;
            let jwk = PublicJwk {
                kty: "OKP".into(),
                kid: kid.clone(),
                use_: "sig".into(),
                alg: alg.name().into(),
                crv: "Ed25519".into(),
                x: URL_SAFE_NO_PAD.encode(public),
                ..PublicJwk::default()
            };
            (der, jwk)
        }
        Alg::Rs256 => {
            use rsa::{pkcs8::EncodePrivateKey, traits::PublicKeyParts};
            // Off the async runtime: generating a 2048-bit key takes tens of milliseconds.
            let private = tokio::task::spawn_blocking(|| {
                rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
            })
            .await
            .map_err(Error::internal)?
            .map_err(Error::internal)?;
            let jwk = PublicJwk {
                kty: "RSA".into(),
                kid: kid.clone(),
                use_: "sig".into(),
                alg: alg.name().into(),
                n: URL_SAFE_NO_PAD.encode(private.n().to_bytes_be()),
                e: URL_SAFE_NO_PAD.encode(private.e().to_bytes_be()),
                ..PublicJwk::default()
            };
            (
                private
                    .to_pkcs8_der()
                    .map_err(Error::internal)?
                    .as_bytes()
                    .to_vec(),
                jwk,
            )
        }
    };
    let sealed = master.seal(&seal_context(&kid), &der)?;
    diesel::insert_into(signing_keys::table)
        .values((
            signing_keys::kid.eq(&kid),
            signing_keys::algorithm.eq(alg.name()),
            signing_keys::private_sealed.eq(sealed),
            signing_keys::public_jwk.eq(serde_json::to_value(&jwk).map_err(Error::internal)?),
            signing_keys::activates_at.eq(activates_at),
        ))
        .execute(conn)
        .await?;
    Ok(kid)
}

/// `mgpass keys rotate`: creates a key that signs `lead_secs` from now. Refuses when the existing
/// keys do not open with `master`, because a key sealed under a wrong master key would stop
/// every correctly configured instance at its next reload.
pub async fn rotate(pool: &DbPool, master: &MasterKey, alg: Alg, lead_secs: i64) -> Result<String> {
    let mut conn = pool.get().await?;
    for row in load_rows(&mut conn).await? {
        open_key(master, &row)?;
    }
    insert_key(
        &mut conn,
        master,
        alg,
        Utc::now() + chrono::Duration::seconds(lead_secs),
    )
    .await
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = signing_keys)]
struct ListRow {
    kid: String,
    algorithm: String,
    created_at: DateTime<Utc>,
    activates_at: DateTime<Utc>,
    retired_at: Option<DateTime<Utc>>,
}

/// Every key, newest first, with its state, for `mgpass keys list`.
pub async fn list(pool: &DbPool) -> Result<Vec<KeyInfo>> {
    let mut conn = pool.get().await?;
    let rows: Vec<ListRow> = signing_keys::table
        .order((
            signing_keys::activates_at.desc(),
            signing_keys::created_at.desc(),
        ))
        .select(ListRow::as_select())
        .load(&mut conn)
        .await?;
    let now = Utc::now();
    let mut signer_seen = false;
    Ok(rows
        .into_iter()
        .map(|r| {
            let state = if r.retired_at.is_some() {
                "retired"
            } else if r.activates_at > now {
                "pending"
            } else if !signer_seen {
                signer_seen = true;
                "active"
            } else {
                "published"
            };
            KeyInfo {
                kid: r.kid,
                algorithm: r.algorithm,
                created_at: r.created_at,
                activates_at: r.activates_at,
                retired_at: r.retired_at,
                state,
            }
        })
        .collect())
}

impl KeyRing {
    /// Loads the keys, creating the first one when none can sign. Fails, naming the key, when
    /// a stored key does not open with the configured master key.
    pub async fn load(pool: DbPool, config: &Config) -> Result<Self> {
        let ring = Self {
            pool,
            master: config.master_key(),
            policy: KeyPolicy::from_config(config),
            loaded: Arc::default(),
            last_lookup: Arc::default(),
            reloading: Arc::default(),
            verified: VerifiedTokens::default(),
        };
        ring.check().await?;
        Ok(ring)
    }

    /// A ring with one fresh in-memory ES256 key and no database behind it (the pool is never
    /// connected unless a token names an unknown kid), for the benchmarks in `server/benches/`.
    pub fn ephemeral(policy: KeyPolicy) -> Result<Self> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| Error::internal("random generator failed"))?;
        let secret = SecretKey::from_slice(&bytes).map_err(Error::internal)?;
        let point = secret.public_key().to_encoded_point(false);
        let (x, y) = (
            URL_SAFE_NO_PAD.encode(point.x().expect("x")),
            URL_SAFE_NO_PAD.encode(point.y().expect("y")),
        );
        let kid = crate::crypto::secret::random_token(12);
        let der = secret.to_pkcs8_der().map_err(Error::internal)?;
        let mut loaded = LoadedKeys::default();
        loaded.verifiers.insert(
            kid.clone(),
            JwtVerifier::from_jwk(Alg::Es256, &x, &y).map_err(|_| Error::internal("jwk"))?,
        );
        loaded.signers.push(Signer {
            kid: kid.clone(),
            activates_at: Utc::now() - chrono::Duration::seconds(1),
            key: JwtSigner::from_pkcs8(Alg::Es256, der.as_bytes()).map_err(Error::internal)?,
        });
        loaded.jwks.push(PublicJwk {
            kty: "EC".into(),
            kid,
            use_: "sig".into(),
            alg: "ES256".into(),
            crv: "P-256".into(),
            x,
            y,
            ..PublicJwk::default()
        });
        Ok(Self {
            pool: crate::db::pool("postgres://ephemeral.invalid/none", 1)
                .map_err(Error::internal)?,
            master: MasterKey::from_base64(&MasterKey::generate_base64())
                .map_err(Error::internal)?,
            policy,
            loaded: Arc::new(RwLock::new(loaded)),
            last_lookup: Arc::default(),
            reloading: Arc::default(),
            verified: VerifiedTokens::default(),
        })
    }

    /// The same ring without the cache of already verified tokens, so that every verification
    /// checks the signature (for `server/benches/es256_verify.rs`).
    pub fn without_verification_cache(mut self) -> Self {
        self.verified = VerifiedTokens {
            disabled: true,
            ..VerifiedTokens::default()
        };
        self
    }

    /// Reloads, then rotates and retires what is due, and reloads again if anything changed.
    /// Reloading first proves the master key opens the stored keys before this instance seals a
    /// new one with it.
    pub async fn check(&self) -> Result<()> {
        self.refresh().await?;
        if self.maintain().await? {
            self.refresh().await?;
        }
        Ok(())
    }

    /// Re-reads the non-retired keys from the database.
    pub async fn refresh(&self) -> Result<()> {
        let _serial = self.reloading.lock().await;
        let rows = load_rows(&mut *self.pool.get().await?).await?;
        let mut loaded = LoadedKeys::default();
        for row in rows {
            let jwk: PublicJwk =
                serde_json::from_value(row.public_jwk.clone()).map_err(Error::internal)?;
            let decoding = jwk.verifier().map_err(|_| {
                Error::internal(format!("signing key {} has an invalid public JWK", row.kid))
            })?;
            loaded.signers.push(Signer {
                kid: row.kid.clone(),
                activates_at: row.activates_at,
                key: open_key(&self.master, &row)?,
            });
            loaded.verifiers.insert(row.kid.clone(), decoding);
            loaded.jwks.push(jwk);
        }
        *self.loaded.write().await = loaded;
        Ok(())
    }

    /// Retires finished keys and creates the next one when due. Runs under a transaction-scoped
    /// advisory lock: an instance that does not get it skips the round (another one is doing the
    /// same work), so concurrent instances never create two keys. Returns whether it changed
    /// anything.
    async fn maintain(&self) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        let (master, policy) = (&self.master, &self.policy);
        conn.transaction(async |conn| {
            if !diesel::select(pg_try_advisory_xact_lock(ROTATION_LOCK)).get_result::<bool>(conn).await? {
                return Ok(false);
            }
            let keys: Vec<(String, DateTime<Utc>, String)> = signing_keys::table
                .filter(signing_keys::retired_at.is_null())
                .select((signing_keys::kid, signing_keys::activates_at, signing_keys::algorithm))
                .load(conn)
                .await?;
            let rs256 = Alg::Rs256.name();
            let family = |rsa: bool| -> Vec<(String, DateTime<Utc>)> {
                keys.iter().filter(|k| (k.2 == rs256) == rsa).map(|k| (k.0.clone(), k.1)).collect()
            };
            let mut changed = false;
            for (keys, alg) in [(family(false), policy.algorithm), (family(true), Alg::Rs256)] {
                // The RSA family starts only when an ID token first needs it.
                if keys.is_empty() && alg == Alg::Rs256 {
                    continue;
                }
                let plan = plan(&keys, Utc::now(), policy);
                if !plan.retire.is_empty() {
                    diesel::update(signing_keys::table.filter(signing_keys::kid.eq_any(&plan.retire)))
                        .set((
                            signing_keys::retired_at.eq(Utc::now()),
                            signing_keys::private_sealed.eq(None::<Vec<u8>>),
                        ))
                        .execute(conn)
                        .await?;
                    tracing::info!(kids = ?plan.retire, "signing keys retired");
                }
                if let Some(activates_at) = plan.create_at {
                    let kid = insert_key(conn, master, alg, activates_at).await?;
                    tracing::info!(%kid, %activates_at, algorithm = alg.name(), "signing key created");
                }
                changed |= !plan.retire.is_empty() || plan.create_at.is_some();
            }
            Ok::<_, Error>(changed)
        })
        .await
    }

    /// Runs [`check`](Self::check) every `tokens.key_check_interval_secs`, so rotations and
    /// retirements (this instance's, another's, the CLI's) are picked up.
    pub fn spawn_refresher(&self) {
        let ring = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(ring.policy.check_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(err) = ring.check().await {
                    tracing::error!(error = %err, "signing key check failed");
                }
            }
        });
    }

    pub async fn jwks(&self) -> Vec<PublicJwk> {
        self.loaded.read().await.jwks.clone()
    }

    /// Signs an access token (`typ: at+jwt`, RFC 9068).
    pub async fn sign<C: Serialize>(&self, claims: &C) -> Result<String> {
        self.sign_typed("at+jwt", claims).await
    }

    /// Signs with the current key and returns the token and the algorithm used (ID tokens need
    /// it for `at_hash`).
    pub async fn sign_typed<C: Serialize>(&self, typ: &str, claims: &C) -> Result<String> {
        let loaded = self.loaded.read().await;
        let signer = loaded
            .current(false)
            .ok_or_else(|| Error::internal("no active signing key"))?;
        signer
            .key
            .sign(&signer.kid, typ, claims)
            .map_err(Error::internal)
    }

    /// Signs an ID token (`typ: JWT`) with the current RSA key, creating the first one if there
    /// is none yet.
    pub async fn sign_rs256<C: Serialize>(&self, claims: &C) -> Result<String> {
        {
            let loaded = self.loaded.read().await;
            if let Some(signer) = loaded.current(true) {
                return signer
                    .key
                    .sign(&signer.kid, "JWT", claims)
                    .map_err(Error::internal);
            }
        }
        self.ensure_rsa_key().await?;
        let loaded = self.loaded.read().await;
        let signer = loaded
            .current(true)
            .ok_or_else(|| Error::internal("no active RSA signing key"))?;
        signer
            .key
            .sign(&signer.kid, "JWT", claims)
            .map_err(Error::internal)
    }

    /// Creates the first RSA key unless one exists (under the rotation lock, waiting for it, so
    /// instances racing here make one key), then reloads.
    pub async fn ensure_rsa_key(&self) -> Result<()> {
        let mut conn = self.pool.get().await?;
        let master = &self.master;
        conn.transaction(async |conn| {
            diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                .bind::<BigInt, _>(ROTATION_LOCK)
                .execute(conn)
                .await?;
            let existing: i64 = signing_keys::table
                .filter(signing_keys::retired_at.is_null())
                .filter(signing_keys::algorithm.eq(Alg::Rs256.name()))
                .count()
                .get_result(conn)
                .await?;
            if existing == 0 {
                let kid = insert_key(conn, master, Alg::Rs256, Utc::now()).await?;
                tracing::info!(%kid, algorithm = "RS256", "signing key created");
            }
            Ok::<_, Error>(())
        })
        .await?;
        drop(conn);
        self.refresh().await
    }

    /// The algorithm of the key that signs access tokens now.
    pub async fn signing_alg(&self) -> Alg {
        let loaded = self.loaded.read().await;
        loaded
            .current(false)
            .map(|s| s.key.alg())
            .unwrap_or(self.policy.algorithm)
    }

    /// Reloads the keys unless that was done less than a second ago.
    async fn reload_for_unknown_kid(&self) {
        let mut last = self.last_lookup.lock().await;
        if last.is_some_and(|at| at.elapsed() < Duration::from_secs(1)) {
            return;
        }
        *last = Some(Instant::now());
        if let Err(err) = self.refresh().await {
            tracing::warn!(error = %err, "signing key reload failed");
        }
    }

    /// Verifies signature, header `typ`, `iss` and `exp` against any published key and returns the
    /// claims; the audience is the caller's to check.
    pub async fn verify_signed(
        &self,
        token: &str,
        issuer: &str,
        typ: &str,
    ) -> Result<serde_json::Value> {
        let claims = self
            .verify_signed_ignoring_expiry(token, issuer, typ)
            .await?;
        let exp = claims["exp"].as_i64().ok_or_else(|| {
            Error::unauthenticated("UNAUTHENTICATED", "the access token is invalid")
        })?;
        if exp + (self.policy.leeway_secs as i64) < Utc::now().timestamp() {
            return Err(Error::unauthenticated(
                "TOKEN_EXPIRED",
                "the access token has expired",
            ));
        }
        Ok(claims)
    }

    /// Verifies signature, header `typ` and `iss`, but not `exp`: for hints (an expired ID token
    /// still names its user at logout).
    pub async fn verify_signed_ignoring_expiry(
        &self,
        token: &str,
        issuer: &str,
        typ: &str,
    ) -> Result<serde_json::Value> {
        let invalid = || Error::unauthenticated("UNAUTHENTICATED", "the access token is invalid");
        let cache_key = VerifiedTokens::key(token);
        let (token_typ, claims) = match self.verified.get(&cache_key) {
            Some(hit) => hit,
            None => {
                let kid = jwt::kid(token).map_err(|_| invalid())?;
                let token_typ = jwt::typ(token).unwrap_or_default();
                if !self.loaded.read().await.verifiers.contains_key(&kid) {
                    self.reload_for_unknown_kid().await;
                }
                let claims: serde_json::Value = {
                    let loaded = self.loaded.read().await;
                    let key = loaded.verifiers.get(&kid).ok_or_else(invalid)?;
                    // RSA keys sign ID tokens only: nothing else they sign is ever accepted.
                    if key.alg() == Alg::Rs256 && !token_typ.eq_ignore_ascii_case("JWT") {
                        return Err(invalid());
                    }
                    key.verify(token).map_err(|_| invalid())?
                };
                self.verified
                    .insert(cache_key, token_typ.clone(), claims.clone());
                (token_typ, claims)
            }
        };
        if !token_typ.eq_ignore_ascii_case(typ) {
            return Err(invalid());
        }
        if claims["iss"].as_str() != Some(issuer) {
            return Err(invalid());
        }
        Ok(claims)
    }

    /// Verifies an access token (`typ: at+jwt`) for `audience` and returns its claims.
    pub async fn verify<C: DeserializeOwned>(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
    ) -> Result<C> {
        let invalid = || Error::unauthenticated("UNAUTHENTICATED", "the access token is invalid");
        let claims = self.verify_signed(token, issuer, "at+jwt").await?;
        if !audience_contains(&claims, audience) {
            return Err(invalid());
        }
        serde_json::from_value(claims).map_err(|_| invalid())
    }
}

/// Whether the `aud` claim (a string or an array) names `audience`.
pub fn audience_contains(claims: &serde_json::Value, audience: &str) -> bool {
    match &claims["aud"] {
        serde_json::Value::String(aud) => aud == audience,
        serde_json::Value::Array(auds) => auds.iter().any(|a| a.as_str() == Some(audience)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> KeyPolicy {
        KeyPolicy {
            algorithm: Alg::Es256,
            rotation_period: chrono::Duration::days(30),
            publish_lead: chrono::Duration::hours(1),
            check_interval: Duration::from_secs(60),
            leeway_secs: 30,
            retire_after: chrono::Duration::seconds(900 + 30 + 60),
        }
    }

    fn key(kid: &str, at: DateTime<Utc>) -> (String, DateTime<Utc>) {
        (kid.to_string(), at)
    }

    #[test]
    fn first_key_signs_at_once() {
        let now = Utc::now();
        assert_eq!(
            plan(&[], now, &policy()),
            Plan {
                retire: vec![],
                create_at: Some(now)
            }
        );
        // Only a pending key (rotated before the first start): nothing could sign until it activates.
        let pending = [key("a", now + chrono::Duration::minutes(5))];
        assert_eq!(plan(&pending, now, &policy()).create_at, Some(now));
    }

    #[test]
    fn rotates_once_per_period_with_lead() {
        let now = Utc::now();
        let p = policy();
        let young = [key("a", now - chrono::Duration::days(29))];
        assert_eq!(
            plan(&young, now, &p),
            Plan {
                retire: vec![],
                create_at: None
            }
        );
        let old = [key("a", now - chrono::Duration::days(31))];
        assert_eq!(plan(&old, now, &p).create_at, Some(now + p.publish_lead));
        // A pending successor exists: no second one.
        let with_pending = [
            key("a", now - chrono::Duration::days(31)),
            key("b", now + chrono::Duration::minutes(10)),
        ];
        assert_eq!(
            plan(&with_pending, now, &p),
            Plan {
                retire: vec![],
                create_at: None
            }
        );
    }

    #[test]
    fn retires_only_after_the_last_token_expired() {
        let now = Utc::now();
        let p = policy();
        let switched = |ago: i64| {
            [
                key("old", now - chrono::Duration::days(31)),
                key("new", now - chrono::Duration::seconds(ago)),
            ]
        };
        assert!(
            plan(&switched(900), now, &p).retire.is_empty(),
            "its tokens may still be valid"
        );
        assert!(plan(&switched(989), now, &p).retire.is_empty());
        assert_eq!(
            plan(&switched(990), now, &p).retire,
            vec!["old".to_string()]
        );
        // A pending successor retires nothing, and the signer itself is never retired.
        let pending = [
            key("a", now - chrono::Duration::days(1)),
            key("b", now + chrono::Duration::minutes(1)),
        ];
        assert!(plan(&pending, now, &p).retire.is_empty());
    }
}
