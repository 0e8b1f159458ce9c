//! The authorization endpoint's rules (RFC 6749 §4.1, RFC 7636, OIDC Core §3.1.2), independent of
//! HTML: validating a request, deciding whether the user must sign in again or consent, and
//! turning an approved request into a redirect carrying a code. The hosted pages (`web`) drive it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    crypto::secret,
    error::{Error, Result},
    identity::store as users,
    oauth::{
        OAuthService,
        clients::redirect_uri_allowed,
        grant_store::{self as store, CodeRow},
        model::{ApiScope, AppType, ApplicationRow, GrantKind},
        scopes::{self, parse_scope},
    },
};

/// The query of `/oauth2/authorize`, as received.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    pub resource: Option<String>,
    pub response_mode: Option<String>,
    pub ui_locales: Option<String>,
    /// An organization id: the tokens become organization tokens (`org_id`, the scopes of the
    /// user's role there), as Auth0's parameter of the same name.
    pub organization: Option<String>,
}

/// A validated authorization request: the client is known, the redirect URI is registered, and
/// the rest is well-formed. Serializable so the hosted pages can carry it across sign-in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    /// The scopes asked for (OIDC scopes and API scopes), already limited to what the app may
    /// ask; the subject's roles narrow the API scopes when the code is issued.
    pub scopes: Vec<String>,
    /// The API resource (RFC 8707) the access token is for; `None`: the mgpass API.
    pub resource: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt_none: bool,
    pub prompt_login: bool,
    pub prompt_consent: bool,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// The organization the tokens are for; the user must be a member when the code is issued.
    #[serde(default)]
    pub organization: Option<Uuid>,
}

/// Why an authorization request failed, and where the answer goes.
#[derive(Debug, Clone)]
pub enum AuthorizeError {
    /// The client or the redirect URI cannot be trusted: show an error page, never redirect.
    Page {
        error: &'static str,
        description: String,
    },
    /// A protocol error the client must hear about: redirect to this URL (it carries `error`,
    /// `error_description`, `state` and `iss`).
    Redirect { url: String },
}

/// The signed-in user on whose behalf a code is issued.
#[derive(Debug, Clone)]
pub struct AuthenticatedUser {
    pub user_id: Uuid,
    /// The session behind the browser cookie.
    pub session_id: Uuid,
    /// When the user last entered credentials in that session.
    pub auth_time: DateTime<Utc>,
    /// RFC 8176 method references (`pwd`, `otp`, `mfa`, ...).
    pub amr: Vec<String>,
}

/// What the consent page shows.
#[derive(Debug, Clone)]
pub struct ConsentPrompt {
    pub application_name: String,
    /// Scope name and a human description, for every scope not consented to yet.
    pub scopes: Vec<(String, String)>,
}

fn page(error: &'static str, description: impl Into<String>) -> AuthorizeError {
    AuthorizeError::Page {
        error,
        description: description.into(),
    }
}

/// A human description of the OIDC scopes, for the consent page.
fn oidc_scope_description(scope: &str) -> &'static str {
    match scope {
        "openid" => "Sign you in with your account",
        "profile" => "Your name and picture",
        "email" => "Your email address",
        "phone" => "Your mobile number",
        "offline_access" => "Stay signed in to the application",
        _ => "",
    }
}

/// `BASE64URL(SHA256(verifier))` is 43 characters of the base64url alphabet.
fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `url` with `params` added to its query.
fn with_query(url: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            u.to_string()
        }
        Err(_) => url.to_string(),
    }
}

impl OAuthService {
    /// Validates `/oauth2/authorize` parameters. Until the client and its redirect URI are known
    /// good, errors are [`AuthorizeError::Page`]; after that they redirect.
    pub async fn validate_authorize(
        &self,
        params: &AuthorizeParams,
    ) -> Result<AuthorizationRequest, AuthorizeError> {
        let client_id = params
            .client_id
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| page("invalid_request", "client_id is missing"))?;
        let app = match self.clients.get(client_id).await {
            Ok(app) => app,
            Err(Error::NotFound { .. }) => {
                return Err(page("invalid_client", "no application has this client_id"));
            }
            Err(err) => {
                tracing::error!(error = %err, "authorization request: client lookup failed");
                return Err(page(
                    "server_error",
                    "the server could not handle the request; try again",
                ));
            }
        };
        let redirect_uri = params
            .redirect_uri
            .as_deref()
            .filter(|r| !r.is_empty())
            .ok_or_else(|| page("invalid_request", "redirect_uri is missing"))?;
        if !redirect_uri_allowed(&app, redirect_uri) {
            return Err(page(
                "invalid_request",
                "redirect_uri is not registered for this application",
            ));
        }
        let state = params.state.clone().filter(|s| !s.is_empty());
        let fail = |error: &str, description: &str| AuthorizeError::Redirect {
            url: self.error_url(redirect_uri, state.as_deref(), error, description),
        };
        match params.response_type.as_deref() {
            Some("code") => {}
            None | Some("") => return Err(fail("invalid_request", "response_type is missing")),
            Some(_) => {
                return Err(fail(
                    "unsupported_response_type",
                    "only response_type=code is supported",
                ));
            }
        }
        if params
            .response_mode
            .as_deref()
            .is_some_and(|m| m != "query")
        {
            return Err(fail(
                "invalid_request",
                "only response_mode=query is supported",
            ));
        }
        if !app.allows_grant(GrantKind::AuthorizationCode) || app.app_type() == AppType::M2m {
            return Err(fail(
                "unauthorized_client",
                "this application may not use the authorization code grant",
            ));
        }
        let challenge = params.code_challenge.clone().filter(|c| !c.is_empty());
        let method = params
            .code_challenge_method
            .as_deref()
            .filter(|m| !m.is_empty());
        match (&challenge, method) {
            (Some(c), Some("S256")) if valid_challenge(c) => {}
            (Some(_), Some("S256")) => {
                return Err(fail(
                    "invalid_request",
                    "code_challenge is not a S256 challenge",
                ));
            }
            (Some(_), _) => {
                return Err(fail(
                    "invalid_request",
                    "code_challenge_method must be S256",
                ));
            }
            (None, Some(_)) => return Err(fail("invalid_request", "code_challenge is missing")),
            (None, None) => {
                if !app.app_type().is_confidential() || app.require_pkce {
                    return Err(fail(
                        "invalid_request",
                        "PKCE is required: send code_challenge with code_challenge_method=S256",
                    ));
                }
            }
        }
        let requested = parse_scope(params.scope.as_deref().unwrap_or(""));
        let checked = scopes::check_requested(
            &app,
            &requested,
            params.resource.as_deref(),
            &self.default_audience,
        );
        let checked = match checked {
            Ok(c) => c,
            Err(Error::InvalidArgument {
                reason: "INVALID_TARGET",
                message,
                ..
            }) => {
                return Err(fail("invalid_target", &message));
            }
            Err(err) => return Err(fail("invalid_scope", &err.to_string())),
        };
        let prompts: Vec<&str> = params
            .prompt
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .filter(|p| !p.is_empty())
            .collect();
        if prompts
            .iter()
            .any(|p| !matches!(*p, "none" | "login" | "consent" | "select_account"))
        {
            return Err(fail(
                "invalid_request",
                "prompt may only hold none, login, consent or select_account",
            ));
        }
        let prompt_none = prompts.contains(&"none");
        if prompt_none && prompts.len() > 1 {
            return Err(fail(
                "invalid_request",
                "prompt=none cannot be combined with other values",
            ));
        }
        let max_age =
            match params.max_age.as_deref().filter(|m| !m.is_empty()) {
                Some(m) => Some(m.parse::<i64>().ok().filter(|m| *m >= 0).ok_or_else(|| {
                    fail("invalid_request", "max_age must be a number of seconds")
                })?),
                None => None,
            };
        let organization =
            match params.organization.as_deref().filter(|o| !o.is_empty()) {
                Some(o) => Some(Uuid::parse_str(o).map_err(|_| {
                    fail("invalid_request", "organization is not an organization id")
                })?),
                None => None,
            };
        Ok(AuthorizationRequest {
            client_id: app.client_id.clone(),
            redirect_uri: redirect_uri.to_string(),
            scopes: requested,
            resource: (checked.audience != *self.default_audience)
                .then(|| checked.audience.clone()),
            state,
            nonce: params.nonce.clone().filter(|n| !n.is_empty()),
            code_challenge: challenge,
            prompt_none,
            prompt_login: prompts.contains(&"login") || prompts.contains(&"select_account"),
            prompt_consent: prompts.contains(&"consent"),
            max_age,
            login_hint: params.login_hint.clone().filter(|h| !h.is_empty()),
            organization,
        })
    }

    /// The application an authorization request is for (branding, name, consent).
    pub async fn application(&self, client_id: &str) -> Result<Arc<ApplicationRow>> {
        self.clients.get(client_id).await
    }

    /// Whether the user must enter credentials again: `prompt=login`, or `max_age` exceeded since
    /// `auth_time`. (`prompt=none` with a required login is the caller's `login_required`.)
    pub fn login_required(
        &self,
        request: &AuthorizationRequest,
        auth_time: Option<DateTime<Utc>>,
    ) -> bool {
        let Some(auth_time) = auth_time else {
            return true;
        };
        request.prompt_login
            || request
                .max_age
                .is_some_and(|max| (Utc::now() - auth_time).num_seconds() > max)
    }

    /// The scopes the user must still consent to, or `None` when the app is first-party or every
    /// scope was consented before (and `prompt=consent` was not asked).
    pub async fn consent_needed(
        &self,
        request: &AuthorizationRequest,
        user_id: Uuid,
    ) -> Result<Option<ConsentPrompt>> {
        let app = self.clients.get(&request.client_id).await?;
        if app.first_party && !request.prompt_consent {
            return Ok(None);
        }
        let mut conn = self.pool.get().await?;
        let consented = if request.prompt_consent {
            Vec::new()
        } else {
            store::consented_scopes(&mut conn, user_id, app.id).await?
        };
        let missing: Vec<&String> = request
            .scopes
            .iter()
            .filter(|s| !consented.contains(s))
            .collect();
        if missing.is_empty() && !(request.scopes.is_empty() && request.prompt_consent) {
            return Ok(None);
        }
        let audience = request
            .resource
            .clone()
            .unwrap_or_else(|| self.default_audience.to_string());
        let api_scopes = api_resource_scopes(&mut conn, &audience).await?;
        let scopes = missing
            .into_iter()
            .map(|s| {
                let description = match oidc_scope_description(s) {
                    "" => api_scopes
                        .iter()
                        .find(|a| &a.name == s)
                        .map(|a| a.description.clone())
                        .unwrap_or_default(),
                    d => d.to_string(),
                };
                (s.clone(), description)
            })
            .collect();
        Ok(Some(ConsentPrompt {
            application_name: app.name.clone(),
            scopes,
        }))
    }

    /// Records the user's consent to the request's scopes.
    pub async fn grant_consent(&self, request: &AuthorizationRequest, user_id: Uuid) -> Result<()> {
        let app = self.clients.get(&request.client_id).await?;
        let mut conn = self.pool.get().await?;
        store::add_consent(&mut conn, user_id, app.id, &request.scopes).await
    }

    /// Issues a code for the approved request and returns the redirect URL carrying it (with
    /// `state` and `iss`, RFC 9207).
    pub async fn complete_authorization(
        &self,
        request: &AuthorizationRequest,
        user: &AuthenticatedUser,
    ) -> Result<String> {
        let app = self.clients.get(&request.client_id).await?;
        // The application may have changed since the request was validated.
        if !redirect_uri_allowed(&app, &request.redirect_uri) {
            return Err(Error::invalid(
                "INVALID_REQUEST",
                "redirect_uri",
                "redirect_uri is no longer registered",
            ));
        }
        let requested = match scopes::check_requested(
            &app,
            &request.scopes,
            request.resource.as_deref(),
            &self.default_audience,
        ) {
            Ok(r) => r,
            Err(err) => return Ok(self.error_redirect(request, "invalid_scope", &err.to_string())),
        };
        let user_row = {
            let mut conn = self.pool.get().await?;
            users::get(&mut conn, user.user_id).await?
        };
        let Some(user_row) = user_row.filter(|u| u.status == "active") else {
            return Ok(self.error_redirect(request, "access_denied", "the account is not active"));
        };
        let api = match request.organization {
            None => self.user_scopes(&app, &user_row, &requested).await?,
            Some(org) => {
                let mut conn = self.pool.get().await?;
                let Some((_, role_scopes)) =
                    crate::org::member_token_scopes(&mut conn, org, user_row.id).await?
                else {
                    return Ok(self.error_redirect(
                        request,
                        "access_denied",
                        "you are not a member of this organization",
                    ));
                };
                scopes::grant_api_scopes(&app, &requested, &role_scopes, false)
            }
        };
        let code = secret::random_token(32);
        let now = Utc::now();
        let row = CodeRow {
            code_hash: secret::digest(&code),
            application_id: app.id,
            user_id: user.user_id,
            browser_session_id: Some(user.session_id),
            redirect_uri: request.redirect_uri.clone(),
            scope: scopes::join(&requested.oidc, &api),
            resource: Some(requested.audience.clone()),
            nonce: request.nonce.clone(),
            code_challenge: request.code_challenge.clone(),
            auth_time: user.auth_time,
            amr: user.amr.clone(),
            created_at: now,
            expires_at: now
                + chrono::Duration::seconds(i64::from(self.config.authorization_code_ttl_secs)),
            used_at: None,
            grant_session_id: None,
            organization_id: request.organization,
        };
        let mut conn = self.pool.get().await?;
        store::insert_code(&mut conn, &row).await?;
        tracing::info!(client_id = %app.client_id, user_id = %user.user_id, "authorization code issued");
        let mut params = vec![("code", code.as_str())];
        if let Some(state) = &request.state {
            params.push(("state", state));
        }
        params.push(("iss", &self.issuer));
        Ok(with_query(&request.redirect_uri, &params))
    }

    /// The redirect URL that reports `error` to the client (`access_denied`, `login_required`,
    /// `consent_required`, `interaction_required`, ...).
    pub fn error_redirect(
        &self,
        request: &AuthorizationRequest,
        error: &str,
        description: &str,
    ) -> String {
        self.error_url(
            &request.redirect_uri,
            request.state.as_deref(),
            error,
            description,
        )
    }

    fn error_url(
        &self,
        redirect_uri: &str,
        state: Option<&str>,
        error: &str,
        description: &str,
    ) -> String {
        let mut params = vec![("error", error), ("error_description", description)];
        if let Some(state) = state {
            params.push(("state", state));
        }
        params.push(("iss", &self.issuer));
        with_query(redirect_uri, &params)
    }
}

/// The scopes an API resource defines (with descriptions), for the consent page.
async fn api_resource_scopes(
    conn: &mut diesel_async::AsyncPgConnection,
    indicator: &str,
) -> Result<Vec<ApiScope>> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;

    use crate::db::schema::api_resources;
    let scopes: Option<serde_json::Value> = api_resources::table
        .filter(api_resources::indicator.eq(indicator))
        .select(api_resources::scopes)
        .first(conn)
        .await
        .optional()?;
    Ok(scopes
        .and_then(|s| serde_json::from_value(s).ok())
        .unwrap_or_default())
}
