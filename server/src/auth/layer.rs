//! The tower layer in front of every gRPC service. It reads each method's
//! `(mgpass.options.v1.auth)` option from the descriptors once at start, then per call: applies the
//! per-IP rate limit, turns the credential into a [`Principal`], and refuses the call unless the
//! method's audience admits that principal. A method without the option is refused (fail closed).

use std::{
    collections::HashMap,
    convert::Infallible,
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    sync::Arc,
    task::{Context, Poll},
};

use axum::extract::ConnectInfo;
use futures::future::BoxFuture;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use prost_reflect::{DescriptorPool, Value};
use tower::{Layer, Service};

use crate::{
    auth::{
        Principal, api_keys::ApiKeyAuthenticator, org_scope::OrgScope, session_check::SessionCheck, tokens::TokenIssuer,
    },
    error::Error,
    loyalty::partner_keys::PartnerKeyAuthenticator,
};

/// The header that carries a reward partner's key.
pub const PARTNER_KEY_HEADER: &str = "x-api-key";

/// What a method requires of its caller.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    Public,
    Authenticated,
    Permission(String),
    Partner,
}

/// Every method's rule, keyed by its gRPC path (`/package.Service/Method`).
#[derive(Debug, Clone, Default)]
pub struct MethodRules(HashMap<String, Rule>);

impl MethodRules {
    /// Reads the rules of every mgpass method. Methods without a valid option are left out, and
    /// therefore refused.
    pub fn from_pool(pool: &DescriptorPool) -> Self {
        let Some(ext) = pool.get_extension_by_name("mgpass.options.v1.auth") else {
            return Self::default();
        };
        let mut rules = HashMap::new();
        for service in pool.services() {
            for method in service.methods() {
                let options = method.options();
                if !options.has_extension(&ext) {
                    continue;
                }
                let Value::Message(auth) = options.get_extension(&ext).into_owned() else { continue };
                let audience = auth.get_field_by_name("audience").and_then(|v| v.as_enum_number()).unwrap_or(0);
                let permission =
                    auth.get_field_by_name("permission").and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                let rule = match audience {
                    1 => Rule::Public,
                    2 => Rule::Authenticated,
                    3 if !permission.is_empty() => Rule::Permission(permission),
                    4 => Rule::Partner,
                    _ => continue,
                };
                rules.insert(format!("/{}/{}", service.full_name(), method.name()), rule);
            }
        }
        Self(rules)
    }

    pub fn get(&self, path: &str) -> Option<&Rule> {
        self.0.get(path)
    }

    /// The rule for a gRPC path. Health checks and reflection are public infrastructure.
    fn rule_for(&self, path: &str) -> Option<Rule> {
        if path.starts_with("/grpc.health.v1.") || path.starts_with("/grpc.reflection.") {
            return Some(Rule::Public);
        }
        self.0.get(path).cloned()
    }
}

struct AuthState {
    rules: MethodRules,
    tokens: TokenIssuer,
    sessions: SessionCheck,
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    allow_query_token: bool,
    /// Set once by [`AuthLayer::with_api_keys`]; without it every `mgp_` key is refused.
    api_keys: std::sync::OnceLock<ApiKeyAuthenticator>,
    /// Set once by [`AuthLayer::with_org_scope`]; without it permissions are global only.
    org_scope: std::sync::OnceLock<OrgScope>,
    /// Set once by [`AuthLayer::with_partner_keys`]; without it no partner is admitted.
    partner_keys: std::sync::OnceLock<PartnerKeyAuthenticator>,
}

#[derive(Clone)]
pub struct AuthLayer {
    state: Arc<AuthState>,
}

impl AuthLayer {
    pub fn new(
        rules: MethodRules,
        tokens: TokenIssuer,
        sessions: SessionCheck,
        rate_per_ip: u32,
        allow_query_token: bool,
    ) -> Self {
        let limiter = NonZeroU32::new(rate_per_ip).map(|n| RateLimiter::keyed(Quota::per_second(n)));
        let state = Arc::new(AuthState {
            rules,
            tokens,
            sessions,
            limiter,
            allow_query_token,
            api_keys: std::sync::OnceLock::new(),
            org_scope: std::sync::OnceLock::new(),
            partner_keys: std::sync::OnceLock::new(),
        });
        if state.limiter.is_some() {
            // Forget idle clients so the limiter's memory stays bounded.
            let weak = Arc::downgrade(&state);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    let Some(state) = weak.upgrade() else { break };
                    if let Some(limiter) = &state.limiter {
                        limiter.retain_recent();
                    }
                }
            });
        }
        Self { state }
    }

    /// Accepts `mgp_` API keys as bearer credentials.
    pub fn with_api_keys(self, api_keys: ApiKeyAuthenticator) -> Self {
        let _ = self.state.api_keys.set(api_keys);
        self
    }

    /// Admits reward partners by their `X-API-Key` on `AUDIENCE_PARTNER` methods.
    pub fn with_partner_keys(self, partner_keys: PartnerKeyAuthenticator) -> Self {
        let _ = self.state.partner_keys.set(partner_keys);
        self
    }

    /// Lets a caller's role in the organization a request names give the method's permission
    /// (see [`crate::auth::org_scope`]).
    pub fn with_org_scope(self, org_scope: OrgScope) -> Self {
        let _ = self.state.org_scope.set(org_scope);
        self
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AuthService { inner, state: self.state.clone() }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    state: Arc<AuthState>,
}

/// The cookie that carries a browser's access token (set by the hosted pages).
pub const ACCESS_TOKEN_COOKIE: &str = "mgpass_at";

fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

fn cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The credential of a request, in the documented order: `Authorization: Bearer`, then the
/// browser cookie, then, only when the deployment allows it, the `access_token` query parameter
/// (which the REST gateway hands over in its own header; clients cannot set that header).
fn credential(headers: &http::HeaderMap, allow_query_token: bool) -> Option<&str> {
    bearer(headers).or_else(|| cookie(headers, ACCESS_TOKEN_COOKIE)).or_else(|| {
        allow_query_token
            .then(|| headers.get(mgpass_gateway::QUERY_TOKEN_HEADER).and_then(|v| v.to_str().ok()))
            .flatten()
    })
}

/// The only methods a session still owing its second factor may call.
const CALLABLE_WHILE_PENDING: [&str; 3] = [
    "/mgpass.identity.v1.SecondFactorService/SendSecondFactorCode",
    "/mgpass.identity.v1.SecondFactorService/VerifySecondFactor",
    "/mgpass.identity.v1.AuthenticationService/Logout",
];

/// The refusal of a call made with a session that owes `factor`.
fn second_factor_needed(factor: &str) -> Error {
    let (reason, what) = match factor {
        "email" => ("EMAIL_TWO_FACTOR_NEEDED", "the code sent by email"),
        "mobile" => ("MOBILE_TWO_FACTOR_NEEDED", "the code sent by SMS"),
        _ => ("TOTP_TWO_FACTOR_NEEDED", "a code from the authenticator app (or a recovery code)"),
    };
    Error::permission_denied(reason, format!("this session needs its second factor: verify {what} first"))
}

impl AuthState {
    async fn admit(
        &self,
        rule: &Rule,
        path: &str,
        headers: &http::HeaderMap,
        org: Option<uuid::Uuid>,
    ) -> Result<Option<Principal>, Error> {
        // Partner methods take the `X-API-Key` and nothing else; the header means nothing on
        // every other method, so a partner key opens partner methods only.
        if *rule == Rule::Partner {
            return self.authenticate_partner(headers).await.map(Some);
        }
        let authenticated = match credential(headers, self.allow_query_token) {
            Some(token) if token.starts_with("mgp_") => self.authenticate_api_key(token, headers).await.map(Some),
            Some(token) => self.authenticate(token, path).await.map(Some),
            None => Ok(None),
        };
        match rule {
            // A stale credential must not stop someone from signing in again.
            Rule::Public => Ok(authenticated.unwrap_or(None)),
            Rule::Authenticated => authenticated?
                .map(Some)
                .ok_or_else(|| Error::unauthenticated("UNAUTHENTICATED", "authentication required")),
            Rule::Permission(permission) => {
                let principal = authenticated?
                    .ok_or_else(|| Error::unauthenticated("UNAUTHENTICATED", "authentication required"))?;
                if self.permitted(&principal, permission, org).await? {
                    Ok(Some(principal))
                } else {
                    Err(Error::permission_denied("PERMISSION_DENIED", format!("permission `{permission}` required")))
                }
            }
            Rule::Partner => unreachable!("partner methods are admitted above"),
        }
    }

    /// A reward partner's `mgpp_` key from `X-API-Key`. A user's token (or a partner key sent as
    /// `Authorization: Bearer`) is no partner credential.
    async fn authenticate_partner(&self, headers: &http::HeaderMap) -> Result<Principal, Error> {
        let key = headers.get(PARTNER_KEY_HEADER).and_then(|v| v.to_str().ok()).map(str::trim);
        match (key, self.partner_keys.get()) {
            (Some(key), Some(partner_keys)) if !key.is_empty() => partner_keys.authenticate(key).await,
            _ => Err(Error::unauthenticated("UNAUTHENTICATED", "a valid partner X-API-Key is required")),
        }
    }

    /// A valid access token whose session, if it has one, is still alive and owes no second
    /// factor (except for the calls that complete it).
    async fn authenticate(&self, token: &str, path: &str) -> Result<Principal, Error> {
        let principal = self.tokens.authenticate(token).await?;
        if let Some(session_id) = principal.session_id {
            let state = self.sessions.state(session_id).await?;
            if !state.active {
                return Err(Error::unauthenticated("UNAUTHENTICATED", "the session of this token has ended"));
            }
            if let Some(factor) = state.pending_second_factor {
                if !CALLABLE_WHILE_PENDING.contains(&path) {
                    return Err(second_factor_needed(&factor));
                }
            }
        }
        Ok(principal)
    }

    /// An `mgp_` API key, accepted only from the `Authorization` header (the cookie and the query
    /// parameter carry JWTs only).
    async fn authenticate_api_key(&self, key: &str, headers: &http::HeaderMap) -> Result<Principal, Error> {
        match (bearer(headers), self.api_keys.get()) {
            (Some(b), Some(api_keys)) if b == key => api_keys.authenticate(key).await,
            _ => Err(Error::unauthenticated("UNAUTHENTICATED", "the API key is invalid, expired or revoked")),
        }
    }

    /// The permission check: global, or through the caller's role in the organization the
    /// request names.
    async fn permitted(&self, principal: &Principal, permission: &str, org: Option<uuid::Uuid>) -> Result<bool, Error> {
        match self.org_scope.get() {
            Some(scope) => scope.allows(principal, permission, org).await,
            None => Ok(principal.has_permission(permission)),
        }
    }

    /// For a permission method whose request names an organization, that organization: the body
    /// is buffered, read and put back. Other calls pass untouched.
    async fn request_organization(
        &self,
        rule: &Rule,
        path: &str,
        request: http::Request<axum::body::Body>,
    ) -> Result<(http::Request<axum::body::Body>, Option<uuid::Uuid>), Error> {
        let Some(scope) = self.org_scope.get().filter(|s| matches!(rule, Rule::Permission(_)) && s.applies(path)) else {
            return Ok((request, None));
        };
        let (parts, body) = request.into_parts();
        let bytes = crate::auth::org_scope::buffer(body).await?;
        let org = scope.organization_of(path, &bytes);
        Ok((http::Request::from_parts(parts, axum::body::Body::from(bytes)), org))
    }

    fn rate_limited(&self, ip: Option<IpAddr>) -> bool {
        match (&self.limiter, ip) {
            (Some(limiter), Some(ip)) => limiter.check_key(&ip).is_err(),
            _ => false,
        }
    }
}

impl<S> Service<http::Request<axum::body::Body>> for AuthService<S>
where
    S: Service<http::Request<axum::body::Body>, Response = http::Response<tonic::body::Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<axum::body::Body>) -> Self::Future {
        // Take the service that was driven to readiness, leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();
        Box::pin(async move {
            let ip = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
            if state.rate_limited(ip) {
                let status: tonic::Status =
                    Error::ResourceExhausted { reason: "RATE_LIMITED", message: "too many requests".into() }.into();
                return Ok(status.into_http());
            }
            let Some(rule) = state.rules.rule_for(request.uri().path()) else {
                let status: tonic::Status =
                    Error::permission_denied("ACCESS_RULE_MISSING", "this method declares no access rule").into();
                return Ok(status.into_http());
            };
            let path = request.uri().path().to_string();
            let (mut request, org) = match state.request_organization(&rule, &path, request).await {
                Ok(read) => read,
                Err(err) => return Ok(tonic::Status::from(err).into_http()),
            };
            match state.admit(&rule, &path, request.headers(), org).await {
                Ok(Some(principal)) => {
                    request.extensions_mut().insert(principal);
                }
                Ok(None) => {}
                Err(err) => return Ok(tonic::Status::from(err).into_http()),
            }
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every RPC of every mgpass service declares who may call it, so none is reachable by
    /// accident and none is unreachable by mistake.
    #[test]
    fn every_mgpass_method_declares_an_access_rule() {
        let pool = mgpass_proto::descriptor_pool();
        let rules = MethodRules::from_pool(&pool);
        let mut missing = Vec::new();
        let mut count = 0;
        for service in pool.services().filter(|s| s.full_name().starts_with("mgpass.")) {
            for method in service.methods() {
                count += 1;
                let path = format!("/{}/{}", service.full_name(), method.name());
                if rules.get(&path).is_none() {
                    missing.push(path);
                }
            }
        }
        assert!(count >= 10, "the descriptor pool holds the mgpass services ({count} methods)");
        assert!(missing.is_empty(), "methods without a valid (mgpass.options.v1.auth): {missing:?}");
    }

    #[test]
    fn rules_are_read_from_the_options() {
        let rules = MethodRules::from_pool(&mgpass_proto::descriptor_pool());
        assert_eq!(rules.get("/mgpass.identity.v1.AuthenticationService/Login"), Some(&Rule::Public));
        assert_eq!(
            rules.get("/mgpass.identity.v1.UserService/CreateUser"),
            Some(&Rule::Permission("identity.users.create".into()))
        );
        assert_eq!(rules.rule_for("/grpc.health.v1.Health/Check"), Some(Rule::Public));
        assert_eq!(rules.rule_for("/mgpass.identity.v1.UserService/Nope"), None);
    }

    #[test]
    fn second_factor_methods_exist_and_reasons_match() {
        let rules = MethodRules::from_pool(&mgpass_proto::descriptor_pool());
        for path in CALLABLE_WHILE_PENDING {
            assert_eq!(rules.get(path), Some(&Rule::Authenticated), "{path}");
        }
        let reason = |f: &str| tonic::Status::from(second_factor_needed(f)).code();
        assert_eq!(reason("email"), tonic::Code::PermissionDenied);
        assert!(second_factor_needed("mobile").to_string().contains("SMS"));
        assert!(matches!(second_factor_needed("totp"), Error::PermissionDenied { reason: "TOTP_TWO_FACTOR_NEEDED", .. }));
    }

    #[test]
    fn credentials_are_taken_in_the_documented_order() {
        let mut headers = http::HeaderMap::new();
        headers.insert(mgpass_gateway::QUERY_TOKEN_HEADER, "from-query".parse().unwrap());
        assert_eq!(credential(&headers, false), None, "query tokens only when allowed");
        assert_eq!(credential(&headers, true), Some("from-query"));
        headers.insert("cookie", "theme=dark; mgpass_at=from-cookie".parse().unwrap());
        assert_eq!(credential(&headers, true), Some("from-cookie"));
        headers.insert("authorization", "Bearer from-header".parse().unwrap());
        assert_eq!(credential(&headers, true), Some("from-header"));
    }

    #[test]
    fn bearer_parsing() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert("authorization", "bearer abc".parse().unwrap());
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(bearer(&headers), None);
    }
}
