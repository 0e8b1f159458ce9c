//! The pages of the verification flows: verification codes (after sign-up, or when sign-in asks
//! for a verified identifier), password reset (request, then a code or a link and the new
//! password) and magic links (request, then a code or a link that signs in).
//!
//! Links land on a page with a button: opening a link never changes anything by itself (mail
//! scanners open links), the button's form does.

use axum::{
    Form,
    extract::{Path, Query, State},
    http::StatusCode,
};
use serde::Deserialize;
use serde_json::json;

use super::{
    Web,
    audit::PageAction,
    browser::{Browser, Reply},
    flow::{Interaction, ix_query},
    messages,
    signin::{PageQuery, url_encode},
};
use crate::{
    config::FlowConfig,
    error::Error,
    identity::{
        identifiers::{Identifier, parse_identifier},
        verification_service::{ResetBy, SecretInput},
    },
};

fn by_link(flow: &FlowConfig) -> bool {
    flow.verification_type == "byLink"
}

/// A secret from a form: the link token when there is one, else the typed code.
fn secret(token: &str, code: &str) -> SecretInput {
    if token.trim().is_empty() {
        SecretInput::Code(code.trim().to_string())
    } else {
        SecretInput::Token(token.trim().to_string())
    }
}

impl Web {
    async fn unavailable(&self, b: &Browser, ix: Option<&Interaction>) -> Reply {
        let brand = self.brand(ix.and_then(|i| i.client_id())).await;
        let href = format!("/oauth2/signin{}", ix_query(ix));
        self.message(
            StatusCode::NOT_FOUND,
            b,
            &brand,
            "Not available",
            "This option is not available here.",
            Some((&href, "Back to sign in")),
        )
    }
}

// ---- verification codes ------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct VerifyQuery {
    interaction: Option<String>,
    kind: String,
    to: String,
    sent: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct VerifyForm {
    csrf: String,
    interaction: String,
    kind: String,
    to: String,
    code: String,
    token: String,
    action: String,
}

struct VerifyView<'a> {
    kind: &'a str,
    to: &'a str,
    token: &'a str,
    sent: bool,
    error: Option<String>,
    notice: Option<&'a str>,
}

impl Web {
    fn verify_active(&self, kind: &str) -> bool {
        match kind {
            "email" => self.verification.email_verification.is_active,
            "mobile" => self.verification.mobile_verification.is_active,
            _ => false,
        }
    }

    /// Whether `to` is an identifier of `kind` (the page shows it: no free text).
    fn verify_target_ok(kind: &str, to: &str) -> bool {
        matches!(
            (kind, parse_identifier(to)),
            ("email", Some(Identifier::Email(_))) | ("mobile", Some(Identifier::Mobile(_)))
        )
    }

    async fn verify_view(
        &self,
        b: &Browser,
        ix: Option<&Interaction>,
        status: StatusCode,
        v: VerifyView<'_>,
    ) -> Reply {
        let ctx = json!({
            "kind": v.kind, "to": v.to, "token": v.token, "sent": v.sent, "error": v.error, "notice": v.notice,
        });
        let title = if v.kind == "mobile" {
            "Verify your mobile number"
        } else {
            "Verify your email address"
        };
        self.ix_page(status, "verify.html", b, ix, title, ctx).await
    }
}

/// `GET /oauth2/verify?kind=email|mobile&to=…`.
pub(super) async fn verify_page(
    State(web): State<Web>,
    b: Browser,
    Query(q): Query<VerifyQuery>,
) -> Reply {
    let ix = match web.page_interaction(&b, q.interaction.as_deref()).await {
        Ok(ix) => ix,
        Err(reply) => return reply,
    };
    if !web.verify_active(&q.kind) || !Web::verify_target_ok(&q.kind, q.to.trim()) {
        return web.unavailable(&b, ix.as_ref()).await;
    }
    let view = VerifyView {
        kind: &q.kind,
        to: q.to.trim(),
        token: "",
        sent: q.sent.is_some(),
        error: None,
        notice: None,
    };
    web.verify_view(&b, ix.as_ref(), StatusCode::OK, view).await
}

async fn verify_landing(web: Web, b: Browser, kind: &str, token: String) -> Reply {
    if !web.verify_active(kind) {
        return web.unavailable(&b, None).await;
    }
    let view = VerifyView {
        kind,
        to: "",
        token: &token,
        sent: false,
        error: None,
        notice: None,
    };
    web.verify_view(&b, None, StatusCode::OK, view).await
}

/// `GET /emailVerification/{token}`: the link of a `byLink` email verification.
pub(super) async fn verify_landing_email(
    State(web): State<Web>,
    b: Browser,
    Path(token): Path<String>,
) -> Reply {
    verify_landing(web, b, "email", token).await
}

/// `GET /mobileVerification/{token}`.
pub(super) async fn verify_landing_mobile(
    State(web): State<Web>,
    b: Browser,
    Path(token): Path<String>,
) -> Reply {
    verify_landing(web, b, "mobile", token).await
}

/// `POST /oauth2/verify`: confirms a code or link token, or sends a new code.
pub(super) async fn verify_submit(
    State(web): State<Web>,
    b: Browser,
    Form(form): Form<VerifyForm>,
) -> Reply {
    if !b.csrf_ok(&form.csrf) {
        return web.csrf_refused(&b).await;
    }
    let ix = match web.page_interaction(&b, Some(&form.interaction)).await {
        Ok(ix) => ix,
        Err(reply) => return reply,
    };
    let by_token = !form.token.trim().is_empty();
    if !web.verify_active(&form.kind)
        || !(by_token || Web::verify_target_ok(&form.kind, form.to.trim()))
    {
        return web.unavailable(&b, ix.as_ref()).await;
    }
    let identity = web.oauth.identity();
    let kind = form.kind.as_str();
    let to = form.to.trim();
    let word = web.identifier_field().word;
    if form.action == "resend" {
        let sent = match kind {
            "email" => identity.send_email_verification(to, &b.client).await,
            _ => identity.send_mobile_verification(to, &b.client).await,
        };
        let (status, error, notice) = match sent {
            Ok(_) => (StatusCode::OK, None, Some("We sent a new code.")),
            Err(err) => {
                let shown = messages::human(&err, word);
                (shown.status, Some(shown.message), None)
            }
        };
        let view = VerifyView {
            kind,
            to,
            token: "",
            sent: false,
            error,
            notice,
        };
        return web.verify_view(&b, ix.as_ref(), status, view).await;
    }
    let secret = secret(&form.token, &form.code);
    let confirmed = match kind {
        "email" => identity.confirm_email_verification(to, secret).await,
        _ => identity.confirm_mobile_verification(to, secret).await,
    };
    match confirmed {
        Ok(identifier) => {
            let ixq = ix
                .as_ref()
                .map(|i| format!("&interaction={}", i.id))
                .unwrap_or_default();
            Reply::redirect(format!(
                "/oauth2/signin?notice=verified&identifier={}{ixq}",
                url_encode(&identifier)
            ))
        }
        Err(err) => {
            let shown = messages::human(&err, word);
            let view = VerifyView {
                kind,
                to,
                token: form.token.trim(),
                sent: false,
                error: Some(shown.message),
                notice: None,
            };
            web.verify_view(&b, ix.as_ref(), shown.status, view).await
        }
    }
}

// ---- password reset ------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ResetRequestForm {
    csrf: String,
    interaction: String,
    identifier: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ResetConfirmForm {
    csrf: String,
    interaction: String,
    identifier: String,
    code: String,
    token: String,
    password: String,
}

impl Web {
    fn reset_active(&self) -> bool {
        self.verification.password_reset_by_email.is_active
            || self.verification.password_reset_by_mobile.is_active
    }

    /// Which reset flow an identifier uses, if it is on.
    fn reset_by(&self, identifier: &str) -> Result<ResetBy, Error> {
        let v = &self.verification;
        match parse_identifier(identifier) {
            Some(Identifier::Email(e)) if v.password_reset_by_email.is_active => {
                Ok(ResetBy::Email(e))
            }
            Some(Identifier::Mobile(m)) if v.password_reset_by_mobile.is_active => {
                Ok(ResetBy::Mobile(m))
            }
            _ if v.password_reset_by_email.is_active && !v.password_reset_by_mobile.is_active => {
                Err(Error::invalid(
                    "INVALID_EMAIL",
                    "identifier",
                    "enter a valid email address",
                ))
            }
            _ if v.password_reset_by_mobile.is_active && !v.password_reset_by_email.is_active => {
                Err(Error::invalid(
                    "INVALID_MOBILE",
                    "identifier",
                    "enter a valid mobile number",
                ))
            }
            _ => Err(Error::invalid(
                "INVALID_ARGUMENT",
                "identifier",
                "enter a valid email address or mobile number",
            )),
        }
    }

    fn reset_link_flow(&self) -> bool {
        let v = &self.verification;
        if v.password_reset_by_email.is_active {
            by_link(&v.password_reset_by_email)
        } else {
            by_link(&v.password_reset_by_mobile)
        }
    }

    async fn reset_request_view(
        &self,
        b: &Browser,
        ix: Option<&Interaction>,
        status: StatusCode,
        identifier: &str,
        error: Option<String>,
    ) -> Reply {
        let ctx = json!({
            "field": self.identifier_field(), "identifier": identifier, "error": error, "link": self.reset_link_flow(),
        });
        self.ix_page(
            status,
            "reset_request.html",
            b,
            ix,
            "Reset your password",
            ctx,
        )
        .await
    }

    async fn reset_confirm_view(
        &self,
        b: &Browser,
        ix: Option<&Interaction>,
        status: StatusCode,
        identifier: &str,
        token: &str,
        error: Option<String>,
    ) -> Reply {
        let ctx = json!({
            "identifier": identifier, "token": token, "error": error, "min_length": self.password_min_length,
        });
        self.ix_page(
            status,
            "reset_confirm.html",
            b,
            ix,
            "Choose a new password",
            ctx,
        )
        .await
    }
}

/// `GET /oauth2/password-reset`.
pub(super) async fn reset_page(
    State(web): State<Web>,
    b: Browser,
    Query(q): Query<PageQuery>,
) -> Reply {
    let ix = match web.page_interaction(&b, q.interaction.as_deref()).await {
        Ok(ix) => ix,
        Err(reply) => return reply,
    };
    if !web.reset_active() {
        return web.unavailable(&b, ix.as_ref()).await;
    }
    web.reset_request_view(
        &b,
        ix.as_ref(),
        StatusCode::OK,
        q.identifier.as_deref().unwrap_or(""),
        None,
    )
    .await
}

/// `POST /oauth2/password-reset`: sends the code or link. The answer is the same whether or
/// not the identifier has an account.
pub(super) async fn reset_request(
    State(web): State<Web>,
    b: Browser,
    Form(form): Form<ResetRequestForm>,
) -> Reply {
    if !b.csrf_ok(&form.csrf) {
        return web.csrf_refused(&b).await;
    }
    let ix = match web.page_interaction(&b, Some(&form.interaction)).await {
        Ok(ix) => ix,
        Err(reply) => return reply,
    };
    if !web.reset_active() {
        return web.unavailable(&b, ix.as_ref()).await;
    }
    let identifier = form.identifier.trim();
    let word = web.identifier_field().word;
    let by = match web.reset_by(identifier) {
        Ok(by) => by,
        Err(err) => {
            let shown = messages::human(&err, word);
            return web
                .reset_request_view(
                    &b,
                    ix.as_ref(),
                    shown.status,
                    identifier,
                    Some(shown.message),
                )
                .await;
        }
    };
    match web
        .oauth
        .identity()
        .request_password_reset(by, &b.client)
        .await
    {
        Ok(dispatch) if dispatch.link => {
            let brand = web.brand(ix.as_ref().and_then(|i| i.client_id())).await;
            let text = format!(
                "If {identifier} belongs to an account, we sent it a link to choose a new password. The link works once and expires soon."
            );
            web.message(
                StatusCode::OK,
                &b,
                &brand,
                "Check your messages",
                &text,
                None,
            )
        }
        Ok(_) => {
            web.reset_confirm_view(&b, ix.as_ref(), StatusCode::OK, identifier, "", None)
                .await
        }
        // A code went out a moment ago: let the user type it.
        Err(err @ Error::RetryLater { .. }) if !web.reset_link_flow() => {
            let shown = messages::human(&err, word);
            web.reset_confirm_view(
                &b,
                ix.as_ref(),
                StatusCode::OK,
                identifier,
                "",
                Some(shown.message),
            )
            .await
        }
        Err(err) => {
            let shown = messages::human(&err, word);
            web.reset_request_view(
                &b,
                ix.as_ref(),
                shown.status,
                identifier,
                Some(shown.message),
            )
            .await
        }
    }
}

/// `GET /passwordResetByEmail/{token}` and `/passwordResetByMobile/{token}`.
pub(super) async fn reset_landing(
    State(web): State<Web>,
    b: Browser,
    Path(token): Path<String>,
) -> Reply {
    if !web.reset_active() {
        return web.unavailable(&b, None).await;
    }
    let ix = web.newest_interaction_peek(&b).await;
    web.reset_confirm_view(&b, ix.as_ref(), StatusCode::OK, "", &token, None)
        .await
}

/// `POST /oauth2/password-reset/confirm`: sets the new password with the code or link token.
pub(super) async fn reset_confirm(
    State(web): State<Web>,
    b: Browser,
    Form(form): Form<ResetConfirmForm>,
) -> Reply {
    if !b.csrf_ok(&form.csrf) {
        return web.csrf_refused(&b).await;
    }
    let ix = if form.interaction.is_empty() && !form.token.trim().is_empty() {
        // From a link: the browser's newest interaction, if it asked for the link in one.
        web.newest_interaction(&b).await.ok().flatten()
    } else {
        match web.page_interaction(&b, Some(&form.interaction)).await {
            Ok(ix) => ix,
            Err(reply) => return reply,
        }
    };
    if !web.reset_active() {
        return web.unavailable(&b, ix.as_ref()).await;
    }
    let identifier = form.identifier.trim();
    let word = web.identifier_field().word;
    let (by, secret) = if form.token.trim().is_empty() {
        match web.reset_by(identifier) {
            Ok(by) => (Some(by), secret("", &form.code)),
            Err(err) => return web.error_page(&b, &err).await,
        }
    } else {
        (None, secret(&form.token, ""))
    };
    match web
        .oauth
        .identity()
        .confirm_password_reset(by, secret, form.password)
        .await
    {
        Ok(()) => {
            web.audit(&b, PageAction::PasswordReset, identifier, None, Ok(()))
                .await;
            let mut href = format!(
                "/oauth2/signin?notice=reset&identifier={}",
                url_encode(identifier)
            );
            if let Some(ix) = &ix {
                href.push_str(&format!("&interaction={}", ix.id));
            }
            Reply::redirect(href)
        }
        Err(err) => {
            web.audit(&b, PageAction::PasswordReset, identifier, None, Err(&err))
                .await;
            let shown = messages::human(&err, word);
            let ix_view = if form.interaction.is_empty() {
                ix.map(Interaction::anonymous)
            } else {
                ix
            };
            web.reset_confirm_view(
                &b,
                ix_view.as_ref(),
                shown.status,
                identifier,
                form.token.trim(),
                Some(shown.message),
            )
            .await
        }
    }
}

// ---- magic links ---------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct MagicRequestForm {
    csrf: String,
    interaction: String,
    email: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct MagicConfirmForm {
    csrf: String,
    interaction: String,
    email: String,
    code: String,
    token: String,
}

impl Web {
    async fn magic_request_view(
        &self,
        b: &Browser,
        ix: Option<&Interaction>,
        status: StatusCode,
        email: &str,
        error: Option<String>,
    ) -> Reply {
        let ctx =
            json!({"email": email, "error": error, "link": by_link(&self.verification.magic_link)});
        self.ix_page(
            status,
            "magic_request.html",
            b,
            ix,
            "Sign in with email",
            ctx,
        )
        .await
    }

    async fn magic_confirm_view(
        &self,
        b: &Browser,
        ix: Option<&Interaction>,
        status: StatusCode,
        email: &str,
        token: &str,
        error: Option<String>,
    ) -> Reply {
        let ctx = json!({"email": email, "token": token, "error": error});
        self.ix_page(
            status,
            "magic_confirm.html",
            b,
            ix,
            "Continue signing in",
            ctx,
        )
        .await
    }

    /// This browser's newest interaction, for a page reached from a link (its form carries no
    /// interaction; the submit picks the newest one up again).
    async fn newest_interaction_peek(&self, b: &Browser) -> Option<Interaction> {
        let mut conn = self.oauth.pool.get().await.ok()?;
        let row = super::store::newest_interaction(&mut conn, &b.binding())
            .await
            .ok()??;
        let request = serde_json::from_value(row.request).ok()?;
        let ix = Interaction {
            id: String::new(),
            pending: super::flow::Pending::Authorize(request),
            session_id: row.session_id,
        };
        Some(ix)
    }
}

/// `GET /oauth2/magic-link`.
pub(super) async fn magic_page(
    State(web): State<Web>,
    b: Browser,
    Query(q): Query<PageQuery>,
) -> Reply {
    let ix = match web.page_interaction(&b, q.interaction.as_deref()).await {
        Ok(ix) => ix,
        Err(reply) => return reply,
    };
    if !web.verification.magic_link.is_active {
        return web.unavailable(&b, ix.as_ref()).await;
    }
    web.magic_request_view(
        &b,
        ix.as_ref(),
        StatusCode::OK,
        q.identifier.as_deref().unwrap_or(""),
        None,
    )
    .await
}

/// `POST /oauth2/magic-link`: sends the link or code, alike whether or not the address has an
/// account.
pub(super) async fn magic_request(
    State(web): State<Web>,
    b: Browser,
    Form(form): Form<MagicRequestForm>,
) -> Reply {
    if !b.csrf_ok(&form.csrf) {
        return web.csrf_refused(&b).await;
    }
    let ix = match web.page_interaction(&b, Some(&form.interaction)).await {
        Ok(ix) => ix,
        Err(reply) => return reply,
    };
    if !web.verification.magic_link.is_active {
        return web.unavailable(&b, ix.as_ref()).await;
    }
    let email = form.email.trim();
    let word = web.identifier_field().word;
    match web
        .oauth
        .identity()
        .request_magic_link(email, &b.client)
        .await
    {
        Ok(dispatch) if dispatch.link => {
            let brand = web.brand(ix.as_ref().and_then(|i| i.client_id())).await;
            let text = format!(
                "If {email} belongs to an account, we sent it a sign-in link. Open it in this browser to continue; it works once and expires soon."
            );
            web.message(StatusCode::OK, &b, &brand, "Check your email", &text, None)
        }
        Ok(_) => {
            web.magic_confirm_view(&b, ix.as_ref(), StatusCode::OK, email, "", None)
                .await
        }
        Err(err @ Error::RetryLater { .. }) if !by_link(&web.verification.magic_link) => {
            let shown = messages::human(&err, word);
            web.magic_confirm_view(
                &b,
                ix.as_ref(),
                StatusCode::OK,
                email,
                "",
                Some(shown.message),
            )
            .await
        }
        Err(err) => {
            let shown = messages::human(&err, word);
            web.magic_request_view(&b, ix.as_ref(), shown.status, email, Some(shown.message))
                .await
        }
    }
}

/// `GET /magicLink/{token}`: the landing page of a magic link.
pub(super) async fn magic_landing(
    State(web): State<Web>,
    b: Browser,
    Path(token): Path<String>,
) -> Reply {
    if !web.verification.magic_link.is_active {
        return web.unavailable(&b, None).await;
    }
    let ix = web.newest_interaction_peek(&b).await;
    web.magic_confirm_view(&b, ix.as_ref(), StatusCode::OK, "", &token, None)
        .await
}

/// `POST /oauth2/magic-link/confirm`: signs in with the link token or the code.
pub(super) async fn magic_confirm(
    State(web): State<Web>,
    b: Browser,
    Form(form): Form<MagicConfirmForm>,
) -> Reply {
    if !b.csrf_ok(&form.csrf) {
        return web.csrf_refused(&b).await;
    }
    let mut ix = if form.interaction.is_empty() {
        // From a link: the browser's newest interaction, if it asked for the link in one.
        web.newest_interaction(&b).await.ok().flatten()
    } else {
        match web.page_interaction(&b, Some(&form.interaction)).await {
            Ok(ix) => ix,
            Err(reply) => return reply,
        }
    };
    if !web.verification.magic_link.is_active {
        return web.unavailable(&b, ix.as_ref()).await;
    }
    let email = form.email.trim();
    let secret = secret(&form.token, &form.code);
    match web
        .oauth
        .identity()
        .confirm_magic_link(email, secret, &b.client)
        .await
    {
        Ok(tokens) => {
            web.audit(
                &b,
                PageAction::MagicLink,
                email,
                Some(tokens.user_id),
                Ok(()),
            )
            .await;
            match web.adopt_session(&b, &tokens, ix.as_mut()).await {
                Ok(signed_in) => {
                    web.after_sign_in(signed_in, tokens.pending_second_factor.is_some(), ix)
                        .await
                }
                Err(err) => web.error_page(&b, &err).await,
            }
        }
        Err(err) => {
            web.audit(&b, PageAction::MagicLink, email, None, Err(&err))
                .await;
            let shown = messages::human(&err, web.identifier_field().word);
            // A form reached from a link carries no interaction: its submit picks it up again.
            let ix_view = if form.interaction.is_empty() {
                ix.map(Interaction::anonymous)
            } else {
                ix
            };
            web.magic_confirm_view(
                &b,
                ix_view.as_ref(),
                shown.status,
                email,
                form.token.trim(),
                Some(shown.message),
            )
            .await
        }
    }
}
