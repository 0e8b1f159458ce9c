//! Earning rules: validation, immutable versions and dry runs. No transport types here.

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use super::{
    caps::{self, DAY, LIFETIME},
    check_currency,
    engine::{self, Cap, EventFacts, Mismatch, TierFacts, TierMultiplier, UserFacts},
    parse_id, partners,
    rule_store::{
        self as store, RuleFilter, RuleRow, RuleVersionRow, STATUS_ACTIVE, STATUS_DISABLED,
    },
    tier_service,
};
use crate::{
    db::DbPool,
    error::{Error, Result},
    paging,
};

/// How a rule computes base points.
#[derive(Debug, Clone, PartialEq)]
pub enum PointsSpec {
    None,
    Fixed(i64),
    Rate {
        points: i64,
        per_amount_minor: i64,
        currency: String,
    },
}

/// A rule as written by an administrator (all fields of one version).
#[derive(Debug, Clone)]
pub struct RuleSpec {
    pub name: String,
    pub description: String,
    pub partner_id: String,
    pub event_type: String,
    pub condition: String,
    pub points: PointsSpec,
    pub rounding: i32,
    pub tier_multipliers: Vec<TierMultiplier>,
    pub caps: Vec<(i32, i64)>,
    pub start_at: Option<DateTime<Utc>>,
    pub end_at: Option<DateTime<Utc>>,
    pub priority: i32,
    pub stacking: i32,
    pub status: i32,
}

/// The paths `UpdateRule` may name.
const UPDATABLE: [&str; 15] = [
    "name",
    "description",
    "partner_id",
    "event_type",
    "condition",
    "fixed_points",
    "rate",
    "rounding",
    "tier_multipliers",
    "caps",
    "start_time",
    "end_time",
    "priority",
    "stacking",
    "status",
];

pub fn rule_not_found() -> Error {
    Error::not_found("RULE_NOT_FOUND", "no such rule")
}

fn version_not_found() -> Error {
    Error::not_found("RULE_VERSION_NOT_FOUND", "the rule has no such version")
}

fn bad(field: &'static str, message: impl Into<String>) -> Error {
    Error::invalid("INVALID_ARGUMENT", field, message)
}

impl RuleSpec {
    /// The spec of a stored version (the base of an update).
    pub fn of(row: &RuleVersionRow) -> Self {
        let points = match (
            row.fixed_points,
            row.rate_points,
            row.rate_per_amount_minor,
            &row.rate_currency,
        ) {
            (Some(f), ..) => PointsSpec::Fixed(f),
            (None, Some(p), Some(per), Some(c)) => PointsSpec::Rate {
                points: p,
                per_amount_minor: per,
                currency: c.clone(),
            },
            _ => PointsSpec::None,
        };
        Self {
            name: row.name.clone(),
            description: row.description.clone(),
            partner_id: row.partner_id.map(|p| p.to_string()).unwrap_or_default(),
            event_type: row.event_type.clone(),
            condition: row.condition.clone(),
            points,
            rounding: i32::from(row.rounding),
            tier_multipliers: serde_json::from_value(row.tier_multipliers.clone())
                .unwrap_or_default(),
            caps: serde_json::from_value::<Vec<Cap>>(row.caps.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|c| (i32::from(c.period), c.max_points))
                .collect(),
            start_at: row.start_at,
            end_at: row.end_at,
            priority: row.priority,
            stacking: i32::from(row.stacking),
            status: i32::from(row.status),
        }
    }

    /// Takes the fields named by `paths` from `new`.
    fn merge(&mut self, new: RuleSpec, paths: &[String]) -> Result<()> {
        if paths.is_empty() {
            return Err(Error::invalid(
                "INVALID_UPDATE_MASK",
                "update_mask",
                "the update mask names no field",
            ));
        }
        for path in paths {
            match path.as_str() {
                "name" => self.name = new.name.clone(),
                "description" => self.description = new.description.clone(),
                "partner_id" => self.partner_id = new.partner_id.clone(),
                "event_type" => self.event_type = new.event_type.clone(),
                "condition" => self.condition = new.condition.clone(),
                "fixed_points" | "rate" => self.points = new.points.clone(),
                "rounding" => self.rounding = new.rounding,
                "tier_multipliers" => self.tier_multipliers = new.tier_multipliers.clone(),
                "caps" => self.caps = new.caps.clone(),
                "start_time" => self.start_at = new.start_at,
                "end_time" => self.end_at = new.end_at,
                "priority" => self.priority = new.priority,
                "stacking" => self.stacking = new.stacking,
                "status" => self.status = new.status,
                other => {
                    return Err(Error::invalid(
                        "INVALID_UPDATE_MASK",
                        "update_mask",
                        format!(
                            "`{other}` cannot be updated; updatable: {}",
                            UPDATABLE.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Checks a spec against the rules of `CreateRule` and makes the version row (`rule_id` and
/// `version` to be filled by the caller).
pub async fn validate(
    conn: &mut AsyncPgConnection,
    spec: &RuleSpec,
    actor: Option<Uuid>,
) -> Result<RuleVersionRow> {
    let name = spec.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(bad(
            "rule.name",
            "the name is required, at most 200 characters",
        ));
    }
    if spec.description.chars().count() > 2000 {
        return Err(bad(
            "rule.description",
            "the description holds at most 2000 characters",
        ));
    }
    if spec.event_type.is_empty() {
        return Err(bad("rule.event_type", "`event_type` is required"));
    }
    partners::check_event_type(&spec.event_type, "rule.event_type")?;
    let partner_id = if spec.partner_id.is_empty() {
        None
    } else {
        let id = parse_id(&spec.partner_id, "rule.partner_id")?;
        let partner = partners::facts(conn, id)
            .await?
            .ok_or_else(partners::partner_not_found)?;
        if !partner.event_types.contains(&spec.event_type) {
            return Err(partners::unknown_event_type(
                &spec.event_type,
                "rule.event_type",
            ));
        }
        Some(id)
    };
    if !spec.condition.trim().is_empty() {
        engine::compile(&spec.condition)?;
    }
    let (fixed, rate) = match &spec.points {
        PointsSpec::None => {
            return Err(bad("rule.points", "a rule needs `fixed_points` or `rate`"));
        }
        PointsSpec::Fixed(n) if *n <= 0 => {
            return Err(bad("rule.fixed_points", "`fixed_points` must be positive"));
        }
        PointsSpec::Fixed(n) => (Some(*n), None),
        PointsSpec::Rate {
            points,
            per_amount_minor,
            ..
        } if *points <= 0 || *per_amount_minor <= 0 => {
            return Err(bad(
                "rule.rate",
                "`rate.points` and `rate.per_amount_minor` must be positive",
            ));
        }
        PointsSpec::Rate {
            points,
            per_amount_minor,
            currency,
        } => {
            check_currency(currency, "rule.rate.currency")?;
            (None, Some((*points, *per_amount_minor, currency.clone())))
        }
    };
    let rounding = match spec.rounding {
        0 => engine::ROUND_DOWN,
        1..=4 => spec.rounding as i16,
        _ => return Err(bad("rule.rounding", "unknown rounding mode")),
    };
    let mut seen_tiers = Vec::new();
    for m in &spec.tier_multipliers {
        if !(0..=100_000).contains(&m.multiplier_bps) {
            return Err(bad(
                "rule.tier_multipliers",
                "a multiplier is 0 to 100000 basis points",
            ));
        }
        let tier = parse_id(&m.tier_id, "rule.tier_multipliers.tier_id")?;
        if seen_tiers.contains(&tier) {
            return Err(bad("rule.tier_multipliers", "a tier appears twice"));
        }
        super::tier_store::get(conn, tier)
            .await?
            .ok_or_else(tier_service::tier_not_found)?;
        seen_tiers.push(tier);
    }
    let mut caps = Vec::new();
    for (period, max) in &spec.caps {
        if !(i32::from(DAY)..=i32::from(LIFETIME)).contains(period) {
            return Err(bad("rule.caps.period", "a cap needs a period"));
        }
        if *max <= 0 {
            return Err(bad("rule.caps.max_points", "`max_points` must be positive"));
        }
        if caps.iter().any(|c: &Cap| i32::from(c.period) == *period) {
            return Err(bad("rule.caps", "at most one cap per period"));
        }
        caps.push(Cap {
            period: *period as i16,
            max_points: *max,
        });
    }
    if let (Some(s), Some(e)) = (spec.start_at, spec.end_at) {
        if e <= s {
            return Err(bad(
                "rule.end_time",
                "`end_time` must be after `start_time`",
            ));
        }
    }
    let stacking = match spec.stacking {
        0 | 1 => 1,
        2 => engine::STACKING_EXCLUSIVE,
        _ => return Err(bad("rule.stacking", "unknown stacking mode")),
    };
    let status = match spec.status {
        0 | 1 => STATUS_ACTIVE,
        2 => STATUS_DISABLED,
        _ => return Err(bad("rule.status", "unknown status")),
    };
    Ok(RuleVersionRow {
        rule_id: Uuid::nil(),
        version: 0,
        name: name.to_string(),
        description: spec.description.clone(),
        partner_id,
        event_type: spec.event_type.clone(),
        condition: spec.condition.trim().to_string(),
        fixed_points: fixed,
        rate_points: rate.as_ref().map(|r| r.0),
        rate_per_amount_minor: rate.as_ref().map(|r| r.1),
        rate_currency: rate.map(|r| r.2),
        rounding,
        tier_multipliers: serde_json::to_value(&spec.tier_multipliers).expect("json"),
        caps: serde_json::to_value(&caps).expect("json"),
        start_at: spec.start_at,
        end_at: spec.end_at,
        priority: spec.priority,
        stacking,
        status,
        updater_user_id: actor,
        created_at: Utc::now(),
    })
}

/// A dry run's sample: the event facts and, optionally, a real user.
pub struct Sample {
    pub event: EventFacts,
    pub user_id: String,
}

/// What a dry run explains.
#[derive(Debug, Default)]
pub struct DryRun {
    pub matched: bool,
    pub mismatch_reason: String,
    pub condition_error: String,
    pub base_points: i64,
    pub multiplier_bps: i32,
    pub uncapped_points: i64,
    pub points: i64,
    pub capped: bool,
}

/// Which rule a dry run evaluates.
pub enum DryRunTarget {
    Saved { rule_id: String, version: i32 },
    Draft(RuleSpec),
}

#[derive(Clone)]
pub struct RuleService {
    pool: DbPool,
    time_zone: &'static str,
}

impl RuleService {
    pub fn new(pool: DbPool, time_zone: &'static str) -> Self {
        Self { pool, time_zone }
    }

    pub async fn create(&self, spec: RuleSpec, actor: Option<Uuid>) -> Result<RuleRow> {
        let mut conn = self.pool.get().await?;
        let mut row = validate(&mut conn, &spec, actor).await?;
        row.rule_id = Uuid::new_v4();
        row.version = 1;
        let created = store::insert_rule(&mut conn, &row).await?;
        tracing::info!(rule_id = %row.rule_id, "loyalty rule created");
        Ok(created)
    }

    pub async fn get(&self, id: &str, version: i32) -> Result<RuleRow> {
        let id = parse_id(id, "rule_id")?;
        let mut conn = self.pool.get().await?;
        get_version(&mut conn, id, version).await
    }

    pub async fn list(
        &self,
        filter: RuleFilter,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<RuleRow>, String)> {
        let size = paging::page_size(page_size)?;
        let after = if page_token.is_empty() {
            None
        } else {
            Some(decode_rule_token(page_token)?)
        };
        let mut conn = self.pool.get().await?;
        let mut rows = store::list_current(&mut conn, &filter, after, size + 1).await?;
        let next = if rows.len() as i64 > size {
            rows.truncate(size as usize);
            rows.last().map(encode_rule_token).unwrap_or_default()
        } else {
            String::new()
        };
        Ok((rows, next))
    }

    pub async fn update(
        &self,
        id: &str,
        new: RuleSpec,
        paths: &[String],
        actor: Option<Uuid>,
    ) -> Result<RuleRow> {
        let id = parse_id(id, "rule.id")?;
        let mut conn = self.pool.get().await?;
        let row = conn
            .transaction(async |conn| {
                let (current, created_at) = store::current_version_for_update(conn, id)
                    .await?
                    .ok_or_else(rule_not_found)?;
                let base = store::get(conn, id, Some(current))
                    .await?
                    .ok_or_else(rule_not_found)?;
                let mut spec = RuleSpec::of(&base.version);
                spec.merge(new, paths)?;
                let mut row = validate(conn, &spec, actor).await?;
                row.rule_id = id;
                row.version = current + 1;
                let version = store::insert_version(conn, &row).await?;
                Ok::<_, Error>(RuleRow {
                    version,
                    rule_created_at: created_at,
                })
            })
            .await?;
        tracing::info!(rule_id = %id, version = row.version.version, "loyalty rule updated");
        Ok(row)
    }

    pub async fn versions(
        &self,
        id: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<RuleRow>, String)> {
        let id = parse_id(id, "rule_id")?;
        let size = paging::page_size(page_size)?;
        let before = if page_token.is_empty() {
            None
        } else {
            Some(page_token.parse::<i32>().map_err(|_| {
                Error::invalid(
                    "INVALID_PAGE_TOKEN",
                    "page_token",
                    "the page token is not valid",
                )
            })?)
        };
        let mut conn = self.pool.get().await?;
        if !store::exists(&mut conn, id).await? {
            return Err(rule_not_found());
        }
        let mut rows = store::versions(&mut conn, id, before, size + 1).await?;
        let next = if rows.len() as i64 > size {
            rows.truncate(size as usize);
            rows.last()
                .map(|r| r.version.version.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok((rows, next))
    }

    /// Evaluates a rule against a sample event, writing nothing.
    pub async fn dry_run(&self, target: DryRunTarget, sample: Sample) -> Result<DryRun> {
        let mut conn = self.pool.get().await?;
        let rule = match target {
            DryRunTarget::Saved { rule_id, version } => {
                let id = parse_id(&rule_id, "rule_id")?;
                get_version(&mut conn, id, version).await?
            }
            DryRunTarget::Draft(spec) => {
                let mut row = validate(&mut conn, &spec, None).await?;
                row.rule_id = Uuid::nil();
                RuleRow {
                    rule_created_at: row.created_at,
                    version: row,
                }
            }
        };
        let (user, tier) = if sample.user_id.is_empty() {
            (UserFacts::default(), None)
        } else {
            let id = parse_id(&sample.user_id, "user_id")?;
            let user = super::event_store::user_facts(&mut conn, id)
                .await?
                .ok_or_else(user_not_found)?;
            let tier = tier_service::tier_facts(&mut conn, id).await?;
            (user, tier)
        };
        let mut out = DryRun::default();
        match engine::matches(&rule, &sample.event, &user, tier.as_ref()) {
            Ok(()) => out.matched = true,
            Err(mismatch) => {
                out.mismatch_reason = mismatch.describe();
                if let Mismatch::ConditionError(e) = mismatch {
                    out.condition_error = e;
                }
                return Ok(out);
            }
        }
        let computed = engine::compute(&rule, &sample.event, tier.as_ref());
        out.base_points = computed.base_points;
        out.multiplier_bps = computed.multiplier_bps;
        out.uncapped_points = computed.points;
        out.points = computed.points;
        let rule_caps = engine::caps(&rule);
        if let (Some(user_id), false) = (user.id, rule_caps.is_empty()) {
            let usage = caps::usage(
                &mut conn,
                rule.version.rule_id,
                user_id,
                &rule_caps,
                sample.event.occur_at,
                self.time_zone,
            )
            .await?;
            out.points = caps::allowed(computed.points, &usage);
        } else if !rule_caps.is_empty() {
            let usage: Vec<(i64, i64)> = rule_caps.iter().map(|c| (0, c.max_points)).collect();
            out.points = caps::allowed(computed.points, &usage);
        }
        out.capped = out.points < out.uncapped_points;
        Ok(out)
    }
}

pub fn user_not_found() -> Error {
    Error::not_found("USER_NOT_FOUND", "no such user")
}

async fn get_version(conn: &mut AsyncPgConnection, id: Uuid, version: i32) -> Result<RuleRow> {
    let wanted = (version > 0).then_some(version);
    match store::get(conn, id, wanted).await? {
        Some(row) => Ok(row),
        None if wanted.is_some() && store::exists(conn, id).await? => Err(version_not_found()),
        None => Err(rule_not_found()),
    }
}

fn encode_rule_token(row: &RuleRow) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    URL_SAFE_NO_PAD.encode(format!(
        "{}:{}:{}",
        row.version.priority,
        row.rule_created_at.timestamp_micros(),
        row.version.rule_id
    ))
}

fn decode_rule_token(token: &str) -> Result<(i32, DateTime<Utc>, Uuid)> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let bad = || {
        Error::invalid(
            "INVALID_PAGE_TOKEN",
            "page_token",
            "the page token is not valid",
        )
    };
    let raw =
        String::from_utf8(URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?).map_err(|_| bad())?;
    let mut parts = raw.splitn(3, ':');
    let priority = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let at = parts
        .next()
        .and_then(|p| p.parse().ok())
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(bad)?;
    let id = parts
        .next()
        .and_then(|p| Uuid::parse_str(p).ok())
        .ok_or_else(bad)?;
    Ok((priority, at, id))
}

pub fn tier_facts_of(row: &super::tier_store::TierRow) -> TierFacts {
    TierFacts {
        id: row.id,
        name: row.name.clone(),
        earning_multiplier_bps: row.earning_multiplier_bps,
    }
}
