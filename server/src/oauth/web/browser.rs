//! What the pages know about the browser: its cookies (the browser session and the CSRF cookie),
//! its address, and the headers every answer carries.

use std::{convert::Infallible, net::SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequestParts, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use super::Web;
use crate::{
    crypto::secret::{self, constant_time_eq, random_token},
    identity::session_service::ClientInfo,
};

/// The browser session cookie (`__Host-` prefixed when cookies are `Secure`).
pub const SESSION_COOKIE: &str = "mgpass_session";
/// The CSRF cookie: random, `HttpOnly`; forms carry a token derived from it.
pub const CSRF_COOKIE: &str = "mgpass_csrf";

/// The browser behind a request. Built once per request by [`layer`].
#[derive(Clone)]
pub(super) struct Browser {
    /// The CSRF cookie's value (new when the browser had none).
    csrf: String,
    fresh_csrf: bool,
    /// The browser session cookie's value, if any.
    pub session_token: Option<String>,
    /// The nonce of this answer's `<style>`.
    pub nonce: String,
    pub client: ClientInfo,
}

impl Browser {
    /// The token forms carry: derived from the CSRF cookie, which another site can neither read
    /// nor (with `SameSite` and the `__Host-` prefix) set.
    pub fn csrf_token(&self) -> String {
        URL_SAFE_NO_PAD.encode(secret::digest(&format!("csrf:{}", self.csrf)))
    }

    /// Whether a form's token matches this browser's CSRF cookie.
    pub fn csrf_ok(&self, presented: &str) -> bool {
        !self.fresh_csrf && constant_time_eq(presented.as_bytes(), self.csrf_token().as_bytes())
    }

    /// The same browser once it holds the browser session cookie `token`.
    pub fn with_session(&self, token: String) -> Self {
        Self {
            session_token: Some(token),
            ..self.clone()
        }
    }

    /// What binds an interaction to this browser.
    pub fn binding(&self) -> Vec<u8> {
        secret::digest(&format!("browser:{}", self.csrf))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Browser {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(parts
            .extensions
            .get::<Browser>()
            .cloned()
            .unwrap_or_else(|| read(parts, false)))
    }
}

pub(super) fn cookie_name(base: &str, secure: bool) -> String {
    if secure {
        format!("__Host-{base}")
    } else {
        base.to_string()
    }
}

/// The value of cookie `name` (the first one, when the header repeats it).
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// A random cookie value as we make them: 32 bytes, base64url.
fn well_formed(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn read(parts: &Parts, secure: bool) -> Browser {
    let headers = &parts.headers;
    let csrf = cookie(headers, &cookie_name(CSRF_COOKIE, secure))
        .filter(|v| well_formed(v))
        .map(str::to_string);
    let session_token = cookie(headers, &cookie_name(SESSION_COOKIE, secure))
        .filter(|v| well_formed(v))
        .map(str::to_string);
    let client = ClientInfo {
        ip: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
    };
    Browser {
        fresh_csrf: csrf.is_none(),
        csrf: csrf.unwrap_or_else(|| random_token(32)),
        session_token,
        nonce: random_token(16),
        client,
    }
}

/// `Set-Cookie` of one of our cookies; `None` deletes it.
pub(super) fn set_cookie(base: &str, value: Option<&str>, secure: bool) -> String {
    let name = cookie_name(base, secure);
    let secure = if secure { "; Secure" } else { "" };
    match value {
        Some(v) => format!("{name}={v}; Path=/; HttpOnly; SameSite=Lax{secure}"),
        None => format!("{name}=; Path=/; HttpOnly; SameSite=Lax{secure}; Max-Age=0"),
    }
}

/// Sources the answer's page may post forms to besides itself (an authorization request's
/// redirect origin: a form whose answer redirects there needs it under `form-action`).
#[derive(Clone, Default)]
pub(super) struct FormTargets(pub Vec<String>);

/// Around every page: reads the browser, hands out a CSRF cookie to a browser without one, and
/// sets the security headers.
pub(super) async fn layer(State(web): State<Web>, mut req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let browser = read(&parts, web.secure);
    parts.extensions.insert(browser.clone());
    req = Request::from_parts(parts, body);
    let mut res = next.run(req).await;
    let targets = res
        .extensions_mut()
        .remove::<FormTargets>()
        .unwrap_or_default();
    let headers = res.headers_mut();
    if browser.fresh_csrf
        && let Ok(v) =
            HeaderValue::from_str(&set_cookie(CSRF_COOKIE, Some(&browser.csrf), web.secure))
    {
        headers.append(header::SET_COOKIE, v);
    }
    let mut form_action = String::from("'self'");
    for target in targets.0 {
        form_action.push(' ');
        form_action.push_str(&target);
    }
    let csp = format!(
        "default-src 'none'; style-src 'nonce-{}'; img-src https: data:; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'",
        browser.nonce
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

/// The CSP source of a redirect URI's origin (`https://app.example.com`, `com.example.app:`),
/// or `None` when it cannot be expressed safely.
pub(super) fn origin_source(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    let source = match url.scheme() {
        "http" | "https" => {
            let host = url.host_str()?;
            match url.port() {
                Some(port) => format!("{}://{host}:{port}", url.scheme()),
                None => format!("{}://{host}", url.scheme()),
            }
        }
        scheme => format!("{scheme}:"),
    };
    let safe = source
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._:/[]".contains(&b));
    safe.then_some(source)
}

/// An answer of the pages.
pub(super) struct Reply {
    pub status: StatusCode,
    pub body: Body,
    pub cookies: Vec<String>,
    pub form_targets: Vec<String>,
}

pub(super) enum Body {
    Html(String),
    /// `303 See Other` to this URL.
    Redirect(String),
}

impl Reply {
    pub fn html(status: StatusCode, html: String) -> Self {
        Self {
            status,
            body: Body::Html(html),
            cookies: Vec::new(),
            form_targets: Vec::new(),
        }
    }

    pub fn redirect(url: impl Into<String>) -> Self {
        Self {
            status: StatusCode::SEE_OTHER,
            body: Body::Redirect(url.into()),
            cookies: Vec::new(),
            form_targets: Vec::new(),
        }
    }

    pub fn with_cookie(mut self, cookie: String) -> Self {
        self.cookies.push(cookie);
        self
    }

    pub fn with_form_target(mut self, source: Option<String>) -> Self {
        self.form_targets.extend(source);
        self
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut res = match self.body {
            Body::Html(html) => {
                let mut res = (self.status, html).into_response();
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                res
            }
            Body::Redirect(url) => {
                let mut res = StatusCode::SEE_OTHER.into_response();
                match HeaderValue::from_str(&url) {
                    Ok(v) => {
                        res.headers_mut().insert(header::LOCATION, v);
                    }
                    Err(_) => *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR,
                }
                res
            }
        };
        for cookie in self.cookies {
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        if !self.form_targets.is_empty() {
            res.extensions_mut().insert(FormTargets(self.form_targets));
        }
        res
    }
}
