//! The device page (RFC 8628 §3.3): the user, signed in, types the code their device shows (or
//! arrives with it from `verification_uri_complete`), checks it, and allows or denies.

use axum::{
    Form,
    extract::{Query, State},
    http::StatusCode,
};
use serde::Deserialize;
use serde_json::json;

use super::{
    Web,
    browser::{Browser, Reply},
    flow::Pending,
    messages,
    store::BrowserSession,
};
use crate::error::Error;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct DeviceQuery {
    user_code: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct DeviceForm {
    csrf: String,
    user_code: String,
    /// `lookup`, `approve` or `deny`.
    action: String,
}

/// What an OpenID Connect scope gives, in words; other scopes show as named.
fn scope_words(scope: &str) -> String {
    match scope {
        "openid" => "Sign you in with your account",
        "profile" => "See your name and picture",
        "email" => "See your email address",
        "phone" => "See your mobile number",
        "offline_access" => "Stay connected when you are not using it",
        other => other,
    }
    .to_string()
}

/// A code as typed: trimmed and bounded (the protocol core normalises case and dashes).
fn clean(code: &str) -> String {
    code.trim()
        .chars()
        .filter(|c| !c.is_whitespace())
        .take(32)
        .collect()
}

impl Web {
    async fn device_entry(
        &self,
        b: &Browser,
        session: &BrowserSession,
        status: StatusCode,
        code: &str,
        error: Option<String>,
    ) -> Reply {
        let brand = self.brand(None).await;
        let ctx =
            json!({"user_code": code, "error": error, "who": self.who(session.user_id).await});
        self.page(status, "device.html", b, &brand, "Connect a device", ctx)
    }

    /// Counts one code lookup or decision of the user; `Some` page when they are going too fast.
    async fn device_throttled(
        &self,
        b: &Browser,
        session: &BrowserSession,
        code: &str,
    ) -> Option<Reply> {
        if self.device_attempts.check_key(&session.user_id).is_ok() {
            return None;
        }
        let message = "Too many codes tried. Wait a minute, then try again.".to_string();
        Some(
            self.device_entry(
                b,
                session,
                StatusCode::TOO_MANY_REQUESTS,
                code,
                Some(message),
            )
            .await,
        )
    }

    /// The confirmation page of a pending code, or the entry page with why it cannot be used.
    async fn device_lookup(&self, b: &Browser, session: &BrowserSession, code: &str) -> Reply {
        if let Some(reply) = self.device_throttled(b, session, code).await {
            return reply;
        }
        match self.oauth.describe_user_code(code).await {
            Ok(info) => {
                let brand = self.brand(Some(&info.client_id)).await;
                let ctx = json!({
                    "application": info.application_name,
                    "scopes": info.scopes.iter().map(|s| scope_words(s)).collect::<Vec<_>>(),
                    "user_code": code.to_uppercase(),
                    "who": self.who(session.user_id).await,
                });
                let title = format!("Connect {}?", info.application_name);
                self.page(
                    StatusCode::OK,
                    "device_confirm.html",
                    b,
                    &brand,
                    &title,
                    ctx,
                )
            }
            Err(err) => {
                let (status, message) = device_error(&err, self);
                self.device_entry(b, session, status, code, Some(message))
                    .await
            }
        }
    }
}

fn device_error(err: &Error, web: &Web) -> (StatusCode, String) {
    match err {
        Error::NotFound { .. } | Error::InvalidArgument { .. } | Error::FailedPrecondition { .. } => (
            StatusCode::BAD_REQUEST,
            "That code is not valid, has expired or was already used. Check the code on your device, or start again there.".into(),
        ),
        other => {
            let shown = messages::human(other, web.identifier_field().word);
            (shown.status, shown.message)
        }
    }
}

/// `GET /oauth2/device[?user_code=…]`.
pub(super) async fn page(
    State(web): State<Web>,
    b: Browser,
    Query(q): Query<DeviceQuery>,
) -> Reply {
    let code = clean(&q.user_code);
    let session = match web.signed_in(&b).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return web
                .require_sign_in(&b, Pending::Device { user_code: code })
                .await;
        }
        Err(err) => return web.error_page(&b, &err).await,
    };
    if code.is_empty() {
        return web
            .device_entry(&b, &session, StatusCode::OK, "", None)
            .await;
    }
    web.device_lookup(&b, &session, &code).await
}

/// `POST /oauth2/device`: looks a code up, or approves or denies it.
pub(super) async fn submit(
    State(web): State<Web>,
    b: Browser,
    Form(form): Form<DeviceForm>,
) -> Reply {
    if !b.csrf_ok(&form.csrf) {
        return web.csrf_refused(&b).await;
    }
    let code = clean(&form.user_code);
    let session = match web.signed_in(&b).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return web
                .require_sign_in(&b, Pending::Device { user_code: code })
                .await;
        }
        Err(err) => return web.error_page(&b, &err).await,
    };
    if code.is_empty() {
        return web
            .device_entry(
                &b,
                &session,
                StatusCode::BAD_REQUEST,
                "",
                Some("Enter the code shown on your device.".into()),
            )
            .await;
    }
    let deny = match form.action.as_str() {
        "approve" => false,
        "deny" => true,
        _ => return web.device_lookup(&b, &session, &code).await,
    };
    if let Some(reply) = web.device_throttled(&b, &session, &code).await {
        return reply;
    }
    match web
        .oauth
        .decide_user_code(&code, session.user_id, Some(session.session_id), deny)
        .await
    {
        Ok(info) => {
            let brand = web.brand(Some(&info.client_id)).await;
            let (title, text) = if deny {
                (
                    "Request denied".to_string(),
                    format!(
                        "{} was not connected. You can close this page.",
                        info.application_name
                    ),
                )
            } else {
                (
                    "Device connected".to_string(),
                    format!(
                        "{} is now connected. Return to your device to continue.",
                        info.application_name
                    ),
                )
            };
            web.message(StatusCode::OK, &b, &brand, &title, &text, None)
        }
        Err(err) => {
            let (status, message) = device_error(&err, &web);
            web.device_entry(&b, &session, status, &code, Some(message))
                .await
        }
    }
}
