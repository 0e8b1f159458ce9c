//! Ledger accounts: found or created on first use; the materialised balances (USER, USER_HOLD)
//! moved with the database CHECK as the final guard against a negative balance.

use diesel::{
    prelude::*,
    result::{DatabaseErrorKind, Error as DieselError},
    sql_types::{BigInt, Text, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::types::Account;
use crate::{
    db::schema::loyalty_accounts as accounts,
    error::{Error, Result},
};

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// The error of a debit beyond the balance.
pub fn insufficient_points() -> Error {
    Error::FailedPrecondition { reason: "INSUFFICIENT_POINTS", message: "the balance does not cover this debit".into() }
}

/// The id of a shared (not materialised) account, creating its row on first use. Only reads in
/// the common case: shared accounts are never locked by postings.
pub async fn shared_account_id(conn: &mut AsyncPgConnection, account: Account) -> Result<Uuid> {
    debug_assert!(!account.materialised());
    if let Some(id) = find(conn, account).await? {
        return Ok(id);
    }
    let inserted: Option<Uuid> = diesel::insert_into(accounts::table)
        .values((
            accounts::id.eq(Uuid::now_v7()),
            accounts::account_type.eq(account.type_name()),
            accounts::owner_id.eq(account.owner()),
        ))
        .on_conflict_do_nothing()
        .returning(accounts::id)
        .get_result(conn)
        .await
        .optional()?;
    match inserted {
        Some(id) => Ok(id),
        // Created concurrently by another transaction: this statement now sees it.
        None => find(conn, account).await?.ok_or_else(|| Error::internal("ledger account vanished")),
    }
}

async fn find(conn: &mut AsyncPgConnection, account: Account) -> Result<Option<Uuid>> {
    Ok(accounts::table
        .filter(accounts::account_type.eq(account.type_name()))
        .filter(accounts::owner_id.eq(account.owner()))
        .select(accounts::id)
        .first(conn)
        .await
        .optional()?)
}

/// Adds `delta` to a materialised balance (creating the account on first use) and returns the
/// account id. The row stays locked until the caller's transaction ends, which serialises every
/// posting of that user (and so their lot consumption). A result below zero violates the CHECK:
/// `INSUFFICIENT_POINTS`.
pub async fn move_balance(conn: &mut AsyncPgConnection, account: Account, delta: i64) -> Result<Uuid> {
    debug_assert!(account.materialised());
    // Postgres checks the proposed row of an INSERT .. ON CONFLICT before finding the conflict,
    // so a debit is a plain UPDATE (no account yet means a balance of 0: nothing to debit).
    let row: std::result::Result<Option<IdRow>, DieselError> = if delta < 0 {
        diesel::sql_query(
            "UPDATE loyalty_accounts SET balance = balance + $3 WHERE account_type = $1 AND owner_id = $2 RETURNING id",
        )
        .bind::<Text, _>(account.type_name())
        .bind::<SqlUuid, _>(account.owner())
        .bind::<BigInt, _>(delta)
        .get_result(conn)
        .await
        .optional()
    } else {
        diesel::sql_query(
            "INSERT INTO loyalty_accounts (id, account_type, owner_id, balance) VALUES ($4, $1, $2, $3) \
             ON CONFLICT (account_type, owner_id) DO UPDATE SET balance = loyalty_accounts.balance + EXCLUDED.balance \
             RETURNING id",
        )
        .bind::<Text, _>(account.type_name())
        .bind::<SqlUuid, _>(account.owner())
        .bind::<BigInt, _>(delta)
        .bind::<SqlUuid, _>(Uuid::now_v7())
        .get_result(conn)
        .await
        .optional()
    };
    match row {
        Ok(Some(row)) => Ok(row.id),
        Ok(None) => Err(insufficient_points()),
        Err(DieselError::DatabaseError(DatabaseErrorKind::CheckViolation, _)) => Err(insufficient_points()),
        Err(err) => Err(err.into()),
    }
}

/// A materialised balance; 0 when the account does not exist yet.
pub async fn materialised_balance(conn: &mut AsyncPgConnection, account: Account) -> Result<i64> {
    let balance: Option<Option<i64>> = accounts::table
        .filter(accounts::account_type.eq(account.type_name()))
        .filter(accounts::owner_id.eq(account.owner()))
        .select(accounts::balance)
        .first(conn)
        .await
        .optional()?;
    Ok(balance.flatten().unwrap_or(0))
}
