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

pub mod cols;
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
    use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
    let mut opt = ConnectOptions::new(url.to_string());
    opt.max_connections(max)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false)
        // SQLite, on every connection the pool opens (a pool replaces idle and
        // old connections; settings made on one connection would be lost):
        // WAL; with WAL, NORMAL stays consistent after a crash and syncs at
        // checkpoints, not per commit; wait for a lock rather than fail;
        // read through a memory map (no copy per page read: at 100k ports
        // the tables outgrow SQLite's 2 MiB page cache) and a page cache of
        // 16 MiB per connection, both filled only as pages are touched
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                .pragma("mmap_size", "268435456")
                .pragma("cache_size", "-16384")
        });
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
                Self::check_sqlite(&conn).await?;
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
            Self::check_sqlite(&write).await?;
            let read = Database::connect(options(&url, 4)).await?;
            Self::check_sqlite(&read).await?;
            return Ok(Db { read, write, backend: DbBackend::Sqlite });
        }
        let conn = Database::connect(options(url, 16)).await?;
        let backend = conn.get_database_backend();
        Ok(Db { read: conn.clone(), write: conn, backend })
    }

    /// Check that the connection options took (they are set per connection in [`options`]).
    async fn check_sqlite(conn: &DatabaseConnection) -> anyhow::Result<()> {
        use sea_orm::Statement;
        let row = conn.query_one(Statement::from_string(DbBackend::Sqlite, "PRAGMA synchronous")).await?;
        let level: Option<i64> = row.and_then(|r| r.try_get_by_index(0).ok());
        anyhow::ensure!(level == Some(1), "SQLite synchronous is {level:?}, not NORMAL (1)");
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

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};

    use super::Db;

    async fn pragma(conn: &impl ConnectionTrait, name: &str) -> String {
        let row = conn.query_one(Statement::from_string(DbBackend::Sqlite, format!("PRAGMA {name}"))).await.unwrap();
        let row = row.unwrap();
        row.try_get_by_index::<String>(0).or_else(|_| row.try_get_by_index::<i64>(0).map(|v| v.to_string())).unwrap()
    }

    #[tokio::test]
    async fn every_sqlite_connection_is_tuned() {
        let dir = std::env::temp_dir().join(format!("stratus-db-pragmas-{}", std::process::id()));
        let db = Db::connect(&format!("sqlite://{}/t.db", dir.display())).await.unwrap();
        // hold several readers at once so that the pool opens new connections
        let mut held = Vec::new();
        for _ in 0..4 {
            let t = db.read.begin().await.unwrap();
            assert_eq!(pragma(&t, "synchronous").await, "1", "synchronous=NORMAL");
            assert_eq!(pragma(&t, "journal_mode").await, "wal");
            assert_eq!(pragma(&t, "foreign_keys").await, "1");
            assert_eq!(pragma(&t, "busy_timeout").await, "10000");
            held.push(t);
        }
        assert_eq!(pragma(&db.write, "synchronous").await, "1");
        drop(held);
        let _ = std::fs::remove_dir_all(dir);
    }
}
