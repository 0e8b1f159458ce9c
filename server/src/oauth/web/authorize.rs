//! `GET /oauth2/authorize`: validates the request, then signs the user in, asks for consent, or
//! answers the client at once.

use axum::{extract::State, http::Uri};

use super::{
    Web,
    browser::{Browser, Reply},
    flow::{Interaction, Pending},
};
use crate::oauth::authorize::{
    AuthenticatedUser, AuthorizationRequest, AuthorizeError, AuthorizeParams,
};

pub(super) async fn authorize(State(web): State<Web>, b: Browser, uri: Uri) -> Reply {
    let params = match axum::extract::Query::<AuthorizeParams>::try_from_uri(&uri) {
        Ok(q) => q.0,
        Err(_) => return bad_request(&web, &b, "a parameter is repeated or is not text").await,
    };
    let req = match web.oauth.validate_authorize(&params).await {
        Ok(req) => req,
        Err(AuthorizeError::Page { description, .. }) => {
            return bad_request(&web, &b, &description).await;
        }
        Err(AuthorizeError::Redirect { url }) => return Reply::redirect(url),
    };
    match decide(&web, &b, req).await {
        Ok(reply) => reply,
        Err(err) => web.error_page(&b, &err).await,
    }
}

/// The page of a request that cannot be answered to its client (unknown client, unregistered
/// redirect URI): never a redirect.
async fn bad_request(web: &Web, b: &Browser, description: &str) -> Reply {
    let brand = web.brand(None).await;
    let text = format!(
        "The application sent a request that cannot be accepted ({}). Go back to the application you came from and try again.",
        description.trim_end_matches('.')
    );
    web.message(
        axum::http::StatusCode::BAD_REQUEST,
        b,
        &brand,
        "This sign-in request is not valid",
        &text,
        None,
    )
}

async fn decide(web: &Web, b: &Browser, req: AuthorizationRequest) -> crate::error::Result<Reply> {
    let oauth = &web.oauth;
    let session = web.browser_session(b).await?;
    let Some(session) = session.filter(|s| s.pending_second_factor.is_none()) else {
        if req.prompt_none {
            return Ok(Reply::redirect(oauth.error_redirect(
                &req,
                "login_required",
                "the user is not signed in",
            )));
        }
        return Ok(web.require_sign_in(b, Pending::Authorize(req)).await);
    };
    if oauth.login_required(&req, Some(session.auth_time)) {
        if req.prompt_none {
            return Ok(Reply::redirect(oauth.error_redirect(
                &req,
                "login_required",
                "the user must sign in again",
            )));
        }
        return Ok(web.require_sign_in(b, Pending::Authorize(req)).await);
    }
    if oauth.consent_needed(&req, session.user_id).await?.is_some() {
        if req.prompt_none {
            return Ok(Reply::redirect(oauth.error_redirect(
                &req,
                "consent_required",
                "the user has not consented",
            )));
        }
        let ix: Interaction = web.start_interaction(b, Pending::Authorize(req)).await?;
        return Ok(Reply::redirect(format!(
            "/oauth2/consent?interaction={}",
            ix.id
        )));
    }
    let user = AuthenticatedUser {
        user_id: session.user_id,
        session_id: session.session_id,
        auth_time: session.auth_time,
        amr: session.amr.clone(),
    };
    Ok(Reply::redirect(
        oauth.complete_authorization(&req, &user).await?,
    ))
}
