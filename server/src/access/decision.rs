//! The decision engine: `CheckPermission`, `ListPermissions` and `ListObjects` over a per-subject
//! snapshot of grants and the compiled attribute-based rules, both cached in memory.
//!
//! Invalidation: every table a decision reads has a statement trigger that notifies
//! `mgpass_access` at commit (see the migration `000012_groups_permissions`), whoever writes it.
//! Each instance holds one connection that LISTENs and drops the whole cache on every
//! notification, so a change is seen everywhere within milliseconds. While that connection is
//! down the cache is bypassed (every decision reads Postgres), and it is dropped again on
//! reconnect, so a lost notification can never leave a stale decision behind.
//!
//! A load that raced an invalidation must not store its (possibly stale) result: loads note the
//! generation before reading and store only if it has not moved.

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use cel::Program;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use futures::StreamExt;
use serde_json::json;
use uuid::Uuid;

use crate::{
    access::{abac, group_store, permission_store as store},
    db::DbPool,
    error::Result,
};

/// The Postgres channel of access changes.
pub const CHANNEL: &str = "mgpass_access";
/// Cached subjects at most; past that the cache starts over (a crude but bounded policy).
const MAX_SUBJECTS: usize = 100_000;

/// Whose permissions are decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubjectId {
    User(Uuid),
    Application(Uuid),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subject {
    pub id: SubjectId,
    pub organization_id: Option<Uuid>,
}

/// Where an allowing decision came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    User,
    Group,
    Role,
    OrgRole,
    Organization,
    Rule,
}

/// A grant the subject holds.
#[derive(Debug, Clone)]
pub struct Held {
    pub permission: String,
    pub grant_id: Uuid,
    pub source: Source,
    /// `None`: every object.
    pub object: Option<(String, String)>,
}

/// The answer of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Denied,
    Grant { grant_id: Uuid, source: Source },
    Rule { rule_id: Uuid },
}

/// What one subject holds, as loaded.
#[derive(Debug, Default)]
struct View {
    /// By permission: unscoped grants first, then by source.
    grants: HashMap<String, Vec<Held>>,
    /// `subject` in rule conditions.
    facts: serde_json::Value,
}

/// Enabled rules by (permission, object type).
#[derive(Default)]
struct Rules {
    by_key: HashMap<(String, String), Vec<(Uuid, Arc<Program>)>>,
}

struct Inner {
    generation: AtomicU64,
    listening: AtomicBool,
    views: RwLock<HashMap<Subject, Arc<View>>>,
    rules: RwLock<Option<Arc<Rules>>>,
}

#[derive(Clone)]
pub struct Decisions {
    pool: DbPool,
    inner: Arc<Inner>,
}

impl Decisions {
    pub fn new(pool: DbPool) -> Self {
        Self {
            pool,
            inner: Arc::new(Inner {
                generation: AtomicU64::new(0),
                listening: AtomicBool::new(false),
                views: RwLock::default(),
                rules: RwLock::default(),
            }),
        }
    }

    /// Drops every cached decision. The bump comes first: a load that read before it will not
    /// store its result.
    pub fn invalidate(&self) {
        self.inner.generation.fetch_add(1, Ordering::SeqCst);
        self.inner.views.write().expect("decision cache").clear();
        *self.inner.rules.write().expect("decision cache") = None;
    }

    fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::SeqCst)
    }

    fn caching(&self) -> bool {
        self.inner.listening.load(Ordering::SeqCst)
    }

    /// LISTENs on its own connection (not the pool's) until the process ends, reconnecting after
    /// a failure.
    pub fn spawn_listener(&self, database_url: String) {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(err) = this.listen(&database_url).await {
                    tracing::warn!(error = %err, "access change listener lost; decisions read Postgres until it is back");
                }
                this.inner.listening.store(false, Ordering::SeqCst);
                this.invalidate();
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }

    async fn listen(&self, url: &str) -> anyhow::Result<()> {
        use diesel_async::RunQueryDsl;
        let mut conn = AsyncPgConnection::establish(url).await?;
        diesel::sql_query(format!("LISTEN {CHANNEL}"))
            .execute(&mut conn)
            .await?;
        // Anything cached before LISTEN took effect may have missed a notification.
        self.invalidate();
        self.inner.listening.store(true, Ordering::SeqCst);
        tracing::debug!("listening for access changes");
        loop {
            let next = {
                let mut stream = std::pin::pin!(conn.notifications_stream());
                tokio::time::timeout(Duration::from_secs(5), stream.next()).await
            };
            match next {
                Ok(Some(Ok(_))) => self.invalidate(),
                Ok(Some(Err(err))) => return Err(err.into()),
                Ok(None) => anyhow::bail!("notification stream ended"),
                // Quiet for a while: prove the connection is alive (a dead one would otherwise
                // keep the cache on without notifications).
                Err(_) => {
                    diesel::sql_query("SELECT 1").execute(&mut conn).await?;
                }
            }
        }
    }

    async fn view(&self, subject: Subject) -> Result<Arc<View>> {
        let caching = self.caching();
        if caching {
            if let Some(view) = self
                .inner
                .views
                .read()
                .expect("decision cache")
                .get(&subject)
            {
                return Ok(view.clone());
            }
        }
        let generation = self.generation();
        let view = Arc::new(self.load_view(subject).await?);
        if caching {
            let mut views = self.inner.views.write().expect("decision cache");
            if self.generation() == generation {
                if views.len() >= MAX_SUBJECTS {
                    views.clear();
                }
                views.insert(subject, view.clone());
            }
        }
        Ok(view)
    }

    async fn load_view(&self, subject: Subject) -> Result<View> {
        let mut conn = self.pool.get().await?;
        let org = subject
            .organization_id
            .map(|o| o.to_string())
            .unwrap_or_default();
        let (user, roles, groups, facts, organization) = match subject.id {
            SubjectId::User(id) => {
                let Some((names, properties)) = store::user_facts(&mut conn, id).await? else {
                    return Ok(View::default());
                };
                let roles = store::user_role_ids(&mut conn, &names).await?;
                let groups =
                    group_store::groups_of_user(&mut conn, id, subject.organization_id).await?;
                // Organization grants reach members only: a user naming an organization they do
                // not belong to gets nothing from it.
                let membership = match subject.organization_id {
                    Some(org) => store::member_role(&mut conn, org, id)
                        .await?
                        .map(|role| (org, role)),
                    None => None,
                };
                let org_role = membership
                    .as_ref()
                    .map(|(_, (_, name))| name.clone())
                    .unwrap_or_default();
                let facts = json!({"id": id.to_string(), "kind": "user", "roles": names,
                    "groups": groups.iter().map(Uuid::to_string).collect::<Vec<_>>(),
                    "organization_id": org, "org_role": org_role, "properties": properties});
                (
                    Some(id),
                    roles,
                    groups,
                    facts,
                    membership.map(|(org, (role, _))| (org, Some(role))),
                )
            }
            SubjectId::Application(id) => {
                let Some(roles) = store::application_role_ids(&mut conn, id).await? else {
                    return Ok(View::default());
                };
                let names: Vec<&str> = roles.iter().map(|r| r.1.as_str()).collect();
                let facts = json!({"id": id.to_string(), "kind": "application", "roles": names, "groups": [],
                    "organization_id": org, "org_role": "", "properties": {}});
                (None, roles, Vec::new(), facts, None)
            }
        };
        let role_ids: Vec<Uuid> = roles.iter().map(|r| r.0).collect();
        let rows = store::grants_to(&mut conn, user, &role_ids, &groups, organization).await?;
        let mut grants: HashMap<String, Vec<Held>> = HashMap::new();
        for (row, permission) in rows {
            let source = if row.user_id.is_some() {
                Source::User
            } else if row.group_id.is_some() {
                Source::Group
            } else if row.org_role_id.is_some() {
                Source::OrgRole
            } else if row.organization_id.is_some() {
                Source::Organization
            } else {
                Source::Role
            };
            let object = (!row.object_type.is_empty())
                .then(|| (row.object_type.clone(), row.object_id.clone()));
            grants.entry(permission.clone()).or_default().push(Held {
                permission,
                grant_id: row.id,
                source,
                object,
            });
        }
        for held in grants.values_mut() {
            held.sort_by(|a, b| {
                (a.object.is_some(), a.source, a.grant_id).cmp(&(
                    b.object.is_some(),
                    b.source,
                    b.grant_id,
                ))
            });
        }
        Ok(View { grants, facts })
    }

    async fn rules(&self) -> Result<Arc<Rules>> {
        let caching = self.caching();
        if caching {
            if let Some(rules) = self.inner.rules.read().expect("decision cache").as_ref() {
                return Ok(rules.clone());
            }
        }
        let generation = self.generation();
        let mut conn = self.pool.get().await?;
        let rows = store::enabled_rules(&mut conn).await?;
        let mut compiled: HashMap<Uuid, Arc<Program>> = HashMap::new();
        let mut rules = Rules::default();
        for (rule, permission) in rows {
            let program = match compiled.get(&rule.id) {
                Some(p) => p.clone(),
                None => match abac::compile(&rule.condition) {
                    Ok(p) => compiled.entry(rule.id).or_insert(Arc::new(p)).clone(),
                    Err(err) => {
                        // Conditions are checked when written; one that no longer compiles (a
                        // stricter release) denies.
                        tracing::warn!(rule_id = %rule.id, error = %err, "stored rule condition does not compile; ignored");
                        continue;
                    }
                },
            };
            rules
                .by_key
                .entry((permission, rule.object_type.clone()))
                .or_default()
                .push((rule.id, program));
        }
        for list in rules.by_key.values_mut() {
            list.sort_by_key(|r| r.0);
        }
        let rules = Arc::new(rules);
        if caching {
            let mut slot = self.inner.rules.write().expect("decision cache");
            if self.generation() == generation {
                *slot = Some(rules.clone());
            }
        }
        Ok(rules)
    }

    /// Whether the subject holds the permission, on `object` or in general, and why. A grant
    /// without object covers every object; with an object, a grant on exactly it, then the
    /// enabled rules of its type, in id order, decide.
    pub async fn check(
        &self,
        subject: Subject,
        permission: &str,
        object: Option<(&str, &str)>,
        attributes: &serde_json::Value,
        context: &serde_json::Value,
    ) -> Result<Decision> {
        let view = self.view(subject).await?;
        if let Some(held) = view.grants.get(permission) {
            let hit = held.iter().find(|h| match (&h.object, object) {
                (None, _) => true,
                (Some((t, i)), Some((ot, oi))) => t == ot && i == oi,
                (Some(_), None) => false,
            });
            if let Some(h) = hit {
                return Ok(Decision::Grant {
                    grant_id: h.grant_id,
                    source: h.source,
                });
            }
        }
        let Some((object_type, object_id)) = object else {
            return Ok(Decision::Denied);
        };
        if view.facts.is_null() {
            return Ok(Decision::Denied); // unknown subject
        }
        let rules = self.rules().await?;
        if let Some(candidates) = rules
            .by_key
            .get(&(permission.to_string(), object_type.to_string()))
        {
            let object = json!({"type": object_type, "id": object_id, "attributes": attributes});
            for (rule_id, program) in candidates {
                if abac::holds(program, &view.facts, &object, context) {
                    return Ok(Decision::Rule { rule_id: *rule_id });
                }
            }
        }
        Ok(Decision::Denied)
    }

    /// Every grant the subject holds, by permission name then grant id.
    pub async fn held(&self, subject: Subject) -> Result<Vec<Held>> {
        let view = self.view(subject).await?;
        let mut all: Vec<Held> = view.grants.values().flatten().cloned().collect();
        all.sort_by(|a, b| (&a.permission, a.grant_id).cmp(&(&b.permission, b.grant_id)));
        Ok(all)
    }

    /// The objects of a type the subject holds the permission on through grants (sorted, unique),
    /// whether a grant covers all of them, and the enabled rules that may allow more.
    pub async fn objects(
        &self,
        subject: Subject,
        permission: &str,
        object_type: &str,
    ) -> Result<(Vec<String>, bool, Vec<Uuid>)> {
        let view = self.view(subject).await?;
        let held = view
            .grants
            .get(permission)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let all = held.iter().any(|h| h.object.is_none());
        let mut ids: Vec<String> = held
            .iter()
            .filter_map(|h| {
                h.object
                    .as_ref()
                    .filter(|(t, _)| t == object_type)
                    .map(|(_, i)| i.clone())
            })
            .collect();
        ids.sort();
        ids.dedup();
        let rules = self.rules().await?;
        let rule_ids = rules
            .by_key
            .get(&(permission.to_string(), object_type.to_string()))
            .map(|r| r.iter().map(|(id, _)| *id).collect())
            .unwrap_or_default();
        Ok((ids, all, rule_ids))
    }
}
