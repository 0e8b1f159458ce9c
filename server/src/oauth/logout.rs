//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): which redirect is allowed after
//! the browser session ends.

use uuid::Uuid;

use crate::oauth::{OAuthService, authorize::AuthorizeError};

/// The query (or form) of `/oauth2/end_session`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct EndSessionParams {
    pub id_token_hint: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub client_id: Option<String>,
    pub state: Option<String>,
}

/// A checked logout request.
#[derive(Debug, Clone)]
pub struct EndSession {
    /// Where to send the browser afterwards (registered for the client, with `state`); `None`:
    /// show the signed-out page.
    pub redirect: Option<String>,
    /// The user named by the ID token hint, if any; the browser session must be theirs to end.
    pub user_id: Option<Uuid>,
    pub client_id: Option<String>,
}

fn page(description: &str) -> AuthorizeError {
    AuthorizeError::Page {
        error: "invalid_request",
        description: description.to_string(),
    }
}

impl OAuthService {
    /// Validates a logout request. A `post_logout_redirect_uri` is honoured only when it is
    /// registered (exact match) for the client named by `client_id` or the ID token hint's `aud`;
    /// anything else is [`AuthorizeError::Page`] (no open redirect).
    pub async fn validate_end_session(
        &self,
        params: &EndSessionParams,
    ) -> Result<EndSession, AuthorizeError> {
        // An expired ID token is still a fine hint (OIDC RP-Initiated Logout §2): check the
        // signature and issuer, and read `aud` and `sub`.
        let hint = match params.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
            Some(token) => Some(
                self.keys
                    .verify_signed_ignoring_expiry(token, &self.issuer, "JWT")
                    .await
                    .map_err(|_| page("id_token_hint is not an ID token of this server"))?,
            ),
            None => None,
        };
        let hint_client = hint
            .as_ref()
            .and_then(|c| c["aud"].as_str().map(str::to_string));
        let client_id = match (
            params.client_id.as_deref().filter(|c| !c.is_empty()),
            hint_client,
        ) {
            (Some(a), Some(b)) if a != b => {
                return Err(page("client_id does not match the id_token_hint"));
            }
            (Some(a), _) => Some(a.to_string()),
            (None, b) => b,
        };
        let user_id = hint
            .as_ref()
            .and_then(|c| c["sub"].as_str())
            .and_then(|s| Uuid::parse_str(s).ok());
        let redirect = match params
            .post_logout_redirect_uri
            .as_deref()
            .filter(|r| !r.is_empty())
        {
            None => None,
            Some(uri) => {
                let client_id = client_id.as_deref().ok_or_else(|| {
                    page("post_logout_redirect_uri needs client_id or id_token_hint")
                })?;
                let app = self
                    .clients
                    .get(client_id)
                    .await
                    .map_err(|_| page("unknown client_id"))?;
                if !app.post_logout_redirect_uris.iter().any(|r| r == uri) {
                    return Err(page(
                        "post_logout_redirect_uri is not registered for this application",
                    ));
                }
                let mut url = url::Url::parse(uri)
                    .map_err(|_| page("post_logout_redirect_uri is not a URL"))?;
                if let Some(state) = params.state.as_deref().filter(|s| !s.is_empty()) {
                    url.query_pairs_mut().append_pair("state", state);
                }
                Some(url.to_string())
            }
        };
        Ok(EndSession {
            redirect,
            user_id,
            client_id,
        })
    }
}
