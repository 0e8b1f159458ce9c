//! Delivery of emails and SMS through a transactional outbox.
//!
//! A feature that sends something (a verification code, a reset or magic link, an invitation)
//! calls [`Outbox::enqueue`] with its own database connection, inside its own transaction: the
//! message is rendered from its template there and then, sealed under the master key and stored
//! in `outbox`, so the code row and its message commit (or roll back) together and the request
//! never waits on SMTP. The [`Worker`] (one per instance; several instances may run) claims due
//! messages with `FOR UPDATE SKIP LOCKED`, sends them over SMTP ([`smtp`]) or the SMS
//! provider's HTTP API ([`sms`]), and retries failures with exponential backoff up to
//! `delivery.max_attempts`. Once a message is sent or given up its sealed body is wiped; the
//! metadata (channel, recipient, template, status, attempts, times, last error) stays.
//!
//! ```text
//! conn.transaction(async |conn| {
//!     store_code(conn, user, &code_hash).await?;
//!     let msg = OutgoingMessage::email(&email, "verify_email").locale(&locale).var("code", code.as_str());
//!     outbox.enqueue(conn, msg).await?;
//!     Ok::<_, Error>(())
//! })
//! .await?;
//! ```

mod outbox;
pub mod sms;
pub mod smtp;
pub mod templates;
mod worker;

use serde_json::{Map, Value};

pub use outbox::{NOTIFY_CHANNEL, Outbox, OutboxRow, Status};
pub use templates::{Rendered, Templates};
pub use worker::Worker;

use crate::config::DeliveryConfig;

/// How a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "email" => Some(Channel::Email),
            "sms" => Some(Channel::Sms),
            _ => None,
        }
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message to queue. `vars` are the template's variables (see `server/templates/README.md`).
#[derive(Clone)]
pub struct OutgoingMessage {
    pub channel: Channel,
    /// An email address, or an E.164 mobile number (`+` and 8 to 15 digits).
    pub to: String,
    /// The template name, e.g. `verify_email`.
    pub template: String,
    /// The recipient's locale (`fr`, `pt-BR`); `None` uses `delivery.default_locale`.
    pub locale: Option<String>,
    pub vars: Map<String, Value>,
}

/// Never prints the variables: they hold codes and links.
impl std::fmt::Debug for OutgoingMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingMessage")
            .field("channel", &self.channel)
            .field("to", &self.to)
            .field("template", &self.template)
            .field("locale", &self.locale)
            .finish_non_exhaustive()
    }
}

impl OutgoingMessage {
    pub fn new(channel: Channel, to: impl Into<String>, template: impl Into<String>) -> Self {
        Self {
            channel,
            to: to.into(),
            template: template.into(),
            locale: None,
            vars: Map::new(),
        }
    }

    pub fn email(to: impl Into<String>, template: impl Into<String>) -> Self {
        Self::new(Channel::Email, to, template)
    }

    pub fn sms(to: impl Into<String>, template: impl Into<String>) -> Self {
        Self::new(Channel::Sms, to, template)
    }

    pub fn locale(mut self, locale: impl Into<String>) -> Self {
        self.locale = Some(locale.into());
        self
    }

    pub fn var(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.vars.insert(name.to_string(), value.into());
        self
    }
}

/// The `delivery.*` checks of [`Config::load`](crate::config::Config::load): one line per bad
/// value into `bad`.
pub fn check_config(c: &DeliveryConfig, bad: &mut Vec<String>) {
    if !c.smtp_url.is_empty() {
        if !(c.smtp_url.starts_with("smtp://") || c.smtp_url.starts_with("smtps://")) {
            bad.push("delivery.smtp_url: must start with smtp:// or smtps://".into());
        } else if let Err(why) = smtp::EmailSender::check(c) {
            bad.push(format!("delivery.smtp_url: {why}"));
        }
        if c.email_from.is_empty() {
            bad.push("delivery.email_from: required when delivery.smtp_url is set".into());
        } else if c.email_from.parse::<lettre::message::Mailbox>().is_err() {
            bad.push(format!(
                "delivery.email_from: `{}` is not an address like `mgpass <no-reply@example.com>`",
                c.email_from
            ));
        }
    }
    if !c.sms_url.is_empty() {
        if !(c.sms_url.starts_with("http://") || c.sms_url.starts_with("https://")) {
            bad.push("delivery.sms_url: must start with http:// or https://".into());
        }
        if let Err(why) = sms::check_body_template(&c.sms_body_template) {
            bad.push(format!("delivery.sms_body_template: {why}"));
        }
        if !c.sms_auth_header.is_empty() {
            if http::HeaderName::from_bytes(c.sms_auth_header_name.as_bytes()).is_err() {
                bad.push("delivery.sms_auth_header_name: not a valid header name".into());
            }
            if http::HeaderValue::from_str(&c.sms_auth_header).is_err() {
                bad.push("delivery.sms_auth_header: not a valid header value".into());
            }
        }
    }
    if !c.templates_dir.is_empty() && !std::path::Path::new(&c.templates_dir).is_dir() {
        bad.push(format!(
            "delivery.templates_dir: `{}` is not a folder",
            c.templates_dir
        ));
    }
    if templates::normalize_locale(&c.default_locale).is_none() {
        bad.push(format!(
            "delivery.default_locale: `{}` is not a language tag like `en` or `pt-BR`",
            c.default_locale
        ));
    }
    if !(10..=60_000).contains(&c.poll_interval_ms) {
        bad.push("delivery.poll_interval_ms: must be between 10 and 60000".into());
    }
    if !(1..=100).contains(&c.max_attempts) {
        bad.push("delivery.max_attempts: must be between 1 and 100".into());
    }
    if c.retry_base_ms == 0 || c.retry_max_ms < c.retry_base_ms {
        bad.push(
            "delivery.retry_base_ms: must be at least 1 and at most delivery.retry_max_ms".into(),
        );
    }
    if c.send_timeout_secs == 0 || c.lease_secs <= c.send_timeout_secs {
        bad.push("delivery.lease_secs: must exceed delivery.send_timeout_secs (at least 1)".into());
    }
    if !(1..=1000).contains(&c.batch_size) {
        bad.push("delivery.batch_size: must be between 1 and 1000".into());
    }
}

/// Whether `to` is an E.164 number: `+`, then 8 to 15 digits, the first not 0.
pub fn is_e164(to: &str) -> bool {
    to.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(c: &DeliveryConfig) -> Vec<String> {
        let mut out = Vec::new();
        check_config(c, &mut out);
        out
    }

    #[test]
    fn defaults_are_valid_and_channels_off() {
        let c = DeliveryConfig::default();
        assert!(bad(&c).is_empty(), "{:?}", bad(&c));
        assert!(c.smtp_url.is_empty() && c.sms_url.is_empty());
    }

    #[test]
    fn bad_values_are_reported() {
        let c = DeliveryConfig {
            smtp_url: "http://mail".into(),
            sms_url: "ftp://x".into(),
            sms_body_template: "{\"to\": {{to}}".into(),
            poll_interval_ms: 0,
            max_attempts: 0,
            lease_secs: 5,
            send_timeout_secs: 10,
            default_locale: "../x".into(),
            ..DeliveryConfig::default()
        };
        let lines = bad(&c).join("\n");
        for key in [
            "delivery.smtp_url",
            "delivery.email_from",
            "delivery.sms_url",
            "delivery.sms_body_template",
            "delivery.poll_interval_ms",
            "delivery.max_attempts",
            "delivery.lease_secs",
            "delivery.default_locale",
        ] {
            assert!(lines.contains(key), "{key} missing from:\n{lines}");
        }
        let c = DeliveryConfig {
            smtp_url: "smtp://127.0.0.1:2525".into(),
            email_from: "not an address".into(),
            ..DeliveryConfig::default()
        };
        assert!(bad_has(&c, "delivery.email_from"));
        let ok = DeliveryConfig {
            smtp_url: "smtps://user:pw@mail.example.com".into(),
            email_from: "mgpass <no-reply@example.com>".into(),
            sms_url: "https://sms.example.com/send".into(),
            sms_auth_header: "Bearer abc".into(),
            ..DeliveryConfig::default()
        };
        assert!(bad(&ok).is_empty(), "{:?}", bad(&ok));
    }

    fn bad_has(c: &DeliveryConfig, key: &str) -> bool {
        bad(c).iter().any(|l| l.contains(key))
    }

    #[test]
    fn debug_output_hides_secrets() {
        let c = DeliveryConfig {
            smtp_url: "smtps://user:hunter2@mail".into(),
            sms_auth_header: "Bearer topsecret".into(),
            ..DeliveryConfig::default()
        };
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("topsecret"),
            "{shown}"
        );
        let m = OutgoingMessage::sms("+233201234567", "mobile_2fa").var("code", "918273");
        assert!(!format!("{m:?}").contains("918273"));
    }

    #[test]
    fn e164() {
        assert!(is_e164("+233201234567"));
        assert!(!is_e164("233201234567"));
        assert!(!is_e164("+0123456789"));
        assert!(!is_e164("+1234"));
        assert!(!is_e164("+1234567890123456"));
        assert!(!is_e164("+23320123456a"));
    }
}
