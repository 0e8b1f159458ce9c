//! SQL for organization invitations. No protobuf types and no business rules here.

use chrono::{DateTime, Utc};
use diesel::{prelude::*, result::DatabaseErrorKind};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    db::schema::org_invitations,
    error::{Error, Result},
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = org_invitations)]
pub struct InvitationRow {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub email: String,
    pub role: String,
    /// SHA-256 of the token.
    pub token_hash: Vec<u8>,
    pub inviter_user_id: Option<Uuid>,
    pub status: String,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub accepter_user_id: Option<Uuid>,
}

impl InvitationRow {
    /// The status as clients see it: a pending invitation past its expiry is expired.
    pub fn effective_status(&self, now: DateTime<Utc>) -> &str {
        if self.status == "pending" && self.expires_at <= now {
            "expired"
        } else {
            &self.status
        }
    }
}

pub async fn insert(conn: &mut AsyncPgConnection, row: InvitationRow) -> Result<InvitationRow> {
    diesel::insert_into(org_invitations::table)
        .values(row)
        .returning(InvitationRow::as_returning())
        .get_result(conn)
        .await
        .map_err(|err| match &err {
            diesel::result::Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                Error::already_exists(
                    "INVITATION_PENDING",
                    "this address has a pending invitation to the organization; revoke it first",
                )
            }
            diesel::result::Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
                Error::not_found("ORG_ROLE_NOT_FOUND", "no such role in this organization")
            }
            _ => err.into(),
        })
}

/// Marks the pending invitations of `email` to `org` that are past their expiry as expired, so
/// that a new one can be sent.
pub async fn expire_stale(conn: &mut AsyncPgConnection, org: Uuid, email: &str) -> Result<usize> {
    Ok(diesel::sql_query(
        "UPDATE org_invitations SET status = 'expired', closed_at = expires_at \
         WHERE organization_id = $1 AND lower(email) = lower($2) AND status = 'pending' AND expires_at <= now()",
    )
    .bind::<diesel::sql_types::Uuid, _>(org)
    .bind::<diesel::sql_types::Text, _>(email)
    .execute(conn)
    .await?)
}

pub async fn get(
    conn: &mut AsyncPgConnection,
    org: Uuid,
    id: Uuid,
) -> Result<Option<InvitationRow>> {
    Ok(org_invitations::table
        .filter(org_invitations::organization_id.eq(org))
        .filter(org_invitations::id.eq(id))
        .select(InvitationRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub async fn get_for_update(
    conn: &mut AsyncPgConnection,
    org: Uuid,
    id: Uuid,
) -> Result<Option<InvitationRow>> {
    Ok(org_invitations::table
        .filter(org_invitations::organization_id.eq(org))
        .filter(org_invitations::id.eq(id))
        .select(InvitationRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

/// The invitation of a token digest (a unique index; tokens are 256 random bits).
pub async fn by_token_hash(
    conn: &mut AsyncPgConnection,
    hash: &[u8],
) -> Result<Option<InvitationRow>> {
    Ok(org_invitations::table
        .filter(org_invitations::token_hash.eq(hash))
        .select(InvitationRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub async fn by_token_hash_for_update(
    conn: &mut AsyncPgConnection,
    hash: &[u8],
) -> Result<Option<InvitationRow>> {
    Ok(org_invitations::table
        .filter(org_invitations::token_hash.eq(hash))
        .select(InvitationRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

/// One page, newest first. `status` filters by the stored status, `expired` meaning pending
/// ones past their expiry too.
pub async fn list(
    conn: &mut AsyncPgConnection,
    org: Uuid,
    status: Option<&str>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<InvitationRow>> {
    let now = Utc::now();
    let mut q = org_invitations::table
        .filter(org_invitations::organization_id.eq(org))
        .select(InvitationRow::as_select())
        .into_boxed();
    match status {
        Some("pending") => {
            q = q
                .filter(org_invitations::status.eq("pending"))
                .filter(org_invitations::expires_at.gt(now));
        }
        Some("expired") => {
            q = q.filter(
                org_invitations::status
                    .eq("expired")
                    .or(org_invitations::status
                        .eq("pending")
                        .and(org_invitations::expires_at.le(now))),
            );
        }
        Some(other) => q = q.filter(org_invitations::status.eq(other.to_string())),
        None => {}
    }
    if let Some((at, id)) = after {
        q = q.filter(
            org_invitations::created_at
                .lt(at)
                .or(org_invitations::created_at
                    .eq(at)
                    .and(org_invitations::id.lt(id))),
        );
    }
    Ok(q.order((
        org_invitations::created_at.desc(),
        org_invitations::id.desc(),
    ))
    .limit(limit)
    .load(conn)
    .await?)
}

/// Closes a pending invitation (`accepted` or `revoked`).
pub async fn close(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    status: &str,
    accepter: Option<Uuid>,
) -> Result<InvitationRow> {
    Ok(diesel::update(org_invitations::table.find(id))
        .set((
            org_invitations::status.eq(status),
            org_invitations::closed_at.eq(Some(Utc::now())),
            org_invitations::accepter_user_id.eq(accepter),
        ))
        .returning(InvitationRow::as_returning())
        .get_result(conn)
        .await?)
}

/// Accepting an invitation proves the address: the user's email counts as verified.
pub async fn mark_email_verified(conn: &mut AsyncPgConnection, user: Uuid) -> Result<()> {
    use crate::db::schema::users;
    diesel::update(
        users::table
            .find(user)
            .filter(users::email_verified.eq(false)),
    )
    .set((
        users::email_verified.eq(true),
        users::updated_at.eq(Utc::now()),
    ))
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether a user with this email (case-insensitive) is a member of the organization.
pub async fn email_is_member(conn: &mut AsyncPgConnection, org: Uuid, email: &str) -> Result<bool> {
    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        found: bool,
    }
    let row: Found = diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM org_members m JOIN users u ON u.id = m.user_id \
         WHERE m.organization_id = $1 AND lower(u.email) = lower($2)) AS found",
    )
    .bind::<diesel::sql_types::Uuid, _>(org)
    .bind::<diesel::sql_types::Text, _>(email)
    .get_result(conn)
    .await?;
    Ok(row.found)
}
