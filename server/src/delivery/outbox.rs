//! The outbox table: queuing (inside the caller's transaction) and the worker's claims.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use diesel::{
    ExpressionMethods, OptionalExtension, QueryDsl, Queryable, QueryableByName, SelectableHelper,
    sql_types::{Array, BigInt, Bytea, Double, Integer, Nullable, Text, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{Channel, OutgoingMessage, Rendered, Templates, is_e164};
use crate::{
    config::DeliveryConfig,
    crypto::sealed::MasterKey,
    db::schema::outbox,
    error::{Error, Result},
};

/// The `LISTEN`/`NOTIFY` channel that wakes the workers when a message is queued.
pub const NOTIFY_CHANNEL: &str = "mgpass_outbox";

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Waiting for its (next) attempt.
    Pending,
    /// Claimed by a worker that is sending it.
    Sending,
    /// Delivered to the SMTP server or SMS provider; the body is gone.
    Sent,
    /// Given up after `delivery.max_attempts`; the body is gone.
    Failed,
}

impl Status {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "sending" => Some(Self::Sending),
            "sent" => Some(Self::Sent),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// A message's metadata (never its body).
#[derive(Debug, Clone, Queryable, diesel::Selectable)]
#[diesel(table_name = outbox)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct OutboxRow {
    pub id: Uuid,
    pub channel: String,
    pub recipient: String,
    pub template: String,
    pub locale: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl OutboxRow {
    pub fn status(&self) -> Option<Status> {
        Status::parse(&self.status)
    }
}

/// Queues messages. Cheap to clone; build one at start and share it.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    templates: Templates,
    key: MasterKey,
    email_enabled: bool,
    sms_enabled: bool,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("email_enabled", &self.inner.email_enabled)
            .field("sms_enabled", &self.inner.sms_enabled)
            .finish_non_exhaustive()
    }
}

/// The AES-GCM associated data of a message's sealed body.
pub(super) fn seal_context(id: Uuid) -> String {
    format!("outbox:{id}")
}

impl Outbox {
    /// Loads and compiles the templates (built-in and `delivery.templates_dir`).
    pub fn new(config: &DeliveryConfig, master_key: MasterKey) -> anyhow::Result<Self> {
        let templates = Templates::load(&config.templates_dir, &config.default_locale)?;
        Ok(Self {
            inner: Arc::new(Inner {
                templates,
                key: master_key,
                email_enabled: !config.smtp_url.is_empty(),
                sms_enabled: !config.sms_url.is_empty(),
            }),
        })
    }

    /// Whether messages can be queued for `channel` (its transport is configured).
    pub fn enabled(&self, channel: Channel) -> bool {
        match channel {
            Channel::Email => self.inner.email_enabled,
            Channel::Sms => self.inner.sms_enabled,
        }
    }

    pub fn templates(&self) -> &Templates {
        &self.inner.templates
    }

    /// Renders `msg` without queuing it: the locale used and the message.
    pub fn render(&self, msg: &OutgoingMessage) -> Result<(String, Rendered)> {
        self.inner
            .templates
            .render(msg.channel, &msg.template, msg.locale.as_deref(), &msg.vars)
    }

    /// Renders `msg`, seals it and queues it on `conn`, inside whatever transaction `conn` is in
    /// (it commits or rolls back with the caller's own writes); the workers are woken at commit.
    /// Fails with `FEATURE_DISABLED` when the channel has no transport, `INVALID_EMAIL` /
    /// `INVALID_MOBILE` for a bad recipient, and `INTERNAL` for an unknown template or a
    /// variable the template needs and `vars` lacks.
    pub async fn enqueue(
        &self,
        conn: &mut AsyncPgConnection,
        msg: OutgoingMessage,
    ) -> Result<Uuid> {
        if !self.enabled(msg.channel) {
            let (setting, what) = match msg.channel {
                Channel::Email => ("delivery.smtp_url", "email"),
                Channel::Sms => ("delivery.sms_url", "SMS"),
            };
            return Err(Error::FailedPrecondition {
                reason: "FEATURE_DISABLED",
                message: format!("{what} delivery is not configured ({setting} is empty)"),
            });
        }
        let to = msg.to.trim().to_string();
        match msg.channel {
            Channel::Email => {
                if to.parse::<lettre::Address>().is_err() {
                    return Err(Error::invalid(
                        "INVALID_EMAIL",
                        "email",
                        "not a valid email address",
                    ));
                }
            }
            Channel::Sms => {
                if !is_e164(&to) {
                    return Err(Error::invalid(
                        "INVALID_MOBILE",
                        "mobile",
                        "not an E.164 mobile number",
                    ));
                }
            }
        }
        let (locale, rendered) = self.render(&msg)?;
        let id = Uuid::now_v7();
        let body = serde_json::to_vec(&rendered).map_err(Error::internal)?;
        let sealed = self.inner.key.seal(&seal_context(id), &body)?;
        diesel::insert_into(outbox::table)
            .values((
                outbox::id.eq(id),
                outbox::channel.eq(msg.channel.as_str()),
                outbox::recipient.eq(&to),
                outbox::template.eq(&msg.template),
                outbox::locale.eq(&locale),
                outbox::sealed_body.eq(Some(sealed)),
            ))
            .execute(conn)
            .await?;
        // Delivered to listeners at commit, and not at all on rollback.
        diesel::sql_query("SELECT pg_notify($1, '')")
            .bind::<Text, _>(NOTIFY_CHANNEL)
            .execute(conn)
            .await?;
        Ok(id)
    }

    /// The metadata of one message.
    pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<OutboxRow>> {
        Ok(outbox::table
            .find(id)
            .select(OutboxRow::as_select())
            .first(conn)
            .await
            .optional()?)
    }
}

/// A message a worker has claimed.
#[derive(QueryableByName)]
pub(super) struct Claimed {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub channel: String,
    #[diesel(sql_type = Text)]
    pub recipient: String,
    #[diesel(sql_type = Text)]
    pub template: String,
    #[diesel(sql_type = Nullable<Bytea>)]
    pub sealed_body: Option<Vec<u8>>,
    /// This attempt's number (1 for the first); also the claim's token.
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
}

/// Claims up to `limit` due messages of `channels` for `lease_secs`: pending ones whose time
/// has come, and claimed ones whose worker let the lease run out. `SKIP LOCKED` keeps concurrent
/// workers off each other's rows; the claim commits at once, so the row lock is not held while
/// sending, and the lease keeps others away instead.
pub(super) async fn claim(
    conn: &mut AsyncPgConnection,
    channels: &[&str],
    limit: i64,
    lease_secs: f64,
) -> Result<Vec<Claimed>> {
    let channels: Vec<String> = channels.iter().map(|c| c.to_string()).collect();
    Ok(diesel::sql_query(
        "UPDATE outbox o
            SET status = 'sending', attempts = o.attempts + 1,
                next_attempt_at = now() + make_interval(secs => $3), updated_at = now()
           FROM (SELECT id FROM outbox
                  WHERE status IN ('pending', 'sending') AND next_attempt_at <= now()
                    AND channel = ANY($1)
                  ORDER BY next_attempt_at
                  LIMIT $2
                  FOR UPDATE SKIP LOCKED) due
          WHERE o.id = due.id
      RETURNING o.id, o.channel, o.recipient, o.template, o.sealed_body, o.attempts",
    )
    .bind::<Array<Text>, _>(channels)
    .bind::<BigInt, _>(limit)
    .bind::<Double, _>(lease_secs)
    .load(conn)
    .await?)
}

/// Marks a message sent and wipes its body. A success wins over any other non-final state (a
/// lease that ran out during a slow send), so the message is not sent again.
pub(super) async fn mark_sent(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool> {
    let n = diesel::sql_query(
        "UPDATE outbox SET status = 'sent', sealed_body = NULL, sent_at = now(), updated_at = now(),
                last_error = NULL
          WHERE id = $1 AND status IN ('pending', 'sending')",
    )
    .bind::<SqlUuid, _>(id)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Puts a failed attempt back in the queue for `delay_ms`, if the claim `attempt` still holds.
pub(super) async fn mark_retry(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    attempt: i32,
    error: &str,
    delay_ms: u64,
) -> Result<bool> {
    let n = diesel::sql_query(
        "UPDATE outbox SET status = 'pending', next_attempt_at = now() + make_interval(secs => $3),
                last_error = $4, updated_at = now()
          WHERE id = $1 AND status = 'sending' AND attempts = $2",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Integer, _>(attempt)
    .bind::<Double, _>(delay_ms as f64 / 1000.0)
    .bind::<Text, _>(error)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Gives a message up and wipes its body, if the claim `attempt` still holds.
pub(super) async fn mark_failed(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    attempt: i32,
    error: &str,
) -> Result<bool> {
    let n = diesel::sql_query(
        "UPDATE outbox SET status = 'failed', sealed_body = NULL, last_error = $3, updated_at = now()
          WHERE id = $1 AND status = 'sending' AND attempts = $2",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Integer, _>(attempt)
    .bind::<Text, _>(error)
    .execute(conn)
    .await?;
    Ok(n == 1)
}
