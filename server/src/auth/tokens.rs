//! Access tokens: the claims mgpass issues and how they are minted and checked.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    access::role_store,
    auth::{Principal, revocation::RevocationList},
    crypto::{keys::KeyRing, secret::random_token},
    db::DbPool,
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
    /// A string, or an array when the token is for several audiences.
    pub aud: serde_json::Value,
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
    /// The OAuth client the token was issued to (RFC 9068); absent for first-party sign-ins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The organization of an organization token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
}

/// An issued access token.
pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: u32,
    pub scope: String,
}

#[derive(Clone)]
pub struct TokenIssuer {
    pool: DbPool,
    keys: KeyRing,
    revoked: RevocationList,
    issuer: String,
    audience: String,
    ttl_secs: u32,
}

/// The scopes a user's global roles give on the mgpass API (the `roles` table; the system roles
/// `superAdmin` and `admin` give `mgpass:admin`).
async fn scopes_for_roles(pool: &DbPool, audience: &str, roles: &[String]) -> Result<Vec<String>> {
    let mut conn = pool.get().await?;
    let mut scopes: Vec<String> = Vec::new();
    for role in role_store::user_roles_by_name(&mut conn, roles).await? {
        for grant in role
            .resource_scopes()
            .into_iter()
            .filter(|g| g.resource == audience)
        {
            for scope in grant.scopes {
                if !scopes.contains(&scope) {
                    scopes.push(scope);
                }
            }
        }
    }
    Ok(scopes)
}

impl TokenIssuer {
    pub fn new(
        pool: DbPool,
        keys: KeyRing,
        revoked: RevocationList,
        issuer: String,
        audience: String,
        ttl_secs: u32,
    ) -> Self {
        Self {
            pool,
            keys,
            revoked,
            issuer,
            audience,
            ttl_secs,
        }
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
        let scope = scopes_for_roles(&self.pool, &self.audience, &roles)
            .await?
            .join(" ");
        let orgs = crate::org::org_claims(&mut *self.pool.get().await?, user_id).await?;
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: user_id.to_string(),
            aud: serde_json::Value::String(self.audience.clone()),
            iat: now,
            exp: now + i64::from(self.ttl_secs),
            jti: random_token(16),
            email,
            roles,
            scope: scope.clone(),
            orgs,
            sid: session_id.map(|s| s.to_string()),
            client_id: None,
            org_id: None,
        };
        Ok(IssuedToken {
            access_token: self.keys.sign(&claims).await?,
            expires_in: self.ttl_secs,
            scope,
        })
    }

    /// Verifies a bearer token and returns its principal.
    pub async fn authenticate(&self, token: &str) -> Result<Principal> {
        let claims: AccessClaims = self
            .keys
            .verify(token, &self.issuer, &self.audience)
            .await?;
        if self.revoked.is_revoked(&claims.jti) {
            return Err(Error::unauthenticated(
                "UNAUTHENTICATED",
                "the access token was revoked",
            ));
        }
        let user_id = Uuid::parse_str(&claims.sub).map_err(|_| {
            Error::unauthenticated("UNAUTHENTICATED", "the access token is invalid")
        })?;
        let session_id = match claims.sid.as_deref() {
            Some(sid) => Some(Uuid::parse_str(sid).map_err(|_| {
                Error::unauthenticated("UNAUTHENTICATED", "the access token is invalid")
            })?),
            None => None,
        };
        Ok(Principal {
            user_id,
            client_id: claims.client_id,
            session_id,
            roles: claims.roles,
            scopes: claims
                .scope
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            org_id: match claims.org_id.as_deref() {
                Some(org) => Some(Uuid::parse_str(org).map_err(|_| {
                    Error::unauthenticated("UNAUTHENTICATED", "the access token is invalid")
                })?),
                None => None,
            },
            ..Principal::default()
        })
    }
}
