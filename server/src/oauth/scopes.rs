//! Which scopes a token gets: what was asked, limited by what the application may ask for, and
//! (for API scopes) by what the subject's roles give.
//!
//! OIDC scopes (`openid`, `profile`, ...) ask for claims and need only the application's
//! allowance. API scopes belong to one API resource, the token's audience (RFC 8707 `resource`;
//! when absent, the one allowed resource that defines the asked scopes, else the mgpass API).

use crate::{
    error::{Error, Result},
    oauth::model::{ApplicationRow, OIDC_SCOPES, ResourceScopes},
};

/// Scopes checked against the application, before the subject is known.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestedScopes {
    pub oidc: Vec<String>,
    pub api: Vec<String>,
    /// The API resource indicator the token is for (its `aud`).
    pub audience: String,
    /// Whether nothing at all was asked (client credentials then get everything allowed).
    pub empty: bool,
}

pub fn invalid_scope(scope: &str) -> Error {
    Error::invalid(
        "INVALID_SCOPE",
        "scope",
        format!("the application may not ask for `{scope}`"),
    )
}

pub fn invalid_target(resource: &str) -> Error {
    Error::invalid(
        "INVALID_TARGET",
        "resource",
        format!("`{resource}` is not an API resource this application may use"),
    )
}

/// Splits a `scope` parameter, dropping duplicates and keeping order.
pub fn parse_scope(scope: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    out
}

/// Checks the asked scopes against what the application may ask for. A scope it may not ask for
/// is an error (`invalid_scope`), never silently dropped, so misconfigurations show.
pub fn check_requested(
    app: &ApplicationRow,
    requested: &[String],
    resource: Option<&str>,
    default_audience: &str,
) -> Result<RequestedScopes> {
    let allowed = app.resources();
    let (oidc, api): (Vec<String>, Vec<String>) = requested
        .iter()
        .cloned()
        .partition(|s| OIDC_SCOPES.contains(&s.as_str()));
    if let Some(bad) = oidc.iter().find(|s| !app.allowed_scopes.contains(s)) {
        return Err(invalid_scope(bad));
    }
    let audience = match resource.filter(|r| !r.is_empty()) {
        Some(r) => {
            if !allowed.iter().any(|a| a.resource == r) && r != default_audience {
                return Err(invalid_target(r));
            }
            r.to_string()
        }
        None => match api.first() {
            Some(first) => allowed
                .iter()
                .find(|a| a.scopes.contains(first))
                .map(|a| a.resource.clone())
                .ok_or_else(|| invalid_scope(first))?,
            None => default_audience.to_string(),
        },
    };
    let allowed_here: Vec<&String> = allowed
        .iter()
        .filter(|a| a.resource == audience)
        .flat_map(|a| a.scopes.iter())
        .collect();
    if let Some(bad) = api.iter().find(|s| !allowed_here.contains(s)) {
        return Err(invalid_scope(bad));
    }
    Ok(RequestedScopes {
        empty: requested.is_empty(),
        oidc,
        api,
        audience,
    })
}

/// The API scopes granted: the asked ones the subject's roles give for the audience. When
/// `all_if_empty` and nothing was asked, every scope the application may ask for that the roles
/// give (the client-credentials convention).
pub fn grant_api_scopes(
    app: &ApplicationRow,
    requested: &RequestedScopes,
    role_scopes: &[ResourceScopes],
    all_if_empty: bool,
) -> Vec<String> {
    let held = |s: &String| {
        role_scopes
            .iter()
            .any(|r| r.resource == requested.audience && r.scopes.contains(s))
    };
    if requested.empty && all_if_empty {
        return app
            .resources()
            .iter()
            .filter(|a| a.resource == requested.audience)
            .flat_map(|a| a.scopes.clone())
            .filter(held)
            .collect();
    }
    requested.api.iter().filter(|s| held(s)).cloned().collect()
}

/// The `scope` of a token: OIDC scopes first, then API scopes.
pub fn join(oidc: &[String], api: &[String]) -> String {
    oidc.iter()
        .chain(api.iter())
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> ApplicationRow {
        ApplicationRow {
            id: uuid::Uuid::nil(),
            client_id: "c".into(),
            name: "n".into(),
            description: String::new(),
            app_type: "web".into(),
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            grant_types: vec![],
            allowed_scopes: vec!["openid".into(), "email".into()],
            allowed_resources: serde_json::json!([
                {"resource": "https://api.example.com", "scopes": ["content:read", "stream:live"]},
                {"resource": "mgpass", "scopes": ["mgpass:admin"]}
            ]),
            allowed_origins: vec![],
            access_token_ttl_secs: 60,
            refresh_token_ttl_secs: 60,
            id_token_ttl_secs: 60,
            first_party: false,
            require_pkce: true,
            branding: serde_json::json!({}),
            id_token_signing_alg: String::new(),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    fn v(s: &str) -> Vec<String> {
        parse_scope(s)
    }

    #[test]
    fn infers_the_resource_from_the_scopes() {
        let r = check_requested(&app(), &v("openid content:read"), None, "mgpass").unwrap();
        assert_eq!(r.audience, "https://api.example.com");
        assert_eq!(r.oidc, v("openid"));
        assert_eq!(r.api, v("content:read"));
        let r = check_requested(&app(), &v("openid email"), None, "mgpass").unwrap();
        assert_eq!(r.audience, "mgpass");
    }

    #[test]
    fn refuses_what_the_app_may_not_ask() {
        let reason = |e: Error| match e {
            Error::InvalidArgument { reason, .. } => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            reason(check_requested(&app(), &v("phone"), None, "mgpass").unwrap_err()),
            "INVALID_SCOPE"
        );
        assert_eq!(
            reason(check_requested(&app(), &v("content:write"), None, "mgpass").unwrap_err()),
            "INVALID_SCOPE"
        );
        assert_eq!(
            reason(
                check_requested(
                    &app(),
                    &v("mgpass:admin"),
                    Some("https://api.example.com"),
                    "mgpass"
                )
                .unwrap_err()
            ),
            "INVALID_SCOPE"
        );
        assert_eq!(
            reason(
                check_requested(
                    &app(),
                    &v("openid"),
                    Some("https://other.example.com"),
                    "mgpass"
                )
                .unwrap_err()
            ),
            "INVALID_TARGET"
        );
    }

    #[test]
    fn roles_narrow_api_scopes() {
        let roles = vec![ResourceScopes {
            resource: "https://api.example.com".into(),
            scopes: v("content:read"),
        }];
        let r = check_requested(&app(), &v("content:read stream:live"), None, "mgpass").unwrap();
        assert_eq!(
            grant_api_scopes(&app(), &r, &roles, false),
            v("content:read")
        );
        let r = check_requested(&app(), &[], Some("https://api.example.com"), "mgpass").unwrap();
        assert_eq!(
            grant_api_scopes(&app(), &r, &roles, true),
            v("content:read")
        );
        assert!(grant_api_scopes(&app(), &r, &[], true).is_empty());
    }
}
