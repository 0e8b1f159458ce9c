//! Settings of loyalty earning (`[loyalty.earning]`): pending events and tiers. Cap periods
//! follow the loyalty time zone, `loyalty.report_time_zone`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EarningConfig {
    /// Days an event for an email or mobile that is no user's yet waits for its user.
    pub pending_event_ttl_days: u32,
    /// Seconds between two runs of the job that applies pending events to users who verified
    /// the email or mobile since, and expires the overdue ones.
    pub pending_match_interval_secs: u64,
    /// Length of the rolling tier qualification window, in days.
    pub tier_window_days: u32,
    /// Seconds between two periodic tier re-evaluations (the only time members are downgraded).
    pub tier_reevaluation_interval_secs: u64,
}

impl Default for EarningConfig {
    fn default() -> Self {
        Self {
            pending_event_ttl_days: 90,
            pending_match_interval_secs: 30,
            tier_window_days: 365,
            tier_reevaluation_interval_secs: 86_400,
        }
    }
}

impl EarningConfig {
    /// What is wrong with the settings, one line each.
    pub fn problems(&self) -> Vec<String> {
        let mut bad = Vec::new();
        if !(1..=3650).contains(&self.pending_event_ttl_days) {
            bad.push("loyalty.earning.pending_event_ttl_days: must be 1 to 3650".into());
        }
        if self.pending_match_interval_secs == 0 {
            bad.push("loyalty.earning.pending_match_interval_secs: must be at least 1".into());
        }
        if !(1..=3650).contains(&self.tier_window_days) {
            bad.push("loyalty.earning.tier_window_days: must be 1 to 3650".into());
        }
        if self.tier_reevaluation_interval_secs == 0 {
            bad.push("loyalty.earning.tier_reevaluation_interval_secs: must be at least 1".into());
        }
        bad
    }
}
