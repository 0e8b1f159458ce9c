//! The one configuration loader: defaults, then an optional TOML file, then `MGPASS_*` environment
//! variables (nested keys joined by `__`, e.g. `MGPASS_SERVER__LISTEN`). `DATABASE_URL` is honoured
//! as an alias of `MGPASS_DATABASE__URL`. Everything is validated once, at start, and every bad
//! value is reported on its own line.

use std::{net::SocketAddr, path::Path};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub tokens: TokenConfig,
    pub password: PasswordConfig,
    pub bootstrap: BootstrapConfig,
    pub identity: IdentityConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// Avatar URL of users created without one; `{email_sha256}` is replaced by the hex SHA-256
    /// of the lower-cased email (the Gravatar convention).
    pub avatar_template: String,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self { avatar_template: "https://www.gravatar.com/avatar/{email_sha256}?d=identicon".into() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the one port that serves gRPC, grpc-web, REST and HTML.
    pub listen: String,
    /// Public base URL; the token issuer (`iss`).
    pub public_url: String,
    /// Largest accepted REST request body.
    pub max_body_bytes: usize,
    /// `text` or `json`.
    pub log_format: String,
    /// Requests per second allowed per client IP (0 disables the limit).
    pub rate_limit_per_ip: u32,
    /// Seconds given to in-flight calls on SIGTERM before the process exits.
    pub shutdown_grace_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `postgres://user:password@host:port/database`.
    pub url: String,
    /// Maximum pooled connections.
    pub pool_size: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// Lifetime of access tokens in seconds.
    pub access_token_ttl_secs: u32,
    /// `aud` of access tokens for the mgpass API itself.
    pub audience: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordConfig {
    /// argon2id memory cost in KiB (OWASP: 19456).
    pub argon2_memory_kib: u32,
    /// argon2id iterations (OWASP: 2).
    pub argon2_iterations: u32,
    /// argon2id parallelism (OWASP: 1).
    pub argon2_parallelism: u32,
    /// Shortest accepted password.
    pub min_length: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BootstrapConfig {
    /// Identifier (email) of the super admin created by `mgpass bootstrap`.
    pub admin_identifier: String,
    /// Its password. Empty: a random one is generated and printed once.
    pub admin_password: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            tokens: TokenConfig::default(),
            password: PasswordConfig::default(),
            bootstrap: BootstrapConfig::default(),
            identity: IdentityConfig::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: String::new(),
            max_body_bytes: 1024 * 1024,
            log_format: "text".into(),
            rate_limit_per_ip: 0,
            shutdown_grace_secs: 20,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self { url: String::new(), pool_size: 16 }
    }
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self { access_token_ttl_secs: 900, audience: "mgpass".into() }
    }
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self { argon2_memory_kib: 19456, argon2_iterations: 2, argon2_parallelism: 1, min_length: 8 }
    }
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self { admin_identifier: "admin@admin.com".into(), admin_password: String::new() }
    }
}

/// A configuration that failed validation: one message per bad value.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

impl Config {
    /// Loads defaults, then `file` (when given), then the environment, and validates the result.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError(vec![format!("config file {} does not exist", path.display())]));
            }
            figment = figment.merge(Toml::file(path));
        }
        if let Ok(url) = std::env::var("DATABASE_URL") {
            figment = figment.merge(Serialized::default("database.url", url));
        }
        figment = figment.merge(Env::prefixed("MGPASS_").split("__").ignore(&["config"]));
        let config: Config = figment.extract().map_err(|e| ConfigError(e.into_iter().map(|e| e.to_string()).collect()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let mut bad = Vec::new();
        if self.server.listen.parse::<SocketAddr>().is_err() {
            bad.push(format!("server.listen: `{}` is not an address like 127.0.0.1:8080", self.server.listen));
        }
        if !self.server.public_url.is_empty()
            && !(self.server.public_url.starts_with("http://") || self.server.public_url.starts_with("https://"))
        {
            bad.push(format!("server.public_url: `{}` must start with http:// or https://", self.server.public_url));
        }
        if !matches!(self.server.log_format.as_str(), "text" | "json") {
            bad.push(format!("server.log_format: `{}` must be `text` or `json`", self.server.log_format));
        }
        if self.server.max_body_bytes < 1024 {
            bad.push("server.max_body_bytes: must be at least 1024".into());
        }
        if self.database.url.is_empty() {
            bad.push("database.url: not set (use MGPASS_DATABASE__URL or DATABASE_URL)".into());
        } else if !(self.database.url.starts_with("postgres://") || self.database.url.starts_with("postgresql://")) {
            bad.push("database.url: must be a postgres:// URL".into());
        }
        if self.database.pool_size == 0 {
            bad.push("database.pool_size: must be at least 1".into());
        }
        if !(30..=86_400).contains(&self.tokens.access_token_ttl_secs) {
            bad.push("tokens.access_token_ttl_secs: must be between 30 and 86400".into());
        }
        if self.password.argon2_memory_kib < 8 * 1024 {
            bad.push("password.argon2_memory_kib: must be at least 8192".into());
        }
        if self.password.argon2_iterations == 0 || self.password.argon2_parallelism == 0 {
            bad.push("password.argon2_iterations and argon2_parallelism: must be at least 1".into());
        }
        if self.password.min_length < 8 {
            bad.push("password.min_length: must be at least 8".into());
        }
        if !self.bootstrap.admin_identifier.contains('@') {
            bad.push("bootstrap.admin_identifier: must be an email address".into());
        }
        if !self.bootstrap.admin_password.is_empty() && self.bootstrap.admin_password.len() < self.password.min_length {
            bad.push("bootstrap.admin_password: shorter than password.min_length".into());
        }
        if bad.is_empty() { Ok(()) } else { Err(ConfigError(bad)) }
    }

    /// The token issuer: `public_url`, or the listen address over http when unset.
    pub fn issuer(&self) -> String {
        if self.server.public_url.is_empty() {
            format!("http://{}", self.server.listen)
        } else {
            self.server.public_url.trim_end_matches('/').to_string()
        }
    }
}
