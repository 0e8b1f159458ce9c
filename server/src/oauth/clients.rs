//! Clients as the protocol sees them: a short-lived cache of applications and their secret
//! hashes, client authentication, and redirect-URI matching.
//!
//! The token endpoint authenticates a client on every call; reading Postgres each time would cap
//! client-credentials grants far below what the signing itself allows. Entries live
//! `oauth.client_cache_ttl_ms` (1 s by default), so a rotated or deleted secret stops working on
//! every instance within that time; the instance that made the change forgets it at once.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::{
    access::role_store,
    crypto::secret::{constant_time_eq, digest},
    db::{
        DbPool,
        schema::{applications, client_secrets},
    },
    error::{Error, Result},
    oauth::model::{AppType, ApplicationRow, ResourceScopes},
};

/// Entries kept at most; past it the cache starts over (unknown client ids are cached too, so a
/// flood of made-up ids must not grow it without bound).
const MAX_ENTRIES: usize = 10_000;
/// `last_used_at` of a secret is written at most this often.
const LAST_USE_RESOLUTION: Duration = Duration::from_secs(60);

struct Secret {
    id: Uuid,
    hash: Vec<u8>,
    expires_at: Option<DateTime<Utc>>,
}

/// An application as the grants need it: its settings and what its roles give it (machine to
/// machine applications hold roles; the client-credentials grant is limited by them).
pub struct Client {
    pub app: Arc<ApplicationRow>,
    pub role_scopes: Vec<ResourceScopes>,
    secrets: Vec<Secret>,
}

struct Cached {
    loaded_at: Instant,
    client: Option<Arc<Client>>,
}

#[derive(Clone)]
pub struct ClientRegistry {
    pool: DbPool,
    ttl: Duration,
    cache: Arc<RwLock<HashMap<String, Cached>>>,
    last_use_written: Arc<RwLock<HashMap<Uuid, Instant>>>,
}

/// The RFC 6749 `invalid_client` answer: the same for an unknown client and a wrong secret.
pub fn invalid_client() -> Error {
    Error::unauthenticated("INVALID_CLIENT", "client authentication failed")
}

impl ClientRegistry {
    pub fn new(pool: DbPool, ttl: Duration) -> Self {
        Self {
            pool,
            ttl,
            cache: Arc::default(),
            last_use_written: Arc::default(),
        }
    }

    async fn load(&self, client_id: &str) -> Result<Option<Arc<Client>>> {
        {
            let cache = self.cache.read().expect("client cache lock");
            if let Some(entry) = cache
                .get(client_id)
                .filter(|e| e.loaded_at.elapsed() < self.ttl)
            {
                return Ok(entry.client.clone());
            }
        }
        let mut conn = self.pool.get().await?;
        let app: Option<ApplicationRow> = applications::table
            .filter(applications::client_id.eq(client_id))
            .select(ApplicationRow::as_select())
            .first(&mut conn)
            .await
            .optional()?;
        let client = match app {
            Some(app) => {
                let secrets: Vec<(Uuid, Vec<u8>, Option<DateTime<Utc>>)> = client_secrets::table
                    .filter(client_secrets::application_id.eq(app.id))
                    .select((
                        client_secrets::id,
                        client_secrets::secret_hash,
                        client_secrets::expires_at,
                    ))
                    .load(&mut conn)
                    .await?;
                let secrets = secrets
                    .into_iter()
                    .map(|(id, hash, expires_at)| Secret {
                        id,
                        hash,
                        expires_at,
                    })
                    .collect();
                let role_scopes = role_store::application_roles(&mut conn, app.id)
                    .await?
                    .iter()
                    .flat_map(|r| r.resource_scopes())
                    .collect();
                Some(Arc::new(Client {
                    app: Arc::new(app),
                    role_scopes,
                    secrets,
                }))
            }
            None => None,
        };
        let mut cache = self.cache.write().expect("client cache lock");
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(
            client_id.to_string(),
            Cached {
                loaded_at: Instant::now(),
                client: client.clone(),
            },
        );
        Ok(client)
    }

    /// The application with this client id (`NOT_FOUND` / `CLIENT_NOT_FOUND` if none).
    pub async fn get(&self, client_id: &str) -> Result<Arc<ApplicationRow>> {
        self.load(client_id)
            .await?
            .map(|c| c.app.clone())
            .ok_or_else(|| {
                Error::not_found("APPLICATION_NOT_FOUND", "no application has this client_id")
            })
    }

    /// Authenticates a client at the token, revocation, introspection and device endpoints.
    /// Confidential clients must present a current secret; public clients must present none.
    pub async fn authenticate(&self, client_id: &str, secret: Option<&str>) -> Result<Arc<Client>> {
        if client_id.is_empty() {
            return Err(invalid_client());
        }
        let Some(client) = self.load(client_id).await? else {
            // Same work as a wrong secret, so timing does not tell which client ids exist.
            let _ = secret.map(digest);
            return Err(invalid_client());
        };
        let confidential = client.app.app_type().is_confidential();
        match (confidential, secret) {
            (false, None) => Ok(client),
            (false, Some(_)) | (true, None) => Err(invalid_client()),
            (true, Some(secret)) => {
                let presented = digest(secret);
                let now = Utc::now();
                // Every secret is compared, so the time does not depend on which one matched.
                let mut matched = None;
                for s in client.secrets.iter() {
                    if constant_time_eq(&presented, &s.hash)
                        && s.expires_at.is_none_or(|at| at > now)
                    {
                        matched = Some(s.id);
                    }
                }
                let secret_id = matched.ok_or_else(invalid_client)?;
                self.record_use(secret_id);
                Ok(client)
            }
        }
    }

    /// Notes that a secret was used, at most once a minute per secret, off the request path.
    fn record_use(&self, secret_id: Uuid) {
        {
            let written = self.last_use_written.read().expect("last use lock");
            if written
                .get(&secret_id)
                .is_some_and(|at| at.elapsed() < LAST_USE_RESOLUTION)
            {
                return;
            }
        }
        {
            let mut written = self.last_use_written.write().expect("last use lock");
            if written.len() >= MAX_ENTRIES {
                written.clear();
            }
            written.insert(secret_id, Instant::now());
        }
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let result = async {
                let mut conn = pool.get().await?;
                diesel::update(client_secrets::table.find(secret_id))
                    .set(client_secrets::last_used_at.eq(Utc::now()))
                    .execute(&mut conn)
                    .await?;
                Ok::<_, Error>(())
            }
            .await;
            if let Err(err) = result {
                tracing::warn!(error = %err, "recording a client secret's last use failed");
            }
        });
    }

    /// Forgets a client at once on this instance (after an admin change).
    pub fn invalidate(&self, client_id: &str) {
        self.cache
            .write()
            .expect("client cache lock")
            .remove(client_id);
    }
}

/// Whether `uri` is one of the application's redirect URIs. Matching is exact, character for
/// character (no normalisation: lookalikes must fail), except that a native app's loopback
/// redirect may use any port (RFC 8252 §7.3).
pub fn redirect_uri_allowed(app: &ApplicationRow, uri: &str) -> bool {
    if app.redirect_uris.iter().any(|r| r == uri) {
        return true;
    }
    app.app_type() == AppType::Native
        && app
            .redirect_uris
            .iter()
            .any(|r| loopback_equal_but_port(r, uri))
}

/// `http://127.0.0.1:PORT/path` or `http://[::1]:PORT/path` equal to the registered one except
/// for the port.
fn loopback_equal_but_port(registered: &str, presented: &str) -> bool {
    let (Ok(r), Ok(p)) = (url::Url::parse(registered), url::Url::parse(presented)) else {
        return false;
    };
    let loopback = |u: &url::Url| {
        u.scheme() == "http"
            && (matches!(u.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
                || matches!(u.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback()))
    };
    // The presented URI must be in canonical form: what it parses to, printed back, is itself
    // (this refuses encoded traversal, backslashes, `..`, user info and other tricks).
    let canonical = p.as_str() == presented
        || (p.path() == "/" && !presented.ends_with('/') && format!("{presented}/") == p.as_str());
    canonical
        && loopback(&r)
        && loopback(&p)
        && p.scheme() == r.scheme()
        && p.host() == r.host()
        && p.username().is_empty()
        && p.password().is_none()
        && p.path() == r.path()
        && p.query() == r.query()
        && p.fragment().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(kind: AppType, uris: &[&str]) -> ApplicationRow {
        ApplicationRow {
            id: Uuid::nil(),
            client_id: "c".into(),
            name: "n".into(),
            description: String::new(),
            app_type: kind.as_str().into(),
            redirect_uris: uris.iter().map(|s| s.to_string()).collect(),
            post_logout_redirect_uris: vec![],
            grant_types: vec![],
            allowed_scopes: vec![],
            allowed_resources: serde_json::json!([]),
            allowed_origins: vec![],
            access_token_ttl_secs: 60,
            refresh_token_ttl_secs: 60,
            id_token_ttl_secs: 60,
            first_party: false,
            require_pkce: true,
            branding: serde_json::json!({}),
            id_token_signing_alg: String::new(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn exact_match_only_for_web_apps() {
        let a = app(AppType::Web, &["https://app.example.com/cb"]);
        assert!(redirect_uri_allowed(&a, "https://app.example.com/cb"));
        for bad in [
            "https://app.example.com/cb/",
            "https://app.example.com/cbx",
            "https://app.example.com/c",
            "https://APP.example.com/cb",
            "https://app.example.com/CB",
            "https://app.example.com/cb?x=1",
            "https://app.example.com/cb#f",
            "https://app.example.com@evil.com/cb",
            "https://evil.com@app.example.com/cb",
            "https://app.example.com/cb/..;/evil",
            "https://app.example.com/cb/%2e%2e/evil",
            "https://app.example.com.evil.com/cb",
            "http://app.example.com/cb",
            "javascript:alert(1)//https://app.example.com/cb",
            "data:text/html,https://app.example.com/cb",
        ] {
            assert!(!redirect_uri_allowed(&a, bad), "{bad} accepted");
        }
    }

    #[test]
    fn native_loopback_any_port() {
        let a = app(
            AppType::Native,
            &["http://127.0.0.1/callback", "com.example.app:/oauth"],
        );
        assert!(redirect_uri_allowed(&a, "http://127.0.0.1:51234/callback"));
        assert!(redirect_uri_allowed(&a, "com.example.app:/oauth"));
        for bad in [
            "http://127.0.0.1:51234/callback/../x",
            "http://127.0.0.1:51234/other",
            "http://127.0.0.1:51234/callback?x=1",
            "http://localhost.evil.com:51234/callback",
            "http://user@127.0.0.1:51234/callback",
            "https://127.0.0.1:51234/callback",
            "http://127.0.0.1:51234/%63allback",
            "com.example.app:/oauth/x",
        ] {
            assert!(!redirect_uri_allowed(&a, bad), "{bad} accepted");
        }
        // Only native apps get the port exception.
        let spa = app(AppType::Spa, &["http://127.0.0.1/callback"]);
        assert!(!redirect_uri_allowed(
            &spa,
            "http://127.0.0.1:5000/callback"
        ));
    }
}
