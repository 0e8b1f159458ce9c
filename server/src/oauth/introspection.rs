//! Revocation (RFC 7009) and introspection (RFC 7662).
//!
//! Refresh tokens (`mgr_...`) are looked up by hash; access tokens are JWTs, checked by
//! signature, expiry, the revocation list and, for user tokens, the session they belong to.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::{
    crypto::secret,
    error::Result,
    identity::{session_service::REFRESH_TOKEN_PREFIX, session_store},
    oauth::{OAuthService, grant_store as store},
};

/// What introspection says about an active token (RFC 7662 §2.2).
#[derive(Debug, Clone, Default)]
pub struct Introspection {
    pub active: bool,
    pub scope: String,
    pub client_id: String,
    pub sub: String,
    pub token_type: String,
    pub exp: i64,
    pub iat: i64,
    pub aud: Vec<String>,
    pub iss: String,
    pub jti: String,
    pub org_id: String,
    pub sid: String,
}

fn audiences(claims: &Value) -> Vec<String> {
    match &claims["aud"] {
        Value::String(a) => vec![a.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

impl OAuthService {
    /// Revokes a refresh token (its whole grant) or an access token, if it was issued to the
    /// calling client. Unknown, invalid or foreign tokens change nothing and are not reported
    /// (RFC 7009 §2.2: the answer must not help probing).
    pub async fn revoke(
        &self,
        client_id: &str,
        client_secret: Option<&str>,
        token: &str,
    ) -> Result<()> {
        let client = self.clients.authenticate(client_id, client_secret).await?;
        let app = &client.app;
        if token.starts_with(REFRESH_TOKEN_PREFIX) {
            let mut conn = self.pool.get().await?;
            let Some(row) =
                session_store::lock_refresh_token(&mut conn, &secret::digest(token)).await?
            else {
                return Ok(());
            };
            let Some(session) = store::get_grant_session(&mut conn, row.session_id).await? else {
                return Ok(());
            };
            if session.application_id == app.id.to_string() {
                store::revoke_session(&mut conn, session.id, "revoked_by_client").await?;
                self.sessions.forget(session.id);
                tracing::info!(client_id, session_id = %session.id, "refresh token revoked with its grant");
            }
            return Ok(());
        }
        let Ok(claims) = self.keys.verify_signed(token, &self.issuer, "at+jwt").await else {
            return Ok(());
        };
        if claims["client_id"].as_str() != Some(&app.client_id) {
            return Ok(());
        }
        let (Some(jti), Some(exp)) = (claims["jti"].as_str(), claims["exp"].as_i64()) else {
            return Ok(());
        };
        let expires_at = DateTime::<Utc>::from_timestamp(exp, 0).unwrap_or_else(Utc::now);
        self.revoked.revoke(jti, expires_at).await?;
        tracing::info!(client_id, "access token revoked");
        Ok(())
    }

    /// Introspects a token for a confidential client (a resource server). Anything not active,
    /// for whatever reason, is just `active: false`.
    pub async fn introspect(
        &self,
        client_id: &str,
        client_secret: Option<&str>,
        token: &str,
    ) -> Result<Introspection> {
        let client = self.clients.authenticate(client_id, client_secret).await?;
        if !client.app.app_type().is_confidential() {
            return Err(crate::oauth::clients::invalid_client());
        }
        if token.starts_with(REFRESH_TOKEN_PREFIX) {
            return self
                .introspect_refresh_token(&client.app.id, &client.app.client_id, token)
                .await;
        }
        let Ok(claims) = self.keys.verify_signed(token, &self.issuer, "at+jwt").await else {
            return Ok(Introspection::default());
        };
        let jti = claims["jti"].as_str().unwrap_or_default();
        if self.revoked.is_revoked(jti) {
            return Ok(Introspection::default());
        }
        let sid = claims["sid"].as_str().unwrap_or_default();
        if !sid.is_empty() {
            let Ok(session_id) = Uuid::parse_str(sid) else {
                return Ok(Introspection::default());
            };
            if !self.sessions.is_active(session_id).await? {
                return Ok(Introspection::default());
            }
        }
        let text = |k: &str| claims[k].as_str().unwrap_or_default().to_string();
        // An organization token speaks for the user's role there: it dies with the membership.
        let org_id = text("org_id");
        if !org_id.is_empty() && !self.is_member(&org_id, &text("sub")).await? {
            return Ok(Introspection::default());
        }
        Ok(Introspection {
            active: true,
            scope: text("scope"),
            client_id: text("client_id"),
            sub: text("sub"),
            token_type: "Bearer".into(),
            exp: claims["exp"].as_i64().unwrap_or_default(),
            iat: claims["iat"].as_i64().unwrap_or_default(),
            aud: audiences(&claims),
            iss: text("iss"),
            jti: jti.to_string(),
            org_id,
            sid: sid.to_string(),
        })
    }

    async fn is_member(&self, organization: &str, user: &str) -> Result<bool> {
        let (Ok(organization), Ok(user)) = (Uuid::parse_str(organization), Uuid::parse_str(user))
        else {
            return Ok(false);
        };
        let mut conn = self.pool.get().await?;
        Ok(
            crate::org::org_store::get_member(&mut conn, organization, user)
                .await?
                .is_some(),
        )
    }

    /// A refresh token is active for the client it was issued to, while unused, unexpired and
    /// its grant not revoked.
    async fn introspect_refresh_token(
        &self,
        app_id: &Uuid,
        client_id: &str,
        token: &str,
    ) -> Result<Introspection> {
        let mut conn = self.pool.get().await?;
        let Some(row) =
            session_store::lock_refresh_token(&mut conn, &secret::digest(token)).await?
        else {
            return Ok(Introspection::default());
        };
        let Some(session) = store::get_grant_session(&mut conn, row.session_id).await? else {
            return Ok(Introspection::default());
        };
        let now = Utc::now();
        if session.application_id != app_id.to_string()
            || row.used_at.is_some()
            || row.expires_at <= now
            || session.revoked_at.is_some()
            || session.expires_at <= now
        {
            return Ok(Introspection::default());
        }
        Ok(Introspection {
            active: true,
            scope: session.scope.clone(),
            client_id: client_id.to_string(),
            sub: session.user_id.to_string(),
            token_type: "refresh_token".into(),
            exp: row.expires_at.timestamp(),
            iss: self.issuer.to_string(),
            sid: session.id.to_string(),
            ..Introspection::default()
        })
    }
}
