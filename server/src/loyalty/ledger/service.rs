//! LedgerService's rules: balances, histories, lots, administrators' adjustments and reports.
//! The only write is an adjustment; everything else reads.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use diesel::{prelude::*, sql_types::Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    Account, NewTransaction, Posting, TransactionKind,
    queries::{self, IssuanceRow, LiabilityRow, LotRow, NextExpiry, TransactionFilter},
    store::{self, EntryView, TransactionRow},
};
use crate::{
    db::{DbPool, schema::loyalty_adjustment_requests as requests},
    error::{Error, Result},
    loyalty::config::LoyaltyConfig,
    org::cursor::NamePage,
    paging::Page,
};

/// A user's balance with its details.
pub struct BalanceView {
    pub user_id: Uuid,
    pub points: i64,
    pub held_points: i64,
    pub lifetime_earned_points: i64,
    pub next_expiry: Option<NextExpiry>,
}

/// A transaction with its entries.
pub struct TransactionView {
    pub row: TransactionRow,
    pub entries: Vec<EntryView>,
}

fn user_not_found() -> Error {
    Error::not_found("USER_NOT_FOUND", "no such user")
}

pub fn parse_user_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| Error::invalid("INVALID_ID", "user_id", format!("`{id}` is not a user id")))
}

/// The longest report range, in days.
const MAX_REPORT_DAYS: i64 = 366;

#[derive(Clone)]
pub struct LedgerService {
    pool: DbPool,
    config: LoyaltyConfig,
}

impl LedgerService {
    pub fn new(pool: DbPool, config: LoyaltyConfig) -> Self {
        Self { pool, config }
    }

    async fn existing_user(&self, conn: &mut AsyncPgConnection, id: &str) -> Result<Uuid> {
        let id = parse_user_id(id)?;
        if !queries::user_exists(conn, id).await? {
            return Err(user_not_found());
        }
        Ok(id)
    }

    pub async fn balance(&self, user_id: Uuid) -> Result<BalanceView> {
        let mut conn = self.pool.get().await?;
        balance_view(&mut conn, user_id).await
    }

    /// A member's balance (`USER_NOT_FOUND` for an unknown user).
    pub async fn member_balance(&self, user_id: &str) -> Result<BalanceView> {
        let mut conn = self.pool.get().await?;
        let id = self.existing_user(&mut conn, user_id).await?;
        balance_view(&mut conn, id).await
    }

    pub async fn list_transactions(
        &self,
        mut filter: TransactionFilter,
        member: Option<&str>,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<TransactionView>, String)> {
        let page = Page::parse(page_size, page_token)?;
        let mut conn = self.pool.get().await?;
        if let Some(member) = member {
            filter.user_id = Some(self.existing_user(&mut conn, member).await?);
        }
        let rows = queries::list_transactions(&mut conn, &filter, page.after, page.fetch()).await?;
        let (rows, next) = page.finish(rows, |r| (r.created_at, r.id));
        Ok((with_entries(&mut conn, rows).await?, next))
    }

    pub async fn transaction(&self, id: &str) -> Result<TransactionView> {
        let id = Uuid::parse_str(id)
            .map_err(|_| Error::invalid("INVALID_ID", "transaction_id", format!("`{id}` is not a transaction id")))?;
        let mut conn = self.pool.get().await?;
        let row = store::get_transaction(&mut conn, id)
            .await?
            .ok_or_else(|| Error::not_found("TRANSACTION_NOT_FOUND", "no such transaction"))?;
        Ok(with_entries(&mut conn, vec![row]).await?.remove(0))
    }

    pub async fn lots(
        &self,
        user_id: Uuid,
        include_exhausted: bool,
        expire_before: Option<DateTime<Utc>>,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<LotRow>, String)> {
        let page = Page::parse(page_size, page_token)?;
        let mut conn = self.pool.get().await?;
        let rows =
            queries::list_lots(&mut conn, user_id, include_exhausted, expire_before, page.after, page.fetch()).await?;
        Ok(page.finish(rows, |r| (r.expire_at.unwrap_or_else(queries::never), r.id)))
    }

    pub async fn member_lots(
        &self,
        user_id: &str,
        include_exhausted: bool,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<LotRow>, String)> {
        let id = {
            let mut conn = self.pool.get().await?;
            self.existing_user(&mut conn, user_id).await?
        };
        self.lots(id, include_exhausted, None, page_size, page_token).await
    }

    /// An administrator's credit (a new lot) or debit (lots first-in first-out), idempotent by
    /// `request_id`: the same id with the same body returns the first transaction, with another
    /// body `IDEMPOTENCY_KEY_REUSED`.
    pub async fn adjust(
        &self,
        user_id: &str,
        points: i64,
        reason: &str,
        request_id: &str,
        actor: Uuid,
    ) -> Result<(TransactionView, BalanceView)> {
        if points == 0 {
            return Err(Error::invalid("INVALID_ARGUMENT", "points", "points must not be 0"));
        }
        let reason = reason.trim().to_string();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(Error::invalid("INVALID_ARGUMENT", "reason", "a reason of 1 to 500 characters is required"));
        }
        let request_id = Uuid::parse_str(request_id)
            .map_err(|_| Error::invalid("INVALID_ARGUMENT", "request_id", "request_id must be a UUID"))?;
        let mut conn = self.pool.get().await?;
        let user = self.existing_user(&mut conn, user_id).await?;
        let tx_id = conn
            .transaction(async |conn| {
                // Concurrent retries of one request wait for each other here.
                diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                    .bind::<Text, _>(request_id.to_string())
                    .execute(conn)
                    .await?;
                let earlier: Option<(Uuid, i64, String, Uuid)> = requests::table
                    .find(request_id)
                    .select((requests::user_id, requests::points, requests::reason, requests::transaction_id))
                    .first(conn)
                    .await
                    .optional()?;
                if let Some((u, p, r, tx)) = earlier {
                    return if (u, p, r.as_str()) == (user, points, reason.as_str()) {
                        Ok(tx)
                    } else {
                        Err(Error::already_exists(
                            "IDEMPOTENCY_KEY_REUSED",
                            "request_id was used with a different body",
                        ))
                    };
                }
                let tx = super::post(
                    conn,
                    NewTransaction {
                        kind: TransactionKind::Adjustment,
                        user_id: user,
                        event_id: None,
                        order_id: None,
                        payout_id: None,
                        reversed_transaction_id: None,
                        reason: Some(reason.clone()),
                        actor_user_id: Some(actor),
                        postings: vec![
                            Posting { account: Account::User(user), points, rule: None },
                            Posting { account: Account::Adjustments, points: -points, rule: None },
                        ],
                    },
                )
                .await?;
                diesel::insert_into(requests::table)
                    .values((
                        requests::request_id.eq(request_id),
                        requests::user_id.eq(user),
                        requests::points.eq(points),
                        requests::reason.eq(&reason),
                        requests::transaction_id.eq(tx),
                    ))
                    .execute(conn)
                    .await?;
                Ok::<_, Error>(tx)
            })
            .await?;
        let row =
            store::get_transaction(&mut conn, tx_id).await?.ok_or_else(|| Error::internal("adjustment vanished"))?;
        let view = with_entries(&mut conn, vec![row]).await?.remove(0);
        Ok((view, balance_view(&mut conn, user).await?))
    }

    /// Points per partner per day over `[start, end]` (default: the 30 days before `end`, today).
    pub async fn partner_issuance(
        &self,
        partner_id: &str,
        start_day: &str,
        end_day: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<IssuanceRow>, String)> {
        let day = |s: &str, field: &'static str| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| Error::invalid("INVALID_ARGUMENT", field, format!("`{s}` is not a day like 2026-11-24")))
        };
        let partner = match partner_id {
            "" => None,
            id => Some(super::super::partner_service::parse_partner_id(id)?),
        };
        let today = Utc::now().date_naive();
        let end = if end_day.is_empty() { today } else { day(end_day, "end_day")? };
        let start = if start_day.is_empty() { end - Duration::days(30) } else { day(start_day, "start_day")? };
        if start > end || (end - start).num_days() >= MAX_REPORT_DAYS {
            return Err(Error::invalid(
                "INVALID_ARGUMENT",
                "start_day",
                "the range must run forward over at most 366 days",
            ));
        }
        let page = NamePage::parse(page_size, page_token)?;
        let after = match page.after_uuid()? {
            Some((d, id)) => Some((day(&d, "page_token")?, id)),
            None => None,
        };
        let mut conn = self.pool.get().await?;
        let rows = queries::partner_issuance(
            &mut conn,
            &self.config.report_time_zone,
            start,
            end,
            partner,
            after,
            page.fetch(),
        )
        .await?;
        Ok(page.finish(rows, |r| (r.day.format("%Y-%m-%d").to_string(), r.partner_id.to_string())))
    }

    pub async fn liabilities(&self) -> Result<LiabilityRow> {
        let mut conn = self.pool.get().await?;
        queries::liabilities(&mut conn).await
    }
}

async fn balance_view(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<BalanceView> {
    Ok(BalanceView {
        user_id,
        points: super::balance(conn, user_id).await?,
        held_points: super::held_balance(conn, user_id).await?,
        lifetime_earned_points: queries::lifetime_earned(conn, user_id).await?,
        next_expiry: queries::next_expiry(conn, user_id).await?,
    })
}

async fn with_entries(conn: &mut AsyncPgConnection, rows: Vec<TransactionRow>) -> Result<Vec<TransactionView>> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut by_tx: HashMap<Uuid, Vec<EntryView>> = HashMap::new();
    for e in store::entries_of(conn, &ids).await? {
        by_tx.entry(e.transaction_id).or_default().push(e);
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let entries = by_tx.remove(&row.id).unwrap_or_default();
            TransactionView { row, entries }
        })
        .collect())
}
