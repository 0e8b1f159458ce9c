//! Per-organization feature flags (name → boolean or string). Reads go through a cache of one
//! second per organization, shared by the API and the organization tokens of this instance;
//! writes drop this instance's entry at once, other instances follow within the second.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use chrono::Utc;
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use crate::{
    db::DbPool,
    error::{Error, Result},
    org::{
        check_name,
        cursor::NamePage,
        flag_store::{self as store, FlagRow},
        org_not_found, org_store, parse_org_id,
    },
};

const TTL: Duration = Duration::from_secs(1);
const MAX_ENTRIES: usize = 10_000;
/// Flags one organization may have; tokens carry them, so they stay few.
const MAX_FLAGS: usize = 200;
const MAX_STRING: usize = 256;

/// A flag's value.
#[derive(Debug, Clone, PartialEq)]
pub enum FlagValue {
    Bool(bool),
    String(String),
}

type Cache = Mutex<HashMap<Uuid, (Arc<Vec<FlagRow>>, Instant)>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Drops the cached flags of an organization (changed or deleted on this instance).
pub fn forget(org: Uuid) {
    cache().lock().expect("flag cache").remove(&org);
}

/// The organization's flags, by name, at most a second old.
pub async fn cached(conn: &mut AsyncPgConnection, org: Uuid) -> Result<Arc<Vec<FlagRow>>> {
    if let Some((flags, at)) = cache().lock().expect("flag cache").get(&org).cloned() {
        if at.elapsed() < TTL {
            return Ok(flags);
        }
    }
    let flags = Arc::new(store::all(conn, org).await?);
    let mut cache = cache().lock().expect("flag cache");
    if cache.len() >= MAX_ENTRIES {
        cache.clear();
    }
    cache.insert(org, (flags.clone(), Instant::now()));
    Ok(flags)
}

/// The flags an organization token carries in `org_flags`: those marked `include_in_token`.
pub fn token_claim(flags: &[FlagRow]) -> serde_json::Map<String, serde_json::Value> {
    flags
        .iter()
        .filter(|f| f.include_in_token)
        .filter_map(|f| {
            let value = match (&f.bool_value, &f.string_value) {
                (Some(b), _) => serde_json::Value::Bool(*b),
                (None, Some(s)) => serde_json::Value::String(s.clone()),
                (None, None) => return None,
            };
            Some((f.name.clone(), value))
        })
        .collect()
}

fn flag_not_found() -> Error {
    Error::not_found("FEATURE_FLAG_NOT_FOUND", "no such feature flag")
}

#[derive(Clone)]
pub struct FlagService {
    pool: DbPool,
}

impl FlagService {
    pub fn new(pool: DbPool) -> Self {
        Self { pool }
    }

    /// A page of the organization's flags by name.
    pub async fn list(
        &self,
        org: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<FlagRow>, String)> {
        let org = parse_org_id(org)?;
        let page = NamePage::parse(page_size, page_token)?;
        let mut conn = self.pool.get().await?;
        org_store::get(&mut conn, org)
            .await?
            .ok_or_else(org_not_found)?;
        let flags = cached(&mut conn, org).await?;
        let after = page.after.as_ref().map(|a| a.0.clone());
        let rows: Vec<FlagRow> = flags
            .iter()
            .filter(|f| after.as_ref().is_none_or(|a| f.name.as_str() > a.as_str()))
            .take(page.fetch() as usize)
            .cloned()
            .collect();
        Ok(page.finish(rows, |f| (f.name.clone(), String::new())))
    }

    /// Creates or replaces one flag.
    pub async fn set(
        &self,
        org: &str,
        name: &str,
        value: Option<FlagValue>,
        include_in_token: bool,
    ) -> Result<FlagRow> {
        let org = parse_org_id(org)?;
        check_name(name, "feature_flag.name")?;
        let (bool_value, string_value) = match value {
            Some(FlagValue::Bool(b)) => (Some(b), None),
            Some(FlagValue::String(s)) if s.chars().count() <= MAX_STRING => (None, Some(s)),
            Some(FlagValue::String(_)) => {
                return Err(Error::invalid(
                    "INVALID_ARGUMENT",
                    "feature_flag.string_value",
                    format!("a string flag holds at most {MAX_STRING} characters"),
                ));
            }
            None => {
                return Err(Error::invalid(
                    "INVALID_ARGUMENT",
                    "feature_flag.value",
                    "a flag needs a boolean or string value",
                ));
            }
        };
        let mut conn = self.pool.get().await?;
        use diesel_async::AsyncConnection;
        let row = conn
            .transaction(async |conn| {
                org_store::get_for_update(conn, org)
                    .await?
                    .ok_or_else(org_not_found)?;
                let existing = store::all(conn, org).await?;
                if existing.len() >= MAX_FLAGS && !existing.iter().any(|f| f.name == name) {
                    return Err(Error::invalid(
                        "INVALID_ARGUMENT",
                        "feature_flag.name",
                        format!("an organization has at most {MAX_FLAGS} flags"),
                    ));
                }
                store::upsert(
                    conn,
                    FlagRow {
                        organization_id: org,
                        name: name.to_string(),
                        bool_value,
                        string_value,
                        include_in_token,
                        updated_at: Utc::now(),
                    },
                )
                .await
            })
            .await?;
        forget(org);
        tracing::info!(organization_id = %org, flag = name, "feature flag set");
        Ok(row)
    }

    pub async fn delete(&self, org: &str, name: &str) -> Result<()> {
        let org = parse_org_id(org)?;
        let mut conn = self.pool.get().await?;
        org_store::get(&mut conn, org)
            .await?
            .ok_or_else(org_not_found)?;
        if !store::delete(&mut conn, org, name).await? {
            return Err(flag_not_found());
        }
        forget(org);
        tracing::info!(organization_id = %org, flag = name, "feature flag deleted");
        Ok(())
    }
}
