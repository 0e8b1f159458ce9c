//! The rules of organizations and their members: valid names and properties, the system roles
//! every organization gets, exactly one owner (transfer, leave, remove), and who may give which
//! role. Transport-free.

use std::sync::Arc;

use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{
    auth::Principal,
    config::OrganizationsConfig,
    db::DbPool,
    error::{Error, Result},
    identity::{
        policy::{Property, check_property_values, parse_properties},
        store as users,
    },
    org::{
        access::OrgAccess,
        cursor::NamePage,
        failed, org_not_found,
        org_role_store::{self as roles, OrgRoleRow},
        org_store::{
            self as store, MemberFilter, MemberRow, MemberView, MembershipRow, OrganizationChanges,
            OrganizationRow,
        },
        parse_id, parse_org_id,
        permissions::{self, ADMIN, OWNER, SYSTEM_ROLES},
    },
    paging::Page,
};

/// The writable fields of an organization.
#[derive(Debug, Default, Clone)]
pub struct OrgFields {
    pub name: String,
    pub description: String,
    pub avatar_url: String,
    pub properties: Map<String, Value>,
}

/// An organization with its member count.
#[derive(Debug, Clone)]
pub struct Organization {
    pub row: OrganizationRow,
    pub member_count: i64,
}

#[derive(Clone)]
pub struct OrganizationService {
    pool: DbPool,
    access: OrgAccess,
    properties: Arc<Vec<Property>>,
    registration_public: bool,
    avatar_template: Arc<str>,
}

fn member_not_found() -> Error {
    Error::not_found(
        "ORGANIZATION_MEMBER_NOT_FOUND",
        "no such member of this organization",
    )
}

fn owner_not_assignable() -> Error {
    failed(
        "OWNER_ROLE_NOT_ASSIGNABLE",
        "`owner` changes hands only through TransferOwnership",
    )
}

fn check_texts(f: &OrgFields) -> Result<()> {
    if f.name.trim().is_empty() || f.name.chars().count() > 200 {
        return Err(Error::invalid(
            "INVALID_ARGUMENT",
            "name",
            "`name` is required, at most 200 characters",
        ));
    }
    if f.description.chars().count() > 2000 {
        return Err(Error::invalid(
            "INVALID_ARGUMENT",
            "description",
            "`description` is longer than 2000 characters",
        ));
    }
    if !f.avatar_url.is_empty()
        && (f.avatar_url.len() > 2048
            || !(f.avatar_url.starts_with("https://") || f.avatar_url.starts_with("http://")))
    {
        return Err(Error::invalid(
            "INVALID_ARGUMENT",
            "avatar_url",
            "`avatar_url` must be an http(s) URL",
        ));
    }
    Ok(())
}

fn hex_sha256(s: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Refuses to give a role whose permissions the caller does not hold: an organization admin
/// cannot hand out (or take) more than their own role gives. Global holders of the method's
/// permission may give any role but `owner`.
pub(crate) async fn check_role_grantable(
    access: &OrgAccess,
    caller: &Principal,
    global_permission: &str,
    org: Uuid,
    role: &OrgRoleRow,
) -> Result<()> {
    if role.name == OWNER {
        return Err(owner_not_assignable());
    }
    if caller.has_permission(global_permission) {
        return Ok(());
    }
    let given =
        permissions::effective_permissions(&role.name, role.system, &role.resource_scopes());
    let held = access
        .grant(caller.user_id, org)
        .await?
        .map(|g| g.permissions.clone())
        .unwrap_or_default();
    if let Some(missing) = given.iter().find(|p| !held.contains(*p)) {
        return Err(Error::permission_denied(
            "SCOPE_NOT_HELD",
            format!(
                "role `{}` gives `{missing}`, which your role does not",
                role.name
            ),
        ));
    }
    Ok(())
}

/// The four system roles of a new organization.
fn system_roles(org: Uuid) -> Vec<OrgRoleRow> {
    let now = Utc::now();
    let descriptions = [
        "Owns the organization: everything, including deleting it and transferring ownership.",
        "Manages members, invitations, roles, groups and API keys.",
        "Reads the organization, its members, roles and groups.",
        "Reads the organization.",
    ];
    SYSTEM_ROLES
        .iter()
        .zip(descriptions)
        .map(|(name, description)| OrgRoleRow {
            id: Uuid::now_v7(),
            organization_id: org,
            name: name.to_string(),
            description: description.to_string(),
            scopes: serde_json::json!([]),
            system: true,
            created_at: now,
            updated_at: now,
        })
        .collect()
}

impl OrganizationService {
    pub fn new(
        pool: DbPool,
        access: OrgAccess,
        config: &OrganizationsConfig,
    ) -> anyhow::Result<Self> {
        let properties = parse_properties("organizations", &config.properties)
            .map_err(|e| anyhow::anyhow!(e.join("; ")))?;
        Ok(Self {
            pool,
            access,
            properties: Arc::new(properties),
            registration_public: config.registration_public,
            avatar_template: config.avatar_template.clone().into(),
        })
    }

    async fn with_count(
        &self,
        conn: &mut AsyncPgConnection,
        row: OrganizationRow,
    ) -> Result<Organization> {
        let member_count = store::member_count(conn, row.id).await?;
        Ok(Organization { row, member_count })
    }

    /// Creates an organization owned by `owner_user_id` (admins).
    pub async fn create(&self, owner_user_id: &str, fields: OrgFields) -> Result<Organization> {
        let owner = parse_id(owner_user_id, "owner_user_id")?;
        self.create_owned(owner, fields).await
    }

    /// Creates an organization owned by the caller, when `tenantRegisterIsPublic` allows it or
    /// the caller may create organizations anyway.
    pub async fn create_mine(&self, caller: &Principal, fields: OrgFields) -> Result<Organization> {
        if !self.registration_public && !caller.has_permission("org.organizations.create") {
            return Err(Error::permission_denied(
                "ORGANIZATION_REGISTRATION_RESTRICTED",
                "only administrators create organizations in this deployment",
            ));
        }
        if caller.session_id.is_none() {
            return Err(Error::permission_denied(
                "USER_REQUIRED",
                "a signed-in user owns the organization",
            ));
        }
        self.create_owned(caller.user_id, fields).await
    }

    async fn create_owned(&self, owner: Uuid, mut fields: OrgFields) -> Result<Organization> {
        check_texts(&fields)?;
        check_property_values(&self.properties, &mut fields.properties, true, true)?;
        if fields.avatar_url.is_empty() {
            fields.avatar_url = self
                .avatar_template
                .replace("{name_sha256}", &hex_sha256(&fields.name));
        }
        let mut conn = self.pool.get().await?;
        let org = conn
            .transaction(async |conn| {
                // Locked so that the user cannot be deleted before the membership is written.
                if users::get_for_update(conn, owner).await?.is_none() {
                    return Err(Error::not_found("USER_NOT_FOUND", "no such user"));
                }
                let now = Utc::now();
                let row = store::insert(
                    conn,
                    &OrganizationRow {
                        id: Uuid::now_v7(),
                        name: fields.name.trim().to_string(),
                        description: fields.description,
                        avatar_url: fields.avatar_url,
                        owner_user_id: owner,
                        properties: Value::Object(fields.properties),
                        created_at: now,
                        updated_at: now,
                    },
                )
                .await?;
                roles::insert(conn, system_roles(row.id)).await?;
                store::insert_member(
                    conn,
                    MemberRow {
                        organization_id: row.id,
                        user_id: owner,
                        role: OWNER.into(),
                        created_at: now,
                    },
                )
                .await?;
                Ok::<_, Error>(Organization {
                    row,
                    member_count: 1,
                })
            })
            .await?;
        tracing::info!(organization_id = %org.row.id, owner_user_id = %owner, "organization created");
        Ok(org)
    }

    pub async fn get(&self, id: &str) -> Result<Organization> {
        let id = parse_org_id(id)?;
        let mut conn = self.pool.get().await?;
        let row = store::get(&mut conn, id).await?.ok_or_else(org_not_found)?;
        self.with_count(&mut conn, row).await
    }

    /// A page of organizations by name.
    pub async fn list(
        &self,
        query: Option<String>,
        user_id: Option<String>,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<Organization>, String)> {
        let page = NamePage::parse(page_size, page_token)?;
        let user = user_id
            .as_deref()
            .map(|u| parse_id(u, "user_id"))
            .transpose()?;
        let mut conn = self.pool.get().await?;
        let rows = store::list(
            &mut conn,
            query.as_deref(),
            user,
            page.after_uuid()?,
            page.fetch(),
        )
        .await?;
        let (rows, next) = page.finish(rows, |r| (r.name.clone(), r.id.to_string()));
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.with_count(&mut conn, row).await?);
        }
        Ok((out, next))
    }

    /// A page of the caller's memberships by organization name.
    pub async fn list_mine(
        &self,
        caller: &Principal,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<(Organization, MembershipRow)>, String)> {
        let page = NamePage::parse(page_size, page_token)?;
        let mut conn = self.pool.get().await?;
        let rows =
            store::list_memberships(&mut conn, caller.user_id, page.after_uuid()?, page.fetch())
                .await?;
        let (rows, next) = page.finish(rows, |r| {
            (r.organization.name.clone(), r.organization.id.to_string())
        });
        let mut out = Vec::with_capacity(rows.len());
        for m in rows {
            let org = self.with_count(&mut conn, m.organization.clone()).await?;
            out.push((org, m));
        }
        Ok((out, next))
    }

    /// Applies the masked fields (`name`, `description`, `avatar_url`, `properties`).
    pub async fn update(
        &self,
        id: &str,
        fields: OrgFields,
        paths: &[String],
    ) -> Result<Organization> {
        let id = parse_org_id(id)?;
        if paths.is_empty() {
            return Err(Error::invalid(
                "INVALID_UPDATE_MASK",
                "update_mask",
                "update_mask names no field",
            ));
        }
        if let Some(other) = paths.iter().find(|p| {
            !matches!(
                p.as_str(),
                "name" | "description" | "avatar_url" | "properties"
            )
        }) {
            return Err(Error::invalid(
                "INVALID_UPDATE_MASK",
                "update_mask",
                format!("`{other}` is not an updatable field"),
            ));
        }
        let has = |p: &str| paths.iter().any(|x| x == p);
        let mut conn = self.pool.get().await?;
        let row = conn
            .transaction(async |conn| {
                let current = store::get_for_update(conn, id)
                    .await?
                    .ok_or_else(org_not_found)?;
                let mut merged = OrgFields {
                    name: if has("name") {
                        fields.name.clone()
                    } else {
                        current.name.clone()
                    },
                    description: if has("description") {
                        fields.description.clone()
                    } else {
                        current.description.clone()
                    },
                    avatar_url: if has("avatar_url") {
                        fields.avatar_url.clone()
                    } else {
                        current.avatar_url.clone()
                    },
                    properties: if has("properties") {
                        fields.properties.clone()
                    } else {
                        current.properties.as_object().cloned().unwrap_or_default()
                    },
                };
                check_texts(&merged)?;
                if has("properties") {
                    check_property_values(&self.properties, &mut merged.properties, false, true)?;
                }
                let changes = OrganizationChanges {
                    name: has("name").then(|| merged.name.trim().to_string()),
                    description: has("description").then_some(merged.description),
                    avatar_url: has("avatar_url").then_some(merged.avatar_url),
                    properties: has("properties").then_some(Value::Object(merged.properties)),
                    owner_user_id: None,
                    updated_at: Some(Utc::now()),
                };
                store::update(conn, id, changes)
                    .await?
                    .ok_or_else(org_not_found)
            })
            .await?;
        self.with_count(&mut conn, row).await
    }

    /// Deletes the organization and everything of it.
    pub async fn delete(&self, id: &str) -> Result<()> {
        let id = parse_org_id(id)?;
        let mut conn = self.pool.get().await?;
        if !store::delete(&mut conn, id).await? {
            return Err(org_not_found());
        }
        self.access.forget_organization(id);
        crate::org::flag_service::forget(id);
        tracing::info!(organization_id = %id, "organization deleted");
        Ok(())
    }

    pub async fn list_members(
        &self,
        org: &str,
        filter: MemberFilter,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<MemberView>, String)> {
        let org = parse_org_id(org)?;
        let page = Page::parse(page_size, page_token)?;
        let mut conn = self.pool.get().await?;
        store::get(&mut conn, org)
            .await?
            .ok_or_else(org_not_found)?;
        let rows = store::list_members(&mut conn, org, &filter, page.after, page.fetch()).await?;
        Ok(page.finish(rows, |m| (m.member.created_at, m.member.user_id)))
    }

    /// Adds an existing user with a role other than `owner`.
    pub async fn add_member(
        &self,
        caller: &Principal,
        org: &str,
        user_id: &str,
        role: &str,
    ) -> Result<MemberView> {
        let org = parse_org_id(org)?;
        let user = parse_id(user_id, "member.user_id")?;
        let mut conn = self.pool.get().await?;
        conn.transaction(async |conn| {
            store::get_for_update(conn, org)
                .await?
                .ok_or_else(org_not_found)?;
            let role = roles::by_name(conn, org, role).await?.ok_or_else(|| {
                Error::not_found(
                    "ORG_ROLE_NOT_FOUND",
                    format!("no role `{role}` in this organization"),
                )
            })?;
            check_role_grantable(&self.access, caller, "org.members.create", org, &role).await?;
            if users::get_for_update(conn, user).await?.is_none() {
                return Err(Error::not_found("USER_NOT_FOUND", "no such user"));
            }
            store::insert_member(
                conn,
                MemberRow {
                    organization_id: org,
                    user_id: user,
                    role: role.name,
                    created_at: Utc::now(),
                },
            )
            .await?;
            Ok::<_, Error>(())
        })
        .await?;
        self.access.forget_organization(org);
        tracing::info!(organization_id = %org, user_id = %user, "organization member added");
        store::member_view(&mut conn, org, user)
            .await?
            .ok_or_else(member_not_found)
    }

    /// Changes a member's role; `owner` is neither given nor taken here.
    pub async fn update_member(
        &self,
        caller: &Principal,
        org: &str,
        user_id: &str,
        role: &str,
        paths: &[String],
    ) -> Result<MemberView> {
        let org = parse_org_id(org)?;
        let user = parse_id(user_id, "member.user_id")?;
        if paths.is_empty() || paths.iter().any(|p| p != "role") {
            return Err(Error::invalid(
                "INVALID_UPDATE_MASK",
                "update_mask",
                "only `role` is updatable",
            ));
        }
        let mut conn = self.pool.get().await?;
        conn.transaction(async |conn| {
            store::get_for_update(conn, org)
                .await?
                .ok_or_else(org_not_found)?;
            let current = store::get_member(conn, org, user)
                .await?
                .ok_or_else(member_not_found)?;
            if current.role == OWNER {
                return Err(owner_not_assignable());
            }
            let role = roles::by_name(conn, org, role).await?.ok_or_else(|| {
                Error::not_found(
                    "ORG_ROLE_NOT_FOUND",
                    format!("no role `{role}` in this organization"),
                )
            })?;
            check_role_grantable(&self.access, caller, "org.members.update", org, &role).await?;
            // Taking a role away is giving the member less than the caller has: the caller must
            // also hold everything the current role gives.
            if let Some(old) = roles::by_name(conn, org, &current.role).await? {
                check_role_grantable(&self.access, caller, "org.members.update", org, &old).await?;
            }
            store::set_member_role(conn, org, user, &role.name)
                .await?
                .ok_or_else(member_not_found)?;
            Ok::<_, Error>(())
        })
        .await?;
        self.access.forget_organization(org);
        tracing::info!(organization_id = %org, user_id = %user, "organization member role changed");
        store::member_view(&mut conn, org, user)
            .await?
            .ok_or_else(member_not_found)
    }

    /// Removes a member other than the owner.
    pub async fn remove_member(&self, caller: &Principal, org: &str, user_id: &str) -> Result<()> {
        let org = parse_org_id(org)?;
        let user = parse_id(user_id, "user_id")?;
        let mut conn = self.pool.get().await?;
        conn.transaction(async |conn| {
            store::get_for_update(conn, org)
                .await?
                .ok_or_else(org_not_found)?;
            let current = store::get_member(conn, org, user)
                .await?
                .ok_or_else(member_not_found)?;
            if current.role == OWNER {
                return Err(failed(
                    "CANNOT_REMOVE_OWNER",
                    "the owner cannot be removed; transfer ownership first",
                ));
            }
            if let Some(role) = roles::by_name(conn, org, &current.role).await? {
                check_role_grantable(&self.access, caller, "org.members.delete", org, &role)
                    .await?;
            }
            store::delete_member(conn, org, user).await?;
            Ok::<_, Error>(())
        })
        .await?;
        self.access.forget_organization(org);
        tracing::info!(organization_id = %org, user_id = %user, "organization member removed");
        Ok(())
    }

    /// Makes another member the owner; the previous owner becomes `admin`. The organization row
    /// is locked throughout, so concurrent transfers run one after the other, and one that finds
    /// its caller no longer the owner is refused: there is never more than one owner (the partial
    /// unique index `org_members_one_owner` guarantees it too).
    pub async fn transfer(
        &self,
        caller: &Principal,
        org: &str,
        new_owner: &str,
    ) -> Result<Organization> {
        let org = parse_org_id(org)?;
        let new_owner = parse_id(new_owner, "new_owner_user_id")?;
        let global = caller.has_permission("org.organizations.transfer");
        let mut conn = self.pool.get().await?;
        let row = conn
            .transaction(async |conn| {
                store::get_for_update(conn, org)
                    .await?
                    .ok_or_else(org_not_found)?;
                let owner = store::owner(conn, org).await?;
                if !global && owner.as_ref().is_none_or(|o| o.user_id != caller.user_id) {
                    return Err(Error::permission_denied(
                        "PERMISSION_DENIED",
                        "only the owner transfers ownership",
                    ));
                }
                let target = store::get_member(conn, org, new_owner)
                    .await?
                    .ok_or_else(member_not_found)?;
                if owner.as_ref().is_some_and(|o| o.user_id == target.user_id) {
                    return store::get(conn, org).await?.ok_or_else(org_not_found);
                }
                if let Some(owner) = owner {
                    store::set_member_role(conn, org, owner.user_id, ADMIN).await?;
                }
                store::set_member_role(conn, org, new_owner, OWNER)
                    .await?
                    .ok_or_else(member_not_found)?;
                let changes = OrganizationChanges {
                    owner_user_id: Some(new_owner),
                    updated_at: Some(Utc::now()),
                    ..OrganizationChanges::default()
                };
                store::update(conn, org, changes)
                    .await?
                    .ok_or_else(org_not_found)
            })
            .await?;
        self.access.forget_organization(org);
        tracing::info!(organization_id = %org, new_owner_user_id = %new_owner, "organization ownership transferred");
        self.with_count(&mut conn, row).await
    }

    /// The caller leaves; the owner must transfer ownership first.
    pub async fn leave(&self, caller: &Principal, org: &str) -> Result<()> {
        let org = parse_org_id(org)?;
        let mut conn = self.pool.get().await?;
        conn.transaction(async |conn| {
            store::get_for_update(conn, org)
                .await?
                .ok_or_else(org_not_found)?;
            let member = store::get_member(conn, org, caller.user_id)
                .await?
                .ok_or_else(org_not_found)?;
            if member.role == OWNER {
                return Err(failed(
                    "OWNER_CANNOT_LEAVE",
                    "the owner cannot leave; transfer ownership first",
                ));
            }
            store::delete_member(conn, org, caller.user_id).await?;
            Ok::<_, Error>(())
        })
        .await?;
        self.access.forget_organization(org);
        tracing::info!(organization_id = %org, user_id = %caller.user_id, "organization member left");
        Ok(())
    }
}
