//! The reward catalog's rules: item validation, stock adjustments, what a user may redeem.

use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use uuid::Uuid;

use super::{
    catalog_store::{self as store, ItemFilter, ItemRow},
    catalog_tiers, ledger, order_store,
};
use crate::{
    db::DbPool,
    error::{Error, Result},
    org::cursor::NamePage,
};

/// The writable fields of an item; `status` is `None` when left unspecified.
#[derive(Debug, Clone, Default)]
pub struct ItemFields {
    pub name: String,
    pub description: String,
    pub image_url: String,
    pub points_cost: i64,
    pub unlimited_stock: bool,
    pub stock: i64,
    pub per_user_limit: i32,
    pub eligible_tier_ids: Vec<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub status: Option<&'static str>,
}

const UPDATABLE: [&str; 10] = [
    "name",
    "description",
    "image_url",
    "points_cost",
    "unlimited_stock",
    "per_user_limit",
    "eligible_tier_ids",
    "start_time",
    "end_time",
    "status",
];

pub fn item_not_found() -> Error {
    Error::not_found("CATALOG_ITEM_NOT_FOUND", "no such catalog item")
}

pub fn parse_item_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id)
        .map_err(|_| Error::invalid("INVALID_ID", "catalog_item_id", format!("`{id}` is not a catalog item id")))
}

fn invalid(field: &'static str, message: &str) -> Error {
    Error::invalid("INVALID_ARGUMENT", field, message.to_string())
}

/// Checks the fields of an item and returns its tier ids.
fn checked(f: &mut ItemFields) -> Result<Vec<Uuid>> {
    f.name = f.name.trim().to_string();
    if f.name.is_empty() || f.name.chars().count() > 200 {
        return Err(invalid("catalog_item.name", "the name must have 1 to 200 characters"));
    }
    if f.description.chars().count() > 4000 || f.image_url.len() > 2000 {
        return Err(invalid("catalog_item.description", "description or image URL too long"));
    }
    if !f.image_url.is_empty() && !(f.image_url.starts_with("https://") || f.image_url.starts_with("http://")) {
        return Err(invalid("catalog_item.image_url", "the image URL must be http(s)"));
    }
    if f.points_cost <= 0 {
        return Err(invalid("catalog_item.points_cost", "points_cost must be positive"));
    }
    if f.stock < 0 {
        return Err(invalid("catalog_item.stock", "stock must not be negative"));
    }
    if f.per_user_limit < 0 {
        return Err(invalid("catalog_item.per_user_limit", "per_user_limit must not be negative"));
    }
    if let (Some(start), Some(end)) = (f.starts_at, f.ends_at)
        && end <= start
    {
        return Err(invalid("catalog_item.end_time", "end_time must be after start_time"));
    }
    let mut tiers = Vec::with_capacity(f.eligible_tier_ids.len());
    for t in &f.eligible_tier_ids {
        tiers
            .push(Uuid::parse_str(t).map_err(|_| invalid("catalog_item.eligible_tier_ids", "tier ids must be UUIDs"))?);
    }
    tiers.sort();
    tiers.dedup();
    Ok(tiers)
}

async fn check_tiers(conn: &mut diesel_async::AsyncPgConnection, tiers: &[Uuid]) -> Result<()> {
    match catalog_tiers::first_unknown_tier(conn, tiers).await? {
        Some(t) => Err(Error::not_found("TIER_NOT_FOUND", format!("no tier {t}"))),
        None => Ok(()),
    }
}

/// An item as offered to one user.
pub struct Offer {
    pub item: ItemRow,
    pub affordable: bool,
    pub in_stock: bool,
    pub redeemed_by_me: i64,
    pub limit_reached: bool,
}

#[derive(Clone)]
pub struct CatalogService {
    pool: DbPool,
}

impl CatalogService {
    pub fn new(pool: DbPool) -> Self {
        Self { pool }
    }

    pub async fn create(&self, mut f: ItemFields) -> Result<ItemRow> {
        let tiers = checked(&mut f)?;
        let mut conn = self.pool.get().await?;
        check_tiers(&mut conn, &tiers).await?;
        let now = Utc::now();
        let row = ItemRow {
            id: Uuid::now_v7(),
            name: f.name,
            description: f.description,
            image_url: f.image_url,
            points_cost: f.points_cost,
            unlimited_stock: f.unlimited_stock,
            stock: if f.unlimited_stock { 0 } else { f.stock },
            per_user_limit: f.per_user_limit,
            eligible_tier_ids: tiers,
            starts_at: f.starts_at,
            ends_at: f.ends_at,
            status: f.status.unwrap_or("active").to_string(),
            redeemed_count: 0,
            created_at: now,
            updated_at: now,
        };
        store::insert(&mut conn, &row).await
    }

    pub async fn get(&self, id: &str) -> Result<ItemRow> {
        let id = parse_item_id(id)?;
        let mut conn = self.pool.get().await?;
        store::get(&mut conn, id).await?.ok_or_else(item_not_found)
    }

    pub async fn list(&self, page_size: i32, page_token: &str, filter: ItemFilter) -> Result<(Vec<ItemRow>, String)> {
        let page = NamePage::parse(page_size, page_token)?;
        let mut conn = self.pool.get().await?;
        let rows = store::list_by_name(&mut conn, &filter, page.after_uuid()?, page.fetch()).await?;
        Ok(page.finish(rows, |r| (r.name.clone(), r.id.to_string())))
    }

    /// Applies the masked fields; `stock` is not among them (AdjustCatalogItemStock moves it).
    pub async fn update(&self, id: &str, f: ItemFields, paths: &[String]) -> Result<ItemRow> {
        let id = parse_item_id(id)?;
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
        if has("status") && f.status.is_none() {
            return Err(invalid("catalog_item.status", "status must be ACTIVE or DISABLED"));
        }
        let mut conn = self.pool.get().await?;
        conn.transaction(async |conn| {
            let current = store::get_for_update(conn, id).await?.ok_or_else(item_not_found)?;
            let mut merged = ItemFields {
                name: if has("name") { f.name.clone() } else { current.name.clone() },
                description: if has("description") { f.description.clone() } else { current.description.clone() },
                image_url: if has("image_url") { f.image_url.clone() } else { current.image_url.clone() },
                points_cost: if has("points_cost") { f.points_cost } else { current.points_cost },
                unlimited_stock: if has("unlimited_stock") { f.unlimited_stock } else { current.unlimited_stock },
                stock: current.stock,
                per_user_limit: if has("per_user_limit") { f.per_user_limit } else { current.per_user_limit },
                eligible_tier_ids: if has("eligible_tier_ids") {
                    f.eligible_tier_ids.clone()
                } else {
                    current.eligible_tier_ids.iter().map(Uuid::to_string).collect()
                },
                starts_at: if has("start_time") { f.starts_at } else { current.starts_at },
                ends_at: if has("end_time") { f.ends_at } else { current.ends_at },
                status: None,
            };
            let tiers = checked(&mut merged)?;
            check_tiers(conn, &tiers).await?;
            let row = ItemRow {
                name: merged.name,
                description: merged.description,
                image_url: merged.image_url,
                points_cost: merged.points_cost,
                unlimited_stock: merged.unlimited_stock,
                per_user_limit: merged.per_user_limit,
                eligible_tier_ids: tiers,
                starts_at: merged.starts_at,
                ends_at: merged.ends_at,
                status: if has("status") { f.status.unwrap_or("active").to_string() } else { current.status.clone() },
                updated_at: Utc::now(),
                ..current
            };
            store::update(conn, &row).await
        })
        .await
    }

    pub async fn delete(&self, id: &str) -> Result<()> {
        let id = parse_item_id(id)?;
        let mut conn = self.pool.get().await?;
        if store::delete_unused(&mut conn, id).await? { Ok(()) } else { Err(item_not_found()) }
    }

    /// Adds or removes units, serialised with redemptions by the item's row lock.
    pub async fn adjust_stock(&self, id: &str, delta: i64) -> Result<ItemRow> {
        let id = parse_item_id(id)?;
        if delta == 0 {
            return Err(invalid("delta", "delta must not be 0"));
        }
        let mut conn = self.pool.get().await?;
        conn.transaction(async |conn| {
            let item = store::get_for_update(conn, id).await?.ok_or_else(item_not_found)?;
            if item.unlimited_stock {
                return Err(invalid("delta", "the item has unlimited stock"));
            }
            store::move_stock(conn, id, delta, 0).await?.ok_or_else(item_not_found)
        })
        .await
    }

    /// What `user` may redeem now, by points cost.
    pub async fn offers(
        &self,
        user: Uuid,
        page_size: i32,
        page_token: &str,
        affordable_only: bool,
    ) -> Result<(Vec<Offer>, String)> {
        let page = NamePage::parse(page_size, page_token)?;
        let after = match &page.after {
            Some((cost, id)) => Some((
                cost.parse::<i64>()
                    .map_err(|_| Error::invalid("INVALID_PAGE_TOKEN", "page_token", "the page token is not valid"))?,
                Uuid::parse_str(id)
                    .map_err(|_| Error::invalid("INVALID_PAGE_TOKEN", "page_token", "the page token is not valid"))?,
            )),
            None => None,
        };
        let mut conn = self.pool.get().await?;
        let balance = ledger::balance(&mut conn, user).await?;
        let tier = catalog_tiers::member_tier(&mut conn, user).await?;
        let filter = ItemFilter { offered_at: Some(Utc::now()), ..Default::default() };
        let mut offers = Vec::new();
        let mut cursor = after;
        let mut next = String::new();
        // Tier eligibility is filtered here; keep fetching until the page is full.
        loop {
            let rows =
                store::list_by_cost(&mut conn, &filter, affordable_only.then_some(balance), cursor, page.fetch())
                    .await?;
            let exhausted = (rows.len() as i64) < page.fetch();
            for item in rows {
                cursor = Some((item.points_cost, item.id));
                if !catalog_tiers::eligible(&item.eligible_tier_ids, tier) {
                    continue;
                }
                if offers.len() as i64 == page.size {
                    next = "more".into();
                    break;
                }
                let mine = order_store::units_redeemed(&mut conn, user, item.id).await?;
                offers.push(Offer {
                    affordable: balance >= item.points_cost,
                    in_stock: item.unlimited_stock || item.stock > 0,
                    redeemed_by_me: mine,
                    limit_reached: item.per_user_limit > 0 && mine >= i64::from(item.per_user_limit),
                    item,
                });
            }
            if !next.is_empty() || exhausted {
                break;
            }
        }
        // The token is the position of the last offer served (one position past the page makes
        // `finish` emit it).
        let mut positions: Vec<(String, String)> =
            offers.iter().map(|o| (o.item.points_cost.to_string(), o.item.id.to_string())).collect();
        if !next.is_empty() {
            positions.push((String::new(), String::new()));
        }
        let (_, token) = page.finish(positions, |p| p.clone());
        Ok((offers, token))
    }
}
