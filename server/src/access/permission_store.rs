//! SQL for permission groups and their permissions, grants, attribute-based rules, and the reads
//! the decision engine caches. No protobuf types and no business rules here.

use chrono::{DateTime, Utc};
use diesel::{prelude::*, result::DatabaseErrorKind};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    db::schema::{
        abac_rule_permissions as rule_perms, abac_rules as rules, application_roles, applications,
        permission_grants as grants, permission_groups as pgroups, permissions, roles, user_groups,
        users,
    },
    error::{Error, Result},
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = pgroups)]
pub struct PermissionGroupRow {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = permissions)]
pub struct PermissionRow {
    pub id: Uuid,
    pub group_id: Uuid,
    pub name: String,
    pub full_name: String,
    pub description: String,
    pub position: i32,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = grants)]
pub struct GrantRow {
    pub id: Uuid,
    pub permission_id: Uuid,
    pub role_id: Option<Uuid>,
    pub org_role_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub group_id: Option<Uuid>,
    pub organization_id: Option<Uuid>,
    pub object_type: String,
    pub object_id: String,
    pub creator_user_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = rules)]
pub struct RuleRow {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub object_type: String,
    pub condition: String,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = rules)]
pub struct RuleChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub object_type: Option<String>,
    pub condition: Option<String>,
    pub enabled: Option<bool>,
    pub updated_at: Option<DateTime<Utc>>,
}

fn unique(err: diesel::result::Error, reason: &'static str, message: &str) -> Error {
    if let diesel::result::Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) = &err {
        return Error::already_exists(reason, message.to_string());
    }
    err.into()
}

fn after_name(
    after: Option<&str>,
) -> Box<
    dyn diesel::expression::BoxableExpression<
            pgroups::table,
            diesel::pg::Pg,
            SqlType = diesel::sql_types::Bool,
        >,
> {
    match after {
        Some(a) => Box::new(
            diesel::dsl::sql::<diesel::sql_types::Bool>("lower(name) > lower(")
                .bind::<diesel::sql_types::Text, _>(a.to_string())
                .sql(")"),
        ),
        None => Box::new(diesel::dsl::sql::<diesel::sql_types::Bool>("true")),
    }
}

// --- Permission groups --------------------------------------------------------------------------

pub async fn insert_group(
    conn: &mut AsyncPgConnection,
    row: PermissionGroupRow,
) -> Result<PermissionGroupRow> {
    diesel::insert_into(pgroups::table)
        .values(row)
        .returning(PermissionGroupRow::as_returning())
        .get_result(conn)
        .await
        .map_err(|e| {
            unique(
                e,
                "PERMISSION_GROUP_NAME_TAKEN",
                "another permission group has this name",
            )
        })
}

pub async fn insert_permissions(
    conn: &mut AsyncPgConnection,
    rows: Vec<PermissionRow>,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    diesel::insert_into(permissions::table)
        .values(rows)
        .execute(conn)
        .await
        .map_err(|e| {
            unique(
                e,
                "PERMISSION_NAME_TAKEN",
                "the permission name appears twice in the group",
            )
        })?;
    Ok(())
}

pub async fn get_group(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<PermissionGroupRow>> {
    Ok(pgroups::table
        .find(id)
        .select(PermissionGroupRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub async fn get_group_for_update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<PermissionGroupRow>> {
    Ok(pgroups::table
        .find(id)
        .select(PermissionGroupRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

pub async fn touch_group(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    description: Option<String>,
) -> Result<PermissionGroupRow> {
    let now = Utc::now();
    Ok(match description {
        Some(d) => {
            diesel::update(pgroups::table.find(id))
                .set((pgroups::description.eq(d), pgroups::updated_at.eq(now)))
                .returning(PermissionGroupRow::as_returning())
                .get_result(conn)
                .await?
        }
        None => {
            diesel::update(pgroups::table.find(id))
                .set(pgroups::updated_at.eq(now))
                .returning(PermissionGroupRow::as_returning())
                .get_result(conn)
                .await?
        }
    })
}

/// One page of permission groups by name, strictly after `after`.
pub async fn list_groups(
    conn: &mut AsyncPgConnection,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<PermissionGroupRow>> {
    Ok(pgroups::table
        .select(PermissionGroupRow::as_select())
        .filter(after_name(after))
        .order(diesel::dsl::sql::<diesel::sql_types::Text>("lower(name)"))
        .limit(limit)
        .load(conn)
        .await?)
}

/// Deletes the group; its permissions, their grants and rule references cascade.
pub async fn delete_group(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool> {
    Ok(diesel::delete(pgroups::table.find(id))
        .execute(conn)
        .await?
        == 1)
}

/// The permissions of these groups, in their order.
pub async fn permissions_of(
    conn: &mut AsyncPgConnection,
    group_ids: &[Uuid],
) -> Result<Vec<PermissionRow>> {
    Ok(permissions::table
        .filter(permissions::group_id.eq_any(group_ids))
        .order((permissions::group_id, permissions::position))
        .select(PermissionRow::as_select())
        .load(conn)
        .await?)
}

pub async fn delete_permissions(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> Result<()> {
    diesel::delete(permissions::table.filter(permissions::id.eq_any(ids)))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn update_permission(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    description: &str,
    position: i32,
) -> Result<()> {
    diesel::update(permissions::table.find(id))
        .set((
            permissions::description.eq(description),
            permissions::position.eq(position),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Permissions by full name, share-locked: they cannot be removed before the referencing write
/// commits.
pub async fn permissions_by_full_name(
    conn: &mut AsyncPgConnection,
    names: &[String],
) -> Result<Vec<PermissionRow>> {
    Ok(permissions::table
        .filter(permissions::full_name.eq_any(names))
        .order(permissions::id)
        .select(PermissionRow::as_select())
        .for_share()
        .load(conn)
        .await?)
}

pub async fn permission_names(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, String)>> {
    Ok(permissions::table
        .filter(permissions::id.eq_any(ids))
        .select((permissions::id, permissions::full_name))
        .load(conn)
        .await?)
}

// --- Grantees -----------------------------------------------------------------------------------

/// Whether the grantee row exists, share-locked until the grant commits.
pub async fn lock_role(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool> {
    Ok(roles::table
        .find(id)
        .select(roles::id)
        .for_share()
        .first::<Uuid>(conn)
        .await
        .optional()?
        .is_some())
}
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
pub async fn lock_group(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool> {
    Ok(user_groups::table
        .find(id)
        .select(user_groups::id)
        .for_share()
        .first::<Uuid>(conn)
        .await
        .optional()?
        .is_some())
}
pub async fn lock_organization(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool> {
    use crate::db::schema::organizations;
    Ok(organizations::table
        .find(id)
        .select(organizations::id)
        .for_share()
        .first::<Uuid>(conn)
        .await
        .optional()?
        .is_some())
}
pub async fn lock_org_role(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool> {
    use crate::db::schema::org_roles;
    Ok(org_roles::table
        .find(id)
        .select(org_roles::id)
        .for_share()
        .first::<Uuid>(conn)
        .await
        .optional()?
        .is_some())
}

/// The user's role in the organization: its id and name; `None` when not a member.
pub async fn member_role(
    conn: &mut AsyncPgConnection,
    organization: Uuid,
    user: Uuid,
) -> Result<Option<(Uuid, String)>> {
    use crate::db::schema::{org_members, org_roles};
    Ok(org_members::table
        .inner_join(
            org_roles::table.on(org_roles::organization_id
                .eq(org_members::organization_id)
                .and(org_roles::name.eq(org_members::role))),
        )
        .filter(org_members::organization_id.eq(organization))
        .filter(org_members::user_id.eq(user))
        .select((org_roles::id, org_roles::name))
        .first(conn)
        .await
        .optional()?)
}

// --- Grants -------------------------------------------------------------------------------------

/// Inserts the grant unless the same (permission, grantee, object) exists; returns the row that
/// stands, new or old. Concurrent identical grants make one row.
pub async fn insert_grant(conn: &mut AsyncPgConnection, row: GrantRow) -> Result<GrantRow> {
    let inserted = diesel::insert_into(grants::table)
        .values(row.clone())
        .on_conflict_do_nothing()
        .returning(GrantRow::as_returning())
        .get_result(conn)
        .await
        .optional()?;
    if let Some(row) = inserted {
        return Ok(row);
    }
    let mut q = grants::table
        .filter(grants::permission_id.eq(row.permission_id))
        .filter(grants::object_type.eq(&row.object_type))
        .filter(grants::object_id.eq(&row.object_id))
        .select(GrantRow::as_select())
        .into_boxed();
    q = match (
        row.role_id,
        row.org_role_id,
        row.user_id,
        row.group_id,
        row.organization_id,
    ) {
        (Some(id), ..) => q.filter(grants::role_id.eq(id)),
        (_, Some(id), ..) => q.filter(grants::org_role_id.eq(id)),
        (_, _, Some(id), ..) => q.filter(grants::user_id.eq(id)),
        (_, _, _, Some(id), _) => q.filter(grants::group_id.eq(id)),
        (.., Some(id)) => q.filter(grants::organization_id.eq(id)),
        _ => return Err(Error::internal("grant without grantee")),
    };
    Ok(q.first(conn).await?)
}

/// Filters of a grant listing; a grantee is (kind column, id).
#[derive(Debug, Default)]
pub struct GrantFilter {
    pub permission_id: Option<Uuid>,
    pub role_id: Option<Uuid>,
    pub org_role_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub group_id: Option<Uuid>,
    pub organization_id: Option<Uuid>,
    pub object: Option<(String, String)>,
}

/// One page of grants with their permission's full name, newest first, after `(created_at, id)`.
pub async fn list_grants(
    conn: &mut AsyncPgConnection,
    f: &GrantFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<(GrantRow, String)>> {
    let mut q = grants::table
        .inner_join(permissions::table)
        .select((GrantRow::as_select(), permissions::full_name))
        .into_boxed();
    if let Some(id) = f.permission_id {
        q = q.filter(grants::permission_id.eq(id));
    }
    if let Some(id) = f.role_id {
        q = q.filter(grants::role_id.eq(id));
    }
    if let Some(id) = f.org_role_id {
        q = q.filter(grants::org_role_id.eq(id));
    }
    if let Some(id) = f.user_id {
        q = q.filter(grants::user_id.eq(id));
    }
    if let Some(id) = f.group_id {
        q = q.filter(grants::group_id.eq(id));
    }
    if let Some(id) = f.organization_id {
        q = q.filter(grants::organization_id.eq(id));
    }
    if let Some((t, id)) = &f.object {
        q = q
            .filter(grants::object_type.eq(t.clone()))
            .filter(grants::object_id.eq(id.clone()));
    }
    if let Some((at, id)) = after {
        q = q.filter(
            grants::created_at
                .lt(at)
                .or(grants::created_at.eq(at).and(grants::id.lt(id))),
        );
    }
    Ok(q.order((grants::created_at.desc(), grants::id.desc()))
        .limit(limit)
        .load(conn)
        .await?)
}

pub async fn delete_grant(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool> {
    Ok(diesel::delete(grants::table.find(id)).execute(conn).await? == 1)
}

// --- Rules --------------------------------------------------------------------------------------

fn rule_conflict(err: diesel::result::Error) -> Error {
    unique(
        err,
        "ABAC_RULE_NAME_TAKEN",
        "another attribute-based rule has this name",
    )
}

pub async fn insert_rule(conn: &mut AsyncPgConnection, row: RuleRow) -> Result<RuleRow> {
    diesel::insert_into(rules::table)
        .values(row)
        .returning(RuleRow::as_returning())
        .get_result(conn)
        .await
        .map_err(rule_conflict)
}

pub async fn set_rule_permissions(
    conn: &mut AsyncPgConnection,
    rule: Uuid,
    permission_ids: &[Uuid],
) -> Result<()> {
    diesel::delete(rule_perms::table.filter(rule_perms::rule_id.eq(rule)))
        .execute(conn)
        .await?;
    let rows: Vec<_> = permission_ids
        .iter()
        .map(|p| {
            (
                rule_perms::rule_id.eq(rule),
                rule_perms::permission_id.eq(*p),
            )
        })
        .collect();
    diesel::insert_into(rule_perms::table)
        .values(rows)
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn get_rule(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<RuleRow>> {
    Ok(rules::table
        .find(id)
        .select(RuleRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub async fn get_rule_for_update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<RuleRow>> {
    Ok(rules::table
        .find(id)
        .select(RuleRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

pub async fn update_rule(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    changes: RuleChanges,
) -> Result<RuleRow> {
    diesel::update(rules::table.find(id))
        .set(changes)
        .returning(RuleRow::as_returning())
        .get_result(conn)
        .await
        .map_err(rule_conflict)
}

pub async fn delete_rule(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool> {
    Ok(diesel::delete(rules::table.find(id)).execute(conn).await? == 1)
}

/// One page of rules by name, optionally of one object type.
pub async fn list_rules(
    conn: &mut AsyncPgConnection,
    object_type: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<RuleRow>> {
    let mut q = rules::table.select(RuleRow::as_select()).into_boxed();
    if let Some(t) = object_type {
        q = q.filter(rules::object_type.eq(t.to_string()));
    }
    if let Some(a) = after {
        q = q.filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>("lower(name) > lower(")
                .bind::<diesel::sql_types::Text, _>(a.to_string())
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

/// The full permission names of these rules: (rule id, permission full name).
pub async fn rule_permissions(
    conn: &mut AsyncPgConnection,
    rule_ids: &[Uuid],
) -> Result<Vec<(Uuid, String)>> {
    Ok(rule_perms::table
        .inner_join(permissions::table)
        .filter(rule_perms::rule_id.eq_any(rule_ids))
        .order((rule_perms::rule_id, permissions::full_name))
        .select((rule_perms::rule_id, permissions::full_name))
        .load(conn)
        .await?)
}

/// Every enabled rule with the full names of its permissions (what the decision engine caches).
pub async fn enabled_rules(conn: &mut AsyncPgConnection) -> Result<Vec<(RuleRow, String)>> {
    Ok(rules::table
        .inner_join(rule_perms::table.inner_join(permissions::table))
        .filter(rules::enabled.eq(true))
        .select((RuleRow::as_select(), permissions::full_name))
        .load(conn)
        .await?)
}

// --- Decision reads -----------------------------------------------------------------------------

/// A user's global role names and custom properties; `None` when there is no such user.
pub async fn user_facts(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<(Vec<String>, serde_json::Value)>> {
    Ok(users::table
        .find(id)
        .select((users::roles, users::properties))
        .first(conn)
        .await
        .optional()?)
}

/// The (id, name) of the user roles with these names; M2M-only roles never apply to users.
pub async fn user_role_ids(
    conn: &mut AsyncPgConnection,
    names: &[String],
) -> Result<Vec<(Uuid, String)>> {
    Ok(roles::table
        .filter(roles::name.eq_any(names))
        .filter(roles::m2m_only.eq(false))
        .select((roles::id, roles::name))
        .load(conn)
        .await?)
}

/// The (id, name) of an application's roles; `None` when there is no such application.
pub async fn application_role_ids(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<Vec<(Uuid, String)>>> {
    let exists = applications::table
        .find(id)
        .select(applications::id)
        .first::<Uuid>(conn)
        .await
        .optional()?;
    if exists.is_none() {
        return Ok(None);
    }
    Ok(Some(
        application_roles::table
            .inner_join(roles::table)
            .filter(application_roles::application_id.eq(id))
            .select((roles::id, roles::name))
            .load(conn)
            .await?,
    ))
}

/// The grants to any of these grantees, with their permission's full name.
pub async fn grants_to(
    conn: &mut AsyncPgConnection,
    user: Option<Uuid>,
    role_ids: &[Uuid],
    group_ids: &[Uuid],
    organization: Option<(Uuid, Option<Uuid>)>,
) -> Result<Vec<(GrantRow, String)>> {
    let mut q = grants::table
        .inner_join(permissions::table)
        .select((GrantRow::as_select(), permissions::full_name))
        .filter(
            grants::role_id
                .eq_any(role_ids.to_vec())
                .or(grants::group_id.eq_any(group_ids.to_vec())),
        )
        .into_boxed();
    if let Some(user) = user {
        q = q.or_filter(grants::user_id.eq(user));
    }
    // In an organization: what is granted to it, and to the subject's role there.
    if let Some((org, org_role)) = organization {
        q = q.or_filter(grants::organization_id.eq(org));
        if let Some(role) = org_role {
            q = q.or_filter(grants::org_role_id.eq(role));
        }
    }
    Ok(q.load(conn).await?)
}
