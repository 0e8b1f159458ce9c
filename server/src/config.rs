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
    pub delivery: DeliveryConfig,
    pub database: DatabaseConfig,
    pub tokens: TokenConfig,
    pub password: PasswordConfig,
    pub bootstrap: BootstrapConfig,
    pub identity: IdentityConfig,
    pub secrets: SecretsConfig,
    pub sessions: SessionConfig,
    pub verification: VerificationConfig,
    pub oauth: OAuthConfig,
    pub branding: BrandingConfig,
    pub access: AccessConfig,
    pub organizations: OrganizationsConfig,
    pub loyalty: crate::loyalty::config::LoyaltyConfig,
}

/// Organizations (tenants), the Mindbricks `tenantSettings`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OrganizationsConfig {
    /// `tenantRegisterIsPublic`: any signed-in user may create an organization and owns it
    /// (`true`), or only administrators (`org.organizations.create`) create them.
    pub registration_public: bool,
    /// Custom organization properties (`tenantProperties`), declared and checked like
    /// `identity.properties`.
    pub properties: Vec<PropertyConfig>,
    /// Avatar URL of organizations created without one; `{name_sha256}` is replaced by the hex
    /// SHA-256 of the name.
    pub avatar_template: String,
    /// The link of invitation emails, with `{token}` where the token goes; empty:
    /// `<server.public_url>/invitations/{token}`.
    pub invitation_link_url: String,
}

impl Default for OrganizationsConfig {
    fn default() -> Self {
        Self {
            registration_public: true,
            properties: Vec::new(),
            avatar_template: "https://www.gravatar.com/avatar/{name_sha256}?d=identicon".into(),
            invitation_link_url: String::new(),
        }
    }
}

/// Access control: user groups (the Mindbricks `userGroupsActive` / `userGroupsInTenantLevel`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// User groups exist (`userGroupsActive`); off: GroupService answers `FEATURE_DISABLED`.
    pub user_groups_active: bool,
    /// Organizations have their own groups (`userGroupsInTenantLevel`); needs user_groups_active.
    pub user_groups_in_tenant_level: bool,
    /// Avatar of a group created without one; `{name_sha256}` is the hex SHA-256 of its name.
    pub group_avatar_template: String,
}

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            user_groups_active: false,
            user_groups_in_tenant_level: false,
            group_avatar_template: "https://www.gravatar.com/avatar/{name_sha256}?d=identicon".into(),
        }
    }
}

/// The OAuth 2.1 / OpenID Connect authorization server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthConfig {
    /// Lifetime of authorization codes (single use).
    pub authorization_code_ttl_secs: u32,
    /// Lifetime of a device authorization (RFC 8628) waiting for its user.
    pub device_code_ttl_secs: u32,
    /// Seconds a device must wait between two polls.
    pub device_poll_interval_secs: u32,
    /// Access-token lifetime of applications created without one.
    pub default_access_token_ttl_secs: u32,
    /// Refresh-token lifetime of applications created without one.
    pub default_refresh_token_ttl_secs: u32,
    /// ID-token lifetime of applications created without one.
    pub default_id_token_ttl_secs: u32,
    /// How long an instance trusts its cached copy of an application and its secrets; a rotated
    /// or deleted secret stops working on every instance within this time.
    pub client_cache_ttl_ms: u64,
    /// How long an interaction of the hosted pages (an authorization request waiting for sign-in
    /// or consent) stays valid.
    pub interaction_ttl_secs: u32,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        Self {
            authorization_code_ttl_secs: 60,
            device_code_ttl_secs: 600,
            device_poll_interval_secs: 5,
            default_access_token_ttl_secs: 900,
            default_refresh_token_ttl_secs: 30 * 86_400,
            default_id_token_ttl_secs: 3600,
            client_cache_ttl_ms: 1000,
            interaction_ttl_secs: 1800,
        }
    }
}

/// The look of the hosted pages for the whole deployment; each application may override it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrandingConfig {
    /// Product name shown in page titles and headings.
    pub product_name: String,
    /// Logo URL (https or a data: URI); empty: the name only.
    pub logo_uri: String,
    /// Buttons and links, as `#rrggbb`.
    pub primary_color: String,
    /// Page background, as `#rrggbb`.
    pub background_color: String,
}

impl Default for BrandingConfig {
    fn default() -> Self {
        Self {
            product_name: "mgpass".into(),
            logo_uri: String::new(),
            primary_color: "#1f4fd8".into(),
            background_color: "#f5f6fa".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Lifetime of each refresh token; every use rotates it.
    pub refresh_token_ttl_secs: u32,
    /// Absolute lifetime of a session, however often it is refreshed.
    pub max_lifetime_secs: u32,
    /// Failed sign-ins for one identifier before it is locked.
    pub lockout_threshold: u32,
    /// Failed sign-ins from one IP before it is locked.
    pub ip_lockout_threshold: u32,
    /// First lock duration; it doubles with every further failure.
    pub lockout_base_secs: u32,
    /// Longest lock.
    pub lockout_max_secs: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            refresh_token_ttl_secs: 30 * 86_400,
            max_lifetime_secs: 90 * 86_400,
            lockout_threshold: 5,
            ip_lockout_threshold: 50,
            lockout_base_secs: 30,
            lockout_max_secs: 900,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// Base64 of 32 random bytes: the AES-256-GCM key that seals private signing keys and queued
    /// messages at rest. Generate one with `mgpass keys generate-master`. Required.
    pub master_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// Avatar URL of users created without one; `{email_sha256}` is replaced by the hex SHA-256
    /// of the lower-cased email (the Gravatar convention).
    pub avatar_template: String,
    /// Anyone may register (`true`), or only administrators create users.
    pub registration_public: bool,
    /// `email`, `mobile` or `emailOrMobile`: what users sign in with.
    pub primary_identifier: String,
    /// `none`, `optional` or `required`: the other identifier, when the primary is email or mobile.
    pub secondary_identifier: String,
    /// `atLeastOne` or `both`: identifiers required at registration under `emailOrMobile`.
    pub dual_registration: String,
    /// `asNamePair` (given + family name) or `asFullname` (one full name).
    pub user_name_type: String,
    /// Sign-in is refused until the email is verified.
    pub email_verification_required_for_login: bool,
    /// Sign-in is refused until the mobile number is verified.
    pub mobile_verification_required_for_login: bool,
    /// Registrations accepted per client IP per hour (0: unlimited).
    pub registrations_per_ip_per_hour: u32,
    /// Country calling code (digits, e.g. `233`) given to mobile numbers entered in national
    /// form (`020 123 4567`). Unset: only international numbers are accepted.
    pub default_country_code: Option<u16>,
    /// Custom user properties, validated on every write.
    pub properties: Vec<PropertyConfig>,
}

/// One custom user property.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropertyConfig {
    /// `[a-zA-Z][a-zA-Z0-9_]{0,39}`.
    pub name: String,
    /// `string`, `integer`, `boolean` or `enum`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub required: bool,
    /// Value given when a new user has none.
    #[serde(default)]
    pub default: Option<serde_json::Value>,
    /// No two users share a value (enforced by a unique index).
    #[serde(default)]
    pub unique: bool,
    /// The allowed values of an `enum` property.
    #[serde(default)]
    pub values: Vec<String>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            avatar_template: "https://www.gravatar.com/avatar/{email_sha256}?d=identicon".into(),
            registration_public: true,
            primary_identifier: "email".into(),
            secondary_identifier: "optional".into(),
            dual_registration: "atLeastOne".into(),
            user_name_type: "asNamePair".into(),
            email_verification_required_for_login: false,
            mobile_verification_required_for_login: false,
            registrations_per_ip_per_hour: 20,
            default_country_code: None,
            properties: Vec::new(),
        }
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
    /// Accept an access token in the `access_token` query parameter of REST calls (after the
    /// `Authorization` header and the `mgpass_at` cookie). Off: URLs end up in logs and histories.
    pub allow_query_access_token: bool,
    /// How often expired codes, grant state, delivered messages and ended sessions are deleted.
    pub janitor_interval_secs: u64,
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
    /// `ES256` (default) or `EdDSA`: the algorithm of signing keys created from now on.
    pub algorithm: String,
    /// Clock skew tolerated on `exp` when verifying; a retired key also stays published this long.
    pub leeway_secs: u32,
    /// Age of the signing key after which the next one is created (the seed's
    /// `keyRefreshPeriodInDays`). Fractions are allowed (tests rotate within seconds).
    pub key_rotation_period_days: f64,
    /// How long a new key is published in the JWKS before it signs, so that verifiers caching the
    /// JWKS know it first.
    pub key_publish_lead_secs: u32,
    /// How often every instance reloads the keys and rotates or retires them when due.
    pub key_check_interval_secs: u32,
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
    /// Refuse the ~20,000 most common passwords (bundled list).
    pub refuse_common_passwords: bool,
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
            delivery: DeliveryConfig::default(),
            database: DatabaseConfig::default(),
            tokens: TokenConfig::default(),
            password: PasswordConfig::default(),
            bootstrap: BootstrapConfig::default(),
            identity: IdentityConfig::default(),
            secrets: SecretsConfig::default(),
            sessions: SessionConfig::default(),
            verification: VerificationConfig::default(),
            oauth: OAuthConfig::default(),
            branding: BrandingConfig::default(),
            access: AccessConfig::default(),
            organizations: OrganizationsConfig::default(),
            loyalty: crate::loyalty::config::LoyaltyConfig::default(),
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
            allow_query_access_token: false,
            janitor_interval_secs: 3600,
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
        Self {
            access_token_ttl_secs: 900,
            audience: "mgpass".into(),
            algorithm: "ES256".into(),
            leeway_secs: 30,
            key_rotation_period_days: 30.0,
            key_publish_lead_secs: 3600,
            key_check_interval_secs: 60,
        }
    }
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self {
            argon2_memory_kib: 19456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            min_length: 8,
            refuse_common_passwords: true,
        }
    }
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self { admin_identifier: "admin@admin.com".into(), admin_password: String::new() }
    }
}

/// Delivery of emails and SMS (server/src/delivery): the outbox worker, SMTP, the SMS provider.
/// A channel whose URL is empty is off: queuing a message for it fails with `FEATURE_DISABLED`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// `smtp://host:port` (plain, for loopback relays), `smtp://host:587?tls=required` (STARTTLS)
    /// or `smtps://host:465`; credentials as `smtps://user:password@host`. Empty: no email.
    pub smtp_url: String,
    /// The `From` of every email, e.g. `mgpass <no-reply@example.com>`.
    pub email_from: String,
    /// The SMS provider's endpoint, called with `POST`. Empty: no SMS.
    pub sms_url: String,
    /// Name of the header that authenticates to the SMS provider.
    pub sms_auth_header_name: String,
    /// Its full value, e.g. `Bearer xyz` (a secret; never logged). Empty: no such header.
    pub sms_auth_header: String,
    /// The JSON body sent to the SMS provider; `{{to}}` and `{{text}}` are replaced by the
    /// JSON-escaped recipient and text (place them inside quotes).
    pub sms_body_template: String,
    /// A folder of templates laid out like `server/templates/` (`email/<name>.<locale>.subject`,
    /// `.txt`, `.html`; `sms/<name>.<locale>.txt`); its files replace or add to the built-in ones.
    /// Read at start.
    pub templates_dir: String,
    /// The locale tried after the message's own (and before `en`).
    pub default_locale: String,
    /// Whether this instance runs the delivery worker (several instances may).
    pub worker_enabled: bool,
    /// How often the worker looks for due messages (it is also woken by `NOTIFY`).
    pub poll_interval_ms: u64,
    /// Attempts before a message is given up (`failed`).
    pub max_attempts: u32,
    /// Delay after the first failed attempt; doubled after each further one.
    pub retry_base_ms: u64,
    /// Longest delay between two attempts.
    pub retry_max_ms: u64,
    /// Time limit of one send (SMTP conversation or provider call).
    pub send_timeout_secs: u64,
    /// How long a claimed message stays reserved for its worker; past it (the worker died
    /// mid-send) another worker retries it. Must exceed `send_timeout_secs`.
    pub lease_secs: u64,
    /// Messages claimed (and sent concurrently) per round.
    pub batch_size: u32,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            smtp_url: String::new(),
            email_from: String::new(),
            sms_url: String::new(),
            sms_auth_header_name: "Authorization".into(),
            sms_auth_header: String::new(),
            sms_body_template: r#"{"to":"{{to}}","text":"{{text}}"}"#.into(),
            templates_dir: String::new(),
            default_locale: "en".into(),
            worker_enabled: true,
            poll_interval_ms: 1000,
            max_attempts: 8,
            retry_base_ms: 5_000,
            retry_max_ms: 3_600_000,
            send_timeout_secs: 30,
            lease_secs: 120,
            batch_size: 16,
        }
    }
}

/// Secrets (an SMTP password in the URL, the SMS auth header) stay out of debug output.
impl std::fmt::Debug for DeliveryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |s: &str| if s.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("DeliveryConfig")
            .field("smtp_url", &redact(&self.smtp_url))
            .field("email_from", &self.email_from)
            .field("sms_url", &redact(&self.sms_url))
            .field("sms_auth_header_name", &self.sms_auth_header_name)
            .field("sms_auth_header", &redact(&self.sms_auth_header))
            .field("sms_body_template", &self.sms_body_template)
            .field("templates_dir", &self.templates_dir)
            .field("default_locale", &self.default_locale)
            .field("worker_enabled", &self.worker_enabled)
            .field("poll_interval_ms", &self.poll_interval_ms)
            .field("max_attempts", &self.max_attempts)
            .field("retry_base_ms", &self.retry_base_ms)
            .field("retry_max_ms", &self.retry_max_ms)
            .field("send_timeout_secs", &self.send_timeout_secs)
            .field("lease_secs", &self.lease_secs)
            .field("batch_size", &self.batch_size)
            .finish()
    }
}

/// The verification flows (the Mindbricks `verificationServices`): one-time codes and links for
/// email and mobile verification, password reset, magic links and second factors, plus TOTP.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerificationConfig {
    /// `liveMode` (secrets only travel by email/SMS) or `testMode` (the secret is also returned in
    /// the API answer: development only).
    pub verification_mode: String,
    /// Wrong tries a code survives; the last one burns it.
    pub max_attempts: u32,
    /// Base of the links of `byLink` flows (default: `server.public_url`); a flow's link is
    /// `<base>/<flowName>/<token>` unless its `link_url` says otherwise.
    pub link_base_url: String,
    /// Start requests (send, request) accepted per client IP per hour (0: unlimited).
    pub requests_per_ip_per_hour: u32,
    /// Every password sign-in also needs a code sent by email (`email2FARequiredForLogin`).
    pub email_2fa_required_for_login: bool,
    /// Every password sign-in also needs a code sent by SMS (`mobile2FARequiredForLogin`).
    pub mobile_2fa_required_for_login: bool,
    /// Users may enrol authenticator apps (TOTP).
    pub totp_enabled: bool,
    /// The issuer shown by authenticator apps.
    pub totp_issuer: String,
    /// How long an unconfirmed TOTP secret waits for its first code.
    pub totp_enrollment_ttl_secs: u32,
    pub email_verification: FlowConfig,
    pub mobile_verification: FlowConfig,
    pub password_reset_by_email: FlowConfig,
    pub password_reset_by_mobile: FlowConfig,
    pub magic_link: FlowConfig,
    pub email_2fa: FlowConfig,
    pub mobile_2fa: FlowConfig,
}

/// One verification flow (the Mindbricks `VerificationConfig`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowConfig {
    /// Whether the flow is on; an inactive flow answers `FEATURE_DISABLED`.
    pub is_active: bool,
    /// Seconds before another message of the flow may be sent to the same destination.
    pub resend_time_window: u32,
    /// Seconds a code or link stays valid.
    pub expire_time_window: u32,
    /// `byCode` (6 digits) or `byLink` (a link with a long single-use token).
    pub verification_type: String,
    /// The message template (`server/templates/README.md`).
    pub template: String,
    /// The link of `byLink`, with `{token}` where the token goes; empty: the default.
    pub link_url: String,
}

impl FlowConfig {
    fn new(template: &str, verification_type: &str, resend: u32, expire: u32) -> Self {
        Self {
            is_active: false,
            resend_time_window: resend,
            expire_time_window: expire,
            verification_type: verification_type.into(),
            template: template.into(),
            link_url: String::new(),
        }
    }
}

impl Default for FlowConfig {
    fn default() -> Self {
        Self::new("", "byCode", 60, 900)
    }
}

impl Default for VerificationConfig {
    fn default() -> Self {
        Self {
            verification_mode: "liveMode".into(),
            max_attempts: 5,
            link_base_url: String::new(),
            requests_per_ip_per_hour: 100,
            email_2fa_required_for_login: false,
            mobile_2fa_required_for_login: false,
            totp_enabled: true,
            totp_issuer: "mgpass".into(),
            totp_enrollment_ttl_secs: 600,
            email_verification: FlowConfig::new("verify_email", "byCode", 60, 86_400),
            mobile_verification: FlowConfig::new("verify_mobile", "byCode", 60, 900),
            password_reset_by_email: FlowConfig::new("password_reset", "byCode", 60, 3_600),
            password_reset_by_mobile: FlowConfig::new("password_reset", "byCode", 60, 900),
            magic_link: FlowConfig::new("magic_link", "byLink", 60, 900),
            email_2fa: FlowConfig::new("email_2fa", "byCode", 30, 300),
            mobile_2fa: FlowConfig::new("mobile_2fa", "byCode", 30, 300),
        }
    }
}

impl VerificationConfig {
    /// The flows with their config names, the channel they use, and whether they may be links.
    pub fn flows(&self) -> [(&'static str, &FlowConfig, crate::delivery::Channel, bool); 7] {
        use crate::delivery::Channel::{Email, Sms};
        [
            ("email_verification", &self.email_verification, Email, true),
            ("mobile_verification", &self.mobile_verification, Sms, true),
            ("password_reset_by_email", &self.password_reset_by_email, Email, true),
            ("password_reset_by_mobile", &self.password_reset_by_mobile, Sms, true),
            ("magic_link", &self.magic_link, Email, true),
            ("email_2fa", &self.email_2fa, Email, false),
            ("mobile_2fa", &self.mobile_2fa, Sms, false),
        ]
    }

    pub fn test_mode(&self) -> bool {
        self.verification_mode == "testMode"
    }

    fn check(&self, delivery: &DeliveryConfig, bad: &mut Vec<String>) {
        if !matches!(self.verification_mode.as_str(), "liveMode" | "testMode") {
            bad.push(format!("verification.verification_mode: `{}` must be `liveMode` or `testMode`", self.verification_mode));
        }
        if !(1..=20).contains(&self.max_attempts) {
            bad.push("verification.max_attempts: must be between 1 and 20".into());
        }
        if !self.link_base_url.is_empty()
            && !(self.link_base_url.starts_with("http://") || self.link_base_url.starts_with("https://"))
        {
            bad.push("verification.link_base_url: must start with http:// or https://".into());
        }
        if !(60..=86_400).contains(&self.totp_enrollment_ttl_secs) {
            bad.push("verification.totp_enrollment_ttl_secs: must be between 60 and 86400".into());
        }
        if self.totp_issuer.is_empty() || self.totp_issuer.contains(':') {
            bad.push("verification.totp_issuer: must be non-empty and without `:`".into());
        }
        for (name, flow, channel, links) in self.flows() {
            if !matches!(flow.verification_type.as_str(), "byCode" | "byLink") {
                bad.push(format!("verification.{name}.verification_type: `{}` must be `byCode` or `byLink`", flow.verification_type));
            } else if flow.verification_type == "byLink" && !links {
                bad.push(format!("verification.{name}.verification_type: a second factor is always `byCode`"));
            }
            if !(1..=30 * 86_400).contains(&flow.expire_time_window) {
                bad.push(format!("verification.{name}.expire_time_window: must be between 1 and 2592000 seconds"));
            }
            if flow.resend_time_window > 86_400 {
                bad.push(format!("verification.{name}.resend_time_window: must be at most 86400 seconds"));
            }
            if !crate::delivery::templates::valid_name(&flow.template) {
                bad.push(format!("verification.{name}.template: `{}` is not a template name", flow.template));
            }
            if !flow.link_url.is_empty() && !flow.link_url.contains("{token}") {
                bad.push(format!("verification.{name}.link_url: must contain `{{token}}`"));
            }
            if flow.is_active {
                let (url, key) = match channel {
                    crate::delivery::Channel::Email => (&delivery.smtp_url, "delivery.smtp_url"),
                    crate::delivery::Channel::Sms => (&delivery.sms_url, "delivery.sms_url"),
                };
                if url.is_empty() {
                    bad.push(format!("verification.{name}.is_active: needs {key}"));
                }
            }
        }
        if self.email_2fa_required_for_login && !self.email_2fa.is_active {
            bad.push("verification.email_2fa_required_for_login: needs verification.email_2fa.is_active".into());
        }
        if self.mobile_2fa_required_for_login && !self.mobile_2fa.is_active {
            bad.push("verification.mobile_2fa_required_for_login: needs verification.mobile_2fa.is_active".into());
        }
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
        if self.access.user_groups_in_tenant_level && !self.access.user_groups_active {
            bad.push("access.user_groups_in_tenant_level: needs access.user_groups_active".into());
        }
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
        if self.server.janitor_interval_secs == 0 {
            bad.push("server.janitor_interval_secs: must be at least 1".into());
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
        // RS256 keys sign only the ID tokens of applications that ask for it (per application).
        if !matches!(self.tokens.algorithm.as_str(), "ES256" | "EdDSA") {
            bad.push(format!("tokens.algorithm: `{}` must be ES256 or EdDSA", self.tokens.algorithm));
        }
        if self.tokens.leeway_secs > 300 {
            bad.push("tokens.leeway_secs: must be at most 300".into());
        }
        if !(self.tokens.key_rotation_period_days > 0.0 && self.tokens.key_rotation_period_days <= 3650.0) {
            bad.push("tokens.key_rotation_period_days: must be above 0 and at most 3650".into());
        }
        if !(1..=3600).contains(&self.tokens.key_check_interval_secs) {
            bad.push("tokens.key_check_interval_secs: must be between 1 and 3600".into());
        }
        // Every instance must have loaded a new key before any instance signs with it.
        if self.tokens.key_publish_lead_secs < self.tokens.key_check_interval_secs
            || self.tokens.key_publish_lead_secs > 30 * 86_400
        {
            bad.push("tokens.key_publish_lead_secs: must be between key_check_interval_secs and 2592000".into());
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
        if self.bootstrap.admin_identifier.trim().is_empty() {
            bad.push("bootstrap.admin_identifier: must be an email address or an E.164 mobile number".into());
        }
        if !self.bootstrap.admin_password.is_empty() && self.bootstrap.admin_password.len() < self.password.min_length {
            bad.push("bootstrap.admin_password: shorter than password.min_length".into());
        }
        if self.identity.default_country_code.is_some_and(|cc| !(1..=999).contains(&cc)) {
            bad.push("identity.default_country_code: must be a country calling code from 1 to 999, like 233".into());
        }
        if let Err(errors) = crate::identity::policy::IdentityPolicy::from_config(&self.identity) {
            bad.extend(errors);
        }
        if let Err(errors) = crate::identity::policy::parse_properties("organizations", &self.organizations.properties) {
            bad.extend(errors);
        }
        if self.organizations.properties.iter().any(|p| p.unique) {
            bad.push("organizations.properties: `unique` is not supported for organization properties".into());
        }
        if !self.organizations.invitation_link_url.is_empty() && !self.organizations.invitation_link_url.contains("{token}") {
            bad.push("organizations.invitation_link_url: must contain `{token}`".into());
        }
        let s = &self.sessions;
        if s.refresh_token_ttl_secs < 60 || s.max_lifetime_secs < s.refresh_token_ttl_secs {
            bad.push("sessions.refresh_token_ttl_secs: must be at least 60 and at most sessions.max_lifetime_secs".into());
        }
        if s.lockout_threshold == 0 || s.ip_lockout_threshold == 0 {
            bad.push("sessions.lockout_threshold and ip_lockout_threshold: must be at least 1".into());
        }
        if s.lockout_base_secs == 0 || s.lockout_max_secs < s.lockout_base_secs {
            bad.push("sessions.lockout_base_secs: must be at least 1 and at most sessions.lockout_max_secs".into());
        }
        if self.secrets.master_key.is_empty() {
            bad.push("secrets.master_key: not set (generate one with `mgpass keys generate-master`)".into());
        } else if let Err(why) = crate::crypto::sealed::MasterKey::from_base64(&self.secrets.master_key) {
            bad.push(format!("secrets.master_key: {why}"));
        }
        let o = &self.oauth;
        if !(10..=600).contains(&o.authorization_code_ttl_secs) {
            bad.push("oauth.authorization_code_ttl_secs: must be between 10 and 600".into());
        }
        if !(60..=3600).contains(&o.device_code_ttl_secs) || !(1..=60).contains(&o.device_poll_interval_secs) {
            bad.push("oauth.device_code_ttl_secs (60..3600) or device_poll_interval_secs (1..60): out of range".into());
        }
        if !(30..=86_400).contains(&o.default_access_token_ttl_secs) || !(30..=86_400).contains(&o.default_id_token_ttl_secs) {
            bad.push("oauth.default_access_token_ttl_secs and default_id_token_ttl_secs: must be between 30 and 86400".into());
        }
        if o.default_refresh_token_ttl_secs < 60 || o.client_cache_ttl_ms > 60_000 || o.interaction_ttl_secs < 60 {
            bad.push("oauth: refresh ttl below 60 s, client cache above 60 s or interaction ttl below 60 s".into());
        }
        for (name, color) in [("primary_color", &self.branding.primary_color), ("background_color", &self.branding.background_color)] {
            if !is_hex_color(color) {
                bad.push(format!("branding.{name}: `{color}` must look like #1f4fd8"));
            }
        }
        crate::delivery::check_config(&self.delivery, &mut bad);
        self.verification.check(&self.delivery, &mut bad);
        self.loyalty.check(&mut bad);
        if bad.is_empty() { Ok(()) } else { Err(ConfigError(bad)) }
    }

    /// Whether cookies must be `Secure` (the public URL is https).
    pub fn secure_cookies(&self) -> bool {
        self.issuer().starts_with("https://")
    }

    /// The validated master key.
    pub fn master_key(&self) -> crate::crypto::sealed::MasterKey {
        crate::crypto::sealed::MasterKey::from_base64(&self.secrets.master_key).expect("validated at load")
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

/// `#rrggbb`: the only colour form the hosted pages accept, so branding cannot inject CSS.
pub fn is_hex_color(value: &str) -> bool {
    value.len() == 7 && value.starts_with('#') && value[1..].chars().all(|c| c.is_ascii_hexdigit())
}
