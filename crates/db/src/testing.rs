//! Fresh databases for tests: SQLite in memory always; a new PostgreSQL and a
//! new MariaDB database when those servers answer. A server that is down is
//! reported loudly on stderr, never skipped in silence.

use sea_orm::{ConnectionTrait, Database};

use crate::Db;

pub const POSTGRES_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const MYSQL_ADMIN_URL: &str = "mysql://root@127.0.0.1:3306";

/// A fresh database on each backend that is reachable: (backend name, URL).
/// `STRATUS_TEST_POSTGRES` / `STRATUS_TEST_MYSQL` override the admin URLs;
/// set either to `off` to leave that backend out on purpose.
pub async fn fresh_urls() -> Vec<(&'static str, String)> {
    let mut out = vec![("sqlite", "sqlite::memory:".to_string())];
    let name = format!("stratus_test_{}", uuid::Uuid::new_v4().simple());
    let pg = std::env::var("STRATUS_TEST_POSTGRES").unwrap_or_else(|_| POSTGRES_ADMIN_URL.to_string());
    if pg != "off" {
        match create_database(&pg, &name).await {
            Ok(()) => {
                let base = pg.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(pg.clone());
                out.push(("postgres", format!("{base}/{name}")));
            }
            Err(e) => eprintln!("!!! SKIPPING PostgreSQL for this test: {pg} unreachable: {e}"),
        }
    }
    let my = std::env::var("STRATUS_TEST_MYSQL").unwrap_or_else(|_| MYSQL_ADMIN_URL.to_string());
    if my != "off" {
        match create_database(&my, &name).await {
            Ok(()) => out.push(("mysql", format!("{}/{name}", my.trim_end_matches('/')))),
            Err(e) => eprintln!("!!! SKIPPING MariaDB for this test: {my} unreachable: {e}"),
        }
    }
    out
}

async fn create_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let conn = tokio::time::timeout(std::time::Duration::from_secs(5), Database::connect(admin_url)).await??;
    conn.execute_unprepared(&format!("CREATE DATABASE {name}")).await?;
    conn.close().await?;
    Ok(())
}

/// Fresh, connected databases on every reachable backend.
pub async fn fresh() -> Vec<(&'static str, Db)> {
    let mut out = Vec::new();
    for (backend, url) in fresh_urls().await {
        match Db::connect(&url).await {
            Ok(db) => out.push((backend, db)),
            Err(e) => eprintln!("!!! SKIPPING {backend}: cannot connect to {url}: {e}"),
        }
    }
    out
}
