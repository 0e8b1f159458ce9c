//! The machinery shared by every verification flow: issuing a one-time code or link token
//! (stored only as a digest, its message queued through the outbox in the same transaction) and
//! checking one (single use, a bounded number of wrong tries, an expiry, a resend window).
//! The flows themselves (what a confirmed secret does) are in `verification_service.rs` and
//! `second_factor.rs`.

use std::{net::IpAddr, num::NonZeroU32, sync::Arc};

use chrono::{DateTime, Duration, Utc};
use diesel_async::AsyncPgConnection;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ring::rand::{SecureRandom, SystemRandom};
use uuid::Uuid;

use crate::{
    config::{FlowConfig, VerificationConfig},
    crypto::{sealed::MasterKey, secret},
    delivery::{Channel, Outbox, OutgoingMessage},
    error::{Error, Result},
    identity::verification_store::{self as store, CodeRow, NewCode},
};

/// A verification flow; its name is also its config section and its `flow` in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    EmailVerification,
    MobileVerification,
    PasswordResetByEmail,
    PasswordResetByMobile,
    MagicLink,
    Email2fa,
    Mobile2fa,
}

impl Flow {
    pub fn name(self) -> &'static str {
        match self {
            Flow::EmailVerification => "email_verification",
            Flow::MobileVerification => "mobile_verification",
            Flow::PasswordResetByEmail => "password_reset_by_email",
            Flow::PasswordResetByMobile => "password_reset_by_mobile",
            Flow::MagicLink => "magic_link",
            Flow::Email2fa => "email_2fa",
            Flow::Mobile2fa => "mobile_2fa",
        }
    }

    /// The path segment of the flow's default link (the seed's frontend paths).
    fn link_path(self) -> &'static str {
        match self {
            Flow::EmailVerification => "emailVerification",
            Flow::MobileVerification => "mobileVerification",
            Flow::PasswordResetByEmail => "passwordResetByEmail",
            Flow::PasswordResetByMobile => "passwordResetByMobile",
            Flow::MagicLink => "magicLink",
            Flow::Email2fa => "email2Factor",
            Flow::Mobile2fa => "mobile2Factor",
        }
    }

    pub fn channel(self) -> Channel {
        match self {
            Flow::EmailVerification
            | Flow::PasswordResetByEmail
            | Flow::MagicLink
            | Flow::Email2fa => Channel::Email,
            _ => Channel::Sms,
        }
    }

    const ALL: [Flow; 7] = [
        Flow::EmailVerification,
        Flow::MobileVerification,
        Flow::PasswordResetByEmail,
        Flow::PasswordResetByMobile,
        Flow::MagicLink,
        Flow::Email2fa,
        Flow::Mobile2fa,
    ];
}

/// What a start call sent (transport-free `VerificationDispatch`).
#[derive(Debug, Clone)]
pub struct Dispatch {
    pub channel: Channel,
    /// The destination, masked.
    pub destination: String,
    pub link: bool,
    pub expire_time: DateTime<Utc>,
    pub resend_time: DateTime<Utc>,
    /// The code or token, only in `testMode`.
    pub test_mode_secret: Option<String>,
}

/// Who a message goes to.
pub struct Target {
    /// The account; `None` when the identifier has none (nothing is sent, but a row that never
    /// matches is stored, so the answer and the resend window are the same).
    pub user_id: Option<Uuid>,
    /// The address or number to send to, as the user wrote it.
    pub to: String,
    /// The second-factor code's session.
    pub session_id: Option<Uuid>,
    /// The user's name for the greeting.
    pub name: String,
}

/// The secret a confirmation presents.
pub enum Presented<'a> {
    /// A code, with the destination it was sent to (or the session of a second factor).
    Code {
        destination: &'a str,
        session: Option<Uuid>,
        code: &'a str,
    },
    /// A link token.
    Link(&'a str),
}

/// The outcome of checking a secret. Not an error, so that the caller's transaction commits
/// the counted try.
pub enum Checked {
    Valid(CodeRow),
    Wrong,
    /// Too many wrong tries: the code is burnt (now or before).
    Burnt,
    Expired,
}

impl Checked {
    /// The error of a failed check.
    pub fn error(&self) -> Error {
        match self {
            Checked::Valid(_) => Error::internal("a valid code is no error"),
            Checked::Wrong => Error::invalid(
                "INVALID_CODE",
                "code",
                "the code or link is wrong, unknown or already used",
            ),
            Checked::Burnt => Error::ResourceExhausted {
                reason: "TOO_MANY_ATTEMPTS",
                message: "too many wrong tries: this code is burnt; request a new one".into(),
            },
            Checked::Expired => Error::FailedPrecondition {
                reason: "CODE_EXPIRED",
                message: "the code or link has expired; request a new one".into(),
            },
        }
    }
}

/// `j***@example.com`.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => format!("{}***@{domain}", local.chars().next().unwrap_or('*')),
        None => "***".into(),
    }
}

/// `+23320*****67`.
pub fn mask_mobile(mobile: &str) -> String {
    let chars: Vec<char> = mobile.chars().collect();
    if chars.len() < 9 {
        return "***".into();
    }
    let keep_head = 6.min(chars.len() - 4);
    let head: String = chars[..keep_head].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - keep_head - 2))
}

/// A uniformly random 6-digit code.
pub fn random_code() -> String {
    let rng = SystemRandom::new();
    loop {
        let mut buf = [0u8; 4];
        rng.fill(&mut buf).expect("the OS random generator works");
        let n = u32::from_le_bytes(buf);
        // Rejection sampling keeps every code equally likely.
        if n < u32::MAX - (u32::MAX % 1_000_000) {
            return format!("{:06}", n % 1_000_000);
        }
    }
}

/// The stored digest of a code: an HMAC under a key derived from the master key (a six-digit
/// code's plain hash would fall to a million guesses offline), salted with its row id so equal
/// codes give different digests.
pub fn code_digest(master: &MasterKey, id: Uuid, code: &str) -> Vec<u8> {
    master.mac("verification-code", format!("{id}:{code}").as_bytes())
}

/// Digits only, spaces and dashes dropped.
fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect()
}

/// The verification flows' settings, delivery and checks. Built once at start.
pub struct Verifier {
    config: VerificationConfig,
    outbox: Outbox,
    master: MasterKey,
    link_base: String,
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

impl Verifier {
    /// Checks that each active flow's template renders with the variables the flow gives it.
    pub fn new(
        config: VerificationConfig,
        outbox: Outbox,
        master: MasterKey,
        public_url: &str,
    ) -> anyhow::Result<Self> {
        let link_base = if config.link_base_url.is_empty() {
            public_url
        } else {
            &config.link_base_url
        };
        let link_base = link_base.trim_end_matches('/').to_string();
        let per_ip = NonZeroU32::new(config.requests_per_ip_per_hour)
            .map(|n| RateLimiter::keyed(Quota::per_hour(n)));
        let this = Self {
            config,
            outbox,
            master,
            link_base,
            per_ip,
        };
        for flow in Flow::ALL {
            let cfg = this.flow(flow);
            if !cfg.is_active {
                continue;
            }
            let to = match flow.channel() {
                Channel::Email => "someone@example.com",
                Channel::Sms => "+233201234567",
            };
            let mut msg = OutgoingMessage::new(flow.channel(), to, cfg.template.clone())
                .var("expires_minutes", 15);
            msg = if this.is_link(flow) {
                msg.var("link", "https://example.com/x")
            } else {
                msg.var("code", "123456")
            };
            this.outbox.render(&msg).map_err(|e| {
                anyhow::anyhow!(
                    "verification.{}: template `{}` cannot render a {} ({e})",
                    flow.name(),
                    cfg.template,
                    if this.is_link(flow) { "link" } else { "code" }
                )
            })?;
        }
        if this.config.test_mode() {
            tracing::warn!(
                "verification.verification_mode is testMode: one-time codes and link tokens are returned in API \
                 answers; never use this in production"
            );
        }
        Ok(this)
    }

    pub fn config(&self) -> &VerificationConfig {
        &self.config
    }

    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    pub fn flow(&self, flow: Flow) -> &FlowConfig {
        let c = &self.config;
        match flow {
            Flow::EmailVerification => &c.email_verification,
            Flow::MobileVerification => &c.mobile_verification,
            Flow::PasswordResetByEmail => &c.password_reset_by_email,
            Flow::PasswordResetByMobile => &c.password_reset_by_mobile,
            Flow::MagicLink => &c.magic_link,
            Flow::Email2fa => &c.email_2fa,
            Flow::Mobile2fa => &c.mobile_2fa,
        }
    }

    pub fn active(&self, flow: Flow) -> bool {
        self.flow(flow).is_active
    }

    fn is_link(&self, flow: Flow) -> bool {
        self.flow(flow).verification_type == "byLink"
    }

    /// `FEATURE_DISABLED` unless the flow is active.
    pub fn require(&self, flow: Flow) -> Result<()> {
        if self.active(flow) {
            Ok(())
        } else {
            Err(feature_disabled(&format!(
                "verification.{}.is_active",
                flow.name()
            )))
        }
    }

    /// The per-IP limit of start requests.
    pub fn check_rate(&self, ip: Option<IpAddr>) -> Result<()> {
        if let (Some(limiter), Some(ip)) = (&self.per_ip, ip) {
            if limiter.check_key(&ip).is_err() {
                return Err(Error::ResourceExhausted {
                    reason: "RATE_LIMITED",
                    message: "too many verification requests from this address; try again later"
                        .into(),
                });
            }
        }
        Ok(())
    }

    fn link(&self, flow: Flow, token: &str) -> String {
        let cfg = self.flow(flow);
        if cfg.link_url.is_empty() {
            format!("{}/{}/{token}", self.link_base, flow.link_path())
        } else {
            cfg.link_url.replace("{token}", token)
        }
    }

    /// The key a flow's codes are filed under: the lower-cased email or the E.164 number.
    pub fn destination_key(flow: Flow, to: &str) -> String {
        match flow.channel() {
            Channel::Email => to.trim().to_lowercase(),
            Channel::Sms => to.trim().to_string(),
        }
    }

    /// Issues a new code or link for `target` inside the caller's transaction: refuses within the
    /// resend window (unless `enforce_resend` is false), supersedes the live ones, stores the
    /// digest and queues the message.
    pub async fn issue(
        &self,
        conn: &mut AsyncPgConnection,
        flow: Flow,
        target: Target,
        enforce_resend: bool,
    ) -> Result<Dispatch> {
        self.require(flow)?;
        let cfg = self.flow(flow);
        let key = Self::destination_key(flow, &target.to);
        store::lock_destination(
            conn,
            flow.name(),
            &target
                .session_id
                .map(|s| s.to_string())
                .unwrap_or(key.clone()),
        )
        .await?;
        let now = Utc::now();
        if enforce_resend {
            if let Some(last) = store::newest(conn, flow.name(), &key, target.session_id).await? {
                let allowed =
                    last.created_at + Duration::seconds(i64::from(cfg.resend_time_window));
                if allowed > now {
                    let wait = (allowed - now).num_seconds().max(1) as u64;
                    return Err(Error::RetryLater {
                        reason: "RESEND_TOO_SOON",
                        message: format!("a message was sent recently; ask again in {wait} s"),
                        retry_after_secs: wait,
                    });
                }
            }
        }
        store::supersede(conn, flow.name(), &key, target.session_id).await?;
        let id = Uuid::now_v7();
        let link = self.is_link(flow);
        let (secret, hash) = if link {
            let token = secret::random_token(32);
            let hash = secret::digest(&token);
            (token, hash)
        } else {
            let code = random_code();
            let hash = code_digest(&self.master, id, &code);
            (code, hash)
        };
        let expire_time = now + Duration::seconds(i64::from(cfg.expire_time_window));
        let known = target.user_id.is_some();
        // Without an account the row stores a digest nobody knows, and nothing is sent.
        let stored_hash = if known {
            hash
        } else {
            secret::digest(&secret::random_token(32))
        };
        store::insert_code(
            conn,
            NewCode {
                id,
                flow: flow.name().into(),
                user_id: target.user_id,
                session_id: target.session_id,
                destination: key,
                kind: if link { "link" } else { "code" }.into(),
                secret_hash: stored_hash,
                expires_at: expire_time,
            },
        )
        .await?;
        if known {
            let minutes = cfg.expire_time_window.div_ceil(60);
            let mut msg =
                OutgoingMessage::new(flow.channel(), target.to.trim(), cfg.template.clone())
                    .var("expires_minutes", minutes);
            if !target.name.is_empty() {
                msg = msg.var("name", target.name.as_str());
            }
            msg = if link {
                msg.var("link", self.link(flow, &secret))
            } else {
                msg.var("code", secret.as_str())
            };
            self.outbox.enqueue(conn, msg).await?;
        }
        Ok(Dispatch {
            channel: flow.channel(),
            destination: match flow.channel() {
                Channel::Email => mask_email(target.to.trim()),
                Channel::Sms => mask_mobile(target.to.trim()),
            },
            link,
            expire_time,
            resend_time: now + Duration::seconds(i64::from(cfg.resend_time_window)),
            test_mode_secret: (self.config.test_mode() && known).then_some(secret),
        })
    }

    /// Checks a presented secret inside the caller's transaction. A valid one is consumed; a
    /// wrong code counts a try and the last allowed wrong try burns it.
    pub async fn check(
        &self,
        conn: &mut AsyncPgConnection,
        flow: Flow,
        presented: Presented<'_>,
    ) -> Result<Checked> {
        let now = Utc::now();
        let (row, code) = match presented {
            Presented::Link(token) => {
                let token = token.trim();
                if token.is_empty() {
                    return Ok(Checked::Wrong);
                }
                match store::by_link_hash(conn, flow.name(), &secret::digest(token)).await? {
                    Some(row) => (row, None),
                    None => return Ok(Checked::Wrong),
                }
            }
            Presented::Code {
                destination,
                session,
                code,
            } => {
                let key = Self::destination_key(flow, destination);
                store::lock_destination(
                    conn,
                    flow.name(),
                    &session.map(|s| s.to_string()).unwrap_or(key.clone()),
                )
                .await?;
                match store::newest(conn, flow.name(), &key, session).await? {
                    Some(row) => (row, Some(normalize_code(code))),
                    None => return Ok(Checked::Wrong),
                }
            }
        };
        match row.consumed_reason.as_deref() {
            Some("burnt") => return Ok(Checked::Burnt),
            Some(_) => return Ok(Checked::Wrong),
            None => {}
        }
        if row.expires_at <= now {
            return Ok(Checked::Expired);
        }
        let matches = match &code {
            None => true, // found by the token's digest
            Some(code) => {
                row.kind == "code"
                    && secret::constant_time_eq(
                        &code_digest(&self.master, row.id, code),
                        &row.secret_hash,
                    )
            }
        };
        if matches && row.user_id.is_some() {
            store::consume(conn, row.id, "used").await?;
            return Ok(Checked::Valid(row));
        }
        let attempts = store::count_attempt(conn, row.id).await?;
        if attempts >= self.config.max_attempts as i32 {
            store::consume(conn, row.id, "burnt").await?;
            tracing::warn!(
                flow = flow.name(),
                "verification code burnt after too many wrong tries"
            );
            return Ok(Checked::Burnt);
        }
        Ok(Checked::Wrong)
    }
}

pub fn feature_disabled(setting: &str) -> Error {
    Error::FailedPrecondition {
        reason: "FEATURE_DISABLED",
        message: format!("this feature is off ({setting})"),
    }
}

/// The verifier shared by the identity services.
pub type SharedVerifier = Arc<Verifier>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(mask_email("jane@example.com"), "j***@example.com");
        assert_eq!(mask_mobile("+233201234567"), "+23320*****67");
        assert_eq!(mask_mobile("+1234567890"), "+12345***90");
    }

    #[test]
    fn codes_are_six_digits_and_digests_salted() {
        for _ in 0..100 {
            let c = random_code();
            assert_eq!(c.len(), 6);
            assert!(c.chars().all(|ch| ch.is_ascii_digit()));
        }
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let master = MasterKey::from_base64(&MasterKey::generate_base64()).unwrap();
        assert_ne!(
            code_digest(&master, a, "123456"),
            code_digest(&master, b, "123456")
        );
        assert_eq!(normalize_code(" 123 456 "), "123456");
    }
}
