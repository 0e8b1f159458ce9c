//! The rules of OAuth applications (clients): what each type may be configured with, the
//! defaults it gets, and the life of client secrets (generated, shown once, stored hashed,
//! rotated with an overlap). Transport-free: the gRPC adapter converts to and from these types.
//!
//! Every change to an application or its secrets drops the client from this instance's
//! [`ClientRegistry`] cache at once; other instances follow within `oauth.client_cache_ttl_ms`.

mod uris;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use uuid::Uuid;

use crate::{
    config::OAuthConfig,
    crypto::{
        keys::KeyRing,
        secret::{digest, random_token},
    },
    db::DbPool,
    error::{Error, Result},
    oauth::{
        api_resource_service::check_references,
        application_store::{self as store, ApplicationChanges, ApplicationFilter},
        clients::ClientRegistry,
        model::{
            AppType, ApplicationRow, Branding, ClientSecretRow, GrantKind, OIDC_SCOPES,
            ResourceScopes,
        },
    },
    paging::Page,
};

pub use uris::{check_redirect_uri, normalize_origin};

/// Prefix of client secrets, so that a leaked one is recognisable (secret scanners, logs).
pub const SECRET_PREFIX: &str = "mgs_";
/// Longest overlap a rotation may give the previous secret.
const MAX_OVERLAP_SECS: i64 = 30 * 86_400;
/// Entries in each URI or origin list.
const MAX_URIS: usize = 100;

/// The writable fields of an application. Lists left empty at creation get the type's defaults;
/// `None` lifetimes mean the deployment's defaults.
#[derive(Debug, Default, Clone)]
pub struct ApplicationFields {
    pub name: String,
    pub description: String,
    /// Required at creation; immutable afterwards.
    pub app_type: Option<AppType>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// [`GrantKind`] names; anything else is refused.
    pub grant_types: Vec<String>,
    pub allowed_scopes: Vec<String>,
    pub allowed_resources: Vec<ResourceScopes>,
    pub allowed_origins: Vec<String>,
    pub access_token_ttl_secs: Option<i64>,
    pub refresh_token_ttl_secs: Option<i64>,
    pub id_token_ttl_secs: Option<i64>,
    pub first_party: bool,
    /// `None` means true.
    pub require_pkce: Option<bool>,
    pub branding: Branding,
    /// `` or `RS256`.
    pub id_token_signing_alg: String,
}

/// An update: the fields, and which of them to apply (field-mask paths).
pub struct ApplicationUpdate {
    pub fields: ApplicationFields,
    pub paths: Vec<String>,
}

/// An application with the secrets that currently work (never their values).
#[derive(Debug, Clone)]
pub struct Application {
    pub row: ApplicationRow,
    pub secrets: Vec<ClientSecretRow>,
}

#[derive(Clone)]
pub struct ApplicationService {
    pool: DbPool,
    clients: ClientRegistry,
    config: Arc<OAuthConfig>,
    /// Creates the first RSA key when an application first asks for RS256 ID tokens, so it is in
    /// the JWKS before the application's relying party fetches it.
    keys: Option<KeyRing>,
}

fn parse_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| {
        Error::invalid(
            "INVALID_ID",
            "application_id",
            format!("`{id}` is not an application id"),
        )
    })
}

fn not_found() -> Error {
    Error::not_found("APPLICATION_NOT_FOUND", "no such application")
}

fn grant_types_error(message: impl Into<String>) -> Error {
    Error::invalid("INVALID_GRANT_TYPES", "grant_types", message)
}

/// The grants each type may use: client credentials are for machines only, and machines use
/// nothing else; a browser cannot show a device code to anyone.
fn allowed_grants(kind: AppType) -> &'static [GrantKind] {
    use GrantKind::*;
    match kind {
        AppType::Web | AppType::Native => {
            &[AuthorizationCode, RefreshToken, DeviceCode, TokenExchange]
        }
        AppType::Spa => &[AuthorizationCode, RefreshToken, TokenExchange],
        AppType::M2m => &[ClientCredentials],
    }
}

fn default_grants(kind: AppType) -> Vec<String> {
    use GrantKind::*;
    let grants: &[GrantKind] = match kind {
        AppType::Web | AppType::Spa => &[AuthorizationCode, RefreshToken],
        AppType::Native => &[AuthorizationCode, RefreshToken, DeviceCode],
        AppType::M2m => &[ClientCredentials],
    };
    grants.iter().map(|g| g.as_str().to_string()).collect()
}

/// A lifetime in seconds within `[min, max]`, or the deployment default.
fn lifetime(value: Option<i64>, default: u32, max: i64, field: &'static str) -> Result<i32> {
    let secs = value.unwrap_or(i64::from(default));
    if !(60..=max).contains(&secs) {
        return Err(Error::invalid(
            "INVALID_ARGUMENT",
            field,
            format!("`{field}` must be between 60 s and {max} s"),
        ));
    }
    Ok(secs as i32)
}

fn check_branding(b: &Branding) -> Result<()> {
    if !b.logo_uri.is_empty() {
        let ok = b.logo_uri.len() <= 2048
            && url::Url::parse(&b.logo_uri).is_ok_and(|u| u.scheme() == "https");
        if !ok {
            return Err(Error::invalid(
                "INVALID_ARGUMENT",
                "branding.logo_uri",
                "the logo must be an https URL",
            ));
        }
    }
    for (field, color) in [
        ("branding.primary_color", &b.primary_color),
        ("branding.background_color", &b.background_color),
    ] {
        let ok = color.is_empty()
            || (color.len() == 7
                && color.starts_with('#')
                && color[1..].bytes().all(|c| c.is_ascii_hexdigit()));
        if !ok {
            return Err(Error::invalid(
                "INVALID_ARGUMENT",
                field,
                "a colour is `#rrggbb`",
            ));
        }
    }
    Ok(())
}

fn dedup(list: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    list.retain(|s| seen.insert(s.clone()));
}

/// Checks a whole application (new, or current with the update applied) against the rules of
/// its type, normalising origins and removing duplicates.
fn check_application(row: &mut ApplicationRow) -> Result<()> {
    let kind = row.app_type();
    row.name = row.name.trim().to_string();
    if row.name.is_empty() || row.name.chars().count() > 200 {
        return Err(Error::invalid(
            "INVALID_ARGUMENT",
            "name",
            "`name` is required, at most 200 characters",
        ));
    }
    if row.description.chars().count() > 2000 {
        return Err(Error::invalid(
            "INVALID_ARGUMENT",
            "description",
            "`description` is longer than 2000 characters",
        ));
    }
    for (field, list) in [
        ("redirect_uris", &mut row.redirect_uris),
        (
            "post_logout_redirect_uris",
            &mut row.post_logout_redirect_uris,
        ),
    ] {
        if list.len() > MAX_URIS {
            return Err(Error::invalid(
                "INVALID_REDIRECT_URI",
                field,
                format!("at most {MAX_URIS} URIs"),
            ));
        }
        for uri in list.iter() {
            check_redirect_uri(kind, uri, field)?;
        }
        dedup(list);
    }

    dedup(&mut row.grant_types);
    if row.grant_types.is_empty() {
        return Err(grant_types_error(
            "an application needs at least one grant type",
        ));
    }
    let mut grants = Vec::new();
    for name in &row.grant_types {
        let grant = GrantKind::parse(name)
            .filter(|g| allowed_grants(kind).contains(g))
            .ok_or_else(|| {
                grant_types_error(format!(
                    "a {} application may not use the grant `{name}`",
                    kind.as_str()
                ))
            })?;
        grants.push(grant);
    }
    // Refresh tokens come from a user's grant; alone they can never be obtained.
    if grants.contains(&GrantKind::RefreshToken)
        && !grants
            .iter()
            .any(|g| matches!(g, GrantKind::AuthorizationCode | GrantKind::DeviceCode))
    {
        return Err(grant_types_error(
            "`refresh_token` needs `authorization_code` or `device_code`",
        ));
    }

    dedup(&mut row.allowed_scopes);
    if kind == AppType::M2m && !row.allowed_scopes.is_empty() {
        return Err(Error::invalid(
            "INVALID_ARGUMENT",
            "allowed_scopes",
            "machine-to-machine applications have no OpenID Connect scopes; their scopes come from roles",
        ));
    }
    if let Some(unknown) = row
        .allowed_scopes
        .iter()
        .find(|s| !OIDC_SCOPES.contains(&s.as_str()))
    {
        return Err(Error::invalid(
            "UNKNOWN_SCOPE",
            "allowed_scopes",
            format!(
                "`{unknown}` is not an OpenID Connect scope; API scopes go in allowed_resources"
            ),
        ));
    }

    if kind == AppType::M2m && !row.allowed_origins.is_empty() {
        return Err(Error::invalid(
            "INVALID_ORIGIN",
            "allowed_origins",
            "machine-to-machine applications have no origins",
        ));
    }
    if row.allowed_origins.len() > MAX_URIS {
        return Err(Error::invalid(
            "INVALID_ORIGIN",
            "allowed_origins",
            format!("at most {MAX_URIS} origins"),
        ));
    }
    row.allowed_origins = row
        .allowed_origins
        .iter()
        .map(|o| normalize_origin(o))
        .collect::<Result<_>>()?;
    dedup(&mut row.allowed_origins);

    if !matches!(row.id_token_signing_alg.as_str(), "" | "RS256") {
        return Err(Error::invalid(
            "INVALID_ARGUMENT",
            "id_token_signing_alg",
            "id_token_signing_alg is empty (the deployment's algorithm) or RS256",
        ));
    }
    if row.id_token_signing_alg == "RS256" && kind == AppType::M2m {
        return Err(Error::invalid(
            "INVALID_ARGUMENT",
            "id_token_signing_alg",
            "machine-to-machine applications get no ID tokens",
        ));
    }
    // PKCE protects the code of a client that cannot authenticate; only a confidential web
    // application has another protection (its secret) and may turn it off.
    if !row.require_pkce && kind != AppType::Web {
        return Err(Error::invalid(
            "INVALID_ARGUMENT",
            "require_pkce",
            "only confidential web applications may turn PKCE off",
        ));
    }
    check_branding(&row.branding())
}

/// A new secret: 256 random bits, its row (digest and hint), and the value to show once.
fn new_secret(application_id: Uuid, now: DateTime<Utc>) -> (ClientSecretRow, String) {
    let secret = format!("{SECRET_PREFIX}{}", random_token(32));
    let hint = secret[secret.len() - 4..].to_string();
    let row = ClientSecretRow {
        id: Uuid::now_v7(),
        application_id,
        secret_hash: digest(&secret),
        hint,
        created_at: now,
        expires_at: None,
        last_used_at: None,
    };
    (row, secret)
}

impl ApplicationService {
    pub fn new(pool: DbPool, clients: ClientRegistry, config: OAuthConfig) -> Self {
        Self {
            pool,
            clients,
            config: Arc::new(config),
            keys: None,
        }
    }

    pub fn with_keys(mut self, keys: KeyRing) -> Self {
        self.keys = Some(keys);
        self
    }

    async fn ensure_keys_for(&self, app: &ApplicationRow) -> Result<()> {
        match &self.keys {
            Some(keys) if app.id_token_signing_alg == "RS256" => keys.ensure_rsa_key().await,
            _ => Ok(()),
        }
    }

    /// Sets the field named by `path` of `row` from `f`.
    fn apply(&self, row: &mut ApplicationRow, f: &ApplicationFields, path: &str) -> Result<()> {
        let c = &self.config;
        match path {
            "name" => row.name = f.name.clone(),
            "description" => row.description = f.description.clone(),
            "redirect_uris" => row.redirect_uris = f.redirect_uris.clone(),
            "post_logout_redirect_uris" => {
                row.post_logout_redirect_uris = f.post_logout_redirect_uris.clone()
            }
            "grant_types" => row.grant_types = f.grant_types.clone(),
            "allowed_scopes" => row.allowed_scopes = f.allowed_scopes.clone(),
            "allowed_origins" => row.allowed_origins = f.allowed_origins.clone(),
            "access_token_lifetime" => {
                row.access_token_ttl_secs = lifetime(
                    f.access_token_ttl_secs,
                    c.default_access_token_ttl_secs,
                    86_400,
                    "access_token_lifetime",
                )?
            }
            "refresh_token_lifetime" => {
                row.refresh_token_ttl_secs = lifetime(
                    f.refresh_token_ttl_secs,
                    c.default_refresh_token_ttl_secs,
                    365 * 86_400,
                    "refresh_token_lifetime",
                )?
            }
            "id_token_lifetime" => {
                row.id_token_ttl_secs = lifetime(
                    f.id_token_ttl_secs,
                    c.default_id_token_ttl_secs,
                    86_400,
                    "id_token_lifetime",
                )?
            }
            "first_party" => row.first_party = f.first_party,
            "require_pkce" => row.require_pkce = f.require_pkce.unwrap_or(true),
            "branding" => {
                row.branding = serde_json::to_value(&f.branding).map_err(Error::internal)?
            }
            "id_token_signing_alg" => row.id_token_signing_alg = f.id_token_signing_alg.clone(),
            // Checked against the resources in the transaction that writes it.
            "allowed_resources" => {}
            other => {
                return Err(Error::invalid(
                    "INVALID_UPDATE_MASK",
                    "update_mask",
                    format!("`{other}` is not an updatable field"),
                ));
            }
        }
        Ok(())
    }

    async fn with_secrets(
        &self,
        conn: &mut diesel_async::AsyncPgConnection,
        rows: Vec<ApplicationRow>,
    ) -> Result<Vec<Application>> {
        let ids: Vec<Uuid> = rows
            .iter()
            .filter(|r| r.app_type().is_confidential())
            .map(|r| r.id)
            .collect();
        let mut secrets = if ids.is_empty() {
            Vec::new()
        } else {
            store::live_secrets(conn, &ids, Utc::now()).await?
        };
        Ok(rows
            .into_iter()
            .map(|row| {
                let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut secrets)
                    .into_iter()
                    .partition(|s| s.application_id == row.id);
                secrets = rest;
                Application { row, secrets: mine }
            })
            .collect())
    }

    /// Registers an application. Returns it with its first secret (confidential types only),
    /// which is never shown again.
    pub async fn create(&self, fields: ApplicationFields) -> Result<(Application, Option<String>)> {
        let kind = fields.app_type.ok_or_else(|| {
            Error::invalid(
                "INVALID_ARGUMENT",
                "application_type",
                "`application_type` is required",
            )
        })?;
        let now = Utc::now();
        let mut row = ApplicationRow {
            id: Uuid::now_v7(),
            // 144 random bits, 24 URL-safe characters: unguessable, so a client id alone
            // reveals nothing about other clients.
            client_id: random_token(18),
            name: String::new(),
            description: String::new(),
            app_type: kind.as_str().to_string(),
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            grant_types: default_grants(kind),
            allowed_scopes: if kind == AppType::M2m {
                Vec::new()
            } else {
                OIDC_SCOPES.map(String::from).to_vec()
            },
            allowed_resources: serde_json::json!([]),
            allowed_origins: Vec::new(),
            access_token_ttl_secs: 0,
            refresh_token_ttl_secs: 0,
            id_token_ttl_secs: 0,
            first_party: false,
            require_pkce: true,
            branding: serde_json::json!({}),
            id_token_signing_alg: String::new(),
            created_at: now,
            updated_at: now,
        };
        for path in [
            "name",
            "description",
            "redirect_uris",
            "post_logout_redirect_uris",
            "allowed_origins",
            "access_token_lifetime",
            "refresh_token_lifetime",
            "id_token_lifetime",
            "first_party",
            "require_pkce",
            "branding",
            "id_token_signing_alg",
        ] {
            self.apply(&mut row, &fields, path)?;
        }
        // Empty lists mean "the defaults of the type" at creation.
        if !fields.grant_types.is_empty() {
            self.apply(&mut row, &fields, "grant_types")?;
        }
        if !fields.allowed_scopes.is_empty() {
            self.apply(&mut row, &fields, "allowed_scopes")?;
        }
        check_application(&mut row)?;
        let mut conn = self.pool.get().await?;
        let (app, secret) = conn
            .transaction(async |conn| {
                let resources =
                    check_references(conn, &fields.allowed_resources, "allowed_resources").await?;
                row.allowed_resources =
                    serde_json::to_value(&resources).map_err(Error::internal)?;
                let app = store::insert(conn, row).await?;
                let mut shown = None;
                let mut secrets = Vec::new();
                if kind.is_confidential() {
                    let (secret_row, value) = new_secret(app.id, now);
                    store::insert_secret(conn, secret_row.clone()).await?;
                    secrets.push(secret_row);
                    shown = Some(value);
                }
                Ok::<_, Error>((Application { row: app, secrets }, shown))
            })
            .await?;
        self.clients.invalidate(&app.row.client_id);
        self.ensure_keys_for(&app.row).await?;
        Ok((app, secret))
    }

    pub async fn get(&self, id: &str) -> Result<Application> {
        let id = parse_id(id)?;
        let mut conn = self.pool.get().await?;
        let row = store::get(&mut conn, id).await?.ok_or_else(not_found)?;
        Ok(self.with_secrets(&mut conn, vec![row]).await?.remove(0))
    }

    /// A page of applications and the token of the next page (empty on the last page).
    pub async fn list(
        &self,
        query: Option<String>,
        app_type: Option<AppType>,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<Application>, String)> {
        let page = Page::parse(page_size, page_token)?;
        let filter = ApplicationFilter {
            query,
            app_type: app_type.map(|t| t.as_str().to_string()),
        };
        let mut conn = self.pool.get().await?;
        let rows = store::list(&mut conn, &filter, page.after, page.fetch()).await?;
        let (rows, next) = page.finish(rows, |r| (r.created_at, r.id));
        Ok((self.with_secrets(&mut conn, rows).await?, next))
    }

    /// Applies the masked fields; the result must satisfy every rule of the type, as at creation.
    pub async fn update(&self, id: &str, update: ApplicationUpdate) -> Result<Application> {
        let id = parse_id(id)?;
        if update.paths.is_empty() {
            return Err(Error::invalid(
                "INVALID_UPDATE_MASK",
                "update_mask",
                "update_mask names no field",
            ));
        }
        let f = update.fields;
        let paths = update.paths;
        let mut conn = self.pool.get().await?;
        let app = conn
            .transaction(async |conn| {
                // Resources first, then the application: the order resource deletion locks in.
                let resources = if paths.iter().any(|p| p == "allowed_resources") {
                    Some(check_references(conn, &f.allowed_resources, "allowed_resources").await?)
                } else {
                    None
                };
                let current = store::get_for_update(conn, id)
                    .await?
                    .ok_or_else(not_found)?;
                let mut row = current.clone();
                for path in &paths {
                    self.apply(&mut row, &f, path)?;
                }
                check_application(&mut row)?;
                let json =
                    |v: &Vec<ResourceScopes>| serde_json::to_value(v).map_err(Error::internal);
                let has = |p: &str| paths.iter().any(|x| x == p);
                let changes = ApplicationChanges {
                    name: has("name").then(|| row.name.clone()),
                    description: has("description").then(|| row.description.clone()),
                    redirect_uris: has("redirect_uris").then(|| row.redirect_uris.clone()),
                    post_logout_redirect_uris: has("post_logout_redirect_uris")
                        .then(|| row.post_logout_redirect_uris.clone()),
                    grant_types: has("grant_types").then(|| row.grant_types.clone()),
                    allowed_scopes: has("allowed_scopes").then(|| row.allowed_scopes.clone()),
                    allowed_resources: resources.as_ref().map(json).transpose()?,
                    allowed_origins: has("allowed_origins").then(|| row.allowed_origins.clone()),
                    access_token_ttl_secs: has("access_token_lifetime")
                        .then_some(row.access_token_ttl_secs),
                    refresh_token_ttl_secs: has("refresh_token_lifetime")
                        .then_some(row.refresh_token_ttl_secs),
                    id_token_ttl_secs: has("id_token_lifetime").then_some(row.id_token_ttl_secs),
                    first_party: has("first_party").then_some(row.first_party),
                    require_pkce: has("require_pkce").then_some(row.require_pkce),
                    branding: has("branding").then(|| row.branding.clone()),
                    id_token_signing_alg: has("id_token_signing_alg")
                        .then(|| row.id_token_signing_alg.clone()),
                    updated_at: Some(Utc::now()),
                };
                let updated = store::update(conn, id, changes)
                    .await?
                    .ok_or_else(not_found)?;
                Ok::<_, Error>(self.with_secrets(conn, vec![updated]).await?.remove(0))
            })
            .await?;
        self.clients.invalidate(&app.row.client_id);
        self.ensure_keys_for(&app.row).await?;
        Ok(app)
    }

    /// Deletes the application with everything issued to it: secrets, codes, consents and role
    /// assignments (foreign keys), and the sessions (refresh tokens) created through it.
    pub async fn delete(&self, id: &str) -> Result<()> {
        let id = parse_id(id)?;
        let mut conn = self.pool.get().await?;
        let deleted = conn
            .transaction(async |conn| {
                let app = store::delete(conn, id).await?.ok_or_else(not_found)?;
                store::revoke_sessions(conn, &app, "application_deleted").await?;
                Ok::<_, Error>(app)
            })
            .await?;
        self.clients.invalidate(&deleted.client_id);
        Ok(())
    }

    /// Adds a secret, returned this once. The previous secret keeps working for `overlap_secs`
    /// (0: it stops now, for a leaked secret); older ones stop at once.
    pub async fn rotate_secret(
        &self,
        id: &str,
        overlap_secs: i64,
    ) -> Result<(Application, String)> {
        let id = parse_id(id)?;
        if !(0..=MAX_OVERLAP_SECS).contains(&overlap_secs) {
            return Err(Error::invalid(
                "INVALID_ARGUMENT",
                "overlap",
                "`overlap` must be between 0 and 30 days",
            ));
        }
        let mut conn = self.pool.get().await?;
        let (app, secret) = conn
            .transaction(async |conn| {
                // The row lock serialises rotations of one application, so two cannot both keep
                // "the previous" secret.
                let row = store::get_for_update(conn, id)
                    .await?
                    .ok_or_else(not_found)?;
                if !row.app_type().is_confidential() {
                    return Err(Error::FailedPrecondition {
                        reason: "PUBLIC_CLIENT",
                        message: "SPA and native applications have no client secret".into(),
                    });
                }
                let now = Utc::now();
                let previous = store::live_secrets(conn, &[id], now)
                    .await?
                    .into_iter()
                    .next();
                let mut keep = Vec::new();
                if let Some(previous) = previous.filter(|_| overlap_secs > 0) {
                    let until = now + chrono::Duration::seconds(overlap_secs);
                    store::set_secret_expiry(
                        conn,
                        previous.id,
                        previous.expires_at.map_or(until, |at| at.min(until)),
                    )
                    .await?;
                    keep.push(previous.id);
                }
                // Older secrets and expired ones are deleted: a secret that no longer works has
                // no reason to keep its hash around.
                store::delete_secrets_except(conn, id, &keep).await?;
                let (secret_row, value) = new_secret(id, now);
                store::insert_secret(conn, secret_row).await?;
                let app = self.with_secrets(conn, vec![row]).await?.remove(0);
                Ok::<_, Error>((app, value))
            })
            .await?;
        self.clients.invalidate(&app.row.client_id);
        Ok((app, secret))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> ApplicationService {
        let pool = crate::db::pool("postgres://unused@127.0.0.1:1/x", 1).unwrap();
        let clients = ClientRegistry::new(pool.clone(), std::time::Duration::from_secs(1));
        ApplicationService::new(pool, clients, OAuthConfig::default())
    }

    fn row(kind: AppType) -> ApplicationRow {
        let now = Utc::now();
        ApplicationRow {
            id: Uuid::nil(),
            client_id: "c".into(),
            name: "App".into(),
            description: String::new(),
            app_type: kind.as_str().into(),
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            grant_types: default_grants(kind),
            allowed_scopes: vec![],
            allowed_resources: serde_json::json!([]),
            allowed_origins: vec![],
            access_token_ttl_secs: 900,
            refresh_token_ttl_secs: 900,
            id_token_ttl_secs: 900,
            first_party: false,
            require_pkce: true,
            branding: serde_json::json!({}),
            id_token_signing_alg: String::new(),
            created_at: now,
            updated_at: now,
        }
    }

    fn reason(result: Result<()>) -> &'static str {
        match result {
            Err(Error::InvalidArgument { reason, .. }) => reason,
            Ok(()) => "OK",
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn grants_by_type() {
        let with = |kind, grants: &[&str]| {
            let mut r = row(kind);
            r.grant_types = grants.iter().map(|g| g.to_string()).collect();
            reason(check_application(&mut r))
        };
        assert_eq!(with(AppType::M2m, &["client_credentials"]), "OK");
        assert_eq!(
            with(AppType::M2m, &["authorization_code"]),
            "INVALID_GRANT_TYPES"
        );
        assert_eq!(
            with(AppType::Web, &["client_credentials"]),
            "INVALID_GRANT_TYPES"
        );
        assert_eq!(with(AppType::Spa, &["device_code"]), "INVALID_GRANT_TYPES");
        assert_eq!(with(AppType::Native, &["device_code"]), "OK");
        assert_eq!(
            with(AppType::Web, &["refresh_token"]),
            "INVALID_GRANT_TYPES"
        );
        assert_eq!(with(AppType::Web, &[]), "INVALID_GRANT_TYPES");
        assert_eq!(with(AppType::Web, &["password"]), "INVALID_GRANT_TYPES");
        assert_eq!(with(AppType::Web, &["implicit"]), "INVALID_GRANT_TYPES");
    }

    #[test]
    fn pkce_scopes_and_origins() {
        for (kind, ok) in [
            (AppType::Web, "OK"),
            (AppType::Spa, "INVALID_ARGUMENT"),
            (AppType::Native, "INVALID_ARGUMENT"),
        ] {
            let mut r = row(kind);
            r.require_pkce = false;
            assert_eq!(reason(check_application(&mut r)), ok, "{kind:?}");
        }
        let mut r = row(AppType::Spa);
        r.allowed_scopes = vec!["openid".into(), "content:read".into()];
        assert_eq!(reason(check_application(&mut r)), "UNKNOWN_SCOPE");
        let mut r = row(AppType::Spa);
        r.allowed_origins = vec![
            "https://App.example.com:443".into(),
            "https://app.example.com".into(),
        ];
        check_application(&mut r).unwrap();
        assert_eq!(r.allowed_origins, vec!["https://app.example.com"]);
        let mut r = row(AppType::M2m);
        r.allowed_origins = vec!["https://app.example.com".into()];
        assert_eq!(reason(check_application(&mut r)), "INVALID_ORIGIN");
    }

    #[tokio::test]
    async fn lifetimes_and_immutable_paths() {
        let s = service();
        let mut r = row(AppType::Web);
        let f = ApplicationFields {
            access_token_ttl_secs: Some(10),
            ..Default::default()
        };
        assert!(s.apply(&mut r, &f, "access_token_lifetime").is_err());
        s.apply(
            &mut r,
            &ApplicationFields::default(),
            "access_token_lifetime",
        )
        .unwrap();
        assert_eq!(
            r.access_token_ttl_secs, 900,
            "unset means the deployment default"
        );
        for path in [
            "application_type",
            "client_id",
            "id",
            "secrets",
            "create_time",
        ] {
            assert!(
                s.apply(&mut r, &ApplicationFields::default(), path)
                    .is_err(),
                "{path}"
            );
        }
    }

    #[test]
    fn secrets_are_prefixed_and_hashed() {
        let (row, value) = new_secret(Uuid::nil(), Utc::now());
        assert!(value.starts_with(SECRET_PREFIX) && value.len() == SECRET_PREFIX.len() + 43);
        assert_eq!(row.secret_hash, digest(&value));
        assert!(value.ends_with(&row.hint) && row.hint.len() == 4);
    }
}
