//! The token-exchange grant (RFC 8693) for organization tokens: a member's user access token and
//! an `organization_id` give an access token with `org_id` and the scopes of the member's
//! organization role, limited by what the application may ask for. With the `org:flags` scope
//! the token also carries the organization's feature flags marked `include_in_token`
//! (`org_flags`).

use chrono::Utc;
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{
    auth::tokens::{AccessClaims, OrgClaim},
    crypto::secret::random_token,
    error::{Error, Result},
    oauth::{
        OAuthService,
        grants::{TokenResponse, invalid_grant, invalid_request, unauthorized_client},
        model::{GrantKind, OIDC_SCOPES},
        scopes,
    },
    org::flag_service,
};

/// The only subject token type accepted, and the type of the issued token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The scope that asks for the organization's feature flags in the token.
pub const FLAGS_SCOPE: &str = "org:flags";

fn not_member() -> Error {
    Error::permission_denied(
        "NOT_ORGANIZATION_MEMBER",
        "the user is not a member of this organization",
    )
}

/// An organization token's claims: an access token's, plus the flags asked for.
#[derive(Serialize)]
struct OrgTokenClaims {
    #[serde(flatten)]
    base: AccessClaims,
    #[serde(skip_serializing_if = "Option::is_none")]
    org_flags: Option<Map<String, Value>>,
}

/// What an exchange asks for.
pub struct ExchangeRequest<'a> {
    pub client_id: &'a str,
    pub client_secret: Option<&'a str>,
    pub subject_token: &'a str,
    pub subject_token_type: Option<&'a str>,
    pub organization_id: &'a str,
    pub scope: &'a str,
    pub resource: Option<&'a str>,
}

impl OAuthService {
    /// RFC 8693 §2: exchanges a user's access token for an organization token.
    pub async fn exchange_token(&self, req: ExchangeRequest<'_>) -> Result<TokenResponse> {
        let client = self
            .clients
            .authenticate(req.client_id, req.client_secret)
            .await?;
        let app = client.app.clone();
        if !app.allows_grant(GrantKind::TokenExchange) {
            return Err(unauthorized_client(GrantKind::TokenExchange));
        }
        if req
            .subject_token_type
            .is_some_and(|t| t != ACCESS_TOKEN_TYPE)
        {
            return Err(invalid_request(
                "subject_token_type",
                "only access tokens can be exchanged",
            ));
        }
        if req.subject_token.is_empty() {
            return Err(invalid_request(
                "subject_token",
                "subject_token is required",
            ));
        }
        // The subject token: ours, alive, a user's, not already an organization token, and
        // issued to this client (or, from a first-party sign-in, exchanged by a first-party app).
        let claims = self
            .keys
            .verify_signed(req.subject_token, &self.issuer, "at+jwt")
            .await
            .map_err(|_| invalid_grant("the subject token is invalid or expired"))?;
        let claims: AccessClaims = serde_json::from_value(claims)
            .map_err(|_| invalid_grant("the subject token is invalid"))?;
        if self.revoked.is_revoked(&claims.jti) || claims.org_id.is_some() {
            return Err(invalid_grant("the subject token cannot be exchanged"));
        }
        match &claims.client_id {
            Some(issued_to) if issued_to != &app.client_id => {
                return Err(invalid_grant(
                    "the subject token was issued to another client",
                ));
            }
            None if !app.first_party => {
                return Err(invalid_grant(
                    "the subject token was issued to another client",
                ));
            }
            _ => {}
        }
        let session_id = claims
            .sid
            .as_deref()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| invalid_grant("the subject token is not a user's"))?;
        if !self.sessions.is_active(session_id).await? {
            return Err(invalid_grant("the session of the subject token has ended"));
        }
        let user_id = Uuid::parse_str(&claims.sub)
            .map_err(|_| invalid_grant("the subject token is invalid"))?;
        let org = Uuid::parse_str(req.organization_id).map_err(|_| not_member())?;

        let mut conn = self.pool.get().await?;
        let (role, role_scopes) = crate::org::member_token_scopes(&mut conn, org, user_id)
            .await?
            .ok_or_else(not_member)?;

        let mut asked = scopes::parse_scope(req.scope);
        let want_flags = asked.iter().any(|s| s == FLAGS_SCOPE);
        asked.retain(|s| s != FLAGS_SCOPE);
        if let Some(oidc) = asked.iter().find(|s| OIDC_SCOPES.contains(&s.as_str())) {
            return Err(scopes::invalid_scope(oidc));
        }
        let requested =
            scopes::check_requested(&app, &asked, req.resource, &self.default_audience)?;
        let mut granted = scopes::grant_api_scopes(&app, &requested, &role_scopes, true);
        let org_flags = if want_flags {
            granted.push(FLAGS_SCOPE.to_string());
            Some(flag_service::token_claim(
                &flag_service::cached(&mut conn, org).await?,
            ))
        } else {
            None
        };
        drop(conn);

        let scope = scopes::join(&[], &granted);
        let now = Utc::now().timestamp();
        let ttl = app.access_token_ttl_secs.max(1) as u32;
        let token_claims = OrgTokenClaims {
            base: AccessClaims {
                iss: self.issuer.to_string(),
                sub: user_id.to_string(),
                aud: Value::String(requested.audience.clone()),
                iat: now,
                exp: now + i64::from(ttl),
                jti: random_token(16),
                email: None,
                roles: Vec::new(),
                scope: scope.clone(),
                orgs: vec![OrgClaim {
                    id: org.to_string(),
                    role,
                }],
                sid: Some(session_id.to_string()),
                client_id: Some(app.client_id.clone()),
                org_id: Some(org.to_string()),
            },
            org_flags,
        };
        let access_token = self.keys.sign(&token_claims).await?;
        tracing::info!(client_id = %app.client_id, organization_id = %org, user_id = %user_id, "organization token issued");
        Ok(TokenResponse {
            access_token,
            expires_in: ttl,
            refresh_token: None,
            id_token: None,
            scope,
        })
    }
}
