//! The protocol endpoints (RFC 6749, 7009, 7662, 8414, 8628, OIDC Discovery and UserInfo): form
//! bodies in, RFC JSON out. Thin: each handler parses, calls [`OAuthService`], and formats.

use std::collections::HashMap;

use axum::{
    Form, Json, Router,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    error::Error,
    identity::store as users,
    oauth::{
        OAuthService,
        grants::TokenResponse,
        id_token::{user_claims, userinfo_audience},
        model::{GrantKind, OIDC_SCOPES},
    },
};

pub fn router(oauth: OAuthService) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/.well-known/oauth-authorization-server", get(discovery))
        .route("/oauth2/jwks", get(jwks))
        .route("/oauth2/token", post(token).options(preflight))
        .route("/oauth2/revoke", post(revoke).options(preflight))
        .route("/oauth2/introspect", post(introspect))
        .route("/oauth2/device_authorization", post(device_authorization).options(preflight))
        .route("/oauth2/userinfo", get(userinfo).post(userinfo).options(preflight))
        .with_state(oauth)
}

/// An RFC 6749 §5.2 error answer.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut res = (status, Json(json!({"error": error, "error_description": description}))).into_response();
    no_store(res.headers_mut());
    res
}

fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// The one mapping from the server's errors to RFC 6749 / 7009 / 8628 error answers: the
/// protocol errors travel as reasons of the same names.
fn error_response(err: Error, basic_auth: bool) -> Response {
    const PROTOCOL: [&str; 11] = [
        "INVALID_REQUEST",
        "INVALID_CLIENT",
        "INVALID_GRANT",
        "UNAUTHORIZED_CLIENT",
        "UNSUPPORTED_GRANT_TYPE",
        "INVALID_SCOPE",
        "INVALID_TARGET",
        "AUTHORIZATION_PENDING",
        "SLOW_DOWN",
        "ACCESS_DENIED",
        "DEVICE_CODE_EXPIRED",
    ];
    let description = err.to_string();
    let reason = match &err {
        Error::InvalidArgument { reason, .. }
        | Error::Unauthenticated { reason, .. }
        | Error::PermissionDenied { reason, .. }
        | Error::FailedPrecondition { reason, .. }
        | Error::NotFound { reason, .. }
        | Error::AlreadyExists { reason, .. }
        | Error::ResourceExhausted { reason, .. }
        | Error::RetryLater { reason, .. }
        | Error::OutOfRange { reason, .. } => *reason,
        Error::Unavailable(_) | Error::DependencyUnavailable { .. } => {
            tracing::warn!(error = %err, "token endpoint: database unavailable");
            return oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "try again shortly");
        }
        Error::Internal(_) => {
            tracing::error!(error = %err, "token endpoint failed");
            return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "the server failed; try again");
        }
    };
    if reason == "INVALID_CLIENT" {
        let mut res = oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", &description);
        if basic_auth {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"mgpass\""));
        }
        return res;
    }
    let error = if reason == "DEVICE_CODE_EXPIRED" {
        "expired_token".to_string()
    } else if reason == "NOT_ORGANIZATION_MEMBER" {
        "access_denied".to_string()
    } else if PROTOCOL.contains(&reason) {
        reason.to_ascii_lowercase()
    } else {
        match err {
            Error::ResourceExhausted { .. } | Error::RetryLater { .. } => {
                return oauth_error(StatusCode::TOO_MANY_REQUESTS, "slow_down", &description);
            }
            _ => "invalid_request".to_string(),
        }
    };
    oauth_error(StatusCode::BAD_REQUEST, &error, &description)
}

/// Client credentials from `Authorization: Basic` (RFC 6749 §2.3.1: form-urlencoded id and
/// secret) or from the form body; using both is an error.
struct ClientAuth {
    client_id: String,
    secret: Option<String>,
    basic: bool,
}

fn client_auth(headers: &HeaderMap, form: &HashMap<String, String>) -> Result<ClientAuth, Error> {
    let bad = || Error::unauthenticated("INVALID_CLIENT", "malformed client authentication");
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")));
    let form_id = form.get("client_id").filter(|s| !s.is_empty());
    let form_secret = form.get("client_secret").filter(|s| !s.is_empty());
    match basic {
        Some(encoded) => {
            if form_secret.is_some() {
                return Err(Error::invalid("INVALID_REQUEST", "client_secret", "use one client authentication method"));
            }
            let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).map_err(|_| bad())?).map_err(|_| bad())?;
            let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
            let id = urlencoding_decode(id).ok_or_else(bad)?;
            let secret = urlencoding_decode(secret).ok_or_else(bad)?;
            if form_id.is_some_and(|f| *f != id) {
                return Err(bad());
            }
            Ok(ClientAuth { client_id: id, secret: Some(secret).filter(|s| !s.is_empty()), basic: true })
        }
        None => Ok(ClientAuth {
            client_id: form_id.cloned().unwrap_or_default(),
            secret: form_secret.cloned(),
            basic: false,
        }),
    }
}

fn urlencoding_decode(s: &str) -> Option<String> {
    url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned())
}

fn param<'a>(form: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    form.get(name).map(String::as_str).filter(|s| !s.is_empty())
}

fn token_json(t: TokenResponse, issued_token_type: Option<&str>) -> Response {
    let mut body = json!({
        "access_token": t.access_token,
        "token_type": "Bearer",
        "expires_in": t.expires_in,
        "scope": t.scope,
    });
    if let Some(r) = t.refresh_token {
        body["refresh_token"] = json!(r);
    }
    if let Some(i) = t.id_token {
        body["id_token"] = json!(i);
    }
    // RFC 8693 §2.2.1: an exchange names the type of what it issued.
    if let Some(kind) = issued_token_type {
        body["issued_token_type"] = json!(kind);
    }
    let mut res = Json(body).into_response();
    no_store(res.headers_mut());
    res
}

/// `POST /oauth2/token`.
async fn token(
    State(oauth): State<OAuthService>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let auth = match client_auth(&headers, &form) {
        Ok(a) => a,
        Err(err) => return error_response(err, true),
    };
    let basic = auth.basic;
    let secret = auth.secret.as_deref();
    let result = match param(&form, "grant_type") {
        Some("authorization_code") => {
            oauth
                .exchange_code(
                    &auth.client_id,
                    secret,
                    param(&form, "code").unwrap_or_default(),
                    param(&form, "redirect_uri").unwrap_or_default(),
                    param(&form, "code_verifier"),
                )
                .await
        }
        Some("refresh_token") => {
            oauth
                .refresh(
                    &auth.client_id,
                    secret,
                    param(&form, "refresh_token").unwrap_or_default(),
                    param(&form, "scope"),
                )
                .await
        }
        Some("client_credentials") => {
            oauth
                .client_credentials(
                    &auth.client_id,
                    secret,
                    param(&form, "scope").unwrap_or_default(),
                    param(&form, "resource"),
                )
                .await
        }
        Some(g) if g == GrantKind::TokenExchange.wire_name() => {
            oauth
                .exchange_token(crate::oauth::exchange::ExchangeRequest {
                    client_id: &auth.client_id,
                    client_secret: secret,
                    subject_token: param(&form, "subject_token").unwrap_or_default(),
                    subject_token_type: param(&form, "subject_token_type"),
                    organization_id: param(&form, "organization_id").unwrap_or_default(),
                    scope: param(&form, "scope").unwrap_or_default(),
                    resource: param(&form, "resource"),
                })
                .await
        }
        Some(g) if g == GrantKind::DeviceCode.wire_name() => {
            oauth.poll_device(&auth.client_id, secret, param(&form, "device_code").unwrap_or_default()).await
        }
        Some(_) => Err(Error::invalid("UNSUPPORTED_GRANT_TYPE", "grant_type", "this grant type is not supported")),
        None => Err(Error::invalid("INVALID_REQUEST", "grant_type", "grant_type is required")),
    };
    let mut res = match result {
        Ok(t) => {
            let exchanged = param(&form, "grant_type") == Some(GrantKind::TokenExchange.wire_name());
            token_json(t, exchanged.then_some(crate::oauth::exchange::ACCESS_TOKEN_TYPE))
        }
        Err(err) => error_response(err, basic),
    };
    cors(&oauth, &headers, &mut res, Some(&auth.client_id)).await;
    res
}

/// `POST /oauth2/device_authorization` (RFC 8628 §3.1).
async fn device_authorization(
    State(oauth): State<OAuthService>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let auth = match client_auth(&headers, &form) {
        Ok(a) => a,
        Err(err) => return error_response(err, true),
    };
    let result = oauth
        .start_device(
            &auth.client_id,
            auth.secret.as_deref(),
            param(&form, "scope").unwrap_or_default(),
            param(&form, "resource"),
        )
        .await;
    let mut res = match result {
        Ok(d) => {
            let mut res = Json(json!({
                "device_code": d.device_code,
                "user_code": d.user_code,
                "verification_uri": d.verification_uri,
                "verification_uri_complete": d.verification_uri_complete,
                "expires_in": d.expires_in,
                "interval": d.interval,
            }))
            .into_response();
            no_store(res.headers_mut());
            res
        }
        Err(err) => error_response(err, auth.basic),
    };
    cors(&oauth, &headers, &mut res, Some(&auth.client_id)).await;
    res
}

/// The client authentication and the `token` of a revocation or introspection request.
fn client_and_token<'a>(
    headers: &HeaderMap,
    form: &'a HashMap<String, String>,
) -> Result<(ClientAuth, &'a str), Response> {
    let auth = client_auth(headers, form).map_err(|err| error_response(err, true))?;
    match param(form, "token") {
        Some(token) => Ok((auth, token)),
        None => Err(error_response(Error::invalid("INVALID_REQUEST", "token", "token is required"), auth.basic)),
    }
}

/// `POST /oauth2/revoke` (RFC 7009): 200 whether or not the token was known.
async fn revoke(
    State(oauth): State<OAuthService>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (auth, token) = match client_and_token(&headers, &form) {
        Ok(found) => found,
        Err(res) => return res,
    };
    let mut res = match oauth.revoke(&auth.client_id, auth.secret.as_deref(), token).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(err) => error_response(err, auth.basic),
    };
    cors(&oauth, &headers, &mut res, Some(&auth.client_id)).await;
    res
}

/// `POST /oauth2/introspect` (RFC 7662), for confidential clients (resource servers).
async fn introspect(
    State(oauth): State<OAuthService>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (auth, token) = match client_and_token(&headers, &form) {
        Ok(found) => found,
        Err(res) => return res,
    };
    match oauth.introspect(&auth.client_id, auth.secret.as_deref(), token).await {
        Ok(i) if !i.active => {
            let mut res = Json(json!({"active": false})).into_response();
            no_store(res.headers_mut());
            res
        }
        Ok(i) => {
            let mut body = json!({
                "active": true,
                "scope": i.scope,
                "client_id": i.client_id,
                "sub": i.sub,
                "token_type": i.token_type,
                "exp": i.exp,
                "iss": i.iss,
            });
            if i.iat != 0 {
                body["iat"] = json!(i.iat);
            }
            if !i.aud.is_empty() {
                body["aud"] = if i.aud.len() == 1 { json!(i.aud[0]) } else { json!(i.aud) };
            }
            for (k, v) in [("jti", &i.jti), ("org_id", &i.org_id), ("sid", &i.sid)] {
                if !v.is_empty() {
                    body[k] = json!(v);
                }
            }
            let mut res = Json(body).into_response();
            no_store(res.headers_mut());
            res
        }
        Err(err) => error_response(err, auth.basic),
    }
}

/// `GET|POST /oauth2/userinfo` (OIDC Core §5.3): the claims the token's scopes release.
async fn userinfo(State(oauth): State<OAuthService>, headers: HeaderMap) -> Response {
    let mut res = match userinfo_claims(&oauth, &headers).await {
        Ok(claims) => Json(claims).into_response(),
        Err((status, error)) => {
            let mut res = oauth_error(status, error, "the access token is missing, invalid or lacks the openid scope");
            let challenge = format!("Bearer error=\"{error}\"");
            res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_str(&challenge).expect("ascii"));
            res
        }
    };
    no_store(res.headers_mut());
    cors(&oauth, &headers, &mut res, None).await;
    res
}

async fn userinfo_claims(oauth: &OAuthService, headers: &HeaderMap) -> Result<Value, (StatusCode, &'static str)> {
    let invalid = (StatusCode::UNAUTHORIZED, "invalid_token");
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .ok_or((StatusCode::UNAUTHORIZED, "invalid_request"))?;
    let claims = oauth.keys.verify_signed(token.trim(), &oauth.issuer, "at+jwt").await.map_err(|_| invalid)?;
    let audience = userinfo_audience(&oauth.issuer);
    if !crate::crypto::keys::audience_contains(&claims, &audience) {
        return Err(invalid);
    }
    if oauth.revoked.is_revoked(claims["jti"].as_str().unwrap_or_default()) {
        return Err(invalid);
    }
    let scope = claims["scope"].as_str().unwrap_or_default().to_string();
    if !scope.split(' ').any(|s| s == "openid") {
        return Err((StatusCode::FORBIDDEN, "insufficient_scope"));
    }
    let session_id = claims["sid"].as_str().and_then(|s| Uuid::parse_str(s).ok()).ok_or(invalid)?;
    if !oauth.sessions.is_active(session_id).await.map_err(|_| invalid)? {
        return Err(invalid);
    }
    let user_id = claims["sub"].as_str().and_then(|s| Uuid::parse_str(s).ok()).ok_or(invalid)?;
    let mut conn = oauth.pool.get().await.map_err(|_| (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"))?;
    let user = users::get(&mut conn, user_id)
        .await
        .map_err(|_| (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"))?
        .filter(|u| u.status == "active")
        .ok_or(invalid)?;
    let mut out = serde_json::Map::new();
    out.insert("sub".into(), json!(user.id.to_string()));
    let orgs = crate::org::org_claims(&mut conn, user.id)
        .await
        .map_err(|_| (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"))?;
    out.extend(user_claims(&user, &scope, &orgs));
    Ok(Value::Object(out))
}

/// Discovery (OIDC Discovery 1.0 and RFC 8414; one document serves both).
async fn discovery(State(oauth): State<OAuthService>) -> Response {
    let iss = oauth.issuer();
    let alg = oauth.keys.signing_alg().await.name();
    let mut res = Json(json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/oauth2/authorize"),
        "token_endpoint": format!("{iss}/oauth2/token"),
        "userinfo_endpoint": format!("{iss}/oauth2/userinfo"),
        "jwks_uri": format!("{iss}/oauth2/jwks"),
        "revocation_endpoint": format!("{iss}/oauth2/revoke"),
        "introspection_endpoint": format!("{iss}/oauth2/introspect"),
        "device_authorization_endpoint": format!("{iss}/oauth2/device_authorization"),
        "end_session_endpoint": format!("{iss}/oauth2/end_session"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code", "refresh_token", "client_credentials", GrantKind::DeviceCode.wire_name(),
            GrantKind::TokenExchange.wire_name()
        ],
        "subject_types_supported": ["public"],
        // RS256 for the applications that ask for it (`id_token_signing_alg`).
        "id_token_signing_alg_values_supported": ["ES256", "EdDSA", "RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": OIDC_SCOPES,
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "amr", "sid", "azp",
            "name", "given_name", "family_name", "picture", "updated_at",
            "email", "email_verified", "phone_number", "phone_number_verified", "orgs"
        ],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "authorization_response_iss_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
        "preferred_signing_alg": alg,
    }))
    .into_response();
    res.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    res
}

/// The signing keys in JWKS form (RFC 7517).
async fn jwks(State(oauth): State<OAuthService>) -> Response {
    let mut res = Json(json!({"keys": oauth.keys.jwks().await})).into_response();
    res.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    res
}

/// Browsers (SPAs) call the token, revocation, device and userinfo endpoints cross-origin: an
/// origin is allowed when the calling application (or, for preflights and userinfo, any
/// application) lists it in `allowed_origins`.
async fn cors(oauth: &OAuthService, headers: &HeaderMap, res: &mut Response, client_id: Option<&str>) {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else { return };
    let allowed = match client_id.filter(|c| !c.is_empty()) {
        Some(client_id) => {
            oauth.clients.get(client_id).await.is_ok_and(|app| app.allowed_origins.iter().any(|o| o == origin))
        }
        None => oauth.origin_allowed(origin).await,
    };
    if allowed {
        let h = res.headers_mut();
        if let Ok(v) = HeaderValue::from_str(origin) {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
            h.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
}

async fn preflight(State(oauth): State<OAuthService>, headers: HeaderMap) -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    cors(&oauth, &headers, &mut res, None).await;
    if res.headers().contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        let h = res.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST"));
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("authorization, content-type"));
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let mut headers = HeaderMap::new();
        let value = format!("Basic {}", STANDARD.encode("my%20client:s%3Acret"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&value).unwrap());
        let auth = client_auth(&headers, &HashMap::new()).unwrap();
        assert_eq!(auth.client_id, "my client");
        assert_eq!(auth.secret.as_deref(), Some("s:cret"));
        let mut form = HashMap::new();
        form.insert("client_secret".to_string(), "x".to_string());
        assert!(client_auth(&headers, &form).is_err());
    }
}
