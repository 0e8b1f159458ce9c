//! Reward partners and their API keys: validation and rules. Partners are never deleted (the
//! ledger refers to them): they are suspended.

use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use uuid::Uuid;

use super::{
    partner_keys::{self, PartnerKeyAuthenticator, SHOWN_PREFIX_LEN},
    partner_store::{self as store, PartnerKeyRow, PartnerRow},
};
use crate::{
    db::DbPool,
    error::{Error, Result},
    identity::identifiers::{normalize_email, normalize_mobile},
    org::cursor::NamePage,
    paging::Page,
};

/// The writable fields of a partner; `status` is `None` when the request left it unspecified.
#[derive(Debug, Clone, Default)]
pub struct PartnerFields {
    pub name: String,
    pub description: String,
    pub contact_name: String,
    pub contact_email: String,
    pub contact_phone: String,
    pub status: Option<&'static str>,
    pub event_types: Vec<String>,
}

const UPDATABLE: [&str; 7] =
    ["name", "description", "contact_name", "contact_email", "contact_phone", "status", "event_types"];

pub fn partner_not_found() -> Error {
    Error::not_found("PARTNER_NOT_FOUND", "no such partner")
}

pub fn parse_partner_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| Error::invalid("INVALID_ID", "partner_id", format!("`{id}` is not a partner id")))
}

/// An event type: a lower-case letter, then lower-case letters, digits, `_` or `.`.
pub fn valid_event_type(t: &str) -> bool {
    let mut chars = t.chars();
    t.len() <= 100
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
}

/// Trims, checks and normalises the fields (contact email and E.164 phone, event types sorted
/// without duplicates).
fn checked(mut f: PartnerFields) -> Result<PartnerFields> {
    f.name = f.name.trim().to_string();
    if f.name.is_empty() || f.name.chars().count() > 200 {
        return Err(Error::invalid("INVALID_ARGUMENT", "partner.name", "the name must have 1 to 200 characters"));
    }
    if f.description.chars().count() > 2000 || f.contact_name.chars().count() > 200 {
        return Err(Error::invalid("INVALID_ARGUMENT", "partner.description", "description or contact name too long"));
    }
    f.contact_email = f.contact_email.trim().to_string();
    if !f.contact_email.is_empty() {
        f.contact_email = normalize_email(&f.contact_email)?;
    }
    f.contact_phone = f.contact_phone.trim().to_string();
    if !f.contact_phone.is_empty() {
        f.contact_phone = normalize_mobile(&f.contact_phone)?;
    }
    if let Some(bad) = f.event_types.iter().find(|t| !valid_event_type(t)) {
        return Err(Error::invalid(
            "INVALID_ARGUMENT",
            "partner.event_types",
            format!("`{bad}` is not an event type (a lower-case letter, then lower-case letters, digits, `_` or `.`)"),
        ));
    }
    f.event_types.sort();
    f.event_types.dedup();
    Ok(f)
}

#[derive(Clone)]
pub struct PartnerService {
    pool: DbPool,
    keys: PartnerKeyAuthenticator,
}

impl PartnerService {
    pub fn new(pool: DbPool, keys: PartnerKeyAuthenticator) -> Self {
        Self { pool, keys }
    }

    pub async fn create(&self, fields: PartnerFields) -> Result<PartnerRow> {
        let f = checked(fields)?;
        let now = Utc::now();
        let row = PartnerRow {
            id: Uuid::now_v7(),
            name: f.name,
            description: f.description,
            contact_name: f.contact_name,
            contact_email: f.contact_email,
            contact_phone: f.contact_phone,
            status: f.status.unwrap_or("active").to_string(),
            event_types: f.event_types,
            created_at: now,
            updated_at: now,
        };
        let mut conn = self.pool.get().await?;
        store::insert(&mut conn, &row).await
    }

    pub async fn get(&self, id: &str) -> Result<PartnerRow> {
        let id = parse_partner_id(id)?;
        let mut conn = self.pool.get().await?;
        store::get(&mut conn, id).await?.ok_or_else(partner_not_found)
    }

    pub async fn list(
        &self,
        page_size: i32,
        page_token: &str,
        query: &str,
        status: Option<&'static str>,
    ) -> Result<(Vec<PartnerRow>, String)> {
        let page = NamePage::parse(page_size, page_token)?;
        let query = query.trim();
        let mut conn = self.pool.get().await?;
        let rows =
            store::list(&mut conn, (!query.is_empty()).then_some(query), status, page.after_uuid()?, page.fetch())
                .await?;
        Ok(page.finish(rows, |r| (r.name.clone(), r.id.to_string())))
    }

    /// Applies the masked fields. A suspension takes effect for the partner's keys within a
    /// second everywhere, at once here.
    pub async fn update(&self, id: &str, fields: PartnerFields, paths: &[String]) -> Result<PartnerRow> {
        let id = parse_partner_id(id)?;
        if paths.is_empty() {
            return Err(Error::invalid("INVALID_UPDATE_MASK", "update_mask", "update_mask names no field"));
        }
        if let Some(other) = paths.iter().find(|p| !UPDATABLE.contains(&p.as_str())) {
            return Err(Error::invalid(
                "INVALID_UPDATE_MASK",
                "update_mask",
                format!("`{other}` is not an updatable field"),
            ));
        }
        let has = |p: &str| paths.iter().any(|x| x == p);
        if has("status") && fields.status.is_none() {
            return Err(Error::invalid("INVALID_ARGUMENT", "partner.status", "status must be ACTIVE or SUSPENDED"));
        }
        let mut conn = self.pool.get().await?;
        let row = conn
            .transaction(async |conn| {
                let current = store::get_for_update(conn, id).await?.ok_or_else(partner_not_found)?;
                let pick = |p: &str, new: &String, old: &String| if has(p) { new.clone() } else { old.clone() };
                let merged = checked(PartnerFields {
                    name: pick("name", &fields.name, &current.name),
                    description: pick("description", &fields.description, &current.description),
                    contact_name: pick("contact_name", &fields.contact_name, &current.contact_name),
                    contact_email: pick("contact_email", &fields.contact_email, &current.contact_email),
                    contact_phone: pick("contact_phone", &fields.contact_phone, &current.contact_phone),
                    status: None,
                    event_types: if has("event_types") {
                        fields.event_types.clone()
                    } else {
                        current.event_types.clone()
                    },
                })?;
                let status =
                    if has("status") { fields.status.unwrap_or("active").to_string() } else { current.status.clone() };
                let row = PartnerRow {
                    name: merged.name,
                    description: merged.description,
                    contact_name: merged.contact_name,
                    contact_email: merged.contact_email,
                    contact_phone: merged.contact_phone,
                    status,
                    event_types: merged.event_types,
                    updated_at: Utc::now(),
                    ..current
                };
                store::update(conn, &row).await
            })
            .await?;
        self.keys.forget_all();
        Ok(row)
    }

    /// Creates a key; returns its row and the key itself (shown this once).
    pub async fn create_key(
        &self,
        partner_id: &str,
        name: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(PartnerKeyRow, String)> {
        let partner_id = parse_partner_id(partner_id)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(Error::invalid(
                "INVALID_ARGUMENT",
                "api_key.name",
                "the key needs a name of 1 to 200 characters",
            ));
        }
        let now = Utc::now();
        if expires_at.is_some_and(|at| at <= now) {
            return Err(Error::invalid("INVALID_ARGUMENT", "api_key.expire_time", "expire_time is in the past"));
        }
        let mut conn = self.pool.get().await?;
        store::get(&mut conn, partner_id).await?.ok_or_else(partner_not_found)?;
        let (key, hash) = partner_keys::generate();
        let row = PartnerKeyRow {
            id: Uuid::now_v7(),
            partner_id,
            name: name.to_string(),
            prefix: key[..SHOWN_PREFIX_LEN].to_string(),
            key_hash: hash,
            expires_at,
            last_used_at: None,
            created_at: now,
            revoked_at: None,
        };
        Ok((store::insert_key(&mut conn, &row).await?, key))
    }

    pub async fn list_keys(
        &self,
        partner_id: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<PartnerKeyRow>, String)> {
        let partner_id = parse_partner_id(partner_id)?;
        let page = Page::parse(page_size, page_token)?;
        let mut conn = self.pool.get().await?;
        store::get(&mut conn, partner_id).await?.ok_or_else(partner_not_found)?;
        let rows = store::list_keys(&mut conn, partner_id, page.after, page.fetch()).await?;
        Ok(page.finish(rows, |r| (r.created_at, r.id)))
    }

    /// Revokes a key (again: not an error); it stops working here at once, elsewhere within 1 s.
    pub async fn revoke_key(&self, partner_id: &str, key_id: &str) -> Result<PartnerKeyRow> {
        let partner_id = parse_partner_id(partner_id)?;
        let key_id = Uuid::parse_str(key_id)
            .map_err(|_| Error::invalid("INVALID_ID", "api_key_id", format!("`{key_id}` is not an API key id")))?;
        let mut conn = self.pool.get().await?;
        store::get(&mut conn, partner_id).await?.ok_or_else(partner_not_found)?;
        let row = store::revoke_key(&mut conn, partner_id, key_id, Utc::now())
            .await?
            .ok_or_else(|| Error::not_found("PARTNER_API_KEY_NOT_FOUND", "the partner has no such API key"))?;
        self.keys.forget_all();
        Ok(row)
    }
}
