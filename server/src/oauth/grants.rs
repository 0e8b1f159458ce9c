//! The grants of the token endpoint (RFC 6749 §4, OAuth 2.1): authorization code with PKCE,
//! refresh token with rotation and reuse detection, and client credentials. The device grant is
//! in `device`. Errors carry the RFC error as their reason (`INVALID_GRANT` → `invalid_grant`).

use std::sync::Arc;

use chrono::{Duration, Utc};
use diesel_async::AsyncConnection;
use uuid::Uuid;

use crate::{
    access::role_store,
    crypto::secret::{self, constant_time_eq},
    error::{Error, Result},
    identity::{
        session_service::REFRESH_TOKEN_PREFIX,
        session_store,
        store::{self as users, UserRow},
    },
    oauth::{
        OAuthService,
        clients::Client,
        grant_store::{self as store, NewGrantSession},
        id_token::Subject,
        model::{ApplicationRow, GrantKind, ResourceScopes},
        scopes::{self, RequestedScopes},
    },
};

/// What the token endpoint answers (RFC 6749 §5.1).
#[derive(Debug, Clone)]
pub struct TokenResponse {
    pub access_token: String,
    pub expires_in: u32,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub scope: String,
}

pub fn invalid_grant(message: &str) -> Error {
    Error::invalid("INVALID_GRANT", "grant", message.to_string())
}

pub fn invalid_request(field: &'static str, message: &str) -> Error {
    Error::invalid("INVALID_REQUEST", field, message.to_string())
}

pub fn unauthorized_client(grant: GrantKind) -> Error {
    Error::permission_denied(
        "UNAUTHORIZED_CLIENT",
        format!(
            "this application may not use the {} grant",
            grant.wire_name()
        ),
    )
}

/// A user-bound grant being turned into tokens.
pub(crate) struct UserGrant<'a> {
    pub app: &'a ApplicationRow,
    pub user: &'a UserRow,
    pub session_id: Uuid,
    pub oidc: Vec<String>,
    pub api: Vec<String>,
    pub audience: String,
    pub nonce: Option<String>,
    pub auth_time: chrono::DateTime<Utc>,
    pub amr: Vec<String>,
    /// Whether to add a refresh token (rotation hands one out on every refresh).
    pub refresh: bool,
    /// The organization of an organization token (`org_id`).
    pub organization: Option<Uuid>,
}

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Za-z0-9-._~]`.
fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// `BASE64URL(SHA256(verifier))`, the S256 challenge.
pub fn s256(verifier: &str) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

impl OAuthService {
    /// Client credentials (RFC 6749 §4.4) for machine-to-machine applications: the token's
    /// scopes are what was asked (everything allowed, when nothing was), limited by the app's
    /// roles. No database access when the client is cached.
    pub async fn client_credentials(
        &self,
        client_id: &str,
        client_secret: Option<&str>,
        scope: &str,
        resource: Option<&str>,
    ) -> Result<TokenResponse> {
        let client = self.clients.authenticate(client_id, client_secret).await?;
        let app = &client.app;
        if !app.app_type().is_confidential() || !app.allows_grant(GrantKind::ClientCredentials) {
            return Err(unauthorized_client(GrantKind::ClientCredentials));
        }
        let requested = scopes::check_requested(
            app,
            &scopes::parse_scope(scope),
            resource,
            &self.default_audience,
        )?;
        if !requested.oidc.is_empty() {
            return Err(scopes::invalid_scope(&requested.oidc[0]));
        }
        let api = scopes::grant_api_scopes(app, &requested, &client.role_scopes, true);
        let scope = scopes::join(&[], &api);
        let access = self
            .mint_access_token(app, Subject::Application, &requested.audience, &scope)
            .await?;
        Ok(TokenResponse {
            access_token: access.token,
            expires_in: access.expires_in,
            refresh_token: None,
            id_token: None,
            scope: access.scope,
        })
    }

    /// Authorization code (RFC 6749 §4.1.3 + RFC 7636 PKCE). A code works once, within its
    /// lifetime, for the client and redirect URI it was issued to; presenting it again revokes
    /// what the first redemption issued.
    pub async fn exchange_code(
        &self,
        client_id: &str,
        client_secret: Option<&str>,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<&str>,
    ) -> Result<TokenResponse> {
        let client = self.clients.authenticate(client_id, client_secret).await?;
        let app = client.app.clone();
        if !app.allows_grant(GrantKind::AuthorizationCode) {
            return Err(unauthorized_client(GrantKind::AuthorizationCode));
        }
        if code.is_empty() {
            return Err(invalid_request("code", "code is required"));
        }
        let code_hash = secret::digest(code);
        let session_id = Uuid::new_v4();
        let app_id = app.id;
        let session_ttl = Duration::seconds(i64::from(self.identity.session_max_lifetime_secs()));
        let mut conn = self.pool.get().await?;
        let claimed = conn
            .transaction(async |conn| {
                let Some(row) = store::claim_code(conn, &code_hash, app_id).await? else {
                    return Ok::<_, Error>(None);
                };
                if row.expires_at > Utc::now() {
                    store::insert_grant_session(
                        conn,
                        NewGrantSession {
                            id: session_id,
                            user_id: row.user_id,
                            application_id: app_id,
                            scope: row.scope.clone(),
                            resource: row.resource.clone(),
                            auth_time: row.auth_time,
                            amr: row.amr.clone(),
                            expires_at: Utc::now() + session_ttl,
                            organization_id: row.organization_id,
                        },
                    )
                    .await?;
                    store::set_code_grant_session(conn, &code_hash, session_id).await?;
                }
                Ok(Some(row))
            })
            .await?;
        let Some(row) = claimed else {
            drop(conn);
            self.handle_unclaimable_code(&code_hash, app_id).await?;
            return Err(invalid_grant(
                "the authorization code is invalid, expired or already used",
            ));
        };
        if row.expires_at <= Utc::now() {
            return Err(invalid_grant("the authorization code has expired"));
        }
        // From here on the code is spent: a failed check also ends the session it created.
        let checked = async {
            if row.redirect_uri != redirect_uri {
                return Err(invalid_grant(
                    "redirect_uri differs from the authorization request's",
                ));
            }
            match (&row.code_challenge, code_verifier.filter(|v| !v.is_empty())) {
                (Some(challenge), Some(verifier)) => {
                    if !valid_verifier(verifier)
                        || !constant_time_eq(s256(verifier).as_bytes(), challenge.as_bytes())
                    {
                        return Err(invalid_grant(
                            "code_verifier does not match the code_challenge",
                        ));
                    }
                }
                (Some(_), None) => return Err(invalid_grant("code_verifier is required")),
                // A verifier for a code issued without a challenge is a downgrade attempt.
                (None, Some(_)) => {
                    return Err(invalid_grant("no code_challenge was sent for this code"));
                }
                (None, None) => {}
            }
            let user = users::get(&mut conn, row.user_id)
                .await?
                .ok_or_else(|| invalid_grant("the user no longer exists"))?;
            if user.status != "active" {
                return Err(invalid_grant("the user is suspended"));
            }
            Ok(user)
        }
        .await;
        let user = match checked {
            Ok(user) => user,
            Err(err) => {
                store::revoke_session(&mut conn, session_id, "code_exchange_failed").await?;
                return Err(err);
            }
        };
        drop(conn);
        let requested = scopes::parse_scope(&row.scope);
        let (oidc, api): (Vec<String>, Vec<String>) = requested
            .into_iter()
            .partition(|s| crate::oauth::model::OIDC_SCOPES.contains(&s.as_str()));
        let audience = row
            .resource
            .clone()
            .unwrap_or_else(|| self.default_audience.to_string());
        let refresh =
            oidc.iter().any(|s| s == "offline_access") && app.allows_grant(GrantKind::RefreshToken);
        self.issue_user_tokens(UserGrant {
            app: &app,
            user: &user,
            session_id,
            oidc,
            api,
            audience,
            nonce: row.nonce.clone(),
            auth_time: row.auth_time,
            amr: row.amr.clone(),
            refresh,
            organization: row.organization_id,
        })
        .await
    }

    /// A code that could not be claimed. If it is this client's and was used, it is a replay:
    /// revoke the session its first redemption created (RFC 6749 §4.1.2: it may be stolen).
    async fn handle_unclaimable_code(&self, code_hash: &[u8], application_id: Uuid) -> Result<()> {
        let mut conn = self.pool.get().await?;
        if let Some(row) = store::find_code(&mut conn, code_hash).await? {
            if row.application_id != application_id {
                tracing::warn!(%application_id, "authorization code presented by another client");
            } else if row.used_at.is_some() {
                if let Some(session_id) = row.grant_session_id {
                    store::revoke_session(&mut conn, session_id, "authorization_code_replayed")
                        .await?;
                    self.sessions.forget(session_id);
                }
                tracing::warn!(application_id = %row.application_id, "authorization code replayed; its grant is revoked");
            }
        }
        Ok(())
    }

    /// Signs the access token (and ID token, refresh token) of a user grant.
    pub(crate) async fn issue_user_tokens(&self, grant: UserGrant<'_>) -> Result<TokenResponse> {
        let scope = scopes::join(&grant.oidc, &grant.api);
        let access = self
            .mint_access_token(
                grant.app,
                Subject::User {
                    user: grant.user,
                    session_id: grant.session_id,
                    organization: grant.organization,
                },
                &grant.audience,
                &scope,
            )
            .await?;
        let id_token = if grant.oidc.iter().any(|s| s == "openid") {
            Some(
                self.mint_id_token(
                    grant.app,
                    grant.user,
                    &scope,
                    grant.nonce.as_deref(),
                    grant.auth_time,
                    &grant.amr,
                    grant.session_id,
                    grant.organization,
                    Some(&access.token),
                )
                .await?,
            )
        } else {
            None
        };
        let refresh_token = if grant.refresh {
            let token = format!("{REFRESH_TOKEN_PREFIX}{}", secret::random_token(32));
            let expires =
                Utc::now() + Duration::seconds(i64::from(grant.app.refresh_token_ttl_secs.max(60)));
            let mut conn = self.pool.get().await?;
            session_store::insert_refresh_token(
                &mut conn,
                grant.session_id,
                secret::digest(&token),
                expires,
            )
            .await?;
            Some(token)
        } else {
            None
        };
        Ok(TokenResponse {
            access_token: access.token,
            expires_in: access.expires_in,
            refresh_token,
            id_token,
            scope,
        })
    }

    /// Refresh token (RFC 6749 §6) with rotation: every use returns a new refresh token; a used
    /// one presented again revokes the whole family (OAuth 2.1 §4.3.1). A token of another
    /// client is `invalid_grant` and burns nothing. `scope` may narrow, never widen.
    pub async fn refresh(
        &self,
        client_id: &str,
        client_secret: Option<&str>,
        refresh_token: &str,
        scope: Option<&str>,
    ) -> Result<TokenResponse> {
        enum Outcome {
            Rotated(store::GrantSessionRow, String),
            Reused,
            Invalid,
            OtherClient,
        }
        let client = self.clients.authenticate(client_id, client_secret).await?;
        let app = client.app.clone();
        if !app.allows_grant(GrantKind::RefreshToken) {
            return Err(unauthorized_client(GrantKind::RefreshToken));
        }
        let digest = secret::digest(refresh_token);
        let app_id = app.id.to_string();
        let ttl = Duration::seconds(i64::from(app.refresh_token_ttl_secs.max(60)));
        let mut conn = self.pool.get().await?;
        let outcome = conn
            .transaction(async |conn| {
                let Some(row) = session_store::lock_refresh_token(conn, &digest).await? else {
                    return Ok(Outcome::Invalid);
                };
                let Some(session) = store::get_grant_session(conn, row.session_id).await? else {
                    return Ok(Outcome::Invalid);
                };
                if session.application_id != app_id {
                    return Ok(Outcome::OtherClient);
                }
                if row.used_at.is_some() {
                    store::revoke_session(conn, session.id, "refresh_token_reused").await?;
                    return Ok(Outcome::Reused);
                }
                let now = Utc::now();
                if session.revoked_at.is_some()
                    || session.expires_at <= now
                    || row.expires_at <= now
                {
                    return Ok(Outcome::Invalid);
                }
                session_store::mark_refresh_token_used(conn, &digest).await?;
                let token = format!("{REFRESH_TOKEN_PREFIX}{}", secret::random_token(32));
                session_store::insert_refresh_token(
                    conn,
                    session.id,
                    secret::digest(&token),
                    (now + ttl).min(session.expires_at),
                )
                .await?;
                session_store::touch_session(conn, session.id).await?;
                Ok::<_, Error>(Outcome::Rotated(session, token))
            })
            .await?;
        let (session, token) = match outcome {
            Outcome::Rotated(session, token) => (session, token),
            Outcome::Reused => {
                tracing::warn!(client_id, "refresh token reused; its grant is revoked");
                return Err(invalid_grant(
                    "this refresh token was already used; the grant is revoked",
                ));
            }
            Outcome::OtherClient => {
                tracing::warn!(client_id, "refresh token presented by another client");
                return Err(invalid_grant(
                    "the refresh token was not issued to this client",
                ));
            }
            Outcome::Invalid => {
                return Err(invalid_grant("the refresh token is invalid or expired"));
            }
        };
        self.sessions.forget(session.id);
        let user = users::get(&mut conn, session.user_id)
            .await?
            .ok_or_else(|| invalid_grant("the user no longer exists"))?;
        if user.status != "active" {
            return Err(invalid_grant("the user is suspended"));
        }
        let granted = scopes::parse_scope(&session.scope);
        let asked = match scope.filter(|s| !s.trim().is_empty()) {
            Some(s) => {
                let asked = scopes::parse_scope(s);
                if let Some(wider) = asked.iter().find(|s| !granted.contains(s)) {
                    return Err(scopes::invalid_scope(wider));
                }
                asked
            }
            None => granted,
        };
        // Roles may have changed since the grant: API scopes are narrowed by today's roles (for an
        // organization grant, today's role in the organization, which the user must still hold).
        let roles = match session.organization_id {
            None => role_scopes_of(&mut conn, &user).await?,
            Some(org) => match crate::org::member_token_scopes(&mut conn, org, user.id).await? {
                Some((_, scopes)) => scopes,
                None => {
                    store::revoke_session(&mut conn, session.id, "organization_membership_ended")
                        .await?;
                    return Err(invalid_grant(
                        "the user is no longer a member of the organization",
                    ));
                }
            },
        };
        drop(conn);
        let audience = session
            .resource
            .clone()
            .unwrap_or_else(|| self.default_audience.to_string());
        let (oidc, api): (Vec<String>, Vec<String>) = asked
            .into_iter()
            .partition(|s| crate::oauth::model::OIDC_SCOPES.contains(&s.as_str()));
        let api = api
            .into_iter()
            .filter(|s| {
                roles
                    .iter()
                    .any(|r| r.resource == audience && r.scopes.contains(s))
            })
            .collect();
        let mut response = self
            .issue_user_tokens(UserGrant {
                app: &app,
                user: &user,
                session_id: session.id,
                oidc,
                api,
                audience,
                nonce: None,
                auth_time: session.auth_time,
                amr: session.amr.clone(),
                refresh: false,
                organization: session.organization_id,
            })
            .await?;
        response.refresh_token = Some(token);
        Ok(response)
    }

    /// Checks the scopes of a user-facing request against the application and the user's roles.
    pub(crate) async fn user_scopes(
        &self,
        app: &ApplicationRow,
        user: &UserRow,
        requested: &RequestedScopes,
    ) -> Result<Vec<String>> {
        let mut conn = self.pool.get().await?;
        let roles = role_scopes_of(&mut conn, user).await?;
        Ok(scopes::grant_api_scopes(app, requested, &roles, false))
    }

    /// The client of a request (used by revocation and introspection, which authenticate the
    /// same way as the token endpoint).
    pub async fn authenticate_client(
        &self,
        client_id: &str,
        client_secret: Option<&str>,
    ) -> Result<Arc<Client>> {
        self.clients.authenticate(client_id, client_secret).await
    }
}

/// What a user's global roles give, across resources.
pub(crate) async fn role_scopes_of(
    conn: &mut diesel_async::AsyncPgConnection,
    user: &UserRow,
) -> Result<Vec<ResourceScopes>> {
    Ok(role_store::user_roles_by_name(conn, &user.roles)
        .await?
        .iter()
        .flat_map(|r| r.resource_scopes())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc7636_appendix_b() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(valid_verifier(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        ));
        assert!(!valid_verifier("short"));
        assert!(!valid_verifier(&"a b".repeat(20)));
    }
}
