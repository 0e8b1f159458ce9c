//! Partner events: validation, idempotent ingestion, the award, pending events and reversals.
//! No transport types here.
//!
//! Idempotency rests on the `(partner_id, partner_event_id)` unique key and one transaction per
//! event: the first copy inserts the row and, in the same transaction, resolves the user, applies
//! the rules and posts the award. A copy sent concurrently blocks on the key until the first
//! commits, then reads its result (a replay, or `IDEMPOTENCY_KEY_REUSED` for another body); if the
//! first rolls back (an error), the copy is processed as new. Nothing can award twice.

use chrono::{DateTime, Duration, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{
    caps, check_currency,
    engine::{self, EventFacts},
    event_hash,
    event_store::{
        self as store, EventFilter, EventRow, STATUS_EXPIRED, STATUS_PENDING_USER,
        STATUS_PROCESSED, STATUS_REVERSED,
    },
    parse_id, partners, rule_service, rule_store, tier_service,
};
use crate::{
    config::Config,
    db::DbPool,
    error::{Error, Result},
    identity::identifiers::{normalize_email, normalize_mobile},
    loyalty::ledger::{self, Account, NewTransaction, Posting, TransactionKind},
    paging::Page,
};

/// Most events in one batch.
pub const MAX_BATCH: usize = 1000;
/// Largest `attributes`, as JSON.
const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;
/// How far in the future an occur time may be (clock skew).
const MAX_FUTURE: Duration = Duration::minutes(5);

/// Who the event is for, as sent.
#[derive(Debug, Clone)]
pub enum Customer {
    None,
    UserId(String),
    Email(String),
    Mobile(String),
}

/// An event as a partner sends it.
#[derive(Debug, Clone)]
pub struct IncomingEvent {
    pub partner_event_id: String,
    pub event_type: String,
    pub customer: Customer,
    pub occur_at: Option<DateTime<Utc>>,
    pub amount: Option<(i64, String)>,
    pub attributes: Value,
}

/// The points one rule awarded, as stored in `awards`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AwardLine {
    pub rule_id: Uuid,
    pub rule_version: i32,
    pub base_points: i64,
    pub multiplier_bps: i32,
    pub points: i64,
    pub capped: bool,
}

pub fn awards(row: &EventRow) -> Vec<AwardLine> {
    serde_json::from_value(row.awards.clone()).unwrap_or_default()
}

/// An event with its outcome, and whether the answer repeats an earlier one.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub event: EventRow,
    pub replayed: bool,
}

fn bad(field: &'static str, message: impl Into<String>) -> Error {
    Error::invalid("INVALID_ARGUMENT", field, message)
}

pub fn event_not_found() -> Error {
    Error::not_found("EVENT_NOT_FOUND", "no such event")
}

fn partner_suspended() -> Error {
    Error::permission_denied("PARTNER_SUSPENDED", "the partner is suspended")
}

/// Settings the event service reads.
#[derive(Debug, Clone, Copy)]
pub struct EarningSettings {
    pub pending_ttl: Duration,
    pub tier_window: Duration,
    /// The loyalty time zone (IANA), whose calendar cap periods follow.
    pub time_zone: &'static str,
}

impl EarningSettings {
    pub fn from_config(config: &Config) -> Self {
        let earning = &config.loyalty.earning;
        Self {
            pending_ttl: Duration::days(i64::from(earning.pending_event_ttl_days)),
            tier_window: Duration::days(i64::from(earning.tier_window_days)),
            time_zone: time_zone(config),
        }
    }
}

/// The loyalty time zone (`loyalty.report_time_zone`), kept for the life of the process.
pub fn time_zone(config: &Config) -> &'static str {
    static ZONE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ZONE.get_or_init(|| config.loyalty.report_time_zone.clone())
}

#[derive(Clone)]
pub struct EventService {
    pool: DbPool,
    settings: EarningSettings,
}

/// A validated event, ready to insert.
struct Checked {
    row: EventRow,
}

impl EventService {
    pub fn new(pool: DbPool, settings: EarningSettings) -> Self {
        Self { pool, settings }
    }

    /// The partner's declared event types; refuses a suspended or vanished partner.
    async fn partner(&self, conn: &mut AsyncPgConnection, partner: Uuid) -> Result<Vec<String>> {
        let facts = partners::facts(conn, partner).await?.ok_or_else(|| {
            Error::unauthenticated("UNAUTHENTICATED", "a valid X-API-Key is required")
        })?;
        if !facts.active {
            return Err(partner_suspended());
        }
        Ok(facts.event_types)
    }

    /// Ingests one event (see the module comment for idempotency).
    pub async fn ingest(&self, partner: Uuid, event: IncomingEvent) -> Result<Outcome> {
        let mut conn = self.pool.get().await?;
        let types = self.partner(&mut conn, partner).await?;
        let checked = check(partner, &types, event, Utc::now())?;
        self.ingest_checked(&mut conn, checked).await
    }

    /// Ingests up to [`MAX_BATCH`] events, each on its own: a result or an error per event, in
    /// request order. Events run one after the other, so a repeated id is a replay of the first.
    pub async fn ingest_batch(
        &self,
        partner: Uuid,
        events: Vec<IncomingEvent>,
    ) -> Result<Vec<Result<Outcome>>> {
        if events.len() > MAX_BATCH {
            return Err(Error::invalid(
                "BATCH_TOO_LARGE",
                "events",
                format!("a batch holds at most {MAX_BATCH} events"),
            ));
        }
        if events.is_empty() {
            return Err(bad("events", "a batch holds at least one event"));
        }
        let mut conn = self.pool.get().await?;
        let types = self.partner(&mut conn, partner).await?;
        let now = Utc::now();
        let mut results = Vec::with_capacity(events.len());
        for event in events {
            let result = match check(partner, &types, event, now) {
                Ok(checked) => self.ingest_checked(&mut conn, checked).await,
                Err(err) => Err(err),
            };
            if let Err(Error::Unavailable(_) | Error::Internal(_)) = &result {
                tracing::warn!("batch event failed on the database; the partner may retry it");
            }
            results.push(result);
        }
        Ok(results)
    }

    async fn ingest_checked(
        &self,
        conn: &mut AsyncPgConnection,
        checked: Checked,
    ) -> Result<Outcome> {
        let settings = self.settings;
        conn.transaction(async |conn| {
            let mut row = checked.row;
            if !store::insert_new(conn, &row).await? {
                let first = store::by_key(conn, row.partner_id, &row.partner_event_id)
                    .await?
                    .ok_or_else(|| {
                        Error::internal("an event key conflicted but its row is gone")
                    })?;
                if first.request_hash != row.request_hash {
                    return Err(Error::already_exists(
                        "IDEMPOTENCY_KEY_REUSED",
                        format!(
                            "event `{}` was already sent with a different body",
                            row.partner_event_id
                        ),
                    ));
                }
                return Ok(Outcome {
                    event: first,
                    replayed: true,
                });
            }
            let user = match (&row.user_id, &row.email, &row.mobile) {
                (Some(id), ..) => {
                    if !store::user_exists(conn, *id).await? {
                        return Err(rule_service::user_not_found());
                    }
                    Some(*id)
                }
                (None, Some(email), _) => store::user_by_verified_email(conn, email).await?,
                (None, None, Some(mobile)) => store::user_by_verified_mobile(conn, mobile).await?,
                _ => None,
            };
            match user {
                Some(user) => apply(conn, &mut row, user, settings).await?,
                None => {
                    row.status = STATUS_PENDING_USER;
                    row.pending_expires_at = Some(row.received_at + settings.pending_ttl);
                }
            }
            store::save_outcome(conn, &row).await?;
            Ok(Outcome {
                event: row,
                replayed: false,
            })
        })
        .await
    }

    /// Applies a pending event to the user who now has its email or mobile; `false` when it was
    /// no longer pending (applied, reversed or expired meanwhile).
    pub async fn apply_pending(&self, event_id: Uuid, user: Uuid) -> Result<bool> {
        let settings = self.settings;
        let mut conn = self.pool.get().await?;
        conn.transaction(async |conn| {
            let Some(mut row) = store::get_for_update(conn, event_id).await? else { return Ok(false) };
            if row.status != STATUS_PENDING_USER || row.pending_expires_at.is_some_and(|t| t <= Utc::now()) {
                return Ok(false);
            }
            row.pending_expires_at = None;
            apply(conn, &mut row, user, settings).await?;
            store::save_outcome(conn, &row).await?;
            tracing::info!(event_id = %event_id, user_id = %user, points = row.points, "pending loyalty event applied");
            Ok(true)
        })
        .await
    }

    /// Reverses one of the partner's events: takes back exactly its award, or cancels it while
    /// pending. A second reversal answers with the first.
    pub async fn reverse(
        &self,
        partner: Uuid,
        partner_event_id: &str,
        reason: &str,
    ) -> Result<Outcome> {
        if partner_event_id.is_empty() {
            return Err(bad("partner_event_id", "`partner_event_id` is required"));
        }
        if reason.chars().count() > 256 {
            return Err(bad("reason", "the reason holds at most 256 characters"));
        }
        let settings = self.settings;
        let mut conn = self.pool.get().await?;
        self.partner(&mut conn, partner).await?;
        conn.transaction(async |conn| {
            let row = store::by_key_for_update(conn, partner, partner_event_id)
                .await?
                .ok_or_else(event_not_found)?;
            match row.status {
                STATUS_REVERSED => {
                    return Ok(Outcome {
                        event: row,
                        replayed: true,
                    });
                }
                STATUS_EXPIRED => {
                    return Err(super::failed(
                        "EVENT_EXPIRED",
                        "the event expired while pending; nothing was awarded",
                    ));
                }
                _ => {}
            }
            let reversal = match (row.status, row.transaction_id) {
                (STATUS_PROCESSED, Some(tx)) => {
                    let reason = if reason.is_empty() {
                        "partner reversal".to_string()
                    } else {
                        reason.to_string()
                    };
                    // Cap counters before the ledger, the lock order of awards (no deadlock with an
                    // award to the same user); a refused reversal rolls both back.
                    release_caps(conn, &row, settings).await?;
                    Some(
                        ledger::reverse(conn, tx, TransactionKind::Reversal, Some(reason), None)
                            .await?,
                    )
                }
                _ => None,
            };
            let event = store::mark_reversed(conn, row.id, reversal).await?;
            tracing::info!(event_id = %event.id, "loyalty event reversed");
            Ok(Outcome {
                event,
                replayed: false,
            })
        })
        .await
    }

    pub async fn get(&self, id: &str) -> Result<EventRow> {
        let id = parse_id(id, "event_id")?;
        let mut conn = self.pool.get().await?;
        store::get(&mut conn, id).await?.ok_or_else(event_not_found)
    }

    pub async fn list(
        &self,
        filter: EventFilter,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<EventRow>, String)> {
        let page = Page::parse(page_size, page_token)?;
        let mut conn = self.pool.get().await?;
        let rows = store::list(&mut conn, &filter, page.after, page.fetch()).await?;
        Ok(page.finish(rows, |r| (r.received_at, r.id)))
    }

    /// Runs the pending matcher once: applies what can be applied and expires the overdue;
    /// (applied, expired).
    pub async fn match_pending(&self) -> Result<(usize, usize)> {
        let mut applied = 0;
        loop {
            let matches = {
                let mut conn = self.pool.get().await?;
                store::pending_matches(&mut conn, 500).await?
            };
            if matches.is_empty() {
                break;
            }
            let mut progressed = false;
            for (event, user) in matches {
                if self.apply_pending(event, user).await? {
                    applied += 1;
                    progressed = true;
                }
            }
            if !progressed {
                break;
            }
        }
        let mut conn = self.pool.get().await?;
        let expired = store::expire_pending(&mut conn).await?;
        Ok((applied, expired))
    }
}

/// Validates an event and builds its row.
fn check(
    partner: Uuid,
    types: &[String],
    event: IncomingEvent,
    now: DateTime<Utc>,
) -> Result<Checked> {
    let id = &event.partner_event_id;
    if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(bad(
            "event.partner_event_id",
            "`partner_event_id` is 1 to 128 printable ASCII characters",
        ));
    }
    if event.event_type.is_empty() {
        return Err(bad("event.event_type", "`event_type` is required"));
    }
    if !types.contains(&event.event_type) {
        return Err(partners::unknown_event_type(
            &event.event_type,
            "event.event_type",
        ));
    }
    let (user_id, email, mobile, customer) = match &event.customer {
        Customer::None => {
            return Err(bad(
                "event.user",
                "the event needs a `user_id`, `email` or `mobile`",
            ));
        }
        Customer::UserId(u) => {
            let u = parse_id(u, "event.user_id")?;
            (Some(u), None, None, format!("user:{u}"))
        }
        Customer::Email(e) => {
            let e = normalize_email(e)?.to_lowercase();
            (None, Some(e.clone()), None, format!("email:{e}"))
        }
        Customer::Mobile(m) => {
            let m = normalize_mobile(m)?;
            (None, None, Some(m.clone()), format!("mobile:{m}"))
        }
    };
    let occur_at = event
        .occur_at
        .ok_or_else(|| bad("event.occur_time", "`occur_time` is required"))?;
    if occur_at > now + MAX_FUTURE {
        return Err(bad(
            "event.occur_time",
            "`occur_time` is more than 5 minutes in the future",
        ));
    }
    if let Some((amount, currency)) = &event.amount {
        if *amount < 0 {
            return Err(Error::invalid(
                "INVALID_AMOUNT",
                "event.amount.amount_minor",
                "the amount must not be negative",
            ));
        }
        check_currency(currency, "event.amount.currency")?;
    }
    let attributes = if event.attributes.is_null() {
        Value::Object(Default::default())
    } else {
        event.attributes
    };
    if serde_json::to_vec(&attributes)
        .map(|b| b.len())
        .unwrap_or(usize::MAX)
        > MAX_ATTRIBUTES_BYTES
    {
        return Err(bad(
            "event.attributes",
            "`attributes` hold at most 16 KiB of JSON",
        ));
    }
    // Microseconds: what Postgres keeps, so a replay read back hashes the same.
    let occur_micros = occur_at.timestamp_micros();
    let occur_at = DateTime::from_timestamp_micros(occur_micros).expect("in range");
    let request_hash = event_hash::hash(
        &event.event_type,
        &customer,
        occur_micros,
        event.amount.as_ref().map(|(a, c)| (*a, c.as_str())),
        &attributes,
    );
    Ok(Checked {
        row: EventRow {
            id: Uuid::new_v4(),
            partner_id: partner,
            partner_event_id: event.partner_event_id,
            request_hash,
            event_type: event.event_type,
            user_id,
            email,
            mobile,
            occur_at,
            amount_minor: event.amount.as_ref().map(|a| a.0),
            currency: event.amount.map(|a| a.1),
            attributes,
            status: STATUS_PROCESSED,
            resolved_user_id: None,
            points: 0,
            awards: Value::Array(Vec::new()),
            transaction_id: None,
            reversal_transaction_id: None,
            received_at: now,
            processed_at: None,
            pending_expires_at: None,
            reversed_at: None,
        },
    })
}

pub fn facts_of(row: &EventRow) -> EventFacts {
    EventFacts {
        partner_id: row.partner_id,
        event_type: row.event_type.clone(),
        occur_at: row.occur_at,
        amount_minor: row.amount_minor,
        currency: row.currency.clone(),
        attributes: row.attributes.clone(),
    }
}

/// Applies the rules to an event for `user` inside the caller's transaction: caps, the ledger
/// award and the tier upgrade. Fills the row's outcome; the caller saves it.
async fn apply(
    conn: &mut AsyncPgConnection,
    row: &mut EventRow,
    user: Uuid,
    settings: EarningSettings,
) -> Result<()> {
    let facts = facts_of(row);
    let user_facts = store::user_facts(conn, user)
        .await?
        .ok_or_else(rule_service::user_not_found)?;
    let tier = tier_service::tier_facts(conn, user).await?;
    let candidates = rule_store::candidates(conn, row.partner_id, &row.event_type).await?;
    let matched = candidates
        .into_iter()
        .filter(|r| engine::matches(r, &facts, &user_facts, tier.as_ref()).is_ok())
        .collect();
    let mut selected = engine::select(matched);
    // Counter rows are locked in rule-id order, the same in every transaction.
    selected.sort_by_key(|r| r.version.rule_id);
    let mut lines = Vec::with_capacity(selected.len());
    for rule in &selected {
        let computed = engine::compute(rule, &facts, tier.as_ref());
        let rule_caps = engine::caps(rule);
        let points = if rule_caps.is_empty() || computed.points == 0 {
            computed.points
        } else {
            caps::grant(
                conn,
                rule.version.rule_id,
                user,
                &rule_caps,
                row.occur_at,
                settings.time_zone,
                computed.points,
            )
            .await?
        };
        lines.push(AwardLine {
            rule_id: rule.version.rule_id,
            rule_version: rule.version.version,
            base_points: computed.base_points,
            multiplier_bps: computed.multiplier_bps,
            points,
            capped: points < computed.points,
        });
    }
    let total: i64 = lines.iter().map(|l| l.points).sum();
    if total > 0 {
        let mut postings = vec![Posting {
            account: Account::PartnerIssuance(row.partner_id),
            points: -total,
            rule: None,
        }];
        postings.extend(lines.iter().filter(|l| l.points > 0).map(|l| Posting {
            account: Account::User(user),
            points: l.points,
            rule: Some((l.rule_id, l.rule_version)),
        }));
        let tx = ledger::post(
            conn,
            NewTransaction {
                kind: TransactionKind::Award,
                user_id: user,
                event_id: Some(row.id),
                order_id: None,
                payout_id: None,
                reversed_transaction_id: None,
                reason: None,
                actor_user_id: None,
                postings,
            },
        )
        .await?;
        row.transaction_id = Some(tx);
    }
    row.status = STATUS_PROCESSED;
    row.resolved_user_id = Some(user);
    row.points = total;
    row.awards = serde_json::to_value(&lines).expect("json");
    row.processed_at = Some(Utc::now());
    if total > 0 {
        // The event's own points count in the window: save them before the tier looks.
        store::save_outcome(conn, row).await?;
        tier_service::upgrade_after_award(conn, user, settings.tier_window).await?;
    }
    Ok(())
}

/// Gives back to the caps what a reversed event's awards had counted.
async fn release_caps(
    conn: &mut AsyncPgConnection,
    row: &EventRow,
    settings: EarningSettings,
) -> Result<()> {
    let Some(user) = row.resolved_user_id else {
        return Ok(());
    };
    for line in awards(row).iter().filter(|l| l.points > 0) {
        let Some(rule) = rule_store::get(conn, line.rule_id, Some(line.rule_version)).await? else {
            continue;
        };
        let rule_caps = engine::caps(&rule);
        if !rule_caps.is_empty() {
            caps::release(
                conn,
                line.rule_id,
                user,
                &rule_caps,
                row.occur_at,
                settings.time_zone,
                line.points,
            )
            .await?;
        }
    }
    Ok(())
}
