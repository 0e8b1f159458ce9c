//! The pages' templates (compiled in, autoescaped HTML) and the branding they are drawn with.

use axum::http::StatusCode;
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::{
    Web,
    browser::{Browser, Reply},
    messages,
};
use crate::{
    config::is_hex_color, error::Error, identity::policy::Primary, oauth::model::Branding,
};

macro_rules! pages {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("templates/", $name)))),*]
    };
}

const TEMPLATES: &[(&str, &str)] = pages![
    "_layout.html",
    "message.html",
    "signin.html",
    "second_factor.html",
    "signup.html",
    "verify.html",
    "reset_request.html",
    "reset_confirm.html",
    "magic_request.html",
    "magic_confirm.html",
    "consent.html",
    "device.html",
    "device_confirm.html",
    "signout_confirm.html",
];

pub(super) struct Pages {
    env: Environment<'static>,
}

impl Pages {
    pub fn new() -> Self {
        let mut env = Environment::new();
        // Names end in `.html`: everything printed is HTML-escaped.
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("page template {name}: {e}"));
        }
        Self { env }
    }

    fn render(&self, name: &str, ctx: &Value) -> Result<String, minijinja::Error> {
        self.env
            .get_template(name)?
            .render(minijinja::value::Serde(ctx))
    }
}

/// The look of one page: the deployment's branding, overridden by the application's.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Brand {
    pub product_name: String,
    /// The application the page acts for, if any.
    pub app_name: Option<String>,
    /// `https:` or `data:image/` only (the CSP allows nothing else).
    pub logo_uri: String,
    /// The logo's text alternative: the name of whoever the logo belongs to.
    pub logo_alt: String,
    pub primary: String,
    /// Text on primary-coloured buttons: black or white, whichever reads better.
    pub on_primary: String,
    /// Links: the primary colour when it reads on white, else a dark grey.
    pub link: String,
    pub background: String,
}

fn usable_logo(uri: &str) -> bool {
    (uri.starts_with("https://") || uri.starts_with("data:image/"))
        && !uri.chars().any(|c| c.is_whitespace() || c == '"')
}

/// WCAG relative luminance of `#rrggbb`.
fn luminance(hex: &str) -> f64 {
    let channel = |i: usize| {
        let v = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0)) / 255.0;
        if v <= 0.03928 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
}

fn contrast(a: f64, b: f64) -> f64 {
    (a.max(b) + 0.05) / (a.min(b) + 0.05)
}

impl Brand {
    pub fn new(base: &crate::config::BrandingConfig, app: Option<(&str, &Branding)>) -> Self {
        let pick = |app_value: Option<&String>, fallback: &str| -> String {
            match app_value {
                Some(v) if is_hex_color(v) => v.to_ascii_lowercase(),
                _ if is_hex_color(fallback) => fallback.to_ascii_lowercase(),
                _ => "#1f4fd8".into(),
            }
        };
        let primary = pick(app.map(|(_, b)| &b.primary_color), &base.primary_color);
        let background = pick(
            app.map(|(_, b)| &b.background_color),
            &base.background_color,
        );
        let (logo_uri, logo_alt) = match app {
            Some((name, b)) if usable_logo(&b.logo_uri) => (b.logo_uri.clone(), name.to_string()),
            _ if usable_logo(&base.logo_uri) => (base.logo_uri.clone(), base.product_name.clone()),
            _ => (String::new(), String::new()),
        };
        let l = luminance(&primary);
        let on_primary = if contrast(l, 1.0) >= contrast(l, 0.0) {
            "#ffffff"
        } else {
            "#000000"
        };
        let link = if contrast(l, 1.0) >= 4.5 {
            primary.clone()
        } else {
            "#1a1a1a".into()
        };
        Self {
            product_name: base.product_name.clone(),
            app_name: app.map(|(name, _)| name.to_string()),
            logo_uri,
            logo_alt,
            primary,
            on_primary: on_primary.into(),
            link,
            background,
        }
    }
}

/// How the deployment names what users sign in with.
#[derive(Debug, Clone, Serialize)]
pub(super) struct IdentifierField {
    /// `Email address`, `Mobile number`, `Email address or mobile number`.
    pub label: &'static str,
    /// The same, inside a sentence.
    pub word: &'static str,
    /// The input's `type`.
    pub input_type: &'static str,
    pub inputmode: &'static str,
}

impl Web {
    pub(super) fn identifier_field(&self) -> IdentifierField {
        match self.oauth.identity().policy().primary {
            Primary::Email => IdentifierField {
                label: "Email address",
                word: "email address",
                input_type: "email",
                inputmode: "email",
            },
            Primary::Mobile => IdentifierField {
                label: "Mobile number",
                word: "mobile number",
                input_type: "tel",
                inputmode: "tel",
            },
            Primary::EmailOrMobile => IdentifierField {
                label: "Email address or mobile number",
                word: "email address or mobile number",
                input_type: "text",
                inputmode: "email",
            },
        }
    }

    /// The branding for a page acting for `client_id` (the deployment's when none or unknown).
    pub(super) async fn brand(&self, client_id: Option<&str>) -> Brand {
        if let Some(client_id) = client_id
            && let Ok(app) = self.oauth.application(client_id).await
        {
            return Brand::new(&self.branding, Some((&app.name, &app.branding())));
        }
        Brand::new(&self.branding, None)
    }

    /// Renders template `name` with `ctx` (an object) plus the shared variables: `brand`,
    /// `csrf`, `nonce`, `title`.
    pub(super) fn page(
        &self,
        status: StatusCode,
        name: &str,
        b: &Browser,
        brand: &Brand,
        title: &str,
        ctx: Value,
    ) -> Reply {
        let mut map = match ctx {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        map.insert("brand".into(), json!(brand));
        map.insert("csrf".into(), json!(b.csrf_token()));
        map.insert("nonce".into(), json!(b.nonce));
        map.insert("title".into(), json!(title));
        match self.pages.render(name, &Value::Object(map)) {
            Ok(html) => Reply::html(status, html),
            Err(err) => {
                tracing::error!(template = name, error = %err, "page did not render");
                Reply::html(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "<!DOCTYPE html><title>Error</title><p>Something went wrong.".into(),
                )
            }
        }
    }

    /// A page with a heading and a paragraph (errors, notices), and an optional link onwards.
    pub(super) fn message(
        &self,
        status: StatusCode,
        b: &Browser,
        brand: &Brand,
        title: &str,
        text: &str,
        link: Option<(&str, &str)>,
    ) -> Reply {
        let ctx = json!({
            "heading": title,
            "text": text,
            "error": status.is_client_error() || status.is_server_error(),
            "link": link.map(|(href, label)| json!({"href": href, "label": label})),
        });
        self.page(status, "message.html", b, brand, title, ctx)
    }

    /// The page for an error nobody can fix by editing a form.
    pub(super) async fn error_page(&self, b: &Browser, err: &Error) -> Reply {
        let shown = messages::human(err, self.identifier_field().word);
        let brand = self.brand(None).await;
        self.message(
            shown.status,
            b,
            &brand,
            "Something went wrong",
            &shown.message,
            None,
        )
    }

    /// The 403 page of a form without a valid CSRF token.
    pub(super) async fn csrf_refused(&self, b: &Browser) -> Reply {
        let brand = self.brand(None).await;
        self.message(
            StatusCode::FORBIDDEN,
            b,
            &brand,
            "Please try again",
            "This form expired or did not come from this site, so nothing was changed. Go back, reload the page and submit it again.",
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrandingConfig;

    #[test]
    fn app_branding_overrides_only_valid_values() {
        let base = BrandingConfig::default();
        let app = Branding {
            logo_uri: "javascript:alert(1)".into(),
            primary_color: "#FFEE00".into(),
            background_color: "red;}body{display:none".into(),
        };
        let brand = Brand::new(&base, Some(("Shop", &app)));
        assert_eq!(brand.primary, "#ffee00");
        assert_eq!(brand.on_primary, "#000000", "dark text on a yellow button");
        assert_eq!(
            brand.link, "#1a1a1a",
            "yellow links would not read on white"
        );
        assert_eq!(brand.background, base.background_color);
        assert_eq!(brand.logo_uri, "", "only https: and data:image/ logos");
        assert_eq!(Brand::new(&base, None).on_primary, "#ffffff");
    }

    #[test]
    fn every_template_compiles_and_escapes() {
        let pages = Pages::new();
        let html = pages
            .render(
                "message.html",
                &json!({"heading": "<script>x</script>", "text": "a & b", "brand": Brand::new(&Default::default(), None),
                        "csrf": "t", "nonce": "n", "title": "T"}),
            )
            .unwrap();
        assert!(
            html.contains("&lt;script&gt;x")
                && !html.contains("<script>")
                && html.contains("a &amp; b"),
            "{html}"
        );
        assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<html lang=\"en\">"));
    }
}
