//! The rules of API keys: personal keys (the caller's own) and organization keys, each holding
//! only scopes its creator holds; shown once, stored as SHA-256, rotated with an optional overlap,
//! revoked for good. Transport-free.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Duration, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use crate::{
    access::api_key_store::{self as store, ApiKeyFilter, ApiKeyRow, StatusFilter},
    auth::{
        ADMIN_SCOPE, Principal,
        api_keys::{API_KEY_PREFIX, ApiKeyAuthenticator},
    },
    crypto::secret::{digest, random_token},
    db::DbPool,
    error::{Error, Result},
    org::access::OrgAccess,
    paging::Page,
};

/// The characters of a key shown in listings (`mgp_` + 8).
const PREFIX_LEN: usize = 12;
const MAX_NAME: usize = 100;
const MAX_SCOPES: usize = 100;
/// The longest a replaced value may keep working.
const MAX_OVERLAP_SECS: i64 = 7 * 24 * 3600;

/// What a caller asks for when creating a key.
#[derive(Debug, Default, Clone)]
pub struct NewApiKey {
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A key and its value, which is shown this once.
pub struct IssuedApiKey {
    pub row: ApiKeyRow,
    pub key: String,
}

/// Whose keys a management call may touch.
#[derive(Debug, Clone, Copy)]
enum Owner {
    /// The caller's personal keys.
    User(Uuid),
    /// Any key, or only this organization's when set (the management methods).
    Managed(Option<Uuid>),
}

#[derive(Clone)]
pub struct ApiKeyService {
    pool: DbPool,
    /// Every scope a key may name: `mgpass:admin` and the permissions the RPCs declare.
    known_scopes: HashSet<String>,
    authenticator: ApiKeyAuthenticator,
    /// Members' roles in organizations: what a member may give an organization key.
    org_access: Option<OrgAccess>,
}

fn parse_id(id: &str, field: &'static str) -> Result<Uuid> {
    Uuid::parse_str(id)
        .map_err(|_| Error::invalid("INVALID_ID", field, format!("`{id}` is not a valid id")))
}

fn parse_optional_id(id: &str, field: &'static str) -> Result<Option<Uuid>> {
    if id.is_empty() {
        Ok(None)
    } else {
        parse_id(id, field).map(Some)
    }
}

fn not_found() -> Error {
    Error::not_found("API_KEY_NOT_FOUND", "no such API key")
}

fn failed(reason: &'static str, message: impl Into<String>) -> Error {
    Error::FailedPrecondition {
        reason,
        message: message.into(),
    }
}

/// A new key value: `mgp_` + 256 random bits in base64url.
fn new_key() -> String {
    format!("{API_KEY_PREFIX}{}", random_token(32))
}

fn prefix_of(key: &str) -> String {
    key[..PREFIX_LEN].to_string()
}

/// Whether the key works now.
pub fn is_active(row: &ApiKeyRow, now: DateTime<Utc>) -> bool {
    row.revoked_at.is_none() && row.expires_at.is_none_or(|e| e > now)
}

/// The user whose personal keys the caller manages: an organization key has none.
fn personal_owner(principal: &Principal) -> Result<Uuid> {
    if principal.api_key_organization_id.is_some() {
        return Err(Error::permission_denied(
            "PERMISSION_DENIED",
            "an organization API key has no personal keys",
        ));
    }
    Ok(principal.user_id)
}

impl ApiKeyService {
    pub fn new(
        pool: DbPool,
        permissions: impl IntoIterator<Item = String>,
        authenticator: ApiKeyAuthenticator,
    ) -> Self {
        let mut known_scopes: HashSet<String> = permissions.into_iter().collect();
        known_scopes.insert(ADMIN_SCOPE.to_string());
        Self {
            pool,
            known_scopes,
            authenticator,
            org_access: None,
        }
    }

    /// Lets a member give an organization key the permissions of their role in it.
    pub fn with_org_access(mut self, org_access: OrgAccess) -> Self {
        self.org_access = Some(org_access);
        self
    }

    /// The permissions the caller holds in `org` through a membership (a signed-in user's
    /// token only: an API key holds exactly its own scopes).
    async fn org_permissions(&self, caller: &Principal, org: Uuid) -> Result<BTreeSet<String>> {
        match &self.org_access {
            Some(access)
                if caller.session_id.is_some() && caller.org_id.is_none_or(|o| o == org) =>
            {
                Ok(access
                    .grant(caller.user_id, org)
                    .await?
                    .map(|g| g.permissions.clone())
                    .unwrap_or_default())
            }
            _ => Ok(BTreeSet::new()),
        }
    }

    /// Checks the name, scopes and expiry of a new key; returns the scopes without duplicates.
    fn check_new(
        &self,
        creator: &Principal,
        in_org: &BTreeSet<String>,
        key: &NewApiKey,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        let name = key.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME {
            return Err(Error::invalid(
                "INVALID_ARGUMENT",
                "api_key.name",
                "`name` must be 1 to 100 characters",
            ));
        }
        if key.expires_at.is_some_and(|e| e <= now) {
            return Err(Error::invalid(
                "INVALID_ARGUMENT",
                "api_key.expire_time",
                "`expire_time` is in the past",
            ));
        }
        if key.scopes.len() > MAX_SCOPES {
            return Err(Error::invalid(
                "INVALID_ARGUMENT",
                "api_key.scopes",
                "at most 100 scopes",
            ));
        }
        let mut seen = HashSet::new();
        let mut scopes = Vec::new();
        for scope in &key.scopes {
            if !self.known_scopes.contains(scope) {
                return Err(Error::invalid(
                    "UNKNOWN_SCOPE",
                    "api_key.scopes",
                    format!("unknown scope `{scope}`"),
                ));
            }
            // Never wider than the creator: a key (or a key created by a key) holds only what
            // its creator's credential holds right now.
            let held = creator.has_permission(scope)
                || in_org.contains(scope)
                || (creator.org_id.is_some() && creator.scopes.contains(scope));
            if !held {
                return Err(Error::permission_denied(
                    "SCOPE_NOT_HELD",
                    format!("you do not hold the scope `{scope}`"),
                ));
            }
            if seen.insert(scope.clone()) {
                scopes.push(scope.clone());
            }
        }
        Ok(scopes)
    }

    async fn insert(
        &self,
        creator: &Principal,
        key: NewApiKey,
        user_id: Option<Uuid>,
        organization_id: Option<Uuid>,
    ) -> Result<IssuedApiKey> {
        let now = Utc::now();
        let in_org = match organization_id {
            Some(org) => self.org_permissions(creator, org).await?,
            None => BTreeSet::new(),
        };
        let scopes = self.check_new(creator, &in_org, &key, now)?;
        let mut conn = self.pool.get().await?;
        if let Some(org) = organization_id {
            if !store::organization_exists(&mut conn, org).await? {
                return Err(Error::not_found(
                    "ORGANIZATION_NOT_FOUND",
                    "no such organization",
                ));
            }
        }
        let value = new_key();
        let row = ApiKeyRow {
            id: Uuid::now_v7(),
            name: key.name.trim().to_string(),
            prefix: prefix_of(&value),
            key_hash: digest(&value),
            previous_key_hash: None,
            previous_key_expires_at: None,
            user_id,
            organization_id,
            // An organization key's principal is its organization, not a user.
            creator_user_id: creator.user_id,
            scopes,
            expires_at: key.expires_at,
            last_used_at: None,
            created_at: now,
            rotated_at: None,
            revoked_at: None,
        };
        let row = store::insert(&mut conn, row).await?;
        tracing::info!(api_key_id = %row.id, prefix = %row.prefix, creator = %creator.user_id, "API key created");
        Ok(IssuedApiKey { row, key: value })
    }

    pub async fn create_mine(&self, caller: &Principal, key: NewApiKey) -> Result<IssuedApiKey> {
        let owner = personal_owner(caller)?;
        self.insert(caller, key, Some(owner), None).await
    }

    pub async fn create_for_organization(
        &self,
        caller: &Principal,
        organization_id: &str,
        key: NewApiKey,
    ) -> Result<IssuedApiKey> {
        if organization_id.is_empty() {
            return Err(Error::invalid(
                "INVALID_ARGUMENT",
                "api_key.organization_id",
                "`organization_id` is required",
            ));
        }
        let org = parse_id(organization_id, "api_key.organization_id")?;
        // An organization key acting for another organization would break isolation.
        if caller.api_key_organization_id.is_some_and(|own| own != org) {
            return Err(Error::not_found(
                "ORGANIZATION_NOT_FOUND",
                "no such organization",
            ));
        }
        self.insert(caller, key, None, Some(org)).await
    }

    pub async fn list_mine(
        &self,
        caller: &Principal,
        status: StatusFilter,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<ApiKeyRow>, String)> {
        let owner = personal_owner(caller)?;
        self.list_filtered(
            ApiKeyFilter {
                user_id: Some(owner),
                organization_id: None,
                status,
            },
            page_size,
            page_token,
        )
        .await
    }

    pub async fn list(
        &self,
        caller: &Principal,
        organization_id: &str,
        user_id: &str,
        status: StatusFilter,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<ApiKeyRow>, String)> {
        let mut organization_id = parse_optional_id(organization_id, "organization_id")?;
        let user_id = parse_optional_id(user_id, "user_id")?;
        if let Some(own) = caller.api_key_organization_id {
            // An organization key sees its organization's keys only.
            if organization_id.is_some_and(|o| o != own) {
                return Err(Error::not_found(
                    "ORGANIZATION_NOT_FOUND",
                    "no such organization",
                ));
            }
            organization_id = Some(own);
        }
        if let Some(org) = organization_id {
            let mut conn = self.pool.get().await?;
            if !store::organization_exists(&mut conn, org).await? {
                return Err(Error::not_found(
                    "ORGANIZATION_NOT_FOUND",
                    "no such organization",
                ));
            }
        }
        self.list_filtered(
            ApiKeyFilter {
                user_id,
                organization_id,
                status,
            },
            page_size,
            page_token,
        )
        .await
    }

    async fn list_filtered(
        &self,
        filter: ApiKeyFilter,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<ApiKeyRow>, String)> {
        let page = Page::parse(page_size, page_token)?;
        let mut conn = self.pool.get().await?;
        let rows = store::list(&mut conn, &filter, page.after, page.fetch()).await?;
        Ok(page.finish(rows, |r| (r.created_at, r.id)))
    }

    /// The key, locked, if `owner` may touch it; otherwise `API_KEY_NOT_FOUND` (a key of another
    /// user or organization is never revealed to exist).
    async fn locked(
        &self,
        conn: &mut AsyncPgConnection,
        id: &str,
        owner: Owner,
    ) -> Result<ApiKeyRow> {
        let id = parse_id(id, "api_key_id")?;
        let row = store::get_for_update(conn, id)
            .await?
            .ok_or_else(not_found)?;
        let visible = match owner {
            Owner::User(user) => row.user_id == Some(user),
            Owner::Managed(None) => true,
            Owner::Managed(Some(org)) => row.organization_id == Some(org),
        };
        if !visible {
            return Err(not_found());
        }
        Ok(row)
    }

    async fn rotate(&self, id: &str, owner: Owner, overlap_secs: i64) -> Result<IssuedApiKey> {
        if !(0..=MAX_OVERLAP_SECS).contains(&overlap_secs) {
            return Err(Error::invalid(
                "INVALID_ARGUMENT",
                "overlap",
                "`overlap` must be between 0 and 7 days",
            ));
        }
        let value = new_key();
        let mut conn = self.pool.get().await?;
        let row = conn
            .transaction(async |conn| {
                let row = self.locked(conn, id, owner).await?;
                if matches!(owner, Owner::Managed(_)) && row.user_id.is_some() {
                    return Err(failed(
                        "PERSONAL_API_KEY",
                        "personal keys are rotated only by their owner",
                    ));
                }
                let now = Utc::now();
                if !is_active(&row, now) {
                    return Err(failed(
                        "API_KEY_INACTIVE",
                        "a revoked or expired key cannot be rotated",
                    ));
                }
                let (previous, until) = if overlap_secs > 0 {
                    (
                        Some(row.key_hash.clone()),
                        Some(now + Duration::seconds(overlap_secs)),
                    )
                } else {
                    (None, None)
                };
                store::rotate(
                    conn,
                    row.id,
                    &prefix_of(&value),
                    &digest(&value),
                    previous.as_deref(),
                    until,
                    now,
                )
                .await
            })
            .await?;
        self.authenticator.forget_all();
        tracing::info!(api_key_id = %row.id, prefix = %row.prefix, overlap_secs, "API key rotated");
        Ok(IssuedApiKey { row, key: value })
    }

    async fn revoke(&self, id: &str, owner: Owner) -> Result<ApiKeyRow> {
        let mut conn = self.pool.get().await?;
        let row = conn
            .transaction(async |conn| {
                let row = self.locked(conn, id, owner).await?;
                store::revoke(conn, row.id, row.revoked_at.unwrap_or_else(Utc::now)).await
            })
            .await?;
        self.authenticator.forget_all();
        tracing::info!(api_key_id = %row.id, prefix = %row.prefix, "API key revoked");
        Ok(row)
    }

    pub async fn rotate_mine(
        &self,
        caller: &Principal,
        id: &str,
        overlap_secs: i64,
    ) -> Result<IssuedApiKey> {
        self.rotate(id, Owner::User(personal_owner(caller)?), overlap_secs)
            .await
    }

    pub async fn revoke_mine(&self, caller: &Principal, id: &str) -> Result<ApiKeyRow> {
        self.revoke(id, Owner::User(personal_owner(caller)?)).await
    }

    /// The keys a management call may touch: the named organization's, or any when none is named
    /// (an organization key is always confined to its own organization).
    fn managed(caller: &Principal, organization_id: &str) -> Result<Owner> {
        let org = parse_optional_id(organization_id, "organization_id")?;
        Ok(match (caller.api_key_organization_id, org) {
            (Some(own), Some(org)) if own != org => {
                return Err(Error::not_found(
                    "ORGANIZATION_NOT_FOUND",
                    "no such organization",
                ));
            }
            (Some(own), _) => Owner::Managed(Some(own)),
            (None, org) => Owner::Managed(org),
        })
    }

    pub async fn rotate_managed(
        &self,
        caller: &Principal,
        id: &str,
        organization_id: &str,
        overlap_secs: i64,
    ) -> Result<IssuedApiKey> {
        self.rotate(id, Self::managed(caller, organization_id)?, overlap_secs)
            .await
    }

    pub async fn revoke_managed(
        &self,
        caller: &Principal,
        id: &str,
        organization_id: &str,
    ) -> Result<ApiKeyRow> {
        self.revoke(id, Self::managed(caller, organization_id)?)
            .await
    }
}
