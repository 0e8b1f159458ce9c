//! Tier eligibility of catalog items. Tiers belong to the earning module (TierService); until its
//! tables are merged here, nobody holds a tier, so an item restricted to tiers is redeemable by
//! nobody, and tier ids given to an item are taken as they are (no `TIER_NOT_FOUND` check).
//! The earning module fills these two functions in (and only these) when it merges.

use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use crate::error::Result;

/// The tier the user holds now, if any.
pub async fn member_tier(_conn: &mut AsyncPgConnection, _user_id: Uuid) -> Result<Option<Uuid>> {
    Ok(None)
}

/// The first of `ids` that names no tier (for `TIER_NOT_FOUND`); `None` when all exist.
pub async fn first_unknown_tier(_conn: &mut AsyncPgConnection, _ids: &[Uuid]) -> Result<Option<Uuid>> {
    Ok(None)
}

/// Whether a member of `tier` may redeem an item open to `eligible` (empty: everybody).
pub fn eligible(eligible: &[Uuid], tier: Option<Uuid>) -> bool {
    eligible.is_empty() || tier.is_some_and(|t| eligible.contains(&t))
}
