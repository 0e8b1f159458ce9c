//! SQL of the verification flows and second factors: one-time codes and link tokens, pending
//! email/mobile changes, TOTP authenticators and recovery codes. No rules here.

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{Text, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    db::schema::{
        pending_identifier_changes, recovery_codes, sessions, totp_factors, verification_codes,
    },
    error::Result,
};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = verification_codes)]
pub struct CodeRow {
    pub id: Uuid,
    pub flow: String,
    pub user_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    pub destination: String,
    pub kind: String,
    pub secret_hash: Vec<u8>,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub consumed_at: Option<DateTime<Utc>>,
    pub consumed_reason: Option<String>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = verification_codes)]
pub struct NewCode {
    pub id: Uuid,
    pub flow: String,
    pub user_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    pub destination: String,
    pub kind: String,
    pub secret_hash: Vec<u8>,
    pub expires_at: DateTime<Utc>,
}

/// Serialises the sends and confirmations of one flow and destination until the transaction
/// ends, so two concurrent sends cannot both pass the resend window.
pub async fn lock_destination(
    conn: &mut AsyncPgConnection,
    flow: &str,
    destination: &str,
) -> Result<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind::<Text, _>(format!("verification:{flow}:{destination}"))
        .execute(conn)
        .await?;
    Ok(())
}

/// The newest code of a flow for a destination (or, with `session`, of a session), locked.
pub async fn newest(
    conn: &mut AsyncPgConnection,
    flow: &str,
    destination: &str,
    session: Option<Uuid>,
) -> Result<Option<CodeRow>> {
    let order = (
        verification_codes::created_at.desc(),
        verification_codes::id.desc(),
    );
    let base = verification_codes::table
        .filter(verification_codes::flow.eq(flow))
        .select(CodeRow::as_select());
    Ok(match session {
        Some(s) => {
            base.filter(verification_codes::session_id.eq(s))
                .order(order)
                .limit(1)
                .for_update()
                .first(conn)
                .await
        }
        None => {
            base.filter(verification_codes::destination.eq(destination))
                .order(order)
                .limit(1)
                .for_update()
                .first(conn)
                .await
        }
    }
    .optional()?)
}

/// The link row with this token digest, locked.
pub async fn by_link_hash(
    conn: &mut AsyncPgConnection,
    flow: &str,
    hash: &[u8],
) -> Result<Option<CodeRow>> {
    Ok(verification_codes::table
        .filter(verification_codes::flow.eq(flow))
        .filter(verification_codes::kind.eq("link"))
        .filter(verification_codes::secret_hash.eq(hash))
        .select(CodeRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

/// Marks the live codes of a flow and destination (or session) superseded.
pub async fn supersede(
    conn: &mut AsyncPgConnection,
    flow: &str,
    destination: &str,
    session: Option<Uuid>,
) -> Result<()> {
    let now = Utc::now();
    let base = verification_codes::table
        .filter(verification_codes::flow.eq(flow))
        .filter(verification_codes::consumed_at.is_null());
    match session {
        Some(s) => {
            diesel::update(base.filter(verification_codes::session_id.eq(s)))
                .set((
                    verification_codes::consumed_at.eq(now),
                    verification_codes::consumed_reason.eq("superseded"),
                ))
                .execute(conn)
                .await?
        }
        None => {
            diesel::update(base.filter(verification_codes::destination.eq(destination)))
                .set((
                    verification_codes::consumed_at.eq(now),
                    verification_codes::consumed_reason.eq("superseded"),
                ))
                .execute(conn)
                .await?
        }
    };
    Ok(())
}

/// Supersedes every live code of a user in the given flows (e.g. password resets once the
/// password changed).
pub async fn supersede_user(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    flows: &[&str],
) -> Result<()> {
    diesel::update(
        verification_codes::table
            .filter(verification_codes::user_id.eq(user_id))
            .filter(verification_codes::flow.eq_any(flows))
            .filter(verification_codes::consumed_at.is_null()),
    )
    .set((
        verification_codes::consumed_at.eq(Utc::now()),
        verification_codes::consumed_reason.eq("superseded"),
    ))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn insert_code(conn: &mut AsyncPgConnection, code: NewCode) -> Result<()> {
    diesel::insert_into(verification_codes::table)
        .values(code)
        .execute(conn)
        .await?;
    Ok(())
}

/// Counts a wrong try; returns the new count.
pub async fn count_attempt(conn: &mut AsyncPgConnection, id: Uuid) -> Result<i32> {
    Ok(diesel::update(verification_codes::table.find(id))
        .set(verification_codes::attempts.eq(verification_codes::attempts + 1))
        .returning(verification_codes::attempts)
        .get_result(conn)
        .await?)
}

/// Ends a code: `used`, `superseded` or `burnt`.
pub async fn consume(conn: &mut AsyncPgConnection, id: Uuid, reason: &str) -> Result<()> {
    diesel::update(verification_codes::table.find(id))
        .set((
            verification_codes::consumed_at.eq(Utc::now()),
            verification_codes::consumed_reason.eq(reason),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

// ---- pending identifier changes --------------------------------------------------------------

pub async fn set_pending_change(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    kind: &str,
    value: &str,
) -> Result<()> {
    diesel::insert_into(pending_identifier_changes::table)
        .values((
            pending_identifier_changes::user_id.eq(user_id),
            pending_identifier_changes::kind.eq(kind),
            pending_identifier_changes::new_value.eq(value),
        ))
        .on_conflict((
            pending_identifier_changes::user_id,
            pending_identifier_changes::kind,
        ))
        .do_update()
        .set((
            pending_identifier_changes::new_value.eq(value),
            pending_identifier_changes::created_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn pending_change(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    kind: &str,
) -> Result<Option<String>> {
    Ok(pending_identifier_changes::table
        .find((user_id, kind))
        .select(pending_identifier_changes::new_value)
        .first(conn)
        .await
        .optional()?)
}

/// The user waiting to change to this identifier (the newest such change).
pub async fn user_with_pending(
    conn: &mut AsyncPgConnection,
    kind: &str,
    value: &str,
) -> Result<Option<Uuid>> {
    diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);
    let query = pending_identifier_changes::table
        .filter(pending_identifier_changes::kind.eq(kind))
        .select(pending_identifier_changes::user_id)
        .order(pending_identifier_changes::created_at.desc())
        .into_boxed();
    let query = if kind == "email" {
        query.filter(lower(pending_identifier_changes::new_value).eq(value.to_lowercase()))
    } else {
        query.filter(pending_identifier_changes::new_value.eq(value.to_string()))
    };
    Ok(query.first(conn).await.optional()?)
}

pub async fn clear_pending_change(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    kind: &str,
) -> Result<()> {
    diesel::delete(pending_identifier_changes::table.find((user_id, kind)))
        .execute(conn)
        .await?;
    Ok(())
}

// ---- sessions: the second factor ------------------------------------------------------------

pub async fn set_session_factor(
    conn: &mut AsyncPgConnection,
    session_id: Uuid,
    pending: Option<&str>,
    amr: &[String],
) -> Result<()> {
    diesel::update(sessions::table.find(session_id))
        .set((
            sessions::pending_second_factor.eq(pending),
            sessions::amr.eq(amr),
            sessions::last_used_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

// ---- TOTP and recovery codes -----------------------------------------------------------------

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = totp_factors)]
pub struct TotpRow {
    pub user_id: Uuid,
    pub secret_sealed: Vec<u8>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub pending_expires_at: Option<DateTime<Utc>>,
    pub last_used_step: i64,
    pub created_at: DateTime<Utc>,
}

pub async fn totp(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<Option<TotpRow>> {
    Ok(totp_factors::table
        .find(user_id)
        .select(TotpRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub async fn totp_enrolled(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<bool> {
    Ok(totp(conn, user_id)
        .await?
        .is_some_and(|t| t.confirmed_at.is_some()))
}

/// Stores a new unconfirmed secret, replacing an unconfirmed one (never a confirmed one).
pub async fn put_pending_totp(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    sealed: Vec<u8>,
    expires_at: DateTime<Utc>,
) -> Result<bool> {
    let n = diesel::sql_query(
        "INSERT INTO totp_factors (user_id, secret_sealed, pending_expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (user_id) DO UPDATE
            SET secret_sealed = excluded.secret_sealed, pending_expires_at = excluded.pending_expires_at,
                last_used_step = 0, created_at = now()
          WHERE totp_factors.confirmed_at IS NULL",
    )
    .bind::<SqlUuid, _>(user_id)
    .bind::<diesel::sql_types::Bytea, _>(sealed)
    .bind::<diesel::sql_types::Timestamptz, _>(expires_at)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

pub async fn confirm_totp(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<()> {
    diesel::update(totp_factors::table.find(user_id))
        .set((
            totp_factors::confirmed_at.eq(Utc::now()),
            totp_factors::pending_expires_at.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Records that time step `step` was used; false when it (or a later one) already was, which
/// makes a replayed code fail.
pub async fn use_totp_step(conn: &mut AsyncPgConnection, user_id: Uuid, step: i64) -> Result<bool> {
    let n = diesel::update(
        totp_factors::table
            .filter(totp_factors::user_id.eq(user_id))
            .filter(totp_factors::last_used_step.lt(step)),
    )
    .set(totp_factors::last_used_step.eq(step))
    .execute(conn)
    .await?;
    Ok(n == 1)
}

pub async fn delete_totp(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<bool> {
    let n = diesel::delete(totp_factors::table.find(user_id))
        .execute(conn)
        .await?;
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
        .execute(conn)
        .await?;
    Ok(n == 1)
}

/// Replaces a user's recovery codes.
pub async fn replace_recovery_codes(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    hashes: Vec<Vec<u8>>,
) -> Result<()> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
        .execute(conn)
        .await?;
    let rows: Vec<_> = hashes
        .into_iter()
        .map(|h| {
            (
                recovery_codes::id.eq(Uuid::now_v7()),
                recovery_codes::user_id.eq(user_id),
                recovery_codes::code_hash.eq(h),
            )
        })
        .collect();
    diesel::insert_into(recovery_codes::table)
        .values(rows)
        .execute(conn)
        .await?;
    Ok(())
}

/// Uses one recovery code; false when no unused code has this digest.
pub async fn use_recovery_code(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    hash: &[u8],
) -> Result<bool> {
    let n = diesel::update(
        recovery_codes::table
            .filter(recovery_codes::user_id.eq(user_id))
            .filter(recovery_codes::code_hash.eq(hash))
            .filter(recovery_codes::used_at.is_null()),
    )
    .set(recovery_codes::used_at.eq(Utc::now()))
    .execute(conn)
    .await?;
    Ok(n == 1)
}

pub async fn recovery_codes_left(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<i64> {
    Ok(recovery_codes::table
        .filter(recovery_codes::user_id.eq(user_id))
        .filter(recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)
        .await?)
}
