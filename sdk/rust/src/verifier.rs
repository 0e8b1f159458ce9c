//! Offline verification of mgpass access tokens: the signature against the issuer's JWKS (fetched
//! once, cached, fetched again when a token names a key the cache lacks, which is how key
//! rotation arrives), then `iss`, `aud`, `exp` (with leeway) and the required scopes.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind, jwk::JwkSet};
use serde::{Deserialize, Serialize};

/// The claims of a verified mgpass access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    /// A string, or an array for several audiences.
    pub aud: serde_json::Value,
    pub exp: i64,
    #[serde(default)]
    pub iat: i64,
    #[serde(default)]
    pub jti: String,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub sid: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub org_id: Option<String>,
    /// Every other claim (`orgs`, ...).
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl Claims {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split_whitespace()
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }
}

/// Why a token was refused (stable names, as in the other SDKs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenErrorReason {
    TokenMissing,
    TokenMalformed,
    TokenSignatureInvalid,
    TokenExpired,
    WrongIssuer,
    WrongAudience,
    InsufficientScope,
    JwksUnavailable,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("token refused: {reason:?}: {message}")]
pub struct TokenError {
    pub reason: TokenErrorReason,
    pub message: String,
}

fn refuse(reason: TokenErrorReason, message: impl ToString) -> TokenError {
    TokenError { reason, message: message.to_string() }
}

struct Cache {
    keys: HashMap<String, (Algorithm, DecodingKey)>,
    fetched_at: Option<Instant>,
}

struct Inner {
    issuer: String,
    audience: String,
    jwks_url: String,
    required_scopes: Vec<String>,
    leeway_secs: u64,
    cache_for: Duration,
    min_refetch: Duration,
    http: reqwest::Client,
    cache: RwLock<Cache>,
    /// One fetch at a time: concurrent misses wait for it instead of fetching again.
    fetching: tokio::sync::Mutex<()>,
}

/// Verifies mgpass access tokens offline. Cheap to clone (shares the key cache).
#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<Inner>,
}

/// Configures a [`TokenVerifier`].
pub struct TokenVerifierBuilder {
    issuer: String,
    audience: String,
    jwks_url: Option<String>,
    required_scopes: Vec<String>,
    leeway_secs: u64,
    cache_for: Duration,
    min_refetch: Duration,
}

impl TokenVerifierBuilder {
    /// The JWKS URL (default `<issuer>/.well-known/jwks.json`).
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = Some(url.into());
        self
    }

    /// A scope every token must carry.
    pub fn require_scope(mut self, scope: impl Into<String>) -> Self {
        self.required_scopes.push(scope.into());
        self
    }

    /// Tolerated clock skew (default 30 s, like the server).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway_secs = leeway.as_secs();
        self
    }

    /// How long a fetched key set is used before it is fetched again (default 10 minutes).
    pub fn cache_for(mut self, duration: Duration) -> Self {
        self.cache_for = duration;
        self
    }

    /// The least time between two fetches caused by unknown key ids (default 30 s), so that
    /// tokens with made-up key ids cannot make every request fetch the JWKS.
    pub fn min_refetch_interval(mut self, duration: Duration) -> Self {
        self.min_refetch = duration;
        self
    }

    pub fn build(self) -> TokenVerifier {
        let jwks_url =
            self.jwks_url.unwrap_or_else(|| format!("{}/.well-known/jwks.json", self.issuer.trim_end_matches('/')));
        TokenVerifier {
            inner: Arc::new(Inner {
                issuer: self.issuer,
                audience: self.audience,
                jwks_url,
                required_scopes: self.required_scopes,
                leeway_secs: self.leeway_secs,
                cache_for: self.cache_for,
                min_refetch: self.min_refetch,
                http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("reqwest client"),
                cache: RwLock::new(Cache { keys: HashMap::new(), fetched_at: None }),
                fetching: tokio::sync::Mutex::new(()),
            }),
        }
    }
}

impl TokenVerifier {
    /// `issuer` is mgpass's `server.public_url`; `audience` the one this server accepts (`mgpass`
    /// for the mgpass API, or an API resource's identifier).
    pub fn builder(issuer: impl Into<String>, audience: impl Into<String>) -> TokenVerifierBuilder {
        TokenVerifierBuilder {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks_url: None,
            required_scopes: Vec::new(),
            leeway_secs: 30,
            cache_for: Duration::from_secs(600),
            min_refetch: Duration::from_secs(30),
        }
    }

    /// Verifies `token` (a `Bearer ` prefix is allowed) and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let token = token.strip_prefix("Bearer ").unwrap_or(token).trim();
        let header = jsonwebtoken::decode_header(token).map_err(|e| refuse(TokenErrorReason::TokenMalformed, e))?;
        if !matches!(header.alg, Algorithm::ES256 | Algorithm::EdDSA) {
            return Err(refuse(TokenErrorReason::TokenMalformed, format!("algorithm {:?} is not accepted", header.alg)));
        }
        let kid = header.kid.ok_or_else(|| refuse(TokenErrorReason::TokenMalformed, "the token names no key (kid)"))?;
        let (alg, key) = self.key(&kid).await?;
        if alg != header.alg {
            return Err(refuse(TokenErrorReason::TokenSignatureInvalid, "the token's algorithm is not its key's"));
        }
        let inner = &self.inner;
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&inner.issuer]);
        validation.set_audience(&[&inner.audience]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.leeway = inner.leeway_secs;
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| {
                let reason = match e.kind() {
                    ErrorKind::ExpiredSignature => TokenErrorReason::TokenExpired,
                    ErrorKind::InvalidIssuer => TokenErrorReason::WrongIssuer,
                    ErrorKind::InvalidAudience => TokenErrorReason::WrongAudience,
                    ErrorKind::InvalidSignature => TokenErrorReason::TokenSignatureInvalid,
                    _ => TokenErrorReason::TokenMalformed,
                };
                refuse(reason, e)
            })?
            .claims;
        let missing: Vec<&str> =
            inner.required_scopes.iter().map(String::as_str).filter(|s| !claims.has_scope(s)).collect();
        if !missing.is_empty() {
            return Err(refuse(
                TokenErrorReason::InsufficientScope,
                format!("the token lacks the scope(s) {}", missing.join(", ")),
            ));
        }
        Ok(claims)
    }

    fn cached(&self, kid: &str) -> (Option<(Algorithm, DecodingKey)>, Option<Duration>) {
        let cache = self.inner.cache.read().expect("key cache lock");
        (cache.keys.get(kid).cloned(), cache.fetched_at.map(|t| t.elapsed()))
    }

    async fn key(&self, kid: &str) -> Result<(Algorithm, DecodingKey), TokenError> {
        let inner = &self.inner;
        let due = |found: &Option<(Algorithm, DecodingKey)>, age: Option<Duration>| match age {
            None => true,
            Some(age) => age > inner.cache_for || (found.is_none() && age >= inner.min_refetch),
        };
        let (found, age) = self.cached(kid);
        if !due(&found, age) {
            return found.ok_or_else(|| refuse(TokenErrorReason::TokenSignatureInvalid, format!("no key {kid} in the JWKS")));
        }
        let _one_fetch = inner.fetching.lock().await;
        // Another caller may have fetched while this one waited.
        let (found, age) = self.cached(kid);
        if due(&found, age) {
            match self.fetch().await {
                Ok(keys) => {
                    *inner.cache.write().expect("key cache lock") = Cache { keys, fetched_at: Some(Instant::now()) };
                }
                // A stale cache still verifies the keys it has.
                Err(e) if found.is_none() => return Err(e),
                Err(_) => return Ok(found.expect("checked")),
            }
        }
        self.cached(kid)
            .0
            .ok_or_else(|| refuse(TokenErrorReason::TokenSignatureInvalid, format!("no key {kid} in the issuer's JWKS")))
    }

    async fn fetch(&self) -> Result<HashMap<String, (Algorithm, DecodingKey)>, TokenError> {
        let unavailable = |e: reqwest::Error| refuse(TokenErrorReason::JwksUnavailable, e);
        let set: JwkSet = self
            .inner
            .http
            .get(&self.inner.jwks_url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk)) else { continue };
            let alg = match jwk.common.key_algorithm.map(|a| a.to_string()).as_deref() {
                Some("ES256") => Algorithm::ES256,
                Some("EdDSA") => Algorithm::EdDSA,
                _ => continue,
            };
            keys.insert(kid, (alg, key));
        }
        Ok(keys)
    }
}
