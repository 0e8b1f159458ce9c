//! `[loyalty]` configuration. Other loyalty branches nest their own structs here (one field each).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoyaltyConfig {
    /// Months after which the points of a credit expire; 0 means never.
    pub points_expire_after_months: u32,
    /// How often the expiry job looks for expired lots, in seconds.
    pub expiry_interval_secs: u64,
    /// The IANA time zone of report days (`ListPartnerIssuance`).
    pub report_time_zone: String,
    /// Mobile-money cashback (`loyalty/payout_config.rs`).
    pub payouts: super::payout_config::PayoutConfig,
    /// Earning: pending events, tiers, cap periods (`[loyalty.earning]`).
    pub earning: super::earning_config::EarningConfig,
}

impl Default for LoyaltyConfig {
    fn default() -> Self {
        Self {
            points_expire_after_months: 12,
            expiry_interval_secs: 3600,
            report_time_zone: "UTC".into(),
            payouts: Default::default(),
            earning: Default::default(),
        }
    }
}

impl LoyaltyConfig {
    pub fn check(&self, bad: &mut Vec<String>) {
        self.payouts.validate(bad);
        bad.extend(self.earning.problems());
        if self.points_expire_after_months > 1200 {
            bad.push("loyalty.points_expire_after_months: at most 1200 (0 means never)".into());
        }
        if self.expiry_interval_secs == 0 {
            bad.push("loyalty.expiry_interval_secs: must be at least 1".into());
        }
        if self.report_time_zone.trim().is_empty() {
            bad.push("loyalty.report_time_zone: must name a time zone such as UTC or Africa/Kampala".into());
        }
    }
}
