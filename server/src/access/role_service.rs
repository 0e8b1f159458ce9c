//! The rules of global roles: valid names and scopes, the protection of the system roles, and
//! assignment to users (`users.roles`) and machine-to-machine applications. Transport-free.
//!
//! Lock order, shared by every writer so that none can deadlock another: API resources, then
//! roles, then users, then applications.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use crate::{
    access::role_store::{self as store, RoleChanges, RoleFilter, RoleRow},
    db::DbPool,
    error::{Error, Result},
    identity,
    oauth::{
        api_resource_service::{SYSTEM_INDICATOR, check_references},
        application_store,
        clients::ClientRegistry,
        model::{AppType, ResourceScopes},
    },
    paging::Page,
};

/// The role that must always keep a holder.
pub const SUPER_ADMIN: &str = "superAdmin";
/// Assignees of one AssignRole or UnassignRole call.
const MAX_ASSIGNEES: usize = 1000;

/// The writable fields of a role.
#[derive(Debug, Default, Clone)]
pub struct RoleFields {
    pub name: String,
    pub description: String,
    pub scopes: Vec<ResourceScopes>,
    pub default_for_new_users: bool,
    pub m2m_only: bool,
}

/// An update: the fields, and which of them to apply (field-mask paths).
pub struct RoleUpdate {
    pub fields: RoleFields,
    pub paths: Vec<String>,
}

/// Filters of a role listing, as the caller gave them.
#[derive(Debug, Default)]
pub struct RoleQuery {
    pub query: Option<String>,
    pub user_id: Option<String>,
    pub application_id: Option<String>,
}

/// Who holds a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignee {
    User(Uuid),
    Application(Uuid),
}

/// One holder of a role.
#[derive(Debug, Clone)]
pub struct RoleAssignment {
    pub role_id: Uuid,
    pub assignee: Assignee,
    /// When the role was given, where recorded: users hold roles by name in `users.roles`,
    /// which keeps no time.
    pub assigned_at: Option<DateTime<Utc>>,
}

#[derive(Clone)]
pub struct RoleService {
    pool: DbPool,
    /// Cached clients to forget when the roles of an M2M application change.
    clients: ClientRegistry,
}

fn parse_id(id: &str, field: &'static str) -> Result<Uuid> {
    Uuid::parse_str(id)
        .map_err(|_| Error::invalid("INVALID_ID", field, format!("`{id}` is not a valid id")))
}

fn not_found() -> Error {
    Error::not_found("ROLE_NOT_FOUND", "no such role")
}

fn failed(reason: &'static str, message: impl Into<String>) -> Error {
    Error::FailedPrecondition {
        reason,
        message: message.into(),
    }
}

/// A letter, then letters, digits, `_`, `.` or `-`, at most 64 characters: safe in a JWT claim,
/// a URL and a log line.
fn check_name(name: &str) -> Result<()> {
    let mut bytes = name.bytes();
    let valid = name.len() <= 64
        && bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !valid {
        return Err(Error::invalid(
            "INVALID_ARGUMENT",
            "name",
            format!(
                "`{name}` is not a role name: a letter, then letters, digits, `_`, `.` or `-`, at most 64"
            ),
        ));
    }
    Ok(())
}

fn check_fields(description: &str, default_for_new_users: bool, m2m_only: bool) -> Result<()> {
    if description.chars().count() > 1000 {
        return Err(Error::invalid(
            "INVALID_ARGUMENT",
            "description",
            "`description` is longer than 1000 characters",
        ));
    }
    // A default role goes to every new user, which an M2M-only role may never have.
    if default_for_new_users && m2m_only {
        return Err(Error::invalid(
            "INVALID_ARGUMENT",
            "m2m_only",
            "a role cannot be both default and M2M-only",
        ));
    }
    Ok(())
}

/// The scopes of the mgpass API among `refs`, as a set (the part of a system role that is fixed).
fn mgpass_scopes(refs: &[ResourceScopes]) -> HashSet<String> {
    refs.iter()
        .filter(|r| r.resource == SYSTEM_INDICATOR)
        .flat_map(|r| r.scopes.iter().cloned())
        .collect()
}

/// Distinct ids, in the order given.
fn parse_ids(ids: &[String], field: &'static str) -> Result<Vec<Uuid>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for id in ids {
        let id = parse_id(id, field)?;
        if seen.insert(id) {
            out.push(id);
        }
    }
    Ok(out)
}

fn check_assignees(users: &[Uuid], apps: &[Uuid]) -> Result<()> {
    if users.is_empty() && apps.is_empty() {
        return Err(Error::invalid(
            "INVALID_ARGUMENT",
            "user_ids",
            "name at least one user or application",
        ));
    }
    if users.len() + apps.len() > MAX_ASSIGNEES {
        return Err(Error::invalid(
            "INVALID_ARGUMENT",
            "user_ids",
            format!("at most {MAX_ASSIGNEES} assignees per call"),
        ));
    }
    Ok(())
}

/// Checks the global roles given to a user inside the caller's transaction: each exists and may
/// be held by users. The roles stay share-locked until the transaction ends, so none can be
/// deleted (or made M2M-only) before the user is written. Returns the names without duplicates.
pub async fn check_user_roles(
    conn: &mut AsyncPgConnection,
    names: &[String],
) -> Result<Vec<String>> {
    let mut names = names.to_vec();
    let mut seen = HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    if names.is_empty() {
        return Ok(names);
    }
    let rows = store::lock_by_names(conn, &names).await?;
    for name in &names {
        match rows.iter().find(|r| &r.name == name) {
            None => {
                return Err(Error::invalid(
                    "UNKNOWN_ROLE",
                    "roles",
                    format!("role `{name}` does not exist"),
                ));
            }
            Some(r) if r.m2m_only => {
                return Err(failed(
                    "ROLE_M2M_ONLY",
                    format!("role `{name}` is for M2M applications only"),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(names)
}

/// Checks the new roles of an existing user like [`check_user_roles`]. When they lack
/// `superAdmin`, that role is locked exclusively (as by UnassignRole) until the transaction ends,
/// so that [`ensure_super_admin_held`], called after the write, sees every concurrent removal.
/// Call it before locking the user: roles come before users in the lock order.
pub async fn check_changed_user_roles(
    conn: &mut AsyncPgConnection,
    names: &[String],
) -> Result<Vec<String>> {
    let names = check_user_roles(conn, names).await?;
    if !names.iter().any(|n| n == SUPER_ADMIN) {
        store::get_by_name_for_update(conn, SUPER_ADMIN).await?;
    }
    Ok(names)
}

/// Refuses (and so rolls back) a change that left `superAdmin` without a holder.
pub async fn ensure_super_admin_held(conn: &mut AsyncPgConnection) -> Result<()> {
    if store::count_user_holders(conn, SUPER_ADMIN).await? == 0 {
        return Err(failed(
            "LAST_SUPER_ADMIN",
            "the last holder of superAdmin cannot lose it",
        ));
    }
    Ok(())
}

/// The roles of a new user: the ones asked for (checked), or else the roles marked
/// `default_for_new_users`. Same locking as [`check_user_roles`].
pub async fn roles_for_new_user(
    conn: &mut AsyncPgConnection,
    requested: &[String],
) -> Result<Vec<String>> {
    if requested.is_empty() {
        Ok(store::lock_defaults(conn)
            .await?
            .into_iter()
            .map(|r| r.name)
            .collect())
    } else {
        check_user_roles(conn, requested).await
    }
}

impl RoleService {
    pub fn new(pool: DbPool, clients: ClientRegistry) -> Self {
        Self { pool, clients }
    }

    fn invalidate(&self, client_ids: &[String]) {
        client_ids.iter().for_each(|c| self.clients.invalidate(c));
    }

    pub async fn create(&self, fields: RoleFields) -> Result<RoleRow> {
        check_name(&fields.name)?;
        check_fields(
            &fields.description,
            fields.default_for_new_users,
            fields.m2m_only,
        )?;
        let mut conn = self.pool.get().await?;
        conn.transaction(async |conn| {
            let scopes = check_references(conn, &fields.scopes, "scopes").await?;
            let now = Utc::now();
            store::insert(
                conn,
                RoleRow {
                    id: Uuid::now_v7(),
                    name: fields.name,
                    description: fields.description,
                    scopes: serde_json::to_value(&scopes).map_err(Error::internal)?,
                    default_for_new_users: fields.default_for_new_users,
                    m2m_only: fields.m2m_only,
                    system: false,
                    created_at: now,
                    updated_at: now,
                },
            )
            .await
        })
        .await
    }

    pub async fn get(&self, id: &str) -> Result<RoleRow> {
        let id = parse_id(id, "role_id")?;
        let mut conn = self.pool.get().await?;
        store::get(&mut conn, id).await?.ok_or_else(not_found)
    }

    /// A page of roles and the token of the next page (empty on the last page).
    pub async fn list(
        &self,
        q: RoleQuery,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<RoleRow>, String)> {
        let page = Page::parse(page_size, page_token)?;
        let user_id = q
            .user_id
            .as_deref()
            .map(|id| parse_id(id, "user_id"))
            .transpose()?;
        let application_id = q
            .application_id
            .as_deref()
            .map(|id| parse_id(id, "application_id"))
            .transpose()?;
        let mut conn = self.pool.get().await?;
        let names = match user_id {
            // An unknown user holds nothing.
            Some(id) => Some(
                identity::store::get(&mut conn, id)
                    .await?
                    .map(|u| u.roles)
                    .unwrap_or_default(),
            ),
            None => None,
        };
        let filter = RoleFilter {
            query: q.query,
            names,
            application_id,
        };
        let rows = store::list(&mut conn, &filter, page.after, page.fetch()).await?;
        Ok(page.finish(rows, |r| (r.created_at, r.id)))
    }

    /// Applies the masked fields. Of a system role only the description and the scopes of
    /// resources other than mgpass may change.
    pub async fn update(&self, id: &str, update: RoleUpdate) -> Result<RoleRow> {
        let id = parse_id(id, "role.id")?;
        if update.paths.is_empty() {
            return Err(Error::invalid(
                "INVALID_UPDATE_MASK",
                "update_mask",
                "update_mask names no field",
            ));
        }
        if let Some(other) = update.paths.iter().find(|p| {
            !matches!(
                p.as_str(),
                "description" | "scopes" | "default_for_new_users" | "m2m_only"
            )
        }) {
            return Err(Error::invalid(
                "INVALID_UPDATE_MASK",
                "update_mask",
                format!("`{other}` is not an updatable field"),
            ));
        }
        let has = |p: &str| update.paths.iter().any(|x| x == p);
        let f = update.fields;
        let mut conn = self.pool.get().await?;
        let (row, stale) = conn
            .transaction(async |conn| {
                let scopes =
                    if has("scopes") { Some(check_references(conn, &f.scopes, "scopes").await?) } else { None };
                let current = store::get_for_update(conn, id).await?.ok_or_else(not_found)?;
                let default =
                    if has("default_for_new_users") { f.default_for_new_users } else { current.default_for_new_users };
                let m2m_only = if has("m2m_only") { f.m2m_only } else { current.m2m_only };
                if current.system {
                    let flags_changed = default != current.default_for_new_users || m2m_only != current.m2m_only;
                    let mgpass_changed =
                        scopes.as_ref().is_some_and(|s| mgpass_scopes(s) != mgpass_scopes(&current.resource_scopes()));
                    if flags_changed || mgpass_changed {
                        return Err(failed(
                            "SYSTEM_ROLE_IMMUTABLE",
                            format!(
                                "of the system role `{}` only the description and non-mgpass scopes may change",
                                current.name
                            ),
                        ));
                    }
                }
                let description = if has("description") { f.description.clone() } else { current.description.clone() };
                check_fields(&description, default, m2m_only)?;
                if m2m_only && !current.m2m_only && store::held_by_users(conn, &current.name).await? {
                    return Err(failed(
                        "ROLE_ASSIGNED_TO_USERS",
                        "users hold this role; unassign it from them before making it M2M-only",
                    ));
                }
                let changes = RoleChanges {
                    description: has("description").then_some(description),
                    scopes: scopes.as_ref().map(serde_json::to_value).transpose().map_err(Error::internal)?,
                    default_for_new_users: has("default_for_new_users").then_some(default),
                    m2m_only: has("m2m_only").then_some(m2m_only),
                    updated_at: Some(Utc::now()),
                };
                let row = store::update(conn, id, changes).await?.ok_or_else(not_found)?;
                let stale = store::holder_client_ids(conn, id).await?;
                Ok::<_, Error>((row, stale))
            })
            .await?;
        self.invalidate(&stale);
        Ok(row)
    }

    /// Deletes a role, taking it from every user and application that held it.
    pub async fn delete(&self, id: &str) -> Result<()> {
        let id = parse_id(id, "role_id")?;
        let mut conn = self.pool.get().await?;
        let stale = conn
            .transaction(async |conn| {
                let role = store::get_for_update(conn, id)
                    .await?
                    .ok_or_else(not_found)?;
                if role.system {
                    return Err(failed(
                        "SYSTEM_ROLE_IMMUTABLE",
                        format!("the system role `{}` cannot be deleted", role.name),
                    ));
                }
                let stale = store::holder_client_ids(conn, id).await?;
                store::remove_from_all_users(conn, &role.name).await?;
                store::delete(conn, id).await?;
                Ok::<_, Error>(stale)
            })
            .await?;
        self.invalidate(&stale);
        Ok(())
    }

    /// Gives the role to users and M2M applications, all or nothing. Already held is fine.
    pub async fn assign(
        &self,
        role_id: &str,
        user_ids: &[String],
        application_ids: &[String],
    ) -> Result<()> {
        let role_id = parse_id(role_id, "role_id")?;
        let users = parse_ids(user_ids, "user_ids")?;
        let apps = parse_ids(application_ids, "application_ids")?;
        check_assignees(&users, &apps)?;
        let mut conn = self.pool.get().await?;
        let stale = conn
            .transaction(async |conn| {
                // Shared: concurrent assignments of one role proceed; its deletion waits.
                let role = store::get_for_share(conn, role_id).await?.ok_or_else(not_found)?;
                if !users.is_empty() {
                    if role.m2m_only {
                        return Err(failed(
                            "ROLE_M2M_ONLY",
                            format!("role `{}` is for M2M applications only", role.name),
                        ));
                    }
                    let found = store::lock_users(conn, &users).await?;
                    if let Some(missing) = users.iter().find(|u| !found.contains(u)) {
                        return Err(Error::not_found("USER_NOT_FOUND", format!("no user `{missing}`")));
                    }
                    store::add_to_users(conn, &role.name, &users).await?;
                }
                let mut stale = Vec::new();
                if !apps.is_empty() {
                    let found = application_store::lock_many(conn, &apps).await?;
                    if let Some(missing) = apps.iter().find(|a| !found.iter().any(|f| f.id == **a)) {
                        return Err(Error::not_found("APPLICATION_NOT_FOUND", format!("no application `{missing}`")));
                    }
                    if let Some(app) = found.iter().find(|a| a.app_type() != AppType::M2m) {
                        return Err(failed(
                            "APPLICATION_NOT_M2M",
                            format!(
                                "application `{}` is not machine-to-machine; only M2M applications hold roles",
                                app.id
                            ),
                        ));
                    }
                    store::add_to_applications(conn, role_id, &apps).await?;
                    stale = found.into_iter().map(|a| a.client_id).collect();
                }
                Ok::<_, Error>(stale)
            })
            .await?;
        self.invalidate(&stale);
        Ok(())
    }

    /// Takes the role from users and applications. Not held, or unknown, is fine; taking
    /// `superAdmin` from its last holder is not.
    pub async fn unassign(
        &self,
        role_id: &str,
        user_ids: &[String],
        application_ids: &[String],
    ) -> Result<()> {
        let role_id = parse_id(role_id, "role_id")?;
        let users = parse_ids(user_ids, "user_ids")?;
        let apps = parse_ids(application_ids, "application_ids")?;
        check_assignees(&users, &apps)?;
        let mut conn = self.pool.get().await?;
        let stale = conn
            .transaction(async |conn| {
                // Exclusive: two concurrent unassignments of superAdmin must not both see the
                // other's holder still there.
                let role = store::get_for_update(conn, role_id)
                    .await?
                    .ok_or_else(not_found)?;
                if !users.is_empty() {
                    let found = store::lock_users(conn, &users).await?;
                    store::remove_from_users(conn, &role.name, &found).await?;
                    if role.name == SUPER_ADMIN {
                        ensure_super_admin_held(conn).await?;
                    }
                }
                let mut stale = Vec::new();
                if !apps.is_empty() {
                    let found = application_store::lock_many(conn, &apps).await?;
                    store::remove_from_applications(conn, role_id, &apps).await?;
                    stale = found.into_iter().map(|a| a.client_id).collect();
                }
                Ok::<_, Error>(stale)
            })
            .await?;
        self.invalidate(&stale);
        Ok(())
    }

    /// A page of the role's holders and the token of the next page (empty on the last page).
    pub async fn list_assignments(
        &self,
        role_id: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<RoleAssignment>, String)> {
        let role_id = parse_id(role_id, "role_id")?;
        let page = Page::parse(page_size, page_token)?;
        let mut conn = self.pool.get().await?;
        let role = store::get(&mut conn, role_id)
            .await?
            .ok_or_else(not_found)?;
        let rows =
            store::assignments(&mut conn, role_id, &role.name, page.after, page.fetch()).await?;
        let (rows, next) = page.finish(rows, |r| (r.sort_at, r.id));
        let assignments = rows
            .into_iter()
            .map(|r| RoleAssignment {
                role_id,
                assignee: if r.kind == "user" {
                    Assignee::User(r.id)
                } else {
                    Assignee::Application(r.id)
                },
                assigned_at: r.assigned_at,
            })
            .collect();
        Ok((assignments, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names() {
        for good in [
            "editor",
            "a",
            "Content.Editor-2_x",
            &format!("a{}", "b".repeat(63)),
        ] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1editor",
            "_x",
            "has space",
            "é",
            "a/b",
            &format!("a{}", "b".repeat(64)),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn default_and_m2m_only_exclude_each_other() {
        assert!(check_fields("", true, true).is_err());
        assert!(check_fields("", true, false).is_ok());
        assert!(check_fields("", false, true).is_ok());
    }

    #[test]
    fn mgpass_part_of_scopes() {
        let refs = vec![
            ResourceScopes {
                resource: "mgpass".into(),
                scopes: vec!["mgpass:admin".into()],
            },
            ResourceScopes {
                resource: "https://api".into(),
                scopes: vec!["read".into()],
            },
        ];
        assert_eq!(
            mgpass_scopes(&refs),
            HashSet::from(["mgpass:admin".to_string()])
        );
    }
}
