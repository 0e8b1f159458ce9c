//! The expiry job: posts an EXPIRY transaction for what remains of every lot past its
//! `expire_at`. Spawned by `serve` every `loyalty.expiry_interval_secs`, and run once by
//! `mgpass ledger expire`. Safe on several instances at once: each lot is expired under the
//! user's account lock, after re-reading what remains of it.

use std::time::Duration;

use diesel::{
    QueryableByName,
    prelude::*,
    sql_types::{BigInt, Uuid as SqlUuid},
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{Account, NewTransaction, PlannedPosting, Posting, TransactionKind, post_planned};
use crate::{
    db::{DbPool, schema::loyalty_accounts},
    error::Result,
};

/// Lots looked at per round.
const BATCH: i64 = 500;

#[derive(QueryableByName)]
struct ExpiredLot {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    user_id: Uuid,
}

#[derive(QueryableByName)]
struct Remaining {
    #[diesel(sql_type = BigInt)]
    remaining_points: i64,
}

/// What one run expired.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryRun {
    pub lots: u64,
    pub points: i64,
}

/// Expires every lot past its date; returns what it expired.
pub async fn run_once(pool: &DbPool) -> Result<ExpiryRun> {
    let mut run = ExpiryRun::default();
    loop {
        let mut conn = pool.get().await?;
        let due: Vec<ExpiredLot> = diesel::sql_query(
            "SELECT id, user_id FROM loyalty_lots WHERE remaining_points > 0 AND expire_at <= now() \
             ORDER BY expire_at, id LIMIT $1",
        )
        .bind::<BigInt, _>(BATCH)
        .load(&mut conn)
        .await?;
        if due.is_empty() {
            return Ok(run);
        }
        for lot in &due {
            let points = conn.transaction(async |c| expire_lot(c, lot.id, lot.user_id).await).await?;
            if points > 0 {
                run.lots += 1;
                run.points += points;
            }
        }
        if (due.len() as i64) < BATCH {
            return Ok(run);
        }
    }
}

/// Expires what remains of one lot; returns the points expired (0 if another run did it).
async fn expire_lot(conn: &mut AsyncPgConnection, lot_id: Uuid, user_id: Uuid) -> Result<i64> {
    // The user's postings wait for this one (and this one for them): the lot cannot change
    // between the read below and the debit.
    loyalty_accounts::table
        .filter(loyalty_accounts::account_type.eq("user"))
        .filter(loyalty_accounts::owner_id.eq(user_id))
        .select(loyalty_accounts::id)
        .for_update()
        .load::<Uuid>(conn)
        .await?;
    let remaining: Option<Remaining> = diesel::sql_query(
        "SELECT remaining_points FROM loyalty_lots WHERE id = $1 AND expire_at <= now() AND remaining_points > 0",
    )
    .bind::<SqlUuid, _>(lot_id)
    .get_result(conn)
    .await
    .optional()?;
    let Some(Remaining { remaining_points: points }) = remaining else { return Ok(0) };
    let postings = vec![
        PlannedPosting {
            posting: Posting { account: Account::User(user_id), points: -points, rule: None },
            lots: vec![(lot_id, points)],
        },
        PlannedPosting { posting: Posting { account: Account::Expiry, points, rule: None }, lots: Vec::new() },
    ];
    let tx = NewTransaction {
        kind: TransactionKind::Expiry,
        user_id,
        event_id: None,
        order_id: None,
        payout_id: None,
        reversed_transaction_id: None,
        reason: Some("points expired".into()),
        actor_user_id: None,
        postings: postings.iter().map(|p| p.posting.clone()).collect(),
    };
    post_planned(conn, &tx, postings).await?;
    Ok(points)
}

/// Runs the job every `interval` for the life of the process.
pub fn spawn(pool: DbPool, interval: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match run_once(&pool).await {
                Ok(run) if run.lots > 0 => {
                    tracing::info!(lots = run.lots, points = run.points, "loyalty points expired")
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "loyalty expiry run failed; retrying next round"),
            }
        }
    });
}
