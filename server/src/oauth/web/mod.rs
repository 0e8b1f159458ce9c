//! The hosted pages: sign-in, sign-up, verification, second factor, password reset, magic link,
//! consent, device code entry and signed out. Server-rendered, no external assets, no script.
//!
//! - `browser`: the cookies (browser session, CSRF), the client's address, the security headers
//!   every page gets (strict CSP with a style nonce, no framing, no caching).
//! - `store`: SQL of the browser sessions and the interactions.
//! - `render`: the MiniJinja pages (`templates/`, autoescaped) and the branding.
//! - `messages`: identity errors as sentences for people.
//! - `flow`: interactions (an authorization request or a device code waiting for its user) and
//!   the one decision that moves an interaction on (sign in, second factor, consent, complete).
//! - the pages: `authorize`, `signin`, `signup`, `recovery` (verification codes, password reset,
//!   magic links), `consent`, `device`, `logout`.
//!
//! A browser session is a random 256-bit cookie value whose SHA-256 is a `browser_sessions` row
//! linked to a `sessions` row: revoking the session (sign-out, suspension, password reset, an
//! administrator) ends the browser session with it. Every form carries a token derived from the
//! browser's CSRF cookie; a POST without it is refused (403) before anything changes.

mod audit;
mod authorize;
mod browser;
mod consent;
mod device;
mod flow;
mod logout;
mod messages;
mod recovery;
mod render;
mod signin;
mod signup;
mod store;

use std::{num::NonZeroU32, ops::Deref, sync::Arc, time::Duration};

use axum::{
    Router, middleware,
    routing::{get, post},
};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::{
    config::{BrandingConfig, Config, VerificationConfig},
    identity::registration::RegistrationLimits,
    oauth::OAuthService,
};

pub use browser::{CSRF_COOKIE, SESSION_COOKIE};

/// The pages' shared state.
#[derive(Clone)]
pub(crate) struct Web(Arc<Inner>);

pub(crate) struct Inner {
    oauth: OAuthService,
    pages: render::Pages,
    branding: BrandingConfig,
    /// Cookies are `Secure` (and `__Host-` prefixed): the public URL is https.
    secure: bool,
    limits: RegistrationLimits,
    password_min_length: usize,
    verification: VerificationConfig,
    interaction_ttl: Duration,
    /// User codes looked up or decided per user (RFC 8628 §5.1: typed codes are guessable).
    device_attempts: Arc<DefaultKeyedRateLimiter<uuid::Uuid>>,
    audit_log: crate::admin::audit_service::AuditLog,
}

impl Deref for Web {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The pages, configured from `config` (branding, cookies, registration limits, which
/// verification flows are on).
pub fn router(oauth: OAuthService, config: &Config, limits: RegistrationLimits) -> Router {
    build(
        oauth,
        config.branding.clone(),
        config.secure_cookies(),
        limits,
        config.password.min_length,
        config.verification.clone(),
        config.oauth.interaction_ttl_secs,
    )
}

fn build(
    oauth: OAuthService,
    branding: BrandingConfig,
    secure: bool,
    limits: RegistrationLimits,
    password_min_length: usize,
    verification: VerificationConfig,
    interaction_ttl_secs: u32,
) -> Router {
    let audit_log = crate::admin::audit_service::AuditLog::new(oauth.pool.clone());
    let web = Web(Arc::new(Inner {
        audit_log,
        oauth,
        pages: render::Pages::new(),
        branding,
        secure,
        limits,
        password_min_length,
        verification,
        interaction_ttl: Duration::from_secs(u64::from(interaction_ttl_secs)),
        // Ten at once, then one every 20 s.
        device_attempts: Arc::new(RateLimiter::keyed(
            Quota::per_minute(NonZeroU32::new(3).expect("non-zero"))
                .allow_burst(NonZeroU32::new(10).expect("non-zero")),
        )),
    }));
    Router::new()
        .route("/oauth2/authorize", get(authorize::authorize))
        .route("/oauth2/signin", get(signin::page).post(signin::submit))
        .route(
            "/oauth2/second-factor",
            get(signin::factor_page).post(signin::factor_submit),
        )
        .route("/oauth2/second-factor/resend", post(signin::factor_resend))
        .route("/oauth2/signup", get(signup::page).post(signup::submit))
        .route(
            "/oauth2/verify",
            get(recovery::verify_page).post(recovery::verify_submit),
        )
        .route(
            "/oauth2/password-reset",
            get(recovery::reset_page).post(recovery::reset_request),
        )
        .route(
            "/oauth2/password-reset/confirm",
            post(recovery::reset_confirm),
        )
        .route(
            "/oauth2/magic-link",
            get(recovery::magic_page).post(recovery::magic_request),
        )
        .route("/oauth2/magic-link/confirm", post(recovery::magic_confirm))
        .route("/oauth2/consent", get(consent::page).post(consent::submit))
        .route("/oauth2/device", get(device::page).post(device::submit))
        .route(
            "/oauth2/end_session",
            get(logout::end_session_get).post(logout::end_session_post),
        )
        .route("/oauth2/signed-out", get(logout::signed_out_page))
        // The default links of the `byLink` flows (`<public_url>/<flowPath>/<token>`).
        .route("/magicLink/{token}", get(recovery::magic_landing))
        .route(
            "/passwordResetByEmail/{token}",
            get(recovery::reset_landing),
        )
        .route(
            "/passwordResetByMobile/{token}",
            get(recovery::reset_landing),
        )
        .route(
            "/emailVerification/{token}",
            get(recovery::verify_landing_email),
        )
        .route(
            "/mobileVerification/{token}",
            get(recovery::verify_landing_mobile),
        )
        .layer(middleware::from_fn_with_state(web.clone(), browser::layer))
        .with_state(web)
}
