//! The rules of identity: what a valid user is, how users are created, found, changed and
//! signed in. Transport-free: the gRPC adapter converts to and from these types.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    auth::tokens::{IssuedToken, TokenIssuer},
    crypto::{password::PasswordHasherService, secret},
    db::DbPool,
    error::{Error, Result},
    identity::{
        identifiers::{Identifier, normalize_email, normalize_mobile, parse_identifier},
        store::{self, NewUser, UserChanges, UserFilter, UserRow},
    },
};

/// Global roles that exist from the start.
pub const SYSTEM_ROLES: [&str; 3] = ["superAdmin", "admin", "user"];
/// The role of a user created without roles.
pub const DEFAULT_ROLE: &str = "user";

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
    Created { user_id: Uuid, generated_password: Option<String> },
    AlreadyPresent { user_id: Uuid },
}

#[derive(Clone)]
pub struct IdentityService {
    pool: DbPool,
    hasher: PasswordHasherService,
    tokens: TokenIssuer,
    avatar_template: String,
}

fn parse_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| Error::invalid("INVALID_ID", "user_id", format!("`{id}` is not a user id")))
}

fn not_found() -> Error {
    Error::not_found("USER_NOT_FOUND", "no such user")
}

fn check_roles(roles: &[String]) -> Result<()> {
    match roles.iter().find(|r| !SYSTEM_ROLES.contains(&r.as_str())) {
        Some(unknown) => Err(Error::invalid("UNKNOWN_ROLE", "roles", format!("role `{unknown}` does not exist"))),
        None => Ok(()),
    }
}

fn optional(value: &str, normalize: fn(&str) -> Result<String>) -> Result<Option<String>> {
    if value.trim().is_empty() { Ok(None) } else { normalize(value).map(Some) }
}

fn encode_cursor(row: &UserRow) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", row.created_at.timestamp_micros(), row.id))
}

fn decode_cursor(token: &str) -> Result<(DateTime<Utc>, Uuid)> {
    let bad = || Error::invalid("INVALID_PAGE_TOKEN", "page_token", "the page token is not valid");
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?).map_err(|_| bad())?;
    let (micros, id) = raw.split_once(':').ok_or_else(bad)?;
    let at = DateTime::from_timestamp_micros(micros.parse().map_err(|_| bad())?).ok_or_else(bad)?;
    Ok((at, Uuid::parse_str(id).map_err(|_| bad())?))
}

impl IdentityService {
    pub fn new(pool: DbPool, hasher: PasswordHasherService, tokens: TokenIssuer, avatar_template: String) -> Self {
        Self { pool, hasher, tokens, avatar_template }
    }

    fn default_avatar(&self, email: Option<&str>) -> String {
        let Some(email) = email else { return String::new() };
        let hash: String = secret::digest(&email.trim().to_lowercase()).iter().map(|b| format!("{b:02x}")).collect();
        self.avatar_template.replace("{email_sha256}", &hash)
    }

    pub async fn create_user(&self, fields: UserFields, password: Option<String>, email_verified: bool) -> Result<UserRow> {
        let email = optional(&fields.email, normalize_email)?;
        let mobile = optional(&fields.mobile, normalize_mobile)?;
        if email.is_none() && mobile.is_none() {
            return Err(Error::invalid("IDENTIFIER_REQUIRED", "email", "an email address or a mobile number is required"));
        }
        let roles = if fields.roles.is_empty() { vec![DEFAULT_ROLE.to_string()] } else { fields.roles };
        check_roles(&roles)?;
        let password_hash = match password.filter(|p| !p.is_empty()) {
            Some(p) => {
                self.hasher.check_policy(&p)?;
                Some(self.hasher.hash(p).await?)
            }
            None => None,
        };
        let avatar_url =
            if fields.avatar_url.is_empty() { self.default_avatar(email.as_deref()) } else { fields.avatar_url };
        let mut conn = self.pool.get().await?;
        store::insert(
            &mut conn,
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
                properties: serde_json::Value::Object(fields.properties),
            },
        )
        .await
    }

    pub async fn get_user(&self, id: &str) -> Result<UserRow> {
        let id = parse_id(id)?;
        let mut conn = self.pool.get().await?;
        store::get(&mut conn, id).await?.ok_or_else(not_found)
    }

    /// A page of users and the token of the next page (empty on the last page).
    pub async fn list_users(&self, filter: UserFilter, page_size: i32, page_token: &str) -> Result<(Vec<UserRow>, String)> {
        let size = match page_size {
            0 => 50,
            1..=1000 => i64::from(page_size),
            _ => return Err(Error::invalid("INVALID_ARGUMENT", "page_size", "page_size must be between 0 and 1000")),
        };
        let after = if page_token.is_empty() { None } else { Some(decode_cursor(page_token)?) };
        let mut conn = self.pool.get().await?;
        // One extra row tells whether another page exists.
        let mut rows = store::list(&mut conn, &filter, after, size + 1).await?;
        let next = if rows.len() as i64 > size {
            rows.truncate(size as usize);
            rows.last().map(encode_cursor).unwrap_or_default()
        } else {
            String::new()
        };
        Ok((rows, next))
    }

    pub async fn update_user(&self, id: &str, update: UserUpdate) -> Result<UserRow> {
        let id = parse_id(id)?;
        if update.paths.is_empty() {
            return Err(Error::invalid("INVALID_UPDATE_MASK", "update_mask", "update_mask names no field"));
        }
        let f = update.fields;
        let mut changes = UserChanges { updated_at: Some(Utc::now()), ..Default::default() };
        for path in &update.paths {
            match path.as_str() {
                "email" => changes.email = Some(optional(&f.email, normalize_email)?),
                "mobile" => changes.mobile = Some(optional(&f.mobile, normalize_mobile)?),
                "given_name" => changes.given_name = Some(f.given_name.clone()),
                "family_name" => changes.family_name = Some(f.family_name.clone()),
                "full_name" => changes.full_name = Some(f.full_name.clone()),
                "avatar_url" => changes.avatar_url = Some(f.avatar_url.clone()),
                "roles" => {
                    check_roles(&f.roles)?;
                    changes.roles = Some(f.roles.clone());
                }
                "properties" => changes.properties = Some(serde_json::Value::Object(f.properties.clone())),
                other => {
                    return Err(Error::invalid(
                        "INVALID_UPDATE_MASK",
                        "update_mask",
                        format!("`{other}` is not an updatable field"),
                    ));
                }
            }
        }
        let mut conn = self.pool.get().await?;
        store::update(&mut conn, id, changes).await?.ok_or_else(not_found)
    }

    pub async fn delete_user(&self, id: &str) -> Result<()> {
        let id = parse_id(id)?;
        let mut conn = self.pool.get().await?;
        if store::delete(&mut conn, id).await? { Ok(()) } else { Err(not_found()) }
    }

    pub async fn set_status(&self, id: &str, status: &str) -> Result<UserRow> {
        let id = parse_id(id)?;
        let changes = UserChanges { status: Some(status.into()), updated_at: Some(Utc::now()), ..Default::default() };
        let mut conn = self.pool.get().await?;
        store::update(&mut conn, id, changes).await?.ok_or_else(not_found)
    }

    /// Signs in. Unknown identifiers and wrong passwords fail alike, after the same hashing work.
    pub async fn login(&self, identifier: &str, password: &str) -> Result<(IssuedToken, UserRow)> {
        let invalid = || Error::unauthenticated("INVALID_CREDENTIALS", "the identifier or the password is wrong");
        let user = match parse_identifier(identifier) {
            Some(id) => {
                let mut conn = self.pool.get().await?;
                match id {
                    Identifier::Email(e) => store::find_by_email(&mut conn, &e).await?,
                    Identifier::Mobile(m) => store::find_by_mobile(&mut conn, &m).await?,
                }
            }
            None => None,
        };
        let hash = user.as_ref().and_then(|u| u.password_hash.clone());
        if !self.hasher.verify(password.to_string(), hash).await? {
            return Err(invalid());
        }
        let user = user.ok_or_else(invalid)?;
        if user.status != "active" {
            return Err(Error::permission_denied("USER_SUSPENDED", "this account is suspended"));
        }
        let token = self.tokens.issue(user.id, user.email.clone(), user.roles.clone()).await?;
        Ok((token, user))
    }

    /// Creates the first super admin unless a user with that identifier exists. Without a
    /// configured password a random one is generated and returned, to be shown once.
    pub async fn bootstrap_admin(&self, identifier: &str, password: &str) -> Result<BootstrapOutcome> {
        let email = normalize_email(identifier)?;
        {
            let mut conn = self.pool.get().await?;
            if let Some(existing) = store::find_by_email(&mut conn, &email).await? {
                return Ok(BootstrapOutcome::AlreadyPresent { user_id: existing.id });
            }
        }
        let generated = password.is_empty().then(|| secret::random_token(18));
        let password = generated.clone().unwrap_or_else(|| password.to_string());
        let fields = UserFields { email, full_name: "Super Admin".into(), roles: vec!["superAdmin".into()], ..Default::default() };
        match self.create_user(fields, Some(password), true).await {
            Ok(user) => Ok(BootstrapOutcome::Created { user_id: user.id, generated_password: generated }),
            // Another instance bootstrapped at the same moment.
            Err(Error::AlreadyExists { .. }) => {
                let mut conn = self.pool.get().await?;
                let existing = store::find_by_email(&mut conn, identifier).await?.ok_or_else(not_found)?;
                Ok(BootstrapOutcome::AlreadyPresent { user_id: existing.id })
            }
            Err(e) => Err(e),
        }
    }
}
