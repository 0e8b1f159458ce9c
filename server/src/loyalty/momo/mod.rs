//! The mobile-money provider adapter, modelled on the MTN MoMo disbursement API. The rest of the
//! payout flow sees only [`PayoutProvider`]: submit a transfer under our reference id, read its
//! status. Every answer that does not prove an outcome is [`ProviderError`], which the flow treats
//! as "unknown" (never as a failure).

mod client;

pub use client::{MomoClient, MomoSettings};

use futures::future::BoxFuture;
use uuid::Uuid;

/// The name payouts record in `provider` and callbacks use in their path.
pub const PROVIDER_MTN_MOMO: &str = "mtn_momo";

/// One transfer to request.
#[derive(Debug, Clone)]
pub struct Transfer {
    /// Our idempotent reference (`X-Reference-Id`); the same on every retry.
    pub reference_id: Uuid,
    /// Amount in minor units of `currency`.
    pub amount_minor: i64,
    pub currency: String,
    /// Payee mobile number, E.164 (`+233...`); sent as the MSISDN without `+`.
    pub mobile: String,
    /// Our payout id, sent as `externalId`.
    pub external_id: String,
    pub note: String,
}

/// What a transfer request proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// 202: the provider took the transfer.
    Accepted,
    /// 409: a transfer with this reference already exists (an earlier attempt of ours got through).
    AlreadyExists,
    /// Another 4xx: the provider refused the request itself; whether a transfer exists must
    /// still be read (never inferred).
    Refused { status: u16, detail: String },
}

/// The status of a transfer at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferStatus {
    Pending,
    Successful { financial_transaction_id: Option<String> },
    Failed { reason: String },
    /// 404: the provider has no transfer with this reference (it was never created).
    NotFound,
}

/// Nothing was proven: the call timed out, could not connect, or got a 5xx / unreadable answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("payout provider unavailable: {0}")]
pub struct ProviderError(pub String);

/// A mobile-money disbursement provider.
pub trait PayoutProvider: Send + Sync {
    /// The adapter's name (`mtn_momo`).
    fn name(&self) -> &'static str;
    /// Requests the transfer; safe to repeat with the same reference id.
    fn submit(&self, transfer: &Transfer) -> BoxFuture<'_, Result<SubmitOutcome, ProviderError>>;
    /// Reads the transfer's status.
    fn status(&self, reference_id: Uuid) -> BoxFuture<'_, Result<TransferStatus, ProviderError>>;
}
