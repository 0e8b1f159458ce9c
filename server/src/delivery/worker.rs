//! The delivery worker: claims due messages, sends them, records the outcome.
//!
//! Each round claims up to `delivery.batch_size` due messages (`FOR UPDATE SKIP LOCKED`, so
//! workers of several instances never take the same one) under a lease of `delivery.lease_secs`,
//! sends them concurrently, and marks each sent (body wiped), back to pending with exponential
//! backoff, or failed (body wiped) after `delivery.max_attempts`. A worker that dies mid-send
//! leaves its claims to run out; another worker then retries them. Rounds run every
//! `delivery.poll_interval_ms`, at once when a full batch was claimed, and when `NOTIFY
//! mgpass_outbox` (sent by [`Outbox::enqueue`](super::Outbox::enqueue) at commit) arrives.

use std::{sync::Arc, time::Duration};

use diesel_async::{AsyncPgConnection, RunQueryDsl, pooled_connection::deadpool::Object};
use futures::StreamExt;
use tokio::{
    sync::{Notify, watch},
    task::JoinHandle,
};

use super::{
    Channel, Rendered,
    outbox::{self, Claimed, NOTIFY_CHANNEL, seal_context},
    sms::SmsSender,
    smtp::EmailSender,
};
use crate::{config::DeliveryConfig, crypto::sealed::MasterKey, db::DbPool};

/// A running worker. Stops when the `shutdown` channel given to [`spawn`](Self::spawn) turns
/// `true`, after the sends in flight finish (each within `delivery.send_timeout_secs`).
pub struct Worker {
    handle: JoinHandle<()>,
    listener: JoinHandle<()>,
}

struct State {
    pool: DbPool,
    config: DeliveryConfig,
    key: MasterKey,
    email: Option<EmailSender>,
    sms: Option<SmsSender>,
    channels: Vec<&'static str>,
}

impl Worker {
    /// Starts the worker on the tokio runtime. It delivers the channels whose transport is
    /// configured (`delivery.smtp_url`, `delivery.sms_url`); messages of another channel stay
    /// queued for an instance that has it.
    pub fn spawn(
        pool: DbPool,
        config: DeliveryConfig,
        master_key: MasterKey,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<Self> {
        let email = if config.smtp_url.is_empty() {
            None
        } else {
            Some(EmailSender::new(&config).map_err(|e| anyhow::anyhow!("email delivery: {e}"))?)
        };
        let sms = if config.sms_url.is_empty() {
            None
        } else {
            Some(SmsSender::new(&config).map_err(|e| anyhow::anyhow!("SMS delivery: {e}"))?)
        };
        let mut channels = Vec::new();
        if email.is_some() {
            channels.push(Channel::Email.as_str());
        }
        if sms.is_some() {
            channels.push(Channel::Sms.as_str());
        }
        if channels.is_empty() {
            tracing::info!(
                "no delivery channel configured (delivery.smtp_url, delivery.sms_url); nothing will be sent"
            );
        } else {
            tracing::info!(channels = ?channels, "delivery worker started");
        }
        let state = Arc::new(State {
            pool,
            config,
            key: master_key,
            email,
            sms,
            channels,
        });
        let wake = Arc::new(Notify::new());
        let listener = tokio::spawn(listen(state.pool.clone(), wake.clone(), shutdown.clone()));
        let handle = tokio::spawn(run(state, wake, shutdown));
        Ok(Self { handle, listener })
    }

    /// Waits until the worker has stopped.
    pub async fn join(self) {
        let _ = self.handle.await;
        self.listener.abort();
        let _ = self.listener.await;
    }

    /// Stops at once, abandoning sends in flight (their leases run out and they are retried).
    pub fn abort(&self) {
        self.handle.abort();
        self.listener.abort();
    }

    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

async fn run(state: Arc<State>, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
    if state.channels.is_empty() {
        let _ = shutdown.wait_for(|s| *s).await;
        return;
    }
    let poll = Duration::from_millis(state.config.poll_interval_ms);
    loop {
        if *shutdown.borrow() {
            break;
        }
        let full = match round(&state).await {
            Ok(claimed) => claimed >= state.config.batch_size as usize,
            Err(err) => {
                tracing::warn!(error = %err, "delivery round failed");
                false
            }
        };
        if full {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = wake.notified() => {}
            _ = shutdown.changed() => {}
        }
    }
    tracing::info!("delivery worker stopped");
}

/// One round: claim, send, record. Returns how many messages were claimed.
async fn round(state: &Arc<State>) -> crate::error::Result<usize> {
    let claimed = {
        let mut conn = state.pool.get().await?;
        outbox::claim(
            &mut conn,
            &state.channels,
            state.config.batch_size as i64,
            state.config.lease_secs as f64,
        )
        .await?
    };
    let count = claimed.len();
    futures::stream::iter(claimed)
        .for_each_concurrent(None, |message| {
            let state = state.clone();
            async move { deliver(&state, message).await }
        })
        .await;
    Ok(count)
}

enum Outcome {
    Sent,
    Retry(String, u64),
    Failed(String),
}

/// The delay before attempt `attempt + 1`: base, 2 x base, 4 x base, ... up to the maximum.
fn backoff_ms(config: &DeliveryConfig, attempt: i32) -> u64 {
    let doublings = (attempt.max(1) - 1).min(40) as u32;
    config
        .retry_base_ms
        .saturating_mul(1u64 << doublings)
        .min(config.retry_max_ms)
}

async fn deliver(state: &State, message: Claimed) {
    let Claimed {
        id,
        channel,
        recipient,
        template,
        sealed_body,
        attempts,
    } = message;
    let attempt = attempts;
    let max = state.config.max_attempts as i32;
    let result = if attempt > max {
        // Claims whose workers died used up the attempts.
        Err("no attempt left (earlier claims ran out of time)".to_string())
    } else {
        send(state, id, &channel, &recipient, sealed_body.as_deref()).await
    };
    let outcome = match result {
        Ok(()) => Outcome::Sent,
        Err(err) if attempt >= max => Outcome::Failed(err),
        Err(err) => Outcome::Retry(err, backoff_ms(&state.config, attempt)),
    };
    let recorded = record(state, id, attempt, &outcome).await;
    let record_error = recorded.err().map(|e| e.to_string());
    match &outcome {
        Outcome::Sent => tracing::info!(
            %id, channel, template, attempt, outcome = "sent", record_error, "message delivered"
        ),
        Outcome::Retry(err, delay) => tracing::warn!(
            %id, channel, template, attempt, outcome = "retry", retry_in_ms = delay, error = %err, record_error,
            "message not delivered; will retry"
        ),
        Outcome::Failed(err) => tracing::error!(
            %id, channel, template, attempt, outcome = "failed", error = %err, record_error,
            "message not delivered; given up"
        ),
    }
}

async fn send(
    state: &State,
    id: uuid::Uuid,
    channel: &str,
    to: &str,
    sealed: Option<&[u8]>,
) -> Result<(), String> {
    let sealed = sealed.ok_or("the message has no body")?;
    let body = state
        .key
        .open(&seal_context(id), sealed)
        .map_err(|e| e.to_string())?;
    let message: Rendered =
        serde_json::from_slice(&body).map_err(|_| "the message body is unreadable".to_string())?;
    let timeout = Duration::from_secs(state.config.send_timeout_secs);
    let sending = async {
        match Channel::parse(channel) {
            Some(Channel::Email) => match &state.email {
                Some(sender) => sender.send(id, to, &message).await,
                None => Err("email delivery is not configured here".into()),
            },
            Some(Channel::Sms) => match &state.sms {
                Some(sender) => sender.send(to, &message).await,
                None => Err("SMS delivery is not configured here".into()),
            },
            None => Err(format!("unknown channel `{channel}`")),
        }
    };
    tokio::time::timeout(timeout, sending)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")))
}

async fn record(
    state: &State,
    id: uuid::Uuid,
    attempt: i32,
    outcome: &Outcome,
) -> crate::error::Result<()> {
    let mut conn = state.pool.get().await?;
    let error = |e: &str| e.chars().take(500).collect::<String>();
    let held = match outcome {
        Outcome::Sent => outbox::mark_sent(&mut conn, id).await?,
        Outcome::Retry(err, delay) => {
            outbox::mark_retry(&mut conn, id, attempt, &error(err), *delay).await?
        }
        Outcome::Failed(err) => outbox::mark_failed(&mut conn, id, attempt, &error(err)).await?,
    };
    if !held {
        tracing::warn!(%id, attempt, "the claim had run out; another worker took the message over");
    }
    Ok(())
}

/// Keeps a dedicated connection (taken out of the pool) on `LISTEN mgpass_outbox` and wakes the
/// worker on each notification. Polling covers any gap while it reconnects.
async fn listen(pool: DbPool, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        match listen_once(&pool, &wake).await {
            Ok(()) => tracing::debug!("outbox notification stream ended; reconnecting"),
            Err(err) => {
                tracing::debug!(error = %err, "outbox LISTEN failed; polling until it is back")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = shutdown.changed() => {}
        }
    }
}

async fn listen_once(pool: &DbPool, wake: &Notify) -> anyhow::Result<()> {
    let pooled = pool.get().await?;
    // Out of the pool for good: a listening connection must never serve other queries.
    let mut conn: AsyncPgConnection = Object::<AsyncPgConnection>::take(pooled);
    diesel::sql_query(format!("LISTEN {NOTIFY_CHANNEL}"))
        .execute(&mut conn)
        .await?;
    let mut notifications = std::pin::pin!(conn.notifications_stream());
    while let Some(notification) = notifications.next().await {
        notification?;
        wake.notify_one();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let c = DeliveryConfig {
            retry_base_ms: 1000,
            retry_max_ms: 10_000,
            ..DeliveryConfig::default()
        };
        let delays: Vec<u64> = (1..=6).map(|a| backoff_ms(&c, a)).collect();
        assert_eq!(delays, [1000, 2000, 4000, 8000, 10_000, 10_000]);
        assert_eq!(backoff_ms(&c, 1000), 10_000, "no overflow");
    }
}
