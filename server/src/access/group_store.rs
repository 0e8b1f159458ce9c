//! SQL for user groups (`user_groups`) and their members (`user_group_members`). No protobuf
//! types and no business rules here.

use chrono::{DateTime, Utc};
use diesel::{prelude::*, result::DatabaseErrorKind};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    db::schema::{user_group_members as members, user_groups as groups, users},
    error::{Error, Result},
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = groups)]
pub struct GroupRow {
    pub id: Uuid,
    pub organization_id: Option<Uuid>,
    pub name: String,
    pub description: String,
    pub avatar_url: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The columns an update may change; `None` leaves a column alone.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = groups)]
pub struct GroupChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub avatar_url: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// One member with the user's display fields.
#[derive(Debug, Clone, Queryable)]
pub struct MemberRow {
    pub group_id: Uuid,
    pub user_id: Uuid,
    pub adder_user_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub email: Option<String>,
    pub full_name: String,
}

/// Both unique indexes (global names, and names per organization) mean the same to a client.
fn conflict(err: diesel::result::Error) -> Error {
    if let diesel::result::Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) = &err {
        return Error::already_exists(
            "GROUP_NAME_TAKEN",
            "another group of this scope has this name",
        );
    }
    if let diesel::result::Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) = &err {
        return Error::not_found("ORGANIZATION_NOT_FOUND", "no such organization");
    }
    err.into()
}

pub async fn insert(conn: &mut AsyncPgConnection, row: GroupRow) -> Result<GroupRow> {
    diesel::insert_into(groups::table)
        .values(row)
        .returning(GroupRow::as_returning())
        .get_result(conn)
        .await
        .map_err(conflict)
}

/// The group, if it belongs to `organization` (`None`: a global group). A group of another scope
/// is not found: organizations never see each other's groups.
pub async fn get(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    organization: Option<Uuid>,
) -> Result<Option<GroupRow>> {
    let mut query = groups::table
        .find(id)
        .select(GroupRow::as_select())
        .into_boxed();
    query = match organization {
        Some(org) => query.filter(groups::organization_id.eq(org)),
        None => query.filter(groups::organization_id.is_null()),
    };
    Ok(query.first(conn).await.optional()?)
}

/// Like [`get`], share-locked until the end of the transaction: members may be added
/// concurrently, the group cannot be deleted meanwhile.
pub async fn get_for_share(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    org: Option<Uuid>,
) -> Result<Option<GroupRow>> {
    let row: Option<GroupRow> = groups::table
        .find(id)
        .select(GroupRow::as_select())
        .for_share()
        .first(conn)
        .await
        .optional()?;
    Ok(row.filter(|g| g.organization_id == org))
}

pub async fn member_count(conn: &mut AsyncPgConnection, id: Uuid) -> Result<i64> {
    Ok(members::table
        .filter(members::group_id.eq(id))
        .count()
        .get_result(conn)
        .await?)
}

/// One page of a scope's groups by name, strictly after the `after` name (names are unique per
/// scope, case-insensitively).
pub async fn list(
    conn: &mut AsyncPgConnection,
    organization: Option<Uuid>,
    query: Option<&str>,
    member: Option<Uuid>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<GroupRow>> {
    let mut q = groups::table.select(GroupRow::as_select()).into_boxed();
    q = match organization {
        Some(org) => q.filter(groups::organization_id.eq(org)),
        None => q.filter(groups::organization_id.is_null()),
    };
    if let Some(text) = query {
        let pattern = format!(
            "%{}%",
            text.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        q = q.filter(groups::name.ilike(pattern));
    }
    if let Some(user) = member {
        q = q.filter(
            groups::id.eq_any(
                members::table
                    .filter(members::user_id.eq(user))
                    .select(members::group_id),
            ),
        );
    }
    if let Some(after) = after {
        q = q.filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>("lower(name) > lower(")
                .bind::<diesel::sql_types::Text, _>(after.to_string())
                .sql(")"),
        );
    }
    Ok(
        q.order(diesel::dsl::sql::<diesel::sql_types::Text>("lower(name)"))
            .limit(limit)
            .load(conn)
            .await?,
    )
}

pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    changes: GroupChanges,
) -> Result<Option<GroupRow>> {
    diesel::update(groups::table.find(id))
        .set(changes)
        .returning(GroupRow::as_returning())
        .get_result(conn)
        .await
        .optional()
        .map_err(conflict)
}

/// Deletes the group; memberships and grants to it go with it (`ON DELETE CASCADE`).
pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool> {
    Ok(diesel::delete(groups::table.find(id)).execute(conn).await? == 1)
}

/// Whether the user exists, share-locked so it cannot be deleted before the membership commits.
pub async fn lock_user(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool> {
    Ok(users::table
        .find(id)
        .select(users::id)
        .for_share()
        .first::<Uuid>(conn)
        .await
        .optional()?
        .is_some())
}

/// Adds a member; `false` when already a member (the primary key decides, whatever the race).
pub async fn add_member(
    conn: &mut AsyncPgConnection,
    group: Uuid,
    user: Uuid,
    adder: Option<Uuid>,
) -> Result<bool> {
    let inserted = diesel::insert_into(members::table)
        .values((
            members::group_id.eq(group),
            members::user_id.eq(user),
            members::adder_user_id.eq(adder),
            members::created_at.eq(Utc::now()),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(inserted == 1)
}

pub async fn remove_member(conn: &mut AsyncPgConnection, group: Uuid, user: Uuid) -> Result<bool> {
    Ok(diesel::delete(members::table.find((group, user)))
        .execute(conn)
        .await?
        == 1)
}

/// One member with display fields.
pub async fn member(
    conn: &mut AsyncPgConnection,
    group: Uuid,
    user: Uuid,
) -> Result<Option<MemberRow>> {
    Ok(members::table
        .inner_join(users::table.on(users::id.eq(members::user_id)))
        .filter(members::group_id.eq(group))
        .filter(members::user_id.eq(user))
        .select((
            members::group_id,
            members::user_id,
            members::adder_user_id,
            members::created_at,
            users::email,
            users::full_name,
        ))
        .first(conn)
        .await
        .optional()?)
}

/// One page of members, newest first, strictly after the `after` cursor `(created_at, user_id)`.
pub async fn members(
    conn: &mut AsyncPgConnection,
    group: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<MemberRow>> {
    let mut q = members::table
        .inner_join(users::table.on(users::id.eq(members::user_id)))
        .filter(members::group_id.eq(group))
        .select((
            members::group_id,
            members::user_id,
            members::adder_user_id,
            members::created_at,
            users::email,
            users::full_name,
        ))
        .into_boxed();
    if let Some((at, id)) = after {
        q = q.filter(
            members::created_at
                .lt(at)
                .or(members::created_at.eq(at).and(members::user_id.lt(id))),
        );
    }
    Ok(
        q.order((members::created_at.desc(), members::user_id.desc()))
            .limit(limit)
            .load(conn)
            .await?,
    )
}

/// The groups a user belongs to that apply in `organization`: the global ones, plus that
/// organization's.
pub async fn groups_of_user(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    organization: Option<Uuid>,
) -> Result<Vec<Uuid>> {
    let mut q = members::table
        .inner_join(groups::table)
        .filter(members::user_id.eq(user))
        .select(groups::id)
        .into_boxed();
    q = match organization {
        Some(org) => q.filter(
            groups::organization_id
                .is_null()
                .or(groups::organization_id.eq(org)),
        ),
        None => q.filter(groups::organization_id.is_null()),
    };
    Ok(q.load(conn).await?)
}
