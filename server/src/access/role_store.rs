//! SQL for roles and their assignments to users (`users.roles`) and applications
//! (`application_roles`). No protobuf types and no business rules here.

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    result::DatabaseErrorKind,
    sql_types::{Array, BigInt, Nullable, Text, Timestamptz},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    db::schema::{application_roles, applications, roles, users},
    error::{Error, Result},
    oauth::model::ResourceScopes,
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = roles)]
pub struct RoleRow {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    /// `Vec<ResourceScopes>` as JSON.
    pub scopes: serde_json::Value,
    pub default_for_new_users: bool,
    pub m2m_only: bool,
    pub system: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl RoleRow {
    pub fn resource_scopes(&self) -> Vec<ResourceScopes> {
        serde_json::from_value(self.scopes.clone()).unwrap_or_default()
    }
}

/// The columns an update may change; `None` leaves a column alone.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = roles)]
pub struct RoleChanges {
    pub description: Option<String>,
    pub scopes: Option<serde_json::Value>,
    pub default_for_new_users: Option<bool>,
    pub m2m_only: Option<bool>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// Filters of a role listing.
#[derive(Debug, Default)]
pub struct RoleFilter {
    /// Substring of the name, case-insensitive.
    pub query: Option<String>,
    /// Only roles of these names (a user's `roles`).
    pub names: Option<Vec<String>>,
    /// Only roles assigned to this application.
    pub application_id: Option<Uuid>,
}

/// One holder of a role, as stored.
#[derive(Debug, Clone, QueryableByName)]
pub struct AssignmentRow {
    /// `user` or `application`.
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub id: Uuid,
    /// The position in the listing: the user's creation, or the application assignment's.
    #[diesel(sql_type = Timestamptz)]
    pub sort_at: DateTime<Utc>,
    /// When the role was assigned, where that is recorded (applications only).
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub assigned_at: Option<DateTime<Utc>>,
}

/// Both unique indexes (`name`, and `lower(name)`) mean the same thing to a client.
fn conflict(err: diesel::result::Error) -> Error {
    if let diesel::result::Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) = &err {
        return Error::already_exists("ROLE_NAME_TAKEN", "another role has this name");
    }
    err.into()
}

/// The roles with these names (a user's `roles`). M2M-only roles never apply to users.
pub async fn user_roles_by_name(
    conn: &mut AsyncPgConnection,
    names: &[String],
) -> Result<Vec<RoleRow>> {
    Ok(roles::table
        .filter(roles::name.eq_any(names))
        .filter(roles::m2m_only.eq(false))
        .select(RoleRow::as_select())
        .load(conn)
        .await?)
}

/// The roles assigned to an application.
pub async fn application_roles(
    conn: &mut AsyncPgConnection,
    application_id: Uuid,
) -> Result<Vec<RoleRow>> {
    Ok(application_roles::table
        .inner_join(roles::table)
        .filter(application_roles::application_id.eq(application_id))
        .select(RoleRow::as_select())
        .load(conn)
        .await?)
}

pub async fn insert(conn: &mut AsyncPgConnection, row: RoleRow) -> Result<RoleRow> {
    diesel::insert_into(roles::table)
        .values(row)
        .returning(RoleRow::as_returning())
        .get_result(conn)
        .await
        .map_err(conflict)
}

pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<RoleRow>> {
    Ok(roles::table
        .find(id)
        .select(RoleRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The role, locked until the end of the transaction (against every other writer of it).
pub async fn get_for_update(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<RoleRow>> {
    Ok(roles::table
        .find(id)
        .select(RoleRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

/// The role of this name, locked until the end of the transaction.
pub async fn get_by_name_for_update(
    conn: &mut AsyncPgConnection,
    name: &str,
) -> Result<Option<RoleRow>> {
    Ok(roles::table
        .filter(roles::name.eq(name))
        .select(RoleRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

/// The role, share-locked until the end of the transaction: it cannot be deleted or changed
/// meanwhile, but concurrent assignments of it proceed.
pub async fn get_for_share(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<RoleRow>> {
    Ok(roles::table
        .find(id)
        .select(RoleRow::as_select())
        .for_share()
        .first(conn)
        .await
        .optional()?)
}

/// The roles with these names, share-locked in id order until the end of the transaction.
pub async fn lock_by_names(conn: &mut AsyncPgConnection, names: &[String]) -> Result<Vec<RoleRow>> {
    Ok(roles::table
        .filter(roles::name.eq_any(names))
        .order(roles::id)
        .select(RoleRow::as_select())
        .for_share()
        .load(conn)
        .await?)
}

/// The roles every new user gets, share-locked like [`lock_by_names`].
pub async fn lock_defaults(conn: &mut AsyncPgConnection) -> Result<Vec<RoleRow>> {
    Ok(roles::table
        .filter(roles::default_for_new_users.eq(true))
        .order(roles::id)
        .select(RoleRow::as_select())
        .for_share()
        .load(conn)
        .await?)
}

/// One page, newest first, strictly after the `after` cursor `(created_at, id)`.
pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: &RoleFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<RoleRow>> {
    let mut query = roles::table.select(RoleRow::as_select()).into_boxed();
    if let Some(q) = &filter.query {
        let pattern = format!(
            "%{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        query = query.filter(roles::name.ilike(pattern));
    }
    if let Some(names) = &filter.names {
        query = query.filter(roles::name.eq_any(names.clone()));
    }
    if let Some(app) = filter.application_id {
        query = query.filter(
            roles::id.eq_any(
                application_roles::table
                    .filter(application_roles::application_id.eq(app))
                    .select(application_roles::role_id),
            ),
        );
    }
    if let Some((at, id)) = after {
        query = query.filter(
            roles::created_at
                .lt(at)
                .or(roles::created_at.eq(at).and(roles::id.lt(id))),
        );
    }
    Ok(query
        .order((roles::created_at.desc(), roles::id.desc()))
        .limit(limit)
        .load(conn)
        .await?)
}

pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    changes: RoleChanges,
) -> Result<Option<RoleRow>> {
    Ok(diesel::update(roles::table.find(id))
        .set(changes)
        .returning(RoleRow::as_returning())
        .get_result(conn)
        .await
        .optional()?)
}

/// Deletes the role; its application assignments go with it (`ON DELETE CASCADE`). Users name
/// roles in `users.roles`, so call [`remove_from_all_users`] in the same transaction.
pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool> {
    Ok(diesel::delete(roles::table.find(id)).execute(conn).await? == 1)
}

/// The roles whose scopes name the API resource `indicator`, locked in id order.
pub async fn referencing_resource(
    conn: &mut AsyncPgConnection,
    indicator: &str,
) -> Result<Vec<RoleRow>> {
    Ok(roles::table
        .filter(roles::scopes.contains(serde_json::json!([{ "resource": indicator }])))
        .order(roles::id)
        .select(RoleRow::as_select())
        .for_update()
        .load(conn)
        .await?)
}

/// Of these users, the ones that exist, locked in id order until the end of the transaction.
pub async fn lock_users(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> Result<Vec<Uuid>> {
    Ok(users::table
        .filter(users::id.eq_any(ids))
        .order(users::id)
        .select(users::id)
        .for_update()
        .load(conn)
        .await?)
}

/// Whether any user holds the role.
pub async fn held_by_users(conn: &mut AsyncPgConnection, name: &str) -> Result<bool> {
    let holder: Option<Uuid> = users::table
        .filter(users::roles.contains(vec![name.to_string()]))
        .select(users::id)
        .first(conn)
        .await
        .optional()?;
    Ok(holder.is_some())
}

/// Adds the role name to each user's `roles` unless already there. One statement: the guard
/// and the append see the same row version, so concurrent assignments to one user lose nothing.
pub async fn add_to_users(conn: &mut AsyncPgConnection, name: &str, ids: &[Uuid]) -> Result<usize> {
    Ok(diesel::sql_query(
        "UPDATE users SET roles = array_append(roles, $1), updated_at = now() \
         WHERE id = ANY($2) AND NOT ($1 = ANY(roles))",
    )
    .bind::<Text, _>(name)
    .bind::<Array<diesel::sql_types::Uuid>, _>(ids)
    .execute(conn)
    .await?)
}

/// Removes the role name from each user's `roles`.
pub async fn remove_from_users(
    conn: &mut AsyncPgConnection,
    name: &str,
    ids: &[Uuid],
) -> Result<usize> {
    Ok(diesel::sql_query(
        "UPDATE users SET roles = array_remove(roles, $1), updated_at = now() WHERE id = ANY($2) AND $1 = ANY(roles)",
    )
    .bind::<Text, _>(name)
    .bind::<Array<diesel::sql_types::Uuid>, _>(ids)
    .execute(conn)
    .await?)
}

/// Removes the role name from every user that holds it.
pub async fn remove_from_all_users(conn: &mut AsyncPgConnection, name: &str) -> Result<usize> {
    Ok(diesel::sql_query(
        "UPDATE users SET roles = array_remove(roles, $1), updated_at = now() WHERE roles @> ARRAY[$1]",
    )
    .bind::<Text, _>(name)
    .execute(conn)
    .await?)
}

/// How many users hold the role.
pub async fn count_user_holders(conn: &mut AsyncPgConnection, name: &str) -> Result<i64> {
    Ok(users::table
        .filter(users::roles.contains(vec![name.to_string()]))
        .count()
        .get_result(conn)
        .await?)
}

pub async fn add_to_applications(
    conn: &mut AsyncPgConnection,
    role_id: Uuid,
    app_ids: &[Uuid],
) -> Result<usize> {
    let rows: Vec<_> = app_ids
        .iter()
        .map(|app| {
            (
                application_roles::application_id.eq(*app),
                application_roles::role_id.eq(role_id),
            )
        })
        .collect();
    Ok(diesel::insert_into(application_roles::table)
        .values(rows)
        .on_conflict_do_nothing()
        .execute(conn)
        .await?)
}

pub async fn remove_from_applications(
    conn: &mut AsyncPgConnection,
    role_id: Uuid,
    app_ids: &[Uuid],
) -> Result<usize> {
    Ok(diesel::delete(
        application_roles::table
            .filter(application_roles::role_id.eq(role_id))
            .filter(application_roles::application_id.eq_any(app_ids)),
    )
    .execute(conn)
    .await?)
}

/// The client ids of the applications holding the role (their cached copies must be dropped
/// when the role changes).
pub async fn holder_client_ids(conn: &mut AsyncPgConnection, role_id: Uuid) -> Result<Vec<String>> {
    Ok(application_roles::table
        .inner_join(applications::table)
        .filter(application_roles::role_id.eq(role_id))
        .select(applications::client_id)
        .load(conn)
        .await?)
}

/// One page of the holders of a role, users and applications together, newest first by
/// `(sort_at, id)`, strictly after the `after` cursor.
pub async fn assignments(
    conn: &mut AsyncPgConnection,
    role_id: Uuid,
    name: &str,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<AssignmentRow>> {
    Ok(diesel::sql_query(
        "SELECT kind, id, sort_at, assigned_at FROM ( \
           SELECT 'user' AS kind, u.id, u.created_at AS sort_at, NULL::timestamptz AS assigned_at \
             FROM users u WHERE u.roles @> ARRAY[$1] \
           UNION ALL \
           SELECT 'application', ar.application_id, ar.created_at, ar.created_at \
             FROM application_roles ar WHERE ar.role_id = $2 \
         ) holders \
         WHERE $3::timestamptz IS NULL OR (sort_at, id) < ($3, $4) \
         ORDER BY sort_at DESC, id DESC LIMIT $5",
    )
    .bind::<Text, _>(name)
    .bind::<diesel::sql_types::Uuid, _>(role_id)
    .bind::<Nullable<Timestamptz>, _>(after.map(|a| a.0))
    .bind::<Nullable<diesel::sql_types::Uuid>, _>(after.map(|a| a.1))
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?)
}
