//! Sign-up, following the deployment's identity policy (which identifiers, which name fields),
//! then the verification code when the deployment requires verified identifiers.

use axum::{
    Form,
    extract::{Query, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    Web,
    audit::PageAction,
    browser::{Browser, Reply},
    flow::{Interaction, ix_query},
    messages,
    signin::{PageQuery, url_encode},
};
use crate::identity::{
    policy::{Presence, Primary},
    service::UserFields,
};

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub(super) struct SignupForm {
    #[serde(skip_serializing)]
    csrf: String,
    #[serde(skip_serializing)]
    interaction: String,
    email: String,
    mobile: String,
    given_name: String,
    family_name: String,
    full_name: String,
    #[serde(skip_serializing)]
    password: String,
}

impl Web {
    /// Which fields the form shows: `required`, `optional` or `none` for each identifier.
    fn signup_fields(&self) -> serde_json::Value {
        let policy = self.oauth.identity().policy();
        let presence = |p: Presence| match p {
            Presence::None => "none",
            Presence::Optional => "optional",
            Presence::Required => "required",
        };
        let (email, mobile, either) = match policy.primary {
            Primary::Email => ("required", presence(policy.secondary), false),
            Primary::Mobile => (presence(policy.secondary), "required", false),
            Primary::EmailOrMobile if policy.secondary == Presence::Required => {
                ("required", "required", false)
            }
            Primary::EmailOrMobile => ("optional", "optional", true),
        };
        json!({
            "email": email,
            "mobile": mobile,
            "either": either,
            "name": if policy.full_name { "full" } else { "pair" },
        })
    }

    async fn signup_page(
        &self,
        b: &Browser,
        ix: Option<&Interaction>,
        status: StatusCode,
        values: &SignupForm,
        error: Option<String>,
    ) -> Reply {
        let ctx = json!({
            "fields": self.signup_fields(),
            "values": values,
            "error": error,
            "min_length": self.password_min_length,
        });
        self.ix_page(status, "signup.html", b, ix, "Create your account", ctx)
            .await
    }

    async fn signup_closed(&self, b: &Browser, ix: Option<&Interaction>) -> Reply {
        let brand = self.brand(ix.and_then(|i| i.client_id())).await;
        let href = format!("/oauth2/signin{}", ix_query(ix));
        self.message(
            StatusCode::NOT_FOUND,
            b,
            &brand,
            "Sign-up is closed",
            "New accounts are created by an administrator.",
            Some((&href, "Back to sign in")),
        )
    }
}

/// `GET /oauth2/signup`.
pub(super) async fn page(State(web): State<Web>, b: Browser, Query(q): Query<PageQuery>) -> Reply {
    let ix = match web.page_interaction(&b, q.interaction.as_deref()).await {
        Ok(ix) => ix,
        Err(reply) => return reply,
    };
    if !web.oauth.identity().policy().registration_public {
        return web.signup_closed(&b, ix.as_ref()).await;
    }
    web.signup_page(
        &b,
        ix.as_ref(),
        StatusCode::OK,
        &SignupForm::default(),
        None,
    )
    .await
}

/// `POST /oauth2/signup`.
pub(super) async fn submit(
    State(web): State<Web>,
    b: Browser,
    Form(form): Form<SignupForm>,
) -> Reply {
    if !b.csrf_ok(&form.csrf) {
        return web.csrf_refused(&b).await;
    }
    let mut ix = match web.page_interaction(&b, Some(&form.interaction)).await {
        Ok(ix) => ix,
        Err(reply) => return reply,
    };
    let identity = web.oauth.identity();
    if !identity.policy().registration_public {
        return web.signup_closed(&b, ix.as_ref()).await;
    }
    let fields = UserFields {
        email: form.email.trim().to_string(),
        mobile: form.mobile.trim().to_string(),
        given_name: form.given_name.trim().to_string(),
        family_name: form.family_name.trim().to_string(),
        full_name: form.full_name.trim().to_string(),
        ..Default::default()
    };
    let identifier = if fields.email.is_empty() { fields.mobile.clone() } else { fields.email.clone() };
    let registered = match identity
        .register(fields, form.password.clone(), None, &b.client, &web.limits, None)
        .await
    {
        Ok(r) => {
            web.audit(&b, PageAction::SignUp, &identifier, Some(r.user.id), Ok(())).await;
            r
        }
        Err(err) => {
            web.audit(&b, PageAction::SignUp, &identifier, None, Err(&err)).await;
            let shown = messages::human(&err, web.identifier_field().word);
            return web
                .signup_page(&b, ix.as_ref(), shown.status, &form, Some(shown.message))
                .await;
        }
    };
    let (email_sent, mobile_sent) = identity.dispatch_registration(&registered.user).await;
    let ixq = ix
        .as_ref()
        .map(|i| format!("&interaction={}", i.id))
        .unwrap_or_default();
    let verify = |kind: &str, to: &str, sent: bool| {
        Reply::redirect(format!(
            "/oauth2/verify?kind={kind}&to={}{}{ixq}",
            url_encode(to),
            if sent { "&sent=1" } else { "" }
        ))
    };
    if registered.email_verification_needed
        && let Some(email) = &registered.user.email
    {
        return verify("email", email, email_sent.is_some());
    }
    if registered.mobile_verification_needed
        && let Some(mobile) = &registered.user.mobile
    {
        return verify("mobile", mobile, mobile_sent.is_some());
    }
    // Nothing to verify first: the new account signs in at once.
    let identifier = match identity.policy().primary {
        Primary::Mobile => registered.user.mobile.clone(),
        Primary::Email => registered.user.email.clone(),
        Primary::EmailOrMobile => registered
            .user
            .email
            .clone()
            .or(registered.user.mobile.clone()),
    }
    .unwrap_or_default();
    match identity.login(&identifier, &form.password, &b.client).await {
        Ok(tokens) => match web.adopt_session(&b, &tokens, ix.as_mut()).await {
            Ok(signed_in) => {
                web.after_sign_in(signed_in, tokens.pending_second_factor.is_some(), ix)
                    .await
            }
            Err(err) => web.error_page(&b, &err).await,
        },
        Err(_) => Reply::redirect(format!(
            "/oauth2/signin?identifier={}{ixq}",
            url_encode(&identifier)
        )),
    }
}
