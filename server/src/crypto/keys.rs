//! Token signing keys. Keys live in Postgres; every instance loads them and refreshes them
//! periodically. A new key is published in the JWKS `lead` seconds before it starts signing, so
//! verifiers that cache the JWKS already know it; older keys stay published to verify the tokens
//! they signed.

use std::{collections::HashMap, sync::Arc};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::{SecretKey, elliptic_curve::sec1::ToEncodedPoint, pkcs8::EncodePrivateKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use crate::{
    db::{DbPool, schema::signing_keys},
    error::{Error, Result},
};

/// A public key as published in the JWKS.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PublicJwk {
    pub kty: String,
    pub kid: String,
    #[serde(rename = "use")]
    pub use_: String,
    pub alg: String,
    pub crv: String,
    pub x: String,
    pub y: String,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = signing_keys)]
struct KeyRow {
    kid: String,
    private_der: Vec<u8>,
    public_jwk: serde_json::Value,
    activates_at: DateTime<Utc>,
}

struct LoadedKeys {
    /// The key that signs now: the newest active one.
    signer: Option<(String, EncodingKey)>,
    verifiers: HashMap<String, DecodingKey>,
    jwks: Vec<PublicJwk>,
}

/// Signs and verifies mgpass JWTs with the keys stored in Postgres.
#[derive(Clone)]
pub struct KeyRing {
    pool: DbPool,
    loaded: Arc<RwLock<LoadedKeys>>,
}

/// Creates a new ES256 key that starts signing `lead_secs` from now.
pub async fn create_key(pool: &DbPool, lead_secs: i64) -> Result<String> {
    let secret = loop {
        let mut bytes = [0u8; 32];
        SystemRandom::new().fill(&mut bytes).map_err(|_| Error::internal("random generator failed"))?;
        // Rejection sampling: almost every 32-byte string is a valid P-256 scalar.
        if let Ok(key) = SecretKey::from_slice(&bytes) {
            break key;
        }
    };
    let der = secret.to_pkcs8_der().map_err(Error::internal)?.as_bytes().to_vec();
    let point = secret.public_key().to_encoded_point(false);
    let x = URL_SAFE_NO_PAD.encode(point.x().ok_or_else(|| Error::internal("no x"))?);
    let y = URL_SAFE_NO_PAD.encode(point.y().ok_or_else(|| Error::internal("no y"))?);
    let kid = crate::crypto::secret::random_token(12);
    let jwk = PublicJwk {
        kty: "EC".into(),
        kid: kid.clone(),
        use_: "sig".into(),
        alg: "ES256".into(),
        crv: "P-256".into(),
        x,
        y,
    };
    let mut conn = pool.get().await?;
    diesel::insert_into(signing_keys::table)
        .values((
            signing_keys::kid.eq(&kid),
            signing_keys::algorithm.eq("ES256"),
            signing_keys::private_der.eq(der),
            signing_keys::public_jwk.eq(serde_json::to_value(&jwk).map_err(Error::internal)?),
            signing_keys::activates_at.eq(Utc::now() + chrono::Duration::seconds(lead_secs)),
        ))
        .execute(&mut conn)
        .await?;
    Ok(kid)
}

impl KeyRing {
    /// Loads the keys, creating the first one when the database has none.
    pub async fn load(pool: DbPool) -> Result<Self> {
        let ring = Self {
            pool,
            loaded: Arc::new(RwLock::new(LoadedKeys { signer: None, verifiers: HashMap::new(), jwks: Vec::new() })),
        };
        ring.refresh().await?;
        if ring.loaded.read().await.signer.is_none() {
            create_key(&ring.pool, 0).await?;
            ring.refresh().await?;
        }
        Ok(ring)
    }

    /// Re-reads the keys from the database (new keys from `mgpass keys rotate`, retirements).
    pub async fn refresh(&self) -> Result<()> {
        let mut conn = self.pool.get().await?;
        let rows: Vec<KeyRow> = signing_keys::table
            .filter(signing_keys::retired_at.is_null())
            .order(signing_keys::activates_at.desc())
            .select(KeyRow::as_select())
            .load(&mut conn)
            .await?;
        let now = Utc::now();
        let mut loaded = LoadedKeys { signer: None, verifiers: HashMap::new(), jwks: Vec::new() };
        for row in rows {
            let jwk: PublicJwk = serde_json::from_value(row.public_jwk).map_err(Error::internal)?;
            let decoding = DecodingKey::from_ec_components(&jwk.x, &jwk.y).map_err(Error::internal)?;
            if loaded.signer.is_none() && row.activates_at <= now {
                loaded.signer = Some((row.kid.clone(), EncodingKey::from_ec_der(&row.private_der)));
            }
            loaded.verifiers.insert(row.kid.clone(), decoding);
            loaded.jwks.push(jwk);
        }
        *self.loaded.write().await = loaded;
        Ok(())
    }

    /// Refreshes the keys every `period` in the background, so a rotation done by another
    /// instance or by the CLI is picked up.
    pub fn spawn_refresher(&self, period: std::time::Duration) {
        let ring = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(err) = ring.refresh().await {
                    tracing::warn!(error = %err, "signing key refresh failed");
                }
            }
        });
    }

    pub async fn jwks(&self) -> Vec<PublicJwk> {
        self.loaded.read().await.jwks.clone()
    }

    pub async fn sign<C: Serialize>(&self, claims: &C) -> Result<String> {
        let loaded = self.loaded.read().await;
        let (kid, key) = loaded.signer.as_ref().ok_or_else(|| Error::internal("no active signing key"))?;
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.clone());
        header.typ = Some("at+jwt".into());
        jsonwebtoken::encode(&header, claims, key).map_err(Error::internal)
    }

    /// Verifies signature, `iss`, `aud` and `exp` and returns the claims.
    pub async fn verify<C: for<'de> Deserialize<'de>>(&self, token: &str, issuer: &str, audience: &str) -> Result<C> {
        let invalid = || Error::unauthenticated("UNAUTHENTICATED", "the access token is invalid");
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        if header.alg != Algorithm::ES256 {
            return Err(invalid());
        }
        let kid = header.kid.ok_or_else(invalid)?;
        let loaded = self.loaded.read().await;
        let key = loaded.verifiers.get(&kid).ok_or_else(invalid)?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.leeway = 30;
        jsonwebtoken::decode::<C>(token, key, &validation).map(|data| data.claims).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                Error::unauthenticated("TOKEN_EXPIRED", "the access token has expired")
            }
            _ => invalid(),
        })
    }
}
