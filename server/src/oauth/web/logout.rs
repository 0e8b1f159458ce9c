//! RP-initiated logout (`/oauth2/end_session`, GET or POST) and the signed-out page.
//!
//! The browser session ends at once when the request proves it comes from the user: an ID
//! token hint naming the signed-in user, or one of our own forms (CSRF token). Otherwise the
//! user is asked first, so that a link on another site cannot sign anyone out.

use axum::{
    Form,
    extract::{Query, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    Web,
    browser::{Browser, Reply, origin_source},
};
use crate::oauth::{
    authorize::AuthorizeError,
    logout::{EndSession, EndSessionParams},
};

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub(super) struct EndSessionForm {
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token_hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    post_logout_redirect_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<String>,
    #[serde(skip_serializing)]
    csrf: String,
    /// `yes` or `no` on the confirmation page; absent on our other sign-out buttons.
    #[serde(skip_serializing)]
    confirm: Option<String>,
}

impl EndSessionForm {
    fn params(&self) -> EndSessionParams {
        let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        EndSessionParams {
            id_token_hint: nonempty(&self.id_token_hint),
            post_logout_redirect_uri: nonempty(&self.post_logout_redirect_uri),
            client_id: nonempty(&self.client_id),
            state: nonempty(&self.state),
        }
    }
}

/// `GET /oauth2/end_session`.
pub(super) async fn end_session_get(
    State(web): State<Web>,
    b: Browser,
    Query(form): Query<EndSessionForm>,
) -> Reply {
    end_session(web, b, form, false).await
}

/// `POST /oauth2/end_session` (form body).
pub(super) async fn end_session_post(
    State(web): State<Web>,
    b: Browser,
    Form(form): Form<EndSessionForm>,
) -> Reply {
    let ours = b.csrf_ok(&form.csrf);
    end_session(web, b, form, ours).await
}

async fn end_session(web: Web, b: Browser, form: EndSessionForm, ours: bool) -> Reply {
    let end = match web.oauth.validate_end_session(&form.params()).await {
        Ok(end) => end,
        Err(AuthorizeError::Page { description, .. }) => {
            let brand = web.brand(None).await;
            return web.message(
                StatusCode::BAD_REQUEST,
                &b,
                &brand,
                "This sign-out request cannot be processed",
                &description,
                None,
            );
        }
        Err(AuthorizeError::Redirect { url }) => return Reply::redirect(url),
    };
    let session = match web.browser_session(&b).await {
        Ok(s) => s,
        Err(err) => return web.error_page(&b, &err).await,
    };
    let Some(session) = session else {
        // Signed out already; a stale cookie goes too.
        return match web.end_browser_session(&b, None).await {
            Ok(cookie) => signed_out(&end).with_cookie(cookie),
            Err(err) => web.error_page(&b, &err).await,
        };
    };
    if end.user_id.is_some_and(|u| u != session.user_id) {
        // The hint names someone else: this browser's user stays signed in.
        return signed_out(&end);
    }
    if ours && form.confirm.as_deref() == Some("no") {
        let brand = web.brand(end.client_id.as_deref()).await;
        return web.message(
            StatusCode::OK,
            &b,
            &brand,
            "You are still signed in",
            "Nothing was changed.",
            None,
        );
    }
    if ours || end.user_id == Some(session.user_id) {
        return match web.end_browser_session(&b, Some(&session)).await {
            Ok(cookie) => signed_out(&end).with_cookie(cookie),
            Err(err) => web.error_page(&b, &err).await,
        };
    }
    // Ask first.
    let brand = web.brand(end.client_id.as_deref()).await;
    let application = match &end.client_id {
        Some(client_id) => web
            .oauth
            .application(client_id)
            .await
            .ok()
            .map(|a| a.name.clone()),
        None => None,
    };
    let ctx = json!({
        "params": form,
        "application": application,
        "who": web.who(session.user_id).await,
    });
    web.page(
        StatusCode::OK,
        "signout_confirm.html",
        &b,
        &brand,
        "Sign out?",
        ctx,
    )
    .with_form_target(end.redirect.as_deref().and_then(origin_source))
}

fn signed_out(end: &EndSession) -> Reply {
    Reply::redirect(
        end.redirect
            .clone()
            .unwrap_or_else(|| "/oauth2/signed-out".into()),
    )
}

/// `GET /oauth2/signed-out`.
pub(super) async fn signed_out_page(State(web): State<Web>, b: Browser) -> Reply {
    let brand = web.brand(None).await;
    web.message(
        StatusCode::OK,
        &b,
        &brand,
        "You are signed out",
        "You have been signed out. You can close this window.",
        Some(("/oauth2/signin", "Sign in again")),
    )
}
