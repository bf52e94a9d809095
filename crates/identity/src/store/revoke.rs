//! Token revocation events: deleting a token, disabling or deleting a user,
//! changing a password, removing a role assignment, disabling a project or
//! domain each record an event; a token issued before a matching event is invalid.

use std::sync::RwLock;
use std::time::{Duration, Instant};

use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use stratus_db::Db;

use crate::entity::revocation_event as rev;
use crate::util::{new_id, now_us};

/// What a revocation event matches; unset fields match anything.
#[derive(Clone, Debug, Default)]
pub struct Event {
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    pub domain_id: Option<String>,
    pub role_id: Option<String>,
    pub audit_id: Option<String>,
    pub issued_before: i64,
}

/// What a token carries that events are matched against.
pub struct TokenFacts<'a> {
    pub user_id: &'a str,
    pub project_id: Option<&'a str>,
    pub domain_id: Option<&'a str>,
    /// The domains of the user and the project.
    pub user_domain_id: &'a str,
    pub project_domain_id: Option<&'a str>,
    pub role_ids: &'a [String],
    pub audit_ids: &'a [String],
    pub issued_at: i64,
}

impl Event {
    fn matches(&self, t: &TokenFacts<'_>) -> bool {
        if t.issued_at > self.issued_before {
            return false;
        }
        if let Some(u) = &self.user_id
            && u != t.user_id
        {
            return false;
        }
        if let Some(p) = &self.project_id
            && Some(p.as_str()) != t.project_id
        {
            return false;
        }
        if let Some(d) = &self.domain_id
            && Some(d.as_str()) != t.domain_id
            && d != t.user_domain_id
            && Some(d.as_str()) != t.project_domain_id
        {
            return false;
        }
        if let Some(r) = &self.role_id
            && !t.role_ids.iter().any(|x| x == r)
        {
            return false;
        }
        if let Some(a) = &self.audit_id
            && !t.audit_ids.iter().any(|x| x == a)
        {
            return false;
        }
        true
    }
}

/// The events in force, kept in memory and refreshed from the database so
/// that several API processes agree.
#[derive(Default)]
pub struct RevocationList {
    inner: RwLock<(Vec<Event>, Option<Instant>)>,
}

const REFRESH: Duration = Duration::from_secs(2);

impl RevocationList {
    pub async fn reload(&self, db: &Db) -> anyhow::Result<()> {
        let rows = rev::Entity::find().all(&db.read).await?;
        let events = rows
            .into_iter()
            .map(|r| Event {
                user_id: r.user_id,
                project_id: r.project_id,
                domain_id: r.domain_id,
                role_id: r.role_id,
                audit_id: r.audit_id,
                issued_before: r.issued_before,
            })
            .collect();
        if let Ok(mut w) = self.inner.write() {
            *w = (events, Some(Instant::now()));
        }
        Ok(())
    }

    /// Refresh from the database when the copy is older than a few seconds.
    pub async fn refresh_if_stale(&self, db: &Db) {
        let stale = self.inner.read().map(|r| r.1.is_none_or(|t| t.elapsed() > REFRESH)).unwrap_or(true);
        if stale && let Err(e) = self.reload(db).await {
            tracing::warn!(error = %e, "revocation events could not be refreshed");
        }
    }

    pub fn is_revoked(&self, t: &TokenFacts<'_>) -> bool {
        self.inner.read().map(|r| r.0.iter().any(|e| e.matches(t))).unwrap_or(true)
    }

    /// Record an event (database first, then memory).
    pub async fn record(&self, db: &Db, mut event: Event) -> anyhow::Result<()> {
        if event.issued_before == 0 {
            event.issued_before = now_us();
        }
        let am = rev::ActiveModel {
            id: Set(new_id()),
            user_id: Set(event.user_id.clone()),
            project_id: Set(event.project_id.clone()),
            domain_id: Set(event.domain_id.clone()),
            role_id: Set(event.role_id.clone()),
            audit_id: Set(event.audit_id.clone()),
            issued_before: Set(event.issued_before),
            revoked_at: Set(now_us()),
        };
        am.insert(&db.write).await?;
        if let Ok(mut w) = self.inner.write() {
            w.0.push(event);
        }
        Ok(())
    }

    /// Drop events older than any token could be (expiry plus the allow-expired window).
    pub async fn prune(&self, db: &Db, older_than_us: i64) -> anyhow::Result<()> {
        rev::Entity::delete_many().filter(rev::Column::RevokedAt.lt(older_than_us)).exec(&db.write).await?;
        self.reload(db).await
    }
}
