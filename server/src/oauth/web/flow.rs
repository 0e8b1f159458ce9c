//! Interactions and the browser session: what the pages carry from one form to the next, and
//! the one decision that moves an authorization request on once its user is known.

use axum::http::StatusCode;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    Web,
    browser::{Browser, Reply, SESSION_COOKIE, origin_source, set_cookie},
    store::{self, BrowserSession, InteractionRow},
};
use crate::{
    crypto::secret::{digest, random_token},
    error::{Error, Result},
    identity::{session_service::SessionTokens, session_store},
    oauth::authorize::{AuthenticatedUser, AuthorizationRequest},
};

/// What an interaction waits to do once its user is signed in.
#[derive(Debug, Clone)]
pub(super) enum Pending {
    /// An authorization request: consent, then a code for the client.
    Authorize(AuthorizationRequest),
    /// The device page, with the code the user came with.
    Device { user_code: String },
}

#[derive(Serialize, Deserialize)]
struct DeviceRequest {
    user_code: String,
}

/// A live interaction of this browser.
#[derive(Debug, Clone)]
pub(super) struct Interaction {
    /// The id in the pages' URLs and forms.
    pub id: String,
    pub pending: Pending,
    /// The session signed in during this interaction (it satisfies `prompt=login`/`max_age`).
    pub session_id: Option<Uuid>,
}

impl Interaction {
    pub fn request(&self) -> Option<&AuthorizationRequest> {
        match &self.pending {
            Pending::Authorize(req) => Some(req),
            Pending::Device { .. } => None,
        }
    }

    /// The same interaction without its id (for a page whose form must not carry it).
    pub fn anonymous(self) -> Self {
        Self {
            id: String::new(),
            ..self
        }
    }

    pub fn client_id(&self) -> Option<&str> {
        self.request().map(|r| r.client_id.as_str())
    }

    /// Where forms of this interaction's pages may lead: the client's redirect origin.
    pub fn form_target(&self) -> Option<String> {
        self.request().and_then(|r| origin_source(&r.redirect_uri))
    }
}

fn from_row(id: String, row: InteractionRow) -> Result<Interaction> {
    let pending = match row.kind.as_str() {
        "authorize" => {
            Pending::Authorize(serde_json::from_value(row.request).map_err(Error::internal)?)
        }
        _ => {
            let d: DeviceRequest = serde_json::from_value(row.request).map_err(Error::internal)?;
            Pending::Device {
                user_code: d.user_code,
            }
        }
    };
    Ok(Interaction {
        id,
        pending,
        session_id: row.session_id,
    })
}

/// `?interaction=…` for the pages' links, or nothing.
pub(super) fn ix_query(ix: Option<&Interaction>) -> String {
    ix.filter(|i| !i.id.is_empty())
        .map(|i| format!("?interaction={}", i.id))
        .unwrap_or_default()
}

impl Web {
    pub(super) async fn start_interaction(
        &self,
        b: &Browser,
        pending: Pending,
    ) -> Result<Interaction> {
        let id = random_token(32);
        let (kind, request) = match &pending {
            Pending::Authorize(req) => (
                "authorize",
                serde_json::to_value(req).map_err(Error::internal)?,
            ),
            Pending::Device { user_code } => (
                "device",
                serde_json::to_value(DeviceRequest {
                    user_code: user_code.clone(),
                })
                .map_err(Error::internal)?,
            ),
        };
        let expires = Utc::now()
            + chrono::Duration::from_std(self.interaction_ttl).map_err(Error::internal)?;
        let mut conn = self.oauth.pool.get().await?;
        store::insert_interaction(&mut conn, digest(&id), b.binding(), kind, request, expires)
            .await?;
        Ok(Interaction {
            id,
            pending,
            session_id: None,
        })
    }

    /// The interaction `id` names, if it is alive and belongs to this browser.
    pub(super) async fn interaction(
        &self,
        b: &Browser,
        id: Option<&str>,
    ) -> Result<Option<Interaction>> {
        let Some(id) = id.filter(|i| !i.is_empty() && i.len() <= 64) else {
            return Ok(None);
        };
        let mut conn = self.oauth.pool.get().await?;
        match store::find_interaction(&mut conn, &digest(id), &b.binding()).await? {
            Some(row) => from_row(id.to_string(), row).map(Some),
            None => Ok(None),
        }
    }

    /// The newest interaction of this browser, under a new id.
    pub(super) async fn newest_interaction(&self, b: &Browser) -> Result<Option<Interaction>> {
        let mut conn = self.oauth.pool.get().await?;
        let Some(row) = store::newest_interaction(&mut conn, &b.binding()).await? else {
            return Ok(None);
        };
        let id = random_token(32);
        store::rekey_interaction(&mut conn, &row.id_hash, digest(&id)).await?;
        from_row(id, row).map(Some)
    }

    /// The session behind the browser's cookie (possibly still owing a second factor).
    pub(super) async fn browser_session(&self, b: &Browser) -> Result<Option<BrowserSession>> {
        let Some(token) = &b.session_token else {
            return Ok(None);
        };
        let mut conn = self.oauth.pool.get().await?;
        store::find_browser_session(&mut conn, &digest(token)).await
    }

    /// The signed-in session: alive and owing nothing.
    pub(super) async fn signed_in(&self, b: &Browser) -> Result<Option<BrowserSession>> {
        Ok(self
            .browser_session(b)
            .await?
            .filter(|s| s.pending_second_factor.is_none()))
    }

    /// After a sign-in: the new browser session replaces the browser's old one (revoked), and
    /// the interaction remembers it. Returns the cookie to set, and the browser as it is with it.
    pub(super) async fn adopt_session(
        &self,
        b: &Browser,
        tokens: &SessionTokens,
        ix: Option<&mut Interaction>,
    ) -> Result<(String, Browser)> {
        let old = self.browser_session(b).await?;
        let value = random_token(32);
        let mut conn = self.oauth.pool.get().await?;
        if let (Some(old), Some(token)) = (old, &b.session_token) {
            store::delete_browser_session(&mut conn, &digest(token)).await?;
            session_store::revoke(
                &mut conn,
                old.user_id,
                Some(old.session_id),
                None,
                "signed_in_again",
            )
            .await?;
        }
        store::insert_browser_session(&mut conn, digest(&value), tokens.session_id).await?;
        if let Some(ix) = ix {
            store::set_interaction_session(&mut conn, &digest(&ix.id), tokens.session_id).await?;
            ix.session_id = Some(tokens.session_id);
        }
        let cookie = set_cookie(SESSION_COOKIE, Some(&value), self.secure);
        Ok((cookie, b.with_session(value)))
    }

    /// Ends the browser session: the session is revoked and the cookie deleted. Returns the
    /// cookie that deletes it.
    pub(super) async fn end_browser_session(
        &self,
        b: &Browser,
        session: Option<&BrowserSession>,
    ) -> Result<String> {
        let mut conn = self.oauth.pool.get().await?;
        if let Some(token) = &b.session_token {
            store::delete_browser_session(&mut conn, &digest(token)).await?;
        }
        if let Some(s) = session {
            session_store::revoke(&mut conn, s.user_id, Some(s.session_id), None, "signed_out")
                .await?;
        }
        Ok(set_cookie(SESSION_COOKIE, None, self.secure))
    }

    pub(super) async fn end_interaction(&self, ix: &Interaction) -> Result<bool> {
        let mut conn = self.oauth.pool.get().await?;
        store::delete_interaction(&mut conn, &digest(&ix.id)).await
    }

    /// The page for an interaction that expired, was finished, or belongs to another browser.
    pub(super) async fn interaction_lost(&self, b: &Browser) -> Reply {
        let brand = self.brand(None).await;
        self.message(
            StatusCode::BAD_REQUEST,
            b,
            &brand,
            "This sign-in request has expired",
            "Go back to the application you came from and start again.",
            None,
        )
    }

    /// Moves an interaction on: sign-in, second factor, consent, then the code for the client
    /// (or, for a device interaction, back to the device page).
    pub(super) async fn proceed(&self, b: &Browser, ix: Interaction) -> Reply {
        match self.try_proceed(b, &ix).await {
            Ok(reply) => reply,
            Err(err) => self.error_page(b, &err).await,
        }
    }

    async fn try_proceed(&self, b: &Browser, ix: &Interaction) -> Result<Reply> {
        let q = ix_query(Some(ix));
        let Some(session) = self.browser_session(b).await? else {
            return Ok(Reply::redirect(format!("/oauth2/signin{q}")));
        };
        if session.pending_second_factor.is_some() {
            return Ok(Reply::redirect(format!("/oauth2/second-factor{q}")));
        }
        let req = match &ix.pending {
            Pending::Device { user_code } => {
                self.end_interaction(ix).await?;
                let code: String = user_code
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect();
                return Ok(Reply::redirect(if code.is_empty() {
                    "/oauth2/device".to_string()
                } else {
                    format!("/oauth2/device?user_code={code}")
                }));
            }
            Pending::Authorize(req) => req,
        };
        // A session signed in during this interaction satisfies `prompt=login` and `max_age`;
        // asking again would loop.
        if ix.session_id != Some(session.session_id)
            && self.oauth.login_required(req, Some(session.auth_time))
        {
            return Ok(Reply::redirect(format!("/oauth2/signin{q}")));
        }
        if self
            .oauth
            .consent_needed(req, session.user_id)
            .await?
            .is_some()
        {
            return Ok(Reply::redirect(format!("/oauth2/consent{q}")));
        }
        self.complete(b, ix, req, &session).await
    }

    /// Issues the code and sends the browser back to the client.
    pub(super) async fn complete(
        &self,
        b: &Browser,
        ix: &Interaction,
        req: &AuthorizationRequest,
        session: &BrowserSession,
    ) -> Result<Reply> {
        let user = AuthenticatedUser {
            user_id: session.user_id,
            session_id: session.session_id,
            auth_time: session.auth_time,
            amr: session.amr.clone(),
        };
        if !self.end_interaction(ix).await? {
            // Submitted twice: the first submit already answered the client.
            return Ok(self.interaction_lost(b).await);
        }
        let url = self.oauth.complete_authorization(req, &user).await?;
        Ok(Reply::redirect(url))
    }
}
