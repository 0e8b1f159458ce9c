//! The OAuth service: what the protocol endpoints, the hosted pages and the gRPC adapters share.

use std::sync::Arc;

use crate::{
    auth::{revocation::RevocationList, session_check::SessionCheck},
    config::OAuthConfig,
    crypto::keys::KeyRing,
    db::DbPool,
    identity::service::IdentityService,
    oauth::clients::ClientRegistry,
};

#[derive(Clone)]
pub struct OAuthService {
    pub(crate) pool: DbPool,
    pub(crate) keys: KeyRing,
    pub(crate) identity: IdentityService,
    pub(crate) config: Arc<OAuthConfig>,
    /// `iss` of every token, and the base of every endpoint URL.
    pub(crate) issuer: Arc<str>,
    /// `aud` of tokens for the mgpass API itself (the `mgpass` system resource).
    pub(crate) default_audience: Arc<str>,
    pub(crate) clients: ClientRegistry,
    pub(crate) revoked: RevocationList,
    /// Whether the session behind a user token is alive (cached one second).
    pub(crate) sessions: SessionCheck,
}

impl OAuthService {
    pub fn new(
        pool: DbPool,
        keys: KeyRing,
        identity: IdentityService,
        config: OAuthConfig,
        issuer: String,
        default_audience: String,
        revoked: RevocationList,
        sessions: SessionCheck,
    ) -> Self {
        let clients = ClientRegistry::new(
            pool.clone(),
            std::time::Duration::from_millis(config.client_cache_ttl_ms),
        );
        Self {
            revoked,
            sessions,
            pool,
            keys,
            identity,
            config: Arc::new(config),
            issuer: issuer.into(),
            default_audience: default_audience.into(),
            clients,
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn identity(&self) -> &IdentityService {
        &self.identity
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }
}

impl OAuthService {
    /// An application by its id (not its client id), uncached: for the rarer paths that start
    /// from stored grant state.
    pub async fn application_by_id(
        &self,
        id: uuid::Uuid,
    ) -> crate::error::Result<Arc<crate::oauth::model::ApplicationRow>> {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;

        use crate::{db::schema::applications, oauth::model::ApplicationRow};
        let mut conn = self.pool.get().await?;
        let app: Option<ApplicationRow> = applications::table
            .find(id)
            .select(ApplicationRow::as_select())
            .first(&mut conn)
            .await
            .optional()?;
        app.map(Arc::new).ok_or_else(|| {
            crate::error::Error::not_found("APPLICATION_NOT_FOUND", "no such application")
        })
    }

    /// Whether any application lists `origin` in its allowed origins (CORS preflights carry no
    /// client id).
    pub async fn origin_allowed(&self, origin: &str) -> bool {
        use diesel::{dsl::exists, prelude::*, select};
        use diesel_async::RunQueryDsl;

        use crate::db::schema::applications;
        let Ok(mut conn) = self.pool.get().await else {
            return false;
        };
        select(exists(applications::table.filter(
            applications::allowed_origins.contains(vec![origin.to_string()]),
        )))
        .get_result(&mut conn)
        .await
        .unwrap_or(false)
    }
}
