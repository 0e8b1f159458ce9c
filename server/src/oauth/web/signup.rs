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
    policy::{Presence, Primary, Property, PropertyKind},
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
    /// The deployment's custom user properties, as `property.<name>` fields.
    #[serde(flatten)]
    extra: std::collections::BTreeMap<String, String>,
}

/// The form's field of a custom property.
fn property_field(name: &str) -> String {
    format!("property.{name}")
}

impl SignupForm {
    /// The custom properties typed as declared. A value that does not parse is passed on as
    /// text, so the identity service refuses it with its usual message; empty optional fields
    /// are left out (their default applies); an unticked boolean is `false`.
    fn properties(&self, declared: &[Property]) -> serde_json::Map<String, serde_json::Value> {
        let mut out = serde_json::Map::new();
        for p in declared {
            let raw = self
                .extra
                .get(&property_field(&p.name))
                .map(|v| v.trim())
                .unwrap_or("");
            let value = match &p.kind {
                PropertyKind::Boolean => json!(matches!(raw, "on" | "true")),
                _ if raw.is_empty() => continue,
                PropertyKind::Integer => raw
                    .parse::<i64>()
                    .map(|n| json!(n))
                    .unwrap_or_else(|_| json!(raw)),
                PropertyKind::String | PropertyKind::Enum(_) => json!(raw),
            };
            out.insert(p.name.clone(), value);
        }
        out
    }
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
        let properties: Vec<serde_json::Value> = policy
            .properties
            .iter()
            .map(|p| {
                let (kind, values) = match &p.kind {
                    PropertyKind::String => ("text", Vec::new()),
                    PropertyKind::Integer => ("integer", Vec::new()),
                    PropertyKind::Boolean => ("boolean", Vec::new()),
                    PropertyKind::Enum(values) => ("enum", values.clone()),
                };
                json!({
                    "field": property_field(&p.name),
                    "id": format!("property_{}", p.name),
                    "label": label(&p.name),
                    "kind": kind,
                    "values": values,
                    "required": p.required && p.default.is_none(),
                })
            })
            .collect();
        json!({
            "email": email,
            "mobile": mobile,
            "either": either,
            "name": if policy.full_name { "full" } else { "pair" },
            "properties": properties,
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
        properties: form.properties(&identity.policy().properties),
        ..Default::default()
    };
    let identifier = if fields.email.is_empty() {
        fields.mobile.clone()
    } else {
        fields.email.clone()
    };
    let registered = match identity
        .register(
            fields,
            form.password.clone(),
            None,
            &b.client,
            &web.limits,
            None,
        )
        .await
    {
        Ok(r) => {
            web.audit(&b, PageAction::SignUp, &identifier, Some(r.user.id), Ok(()))
                .await;
            r
        }
        Err(err) => {
            web.audit(&b, PageAction::SignUp, &identifier, None, Err(&err))
                .await;
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

/// A property name as a label: `favouriteTeam` / `favourite_team` → `Favourite team`.
fn label(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c == '_' {
            out.push(' ');
        } else if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
            out.push(c.to_ascii_lowercase());
        } else if i == 0 {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c);
        }
    }
    out
}
