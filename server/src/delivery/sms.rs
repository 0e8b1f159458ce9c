//! SMS through an HTTP provider: `POST delivery.sms_url` with the JSON body of
//! `delivery.sms_body_template` (`{{to}}` and `{{text}}` replaced by the JSON-escaped recipient
//! and text) and, when set, the `delivery.sms_auth_header_name: delivery.sms_auth_header`
//! header. Any 2xx answer is a delivery; anything else (or no answer) is a failure to retry.

use std::time::Duration;

use http::{HeaderName, HeaderValue};

use super::Rendered;
use crate::config::DeliveryConfig;

/// Sends rendered SMS.
#[derive(Clone)]
pub struct SmsSender {
    client: reqwest::Client,
    url: String,
    auth: Option<(HeaderName, HeaderValue)>,
    body_template: String,
}

/// The body template must hold `{{text}}` and be JSON once the placeholders are filled.
pub fn check_body_template(template: &str) -> Result<(), String> {
    if !template.contains("{{text}}") {
        return Err("must contain {{text}}".into());
    }
    serde_json::from_str::<serde_json::Value>(&fill(template, "+10000000000", "text"))
        .map(|_| ())
        .map_err(|e| format!("is not JSON once {{{{to}}}} and {{{{text}}}} are filled in: {e}"))
}

/// The string as it appears between JSON quotes.
fn json_escaped(s: &str) -> String {
    let quoted = serde_json::to_string(s).expect("a string serializes");
    quoted[1..quoted.len() - 1].to_string()
}

/// The request body for one message.
pub fn fill(template: &str, to: &str, text: &str) -> String {
    // Placeholders are replaced in one pass, so a text containing "{{to}}" stays as it is.
    let mut out = String::with_capacity(template.len() + text.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        if let Some(after) = tail.strip_prefix("{{to}}") {
            out.push_str(&json_escaped(to));
            rest = after;
        } else if let Some(after) = tail.strip_prefix("{{text}}") {
            out.push_str(&json_escaped(text));
            rest = after;
        } else {
            out.push_str("{{");
            rest = &tail[2..];
        }
    }
    out.push_str(rest);
    out
}

impl SmsSender {
    pub fn new(config: &DeliveryConfig) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.send_timeout_secs))
            .build()
            .map_err(|e| e.to_string())?;
        let auth = if config.sms_auth_header.is_empty() {
            None
        } else {
            let name = HeaderName::from_bytes(config.sms_auth_header_name.as_bytes())
                .map_err(|_| "delivery.sms_auth_header_name: not a header name".to_string())?;
            let mut value = HeaderValue::from_str(&config.sms_auth_header)
                .map_err(|_| "delivery.sms_auth_header: not a header value".to_string())?;
            value.set_sensitive(true);
            Some((name, value))
        };
        check_body_template(&config.sms_body_template)?;
        Ok(Self {
            client,
            url: config.sms_url.clone(),
            auth,
            body_template: config.sms_body_template.clone(),
        })
    }

    /// Sends one SMS. The error names the HTTP status or the transport failure, never the text,
    /// the provider's answer body, or the URL (which may carry a key).
    pub async fn send(&self, to: &str, message: &Rendered) -> Result<(), String> {
        let body = fill(&self.body_template, to, &message.text);
        let mut request = self
            .client
            .post(&self.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some((name, value)) = &self.auth {
            request = request.header(name.clone(), value.clone());
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("sms provider: {}", describe(e)))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("sms provider answered {status}"))
        }
    }
}

/// A reqwest error without its URL, with its causes.
fn describe(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut out = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_json_with_escaped_values() {
        let t = r#"{"to":"{{to}}","text":"{{text}}","from":"mgpass"}"#;
        let text = "Code \"42\"\nline {{to}} \\ é";
        let body: serde_json::Value =
            serde_json::from_str(&fill(t, "+233201234567", text)).unwrap();
        assert_eq!(body["to"], "+233201234567");
        assert_eq!(body["text"], text);
        assert_eq!(body["from"], "mgpass");
    }

    #[test]
    fn body_template_is_checked() {
        assert!(check_body_template(r#"{"to":"{{to}}","text":"{{text}}"}"#).is_ok());
        assert!(
            check_body_template(r#"{"messages":[{"dest":"{{to}}","body":"{{text}}"}]}"#).is_ok()
        );
        assert!(
            check_body_template(r#"{"to":"{{to}}"}"#).is_err(),
            "no text"
        );
        assert!(
            check_body_template(r#"{"to":{{to}},"text":"{{text}}"}"#).is_err(),
            "unquoted"
        );
    }
}
