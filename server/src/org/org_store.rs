//! SQL for organizations and their memberships. No protobuf types and no business rules here.

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    result::DatabaseErrorKind,
    sql_types::{BigInt, Nullable, Text},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    db::schema::{org_members, organizations, users},
    error::{Error, Result},
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, QueryableByName)]
#[diesel(table_name = organizations)]
pub struct OrganizationRow {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub avatar_url: String,
    pub owner_user_id: Uuid,
    pub properties: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The columns an update may change; `None` leaves a column alone.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = organizations)]
pub struct OrganizationChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub avatar_url: Option<String>,
    pub owner_user_id: Option<Uuid>,
    pub properties: Option<serde_json::Value>,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = org_members)]
pub struct MemberRow {
    pub organization_id: Uuid,
    pub user_id: Uuid,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

/// A membership with what the listing shows of its user.
#[derive(Debug, Clone)]
pub struct MemberView {
    pub member: MemberRow,
    pub email: Option<String>,
    pub display_name: String,
    pub avatar_url: String,
}

/// Filters of a member listing.
#[derive(Debug, Default)]
pub struct MemberFilter {
    pub role: Option<String>,
    /// Substring of the email or name, case-insensitive.
    pub query: Option<String>,
}

fn like(q: &str) -> String {
    format!(
        "%{}%",
        q.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

pub async fn insert(
    conn: &mut AsyncPgConnection,
    row: &OrganizationRow,
) -> Result<OrganizationRow> {
    Ok(diesel::insert_into(organizations::table)
        .values(row.clone())
        .returning(OrganizationRow::as_returning())
        .get_result(conn)
        .await?)
}

pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<OrganizationRow>> {
    Ok(organizations::table
        .find(id)
        .select(OrganizationRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The organization, locked until the end of the transaction: every change of its ownership
/// and membership set takes this lock first, so they run one at a time.
pub async fn get_for_update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<OrganizationRow>> {
    Ok(organizations::table
        .find(id)
        .select(OrganizationRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    changes: OrganizationChanges,
) -> Result<Option<OrganizationRow>> {
    Ok(diesel::update(organizations::table.find(id))
        .set(changes)
        .returning(OrganizationRow::as_returning())
        .get_result(conn)
        .await
        .optional()?)
}

/// Deletes the organization with everything of it (`ON DELETE CASCADE`).
pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool> {
    Ok(diesel::delete(organizations::table.find(id))
        .execute(conn)
        .await?
        == 1)
}

/// One page by `(name, id)`, strictly after `after`. `user_id` keeps the organizations that user
/// is a member of.
pub async fn list(
    conn: &mut AsyncPgConnection,
    query: Option<&str>,
    user_id: Option<Uuid>,
    after: Option<(String, Uuid)>,
    limit: i64,
) -> Result<Vec<OrganizationRow>> {
    let mut q = organizations::table
        .select(OrganizationRow::as_select())
        .into_boxed();
    if let Some(text) = query {
        q = q.filter(organizations::name.ilike(like(text)));
    }
    if let Some(user) = user_id {
        q = q.filter(
            organizations::id.eq_any(
                org_members::table
                    .filter(org_members::user_id.eq(user))
                    .select(org_members::organization_id),
            ),
        );
    }
    if let Some((name, id)) = after {
        q = q.filter(
            organizations::name
                .gt(name.clone())
                .or(organizations::name.eq(name).and(organizations::id.gt(id))),
        );
    }
    Ok(
        q.order((organizations::name.asc(), organizations::id.asc()))
            .limit(limit)
            .load(conn)
            .await?,
    )
}

pub async fn member_count(conn: &mut AsyncPgConnection, org: Uuid) -> Result<i64> {
    Ok(org_members::table
        .filter(org_members::organization_id.eq(org))
        .count()
        .get_result(conn)
        .await?)
}

/// A membership that collides with an existing one means the user already belongs.
fn member_conflict(err: diesel::result::Error) -> Error {
    if let diesel::result::Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) = &err {
        if info.constraint_name() == Some("org_members_one_owner") {
            return Error::FailedPrecondition {
                reason: "OWNER_ROLE_NOT_ASSIGNABLE",
                message: "the organization already has its owner".into(),
            };
        }
        return Error::already_exists(
            "ALREADY_ORGANIZATION_MEMBER",
            "the user is already a member of this organization",
        );
    }
    if let diesel::result::Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) = &err {
        return Error::not_found("ORG_ROLE_NOT_FOUND", "no such role in this organization");
    }
    err.into()
}

pub async fn insert_member(conn: &mut AsyncPgConnection, row: MemberRow) -> Result<MemberRow> {
    diesel::insert_into(org_members::table)
        .values(row)
        .returning(MemberRow::as_returning())
        .get_result(conn)
        .await
        .map_err(member_conflict)
}

pub async fn get_member(
    conn: &mut AsyncPgConnection,
    org: Uuid,
    user: Uuid,
) -> Result<Option<MemberRow>> {
    Ok(org_members::table
        .find((org, user))
        .select(MemberRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub async fn set_member_role(
    conn: &mut AsyncPgConnection,
    org: Uuid,
    user: Uuid,
    role: &str,
) -> Result<Option<MemberRow>> {
    diesel::update(org_members::table.find((org, user)))
        .set(org_members::role.eq(role))
        .returning(MemberRow::as_returning())
        .get_result(conn)
        .await
        .optional()
        .map_err(member_conflict)
}

pub async fn delete_member(conn: &mut AsyncPgConnection, org: Uuid, user: Uuid) -> Result<bool> {
    Ok(diesel::delete(org_members::table.find((org, user)))
        .execute(conn)
        .await?
        == 1)
}

/// The member holding `owner`, if any.
pub async fn owner(conn: &mut AsyncPgConnection, org: Uuid) -> Result<Option<MemberRow>> {
    Ok(org_members::table
        .filter(org_members::organization_id.eq(org))
        .filter(org_members::role.eq("owner"))
        .select(MemberRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// A user's memberships, for the `orgs` claim.
pub async fn memberships_of(conn: &mut AsyncPgConnection, user: Uuid) -> Result<Vec<MemberRow>> {
    Ok(org_members::table
        .filter(org_members::user_id.eq(user))
        .order(org_members::created_at.asc())
        .select(MemberRow::as_select())
        .load(conn)
        .await?)
}

/// One page of members with their user, newest first by `(created_at, user_id)`.
pub async fn list_members(
    conn: &mut AsyncPgConnection,
    org: Uuid,
    filter: &MemberFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<MemberView>> {
    let mut q = org_members::table
        .inner_join(users::table)
        .filter(org_members::organization_id.eq(org))
        .select((
            MemberRow::as_select(),
            users::email,
            users::given_name,
            users::family_name,
            users::full_name,
            users::avatar_url,
        ))
        .into_boxed();
    if let Some(role) = &filter.role {
        q = q.filter(org_members::role.eq(role.clone()));
    }
    if let Some(text) = &filter.query {
        let pattern = like(text);
        q = q.filter(
            users::email
                .ilike(pattern.clone())
                .or(users::given_name.ilike(pattern.clone()))
                .or(users::family_name.ilike(pattern.clone()))
                .or(users::full_name.ilike(pattern)),
        );
    }
    if let Some((at, id)) = after {
        q = q.filter(
            org_members::created_at.lt(at).or(org_members::created_at
                .eq(at)
                .and(org_members::user_id.lt(id))),
        );
    }
    let rows: Vec<(MemberRow, Option<String>, String, String, String, String)> = q
        .order((org_members::created_at.desc(), org_members::user_id.desc()))
        .limit(limit)
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(member, email, given, family, full, avatar_url)| MemberView {
                member,
                email,
                display_name: display_name(&given, &family, &full),
                avatar_url,
            },
        )
        .collect())
}

/// One member with their user.
pub async fn member_view(
    conn: &mut AsyncPgConnection,
    org: Uuid,
    user: Uuid,
) -> Result<Option<MemberView>> {
    let row: Option<(MemberRow, Option<String>, String, String, String, String)> =
        org_members::table
            .inner_join(users::table)
            .filter(org_members::organization_id.eq(org))
            .filter(org_members::user_id.eq(user))
            .select((
                MemberRow::as_select(),
                users::email,
                users::given_name,
                users::family_name,
                users::full_name,
                users::avatar_url,
            ))
            .first(conn)
            .await
            .optional()?;
    Ok(row.map(
        |(member, email, given, family, full, avatar_url)| MemberView {
            member,
            email,
            display_name: display_name(&given, &family, &full),
            avatar_url,
        },
    ))
}

pub fn display_name(given: &str, family: &str, full: &str) -> String {
    if full.is_empty() {
        format!("{given} {family}").trim().to_string()
    } else {
        full.to_string()
    }
}

/// One row of a user's memberships listing.
#[derive(Debug, Clone, QueryableByName)]
pub struct MembershipRow {
    #[diesel(embed)]
    pub organization: OrganizationRow,
    #[diesel(sql_type = Text)]
    pub role: String,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub joined_at: DateTime<Utc>,
}

/// One page of a user's memberships by organization `(name, id)`, strictly after `after`.
pub async fn list_memberships(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    after: Option<(String, Uuid)>,
    limit: i64,
) -> Result<Vec<MembershipRow>> {
    Ok(diesel::sql_query(
        "SELECT o.*, m.role, m.created_at AS joined_at FROM org_members m \
         JOIN organizations o ON o.id = m.organization_id \
         WHERE m.user_id = $1 AND ($2::text IS NULL OR (o.name, o.id) > ($2, $3)) \
         ORDER BY o.name, o.id LIMIT $4",
    )
    .bind::<diesel::sql_types::Uuid, _>(user)
    .bind::<Nullable<Text>, _>(after.as_ref().map(|a| a.0.clone()))
    .bind::<Nullable<diesel::sql_types::Uuid>, _>(after.map(|a| a.1))
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?)
}
