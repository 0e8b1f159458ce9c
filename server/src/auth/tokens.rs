//! Access tokens: the claims mgpass issues and how they are minted and checked.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    auth::{ADMIN_SCOPE, Principal},
    crypto::{keys::KeyRing, secret::random_token},
    error::{Error, Result},
};

/// An organization membership as carried in tokens (`orgs: [{id, role}]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OrgClaim {
    pub id: String,
    pub role: String,
}

/// The claims of an mgpass access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub orgs: Vec<OrgClaim>,
    /// The session the token belongs to; revoking the session stops the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// An issued access token.
pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: u32,
    pub scope: String,
}

#[derive(Clone)]
pub struct TokenIssuer {
    keys: KeyRing,
    issuer: String,
    audience: String,
    ttl_secs: u32,
}

/// The scopes a user's global roles give. Super admins manage everything.
pub fn scopes_for_roles(roles: &[String]) -> Vec<String> {
    if roles.iter().any(|r| r == "superAdmin") { vec![ADMIN_SCOPE.to_string()] } else { Vec::new() }
}

impl TokenIssuer {
    pub fn new(keys: KeyRing, issuer: String, audience: String, ttl_secs: u32) -> Self {
        Self { keys, issuer, audience, ttl_secs }
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    pub async fn issue(
        &self,
        user_id: Uuid,
        email: Option<String>,
        roles: Vec<String>,
        session_id: Option<Uuid>,
    ) -> Result<IssuedToken> {
        let now = Utc::now().timestamp();
        let scope = scopes_for_roles(&roles).join(" ");
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: user_id.to_string(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + i64::from(self.ttl_secs),
            jti: random_token(16),
            email,
            roles,
            scope: scope.clone(),
            orgs: Vec::new(),
            sid: session_id.map(|s| s.to_string()),
        };
        Ok(IssuedToken { access_token: self.keys.sign(&claims).await?, expires_in: self.ttl_secs, scope })
    }

    /// Verifies a bearer token and returns its principal.
    pub async fn authenticate(&self, token: &str) -> Result<Principal> {
        let claims: AccessClaims = self.keys.verify(token, &self.issuer, &self.audience).await?;
        let user_id = Uuid::parse_str(&claims.sub)
            .map_err(|_| Error::unauthenticated("UNAUTHENTICATED", "the access token is invalid"))?;
        let session_id = match claims.sid.as_deref() {
            Some(sid) => Some(
                Uuid::parse_str(sid)
                    .map_err(|_| Error::unauthenticated("UNAUTHENTICATED", "the access token is invalid"))?,
            ),
            None => None,
        };
        Ok(Principal {
            user_id,
            session_id,
            roles: claims.roles,
            scopes: claims.scope.split_whitespace().map(str::to_string).collect(),
        })
    }
}
