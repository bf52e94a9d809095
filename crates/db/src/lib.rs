//! Database access for every service, on SQLite (embedded default),
//! PostgreSQL or MySQL/MariaDB, chosen by URL.
//!
//! SQLite gets what an embedded database needs so that lock contention never
//! reaches a client: WAL, a busy timeout, and one writer connection (`Db::write`)
//! beside a pool of readers (`Db::read`). On PostgreSQL and MySQL both are the
//! same pool.

use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend};
use sea_orm_migration::MigratorTrait;

pub mod testing;

pub use sea_orm;
pub use sea_orm_migration;

#[derive(Clone, Debug)]
pub struct Db {
    pub read: DatabaseConnection,
    pub write: DatabaseConnection,
    pub backend: DbBackend,
}

fn options(url: &str, max: u32) -> ConnectOptions {
    let mut opt = ConnectOptions::new(url.to_string());
    opt.max_connections(max)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false);
    opt
}

impl Db {
    /// Connect by URL: `sqlite://path` (created if missing), `sqlite::memory:`,
    /// `postgres://...`, `mysql://...`.
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        if url.starts_with("sqlite:") {
            if url.contains(":memory:") || url.contains("mode=memory") {
                // one connection: each in-memory connection would be a database of its own
                let conn = Database::connect(options(url, 1)).await?;
                Self::tune_sqlite(&conn).await?;
                return Ok(Db { read: conn.clone(), write: conn, backend: DbBackend::Sqlite });
            }
            let url = if url.contains('?') { url.to_string() } else { format!("{url}?mode=rwc") };
            if let Some(path) = url.strip_prefix("sqlite://").and_then(|p| p.split('?').next())
                && let Some(dir) = std::path::Path::new(path).parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir)?;
            }
            let write = Database::connect(options(&url, 1)).await?;
            Self::tune_sqlite(&write).await?;
            let read = Database::connect(options(&url, 4)).await?;
            Self::tune_sqlite(&read).await?;
            return Ok(Db { read, write, backend: DbBackend::Sqlite });
        }
        let conn = Database::connect(options(url, 16)).await?;
        let backend = conn.get_database_backend();
        Ok(Db { read: conn.clone(), write: conn, backend })
    }

    async fn tune_sqlite(conn: &DatabaseConnection) -> anyhow::Result<()> {
        // per connection: a pool may open more later, sqlx applies these only here,
        // so the pool's other connections rely on sqlx's own defaults (WAL is per file,
        // busy_timeout defaults to 5 s in sqlx)
        for pragma in [
            "PRAGMA journal_mode=WAL",
            // with WAL, NORMAL stays consistent after a crash and syncs at checkpoints, not per commit
            "PRAGMA synchronous=NORMAL",
            "PRAGMA busy_timeout=10000",
            "PRAGMA foreign_keys=ON",
        ] {
            conn.execute_unprepared(pragma).await?;
        }
        Ok(())
    }

    /// Apply a service's migrations (idempotent).
    pub async fn migrate<M: MigratorTrait>(&self) -> anyhow::Result<()> {
        M::up(&self.write, None).await?;
        Ok(())
    }
}

/// Is this database error a uniqueness violation (on any of the three backends)?
pub fn is_unique_violation(err: &sea_orm::DbErr) -> bool {
    matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

/// Is this database error a foreign-key violation?
pub fn is_foreign_key_violation(err: &sea_orm::DbErr) -> bool {
    matches!(err.sql_err(), Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_)))
}
