//! The rules of organization roles: valid names and scopes, the protection of the system roles,
//! and that nobody hands out through a role what they do not hold themselves. Transport-free.

use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use crate::{
    auth::{ADMIN_SCOPE, Principal},
    db::DbPool,
    error::{Error, Result},
    oauth::{
        api_resource_service::{SYSTEM_INDICATOR, check_references},
        model::ResourceScopes,
    },
    org::{
        access::OrgAccess,
        check_name, failed, org_not_found,
        org_role_store::{self as store, OrgRoleChanges, OrgRoleRow},
        org_store, parse_id, parse_org_id,
        permissions::OWNER_ONLY,
    },
};

/// The writable fields of an organization role.
#[derive(Debug, Default, Clone)]
pub struct OrgRoleFields {
    pub name: String,
    pub description: String,
    pub scopes: Vec<ResourceScopes>,
}

/// A role with its holder count.
#[derive(Debug, Clone)]
pub struct OrgRole {
    pub row: OrgRoleRow,
    pub member_count: i64,
}

#[derive(Clone)]
pub struct OrgRoleService {
    pool: DbPool,
    access: OrgAccess,
}

fn not_found() -> Error {
    Error::not_found("ORG_ROLE_NOT_FOUND", "no such role in this organization")
}

fn check_description(description: &str) -> Result<()> {
    if description.chars().count() > 1000 {
        return Err(Error::invalid(
            "INVALID_ARGUMENT",
            "description",
            "`description` is longer than 1000 characters",
        ));
    }
    Ok(())
}

impl OrgRoleService {
    pub fn new(pool: DbPool, access: OrgAccess) -> Self {
        Self { pool, access }
    }

    async fn with_count(&self, conn: &mut AsyncPgConnection, row: OrgRoleRow) -> Result<OrgRole> {
        let member_count = store::holder_count(conn, row.organization_id, &row.name).await?;
        Ok(OrgRole { row, member_count })
    }

    /// Refuses scopes the caller does not hold: the owner-only permissions always; otherwise,
    /// unless the caller is a global administrator, every scope must be held globally or through
    /// the caller's role in the organization.
    async fn check_held(
        &self,
        caller: &Principal,
        org: Uuid,
        scopes: &[ResourceScopes],
    ) -> Result<()> {
        let not_held = |s: &str| {
            Error::permission_denied(
                "SCOPE_NOT_HELD",
                format!("you cannot give `{s}`: you do not hold it"),
            )
        };
        for s in scopes
            .iter()
            .filter(|r| r.resource == SYSTEM_INDICATOR)
            .flat_map(|r| r.scopes.iter())
        {
            if OWNER_ONLY.contains(&s.as_str()) {
                return Err(not_held(s));
            }
        }
        if caller.has_permission(ADMIN_SCOPE) {
            return Ok(());
        }
        let grant = self.access.grant(caller.user_id, org).await?;
        for r in scopes {
            for s in &r.scopes {
                let held = if r.resource == SYSTEM_INDICATOR {
                    caller.has_permission(s)
                        || grant.as_ref().is_some_and(|g| g.permissions.contains(s))
                } else {
                    grant.as_ref().is_some_and(|g| {
                        g.scopes
                            .iter()
                            .any(|h| h.resource == r.resource && h.scopes.contains(s))
                    })
                };
                if !held {
                    return Err(not_held(s));
                }
            }
        }
        Ok(())
    }

    pub async fn create(
        &self,
        caller: &Principal,
        org: &str,
        fields: OrgRoleFields,
    ) -> Result<OrgRole> {
        let org = parse_org_id(org)?;
        check_name(&fields.name, "org_role.name")?;
        check_description(&fields.description)?;
        let mut conn = self.pool.get().await?;
        let row = conn
            .transaction(async |conn| {
                org_store::get(conn, org).await?.ok_or_else(org_not_found)?;
                let scopes = check_references(conn, &fields.scopes, "org_role.scopes").await?;
                self.check_held(caller, org, &scopes).await?;
                let now = Utc::now();
                let mut rows = store::insert(
                    conn,
                    vec![OrgRoleRow {
                        id: Uuid::now_v7(),
                        organization_id: org,
                        name: fields.name.clone(),
                        description: fields.description.clone(),
                        scopes: serde_json::to_value(&scopes).map_err(Error::internal)?,
                        system: false,
                        created_at: now,
                        updated_at: now,
                    }],
                )
                .await?;
                rows.pop()
                    .ok_or_else(|| Error::internal("insert returned no role"))
            })
            .await?;
        tracing::info!(organization_id = %org, role = %row.name, "organization role created");
        Ok(OrgRole {
            row,
            member_count: 0,
        })
    }

    pub async fn get(&self, org: &str, id: &str) -> Result<OrgRole> {
        let org = parse_org_id(org)?;
        let id = parse_id(id, "org_role_id")?;
        let mut conn = self.pool.get().await?;
        org_store::get(&mut conn, org)
            .await?
            .ok_or_else(org_not_found)?;
        let row = store::get(&mut conn, org, id)
            .await?
            .ok_or_else(not_found)?;
        self.with_count(&mut conn, row).await
    }

    /// A page of roles: system roles first, then by name.
    pub async fn list(
        &self,
        org: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<OrgRole>, String)> {
        let org = parse_org_id(org)?;
        let page = crate::org::cursor::NamePage::parse(page_size, page_token)?;
        let after = page
            .after
            .as_ref()
            .map(|(name, system)| (system == "s", name.clone()));
        let mut conn = self.pool.get().await?;
        org_store::get(&mut conn, org)
            .await?
            .ok_or_else(org_not_found)?;
        let rows = store::list(&mut conn, org, after, page.fetch()).await?;
        let (rows, next) = page.finish(rows, |r| {
            (
                r.name.clone(),
                if r.system { "s".into() } else { "c".into() },
            )
        });
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.with_count(&mut conn, row).await?);
        }
        Ok((out, next))
    }

    /// Applies the masked fields (`description`, `scopes`). A system role's mgpass permissions
    /// are fixed: its scopes may name other resources only.
    pub async fn update(
        &self,
        caller: &Principal,
        org: &str,
        id: &str,
        fields: OrgRoleFields,
        paths: &[String],
    ) -> Result<OrgRole> {
        let org = parse_org_id(org)?;
        let id = parse_id(id, "org_role.id")?;
        if paths.is_empty() {
            return Err(Error::invalid(
                "INVALID_UPDATE_MASK",
                "update_mask",
                "update_mask names no field",
            ));
        }
        if let Some(other) = paths
            .iter()
            .find(|p| !matches!(p.as_str(), "description" | "scopes"))
        {
            return Err(Error::invalid(
                "INVALID_UPDATE_MASK",
                "update_mask",
                format!("`{other}` is not an updatable field"),
            ));
        }
        let has = |p: &str| paths.iter().any(|x| x == p);
        if has("description") {
            check_description(&fields.description)?;
        }
        let mut conn = self.pool.get().await?;
        let row = conn
            .transaction(async |conn| {
                org_store::get(conn, org).await?.ok_or_else(org_not_found)?;
                let scopes = if has("scopes") {
                    Some(check_references(conn, &fields.scopes, "org_role.scopes").await?)
                } else {
                    None
                };
                let current = store::get_for_update(conn, org, id)
                    .await?
                    .ok_or_else(not_found)?;
                if let Some(scopes) = &scopes {
                    if current.system && scopes.iter().any(|r| r.resource == SYSTEM_INDICATOR) {
                        return Err(failed(
                            "SYSTEM_ROLE_IMMUTABLE",
                            format!(
                                "the mgpass permissions of the system role `{}` are fixed",
                                current.name
                            ),
                        ));
                    }
                    // Only what is added must be held; keeping what a role had is no escalation.
                    let old = current.resource_scopes();
                    let added: Vec<ResourceScopes> = scopes
                        .iter()
                        .map(|r| ResourceScopes {
                            resource: r.resource.clone(),
                            scopes: r
                                .scopes
                                .iter()
                                .filter(|s| {
                                    !old.iter()
                                        .any(|o| o.resource == r.resource && o.scopes.contains(s))
                                })
                                .cloned()
                                .collect(),
                        })
                        .collect();
                    self.check_held(caller, org, &added).await?;
                }
                let changes = OrgRoleChanges {
                    description: has("description").then(|| fields.description.clone()),
                    scopes: scopes
                        .as_ref()
                        .map(serde_json::to_value)
                        .transpose()
                        .map_err(Error::internal)?,
                    updated_at: Some(Utc::now()),
                };
                store::update(conn, id, changes)
                    .await?
                    .ok_or_else(not_found)
            })
            .await?;
        self.access.forget_organization(org);
        tracing::info!(organization_id = %org, role = %row.name, "organization role updated");
        self.with_count(&mut conn, row).await
    }

    /// Deletes a custom role no member or pending invitation holds.
    pub async fn delete(&self, org: &str, id: &str) -> Result<()> {
        let org = parse_org_id(org)?;
        let id = parse_id(id, "org_role_id")?;
        let mut conn = self.pool.get().await?;
        conn.transaction(async |conn| {
            // The organization lock orders this after concurrent member and invitation writes.
            org_store::get_for_update(conn, org)
                .await?
                .ok_or_else(org_not_found)?;
            let role = store::get_for_update(conn, org, id)
                .await?
                .ok_or_else(not_found)?;
            if role.system {
                return Err(failed(
                    "SYSTEM_ROLE_IMMUTABLE",
                    format!("the system role `{}` cannot be deleted", role.name),
                ));
            }
            if store::in_use(conn, org, &role.name).await? {
                return Err(failed(
                    "ORG_ROLE_IN_USE",
                    "members or pending invitations hold this role",
                ));
            }
            store::delete(conn, id).await?;
            Ok::<_, Error>(())
        })
        .await?;
        self.access.forget_organization(org);
        Ok(())
    }
}
