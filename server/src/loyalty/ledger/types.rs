//! The ledger's vocabulary: accounts, transaction kinds and postings, with their database names.

use uuid::Uuid;

/// One account of the ledger; one row per (type, owner) in `loyalty_accounts`, created on first
/// use. System accounts have the nil owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Account {
    User(Uuid),
    UserHold(Uuid),
    PartnerIssuance(Uuid),
    Redemptions,
    Expiry,
    Adjustments,
    Payouts,
}

impl Account {
    /// The `account_type` column.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::User(_) => "user",
            Self::UserHold(_) => "user_hold",
            Self::PartnerIssuance(_) => "partner_issuance",
            Self::Redemptions => "redemptions",
            Self::Expiry => "expiry",
            Self::Adjustments => "adjustments",
            Self::Payouts => "payouts",
        }
    }

    /// The `owner_id` column: the user or partner, the nil UUID for system accounts.
    pub fn owner(&self) -> Uuid {
        match self {
            Self::User(id) | Self::UserHold(id) | Self::PartnerIssuance(id) => *id,
            _ => Uuid::nil(),
        }
    }

    /// Whether the balance is kept on the account row (and so can never go below zero).
    pub fn materialised(&self) -> bool {
        matches!(self, Self::User(_) | Self::UserHold(_))
    }

    pub fn from_row(account_type: &str, owner: Uuid) -> Option<Self> {
        Some(match account_type {
            "user" => Self::User(owner),
            "user_hold" => Self::UserHold(owner),
            "partner_issuance" => Self::PartnerIssuance(owner),
            "redemptions" => Self::Redemptions,
            "expiry" => Self::Expiry,
            "adjustments" => Self::Adjustments,
            "payouts" => Self::Payouts,
            _ => return None,
        })
    }
}

/// The kind of a transaction (= proto `TransactionKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionKind {
    Award,
    Reversal,
    Redemption,
    Refund,
    Expiry,
    Adjustment,
    PayoutHold,
    PayoutCapture,
    PayoutRelease,
}

impl TransactionKind {
    pub const ALL: [Self; 9] = [
        Self::Award,
        Self::Reversal,
        Self::Redemption,
        Self::Refund,
        Self::Expiry,
        Self::Adjustment,
        Self::PayoutHold,
        Self::PayoutCapture,
        Self::PayoutRelease,
    ];

    /// The `kind` column.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Award => "award",
            Self::Reversal => "reversal",
            Self::Redemption => "redemption",
            Self::Refund => "refund",
            Self::Expiry => "expiry",
            Self::Adjustment => "adjustment",
            Self::PayoutHold => "payout_hold",
            Self::PayoutCapture => "payout_capture",
            Self::PayoutRelease => "payout_release",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One line of a transaction: `points` added to (positive, a credit) or taken from (negative, a
/// debit) `account`. `rule` is the rule id and version that produced an award.
#[derive(Debug, Clone)]
pub struct Posting {
    pub account: Account,
    pub points: i64,
    pub rule: Option<(Uuid, i32)>,
}

/// A transaction to post. Ids that do not apply are `None`.
#[derive(Debug, Clone)]
pub struct NewTransaction {
    pub kind: TransactionKind,
    pub user_id: Uuid,
    pub event_id: Option<Uuid>,
    pub order_id: Option<Uuid>,
    pub payout_id: Option<Uuid>,
    pub reversed_transaction_id: Option<Uuid>,
    pub reason: Option<String>,
    pub actor_user_id: Option<Uuid>,
    pub postings: Vec<Posting>,
}
