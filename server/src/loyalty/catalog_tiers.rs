//! Tier eligibility of catalog items, answered from the earning module's tiers
//! (`loyalty::earning::tier_store`).

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{db::schema::loyalty_tiers, error::Result, loyalty::earning::tier_store};

/// The tier the user holds now, if any.
pub async fn member_tier(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<Option<Uuid>> {
    Ok(tier_store::user_tier(conn, user_id)
        .await?
        .and_then(|(tier, _)| tier))
}

/// The first of `ids` that names no tier (for `TIER_NOT_FOUND`); `None` when all exist.
pub async fn first_unknown_tier(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> Result<Option<Uuid>> {
    let known: Vec<Uuid> = loyalty_tiers::table
        .filter(loyalty_tiers::id.eq_any(ids))
        .select(loyalty_tiers::id)
        .load(conn)
        .await?;
    Ok(ids.iter().find(|id| !known.contains(id)).copied())
}

/// Whether a member of `tier` may redeem an item open to `eligible` (empty: everybody).
pub fn eligible(eligible: &[Uuid], tier: Option<Uuid>) -> bool {
    eligible.is_empty() || tier.is_some_and(|t| eligible.contains(&t))
}
