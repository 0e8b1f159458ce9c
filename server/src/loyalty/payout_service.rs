//! Payout rules: quotes, requests (hold + outbox row in one transaction), the worker's steps,
//! administrator refreshes and resolutions, and provider callbacks. Every change of a payout
//! happens under its row lock and goes through the pure rules of `payout_flow`, so a worker
//! round, a callback and an administrator acting at once settle a payout exactly once.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use super::{
    ledger,
    momo::{PayoutProvider, SubmitOutcome, Transfer, TransferStatus},
    payout_config::PayoutConfig,
    payout_flow::{self, Call, Decision, Outcome, Phase, ResolveRefusal, State},
    payout_ledger,
    payout_store::{self as store, ListFilter, NewPayout, PayoutRow, QuoteRow, Settlement},
};
use crate::{
    db::DbPool,
    error::{Error, Result},
    paging::Page,
};

#[derive(Clone)]
pub struct PayoutService {
    pool: DbPool,
    config: Arc<PayoutConfig>,
    provider: Option<Arc<dyn PayoutProvider>>,
}

/// Where a payout row stands, for the rules.
pub fn state_of(row: &PayoutRow) -> Result<State> {
    match row.status.as_str() {
        "pending" => Phase::parse(&row.phase)
            .map(State::Pending)
            .ok_or_else(|| Error::internal(format!("payout {} has phase {:?}", row.id, row.phase))),
        "manual_review" => Ok(State::ManualReview),
        "succeeded" => Ok(State::Succeeded),
        "failed" => Ok(State::Failed),
        other => Err(Error::internal(format!("payout {} has status {other:?}", row.id))),
    }
}

fn parse_id(id: &str, field: &'static str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| Error::invalid("INVALID_ID", field, format!("`{id}` is not an id")))
}

fn payout_not_found() -> Error {
    Error::not_found("PAYOUT_NOT_FOUND", "no such payout")
}

fn quote_not_found() -> Error {
    Error::not_found("QUOTE_NOT_FOUND", "no such quote")
}

fn failed_precondition(reason: &'static str, message: &str) -> Error {
    Error::FailedPrecondition { reason, message: message.into() }
}

impl PayoutService {
    pub fn new(pool: DbPool, config: PayoutConfig, provider: Option<Arc<dyn PayoutProvider>>) -> Self {
        Self { pool, config: Arc::new(config), provider }
    }

    /// The provider, when cashback is configured.
    fn provider(&self) -> Result<&Arc<dyn PayoutProvider>> {
        self.provider
            .as_ref()
            .ok_or_else(|| failed_precondition("FEATURE_DISABLED", "mobile-money cashback is not enabled"))
    }

    /// The user's verified mobile number.
    async fn verified_mobile(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<String> {
        match store::user_mobile(conn, user_id).await? {
            Some((Some(mobile), true)) => Ok(mobile),
            _ => Err(failed_precondition("MOBILE_NOT_VERIFIED", "payouts go to a verified mobile number; verify yours first")),
        }
    }

    pub async fn quote(&self, user_id: Uuid, points: i64) -> Result<QuoteRow> {
        self.provider()?;
        let c = &self.config;
        let amount_minor = if points > 0 { c.amount_minor(points) } else { 0 };
        if points < c.min_points || points > c.max_points || amount_minor <= 0 {
            return Err(Error::OutOfRange {
                reason: "PAYOUT_AMOUNT_OUT_OF_RANGE",
                message: format!("a payout is between {} and {} points", c.min_points, c.max_points),
            });
        }
        let mut conn = self.pool.get().await?;
        let mobile = Self::verified_mobile(&mut conn, user_id).await?;
        if ledger::balance(&mut conn, user_id).await? < points {
            return Err(failed_precondition("INSUFFICIENT_POINTS", "the balance does not cover these points"));
        }
        let now = Utc::now();
        let quote = QuoteRow {
            id: Uuid::now_v7(),
            user_id,
            points,
            amount_minor,
            currency: c.currency.clone(),
            rate_points: c.rate_points,
            rate_amount_minor: c.rate_amount_minor,
            mobile,
            expires_at: now + chrono::Duration::seconds(c.quote_ttl_secs as i64),
            created_at: now,
        };
        store::insert_quote(&mut conn, &quote).await?;
        Ok(quote)
    }

    /// Holds the points and queues the transfer, in one transaction; the same quote again
    /// returns the same payout.
    pub async fn request(&self, user_id: Uuid, quote_id: &str) -> Result<PayoutRow> {
        let provider = self.provider()?.name();
        let quote_id = Uuid::parse_str(quote_id).map_err(|_| quote_not_found())?;
        let mut conn = self.pool.get().await?;
        let row = conn
            .transaction(async |conn| {
                // The quote's row lock makes concurrent requests of one quote queue up.
                let quote = store::get_quote_for_update(conn, quote_id).await?;
                let quote = quote.filter(|q| q.user_id == user_id).ok_or_else(quote_not_found)?;
                if let Some(existing) = store::by_quote(conn, quote.id).await? {
                    return Ok(existing);
                }
                if quote.expires_at <= Utc::now() {
                    return Err(failed_precondition("QUOTE_EXPIRED", "the quote has expired; ask for a new one"));
                }
                if Self::verified_mobile(conn, user_id).await? != quote.mobile {
                    return Err(failed_precondition("QUOTE_EXPIRED", "your mobile number changed since the quote; ask for a new one"));
                }
                let id = Uuid::now_v7();
                let hold = payout_ledger::hold(conn, user_id, id, quote.points).await?;
                store::insert_payout(
                    conn,
                    &NewPayout {
                        id,
                        user_id,
                        quote_id: quote.id,
                        points: quote.points,
                        amount_minor: quote.amount_minor,
                        currency: quote.currency.clone(),
                        mobile: quote.mobile.clone(),
                        provider: provider.to_string(),
                        reference_id: Uuid::new_v4(),
                        status: "pending".into(),
                        phase: Phase::Submit.as_str().into(),
                        hold_transaction_id: hold,
                    },
                )
                .await?;
                store::get(conn, id).await?.ok_or_else(|| Error::internal("inserted payout vanished"))
            })
            .await?;
        Ok(row)
    }

    pub async fn get_mine(&self, user_id: Uuid, id: &str) -> Result<PayoutRow> {
        let id = Uuid::parse_str(id).map_err(|_| payout_not_found())?;
        let row = store::get(&mut *self.pool.get().await?, id).await?;
        row.filter(|r| r.user_id == user_id).ok_or_else(payout_not_found)
    }

    pub async fn get(&self, id: &str) -> Result<PayoutRow> {
        let id = parse_id(id, "payout_id")?;
        store::get(&mut *self.pool.get().await?, id).await?.ok_or_else(payout_not_found)
    }

    pub async fn list(&self, filter: ListFilter, page_size: i32, page_token: &str) -> Result<(Vec<PayoutRow>, String)> {
        let page = Page::parse(page_size, page_token)?;
        let rows = store::list(&mut *self.pool.get().await?, &filter, page.after, page.fetch()).await?;
        Ok(page.finish(rows, |r| (r.created_at, r.id)))
    }

    fn overdue(&self, row: &PayoutRow, now: DateTime<Utc>) -> bool {
        now - row.created_at >= chrono::Duration::seconds(self.config.pending_limit_secs as i64)
    }

    /// Delay before the next look at a pending payout: doubling with the status reads.
    fn backoff(&self, row: &PayoutRow) -> chrono::Duration {
        let shift = row.status_check_count.clamp(0, 16) as u32;
        let ms = self.config.retry_delay_ms.saturating_mul(1 << shift).min(self.config.max_retry_delay_ms);
        chrono::Duration::milliseconds(ms as i64)
    }

    /// Applies the decision `decide` makes on the payout's current state, under its row lock.
    async fn apply(
        &self,
        id: Uuid,
        actor: Option<Uuid>,
        note: Option<String>,
        error: Option<String>,
        decide: impl FnOnce(State, bool) -> Result<Decision> + Send,
    ) -> Result<PayoutRow> {
        let mut conn = self.pool.get().await?;
        conn.transaction(async |conn| {
            let row = store::get_for_update(conn, id).await?.ok_or_else(payout_not_found)?;
            let now = Utc::now();
            let decision = decide(state_of(&row)?, self.overdue(&row, now))?;
            let settlement = |status, settle_transaction_id, provider_transaction_id, failure_reason| Settlement {
                status,
                settle_transaction_id,
                provider_transaction_id,
                failure_reason,
                resolver_user_id: actor,
                resolution_note: note.clone(),
            };
            match decision {
                Decision::Capture { provider_transaction_id } => {
                    let tx = payout_ledger::capture(conn, row.user_id, row.id, row.points, actor).await?;
                    let txid = provider_transaction_id.or(row.provider_transaction_id.clone());
                    store::settle(conn, id, settlement("succeeded", tx, txid, None)).await?;
                    tracing::info!(payout = %id, "payout succeeded; held points captured");
                }
                Decision::Release { reason } => {
                    let tx = payout_ledger::release(conn, row.user_id, row.id, row.points, actor, reason.clone()).await?;
                    store::settle(conn, id, settlement("failed", tx, row.provider_transaction_id.clone(), Some(reason)))
                        .await?;
                    tracing::info!(payout = %id, "payout failed; held points returned");
                }
                Decision::Continue(phase) => {
                    let delay = if phase == Phase::Submit { chrono::Duration::zero() } else { self.backoff(&row) };
                    store::set_pending(conn, id, phase.as_str(), now + delay, error).await?;
                }
                Decision::ManualReview => {
                    store::set_manual_review(conn, id, error).await?;
                    tracing::warn!(payout = %id, "payout pending past the limit; sent to manual review");
                }
                Decision::Keep if row.status == "pending" => {
                    let phase = row.phase.clone();
                    store::set_pending(conn, id, &phase, now + self.backoff(&row), error).await?;
                }
                Decision::Keep => {}
            }
            store::get(conn, id).await?.ok_or_else(payout_not_found)
        })
        .await
    }

    /// Reads the transfer status and applies what it proves. `Err` of the read: nothing proven.
    async fn read_and_apply(&self, row: &PayoutRow) -> Result<(PayoutRow, bool)> {
        let read = self.provider()?.status(row.reference_id).await;
        store::count_status_check(&mut *self.pool.get().await?, row.id).await?;
        let answered = read.is_ok();
        let error = read.as_ref().err().map(|e| e.to_string());
        let read = read.ok();
        let row = self
            .apply(row.id, None, None, error, |state, overdue| Ok(payout_flow::after_status(state, read.as_ref(), overdue)))
            .await?;
        Ok((row, answered))
    }

    /// One worker step for a claimed payout: the call its state asks for, then the rules.
    pub async fn step(&self, row: PayoutRow) -> Result<PayoutRow> {
        match payout_flow::next_call(state_of(&row)?) {
            Call::Nothing => Ok(row),
            Call::ReadStatus => Ok(self.read_and_apply(&row).await?.0),
            Call::Submit => {
                store::count_submit(&mut *self.pool.get().await?, row.id).await?;
                let transfer = Transfer {
                    reference_id: row.reference_id,
                    amount_minor: row.amount_minor,
                    currency: row.currency.clone(),
                    mobile: row.mobile.clone(),
                    external_id: row.id.to_string(),
                    note: "Loyalty cashback".into(),
                };
                let outcome = self.provider()?.submit(&transfer).await;
                let error = match &outcome {
                    Err(e) => Some(e.to_string()),
                    Ok(SubmitOutcome::Refused { status, detail }) => Some(format!("transfer refused ({status}): {detail}")),
                    Ok(_) => None,
                };
                let outcome = outcome.ok();
                self.apply(row.id, None, None, error, |state, overdue| {
                    Ok(payout_flow::after_submit(state, outcome.as_ref(), overdue))
                })
                .await
            }
        }
    }

    /// Administrator: read the status now and apply a confirmed outcome.
    pub async fn refresh(&self, id: &str) -> Result<PayoutRow> {
        let row = self.get(id).await?;
        if matches!(state_of(&row)?, State::Succeeded | State::Failed) {
            return Ok(row);
        }
        let read = self.provider()?.status(row.reference_id).await.map_err(|e| Error::DependencyUnavailable {
            reason: "PROVIDER_UNAVAILABLE",
            message: format!("the payout provider did not answer: {e}"),
        })?;
        store::count_status_check(&mut *self.pool.get().await?, row.id).await?;
        self.apply(row.id, None, None, None, |state, overdue| Ok(payout_flow::after_status(state, Some(&read), overdue)))
            .await
    }

    /// Administrator: settle a payout in manual review with the established outcome.
    pub async fn resolve(&self, actor: Uuid, id: &str, outcome: Option<Outcome>, note: &str) -> Result<PayoutRow> {
        let outcome = outcome.ok_or_else(|| {
            Error::invalid("INVALID_ARGUMENT", "outcome", "outcome must be PAYOUT_STATUS_SUCCEEDED or PAYOUT_STATUS_FAILED")
        })?;
        let note = note.trim();
        if note.is_empty() {
            return Err(Error::invalid("INVALID_ARGUMENT", "note", "a note with the evidence is required"));
        }
        let row = self.get(id).await?;
        if state_of(&row)? != State::ManualReview {
            return Err(not_in_review());
        }
        // A provider that does not answer leaves the administrator's evidence to decide.
        let read: Option<TransferStatus> = self.provider()?.status(row.reference_id).await.ok();
        store::count_status_check(&mut *self.pool.get().await?, row.id).await?;
        self.apply(row.id, Some(actor), Some(note.to_string()), None, |state, _| {
            payout_flow::resolve(state, outcome, read.as_ref()).map_err(|refusal| match refusal {
                ResolveRefusal::NotInReview => not_in_review(),
                ResolveRefusal::Conflict(why) => failed_precondition("PROVIDER_STATUS_CONFLICT", &why),
            })
        })
        .await
    }

    /// A provider callback: a hint to read the status of the payout it names. Unknown references
    /// are accepted (and ignored) so the provider stops retrying.
    pub async fn callback(&self, provider: &str, payload: &serde_json::Map<String, serde_json::Value>) -> Result<()> {
        let ours = self.provider.as_ref().map(|p| p.name());
        if ours != Some(provider) {
            return Err(Error::not_found("PAYOUT_PROVIDER_NOT_FOUND", format!("no payout provider `{provider}`")));
        }
        let text = |k: &str| payload.get(k).and_then(|v| v.as_str()).filter(|s| !s.is_empty());
        let Some(reference) = text("referenceId").or_else(|| text("externalId")) else {
            return Err(Error::invalid("INVALID_ARGUMENT", "payload", "the callback names no referenceId or externalId"));
        };
        let Ok(reference) = Uuid::parse_str(reference) else { return Ok(()) };
        let mut conn = self.pool.get().await?;
        let row = match store::by_reference(&mut conn, provider, reference).await? {
            Some(row) => Some(row),
            // MoMo callbacks carry our `externalId` (the payout id).
            None => store::get(&mut conn, reference).await?.filter(|r| r.provider == provider),
        };
        drop(conn);
        let Some(row) = row else { return Ok(()) };
        if matches!(state_of(&row)?, State::Succeeded | State::Failed) {
            return Ok(());
        }
        if let Err(err) = self.read_and_apply(&row).await {
            // The worker reads it later anyway.
            tracing::warn!(payout = %row.id, error = %err, "status read after a callback failed");
        }
        Ok(())
    }

    /// Claims due payouts for a worker round.
    pub async fn claim(&self) -> Result<Vec<PayoutRow>> {
        let lease = self.config.lease_secs as f64;
        store::claim(&mut *self.pool.get().await?, self.config.batch_size, lease).await
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.config.poll_interval_ms)
    }
}

fn not_in_review() -> Error {
    failed_precondition("PAYOUT_NOT_IN_REVIEW", "the payout is not in manual review")
}
