//! What a user may do in an organization, as the auth layer asks it on every org-scoped call:
//! the user's membership and the permissions of its role, cached for one second per (user,
//! organization), so a removal, a role change or a deleted organization takes effect on every
//! instance within a second while a busy caller costs at most one query per second.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::{
    db::{
        DbPool,
        schema::{org_members, org_roles},
    },
    error::Result,
    oauth::model::ResourceScopes,
    org::{org_role_store::OrgRoleRow, permissions},
};

const TTL: Duration = Duration::from_secs(1);
/// Past this many cached answers the cache starts over, bounding its memory.
const MAX_ENTRIES: usize = 100_000;

/// A user's standing in one organization.
#[derive(Debug, Clone)]
pub struct OrgGrant {
    pub role: String,
    pub permissions: BTreeSet<String>,
    /// The scopes the role lists, by resource.
    pub scopes: Vec<ResourceScopes>,
}

type Entry = (Option<Arc<OrgGrant>>, Instant);

#[derive(Clone)]
pub struct OrgAccess {
    pool: DbPool,
    cache: Arc<Mutex<HashMap<(Uuid, Uuid), Entry>>>,
}

impl OrgAccess {
    pub fn new(pool: DbPool) -> Self {
        Self {
            pool,
            cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The user's role and permissions in the organization; `None` when not a member (or the
    /// organization does not exist).
    pub async fn grant(&self, user: Uuid, org: Uuid) -> Result<Option<Arc<OrgGrant>>> {
        if let Some((grant, at)) = self
            .cache
            .lock()
            .expect("cache lock")
            .get(&(user, org))
            .cloned()
        {
            if at.elapsed() < TTL {
                return Ok(grant);
            }
        }
        let mut conn = self.pool.get().await?;
        let row: Option<OrgRoleRow> = org_members::table
            .inner_join(
                org_roles::table.on(org_roles::organization_id
                    .eq(org_members::organization_id)
                    .and(org_roles::name.eq(org_members::role))),
            )
            .filter(org_members::organization_id.eq(org))
            .filter(org_members::user_id.eq(user))
            .select(OrgRoleRow::as_select())
            .first(&mut conn)
            .await
            .optional()?;
        let grant = row.map(|r| {
            let scopes = r.resource_scopes();
            let permissions = permissions::effective_permissions(&r.name, r.system, &scopes);
            Arc::new(OrgGrant {
                role: r.name,
                permissions,
                scopes,
            })
        });
        let mut cache = self.cache.lock().expect("cache lock");
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
        cache.insert((user, org), (grant.clone(), Instant::now()));
        Ok(grant)
    }

    /// Whether the user's role in the organization gives `permission`.
    pub async fn allows(&self, user: Uuid, org: Uuid, permission: &str) -> Result<bool> {
        Ok(self
            .grant(user, org)
            .await?
            .is_some_and(|g| g.permissions.contains(permission)))
    }

    /// Drops this instance's cached answers about an organization whose memberships or roles
    /// just changed here (other instances catch up within [`TTL`]).
    pub fn forget_organization(&self, org: Uuid) {
        self.cache
            .lock()
            .expect("cache lock")
            .retain(|(_, o), _| *o != org);
    }
}
