//! SQL for organization roles. No protobuf types and no business rules here.

use chrono::{DateTime, Utc};
use diesel::{prelude::*, result::DatabaseErrorKind};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    db::schema::{org_invitations, org_members, org_roles},
    error::{Error, Result},
    oauth::model::ResourceScopes,
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = org_roles)]
pub struct OrgRoleRow {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub description: String,
    /// `Vec<ResourceScopes>` as JSON.
    pub scopes: serde_json::Value,
    pub system: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl OrgRoleRow {
    pub fn resource_scopes(&self) -> Vec<ResourceScopes> {
        serde_json::from_value(self.scopes.clone()).unwrap_or_default()
    }
}

#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = org_roles)]
pub struct OrgRoleChanges {
    pub description: Option<String>,
    pub scopes: Option<serde_json::Value>,
    pub updated_at: Option<DateTime<Utc>>,
}

fn conflict(err: diesel::result::Error) -> Error {
    if let diesel::result::Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) = &err {
        return Error::already_exists(
            "ORG_ROLE_NAME_TAKEN",
            "another role of this organization has this name",
        );
    }
    err.into()
}

pub async fn insert(
    conn: &mut AsyncPgConnection,
    rows: Vec<OrgRoleRow>,
) -> Result<Vec<OrgRoleRow>> {
    diesel::insert_into(org_roles::table)
        .values(rows)
        .returning(OrgRoleRow::as_returning())
        .get_results(conn)
        .await
        .map_err(conflict)
}

/// The role `id` of organization `org`: a role of another organization is not found.
pub async fn get(conn: &mut AsyncPgConnection, org: Uuid, id: Uuid) -> Result<Option<OrgRoleRow>> {
    Ok(org_roles::table
        .filter(org_roles::organization_id.eq(org))
        .filter(org_roles::id.eq(id))
        .select(OrgRoleRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub async fn get_for_update(
    conn: &mut AsyncPgConnection,
    org: Uuid,
    id: Uuid,
) -> Result<Option<OrgRoleRow>> {
    Ok(org_roles::table
        .filter(org_roles::organization_id.eq(org))
        .filter(org_roles::id.eq(id))
        .select(OrgRoleRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

pub async fn by_name(
    conn: &mut AsyncPgConnection,
    org: Uuid,
    name: &str,
) -> Result<Option<OrgRoleRow>> {
    Ok(org_roles::table
        .filter(org_roles::organization_id.eq(org))
        .filter(org_roles::name.eq(name))
        .select(OrgRoleRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// One page: system roles first, then by name, strictly after `after` = `(system, name)`.
pub async fn list(
    conn: &mut AsyncPgConnection,
    org: Uuid,
    after: Option<(bool, String)>,
    limit: i64,
) -> Result<Vec<OrgRoleRow>> {
    let mut q = org_roles::table
        .filter(org_roles::organization_id.eq(org))
        .select(OrgRoleRow::as_select())
        .into_boxed();
    if let Some((system, name)) = after {
        q = if system {
            q.filter(
                org_roles::system
                    .eq(false)
                    .or(org_roles::system.eq(true).and(org_roles::name.gt(name))),
            )
        } else {
            q.filter(org_roles::system.eq(false).and(org_roles::name.gt(name)))
        };
    }
    Ok(q.order((org_roles::system.desc(), org_roles::name.asc()))
        .limit(limit)
        .load(conn)
        .await?)
}

pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    changes: OrgRoleChanges,
) -> Result<Option<OrgRoleRow>> {
    Ok(diesel::update(org_roles::table.find(id))
        .set(changes)
        .returning(OrgRoleRow::as_returning())
        .get_result(conn)
        .await
        .optional()?)
}

pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool> {
    Ok(diesel::delete(org_roles::table.find(id))
        .execute(conn)
        .await?
        == 1)
}

pub async fn holder_count(conn: &mut AsyncPgConnection, org: Uuid, name: &str) -> Result<i64> {
    Ok(org_members::table
        .filter(org_members::organization_id.eq(org))
        .filter(org_members::role.eq(name))
        .count()
        .get_result(conn)
        .await?)
}

/// Whether members or pending invitations hold the role.
pub async fn in_use(conn: &mut AsyncPgConnection, org: Uuid, name: &str) -> Result<bool> {
    let invited: i64 = org_invitations::table
        .filter(org_invitations::organization_id.eq(org))
        .filter(org_invitations::role.eq(name))
        .filter(org_invitations::status.eq("pending"))
        .count()
        .get_result(conn)
        .await?;
    Ok(invited > 0 || holder_count(conn, org, name).await? > 0)
}
