//! The payout worker: every `loyalty.payouts.poll_interval_ms` it claims due pending payouts
//! (`FOR UPDATE SKIP LOCKED`, under a lease of `lease_secs`) and makes one step of each: the
//! transfer request or the status read its state asks for, then the rules. Everything it needs
//! is in the payout rows, so a restarted process (or another instance, once the lease runs out)
//! carries on where a dead one stopped, with the same reference ids.

use futures::StreamExt;
use tokio::{sync::watch, task::JoinHandle};

use super::payout_service::PayoutService;

/// Payouts of one round worked on at once.
const CONCURRENCY: usize = 8;

pub struct PayoutWorker {
    handle: JoinHandle<()>,
}

impl PayoutWorker {
    pub fn spawn(payouts: PayoutService, mut shutdown: watch::Receiver<bool>) -> Self {
        tracing::info!("payout worker started");
        let handle = tokio::spawn(async move {
            loop {
                if *shutdown.borrow() {
                    break;
                }
                let claimed = match payouts.claim().await {
                    Ok(rows) => rows,
                    Err(err) => {
                        tracing::warn!(error = %err, "payout worker could not claim payouts");
                        Vec::new()
                    }
                };
                let full = claimed.len() >= CONCURRENCY;
                futures::stream::iter(claimed)
                    .for_each_concurrent(CONCURRENCY, |row| {
                        let payouts = payouts.clone();
                        async move {
                            let id = row.id;
                            if let Err(err) = payouts.step(row).await {
                                tracing::warn!(payout = %id, error = %err, "payout step failed; retried after its lease");
                            }
                        }
                    })
                    .await;
                if full {
                    continue;
                }
                tokio::select! {
                    _ = tokio::time::sleep(payouts.poll_interval()) => {}
                    _ = shutdown.changed() => {}
                }
            }
        });
        Self { handle }
    }

    /// Waits for the round in flight to finish.
    pub async fn join(self) {
        let _ = self.handle.await;
    }
}
