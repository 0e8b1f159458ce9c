//! `loyalty.payouts`: mobile-money cashback. Cashback is on when `momo_base_url` is set; the
//! provider credentials come from the environment like every key
//! (`MGPASS_LOYALTY__PAYOUTS__MOMO_API_KEY`, ...), never from a committed file.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::momo::MomoSettings;

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PayoutConfig {
    /// The rate: `rate_points` points buy `rate_amount_minor` minor units of `currency`.
    pub rate_points: i64,
    pub rate_amount_minor: i64,
    /// ISO 4217 code of the payouts (`GHS`).
    pub currency: String,
    /// Digits of the currency's minor unit (2 for GHS).
    pub currency_minor_digits: u32,
    /// Smallest and largest payout, in points.
    pub min_points: i64,
    pub max_points: i64,
    /// How long a quote can be requested.
    pub quote_ttl_secs: u64,
    /// A payout pending this long without a confirmed outcome goes to manual review.
    pub pending_limit_secs: u64,
    /// MTN MoMo disbursement API base URL; empty: cashback disabled.
    pub momo_base_url: String,
    pub momo_api_user: String,
    pub momo_api_key: String,
    pub momo_subscription_key: String,
    /// `X-Target-Environment`.
    pub momo_target_environment: String,
    /// Where the provider sends callbacks (`X-Callback-Url`), normally
    /// `<public_url>/v1/loyalty/payoutCallbacks/mtn_momo`; empty: polling only.
    pub momo_callback_url: String,
    /// Limit of each provider call.
    pub request_timeout_ms: u64,
    /// Worker: how often it looks for due payouts.
    pub poll_interval_ms: u64,
    /// First delay before re-reading a pending transfer or retrying after an unknown answer;
    /// doubles with each status read up to `max_retry_delay_ms`.
    pub retry_delay_ms: u64,
    pub max_retry_delay_ms: u64,
    /// Payouts a worker round claims.
    pub batch_size: i64,
    /// How long a claimed payout is left to its worker before another may take it (a worker that
    /// died mid-call).
    pub lease_secs: u64,
}

/// The provider credentials never reach a log.
impl std::fmt::Debug for PayoutConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |s: &str| if s.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("PayoutConfig")
            .field("rate_points", &self.rate_points)
            .field("rate_amount_minor", &self.rate_amount_minor)
            .field("currency", &self.currency)
            .field("min_points", &self.min_points)
            .field("max_points", &self.max_points)
            .field("pending_limit_secs", &self.pending_limit_secs)
            .field("momo_base_url", &self.momo_base_url)
            .field("momo_api_user", &self.momo_api_user)
            .field("momo_api_key", &redact(&self.momo_api_key))
            .field("momo_subscription_key", &redact(&self.momo_subscription_key))
            .field("momo_callback_url", &self.momo_callback_url)
            .finish_non_exhaustive()
    }
}

impl Default for PayoutConfig {
    fn default() -> Self {
        Self {
            rate_points: 100,
            rate_amount_minor: 100,
            currency: "GHS".into(),
            currency_minor_digits: 2,
            min_points: 100,
            max_points: 1_000_000,
            quote_ttl_secs: 300,
            pending_limit_secs: 86_400,
            momo_base_url: String::new(),
            momo_api_user: String::new(),
            momo_api_key: String::new(),
            momo_subscription_key: String::new(),
            momo_target_environment: "sandbox".into(),
            momo_callback_url: String::new(),
            request_timeout_ms: 10_000,
            poll_interval_ms: 1_000,
            retry_delay_ms: 5_000,
            max_retry_delay_ms: 300_000,
            batch_size: 20,
            lease_secs: 60,
        }
    }
}

impl PayoutConfig {
    pub fn enabled(&self) -> bool {
        !self.momo_base_url.is_empty()
    }

    /// Cash for `points`, rounded down to the minor unit.
    pub fn amount_minor(&self, points: i64) -> i64 {
        (i128::from(points) * i128::from(self.rate_amount_minor) / i128::from(self.rate_points)) as i64
    }

    pub fn momo_settings(&self) -> MomoSettings {
        MomoSettings {
            base_url: self.momo_base_url.clone(),
            api_user: self.momo_api_user.clone(),
            api_key: self.momo_api_key.clone(),
            subscription_key: self.momo_subscription_key.clone(),
            target_environment: self.momo_target_environment.clone(),
            callback_url: self.momo_callback_url.clone(),
            timeout: Duration::from_millis(self.request_timeout_ms),
            minor_digits: self.currency_minor_digits,
        }
    }

    pub fn validate(&self, bad: &mut Vec<String>) {
        let key = "loyalty.payouts";
        if self.rate_points <= 0 || self.rate_amount_minor <= 0 {
            bad.push(format!("{key}.rate_points and rate_amount_minor: must be positive"));
        }
        if !(self.currency.len() == 3 && self.currency.chars().all(|c| c.is_ascii_uppercase())) {
            bad.push(format!("{key}.currency: `{}` must be an ISO 4217 code like GHS", self.currency));
        }
        if self.currency_minor_digits > 4 {
            bad.push(format!("{key}.currency_minor_digits: must be at most 4"));
        }
        if self.min_points <= 0 || self.max_points < self.min_points {
            bad.push(format!("{key}.min_points and max_points: need 0 < min_points <= max_points"));
        }
        if self.quote_ttl_secs == 0 || self.pending_limit_secs == 0 || self.lease_secs == 0 {
            bad.push(format!("{key}.quote_ttl_secs, pending_limit_secs and lease_secs: must be at least 1"));
        }
        if self.request_timeout_ms == 0 || self.poll_interval_ms == 0 || self.retry_delay_ms == 0 {
            bad.push(format!("{key}.request_timeout_ms, poll_interval_ms and retry_delay_ms: must be at least 1"));
        }
        if self.max_retry_delay_ms < self.retry_delay_ms {
            bad.push(format!("{key}.max_retry_delay_ms: must be at least retry_delay_ms"));
        }
        // A lease shorter than a provider call would let a second worker take a payout whose
        // call is still in flight.
        if self.lease_secs.saturating_mul(1000) <= self.request_timeout_ms.saturating_mul(2) {
            bad.push(format!("{key}.lease_secs: must be above twice request_timeout_ms"));
        }
        if !(1..=1000).contains(&self.batch_size) {
            bad.push(format!("{key}.batch_size: must be between 1 and 1000"));
        }
        if self.enabled() {
            if !(self.momo_base_url.starts_with("http://") || self.momo_base_url.starts_with("https://")) {
                bad.push(format!("{key}.momo_base_url: must start with http:// or https://"));
            }
            if self.momo_api_user.is_empty() || self.momo_api_key.is_empty() {
                bad.push(format!("{key}.momo_api_user and momo_api_key: required with momo_base_url"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_round_down() {
        let c = PayoutConfig { rate_points: 300, rate_amount_minor: 100, ..Default::default() };
        assert_eq!(c.amount_minor(300), 100);
        assert_eq!(c.amount_minor(299), 99);
        assert_eq!(c.amount_minor(1), 0);
        assert_eq!(c.amount_minor(i64::MAX / 2), (i128::from(i64::MAX / 2) * 100 / 300) as i64);
    }

    #[test]
    fn validation() {
        let mut bad = Vec::new();
        PayoutConfig::default().validate(&mut bad);
        assert!(bad.is_empty(), "{bad:?}");
        let c = PayoutConfig { momo_base_url: "ftp://x".into(), currency: "gh".into(), ..Default::default() };
        c.validate(&mut bad);
        assert_eq!(bad.len(), 3, "{bad:?}");
    }

    #[test]
    fn credentials_are_not_printed() {
        let c = PayoutConfig { momo_api_key: "k-secret".into(), momo_subscription_key: "s-secret".into(), ..Default::default() };
        let printed = format!("{c:?}");
        assert!(!printed.contains("k-secret") && !printed.contains("s-secret"), "{printed}");
    }
}
