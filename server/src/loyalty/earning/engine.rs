//! The pure part of earning: which rules match an event, and how many points each gives before
//! caps. No SQL here; the event service feeds it facts and applies the caps in the database.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
};

use cel::Program;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::rule_store::{RuleRow, STATUS_ACTIVE};
use crate::error::Result;

/// Rounding modes (= proto `RoundingMode`; 0 means DOWN).
pub const ROUND_DOWN: i16 = 1;
pub const ROUND_UP: i16 = 2;
pub const ROUND_HALF_UP: i16 = 3;
pub const ROUND_HALF_EVEN: i16 = 4;
/// Stacking modes (= proto `StackingMode`; 0 means STACKABLE).
pub const STACKING_EXCLUSIVE: i16 = 2;
/// 1x, in basis points.
pub const ONE_X_BPS: i32 = 10_000;

/// A rule's multiplier for one tier, as stored in `tier_multipliers`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TierMultiplier {
    pub tier_id: String,
    pub multiplier_bps: i32,
}

/// A per-user cap, as stored in `caps` (`period` = proto `CapPeriod`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Cap {
    pub period: i16,
    pub max_points: i64,
}

pub fn tier_multipliers(row: &RuleRow) -> Vec<TierMultiplier> {
    serde_json::from_value(row.version.tier_multipliers.clone()).unwrap_or_default()
}

pub fn caps(row: &RuleRow) -> Vec<Cap> {
    serde_json::from_value(row.version.caps.clone()).unwrap_or_default()
}

/// What the rules see of an event.
#[derive(Debug, Clone)]
pub struct EventFacts {
    pub partner_id: Uuid,
    pub event_type: String,
    pub occur_at: DateTime<Utc>,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    pub attributes: Value,
}

/// What the rules see of the user.
#[derive(Debug, Clone, Default)]
pub struct UserFacts {
    pub id: Option<Uuid>,
    pub roles: Vec<String>,
    pub properties: Value,
}

/// What the rules see of the user's tier.
#[derive(Debug, Clone)]
pub struct TierFacts {
    pub id: Uuid,
    pub name: String,
    pub earning_multiplier_bps: i32,
}

/// The CEL variables `event`, `user` and `tier`.
pub fn variables(
    event: &EventFacts,
    user: &UserFacts,
    tier: Option<&TierFacts>,
) -> [(&'static str, Value); 3] {
    let event = json!({
        "event_type": event.event_type,
        "partner_id": event.partner_id.to_string(),
        "amount_minor": event.amount_minor.unwrap_or(0),
        "currency": event.currency.clone().unwrap_or_default(),
        "occur_time": event.occur_at.to_rfc3339(),
        "attributes": if event.attributes.is_object() { event.attributes.clone() } else { json!({}) },
    });
    let user = json!({
        "id": user.id.map(|u| u.to_string()).unwrap_or_default(),
        "roles": user.roles,
        "properties": if user.properties.is_object() { user.properties.clone() } else { json!({}) },
    });
    let tier = tier.map_or(
        Value::Null,
        |t| json!({"id": t.id.to_string(), "name": t.name}),
    );
    [("event", event), ("user", user), ("tier", tier)]
}

/// Compiles a rule condition, checking it over sample values of the three variables.
pub fn compile(condition: &str) -> Result<Program> {
    let sample = EventFacts {
        partner_id: Uuid::nil(),
        event_type: String::new(),
        occur_at: DateTime::<Utc>::UNIX_EPOCH,
        amount_minor: Some(0),
        currency: Some(String::new()),
        attributes: json!({}),
    };
    let vars = variables(&sample, &UserFacts::default(), None);
    let refs: Vec<(&str, &Value)> = vars.iter().map(|(n, v)| (*n, v)).collect();
    crate::access::abac::compile_over(condition, &refs)
}

/// Compiled conditions by (rule, version): versions are immutable, so entries never go stale.
fn program(row: &RuleRow) -> Option<Arc<Program>> {
    static CACHE: OnceLock<Mutex<HashMap<(Uuid, i32), Arc<Program>>>> = OnceLock::new();
    let key = (row.version.rule_id, row.version.version);
    let cache = CACHE.get_or_init(Default::default);
    if let Some(p) = cache.lock().expect("rule cache").get(&key) {
        return Some(p.clone());
    }
    let compiled = Arc::new(compile(&row.version.condition).ok()?);
    let mut cache = cache.lock().expect("rule cache");
    if cache.len() > 10_000 {
        cache.clear();
    }
    cache.insert(key, compiled.clone());
    Some(compiled)
}

/// Why a rule does not apply to an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Mismatch {
    Disabled,
    OtherEventType,
    OtherPartner,
    OutsideWindow,
    NoAmount,
    OtherCurrency,
    ConditionFalse,
    /// The condition failed at run time (counted as false).
    ConditionError(String),
}

impl Mismatch {
    pub fn describe(&self) -> String {
        match self {
            Self::Disabled => "rule disabled".into(),
            Self::OtherEventType => "other event type".into(),
            Self::OtherPartner => "other partner".into(),
            Self::OutsideWindow => "outside window".into(),
            Self::NoAmount => "event has no amount".into(),
            Self::OtherCurrency => "other currency".into(),
            Self::ConditionFalse => "condition false".into(),
            Self::ConditionError(_) => "condition error".into(),
        }
    }
}

/// Whether the rule applies to the event (status, type, partner, window, amount, condition).
pub fn matches(
    row: &RuleRow,
    event: &EventFacts,
    user: &UserFacts,
    tier: Option<&TierFacts>,
) -> Result<(), Mismatch> {
    let rule = &row.version;
    if rule.status != STATUS_ACTIVE {
        return Err(Mismatch::Disabled);
    }
    if rule.event_type != event.event_type {
        return Err(Mismatch::OtherEventType);
    }
    if rule.partner_id.is_some_and(|p| p != event.partner_id) {
        return Err(Mismatch::OtherPartner);
    }
    if rule.start_at.is_some_and(|s| event.occur_at < s)
        || rule.end_at.is_some_and(|e| event.occur_at >= e)
    {
        return Err(Mismatch::OutsideWindow);
    }
    if let Some(currency) = &rule.rate_currency {
        match (&event.amount_minor, &event.currency) {
            (None, _) => return Err(Mismatch::NoAmount),
            (Some(_), c) if c.as_deref() != Some(currency.as_str()) => {
                return Err(Mismatch::OtherCurrency);
            }
            _ => {}
        }
    }
    if rule.condition.trim().is_empty() {
        return Ok(());
    }
    let Some(program) = program(row) else {
        return Err(Mismatch::ConditionError(
            "the condition does not compile".into(),
        ));
    };
    let vars = variables(event, user, tier);
    let refs: Vec<(&str, &Value)> = vars.iter().map(|(n, v)| (*n, v)).collect();
    match crate::access::abac::evaluate(&program, &refs) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Mismatch::ConditionFalse),
        Err(e) => Err(Mismatch::ConditionError(e)),
    }
}

/// Points of one rule for one event, before caps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Computed {
    pub base_points: i64,
    pub multiplier_bps: i32,
    pub points: i64,
}

/// The multiplier for the user's tier: the rule's own for that tier, else the tier's, else 1x.
pub fn multiplier(row: &RuleRow, tier: Option<&TierFacts>) -> i32 {
    let Some(tier) = tier else { return ONE_X_BPS };
    let id = tier.id.to_string();
    if let Some(m) = tier_multipliers(row).iter().find(|m| m.tier_id == id) {
        return m.multiplier_bps;
    }
    if tier.earning_multiplier_bps > 0 {
        tier.earning_multiplier_bps
    } else {
        ONE_X_BPS
    }
}

/// Base points, multiplier and the product rounded once (exact integer arithmetic, no floats).
pub fn compute(row: &RuleRow, event: &EventFacts, tier: Option<&TierFacts>) -> Computed {
    let rule = &row.version;
    let bps = multiplier(row, tier);
    let mode = rule.rounding;
    let (num, den) = match (
        rule.fixed_points,
        rule.rate_points,
        rule.rate_per_amount_minor,
    ) {
        (Some(fixed), _, _) => (i128::from(fixed), 1i128),
        (None, Some(points), Some(per)) => (
            i128::from(event.amount_minor.unwrap_or(0)) * i128::from(points),
            i128::from(per),
        ),
        _ => (0, 1),
    };
    Computed {
        base_points: round(num, den, mode),
        multiplier_bps: bps,
        points: round(num * i128::from(bps), den * i128::from(ONE_X_BPS), mode),
    }
}

/// `num / den` (both non-negative, `den` positive) made whole by the rounding mode.
pub fn round(num: i128, den: i128, mode: i16) -> i64 {
    let (q, r) = (num / den, num % den);
    let up = match mode {
        ROUND_UP => r > 0,
        ROUND_HALF_UP => 2 * r >= den && r > 0,
        ROUND_HALF_EVEN => 2 * r > den || (2 * r == den && r > 0 && q % 2 == 1),
        _ => false,
    };
    i64::try_from(q + i128::from(up)).unwrap_or(i64::MAX)
}

/// The rules that award, from those that match: by priority (highest first, then oldest); an
/// exclusive rule first alone awards, otherwise every stackable one does.
pub fn select(mut matched: Vec<RuleRow>) -> Vec<RuleRow> {
    matched.sort_by(|a, b| {
        b.version
            .priority
            .cmp(&a.version.priority)
            .then(a.rule_created_at.cmp(&b.rule_created_at))
            .then(a.version.rule_id.cmp(&b.version.rule_id))
    });
    match matched.first() {
        Some(first) if first.version.stacking == STACKING_EXCLUSIVE => matched.truncate(1),
        _ => matched.retain(|r| r.version.stacking != STACKING_EXCLUSIVE),
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_modes() {
        // 2.5
        assert_eq!(round(5, 2, ROUND_DOWN), 2);
        assert_eq!(round(5, 2, ROUND_UP), 3);
        assert_eq!(round(5, 2, ROUND_HALF_UP), 3);
        assert_eq!(round(5, 2, ROUND_HALF_EVEN), 2);
        // 3.5, 3.4, 3.6, 3
        assert_eq!(round(7, 2, ROUND_HALF_EVEN), 4);
        assert_eq!(round(34, 10, ROUND_HALF_UP), 3);
        assert_eq!(round(36, 10, ROUND_HALF_EVEN), 4);
        assert_eq!(round(36, 10, 0), 3);
        assert_eq!(round(3, 1, ROUND_UP), 3);
        assert_eq!(round(0, 7, ROUND_UP), 0);
    }
}
