//! Tiers: their administration, members' standing, the upgrade inside an award's transaction and
//! the re-evaluation (the only time members go down). No transport types here.

use std::sync::OnceLock;

use chrono::{DateTime, Duration, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::{
    engine::TierFacts,
    event_store, parse_id, rule_service, rule_store,
    tier_store::{
        self as store, REASON_REEVALUATION, REASON_THRESHOLD_CROSSED, TierChangeRow, TierRow,
    },
};
use crate::{
    db::DbPool,
    error::{Error, Result},
    paging::Page,
};

/// Held by the run for everyone, in this process (the API and the periodic job share it): a
/// second request waits for the run in progress and answers its counts.
fn last_run() -> &'static Mutex<Option<(DateTime<Utc>, Reevaluation)>> {
    static LAST: OnceLock<Mutex<Option<(DateTime<Utc>, Reevaluation)>>> = OnceLock::new();
    LAST.get_or_init(|| Mutex::new(None))
}

pub fn tier_not_found() -> Error {
    Error::not_found("TIER_NOT_FOUND", "no such tier")
}

fn bad(field: &'static str, message: impl Into<String>) -> Error {
    Error::invalid("INVALID_ARGUMENT", field, message)
}

/// The tier whose threshold `points` reach, highest first; `tiers` lowest threshold first.
fn tier_for(tiers: &[TierRow], points: i64) -> Option<&TierRow> {
    tiers.iter().rev().find(|t| t.threshold_points <= points)
}

/// The member's current tier as the rules see it.
pub async fn tier_facts(conn: &mut AsyncPgConnection, user: Uuid) -> Result<Option<TierFacts>> {
    let Some((Some(tier), _)) = store::user_tier(conn, user).await? else {
        return Ok(None);
    };
    Ok(store::get(conn, tier)
        .await?
        .map(|t| rule_service::tier_facts_of(&t)))
}

/// Inside an award's transaction: moves the member up if their window points now reach a higher
/// tier than theirs. Never down.
pub async fn upgrade_after_award(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    window: Duration,
) -> Result<()> {
    let tiers = store::all(conn).await?;
    if tiers.is_empty() {
        return Ok(());
    }
    let current = store::lock_user_tier(conn, user).await?;
    let points = store::window_points(conn, user, Utc::now() - window).await?;
    let Some(reached) = tier_for(&tiers, points) else {
        return Ok(());
    };
    let current_threshold = current
        .and_then(|c| tiers.iter().find(|t| t.id == c))
        .map(|t| t.threshold_points);
    if current_threshold.is_none_or(|t| reached.threshold_points > t) {
        store::change_tier(
            conn,
            user,
            current,
            Some(reached.id),
            REASON_THRESHOLD_CROSSED,
            points,
        )
        .await?;
        tracing::info!(user_id = %user, tier_id = %reached.id, window_points = points, "loyalty tier upgraded");
    }
    Ok(())
}

/// A tier as written by an administrator.
#[derive(Debug, Clone, Default)]
pub struct TierSpec {
    pub name: String,
    pub description: String,
    pub threshold_points: i64,
    pub earning_multiplier_bps: i32,
    pub perks: Vec<String>,
    pub image_url: String,
}

const UPDATABLE: [&str; 6] = [
    "name",
    "description",
    "threshold_points",
    "earning_multiplier_bps",
    "perks",
    "image_url",
];

fn check(spec: &TierSpec) -> Result<()> {
    let name = spec.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(bad(
            "tier.name",
            "the name is required, at most 100 characters",
        ));
    }
    if spec.threshold_points < 0 {
        return Err(bad(
            "tier.threshold_points",
            "the threshold must not be negative",
        ));
    }
    if !(0..=100_000).contains(&spec.earning_multiplier_bps) {
        return Err(bad(
            "tier.earning_multiplier_bps",
            "the multiplier is 0 to 100000 basis points",
        ));
    }
    if spec.perks.len() > 50 || spec.perks.iter().any(|p| p.chars().count() > 500) {
        return Err(bad(
            "tier.perks",
            "at most 50 perks of at most 500 characters",
        ));
    }
    if spec.image_url.len() > 2048 {
        return Err(bad(
            "tier.image_url",
            "the image URL holds at most 2048 characters",
        ));
    }
    Ok(())
}

/// Maps the unique violations of `loyalty_tiers` to their reasons.
fn taken(err: Error) -> Error {
    let text = err.to_string();
    if text.contains("loyalty_tiers_name_key") {
        Error::already_exists("TIER_NAME_TAKEN", "another tier has this name")
    } else if text.contains("loyalty_tiers_threshold_points_key") {
        Error::already_exists("TIER_THRESHOLD_TAKEN", "another tier has this threshold")
    } else {
        err
    }
}

/// A member's standing.
#[derive(Debug, Clone)]
pub struct Standing {
    pub user_id: Uuid,
    pub tier: Option<TierRow>,
    pub window_points: i64,
    pub window_start: DateTime<Utc>,
    pub next_tier: Option<TierRow>,
    pub tier_since: Option<DateTime<Utc>>,
    pub next_evaluation: DateTime<Utc>,
}

/// Counts of a re-evaluation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reevaluation {
    pub evaluated: i64,
    pub upgraded: i64,
    pub downgraded: i64,
}

#[derive(Clone)]
pub struct TierService {
    pool: DbPool,
    window: Duration,
    interval: Duration,
    started: DateTime<Utc>,
}

impl TierService {
    pub fn new(pool: DbPool, window: Duration, interval: Duration) -> Self {
        Self {
            pool,
            window,
            interval,
            started: Utc::now(),
        }
    }

    pub async fn create(&self, spec: TierSpec) -> Result<TierRow> {
        check(&spec)?;
        let now = Utc::now();
        let row = TierRow {
            id: Uuid::new_v4(),
            name: spec.name.trim().to_string(),
            description: spec.description,
            threshold_points: spec.threshold_points,
            earning_multiplier_bps: spec.earning_multiplier_bps,
            perks: spec.perks,
            image_url: spec.image_url,
            created_at: now,
            updated_at: now,
        };
        let mut conn = self.pool.get().await?;
        let created = store::insert(&mut conn, &row).await.map_err(taken)?;
        tracing::info!(tier_id = %created.id, "loyalty tier created");
        drop(conn);
        // Members who already qualify go up at once.
        self.upgrade_everyone().await?;
        Ok(created)
    }

    pub async fn get(&self, id: &str) -> Result<TierRow> {
        let id = parse_id(id, "tier_id")?;
        let mut conn = self.pool.get().await?;
        store::get(&mut conn, id).await?.ok_or_else(tier_not_found)
    }

    /// Tiers are few: the page token is the offset.
    pub async fn list(&self, page_size: i32, page_token: &str) -> Result<(Vec<TierRow>, String)> {
        let size = crate::paging::page_size(page_size)? as usize;
        let offset: usize = if page_token.is_empty() {
            0
        } else {
            page_token.parse().map_err(|_| {
                Error::invalid(
                    "INVALID_PAGE_TOKEN",
                    "page_token",
                    "the page token is not valid",
                )
            })?
        };
        let mut conn = self.pool.get().await?;
        let all = store::all(&mut conn).await?;
        let page: Vec<TierRow> = all.iter().skip(offset).take(size).cloned().collect();
        let next = if offset + size < all.len() {
            (offset + size).to_string()
        } else {
            String::new()
        };
        Ok((page, next))
    }

    pub async fn update(&self, id: &str, new: TierSpec, paths: &[String]) -> Result<TierRow> {
        let id = parse_id(id, "tier.id")?;
        if paths.is_empty() {
            return Err(Error::invalid(
                "INVALID_UPDATE_MASK",
                "update_mask",
                "the update mask names no field",
            ));
        }
        let mut conn = self.pool.get().await?;
        let mut row = store::get(&mut conn, id)
            .await?
            .ok_or_else(tier_not_found)?;
        let lowered_from = row.threshold_points;
        for path in paths {
            match path.as_str() {
                "name" => row.name = new.name.trim().to_string(),
                "description" => row.description = new.description.clone(),
                "threshold_points" => row.threshold_points = new.threshold_points,
                "earning_multiplier_bps" => row.earning_multiplier_bps = new.earning_multiplier_bps,
                "perks" => row.perks = new.perks.clone(),
                "image_url" => row.image_url = new.image_url.clone(),
                other => {
                    return Err(Error::invalid(
                        "INVALID_UPDATE_MASK",
                        "update_mask",
                        format!(
                            "`{other}` cannot be updated; updatable: {}",
                            UPDATABLE.join(", ")
                        ),
                    ));
                }
            }
        }
        check(&TierSpec {
            name: row.name.clone(),
            description: row.description.clone(),
            threshold_points: row.threshold_points,
            earning_multiplier_bps: row.earning_multiplier_bps,
            perks: row.perks.clone(),
            image_url: row.image_url.clone(),
        })?;
        row.updated_at = Utc::now();
        let updated = store::update(&mut conn, &row).await.map_err(taken)?;
        drop(conn);
        // A lowered threshold upgrades at once; a raised one waits for the re-evaluation.
        if updated.threshold_points < lowered_from {
            self.upgrade_everyone().await?;
        }
        Ok(updated)
    }

    pub async fn delete(&self, id: &str) -> Result<()> {
        let id = parse_id(id, "tier_id")?;
        let mut conn = self.pool.get().await?;
        conn.transaction(async |conn| {
            store::get(conn, id).await?.ok_or_else(tier_not_found)?;
            if store::held_by_anyone(conn, id).await?
                || rule_store::tier_referenced(conn, id).await?
                || store::catalog_references(conn, id).await?
            {
                return Err(super::failed(
                    "TIER_IN_USE",
                    "members hold the tier, or rules or catalog items name it",
                ));
            }
            store::delete(conn, id).await?;
            Ok(())
        })
        .await
    }

    pub async fn standing(&self, user: &str) -> Result<Standing> {
        let user = parse_id(user, "user_id")?;
        self.standing_of(user).await
    }

    pub async fn standing_of(&self, user: Uuid) -> Result<Standing> {
        let mut conn = self.pool.get().await?;
        if !event_store::user_exists(&mut conn, user).await? {
            return Err(rule_service::user_not_found());
        }
        let tiers = store::all(&mut conn).await?;
        let window_start = Utc::now() - self.window;
        let window_points = store::window_points(&mut conn, user, window_start).await?;
        let (tier_id, since) = match store::user_tier(&mut conn, user).await? {
            Some((tier, since)) => (tier, tier.map(|_| since)),
            None => (None, None),
        };
        let tier = tier_id.and_then(|id| tiers.iter().find(|t| t.id == id).cloned());
        let floor = tier.as_ref().map_or(-1, |t| t.threshold_points);
        let next_tier = tiers.iter().find(|t| t.threshold_points > floor).cloned();
        Ok(Standing {
            user_id: user,
            tier,
            window_points,
            window_start,
            next_tier,
            tier_since: since,
            next_evaluation: self.next_evaluation(),
        })
    }

    fn next_evaluation(&self) -> DateTime<Utc> {
        let elapsed = (Utc::now() - self.started).num_seconds().max(0);
        let step = self.interval.num_seconds().max(1);
        self.started + Duration::seconds((elapsed / step + 1) * step)
    }

    pub async fn changes(
        &self,
        user: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<TierChangeRow>, String)> {
        let user = parse_id(user, "user_id")?;
        self.changes_of(user, page_size, page_token, true).await
    }

    pub async fn changes_of(
        &self,
        user: Uuid,
        page_size: i32,
        page_token: &str,
        must_exist: bool,
    ) -> Result<(Vec<TierChangeRow>, String)> {
        let page = Page::parse(page_size, page_token)?;
        let mut conn = self.pool.get().await?;
        if must_exist && !event_store::user_exists(&mut conn, user).await? {
            return Err(rule_service::user_not_found());
        }
        let rows = store::changes(&mut conn, user, page.after, page.fetch()).await?;
        Ok(page.finish(rows, |r| (r.created_at, r.id)))
    }

    /// Gives one member the tier their window points reach, down included.
    async fn reevaluate_one(&self, user: Uuid, reason: i16, only_up: bool) -> Result<i8> {
        let window = self.window;
        let mut conn = self.pool.get().await?;
        conn.transaction(async |conn| {
            let tiers = store::all(conn).await?;
            let current = store::lock_user_tier(conn, user).await?;
            let points = store::window_points(conn, user, Utc::now() - window).await?;
            let target = tier_for(&tiers, points).map(|t| t.id);
            let threshold = |id: Option<Uuid>| {
                id.and_then(|id| tiers.iter().find(|t| t.id == id))
                    .map_or(-1, |t| t.threshold_points)
            };
            let (from, to) = (threshold(current), threshold(target));
            if current == target || (only_up && to <= from) {
                return Ok(0);
            }
            store::change_tier(conn, user, current, target, reason, points).await?;
            Ok(if to > from { 1 } else { -1 })
        })
        .await
    }

    /// Upgrades every member who qualifies (after tiers changed); nobody goes down.
    async fn upgrade_everyone(&self) -> Result<()> {
        let users = {
            let mut conn = self.pool.get().await?;
            store::members_to_evaluate(&mut conn, Utc::now() - self.window).await?
        };
        for user in users {
            self.reevaluate_one(user, super::tier_store::REASON_TIER_CONFIGURATION, true)
                .await?;
        }
        Ok(())
    }

    /// The re-evaluation, for one member or everyone. A run for everyone already in progress is
    /// joined: the caller waits for it and gets its counts.
    pub async fn reevaluate(&self, user: &str) -> Result<Reevaluation> {
        if !user.is_empty() {
            let user = parse_id(user, "user_id")?;
            let mut conn = self.pool.get().await?;
            if !event_store::user_exists(&mut conn, user).await? {
                return Err(rule_service::user_not_found());
            }
            drop(conn);
            let moved = self
                .reevaluate_one(user, REASON_REEVALUATION, false)
                .await?;
            return Ok(Reevaluation {
                evaluated: 1,
                upgraded: i64::from(moved > 0),
                downgraded: i64::from(moved < 0),
            });
        }
        let asked = Utc::now();
        let mut last = last_run().lock().await;
        if let Some((finished, counts)) = *last {
            // A run that finished after this request arrived covered it.
            if finished >= asked {
                return Ok(counts);
            }
        }
        let users = {
            let mut conn = self.pool.get().await?;
            store::members_to_evaluate(&mut conn, Utc::now() - self.window).await?
        };
        let mut counts = Reevaluation::default();
        for user in users {
            counts.evaluated += 1;
            match self
                .reevaluate_one(user, REASON_REEVALUATION, false)
                .await?
            {
                1 => counts.upgraded += 1,
                -1 => counts.downgraded += 1,
                _ => {}
            }
        }
        *last = Some((Utc::now(), counts));
        tracing::info!(
            evaluated = counts.evaluated,
            upgraded = counts.upgraded,
            downgraded = counts.downgraded,
            "loyalty tiers re-evaluated"
        );
        Ok(counts)
    }
}
