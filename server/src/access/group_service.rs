//! The rules of user groups: the deployment's switches (`userGroupsActive`,
//! `userGroupsInTenantLevel`), names unique per scope, isolation of organization groups, and
//! membership. Transport-free.
//!
//! Lock order: groups, then users (as everywhere: the group row before the user row).

use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use crate::{
    access::{
        decision::Decisions,
        group_store::{self as store, GroupChanges, GroupRow, MemberRow},
        names::{NamePage, check_description, check_display_name, parse_id, parse_optional_id},
    },
    config::AccessConfig,
    crypto::secret,
    db::DbPool,
    error::{Error, Result},
    paging::Page,
};

/// The writable fields of a group.
#[derive(Debug, Default, Clone)]
pub struct GroupFields {
    pub organization_id: String,
    pub name: String,
    pub description: String,
    pub avatar_url: String,
}

/// A group with its member count.
#[derive(Debug, Clone)]
pub struct Group {
    pub row: GroupRow,
    pub member_count: i64,
}

#[derive(Clone)]
pub struct GroupService {
    pool: DbPool,
    config: AccessConfig,
    decisions: Decisions,
}

fn not_found() -> Error {
    Error::not_found("GROUP_NOT_FOUND", "no such group")
}

fn disabled(setting: &str) -> Error {
    Error::FailedPrecondition {
        reason: "FEATURE_DISABLED",
        message: format!("this feature is off ({setting})"),
    }
}

fn check_avatar(url: &str) -> Result<()> {
    if !url.is_empty()
        && (url.len() > 2048 || !(url.starts_with("https://") || url.starts_with("http://")))
    {
        return Err(Error::invalid(
            "INVALID_ARGUMENT",
            "avatar_url",
            "avatar_url must be an http(s) URL of at most 2048 bytes",
        ));
    }
    Ok(())
}

impl GroupService {
    pub fn new(pool: DbPool, config: AccessConfig, decisions: Decisions) -> Self {
        Self {
            pool,
            config,
            decisions,
        }
    }

    /// The scope a request names: `None` for the global groups. Refused when the deployment has
    /// the feature off.
    fn scope(&self, organization_id: &str) -> Result<Option<Uuid>> {
        if !self.config.user_groups_active {
            return Err(disabled("userGroupsActive"));
        }
        let org = parse_optional_id(organization_id, "organization_id")?;
        if org.is_some() && !self.config.user_groups_in_tenant_level {
            return Err(disabled("userGroupsInTenantLevel"));
        }
        Ok(org)
    }

    async fn with_count(conn: &mut AsyncPgConnection, row: GroupRow) -> Result<Group> {
        let member_count = store::member_count(conn, row.id).await?;
        Ok(Group { row, member_count })
    }

    pub async fn create(&self, fields: GroupFields) -> Result<Group> {
        let org = self.scope(&fields.organization_id)?;
        let name = check_display_name(&fields.name, "group.name")?;
        check_description(&fields.description, "group.description")?;
        check_avatar(&fields.avatar_url)?;
        let avatar_url = if fields.avatar_url.is_empty() {
            let hash: String = secret::digest(&name)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            self.config
                .group_avatar_template
                .replace("{name_sha256}", &hash)
        } else {
            fields.avatar_url
        };
        let now = Utc::now();
        let mut conn = self.pool.get().await?;
        let row = store::insert(
            &mut conn,
            GroupRow {
                id: Uuid::now_v7(),
                organization_id: org,
                name,
                description: fields.description,
                avatar_url,
                created_at: now,
                updated_at: now,
            },
        )
        .await?;
        tracing::info!(group_id = %row.id, organization_id = ?org, "group created");
        Ok(Group {
            row,
            member_count: 0,
        })
    }

    pub async fn get(&self, id: &str, organization_id: &str) -> Result<Group> {
        let org = self.scope(organization_id)?;
        let id = parse_id(id, "group_id")?;
        let mut conn = self.pool.get().await?;
        let row = store::get(&mut conn, id, org)
            .await?
            .ok_or_else(not_found)?;
        Self::with_count(&mut conn, row).await
    }

    /// A page of a scope's groups by name and the next page's token.
    pub async fn list(
        &self,
        organization_id: &str,
        query: &str,
        user_id: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<Group>, String)> {
        let org = self.scope(organization_id)?;
        let member = parse_optional_id(user_id, "user_id")?;
        let page = NamePage::parse(page_size, page_token)?;
        let mut conn = self.pool.get().await?;
        let query = (!query.is_empty()).then_some(query);
        let rows = store::list(
            &mut conn,
            org,
            query,
            member,
            page.after.as_deref(),
            page.fetch(),
        )
        .await?;
        let (rows, next) = page.finish(rows, |r| r.name.as_str());
        let mut groups = Vec::with_capacity(rows.len());
        for row in rows {
            groups.push(Self::with_count(&mut conn, row).await?);
        }
        Ok((groups, next))
    }

    pub async fn update(&self, id: &str, fields: GroupFields, paths: &[String]) -> Result<Group> {
        let org = self.scope(&fields.organization_id)?;
        let id = parse_id(id, "group.id")?;
        if paths.is_empty() {
            return Err(Error::invalid(
                "INVALID_UPDATE_MASK",
                "update_mask",
                "update_mask names no field",
            ));
        }
        if let Some(other) = paths
            .iter()
            .find(|p| !matches!(p.as_str(), "name" | "description" | "avatar_url"))
        {
            return Err(Error::invalid(
                "INVALID_UPDATE_MASK",
                "update_mask",
                format!("`{other}` is not an updatable field"),
            ));
        }
        let has = |p: &str| paths.iter().any(|x| x == p);
        let name = if has("name") {
            Some(check_display_name(&fields.name, "group.name")?)
        } else {
            None
        };
        if has("description") {
            check_description(&fields.description, "group.description")?;
        }
        if has("avatar_url") {
            check_avatar(&fields.avatar_url)?;
        }
        let changes = GroupChanges {
            name,
            description: has("description").then_some(fields.description),
            avatar_url: has("avatar_url").then_some(fields.avatar_url),
            updated_at: Some(Utc::now()),
        };
        let mut conn = self.pool.get().await?;
        let row = conn
            .transaction(async |conn| {
                // The scope check and the write see the same row: a group cannot be updated
                // through another organization's path.
                store::get_for_share(conn, id, org)
                    .await?
                    .ok_or_else(not_found)?;
                store::update(conn, id, changes)
                    .await?
                    .ok_or_else(not_found)
            })
            .await?;
        Self::with_count(&mut conn, row).await
    }

    /// Deletes the group with its memberships and the grants to it.
    pub async fn delete(&self, id: &str, organization_id: &str) -> Result<()> {
        let org = self.scope(organization_id)?;
        let id = parse_id(id, "group_id")?;
        let mut conn = self.pool.get().await?;
        conn.transaction(async |conn| {
            store::get_for_share(conn, id, org)
                .await?
                .ok_or_else(not_found)?;
            store::delete(conn, id).await
        })
        .await?;
        self.decisions.invalidate();
        tracing::info!(group_id = %id, "group deleted");
        Ok(())
    }

    pub async fn add_member(
        &self,
        id: &str,
        organization_id: &str,
        user_id: &str,
        adder: Option<Uuid>,
    ) -> Result<MemberRow> {
        let org = self.scope(organization_id)?;
        let id = parse_id(id, "group_id")?;
        let user = parse_id(user_id, "user_id")?;
        let mut conn = self.pool.get().await?;
        let member = conn
            .transaction(async |conn| {
                store::get_for_share(conn, id, org)
                    .await?
                    .ok_or_else(not_found)?;
                if !store::lock_user(conn, user).await? {
                    return Err(Error::not_found(
                        "USER_NOT_FOUND",
                        format!("no user `{user}`"),
                    ));
                }
                // An organization's groups hold its members only; an outsider is answered like an
                // unknown user, so organization admins learn nothing about other accounts.
                if let Some(org) = org {
                    if crate::org::org_store::get_member(conn, org, user)
                        .await?
                        .is_none()
                    {
                        return Err(Error::not_found(
                            "USER_NOT_FOUND",
                            format!("no user `{user}`"),
                        ));
                    }
                }
                if !store::add_member(conn, id, user, adder).await? {
                    return Err(Error::already_exists(
                        "ALREADY_GROUP_MEMBER",
                        "the user is already a member of the group",
                    ));
                }
                store::member(conn, id, user)
                    .await?
                    .ok_or_else(|| Error::internal("membership vanished"))
            })
            .await?;
        self.decisions.invalidate();
        tracing::info!(group_id = %id, user_id = %user, "group member added");
        Ok(member)
    }

    pub async fn remove_member(
        &self,
        id: &str,
        organization_id: &str,
        user_id: &str,
    ) -> Result<()> {
        let org = self.scope(organization_id)?;
        let id = parse_id(id, "group_id")?;
        let user = parse_id(user_id, "user_id")?;
        let mut conn = self.pool.get().await?;
        conn.transaction(async |conn| {
            store::get_for_share(conn, id, org)
                .await?
                .ok_or_else(not_found)?;
            if !store::remove_member(conn, id, user).await? {
                return Err(Error::not_found(
                    "GROUP_MEMBER_NOT_FOUND",
                    "the user is not a member of the group",
                ));
            }
            Ok(())
        })
        .await?;
        self.decisions.invalidate();
        tracing::info!(group_id = %id, user_id = %user, "group member removed");
        Ok(())
    }

    pub async fn members(
        &self,
        id: &str,
        organization_id: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<MemberRow>, String)> {
        let org = self.scope(organization_id)?;
        let id = parse_id(id, "group_id")?;
        let page = Page::parse(page_size, page_token)?;
        let mut conn = self.pool.get().await?;
        store::get(&mut conn, id, org)
            .await?
            .ok_or_else(not_found)?;
        let rows = store::members(&mut conn, id, page.after, page.fetch()).await?;
        Ok(page.finish(rows, |r| (r.created_at, r.user_id)))
    }
}
