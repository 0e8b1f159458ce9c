//! Sign-in with an identifier and a password, and the second factor a session may still owe.

use axum::{
    Form,
    extract::{Query, State},
    http::StatusCode,
};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::{
    Web,
    audit::PageAction,
    browser::{Browser, Reply, SESSION_COOKIE, set_cookie},
    flow::{Interaction, Pending, ix_query},
    messages,
    store::BrowserSession,
};
use crate::{
    error::{Error, Result},
    identity::{
        identifiers::{Identifier, parse_identifier},
        second_factor::FactorMethod,
        verification::{mask_email, mask_mobile},
    },
};

/// The query of the pages that may belong to an interaction.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct PageQuery {
    pub interaction: Option<String>,
    /// Prefills the identifier.
    pub identifier: Option<String>,
    /// A fixed notice to show (`verified`, `reset`), never free text.
    pub notice: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct SigninForm {
    csrf: String,
    interaction: String,
    identifier: String,
    password: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct CodeForm {
    csrf: String,
    interaction: String,
    code: String,
}

fn notice_text(notice: Option<&str>) -> Option<&'static str> {
    match notice? {
        "verified" => Some("Thank you, your address is verified. You can sign in now."),
        "reset" => Some("Your password has been changed. Sign in with your new password."),
        "signed_out" => Some("You have been signed out."),
        _ => None,
    }
}

/// What the sign-in page needs besides the identifier and the messages.
struct SigninView<'a> {
    identifier: &'a str,
    error: Option<String>,
    notice: Option<&'a str>,
    verify_href: Option<String>,
}

impl Web {
    /// The interaction a page's `interaction` parameter names: `Err` with the "expired" page when
    /// it names one that is gone.
    pub(super) async fn page_interaction(
        &self,
        b: &Browser,
        id: Option<&str>,
    ) -> Result<Option<Interaction>, Reply> {
        match self.interaction(b, id).await {
            Ok(None) if id.is_some_and(|i| !i.is_empty()) => Err(self.interaction_lost(b).await),
            Ok(ix) => Ok(ix),
            Err(err) => Err(self.error_page(b, &err).await),
        }
    }

    /// A page of an interaction: its application's branding, and its client's origin allowed as
    /// a form target.
    pub(super) async fn ix_page(
        &self,
        status: StatusCode,
        name: &str,
        b: &Browser,
        ix: Option<&Interaction>,
        title: &str,
        mut ctx: serde_json::Value,
    ) -> Reply {
        let brand = self.brand(ix.and_then(|i| i.client_id())).await;
        if let Some(map) = ctx.as_object_mut() {
            map.insert(
                "interaction".into(),
                json!(ix.map(|i| i.id.as_str()).unwrap_or("")),
            );
            map.insert("q".into(), json!(ix_query(ix)));
        }
        self.page(status, name, b, &brand, title, ctx)
            .with_form_target(ix.and_then(|i| i.form_target()))
    }

    /// Sends a browser that must sign in (for `pending`) to the sign-in page, or to the second
    /// factor its session still owes.
    pub(super) async fn require_sign_in(&self, b: &Browser, pending: Pending) -> Reply {
        let owing = matches!(self.browser_session(b).await, Ok(Some(s)) if s.pending_second_factor.is_some());
        match self.start_interaction(b, pending).await {
            Ok(ix) if owing => {
                Reply::redirect(format!("/oauth2/second-factor{}", ix_query(Some(&ix))))
            }
            Ok(ix) => Reply::redirect(format!("/oauth2/signin{}", ix_query(Some(&ix)))),
            Err(err) => self.error_page(b, &err).await,
        }
    }

    /// How to name the signed-in user on a page: the email, else the mobile number, else the name.
    pub(super) async fn who(&self, user_id: Uuid) -> String {
        match self.oauth.identity().get_user(&user_id.to_string()).await {
            Ok(u) => u.email.or(u.mobile).unwrap_or_else(|| {
                if u.full_name.is_empty() {
                    format!("{} {}", u.given_name, u.family_name)
                } else {
                    u.full_name
                }
            }),
            Err(_) => String::new(),
        }
    }

    fn signin_links(&self) -> serde_json::Value {
        let v = &self.verification;
        json!({
            "reset": v.password_reset_by_email.is_active || v.password_reset_by_mobile.is_active,
            "magic": v.magic_link.is_active,
            "signup": self.oauth.identity().policy().registration_public,
        })
    }

    async fn signin_page(
        &self,
        b: &Browser,
        ix: Option<&Interaction>,
        status: StatusCode,
        view: SigninView<'_>,
    ) -> Reply {
        let ctx = json!({
            "identifier": view.identifier,
            "field": self.identifier_field(),
            "error": view.error,
            "notice": view.notice,
            "verify_href": view.verify_href,
            "links": self.signin_links(),
        });
        self.ix_page(status, "signin.html", b, ix, "Sign in", ctx)
            .await
    }

    /// The page of a browser that is signed in and has nothing pending.
    pub(super) async fn signed_in_page(&self, b: &Browser, session: &BrowserSession) -> Reply {
        let brand = self.brand(None).await;
        let who = self.who(session.user_id).await;
        let ctx = json!({
            "heading": "You are signed in",
            "text": format!("Signed in as {who}."),
            "signout": true,
        });
        self.page(StatusCode::OK, "message.html", b, &brand, "Signed in", ctx)
    }

    /// Where a browser goes once a sign-in (password, magic link, registration) succeeded:
    /// `signed_in` is the new browser session (its cookie, and the browser as it is once the
    /// cookie is set).
    pub(super) async fn after_sign_in(
        &self,
        signed_in: (String, Browser),
        pending_factor: bool,
        ix: Option<Interaction>,
    ) -> Reply {
        let (cookie, b) = signed_in;
        let q = ix_query(ix.as_ref());
        if pending_factor {
            return Reply::redirect(format!("/oauth2/second-factor{q}")).with_cookie(cookie);
        }
        match ix {
            Some(ix) => self.proceed(&b, ix).await.with_cookie(cookie),
            None => Reply::redirect("/oauth2/signin").with_cookie(cookie),
        }
    }
}

/// `GET /oauth2/signin`.
pub(super) async fn page(State(web): State<Web>, b: Browser, Query(q): Query<PageQuery>) -> Reply {
    let ix = match web.page_interaction(&b, q.interaction.as_deref()).await {
        Ok(ix) => ix,
        Err(reply) => return reply,
    };
    if ix.is_none()
        && let Ok(Some(session)) = web.browser_session(&b).await
    {
        if session.pending_second_factor.is_some() {
            return Reply::redirect("/oauth2/second-factor");
        }
        return web.signed_in_page(&b, &session).await;
    }
    // The identifier: from the page's link, else the client's `login_hint`.
    let hint = ix
        .as_ref()
        .and_then(|i| i.request())
        .and_then(|r| r.login_hint.as_deref());
    let view = SigninView {
        identifier: q.identifier.as_deref().or(hint).unwrap_or(""),
        error: None,
        notice: notice_text(q.notice.as_deref()),
        verify_href: None,
    };
    web.signin_page(&b, ix.as_ref(), StatusCode::OK, view).await
}

/// `POST /oauth2/signin`.
pub(super) async fn submit(
    State(web): State<Web>,
    b: Browser,
    Form(form): Form<SigninForm>,
) -> Reply {
    if !b.csrf_ok(&form.csrf) {
        return web.csrf_refused(&b).await;
    }
    let mut ix = match web.page_interaction(&b, Some(&form.interaction)).await {
        Ok(ix) => ix,
        Err(reply) => return reply,
    };
    let identifier = form.identifier.trim();
    match web
        .oauth
        .identity()
        .login(identifier, &form.password, &b.client)
        .await
    {
        Ok(tokens) => {
            web.audit(
                &b,
                PageAction::SignIn,
                identifier,
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
            web.audit(&b, PageAction::SignIn, identifier, None, Err(&err))
                .await;
            let shown = messages::human(&err, web.identifier_field().word);
            let verify_href = verify_href(&web, &err, identifier, ix.as_ref());
            let view = SigninView {
                identifier,
                error: Some(shown.message),
                notice: None,
                verify_href,
            };
            web.signin_page(&b, ix.as_ref(), shown.status, view).await
        }
    }
}

/// The link to the verification page, when sign-in was refused for an unverified identifier
/// that the user typed (the password was right: nothing is revealed).
fn verify_href(
    web: &Web,
    err: &Error,
    identifier: &str,
    ix: Option<&Interaction>,
) -> Option<String> {
    let kind = match (err, parse_identifier(identifier)?) {
        (
            Error::PermissionDenied {
                reason: "EMAIL_VERIFICATION_NEEDED",
                ..
            },
            Identifier::Email(_),
        ) if web.verification.email_verification.is_active => "email",
        (
            Error::PermissionDenied {
                reason: "MOBILE_VERIFICATION_NEEDED",
                ..
            },
            Identifier::Mobile(_),
        ) if web.verification.mobile_verification.is_active => "mobile",
        _ => return None,
    };
    let ix = ix
        .map(|i| format!("&interaction={}", i.id))
        .unwrap_or_default();
    Some(format!(
        "/oauth2/verify?kind={kind}&to={}{ix}",
        url_encode(identifier)
    ))
}

/// Percent-encodes a query value.
pub(super) fn url_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

impl Web {
    async fn factor_view(
        &self,
        b: &Browser,
        ix: Option<&Interaction>,
        session: &BrowserSession,
        status: StatusCode,
        error: Option<String>,
        notice: Option<&str>,
    ) -> Reply {
        let factor = session.pending_second_factor.clone().unwrap_or_default();
        let destination = match self
            .oauth
            .identity()
            .get_user(&session.user_id.to_string())
            .await
        {
            Ok(u) if factor == "email" => u.email.as_deref().map(mask_email).unwrap_or_default(),
            Ok(u) if factor == "mobile" => u.mobile.as_deref().map(mask_mobile).unwrap_or_default(),
            _ => String::new(),
        };
        let ctx =
            json!({"factor": factor, "destination": destination, "error": error, "notice": notice});
        self.ix_page(status, "second_factor.html", b, ix, "Verify it's you", ctx)
            .await
    }

    /// Where a browser whose session owes nothing (any more) goes.
    async fn factor_done(&self, b: &Browser, ix: Option<Interaction>) -> Reply {
        match ix {
            Some(ix) => self.proceed(b, ix).await,
            None => Reply::redirect("/oauth2/signin"),
        }
    }
}

/// `GET /oauth2/second-factor`.
pub(super) async fn factor_page(
    State(web): State<Web>,
    b: Browser,
    Query(q): Query<PageQuery>,
) -> Reply {
    let ix = match web.page_interaction(&b, q.interaction.as_deref()).await {
        Ok(ix) => ix,
        Err(reply) => return reply,
    };
    match web.browser_session(&b).await {
        Ok(Some(s)) if s.pending_second_factor.is_some() => {
            web.factor_view(&b, ix.as_ref(), &s, StatusCode::OK, None, None)
                .await
        }
        Ok(Some(_)) => web.factor_done(&b, ix).await,
        Ok(None) => Reply::redirect(format!("/oauth2/signin{}", ix_query(ix.as_ref()))),
        Err(err) => web.error_page(&b, &err).await,
    }
}

/// `POST /oauth2/second-factor`.
pub(super) async fn factor_submit(
    State(web): State<Web>,
    b: Browser,
    Form(form): Form<CodeForm>,
) -> Reply {
    if !b.csrf_ok(&form.csrf) {
        return web.csrf_refused(&b).await;
    }
    let ix = match web.page_interaction(&b, Some(&form.interaction)).await {
        Ok(ix) => ix,
        Err(reply) => return reply,
    };
    let session = match web.browser_session(&b).await {
        Ok(Some(s)) if s.pending_second_factor.is_some() => s,
        Ok(Some(_)) => return web.factor_done(&b, ix).await,
        Ok(None) => return Reply::redirect(format!("/oauth2/signin{}", ix_query(ix.as_ref()))),
        Err(err) => return web.error_page(&b, &err).await,
    };
    let identity = web.oauth.identity();
    match identity
        .verify_second_factor(
            session.user_id,
            Some(session.session_id),
            FactorMethod::Pending,
            form.code.trim(),
        )
        .await
    {
        Ok((row, _)) if row.pending_second_factor.is_some() => {
            Reply::redirect(format!("/oauth2/second-factor{}", ix_query(ix.as_ref())))
        }
        Ok(_) => web.factor_done(&b, ix).await,
        Err(err) => {
            let shown = messages::human(&err, web.identifier_field().word);
            // Too many wrong codes revoke the session: start over.
            if matches!(web.browser_session(&b).await, Ok(None)) {
                let brand = web.brand(ix.as_ref().and_then(|i| i.client_id())).await;
                let href = format!("/oauth2/signin{}", ix_query(ix.as_ref()));
                return web
                    .message(
                        shown.status,
                        &b,
                        &brand,
                        "Please sign in again",
                        &shown.message,
                        Some((&href, "Sign in")),
                    )
                    .with_cookie(set_cookie(SESSION_COOKIE, None, web.secure));
            }
            web.factor_view(
                &b,
                ix.as_ref(),
                &session,
                shown.status,
                Some(shown.message),
                None,
            )
            .await
        }
    }
}

/// `POST /oauth2/second-factor/resend`.
pub(super) async fn factor_resend(
    State(web): State<Web>,
    b: Browser,
    Form(form): Form<CodeForm>,
) -> Reply {
    if !b.csrf_ok(&form.csrf) {
        return web.csrf_refused(&b).await;
    }
    let ix = match web.page_interaction(&b, Some(&form.interaction)).await {
        Ok(ix) => ix,
        Err(reply) => return reply,
    };
    let session = match web.browser_session(&b).await {
        Ok(Some(s)) if s.pending_second_factor.is_some() => s,
        Ok(Some(_)) => return web.factor_done(&b, ix).await,
        Ok(None) => return Reply::redirect(format!("/oauth2/signin{}", ix_query(ix.as_ref()))),
        Err(err) => return web.error_page(&b, &err).await,
    };
    match web
        .oauth
        .identity()
        .send_second_factor_code(session.user_id, Some(session.session_id))
        .await
    {
        Ok(_) => {
            web.factor_view(
                &b,
                ix.as_ref(),
                &session,
                StatusCode::OK,
                None,
                Some("We sent you a new code."),
            )
            .await
        }
        Err(err) => {
            let shown = messages::human(&err, web.identifier_field().word);
            web.factor_view(
                &b,
                ix.as_ref(),
                &session,
                shown.status,
                Some(shown.message),
                None,
            )
            .await
        }
    }
}
