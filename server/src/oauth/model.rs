//! Rows of the OAuth tables and the small types the protocol and the admin APIs share.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::schema::{api_resources, applications, client_secrets};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = applications)]
pub struct ApplicationRow {
    pub id: Uuid,
    pub client_id: String,
    pub name: String,
    pub description: String,
    /// `web`, `spa`, `native` or `m2m` (see [`AppType`]).
    pub app_type: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// [`GrantKind`] names.
    pub grant_types: Vec<String>,
    pub allowed_scopes: Vec<String>,
    /// `Vec<ResourceScopes>` as JSON.
    pub allowed_resources: serde_json::Value,
    pub allowed_origins: Vec<String>,
    pub access_token_ttl_secs: i32,
    pub refresh_token_ttl_secs: i32,
    pub id_token_ttl_secs: i32,
    pub first_party: bool,
    pub require_pkce: bool,
    /// [`Branding`] as JSON.
    pub branding: serde_json::Value,
    /// `` (the deployment's algorithm) or `RS256`.
    pub id_token_signing_alg: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ApplicationRow {
    pub fn app_type(&self) -> AppType {
        AppType::parse(&self.app_type).unwrap_or(AppType::Web)
    }

    pub fn allows_grant(&self, grant: GrantKind) -> bool {
        self.grant_types.iter().any(|g| g == grant.as_str())
    }

    pub fn resources(&self) -> Vec<ResourceScopes> {
        serde_json::from_value(self.allowed_resources.clone()).unwrap_or_default()
    }

    pub fn branding(&self) -> Branding {
        serde_json::from_value(self.branding.clone()).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = client_secrets)]
pub struct ClientSecretRow {
    pub id: Uuid,
    pub application_id: Uuid,
    /// SHA-256 of the secret; the secret itself is shown once, at creation.
    pub secret_hash: Vec<u8>,
    pub hint: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_resources)]
pub struct ApiResourceRow {
    pub id: Uuid,
    pub indicator: String,
    pub name: String,
    pub description: String,
    /// `Vec<ApiScope>` as JSON.
    pub scopes: serde_json::Value,
    pub system: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ApiResourceRow {
    pub fn scopes(&self) -> Vec<ApiScope> {
        serde_json::from_value(self.scopes.clone()).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ApiScope {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

/// Scopes of one API resource (an application's allowance, or what a role gives).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ResourceScopes {
    pub resource: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Branding {
    #[serde(default)]
    pub logo_uri: String,
    #[serde(default)]
    pub primary_color: String,
    #[serde(default)]
    pub background_color: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppType {
    /// Traditional web app: confidential, has a secret.
    Web,
    /// Single-page app: public, PKCE, no secret.
    Spa,
    /// Native or mobile app: public, PKCE, loopback or custom-scheme redirects.
    Native,
    /// Machine to machine: confidential, client credentials only.
    M2m,
}

impl AppType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Spa => "spa",
            Self::Native => "native",
            Self::M2m => "m2m",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "web" => Self::Web,
            "spa" => Self::Spa,
            "native" => Self::Native,
            "m2m" => Self::M2m,
            _ => return None,
        })
    }

    /// Confidential clients authenticate with a secret; public ones cannot keep one.
    pub fn is_confidential(self) -> bool {
        matches!(self, Self::Web | Self::M2m)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantKind {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
    DeviceCode,
    TokenExchange,
}

impl GrantKind {
    pub const ALL: [GrantKind; 5] = [
        Self::AuthorizationCode,
        Self::RefreshToken,
        Self::ClientCredentials,
        Self::DeviceCode,
        Self::TokenExchange,
    ];

    /// The name stored in `applications.grant_types`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::DeviceCode => "device_code",
            Self::TokenExchange => "token_exchange",
        }
    }

    /// The `grant_type` value of the token endpoint.
    pub fn wire_name(self) -> &'static str {
        match self {
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
            Self::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
            other => other.as_str(),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

/// The OpenID Connect scopes: they ask for claims, not for API access.
pub const OIDC_SCOPES: [&str; 5] = ["openid", "profile", "email", "phone", "offline_access"];
