//! The background work of earning, on every instance (each step is safe to run concurrently):
//! - the pending matcher: applies pending events to users who have since verified the event's
//!   email or mobile, whatever way they got there (registration, a verification, an admin), and
//!   expires the overdue ones. A periodic matcher rather than a hook in each of those paths: no
//!   path can be forgotten, and a crash between a verification and the award loses nothing;
//! - the periodic tier re-evaluation (the only time members go down).

use std::time::Duration;

use super::{event_service::EventService, tier_service::TierService};

pub fn spawn(
    events: EventService,
    tiers: TierService,
    match_every: Duration,
    reevaluate_every: Duration,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(match_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match events.match_pending().await {
                Ok((0, 0)) => {}
                Ok((applied, expired)) => {
                    tracing::info!(applied, expired, "pending loyalty events matched")
                }
                Err(err) => {
                    tracing::warn!(error = %err, "pending loyalty event matcher failed; retrying next tick")
                }
            }
        }
    });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(reevaluate_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate: skip it, a restart is no re-evaluation date.
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(err) = tiers.reevaluate("").await {
                tracing::warn!(error = %err, "loyalty tier re-evaluation failed; retrying next period");
            }
        }
    });
}
