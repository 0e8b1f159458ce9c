//! SQL of ledger transactions and entries: the inserts `post` makes and the reads the services
//! and `mgpass ledger verify` need. No business rules here.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    db::schema::{loyalty_accounts, loyalty_entries, loyalty_transactions},
    error::Result,
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = loyalty_transactions)]
pub struct TransactionRow {
    pub id: Uuid,
    pub kind: String,
    pub user_id: Uuid,
    pub points: i64,
    pub partner_id: Option<Uuid>,
    pub event_id: Option<Uuid>,
    pub order_id: Option<Uuid>,
    pub payout_id: Option<Uuid>,
    pub reversed_transaction_id: Option<Uuid>,
    pub reason: Option<String>,
    pub actor_user_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = loyalty_entries)]
pub struct NewEntryRow {
    pub transaction_id: Uuid,
    pub account_id: Uuid,
    pub points: i64,
    pub rule_id: Option<Uuid>,
    pub rule_version: Option<i32>,
    pub lot_id: Option<Uuid>,
}

/// An entry with its account's type and owner.
#[derive(Debug, Clone, Queryable)]
pub struct EntryView {
    pub transaction_id: Uuid,
    pub account_type: String,
    pub owner_id: Uuid,
    pub points: i64,
    pub rule_id: Option<Uuid>,
    pub rule_version: Option<i32>,
    pub lot_id: Option<Uuid>,
}

/// The raw diesel result: the caller maps the unique violation of `reversed_transaction_id`.
pub async fn insert_transaction(conn: &mut AsyncPgConnection, row: &TransactionRow) -> QueryResult<()> {
    diesel::insert_into(loyalty_transactions::table).values(row).execute(conn).await.map(|_| ())
}

pub async fn insert_entries(conn: &mut AsyncPgConnection, rows: &[NewEntryRow]) -> Result<()> {
    diesel::insert_into(loyalty_entries::table).values(rows).execute(conn).await?;
    Ok(())
}

pub async fn get_transaction(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<TransactionRow>> {
    Ok(loyalty_transactions::table.find(id).select(TransactionRow::as_select()).first(conn).await.optional()?)
}

/// The entries of the given transactions, in posting order.
pub async fn entries_of(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> Result<Vec<EntryView>> {
    Ok(loyalty_entries::table
        .inner_join(loyalty_accounts::table)
        .filter(loyalty_entries::transaction_id.eq_any(ids))
        .order(loyalty_entries::id.asc())
        .select((
            loyalty_entries::transaction_id,
            loyalty_accounts::account_type,
            loyalty_accounts::owner_id,
            loyalty_entries::points,
            loyalty_entries::rule_id,
            loyalty_entries::rule_version,
            loyalty_entries::lot_id,
        ))
        .load(conn)
        .await?)
}
