//! Email over SMTP (lettre, async on tokio, rustls): `smtp://` (plain, for a loopback relay),
//! `smtp://host:587?tls=required` (STARTTLS), `smtps://` (implicit TLS); credentials in the URL.

use std::time::Duration;

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart, SinglePart, header::ContentType},
};

use uuid::Uuid;

use super::Rendered;
use crate::config::DeliveryConfig;

/// Sends rendered emails. Holds a small pool of SMTP connections.
#[derive(Clone)]
pub struct EmailSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl EmailSender {
    /// Checks the URL and the sender address without connecting.
    pub fn check(config: &DeliveryConfig) -> Result<(), String> {
        AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.smtp_url)
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Needs the tokio runtime (the connection pool runs a task).
    pub fn new(config: &DeliveryConfig) -> Result<Self, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.smtp_url)
            .map_err(|e| e.to_string())?
            .timeout(Some(Duration::from_secs(config.send_timeout_secs)))
            .build();
        let from = config
            .email_from
            .parse::<Mailbox>()
            .map_err(|e| format!("delivery.email_from: {e}"))?;
        Ok(Self { transport, from })
    }

    /// Sends one email; its `Message-ID` derives from the outbox id, so a retried message keeps
    /// it. The error says what went wrong, never what the message said.
    pub async fn send(&self, id: Uuid, to: &str, message: &Rendered) -> Result<(), String> {
        let to: Mailbox = to
            .parse()
            .map_err(|_| "the recipient is not a valid address".to_string())?;
        let builder = Message::builder()
            .message_id(Some(format!("<{id}@{}>", self.from.email.domain())))
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.clone().unwrap_or_default());
        let email = match &message.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                message.text.clone(),
                html.clone(),
            )),
            None => builder.singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(message.text.clone()),
            ),
        }
        .map_err(|e| format!("building the email: {e}"))?;
        self.transport
            .send(email)
            .await
            .map(|_| ())
            .map_err(|e| format!("smtp: {e}"))
    }
}
