//! SQL for users. No protobuf types and no business rules here.

use chrono::{DateTime, Utc};
use diesel::{prelude::*, result::DatabaseErrorKind};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    db::schema::users,
    error::{Error, Result},
};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: Uuid,
    pub email: Option<String>,
    pub mobile: Option<String>,
    pub given_name: String,
    pub family_name: String,
    pub full_name: String,
    pub avatar_url: String,
    pub password_hash: Option<String>,
    pub email_verified: bool,
    pub mobile_verified: bool,
    pub roles: Vec<String>,
    pub status: String,
    pub properties: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser {
    pub id: Uuid,
    pub email: Option<String>,
    pub mobile: Option<String>,
    pub given_name: String,
    pub family_name: String,
    pub full_name: String,
    pub avatar_url: String,
    pub password_hash: Option<String>,
    pub email_verified: bool,
    pub roles: Vec<String>,
    pub properties: serde_json::Value,
}

/// The columns an update may change; `None` leaves a column alone.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChanges {
    pub email: Option<Option<String>>,
    pub mobile: Option<Option<String>>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub full_name: Option<String>,
    pub avatar_url: Option<String>,
    pub roles: Option<Vec<String>>,
    pub properties: Option<serde_json::Value>,
    pub status: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// Filters of a user search.
#[derive(Debug, Default)]
pub struct UserFilter {
    pub query: Option<String>,
    pub status: Option<String>,
    pub role: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    /// Members of this organization only.
    pub organization: Option<Uuid>,
}

/// Maps a unique-index violation to the identifier that collided.
pub(crate) fn conflict(err: diesel::result::Error) -> Error {
    if let diesel::result::Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) = &err {
        return match info.constraint_name() {
            Some("users_mobile_key") => {
                Error::already_exists("MOBILE_TAKEN", "a user with this mobile number exists")
            }
            Some(name) if name.starts_with("users_prop_") => Error::InvalidArgument {
                reason: "INVALID_PROPERTY",
                field: "properties",
                message: format!("another user has this value of the unique property in `{name}`"),
            },
            _ => Error::already_exists("EMAIL_TAKEN", "a user with this email address exists"),
        };
    }
    err.into()
}

pub async fn insert(conn: &mut AsyncPgConnection, user: NewUser) -> Result<UserRow> {
    diesel::insert_into(users::table)
        .values(user)
        .returning(UserRow::as_returning())
        .get_result(conn)
        .await
        .map_err(conflict)
}

pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<UserRow>> {
    Ok(users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The user, locked until the end of the transaction.
pub async fn get_for_update(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<UserRow>> {
    Ok(users::table
        .find(id)
        .select(UserRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

pub async fn find_by_email(conn: &mut AsyncPgConnection, email: &str) -> Result<Option<UserRow>> {
    diesel::define_sql_function!(fn lower(x: diesel::sql_types::Nullable<diesel::sql_types::Text>) -> diesel::sql_types::Nullable<diesel::sql_types::Text>);
    Ok(users::table
        .filter(lower(users::email).eq(email.to_lowercase()))
        .select(UserRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub async fn find_by_mobile(conn: &mut AsyncPgConnection, mobile: &str) -> Result<Option<UserRow>> {
    Ok(users::table
        .filter(users::mobile.eq(mobile))
        .select(UserRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// One page, newest first, strictly after the `after` cursor `(created_at, id)`.
pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: &UserFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<UserRow>> {
    let mut query = users::table.select(UserRow::as_select()).into_boxed();
    if let Some(q) = &filter.query {
        let pattern = format!(
            "%{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        query = query.filter(
            users::email
                .ilike(pattern.clone())
                .or(users::mobile.ilike(pattern.clone()))
                .or(users::full_name.ilike(pattern.clone()).nullable())
                .or(users::given_name.ilike(pattern.clone()).nullable())
                .or(users::family_name.ilike(pattern).nullable()),
        );
    }
    if let Some(status) = &filter.status {
        query = query.filter(users::status.eq(status.clone()));
    }
    if let Some(role) = &filter.role {
        query = query.filter(users::roles.contains(vec![role.clone()]));
    }
    if let Some(org) = filter.organization {
        use crate::db::schema::org_members;
        query = query.filter(
            users::id.eq_any(
                org_members::table
                    .filter(org_members::organization_id.eq(org))
                    .select(org_members::user_id),
            ),
        );
    }
    if let Some(t) = filter.created_after {
        query = query.filter(users::created_at.ge(t));
    }
    if let Some(t) = filter.created_before {
        query = query.filter(users::created_at.lt(t));
    }
    if let Some((at, id)) = after {
        query = query.filter(
            users::created_at
                .lt(at)
                .or(users::created_at.eq(at).and(users::id.lt(id))),
        );
    }
    Ok(query
        .order((users::created_at.desc(), users::id.desc()))
        .limit(limit)
        .load(conn)
        .await?)
}

pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    changes: UserChanges,
) -> Result<Option<UserRow>> {
    diesel::update(users::table.find(id))
        .set(changes)
        .returning(UserRow::as_returning())
        .get_result(conn)
        .await
        .optional()
        .map_err(conflict)
}

pub async fn set_password(conn: &mut AsyncPgConnection, id: Uuid, hash: &str) -> Result<()> {
    diesel::update(users::table.find(id))
        .set((
            users::password_hash.eq(hash),
            users::updated_at.eq(chrono::Utc::now()),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes a user; refused while they own an organization (the database keeps every
/// organization owned).
pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool> {
    match diesel::delete(users::table.find(id)).execute(conn).await {
        Ok(n) => Ok(n == 1),
        Err(diesel::result::Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info))
            if info.constraint_name() == Some("organizations_owner_fk") =>
        {
            Err(Error::FailedPrecondition {
                reason: "ORGANIZATION_OWNER",
                message: "the user owns an organization: transfer its ownership or delete it first"
                    .into(),
            })
        }
        Err(err) => Err(err.into()),
    }
}

// ---- the columns the verification flows change ------------------------------------------------

pub async fn set_email_verified(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<()> {
    diesel::update(users::table.find(user_id))
        .set((
            users::email_verified.eq(true),
            users::updated_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_mobile_verified(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<()> {
    diesel::update(users::table.find(user_id))
        .set((
            users::mobile_verified.eq(true),
            users::updated_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Replaces the email address; `EMAIL_TAKEN` when another account has it.
pub async fn set_email(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    email: &str,
    verified: bool,
) -> Result<()> {
    diesel::update(users::table.find(user_id))
        .set((
            users::email.eq(email),
            users::email_verified.eq(verified),
            users::updated_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await
        .map_err(conflict)?;
    Ok(())
}

/// Replaces the mobile number; `MOBILE_TAKEN` when another account has it.
pub async fn set_mobile(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    mobile: &str,
    verified: bool,
) -> Result<()> {
    diesel::update(users::table.find(user_id))
        .set((
            users::mobile.eq(mobile),
            users::mobile_verified.eq(verified),
            users::updated_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await
        .map_err(conflict)?;
    Ok(())
}

/// Removes the password (an administrator forced a reset): every password sign-in fails until
/// the user sets a new one through a reset.
pub async fn clear_password(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<()> {
    diesel::update(users::table.find(user_id))
        .set((
            users::password_hash.eq(None::<String>),
            users::updated_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await?;
    Ok(())
}
