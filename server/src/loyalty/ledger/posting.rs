//! Posting and reversing transactions: validation, the materialised balances, lots and entries,
//! all inside one savepoint of the caller's database transaction.

use std::collections::BTreeMap;

use chrono::Utc;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use super::{
    accounts, lots,
    store::{self, NewEntryRow, TransactionRow},
    types::{Account, NewTransaction, Posting, TransactionKind},
};
use crate::error::{Error, Result};

/// A posting with the lots it should use first: for a user credit, lots to give points back to
/// (a refund restores the lots its redemption consumed); for a user debit, lots to take from
/// before the first-in first-out order (a reversal takes back the lot its award made; expiry
/// expires one lot). Points the preferred lots cannot absorb go the normal way.
#[derive(Debug, Clone)]
pub struct PlannedPosting {
    pub posting: Posting,
    pub lots: Vec<(Uuid, i64)>,
}

/// `post` with lot preferences (used by `reverse` and the expiry job).
pub async fn post_planned(
    conn: &mut AsyncPgConnection,
    tx: &NewTransaction,
    postings: Vec<PlannedPosting>,
) -> Result<Uuid> {
    check_balanced(tx, &postings)?;
    let id = Uuid::now_v7();
    conn.transaction(async |conn| write(conn, id, tx, &postings).await).await?;
    Ok(id)
}

/// Refuses what can only be a bug of the caller: an empty or unbalanced transaction, a zero
/// posting, or a user account of another user than the transaction's.
fn check_balanced(tx: &NewTransaction, postings: &[PlannedPosting]) -> Result<()> {
    if postings.is_empty() {
        return Err(Error::internal("ledger: a transaction needs postings"));
    }
    let mut sum: i128 = 0;
    for p in postings {
        let posting = &p.posting;
        if posting.points == 0 {
            return Err(Error::internal("ledger: a posting of 0 points"));
        }
        if let Account::User(owner) | Account::UserHold(owner) = posting.account
            && owner != tx.user_id
        {
            return Err(Error::internal("ledger: a user account of another user than the transaction's"));
        }
        sum += i128::from(posting.points);
    }
    if sum != 0 {
        return Err(Error::internal(format!("ledger: unbalanced transaction (entries sum to {sum})")));
    }
    Ok(())
}

async fn write(conn: &mut AsyncPgConnection, id: Uuid, tx: &NewTransaction, postings: &[PlannedPosting]) -> Result<()> {
    let user_points: i64 =
        postings.iter().filter(|p| p.posting.account == Account::User(tx.user_id)).map(|p| p.posting.points).sum();
    let partner_id = postings.iter().find_map(|p| match p.posting.account {
        Account::PartnerIssuance(partner) => Some(partner),
        _ => None,
    });
    let row = TransactionRow {
        id,
        kind: tx.kind.as_str().to_string(),
        user_id: tx.user_id,
        points: user_points,
        partner_id,
        event_id: tx.event_id,
        order_id: tx.order_id,
        payout_id: tx.payout_id,
        reversed_transaction_id: tx.reversed_transaction_id,
        reason: tx.reason.clone(),
        actor_user_id: tx.actor_user_id,
        created_at: Utc::now(),
    };
    match store::insert_transaction(conn, &row).await {
        Ok(()) => {}
        // The only unique column besides the fresh id: a transaction is reversed at most once.
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _))
            if tx.reversed_transaction_id.is_some() =>
        {
            return Err(already_reversed());
        }
        Err(err) => return Err(err.into()),
    }

    // Materialised balances first, in a fixed order (USER before USER_HOLD) so two postings of a
    // user never lock their rows in opposite orders. The CHECK refuses an overdraft here.
    let mut deltas: BTreeMap<&'static str, (Account, i64)> = BTreeMap::new();
    for p in postings.iter().filter(|p| p.posting.account.materialised()) {
        deltas.entry(p.posting.account.type_name()).or_insert((p.posting.account, 0)).1 += p.posting.points;
    }
    let mut account_ids: BTreeMap<&'static str, Uuid> = BTreeMap::new();
    for (name, (account, delta)) in deltas {
        account_ids.insert(name, accounts::move_balance(conn, account, delta).await?);
    }

    let mut entries = Vec::with_capacity(postings.len() + 1);
    for p in postings {
        let posting = &p.posting;
        let account_id = match account_ids.get(posting.account.type_name()) {
            Some(id) if posting.account.materialised() => *id,
            _ => accounts::shared_account_id(conn, posting.account).await?,
        };
        let entry = |points: i64, lot_id: Option<Uuid>| NewEntryRow {
            transaction_id: id,
            account_id,
            points,
            rule_id: posting.rule.map(|r| r.0),
            rule_version: posting.rule.map(|r| r.1),
            lot_id,
        };
        if posting.account != Account::User(tx.user_id) {
            entries.push(entry(posting.points, None));
        } else if posting.points > 0 {
            let mut left = posting.points;
            for &(lot, wanted) in &p.lots {
                if left == 0 {
                    break;
                }
                let got = lots::restore(conn, tx.user_id, lot, wanted.min(left)).await?;
                if got > 0 {
                    entries.push(entry(got, Some(lot)));
                    left -= got;
                }
            }
            if left > 0 {
                let lot = lots::create(conn, tx.user_id, id, left).await?;
                entries.push(entry(left, Some(lot)));
            }
        } else {
            let mut left = -posting.points;
            for &(lot, wanted) in &p.lots {
                if left == 0 {
                    break;
                }
                let got = lots::take(conn, tx.user_id, lot, wanted.min(left)).await?;
                if got > 0 {
                    entries.push(entry(-got, Some(lot)));
                    left -= got;
                }
            }
            if left > 0 {
                for (lot, got) in lots::consume_fifo(conn, tx.user_id, left).await? {
                    entries.push(entry(-got, Some(lot)));
                }
            }
        }
    }
    store::insert_entries(conn, &entries).await
}

fn already_reversed() -> Error {
    Error::FailedPrecondition {
        reason: "TRANSACTION_ALREADY_REVERSED",
        message: "this transaction was already reversed".into(),
    }
}

pub async fn reverse(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    kind: TransactionKind,
    reason: Option<String>,
    actor: Option<Uuid>,
) -> Result<Uuid> {
    let original = store::get_transaction(conn, id)
        .await?
        .ok_or_else(|| Error::not_found("TRANSACTION_NOT_FOUND", "no such transaction"))?;
    let entries = store::entries_of(conn, &[id]).await?;
    // One posting per original entry, negated, preferring the entry's lot.
    let mut postings = Vec::with_capacity(entries.len());
    for e in entries {
        let account = Account::from_row(&e.account_type, e.owner_id)
            .ok_or_else(|| Error::internal(format!("ledger: unknown account type {}", e.account_type)))?;
        let rule = e.rule_id.zip(e.rule_version);
        postings.push(PlannedPosting {
            posting: Posting { account, points: -e.points, rule },
            lots: e.lot_id.map(|lot| vec![(lot, e.points.abs())]).unwrap_or_default(),
        });
    }
    let tx = NewTransaction {
        kind,
        user_id: original.user_id,
        event_id: original.event_id,
        order_id: original.order_id,
        payout_id: original.payout_id,
        reversed_transaction_id: Some(id),
        reason,
        actor_user_id: actor,
        postings: postings.iter().map(|p| p.posting.clone()).collect(),
    };
    post_planned(conn, &tx, postings).await
}
