//! Durable sagas: a multi-step operation as a list of steps, each an action
//! and its undo, with its progress (which step, and a JSON state the steps
//! read and write) stored in the database after every step.
//!
//! - A saga belongs to one process at a time (`owner`), which refreshes a
//!   heartbeat while it works. When the heartbeat goes stale (the owner
//!   died), another process adopts the saga and carries on from the last
//!   recorded step: actions and undos must therefore be idempotent (a step
//!   may run again after a crash in its middle).
//! - When an action fails, the saga unwinds: the undos of the completed steps
//!   run in reverse order, each recorded, so a crash during the unwinding is
//!   resumed too. An undo that keeps failing leaves the saga `stuck` for a
//!   reconciler or an operator; it is never silently dropped.
//! - [`Faults`] injects failures for tests: fail a given action, run every
//!   action or undo twice (to prove idempotence).

pub mod migration;

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectionTrait, DbBackend, Statement, Value as SqlValue};
use serde_json::Value;
use stratus_db::Db;

pub use migration::Migrator;

/// Where a saga is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Actions are running (or will, once an owner takes it).
    Running,
    /// An action failed; undos are running.
    Unwinding,
    /// Every action ran.
    Done,
    /// Unwound completely after a failure.
    Failed,
    /// An undo kept failing: needs a reconciler or an operator.
    Stuck,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Unwinding => "unwinding",
            Status::Done => "done",
            Status::Failed => "failed",
            Status::Stuck => "stuck",
        }
    }
    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "running" => Status::Running,
            "unwinding" => Status::Unwinding,
            "done" => Status::Done,
            "failed" => Status::Failed,
            "stuck" => Status::Stuck,
            _ => return None,
        })
    }
}

/// One step: an action and the undo that reverses it. Both must be idempotent.
#[async_trait::async_trait]
pub trait Step<C>: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    async fn action(&self, ctx: &C, run: &mut Run) -> anyhow::Result<()>;
    async fn undo(&self, ctx: &C, run: &mut Run) -> anyhow::Result<()>;
}

/// A kind of saga: its name and its steps, in order.
pub struct SagaDef<C> {
    pub kind: &'static str,
    pub steps: Vec<Arc<dyn Step<C>>>,
}

/// A saga being executed: its id, the state its steps share, and (while
/// unwinding) why it failed.
pub struct Run {
    pub id: String,
    pub state: Value,
    pub error: Option<String>,
    engine: Engine,
    step: usize,
    status: Status,
}

impl Run {
    /// Record the state now (a step that makes progress in several moves
    /// saves between them, so a takeover resumes from there).
    pub async fn save(&mut self) -> anyhow::Result<()> {
        self.engine.persist(&self.id, self.status, self.step, &self.state, self.error.as_deref()).await
    }

    /// A field of the state, decoded.
    pub fn get<T: serde::de::DeserializeOwned>(&self, key: &str) -> anyhow::Result<T> {
        serde_json::from_value(self.state.get(key).cloned().unwrap_or(Value::Null))
            .map_err(|e| anyhow::anyhow!("saga state field {key}: {e}"))
    }

    /// Set a field of the state (saved with the step, or by [`Run::save`]).
    pub fn set<T: serde::Serialize>(&mut self, key: &str, value: T) -> anyhow::Result<()> {
        let v = serde_json::to_value(value)?;
        match self.state.as_object_mut() {
            Some(m) => {
                m.insert(key.to_string(), v);
                Ok(())
            }
            None => anyhow::bail!("saga state is not an object"),
        }
    }
}

/// How a run ended, as far as this process saw it.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Done(Value),
    /// Failed and unwound: the error and the final state.
    Unwound {
        error: String,
        state: Value,
    },
    /// An undo kept failing.
    Stuck(String),
    /// Another process owns it (or took it over while this one worked).
    NotOwner,
    /// No such saga, or it already finished.
    Finished,
}

/// Failure injection, for tests.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Fail this step's action (before it runs) with an injected error.
    pub fail_action: Option<&'static str>,
    /// Run each action twice (proves actions idempotent).
    pub repeat_actions: bool,
    /// Run each undo twice (proves undos idempotent).
    pub repeat_undos: bool,
}

/// Runs sagas for one process.
#[derive(Clone)]
pub struct Engine {
    db: Db,
    /// This process's owner id.
    pub owner: String,
    /// A saga whose heartbeat is older than this may be taken over.
    pub stale_after: Duration,
    pub faults: Faults,
    /// Undo attempts before a saga is declared stuck.
    pub undo_attempts: u32,
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// A SQL statement with `?` placeholders rewritten for the backend.
fn stmt(backend: DbBackend, sql: &str, values: Vec<SqlValue>) -> Statement {
    let sql = if backend == DbBackend::Postgres {
        let mut out = String::with_capacity(sql.len() + 8);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push_str(&format!("${n}"));
            } else {
                out.push(c);
            }
        }
        out
    } else {
        sql.to_string()
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// A saga as recorded.
#[derive(Clone, Debug)]
pub struct Record {
    pub id: String,
    pub kind: String,
    pub owner: Option<String>,
    pub status: Status,
    pub step: usize,
    pub state: Value,
    pub error: Option<String>,
}

impl Engine {
    pub fn new(db: Db, owner: impl Into<String>, stale_after: Duration) -> Engine {
        Engine { db, owner: owner.into(), stale_after, faults: Faults::default(), undo_attempts: 5 }
    }

    /// Record a new saga (unowned, step 0) inside the caller's transaction,
    /// so that it exists exactly when what it works on does.
    pub async fn create_in<T: ConnectionTrait>(conn: &T, kind: &str, id: &str, state: &Value) -> anyhow::Result<()> {
        let now = now_micros();
        conn.execute(stmt(
            conn.get_database_backend(),
            "INSERT INTO sagas (id, kind, owner, heartbeat, status, step, state, error, created_at, updated_at) \
             VALUES (?, ?, NULL, ?, 'running', 0, ?, NULL, ?, ?)",
            vec![id.into(), kind.into(), now.into(), state.to_string().into(), now.into(), now.into()],
        ))
        .await?;
        Ok(())
    }

    /// Record a new saga.
    pub async fn create(&self, kind: &str, id: &str, state: &Value) -> anyhow::Result<()> {
        Self::create_in(&self.db.write, kind, id, state).await
    }

    pub async fn get(&self, id: &str) -> anyhow::Result<Option<Record>> {
        let row = self
            .db
            .read
            .query_one(stmt(
                self.db.backend,
                "SELECT id, kind, owner, status, step, state, error FROM sagas WHERE id = ?",
                vec![id.into()],
            ))
            .await?;
        let Some(r) = row else { return Ok(None) };
        let status: String = r.try_get("", "status")?;
        let state: String = r.try_get("", "state")?;
        let step: i64 = r.try_get("", "step")?;
        Ok(Some(Record {
            id: r.try_get("", "id")?,
            kind: r.try_get("", "kind")?,
            owner: r.try_get("", "owner")?,
            status: Status::parse(&status).ok_or_else(|| anyhow::anyhow!("unknown saga status {status}"))?,
            step: usize::try_from(step).unwrap_or(0),
            state: serde_json::from_str(&state)?,
            error: r.try_get("", "error")?,
        }))
    }

    /// Take ownership of a saga that is unowned, ours, or whose owner went silent.
    async fn claim(&self, id: &str) -> anyhow::Result<bool> {
        let now = now_micros();
        let stale = now - i64::try_from(self.stale_after.as_micros()).unwrap_or(i64::MAX);
        let r = self
            .db
            .write
            .execute(stmt(
                self.db.backend,
                "UPDATE sagas SET owner = ?, heartbeat = ?, updated_at = ? \
                 WHERE id = ? AND status IN ('running', 'unwinding') \
                 AND (owner IS NULL OR owner = ? OR heartbeat < ?)",
                vec![
                    self.owner.clone().into(),
                    now.into(),
                    now.into(),
                    id.into(),
                    self.owner.clone().into(),
                    stale.into(),
                ],
            ))
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Ids of sagas of `kind` nobody is working on: unowned and not started
    /// for `stale_after`, or whose owner's heartbeat is stale.
    pub async fn orphans(&self, kind: &str) -> anyhow::Result<Vec<String>> {
        let stale = now_micros() - i64::try_from(self.stale_after.as_micros()).unwrap_or(i64::MAX);
        let rows = self
            .db
            .read
            .query_all(stmt(
                self.db.backend,
                "SELECT id FROM sagas WHERE kind = ? AND status IN ('running', 'unwinding') AND heartbeat < ? \
                 ORDER BY created_at LIMIT 100",
                vec![kind.into(), stale.into()],
            ))
            .await?;
        rows.iter().map(|r| r.try_get::<String>("", "id").map_err(anyhow::Error::from)).collect()
    }

    async fn persist(
        &self,
        id: &str,
        status: Status,
        step: usize,
        state: &Value,
        error: Option<&str>,
    ) -> anyhow::Result<()> {
        let now = now_micros();
        let r = self
            .db
            .write
            .execute(stmt(
                self.db.backend,
                "UPDATE sagas SET status = ?, step = ?, state = ?, error = ?, heartbeat = ?, updated_at = ? \
                 WHERE id = ? AND owner = ?",
                vec![
                    status.as_str().into(),
                    i64::try_from(step).unwrap_or(0).into(),
                    state.to_string().into(),
                    error.map(str::to_string).into(),
                    now.into(),
                    now.into(),
                    id.into(),
                    self.owner.clone().into(),
                ],
            ))
            .await?;
        if r.rows_affected() != 1 {
            anyhow::bail!(LostOwnership);
        }
        Ok(())
    }

    /// Refresh the heartbeat of a saga this process owns (from a ticker while a long step runs).
    pub async fn beat(&self, id: &str) -> anyhow::Result<bool> {
        let now = now_micros();
        let r = self
            .db
            .write
            .execute(stmt(
                self.db.backend,
                "UPDATE sagas SET heartbeat = ? WHERE id = ? AND owner = ?",
                vec![now.into(), id.into(), self.owner.clone().into()],
            ))
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Execute (or resume) saga `id` to its end: done, or unwound.
    pub async fn run<C: Send + Sync + 'static>(&self, def: &SagaDef<C>, ctx: &C, id: &str) -> anyhow::Result<Outcome> {
        let Some(rec) = self.get(id).await? else { return Ok(Outcome::Finished) };
        if !matches!(rec.status, Status::Running | Status::Unwinding) {
            return Ok(Outcome::Finished);
        }
        if rec.kind != def.kind {
            anyhow::bail!("saga {id} is a {} saga, not {}", rec.kind, def.kind);
        }
        if !self.claim(id).await? {
            return Ok(Outcome::NotOwner);
        }
        // a ticker keeps the heartbeat fresh while steps wait on other services
        let _ticker = AbortOnDrop({
            let engine = self.clone();
            let id = id.to_string();
            let every = (self.stale_after / 3).max(Duration::from_millis(50));
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    match engine.beat(&id).await {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) => tracing::warn!(saga = %id, error = %e, "saga heartbeat failed"),
                    }
                }
            })
        });
        let mut run = Run {
            id: id.to_string(),
            state: rec.state,
            error: rec.error,
            engine: self.clone(),
            step: rec.step.min(def.steps.len()),
            status: rec.status,
        };
        let result = self.drive(def, ctx, &mut run).await;
        match result {
            Err(e) if e.downcast_ref::<LostOwnership>().is_some() => Ok(Outcome::NotOwner),
            other => other,
        }
    }

    async fn drive<C: Send + Sync + 'static>(
        &self,
        def: &SagaDef<C>,
        ctx: &C,
        run: &mut Run,
    ) -> anyhow::Result<Outcome> {
        if run.status == Status::Running {
            while run.step < def.steps.len() {
                let step = &def.steps[run.step];
                let result = if self.faults.fail_action == Some(step.name()) {
                    Err(anyhow::anyhow!("injected failure in {}", step.name()))
                } else {
                    let mut r = step.action(ctx, run).await;
                    if r.is_ok() && self.faults.repeat_actions {
                        r = step.action(ctx, run).await;
                    }
                    r
                };
                match result {
                    Ok(()) => {
                        run.step += 1;
                        let status = if run.step == def.steps.len() { Status::Done } else { Status::Running };
                        self.persist(&run.id, status, run.step, &run.state, None).await?;
                        tracing::debug!(saga = %run.id, kind = def.kind, step = step.name(), "saga step done");
                    }
                    Err(e) => {
                        if e.downcast_ref::<LostOwnership>().is_some() {
                            return Err(e);
                        }
                        let msg = format!("{e:#}");
                        tracing::info!(saga = %run.id, kind = def.kind, step = step.name(), error = %msg, "saga step failed: unwinding");
                        run.status = Status::Unwinding;
                        run.error = Some(msg);
                        self.persist(&run.id, Status::Unwinding, run.step, &run.state, run.error.as_deref()).await?;
                        break;
                    }
                }
            }
            if run.status == Status::Running {
                return Ok(Outcome::Done(run.state.clone()));
            }
        }
        // unwinding: undo the completed steps, newest first
        while run.step > 0 {
            let step = &def.steps[run.step - 1];
            let mut attempt = 0;
            loop {
                let mut r = step.undo(ctx, run).await;
                if r.is_ok() && self.faults.repeat_undos {
                    r = step.undo(ctx, run).await;
                }
                match r {
                    Ok(()) => break,
                    Err(e) if e.downcast_ref::<LostOwnership>().is_some() => return Err(e),
                    Err(e) => {
                        attempt += 1;
                        tracing::warn!(saga = %run.id, step = step.name(), attempt, error = %format!("{e:#}"), "saga undo failed");
                        if attempt >= self.undo_attempts {
                            let msg = format!("undo of {} failed: {e:#}", step.name());
                            self.persist(&run.id, Status::Stuck, run.step, &run.state, Some(&msg)).await?;
                            return Ok(Outcome::Stuck(msg));
                        }
                        tokio::time::sleep(Duration::from_millis(100 << attempt.min(6))).await;
                    }
                }
            }
            run.step -= 1;
            if run.step > 0 {
                self.persist(&run.id, Status::Unwinding, run.step, &run.state, run.error.as_deref()).await?;
            }
        }
        self.persist(&run.id, Status::Failed, 0, &run.state, run.error.as_deref()).await?;
        Ok(Outcome::Unwound { error: run.error.clone().unwrap_or_default(), state: run.state.clone() })
    }
}

/// Stops the heartbeat ticker when a run ends or is dropped (its task cancelled).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// This process no longer owns the saga (another took it over).
#[derive(Debug)]
pub struct LostOwnership;

impl std::fmt::Display for LostOwnership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("saga ownership lost to another process")
    }
}

impl std::error::Error for LostOwnership {}
