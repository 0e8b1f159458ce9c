//! Consent: the application, what it asks for, allow or deny.

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
    flow::{Interaction, ix_query},
    signin::PageQuery,
};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ConsentForm {
    csrf: String,
    interaction: String,
    /// `allow` or `deny`.
    decision: String,
}

/// The interaction of a consent page: it must exist and be an authorization request.
async fn consent_interaction(
    web: &Web,
    b: &Browser,
    id: Option<&str>,
) -> Result<Interaction, Reply> {
    match web.page_interaction(b, id).await? {
        Some(ix) if ix.request().is_some() => Ok(ix),
        _ => Err(web.interaction_lost(b).await),
    }
}

/// `GET /oauth2/consent?interaction=…`.
pub(super) async fn page(State(web): State<Web>, b: Browser, Query(q): Query<PageQuery>) -> Reply {
    let ix = match consent_interaction(&web, &b, q.interaction.as_deref()).await {
        Ok(ix) => ix,
        Err(reply) => return reply,
    };
    let Some(req) = ix.request() else {
        return web.interaction_lost(&b).await;
    };
    let session = match web.signed_in(&b).await {
        Ok(Some(s)) => s,
        Ok(None) => return Reply::redirect(format!("/oauth2/signin{}", ix_query(Some(&ix)))),
        Err(err) => return web.error_page(&b, &err).await,
    };
    let prompt = match web.oauth.consent_needed(req, session.user_id).await {
        Ok(Some(prompt)) => prompt,
        // Consented meanwhile (another tab): nothing to ask.
        Ok(None) => return web.proceed(&b, ix).await,
        Err(err) => return web.error_page(&b, &err).await,
    };
    let scopes: Vec<_> = prompt
        .scopes
        .iter()
        .map(|(name, description)| json!({"name": name, "description": if description.is_empty() { name } else { description }}))
        .collect();
    let ctx = json!({
        "application": prompt.application_name,
        "scopes": scopes,
        "who": web.who(session.user_id).await,
    });
    let title = format!("Allow {}?", prompt.application_name);
    web.ix_page(StatusCode::OK, "consent.html", &b, Some(&ix), &title, ctx)
        .await
}

/// `POST /oauth2/consent`.
pub(super) async fn submit(
    State(web): State<Web>,
    b: Browser,
    Form(form): Form<ConsentForm>,
) -> Reply {
    if !b.csrf_ok(&form.csrf) {
        return web.csrf_refused(&b).await;
    }
    let ix = match consent_interaction(&web, &b, Some(&form.interaction)).await {
        Ok(ix) => ix,
        Err(reply) => return reply,
    };
    let Some(req) = ix.request().cloned() else {
        return web.interaction_lost(&b).await;
    };
    if form.decision != "allow" {
        return match web.end_interaction(&ix).await {
            Ok(true) => Reply::redirect(web.oauth.error_redirect(
                &req,
                "access_denied",
                "the user denied the request",
            )),
            Ok(false) => web.interaction_lost(&b).await,
            Err(err) => web.error_page(&b, &err).await,
        };
    }
    let session = match web.signed_in(&b).await {
        Ok(Some(s)) => s,
        Ok(None) => return Reply::redirect(format!("/oauth2/signin{}", ix_query(Some(&ix)))),
        Err(err) => return web.error_page(&b, &err).await,
    };
    // The page may have waited past `max_age`; a session from this interaction is fresh enough.
    if ix.session_id != Some(session.session_id)
        && web.oauth.login_required(&req, Some(session.auth_time))
    {
        return Reply::redirect(format!("/oauth2/signin{}", ix_query(Some(&ix))));
    }
    if let Err(err) = web.oauth.grant_consent(&req, session.user_id).await {
        return web.error_page(&b, &err).await;
    }
    match web.complete(&b, &ix, &req, &session).await {
        Ok(reply) => reply,
        Err(err) => web.error_page(&b, &err).await,
    }
}
