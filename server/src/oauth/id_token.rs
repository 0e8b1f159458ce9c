//! What tokens say about a user: access tokens for an API resource (RFC 9068), ID tokens (OIDC
//! Core §2) and the UserInfo claims, each limited by the granted scopes.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::{
    auth::tokens::{AccessClaims, OrgClaim},
    crypto::{jwt::Alg, secret::random_token},
    error::Result,
    identity::store::UserRow,
    oauth::{
        OAuthService,
        model::{ApplicationRow, OIDC_SCOPES},
    },
};

/// A minted access token.
pub struct AccessToken {
    pub token: String,
    pub expires_in: u32,
    pub scope: String,
}

/// Who an access token is about.
pub enum Subject<'a> {
    User {
        user: &'a UserRow,
        session_id: Uuid,
        organization: Option<Uuid>,
    },
    /// A machine-to-machine application (client credentials): `sub` is the application's id.
    Application,
}

/// The audience of a user's OIDC access token besides the API resource: the UserInfo endpoint
/// accepts only tokens that name it (Auth0 does the same), and never a token for the mgpass API
/// alone.
pub fn userinfo_audience(issuer: &str) -> String {
    format!("{issuer}/oauth2/userinfo")
}

impl OAuthService {
    /// Signs an access token for `audience` with the granted `scope`.
    pub async fn mint_access_token(
        &self,
        app: &ApplicationRow,
        subject: Subject<'_>,
        audience: &str,
        scope: &str,
    ) -> Result<AccessToken> {
        let now = Utc::now().timestamp();
        let ttl = app.access_token_ttl_secs.max(1) as u32;
        let has = |s: &str| scope.split(' ').any(|x| x == s);
        let org_id = match &subject {
            Subject::User { organization, .. } => organization.map(|o| o.to_string()),
            Subject::Application => None,
        };
        let orgs = match &subject {
            Subject::User { user, .. } => {
                crate::org::org_claims(&mut *self.pool.get().await?, user.id).await?
            }
            Subject::Application => Vec::new(),
        };
        let (sub, email, roles, sid, aud) = match subject {
            Subject::User {
                user, session_id, ..
            } => {
                // A token with no API scope is only good for UserInfo: it must not open the
                // mgpass API (a third-party app asking for `openid profile` could otherwise act
                // on the user's account there).
                let userinfo = Value::String(userinfo_audience(&self.issuer));
                let has_api_scope = scope
                    .split(' ')
                    .any(|s| !s.is_empty() && !OIDC_SCOPES.contains(&s));
                let aud = match (has_api_scope, has("openid")) {
                    (true, true) => vec![Value::String(audience.to_string()), userinfo],
                    (true, false) => vec![Value::String(audience.to_string())],
                    (false, _) => vec![userinfo],
                };
                (
                    user.id.to_string(),
                    if has("email") {
                        user.email.clone()
                    } else {
                        None
                    },
                    user.roles.clone(),
                    Some(session_id.to_string()),
                    aud,
                )
            }
            Subject::Application => (
                app.id.to_string(),
                None,
                Vec::new(),
                None,
                vec![Value::String(audience.to_string())],
            ),
        };
        let claims = AccessClaims {
            iss: self.issuer.to_string(),
            sub,
            aud: if aud.len() == 1 {
                aud[0].clone()
            } else {
                Value::Array(aud)
            },
            iat: now,
            exp: now + i64::from(ttl),
            jti: random_token(16),
            email,
            roles,
            scope: scope.to_string(),
            orgs,
            sid,
            client_id: Some(app.client_id.clone()),
            org_id,
        };
        let token = self.keys.sign(&claims).await?;
        Ok(AccessToken {
            token,
            expires_in: ttl,
            scope: scope.to_string(),
        })
    }

    /// Signs an ID token for `app` (OIDC Core §2, §3.1.3.6 `at_hash`).
    #[allow(clippy::too_many_arguments)]
    pub async fn mint_id_token(
        &self,
        app: &ApplicationRow,
        user: &UserRow,
        scope: &str,
        nonce: Option<&str>,
        auth_time: DateTime<Utc>,
        amr: &[String],
        session_id: Uuid,
        organization: Option<Uuid>,
        access_token: Option<&str>,
    ) -> Result<String> {
        let now = Utc::now().timestamp();
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(self.issuer.as_ref()));
        claims.insert("sub".into(), json!(user.id.to_string()));
        claims.insert("aud".into(), json!(app.client_id));
        claims.insert("azp".into(), json!(app.client_id));
        claims.insert("iat".into(), json!(now));
        claims.insert(
            "exp".into(),
            json!(now + i64::from(app.id_token_ttl_secs.max(1))),
        );
        claims.insert("auth_time".into(), json!(auth_time.timestamp()));
        claims.insert("sid".into(), json!(session_id.to_string()));
        if !amr.is_empty() {
            claims.insert("amr".into(), json!(amr));
        }
        if let Some(organization) = organization {
            claims.insert("org_id".into(), json!(organization.to_string()));
        }
        if let Some(nonce) = nonce {
            claims.insert("nonce".into(), json!(nonce));
        }
        // The hash of `at_hash` follows the ID token's own algorithm.
        let rs256 = app.id_token_signing_alg == Alg::Rs256.name();
        let alg = if rs256 {
            Alg::Rs256
        } else {
            self.keys.signing_alg().await
        };
        if let Some(access_token) = access_token {
            claims.insert("at_hash".into(), json!(token_hash(alg, access_token)));
        }
        let orgs = crate::org::org_claims(&mut *self.pool.get().await?, user.id).await?;
        claims.extend(user_claims(user, scope, &orgs));
        if rs256 {
            self.keys.sign_rs256(&Value::Object(claims)).await
        } else {
            self.keys.sign_typed("JWT", &Value::Object(claims)).await
        }
    }
}

/// `at_hash`: the left half of the hash of the access token, with the hash of the signing
/// algorithm (SHA-256 for ES256, SHA-512 for EdDSA over Ed25519).
pub fn token_hash(alg: Alg, token: &str) -> String {
    let digest = match alg {
        Alg::Es256 | Alg::Rs256 => ring::digest::digest(&ring::digest::SHA256, token.as_bytes()),
        Alg::EdDsa => ring::digest::digest(&ring::digest::SHA512, token.as_bytes()),
    };
    let bytes = digest.as_ref();
    URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2])
}

/// The standard claims the granted scopes release (OIDC Core §5.4), plus `orgs` (the user's
/// memberships, always).
pub fn user_claims(user: &UserRow, scope: &str, orgs: &[OrgClaim]) -> Map<String, Value> {
    let has = |s: &str| scope.split(' ').any(|x| x == s);
    let mut claims = Map::new();
    if has("profile") {
        let name = if user.full_name.is_empty() {
            format!("{} {}", user.given_name, user.family_name)
                .trim()
                .to_string()
        } else {
            user.full_name.clone()
        };
        if !name.is_empty() {
            claims.insert("name".into(), json!(name));
        }
        if !user.given_name.is_empty() {
            claims.insert("given_name".into(), json!(user.given_name));
        }
        if !user.family_name.is_empty() {
            claims.insert("family_name".into(), json!(user.family_name));
        }
        if !user.avatar_url.is_empty() {
            claims.insert("picture".into(), json!(user.avatar_url));
        }
        claims.insert("updated_at".into(), json!(user.updated_at.timestamp()));
    }
    if has("email") {
        if let Some(email) = &user.email {
            claims.insert("email".into(), json!(email));
            claims.insert("email_verified".into(), json!(user.email_verified));
        }
    }
    if has("phone") {
        if let Some(mobile) = &user.mobile {
            claims.insert("phone_number".into(), json!(mobile));
            claims.insert("phone_number_verified".into(), json!(user.mobile_verified));
        }
    }
    claims.insert("orgs".into(), json!(orgs));
    claims
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_the_oidc_example() {
        // OIDC Core's example uses RS256 (SHA-256), the same hash as ES256.
        assert_eq!(
            token_hash(Alg::Es256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
