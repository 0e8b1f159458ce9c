//! The rules of identity: what a valid user is, how users are created, found, changed and
//! signed in. Transport-free: the gRPC adapter converts to and from these types.

use std::sync::Arc;

use chrono::Utc;
use diesel_async::AsyncConnection;
use uuid::Uuid;

use crate::{
    auth::tokens::TokenIssuer,
    config::SessionConfig,
    crypto::{password::PasswordHasherService, secret},
    db::DbPool,
    error::{Error, Result},
    identity::{
        identifiers::{normalize_email, normalize_mobile},
        policy::{IdentityPolicy, Presence, Primary},
        store::{self, NewUser, UserChanges, UserFilter, UserRow},
    },
    paging::Page,
};

/// Global roles that exist from the start (rows of `roles` with `system` set).
pub const SYSTEM_ROLES: [&str; 3] = ["superAdmin", "admin", "user"];

/// The writable fields of a user.
#[derive(Debug, Default, Clone)]
pub struct UserFields {
    pub email: String,
    pub mobile: String,
    pub given_name: String,
    pub family_name: String,
    pub full_name: String,
    pub avatar_url: String,
    pub roles: Vec<String>,
    pub properties: serde_json::Map<String, serde_json::Value>,
}

/// An update: the fields, and which of them to apply (field-mask paths).
pub struct UserUpdate {
    pub fields: UserFields,
    pub paths: Vec<String>,
}

/// The result of `bootstrap`: created with this password (`None` when it came from config), or
/// already present.
pub enum BootstrapOutcome {
    Created {
        user_id: Uuid,
        generated_password: Option<String>,
    },
    AlreadyPresent {
        user_id: Uuid,
    },
}

#[derive(Clone)]
pub struct IdentityService {
    pub(super) pool: DbPool,
    pub(super) hasher: PasswordHasherService,
    pub(super) tokens: TokenIssuer,
    pub(super) sessions: SessionConfig,
    pub(super) policy: Arc<IdentityPolicy>,
    avatar_template: String,
    /// The verification flows and second factors (`[verification]`); absent in tools that do
    /// not serve (bootstrap, migrate).
    pub(super) verifier: Option<crate::identity::verification::SharedVerifier>,
}

pub(super) fn parse_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id)
        .map_err(|_| Error::invalid("INVALID_ID", "user_id", format!("`{id}` is not a user id")))
}

pub(super) fn not_found() -> Error {
    Error::not_found("USER_NOT_FOUND", "no such user")
}

/// Bounds on free-text fields, so a client cannot store megabytes in a name.
fn check_lengths(given: &str, family: &str, full: &str, avatar: &str) -> Result<()> {
    for (field, value, max) in [
        ("given_name", given, 200),
        ("family_name", family, 200),
        ("full_name", full, 400),
        ("avatar_url", avatar, 2048),
    ] {
        if value.chars().count() > max {
            return Err(Error::invalid(
                "INVALID_ARGUMENT",
                field,
                format!("{field} is longer than {max} characters"),
            ));
        }
    }
    Ok(())
}

fn optional(value: &str, normalize: fn(&str) -> Result<String>) -> Result<Option<String>> {
    if value.trim().is_empty() {
        Ok(None)
    } else {
        normalize(value).map(Some)
    }
}

impl IdentityService {
    pub fn new(
        pool: DbPool,
        hasher: PasswordHasherService,
        tokens: TokenIssuer,
        sessions: SessionConfig,
        policy: IdentityPolicy,
        avatar_template: String,
    ) -> Self {
        Self {
            pool,
            hasher,
            tokens,
            sessions,
            policy: Arc::new(policy),
            avatar_template,
            verifier: None,
        }
    }

    /// Turns on the verification flows and second factors.
    pub fn with_verifier(mut self, verifier: crate::identity::verification::Verifier) -> Self {
        self.verifier = Some(Arc::new(verifier));
        self
    }

    pub fn policy(&self) -> &IdentityPolicy {
        &self.policy
    }

    /// Creates the unique indexes of the custom properties declared unique, so that uniqueness
    /// holds under concurrent writes.
    pub async fn ensure_property_indexes(&self) -> Result<()> {
        let mut conn = self.pool.get().await?;
        for prop in self.policy.properties.iter().filter(|p| p.unique) {
            // The name is validated as [a-zA-Z][a-zA-Z0-9_]*, so it is safe to splice in.
            let sql = format!(
                "CREATE UNIQUE INDEX IF NOT EXISTS {} ON users ((properties->>'{}'))",
                IdentityPolicy::unique_index(&prop.name),
                prop.name
            );
            diesel_async::RunQueryDsl::execute(diesel::sql_query(sql), &mut conn).await?;
        }
        Ok(())
    }

    fn default_avatar(&self, email: Option<&str>) -> String {
        let Some(email) = email else {
            return String::new();
        };
        let hash: String = secret::digest(&email.trim().to_lowercase())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.avatar_template.replace("{email_sha256}", &hash)
    }

    pub async fn create_user(
        &self,
        fields: UserFields,
        password: Option<String>,
        email_verified: bool,
    ) -> Result<UserRow> {
        self.create_user_checked(fields, password, email_verified, true)
            .await
    }

    /// `require_properties: false` is for the bootstrapped super admin only, which must exist
    /// even when the deployment declares required properties that have no default.
    async fn create_user_checked(
        &self,
        fields: UserFields,
        password: Option<String>,
        email_verified: bool,
        require_properties: bool,
    ) -> Result<UserRow> {
        let email = optional(&fields.email, normalize_email)?;
        let mobile = optional(&fields.mobile, normalize_mobile)?;
        self.policy
            .check_identifiers(email.as_deref(), mobile.as_deref())?;
        self.policy
            .check_names(&fields.given_name, &fields.family_name, &fields.full_name)?;
        let mut properties = fields.properties;
        self.policy
            .check_properties(&mut properties, true, require_properties)?;
        check_lengths(
            &fields.given_name,
            &fields.family_name,
            &fields.full_name,
            &fields.avatar_url,
        )?;
        let password_hash = match password.filter(|p| !p.is_empty()) {
            Some(p) => {
                self.hasher.check_policy(&p)?;
                Some(self.hasher.hash(p).await?)
            }
            None => None,
        };
        let avatar_url = if fields.avatar_url.is_empty() {
            self.default_avatar(email.as_deref())
        } else {
            fields.avatar_url
        };
        let mut conn = self.pool.get().await?;
        // The roles (asked for, or the `default_for_new_users` ones) are read and share-locked in
        // the transaction that inserts the user, so none can be deleted in between.
        conn.transaction(async |conn| {
            let roles =
                crate::access::role_service::roles_for_new_user(conn, &fields.roles).await?;
            store::insert(
                conn,
                NewUser {
                    id: Uuid::now_v7(),
                    email,
                    mobile,
                    given_name: fields.given_name,
                    family_name: fields.family_name,
                    full_name: fields.full_name,
                    avatar_url,
                    password_hash,
                    email_verified,
                    roles,
                    properties: serde_json::Value::Object(properties),
                },
            )
            .await
        })
        .await
    }

    pub async fn get_user(&self, id: &str) -> Result<UserRow> {
        let id = parse_id(id)?;
        let mut conn = self.pool.get().await?;
        store::get(&mut conn, id).await?.ok_or_else(not_found)
    }

    /// A page of users and the token of the next page (empty on the last page).
    pub async fn list_users(
        &self,
        filter: UserFilter,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<UserRow>, String)> {
        let page = Page::parse(page_size, page_token)?;
        let mut conn = self.pool.get().await?;
        let rows = store::list(&mut conn, &filter, page.after, page.fetch()).await?;
        Ok(page.finish(rows, |r| (r.created_at, r.id)))
    }

    pub async fn update_user(&self, id: &str, update: UserUpdate) -> Result<UserRow> {
        let id = parse_id(id)?;
        if update.paths.is_empty() {
            return Err(Error::invalid(
                "INVALID_UPDATE_MASK",
                "update_mask",
                "update_mask names no field",
            ));
        }
        let f = update.fields;
        let mut changes = UserChanges {
            updated_at: Some(Utc::now()),
            ..Default::default()
        };
        for path in &update.paths {
            match path.as_str() {
                "email" => changes.email = Some(optional(&f.email, normalize_email)?),
                "mobile" => changes.mobile = Some(optional(&f.mobile, normalize_mobile)?),
                "given_name" => changes.given_name = Some(f.given_name.clone()),
                "family_name" => changes.family_name = Some(f.family_name.clone()),
                "full_name" => changes.full_name = Some(f.full_name.clone()),
                "avatar_url" => changes.avatar_url = Some(f.avatar_url.clone()),
                // Checked against the `roles` table in the transaction below.
                "roles" => changes.roles = Some(f.roles.clone()),
                "properties" => {
                    let mut properties = f.properties.clone();
                    self.policy.check_properties(&mut properties, false, true)?;
                    changes.properties = Some(serde_json::Value::Object(properties));
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
        check_lengths(
            changes.given_name.as_deref().unwrap_or_default(),
            changes.family_name.as_deref().unwrap_or_default(),
            changes.full_name.as_deref().unwrap_or_default(),
            changes.avatar_url.as_deref().unwrap_or_default(),
        )?;
        let mut conn = self.pool.get().await?;
        let policy = self.policy.clone();
        // Read, check the result against the identifier and name rules, write: in one
        // transaction with the row locked, so concurrent updates cannot combine into an invalid user.
        conn.transaction(async |conn| {
            // Roles before the user: the lock order of role assignment, so the two cannot deadlock.
            let roles_changed = changes.roles.is_some();
            if let Some(roles) = changes.roles.take() {
                changes.roles = Some(
                    crate::access::role_service::check_changed_user_roles(conn, &roles).await?,
                );
            }
            let current = store::get_for_update(conn, id)
                .await?
                .ok_or_else(not_found)?;
            let email = changes.email.clone().unwrap_or(current.email.clone());
            let mobile = changes.mobile.clone().unwrap_or(current.mobile.clone());
            policy.check_identifiers(email.as_deref(), mobile.as_deref())?;
            policy.check_names(
                changes.given_name.as_deref().unwrap_or(&current.given_name),
                changes
                    .family_name
                    .as_deref()
                    .unwrap_or(&current.family_name),
                changes.full_name.as_deref().unwrap_or(&current.full_name),
            )?;
            let user = store::update(conn, id, changes)
                .await?
                .ok_or_else(not_found)?;
            if roles_changed {
                crate::access::role_service::ensure_super_admin_held(conn).await?;
            }
            Ok(user)
        })
        .await
    }

    pub async fn delete_user(&self, id: &str) -> Result<()> {
        let id = parse_id(id)?;
        let mut conn = self.pool.get().await?;
        if store::delete(&mut conn, id).await? {
            Ok(())
        } else {
            Err(not_found())
        }
    }

    /// Suspends or reactivates a user. Suspension also ends every session of the user.
    pub async fn set_status(&self, id: &str, status: &str) -> Result<UserRow> {
        let id = parse_id(id)?;
        let changes = UserChanges {
            status: Some(status.into()),
            updated_at: Some(Utc::now()),
            ..Default::default()
        };
        let mut conn = self.pool.get().await?;
        let user = store::update(&mut conn, id, changes)
            .await?
            .ok_or_else(not_found)?;
        if status == "suspended" {
            crate::identity::session_store::revoke(&mut conn, id, None, None, "user_suspended")
                .await?;
        }
        Ok(user)
    }

    /// Creates the first super admin unless a user with that identifier exists. Without a
    /// configured password a random one is generated and returned, to be shown once.
    pub async fn bootstrap_admin(
        &self,
        identifier: &str,
        password: &str,
    ) -> Result<BootstrapOutcome> {
        let (email, mobile) = self.bootstrap_identifiers(identifier)?;
        let find = async |this: &Self| -> Result<Option<UserRow>> {
            let mut conn = this.pool.get().await?;
            match (&email, &mobile, this.policy.primary) {
                (_, Some(m), Primary::Mobile) => store::find_by_mobile(&mut conn, m).await,
                (Some(e), _, _) => store::find_by_email(&mut conn, e).await,
                (None, Some(m), _) => store::find_by_mobile(&mut conn, m).await,
                (None, None, _) => Ok(None),
            }
        };
        if let Some(existing) = find(self).await? {
            return Ok(BootstrapOutcome::AlreadyPresent {
                user_id: existing.id,
            });
        }
        let generated = password.is_empty().then(|| secret::random_token(18));
        let password = generated.clone().unwrap_or_else(|| password.to_string());
        let mut fields = UserFields {
            email: email.clone().unwrap_or_default(),
            mobile: mobile.clone().unwrap_or_default(),
            roles: vec!["superAdmin".into()],
            ..Default::default()
        };
        if self.policy.full_name {
            fields.full_name = "Super Admin".into();
        } else {
            fields.given_name = "Super".into();
            fields.family_name = "Admin".into();
        }
        match self
            .create_user_checked(fields, Some(password), true, false)
            .await
        {
            Ok(user) => Ok(BootstrapOutcome::Created {
                user_id: user.id,
                generated_password: generated,
            }),
            // Another instance bootstrapped at the same moment.
            Err(Error::AlreadyExists { .. }) => {
                let existing = find(self).await?.ok_or_else(not_found)?;
                Ok(BootstrapOutcome::AlreadyPresent {
                    user_id: existing.id,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// The super admin's identifiers under the deployment's rules, as the Mindbricks guide has
    /// them: with a mobile primary identifier the default `admin@admin.com` becomes
    /// `+10000000001`; a required secondary identifier gets a placeholder to replace later.
    fn bootstrap_identifiers(&self, identifier: &str) -> Result<(Option<String>, Option<String>)> {
        const DEFAULT_ADMIN: &str = "admin@admin.com";
        let identifier = identifier.trim();
        let (mut email, mut mobile) = match self.policy.primary {
            Primary::Mobile if identifier == DEFAULT_ADMIN => {
                (None, Some("+10000000001".to_string()))
            }
            Primary::Mobile => (None, Some(normalize_mobile(identifier)?)),
            _ if identifier.contains('@') => (Some(normalize_email(identifier)?), None),
            Primary::EmailOrMobile => (None, Some(normalize_mobile(identifier)?)),
            Primary::Email => (Some(normalize_email(identifier)?), None),
        };
        if self.policy.secondary == Presence::Required {
            email.get_or_insert_with(|| "noreply@system.local".to_string());
            mobile.get_or_insert_with(|| "+10000000000".to_string());
        }
        Ok((email, mobile))
    }
}
