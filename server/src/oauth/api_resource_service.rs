//! The rules of API resources: what a valid indicator and scope are, the protection of the
//! built-in mgpass resource, and how references to a resource (from applications and roles) stay
//! valid when its scopes change or it is deleted. Transport-free.

use std::{
    collections::{BTreeMap, HashSet},
    sync::OnceLock,
};

use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use crate::{
    access::role_store,
    db::DbPool,
    error::{Error, Result},
    oauth::{
        api_resource_store::{self as store, ApiResourceChanges},
        application_store,
        clients::ClientRegistry,
        model::{ApiResourceRow, ApiScope, OIDC_SCOPES, ResourceScopes},
    },
    paging::Page,
};

/// The indicator of the built-in resource of the mgpass API (seeded by the roles migration).
pub const SYSTEM_INDICATOR: &str = "mgpass";
/// Scopes one resource may define; a consent page cannot show more anyway.
const MAX_SCOPES: usize = 500;
/// Resources one application or role may reference.
const MAX_REFERENCES: usize = 100;

/// The writable fields of an API resource.
#[derive(Debug, Default, Clone)]
pub struct ApiResourceFields {
    pub indicator: String,
    pub name: String,
    pub description: String,
    pub scopes: Vec<ApiScope>,
}

/// An update: the fields, and which of them to apply (field-mask paths).
pub struct ApiResourceUpdate {
    pub fields: ApiResourceFields,
    pub paths: Vec<String>,
}

#[derive(Clone)]
pub struct ApiResourceService {
    pool: DbPool,
    /// Cached clients to forget when their allowed resources change.
    clients: ClientRegistry,
}

fn parse_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| {
        Error::invalid(
            "INVALID_ID",
            "api_resource_id",
            format!("`{id}` is not an API resource id"),
        )
    })
}

fn not_found() -> Error {
    Error::not_found("API_RESOURCE_NOT_FOUND", "no such API resource")
}

fn system_immutable() -> Error {
    Error::FailedPrecondition {
        reason: "SYSTEM_RESOURCE_IMMUTABLE",
        message: "the built-in mgpass API resource cannot be changed or deleted".into(),
    }
}

/// RFC 8707: an absolute URI without fragment. Only the system resource has a bare name.
pub fn check_indicator(indicator: &str) -> Result<()> {
    let bad = |why: &str| {
        Error::invalid(
            "INVALID_RESOURCE_INDICATOR",
            "indicator",
            format!("the indicator {why}"),
        )
    };
    if indicator.is_empty() || indicator.len() > 2048 {
        return Err(bad("must be an absolute URI of at most 2048 characters"));
    }
    if indicator
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '*')
    {
        return Err(bad(
            "must not contain spaces, control characters or wildcards",
        ));
    }
    if indicator.contains('#') {
        return Err(bad("must not have a fragment"));
    }
    let url = url::Url::parse(indicator).map_err(|_| bad("must be an absolute URI"))?;
    if matches!(
        url.scheme(),
        "javascript" | "data" | "vbscript" | "file" | "blob" | "about"
    ) {
        return Err(bad("uses a scheme that cannot name an API"));
    }
    Ok(())
}

/// Scope names travel space-separated in `scope`; this pattern keeps them unambiguous there,
/// in URLs and in JSON.
fn check_scope_name(name: &str) -> Result<()> {
    let valid = (1..=100).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'_' | b'-' | b'/'));
    if !valid {
        return Err(Error::invalid(
            "INVALID_SCOPE_NAME",
            "scopes",
            format!(
                "`{name}` is not a scope name: 1 to 100 of letters, digits, `:`, `.`, `_`, `-` and `/`"
            ),
        ));
    }
    // The OpenID Connect scopes ask for claims; a resource defining one would make `scope`
    // ambiguous.
    if OIDC_SCOPES.contains(&name) {
        return Err(Error::invalid(
            "INVALID_SCOPE_NAME",
            "scopes",
            format!("`{name}` is reserved by OpenID Connect"),
        ));
    }
    Ok(())
}

fn check_scopes(scopes: &[ApiScope]) -> Result<()> {
    if scopes.len() > MAX_SCOPES {
        return Err(Error::invalid(
            "INVALID_ARGUMENT",
            "scopes",
            format!("a resource defines at most {MAX_SCOPES} scopes"),
        ));
    }
    let mut seen = HashSet::new();
    for scope in scopes {
        check_scope_name(&scope.name)?;
        if scope.description.chars().count() > 500 {
            return Err(Error::invalid(
                "INVALID_ARGUMENT",
                "scopes",
                "a scope description is longer than 500 characters",
            ));
        }
        if !seen.insert(scope.name.as_str()) {
            return Err(Error::invalid(
                "DUPLICATE_SCOPE",
                "scopes",
                format!("scope `{}` appears twice", scope.name),
            ));
        }
    }
    Ok(())
}

fn check_texts(name: &str, description: &str) -> Result<()> {
    if name.trim().is_empty() || name.chars().count() > 200 {
        return Err(Error::invalid(
            "INVALID_ARGUMENT",
            "name",
            "`name` is required, at most 200 characters",
        ));
    }
    if description.chars().count() > 2000 {
        return Err(Error::invalid(
            "INVALID_ARGUMENT",
            "description",
            "`description` is longer than 2000 characters",
        ));
    }
    Ok(())
}

/// Every permission an mgpass RPC declares, as scopes of the system resource, read once from
/// the descriptors (the same options the auth layer enforces), so that roles can grant them.
pub fn mgpass_permission_scopes() -> &'static [ApiScope] {
    static SCOPES: OnceLock<Vec<ApiScope>> = OnceLock::new();
    SCOPES.get_or_init(|| {
        let pool = mgpass_proto::descriptor_pool();
        let Some(ext) = pool.get_extension_by_name("mgpass.options.v1.auth") else {
            return Vec::new();
        };
        let mut methods: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for service in pool.services() {
            for method in service.methods() {
                let options = method.options();
                if !options.has_extension(&ext) {
                    continue;
                }
                let prost_reflect::Value::Message(auth) = options.get_extension(&ext).into_owned()
                else {
                    continue;
                };
                let permission = auth
                    .get_field_by_name("permission")
                    .and_then(|v| v.as_str().map(str::to_string));
                if let Some(permission) = permission.filter(|p| !p.is_empty()) {
                    methods.entry(permission).or_default().push(format!(
                        "{}.{}",
                        service.name(),
                        method.name()
                    ));
                }
            }
        }
        methods
            .into_iter()
            .map(|(name, methods)| ApiScope {
                name,
                description: format!("Calls {}", methods.join(", ")),
            })
            .collect()
    })
}

/// The scopes a resource defines: its own, and for the system resource every mgpass permission.
pub fn defined_scopes(row: &ApiResourceRow) -> Vec<ApiScope> {
    let mut scopes = row.scopes();
    if row.system {
        let own: HashSet<String> = scopes.iter().map(|s| s.name.clone()).collect();
        scopes.extend(
            mgpass_permission_scopes()
                .iter()
                .filter(|s| !own.contains(&s.name))
                .cloned(),
        );
    }
    scopes
}

/// Checks references to API resources (an application's allowance, a role's scopes) inside the
/// caller's transaction: every resource exists and defines every scope named. The resources stay
/// share-locked until the transaction ends, so a concurrent update or deletion cannot leave the
/// reference dangling. Returns the references merged by resource, scopes deduplicated, in order.
pub async fn check_references(
    conn: &mut AsyncPgConnection,
    refs: &[ResourceScopes],
    field: &'static str,
) -> Result<Vec<ResourceScopes>> {
    let mut merged: Vec<ResourceScopes> = Vec::new();
    for r in refs {
        if r.scopes.is_empty() {
            return Err(Error::invalid(
                "INVALID_ARGUMENT",
                field,
                format!("resource `{}` is listed without scopes", r.resource),
            ));
        }
        let entry = match merged.iter_mut().position(|m| m.resource == r.resource) {
            Some(i) => &mut merged[i],
            None => {
                merged.push(ResourceScopes {
                    resource: r.resource.clone(),
                    scopes: Vec::new(),
                });
                merged.last_mut().expect("just pushed")
            }
        };
        for scope in &r.scopes {
            if !entry.scopes.contains(scope) {
                entry.scopes.push(scope.clone());
            }
        }
    }
    if merged.len() > MAX_REFERENCES {
        return Err(Error::invalid(
            "INVALID_ARGUMENT",
            field,
            format!("at most {MAX_REFERENCES} resources"),
        ));
    }
    if merged.is_empty() {
        return Ok(merged);
    }
    let indicators: Vec<String> = merged.iter().map(|m| m.resource.clone()).collect();
    let rows = store::lock_by_indicators(conn, &indicators).await?;
    for m in &merged {
        let row = rows
            .iter()
            .find(|r| r.indicator == m.resource)
            .ok_or_else(|| {
                Error::invalid(
                    "UNKNOWN_SCOPE",
                    field,
                    format!("no API resource has the indicator `{}`", m.resource),
                )
            })?;
        let defined = defined_scopes(row);
        if let Some(missing) = m
            .scopes
            .iter()
            .find(|s| !defined.iter().any(|d| &d.name == *s))
        {
            return Err(Error::invalid(
                "UNKNOWN_SCOPE",
                field,
                format!("API resource `{}` defines no scope `{missing}`", m.resource),
            ));
        }
    }
    Ok(merged)
}

/// `refs` without the scopes of `indicator` that are not in `keep` (all of them when `keep` is
/// `None`); a resource left without scopes is dropped. `None` when nothing changes.
pub fn strip_references(
    refs: &[ResourceScopes],
    indicator: &str,
    keep: Option<&HashSet<String>>,
) -> Option<Vec<ResourceScopes>> {
    let mut out = Vec::with_capacity(refs.len());
    for r in refs {
        if r.resource != indicator {
            out.push(r.clone());
            continue;
        }
        let scopes: Vec<String> = r
            .scopes
            .iter()
            .filter(|s| keep.is_some_and(|k| k.contains(*s)))
            .cloned()
            .collect();
        if !scopes.is_empty() {
            out.push(ResourceScopes {
                resource: r.resource.clone(),
                scopes,
            });
        }
    }
    (out != refs).then_some(out)
}

fn to_json(refs: &[ResourceScopes]) -> Result<serde_json::Value> {
    serde_json::to_value(refs).map_err(Error::internal)
}

/// Removes the resource's scopes outside `keep` (all when `None`) from every application and
/// role that references them; returns the client ids whose cached copies are now stale.
async fn strip_everywhere(
    conn: &mut AsyncPgConnection,
    indicator: &str,
    keep: Option<&HashSet<String>>,
) -> Result<Vec<String>> {
    let mut stale = Vec::new();
    let now = Utc::now();
    for app in application_store::referencing_resource(conn, indicator).await? {
        if let Some(refs) = strip_references(&app.resources(), indicator, keep) {
            let changes = application_store::ApplicationChanges {
                allowed_resources: Some(to_json(&refs)?),
                updated_at: Some(now),
                ..Default::default()
            };
            application_store::update(conn, app.id, changes).await?;
            stale.push(app.client_id);
        }
    }
    for role in role_store::referencing_resource(conn, indicator).await? {
        if let Some(refs) = strip_references(&role.resource_scopes(), indicator, keep) {
            let changes = role_store::RoleChanges {
                scopes: Some(to_json(&refs)?),
                updated_at: Some(now),
                ..Default::default()
            };
            role_store::update(conn, role.id, changes).await?;
            stale.extend(role_store::holder_client_ids(conn, role.id).await?);
        }
    }
    Ok(stale)
}

impl ApiResourceService {
    pub fn new(pool: DbPool, clients: ClientRegistry) -> Self {
        Self { pool, clients }
    }

    pub async fn create(&self, fields: ApiResourceFields) -> Result<ApiResourceRow> {
        check_indicator(&fields.indicator)?;
        check_texts(&fields.name, &fields.description)?;
        check_scopes(&fields.scopes)?;
        let now = Utc::now();
        let row = ApiResourceRow {
            id: Uuid::now_v7(),
            indicator: fields.indicator,
            name: fields.name.trim().to_string(),
            description: fields.description,
            scopes: serde_json::to_value(&fields.scopes).map_err(Error::internal)?,
            system: false,
            created_at: now,
            updated_at: now,
        };
        let mut conn = self.pool.get().await?;
        store::insert(&mut conn, row).await
    }

    pub async fn get(&self, id: &str) -> Result<ApiResourceRow> {
        let id = parse_id(id)?;
        let mut conn = self.pool.get().await?;
        store::get(&mut conn, id).await?.ok_or_else(not_found)
    }

    /// A page of resources and the token of the next page (empty on the last page).
    pub async fn list(
        &self,
        query: Option<String>,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<ApiResourceRow>, String)> {
        let page = Page::parse(page_size, page_token)?;
        let mut conn = self.pool.get().await?;
        let rows = store::list(&mut conn, query.as_deref(), page.after, page.fetch()).await?;
        Ok(page.finish(rows, |r| (r.created_at, r.id)))
    }

    /// Applies the masked fields. Scopes removed from the list are removed from every
    /// application and role in the same transaction.
    pub async fn update(&self, id: &str, update: ApiResourceUpdate) -> Result<ApiResourceRow> {
        let id = parse_id(id)?;
        if update.paths.is_empty() {
            return Err(Error::invalid(
                "INVALID_UPDATE_MASK",
                "update_mask",
                "update_mask names no field",
            ));
        }
        let f = update.fields;
        let mut changes = ApiResourceChanges {
            updated_at: Some(Utc::now()),
            ..Default::default()
        };
        for path in &update.paths {
            match path.as_str() {
                "name" => changes.name = Some(f.name.trim().to_string()),
                "description" => changes.description = Some(f.description.clone()),
                "scopes" => {
                    check_scopes(&f.scopes)?;
                    changes.scopes =
                        Some(serde_json::to_value(&f.scopes).map_err(Error::internal)?);
                }
                other => {
                    return Err(Error::invalid(
                        "INVALID_UPDATE_MASK",
                        "update_mask",
                        format!("`{other}` is not an updatable field"),
                    ));
                }
            }
        }
        let keep: Option<HashSet<String>> = changes
            .scopes
            .is_some()
            .then(|| f.scopes.iter().map(|s| s.name.clone()).collect());
        let mut conn = self.pool.get().await?;
        let (row, stale) = conn
            .transaction(async |conn| {
                let current = store::get_for_update(conn, id)
                    .await?
                    .ok_or_else(not_found)?;
                if current.system {
                    return Err(system_immutable());
                }
                check_texts(
                    changes.name.as_deref().unwrap_or(&current.name),
                    changes
                        .description
                        .as_deref()
                        .unwrap_or(&current.description),
                )?;
                let stale = match &keep {
                    Some(keep) => strip_everywhere(conn, &current.indicator, Some(keep)).await?,
                    None => Vec::new(),
                };
                let row = store::update(conn, id, changes)
                    .await?
                    .ok_or_else(not_found)?;
                Ok::<_, Error>((row, stale))
            })
            .await?;
        stale.iter().for_each(|c| self.clients.invalidate(c));
        Ok(row)
    }

    /// Deletes the resource and, in the same transaction, its scopes from every application and
    /// role (as the API contract says); tokens already issued for it live until they expire.
    pub async fn delete(&self, id: &str) -> Result<()> {
        let id = parse_id(id)?;
        let mut conn = self.pool.get().await?;
        let stale = conn
            .transaction(async |conn| {
                let current = store::get_for_update(conn, id)
                    .await?
                    .ok_or_else(not_found)?;
                if current.system {
                    return Err(system_immutable());
                }
                let stale = strip_everywhere(conn, &current.indicator, None).await?;
                store::delete(conn, id).await?;
                Ok::<_, Error>(stale)
            })
            .await?;
        stale.iter().for_each(|c| self.clients.invalidate(c));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(list: &[(&str, &[&str])]) -> Vec<ResourceScopes> {
        list.iter()
            .map(|(r, s)| ResourceScopes {
                resource: r.to_string(),
                scopes: s.iter().map(|x| x.to_string()).collect(),
            })
            .collect()
    }

    #[test]
    fn indicators() {
        for good in [
            "https://api.example.com",
            "https://api.example.com/v2",
            "urn:example:api",
            "http://localhost:3000",
        ] {
            assert!(check_indicator(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "api.example.com",
            "/relative",
            "https://api.example.com/#x",
            "https://*.example.com",
            "javascript:alert(1)",
            "mgpass",
            "https://a b",
        ] {
            assert!(check_indicator(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scope_names() {
        let scope = |n: &str| ApiScope {
            name: n.into(),
            description: String::new(),
        };
        assert!(check_scopes(&[scope("content:read"), scope("a.b_c-d/e")]).is_ok());
        for bad in [
            "",
            "has space",
            "quo\"te",
            "back\\slash",
            "é",
            "openid",
            &"x".repeat(101),
        ] {
            assert!(check_scopes(&[scope(bad)]).is_err(), "{bad}");
        }
        let dup = check_scopes(&[scope("a"), scope("a")]).unwrap_err();
        assert!(matches!(
            dup,
            Error::InvalidArgument {
                reason: "DUPLICATE_SCOPE",
                ..
            }
        ));
    }

    #[test]
    fn stripping_references() {
        let list = refs(&[("https://a", &["r", "w"]), ("https://b", &["x"])]);
        let keep: HashSet<String> = ["r".to_string()].into();
        assert_eq!(
            strip_references(&list, "https://a", Some(&keep)),
            Some(refs(&[("https://a", &["r"]), ("https://b", &["x"])]))
        );
        assert_eq!(
            strip_references(&list, "https://a", None),
            Some(refs(&[("https://b", &["x"])]))
        );
        assert_eq!(strip_references(&list, "https://c", None), None);
        let all: HashSet<String> = ["r".to_string(), "w".to_string()].into();
        assert_eq!(strip_references(&list, "https://a", Some(&all)), None);
    }

    #[test]
    fn system_scopes_include_declared_permissions() {
        let names: Vec<&str> = mgpass_permission_scopes()
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert!(names.contains(&"oauth.applications.create"), "{names:?}");
        assert!(names.contains(&"access.roles.assign"));
    }
}
