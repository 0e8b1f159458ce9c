//! The Postgres pool and the embedded migrations.

pub mod janitor;
pub mod schema;

use diesel::{
    QueryableByName,
    sql_types::{Nullable, Text},
};
use diesel_async::{
    AsyncConnection, AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl,
    pooled_connection::{
        AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod, deadpool::Pool,
    },
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::{Error, Result};

pub type DbPool = Pool<AsyncPgConnection>;

/// The SQL migrations of `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

pub fn pool(url: &str, size: usize) -> anyhow::Result<DbPool> {
    // Fast recycling: no `SELECT 1` round trip on every checkout. A broken connection fails its
    // query and is dropped by the pool instead.
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
    Ok(Pool::builder(manager).max_size(size).build()?)
}

/// Applies every pending migration and returns the versions applied. Needs the multi-thread
/// runtime: the harness runs diesel's sync migration code with `block_in_place`.
pub async fn migrate(url: &str) -> anyhow::Result<Vec<String>> {
    let conn = AsyncPgConnection::establish(url).await?;
    let mut harness = AsyncMigrationHarness::new(conn);
    let applied = tokio::task::block_in_place(|| harness.run_pending_migrations(MIGRATIONS))
        .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
    Ok(applied.into_iter().map(|v| v.to_string()).collect())
}

/// The newest migration version compiled into this binary.
pub fn latest_migration() -> String {
    use diesel::migration::MigrationSource;
    let migrations: Vec<_> =
        MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS).expect("embedded migrations");
    migrations
        .iter()
        .map(|m| m.name().version().to_string())
        .max()
        .unwrap_or_default()
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = Nullable<Text>)]
    version: Option<String>,
}

/// Readiness: the database answers and its schema is at least as new as this binary's.
pub async fn check_ready(pool: &DbPool, latest: &str) -> Result<()> {
    let mut conn = pool.get().await?;
    let current: Version =
        diesel::sql_query("SELECT max(version) AS version FROM __diesel_schema_migrations")
            .get_result(&mut conn)
            .await
            .map_err(|e| Error::Unavailable(format!("schema version: {e}")))?;
    match current.version {
        Some(v) if v.as_str() >= latest => Ok(()),
        _ => Err(Error::Unavailable(format!(
            "migrations pending (binary expects {latest})"
        ))),
    }
}
