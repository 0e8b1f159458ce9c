//! The rules of the backends' permissions: permission groups and their named permissions, grants
//! to roles, users and groups (optionally on one object), attribute-based rules with checked CEL
//! conditions, and the decision calls. Transport-free.
//!
//! Every write commits, then drops this instance's cached decisions at once (the database
//! triggers tell the other instances, and this one again, through `mgpass_access`).

use std::collections::HashSet;

use chrono::Utc;
use diesel_async::AsyncConnection;
use uuid::Uuid;

use crate::{
    access::{
        abac,
        decision::{Decision, Decisions, Held, Subject, SubjectId},
        names::{
            NamePage, check_description, check_display_name, is_identifier, is_object_type,
            parse_id,
        },
        permission_store::{
            self as store, GrantFilter, GrantRow, PermissionGroupRow, PermissionRow, RuleChanges,
            RuleRow,
        },
    },
    db::DbPool,
    error::{Error, Result},
    paging::Page,
};

/// One permission of a group, as written.
#[derive(Debug, Clone)]
pub struct Definition {
    pub name: String,
    pub description: String,
}

/// A permission group with its permissions.
#[derive(Debug, Clone)]
pub struct PermissionGroup {
    pub row: PermissionGroupRow,
    pub permissions: Vec<PermissionRow>,
}

/// The receiver of a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantee {
    Role(String),
    OrgRole(String),
    User(String),
    Group(String),
    Organization(String),
}

/// A grant with its permission's full name.
#[derive(Debug, Clone)]
pub struct Grant {
    pub row: GrantRow,
    pub permission: String,
}

/// A rule with its permissions' full names.
#[derive(Debug, Clone)]
pub struct Rule {
    pub row: RuleRow,
    pub permissions: Vec<String>,
}

/// The writable fields of a rule.
#[derive(Debug, Clone, Default)]
pub struct RuleFields {
    pub name: String,
    pub description: String,
    pub object_type: String,
    pub condition: String,
    pub permissions: Vec<String>,
    pub enabled: bool,
}

#[derive(Clone)]
pub struct PermissionService {
    pool: DbPool,
    decisions: Decisions,
}

fn group_not_found() -> Error {
    Error::not_found("PERMISSION_GROUP_NOT_FOUND", "no such permission group")
}

fn rule_not_found() -> Error {
    Error::not_found("ABAC_RULE_NOT_FOUND", "no such attribute-based rule")
}

fn bad(field: &'static str, message: impl Into<String>) -> Error {
    Error::invalid("INVALID_ARGUMENT", field, message)
}

fn check_mask(paths: &[String], allowed: &[&str]) -> Result<()> {
    if paths.is_empty() {
        return Err(Error::invalid(
            "INVALID_UPDATE_MASK",
            "update_mask",
            "update_mask names no field",
        ));
    }
    if let Some(other) = paths.iter().find(|p| !allowed.contains(&p.as_str())) {
        return Err(Error::invalid(
            "INVALID_UPDATE_MASK",
            "update_mask",
            format!("`{other}` is not an updatable field"),
        ));
    }
    Ok(())
}

/// Checks permission names and descriptions; a name twice (case-insensitively) is refused.
fn check_definitions(defs: &[Definition]) -> Result<()> {
    if defs.len() > 1000 {
        return Err(bad(
            "permission_group.permissions",
            "a group holds at most 1000 permissions",
        ));
    }
    let mut seen = HashSet::new();
    for d in defs {
        if !is_identifier(&d.name) {
            return Err(bad(
                "permission_group.permissions",
                format!(
                    "`{}` is not a permission name: a letter, then letters and digits, at most 64",
                    d.name
                ),
            ));
        }
        check_description(&d.description, "permission_group.permissions")?;
        if !seen.insert(d.name.to_lowercase()) {
            return Err(Error::already_exists(
                "PERMISSION_NAME_TAKEN",
                format!("`{}` appears twice in the group", d.name),
            ));
        }
    }
    Ok(())
}

/// A full permission name, `<group>.<permission>`.
pub fn check_permission_name(name: &str, field: &'static str) -> Result<()> {
    match name.split_once('.') {
        Some((g, p)) if is_identifier(g) && is_identifier(p) => Ok(()),
        _ => Err(bad(
            field,
            format!("`{name}` is not a permission name `<group>.<permission>`"),
        )),
    }
}

/// An object reference: a type and an id, both or neither.
pub fn check_object(object_type: &str, object_id: &str, field: &'static str) -> Result<()> {
    if !is_object_type(object_type) {
        return Err(bad(
            field,
            format!("`{object_type}` is not an object type: a letter, then letters, digits or `_`"),
        ));
    }
    if object_id.is_empty()
        || object_id.chars().count() > 256
        || object_id.chars().any(char::is_control)
    {
        return Err(bad(field, "an object id is 1 to 256 printable characters"));
    }
    Ok(())
}

/// A subject as the caller named it.
pub fn parse_subject(
    user_id: Option<&str>,
    application_id: Option<&str>,
    organization_id: &str,
) -> Result<Subject> {
    let id = match (user_id, application_id) {
        (Some(u), None) => SubjectId::User(parse_id(u, "subject.user_id")?),
        (None, Some(a)) => SubjectId::Application(parse_id(a, "subject.application_id")?),
        _ => return Err(bad("subject", "the subject names a user or an application")),
    };
    let organization_id = if organization_id.is_empty() {
        None
    } else {
        Some(parse_id(organization_id, "subject.organization_id")?)
    };
    Ok(Subject {
        id,
        organization_id,
    })
}

impl PermissionService {
    pub fn new(pool: DbPool, decisions: Decisions) -> Self {
        Self { pool, decisions }
    }

    // --- Permission groups ----------------------------------------------------------------------

    pub async fn create_group(
        &self,
        name: &str,
        description: &str,
        defs: Vec<Definition>,
    ) -> Result<PermissionGroup> {
        if !is_identifier(name) {
            return Err(bad(
                "permission_group.name",
                "a group name is a letter, then letters and digits, at most 64",
            ));
        }
        check_description(description, "permission_group.description")?;
        check_definitions(&defs)?;
        let now = Utc::now();
        let row = PermissionGroupRow {
            id: Uuid::now_v7(),
            name: name.to_string(),
            description: description.to_string(),
            created_at: now,
            updated_at: now,
        };
        let permissions = Self::rows(&row, &defs, &[]);
        let mut conn = self.pool.get().await?;
        let row = conn
            .transaction(async |conn| {
                let row = store::insert_group(conn, row).await?;
                store::insert_permissions(conn, permissions.clone()).await?;
                Ok::<_, Error>(row)
            })
            .await?;
        tracing::info!(permission_group_id = %row.id, name = %row.name, "permission group created");
        Ok(PermissionGroup { row, permissions })
    }

    /// The rows of `defs`, keeping the ids of `existing` permissions of the same name.
    fn rows(
        group: &PermissionGroupRow,
        defs: &[Definition],
        existing: &[PermissionRow],
    ) -> Vec<PermissionRow> {
        defs.iter()
            .enumerate()
            .map(|(i, d)| PermissionRow {
                id: existing
                    .iter()
                    .find(|e| e.name.eq_ignore_ascii_case(&d.name))
                    .map(|e| e.id)
                    .unwrap_or_else(Uuid::now_v7),
                group_id: group.id,
                full_name: format!("{}.{}", group.name, d.name),
                name: d.name.clone(),
                description: d.description.clone(),
                position: i as i32,
            })
            .collect()
    }

    pub async fn get_group(&self, id: &str) -> Result<PermissionGroup> {
        let id = parse_id(id, "permission_group_id")?;
        let mut conn = self.pool.get().await?;
        let row = store::get_group(&mut conn, id)
            .await?
            .ok_or_else(group_not_found)?;
        let permissions = store::permissions_of(&mut conn, &[id]).await?;
        Ok(PermissionGroup { row, permissions })
    }

    pub async fn list_groups(
        &self,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<PermissionGroup>, String)> {
        let page = NamePage::parse(page_size, page_token)?;
        let mut conn = self.pool.get().await?;
        let rows = store::list_groups(&mut conn, page.after.as_deref(), page.fetch()).await?;
        let (rows, next) = page.finish(rows, |r| r.name.as_str());
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let mut permissions = store::permissions_of(&mut conn, &ids).await?;
        let groups = rows
            .into_iter()
            .map(|row| {
                let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut permissions)
                    .into_iter()
                    .partition(|p| p.group_id == row.id);
                permissions = rest;
                PermissionGroup {
                    row,
                    permissions: mine,
                }
            })
            .collect();
        Ok((groups, next))
    }

    /// Applies `description` and/or `permissions` (the new list replaces the old; grants and rule
    /// references of removed permissions go with them).
    pub async fn update_group(
        &self,
        id: &str,
        description: String,
        defs: Vec<Definition>,
        paths: &[String],
    ) -> Result<PermissionGroup> {
        let id = parse_id(id, "permission_group.id")?;
        check_mask(paths, &["description", "permissions"])?;
        let has = |p: &str| paths.iter().any(|x| x == p);
        if has("description") {
            check_description(&description, "permission_group.description")?;
        }
        if has("permissions") {
            check_definitions(&defs)?;
        }
        let mut conn = self.pool.get().await?;
        let group = conn
            .transaction(async |conn| {
                let current = store::get_group_for_update(conn, id)
                    .await?
                    .ok_or_else(group_not_found)?;
                if has("permissions") {
                    let existing = store::permissions_of(conn, &[id]).await?;
                    let rows = Self::rows(&current, &defs, &existing);
                    let removed: Vec<Uuid> = existing
                        .iter()
                        .filter(|e| !rows.iter().any(|r| r.id == e.id))
                        .map(|e| e.id)
                        .collect();
                    store::delete_permissions(conn, &removed).await?;
                    let (kept, new): (Vec<_>, Vec<_>) = rows
                        .into_iter()
                        .partition(|r| existing.iter().any(|e| e.id == r.id));
                    for k in &kept {
                        store::update_permission(conn, k.id, &k.description, k.position).await?;
                    }
                    store::insert_permissions(conn, new).await?;
                }
                let row =
                    store::touch_group(conn, id, has("description").then_some(description)).await?;
                let permissions = store::permissions_of(conn, &[id]).await?;
                Ok::<_, Error>(PermissionGroup { row, permissions })
            })
            .await?;
        self.decisions.invalidate();
        Ok(group)
    }

    pub async fn delete_group(&self, id: &str) -> Result<()> {
        let id = parse_id(id, "permission_group_id")?;
        let mut conn = self.pool.get().await?;
        if !store::delete_group(&mut conn, id).await? {
            return Err(group_not_found());
        }
        self.decisions.invalidate();
        tracing::info!(permission_group_id = %id, "permission group deleted");
        Ok(())
    }

    // --- Grants ---------------------------------------------------------------------------------

    /// Grants a permission; an identical grant that exists is returned as is.
    pub async fn create_grant(
        &self,
        permission: &str,
        grantee: Option<Grantee>,
        object: Option<(String, String)>,
        creator: Option<Uuid>,
    ) -> Result<Grant> {
        check_permission_name(permission, "permission_grant.permission")?;
        let grantee =
            grantee.ok_or_else(|| bad("permission_grant.grantee", "a grant needs a grantee"))?;
        if let Some((t, i)) = &object {
            check_object(t, i, "permission_grant.object")?;
        }
        let mut row = GrantRow {
            id: Uuid::now_v7(),
            permission_id: Uuid::nil(),
            role_id: None,
            org_role_id: None,
            user_id: None,
            group_id: None,
            organization_id: None,
            object_type: object.as_ref().map(|o| o.0.clone()).unwrap_or_default(),
            object_id: object.as_ref().map(|o| o.1.clone()).unwrap_or_default(),
            creator_user_id: creator,
            created_at: Utc::now(),
        };
        match &grantee {
            Grantee::Role(id) => {
                row.role_id = Some(parse_id(id, "permission_grant.grantee.role_id")?)
            }
            Grantee::User(id) => {
                row.user_id = Some(parse_id(id, "permission_grant.grantee.user_id")?)
            }
            Grantee::Group(id) => {
                row.group_id = Some(parse_id(id, "permission_grant.grantee.group_id")?)
            }
            Grantee::OrgRole(id) => {
                row.org_role_id = Some(parse_id(id, "permission_grant.grantee.org_role_id")?)
            }
            Grantee::Organization(id) => {
                row.organization_id =
                    Some(parse_id(id, "permission_grant.grantee.organization_id")?)
            }
        }
        let mut conn = self.pool.get().await?;
        let row = conn
            .transaction(async |conn| {
                let found =
                    store::permissions_by_full_name(conn, &[permission.to_string()]).await?;
                let p = found.first().ok_or_else(|| {
                    Error::not_found(
                        "PERMISSION_NOT_FOUND",
                        format!("no permission `{permission}`"),
                    )
                })?;
                row.permission_id = p.id;
                let exists = match (
                    row.role_id,
                    row.user_id,
                    row.group_id,
                    row.org_role_id,
                    row.organization_id,
                ) {
                    (Some(id), ..) => store::lock_role(conn, id)
                        .await?
                        .then_some(())
                        .ok_or_else(|| Error::not_found("ROLE_NOT_FOUND", "no such role")),
                    (_, Some(id), ..) => store::lock_user(conn, id)
                        .await?
                        .then_some(())
                        .ok_or_else(|| {
                            Error::not_found("USER_NOT_FOUND", format!("no user `{id}`"))
                        }),
                    (_, _, Some(id), ..) => store::lock_group(conn, id)
                        .await?
                        .then_some(())
                        .ok_or_else(|| Error::not_found("GROUP_NOT_FOUND", "no such group")),
                    (.., Some(id), None) => store::lock_org_role(conn, id)
                        .await?
                        .then_some(())
                        .ok_or_else(|| {
                            Error::not_found("ORG_ROLE_NOT_FOUND", "no such organization role")
                        }),
                    (.., Some(id)) => store::lock_organization(conn, id)
                        .await?
                        .then_some(())
                        .ok_or_else(|| {
                            Error::not_found("ORGANIZATION_NOT_FOUND", "no such organization")
                        }),
                    _ => Err(Error::internal("grant without grantee")),
                };
                exists?;
                store::insert_grant(conn, row).await
            })
            .await?;
        self.decisions.invalidate();
        tracing::info!(permission_grant_id = %row.id, permission, "permission granted");
        Ok(Grant {
            row,
            permission: permission.to_string(),
        })
    }

    pub async fn list_grants(
        &self,
        permission: &str,
        grantee: Option<Grantee>,
        object: Option<(String, String)>,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<Grant>, String)> {
        let page = Page::parse(page_size, page_token)?;
        let mut filter = GrantFilter::default();
        if let Some((t, i)) = &object {
            check_object(t, i, "object")?;
        }
        filter.object = object;
        match grantee {
            None => {}
            Some(Grantee::Role(id)) => filter.role_id = Some(parse_id(&id, "grantee.role_id")?),
            Some(Grantee::OrgRole(id)) => {
                filter.org_role_id = Some(parse_id(&id, "grantee.org_role_id")?)
            }
            Some(Grantee::User(id)) => filter.user_id = Some(parse_id(&id, "grantee.user_id")?),
            Some(Grantee::Group(id)) => filter.group_id = Some(parse_id(&id, "grantee.group_id")?),
            Some(Grantee::Organization(id)) => {
                filter.organization_id = Some(parse_id(&id, "grantee.organization_id")?)
            }
        }
        let mut conn = self.pool.get().await?;
        if !permission.is_empty() {
            check_permission_name(permission, "permission")?;
            let found =
                store::permissions_by_full_name(&mut conn, &[permission.to_string()]).await?;
            match found.first() {
                Some(p) => filter.permission_id = Some(p.id),
                None => return Ok((Vec::new(), String::new())),
            }
        }
        let rows = store::list_grants(&mut conn, &filter, page.after, page.fetch()).await?;
        let (rows, next) = page.finish(rows, |(r, _)| (r.created_at, r.id));
        Ok((
            rows.into_iter()
                .map(|(row, permission)| Grant { row, permission })
                .collect(),
            next,
        ))
    }

    pub async fn delete_grant(&self, id: &str) -> Result<()> {
        let id = parse_id(id, "permission_grant_id")?;
        let mut conn = self.pool.get().await?;
        if !store::delete_grant(&mut conn, id).await? {
            return Err(Error::not_found(
                "PERMISSION_GRANT_NOT_FOUND",
                "no such permission grant",
            ));
        }
        self.decisions.invalidate();
        tracing::info!(permission_grant_id = %id, "permission grant deleted");
        Ok(())
    }

    // --- Rules ----------------------------------------------------------------------------------

    fn check_rule(f: &RuleFields, paths: Option<&[String]>) -> Result<()> {
        let has = |p: &str| paths.is_none_or(|ps| ps.iter().any(|x| x == p));
        if has("name") {
            check_display_name(&f.name, "abac_rule.name")?;
        }
        if has("description") {
            check_description(&f.description, "abac_rule.description")?;
        }
        if has("object_type") && !is_object_type(&f.object_type) {
            return Err(bad(
                "abac_rule.object_type",
                format!("`{}` is not an object type", f.object_type),
            ));
        }
        if has("condition") {
            abac::compile(&f.condition)?;
        }
        if has("permissions") {
            if f.permissions.is_empty() || f.permissions.len() > 100 {
                return Err(bad(
                    "abac_rule.permissions",
                    "a rule grants 1 to 100 permissions",
                ));
            }
            for p in &f.permissions {
                check_permission_name(p, "abac_rule.permissions")?;
            }
        }
        Ok(())
    }

    /// The ids of the named permissions (share-locked), or `PERMISSION_NOT_FOUND`.
    async fn permission_ids(
        conn: &mut diesel_async::AsyncPgConnection,
        names: &[String],
    ) -> Result<Vec<Uuid>> {
        let found = store::permissions_by_full_name(conn, names).await?;
        if let Some(missing) = names
            .iter()
            .find(|n| !found.iter().any(|p| &p.full_name == *n))
        {
            return Err(Error::not_found(
                "PERMISSION_NOT_FOUND",
                format!("no permission `{missing}`"),
            ));
        }
        Ok(found.into_iter().map(|p| p.id).collect())
    }

    pub async fn create_rule(&self, f: RuleFields) -> Result<Rule> {
        Self::check_rule(&f, None)?;
        let now = Utc::now();
        let row = RuleRow {
            id: Uuid::now_v7(),
            name: check_display_name(&f.name, "abac_rule.name")?,
            description: f.description.clone(),
            object_type: f.object_type.clone(),
            condition: f.condition.clone(),
            enabled: f.enabled,
            created_at: now,
            updated_at: now,
        };
        let mut conn = self.pool.get().await?;
        let rule = conn
            .transaction(async |conn| {
                let ids = Self::permission_ids(conn, &f.permissions).await?;
                let row = store::insert_rule(conn, row).await?;
                store::set_rule_permissions(conn, row.id, &ids).await?;
                let permissions = store::rule_permissions(conn, &[row.id])
                    .await?
                    .into_iter()
                    .map(|p| p.1)
                    .collect();
                Ok::<_, Error>(Rule { row, permissions })
            })
            .await?;
        self.decisions.invalidate();
        tracing::info!(abac_rule_id = %rule.row.id, "attribute-based rule created");
        Ok(rule)
    }

    pub async fn get_rule(&self, id: &str) -> Result<Rule> {
        let id = parse_id(id, "abac_rule_id")?;
        let mut conn = self.pool.get().await?;
        let row = store::get_rule(&mut conn, id)
            .await?
            .ok_or_else(rule_not_found)?;
        let permissions = store::rule_permissions(&mut conn, &[id])
            .await?
            .into_iter()
            .map(|p| p.1)
            .collect();
        Ok(Rule { row, permissions })
    }

    pub async fn list_rules(
        &self,
        object_type: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<Rule>, String)> {
        let page = NamePage::parse(page_size, page_token)?;
        let mut conn = self.pool.get().await?;
        let t = (!object_type.is_empty()).then_some(object_type);
        let rows = store::list_rules(&mut conn, t, page.after.as_deref(), page.fetch()).await?;
        let (rows, next) = page.finish(rows, |r| r.name.as_str());
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let perms = store::rule_permissions(&mut conn, &ids).await?;
        let rules = rows
            .into_iter()
            .map(|row| {
                let permissions = perms
                    .iter()
                    .filter(|p| p.0 == row.id)
                    .map(|p| p.1.clone())
                    .collect();
                Rule { row, permissions }
            })
            .collect();
        Ok((rules, next))
    }

    pub async fn update_rule(&self, id: &str, f: RuleFields, paths: &[String]) -> Result<Rule> {
        let id = parse_id(id, "abac_rule.id")?;
        check_mask(
            paths,
            &[
                "name",
                "description",
                "object_type",
                "condition",
                "permissions",
                "enabled",
            ],
        )?;
        Self::check_rule(&f, Some(paths))?;
        let has = |p: &str| paths.iter().any(|x| x == p);
        let changes = RuleChanges {
            name: if has("name") {
                Some(check_display_name(&f.name, "abac_rule.name")?)
            } else {
                None
            },
            description: has("description").then(|| f.description.clone()),
            object_type: has("object_type").then(|| f.object_type.clone()),
            condition: has("condition").then(|| f.condition.clone()),
            enabled: has("enabled").then_some(f.enabled),
            updated_at: Some(Utc::now()),
        };
        let mut conn = self.pool.get().await?;
        let rule = conn
            .transaction(async |conn| {
                store::get_rule_for_update(conn, id)
                    .await?
                    .ok_or_else(rule_not_found)?;
                if has("permissions") {
                    let ids = Self::permission_ids(conn, &f.permissions).await?;
                    store::set_rule_permissions(conn, id, &ids).await?;
                }
                let row = store::update_rule(conn, id, changes).await?;
                let permissions = store::rule_permissions(conn, &[id])
                    .await?
                    .into_iter()
                    .map(|p| p.1)
                    .collect();
                Ok::<_, Error>(Rule { row, permissions })
            })
            .await?;
        self.decisions.invalidate();
        Ok(rule)
    }

    pub async fn delete_rule(&self, id: &str) -> Result<()> {
        let id = parse_id(id, "abac_rule_id")?;
        let mut conn = self.pool.get().await?;
        if !store::delete_rule(&mut conn, id).await? {
            return Err(rule_not_found());
        }
        self.decisions.invalidate();
        Ok(())
    }

    // --- Decisions ------------------------------------------------------------------------------

    pub async fn check(
        &self,
        subject: Subject,
        permission: &str,
        object: Option<(String, String)>,
        attributes: &serde_json::Value,
        context: &serde_json::Value,
    ) -> Result<Decision> {
        check_permission_name(permission, "permission")?;
        if let Some((t, i)) = &object {
            check_object(t, i, "object")?;
        }
        self.decisions
            .check(
                subject,
                permission,
                object.as_ref().map(|(t, i)| (t.as_str(), i.as_str())),
                attributes,
                context,
            )
            .await
    }

    /// A page of held grants by (permission, grant id); the token is the last served pair.
    pub async fn held(
        &self,
        subject: Subject,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<Held>, String)> {
        let page = NamePage::parse(page_size, page_token)?;
        let key = |h: &Held| format!("{}/{}", h.permission, h.grant_id);
        let all = self.decisions.held(subject).await?;
        let rows: Vec<Held> = all
            .into_iter()
            .filter(|h| {
                page.after
                    .as_ref()
                    .is_none_or(|a| key(h).as_str() > a.as_str())
            })
            .take(page.fetch() as usize)
            .collect();
        let keyed: Vec<(String, Held)> = rows.into_iter().map(|h| (key(&h), h)).collect();
        let (rows, next) = page.finish(keyed, |(k, _)| k.as_str());
        Ok((rows.into_iter().map(|(_, h)| h).collect(), next))
    }

    /// A page of object ids, whether a grant covers them all, and the rules that may allow more.
    pub async fn objects(
        &self,
        subject: Subject,
        permission: &str,
        object_type: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<String>, String, bool, Vec<Uuid>)> {
        check_permission_name(permission, "permission")?;
        if !is_object_type(object_type) {
            return Err(bad(
                "object_type",
                format!("`{object_type}` is not an object type"),
            ));
        }
        let page = NamePage::parse(page_size, page_token)?;
        let (ids, all, rules) = self
            .decisions
            .objects(subject, permission, object_type)
            .await?;
        let ids: Vec<String> = ids
            .into_iter()
            .filter(|i| page.after.as_ref().is_none_or(|a| i > a))
            .take(page.fetch() as usize)
            .collect();
        let (ids, next) = page.finish(ids, |i| i.as_str());
        Ok((ids, next, all, rules))
    }
}
