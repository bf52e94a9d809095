//! The saga engine on every database: steps run in order, a failure at any
//! step unwinds everything before it (twice over: undos are idempotent), and
//! a saga whose owner died is taken over and finished by another engine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use stratus_saga::{Engine, Faults, Outcome, Run, SagaDef, Status, Step};

/// What the steps act on: a set of "resources" that must be empty after an unwind.
#[derive(Default)]
struct World {
    made: Mutex<BTreeSet<String>>,
    /// a step that blocks forever when set (a process "dying" mid-step)
    hang_in: Mutex<Option<&'static str>>,
}

struct Make(&'static str);

#[async_trait::async_trait]
impl Step<World> for Make {
    fn name(&self) -> &'static str {
        self.0
    }
    async fn action(&self, w: &World, run: &mut Run) -> anyhow::Result<()> {
        if *w.hang_in.lock().unwrap() == Some(self.0) {
            std::future::pending::<()>().await;
        }
        w.made.lock().unwrap().insert(format!("{}:{}", run.id, self.0));
        let mut done: Vec<String> = run.get("done").unwrap_or_default();
        if !done.contains(&self.0.to_string()) {
            done.push(self.0.to_string());
        }
        run.set("done", done)?;
        Ok(())
    }
    async fn undo(&self, w: &World, run: &mut Run) -> anyhow::Result<()> {
        // idempotent: removing what is already gone is fine
        w.made.lock().unwrap().remove(&format!("{}:{}", run.id, self.0));
        Ok(())
    }
}

fn def() -> SagaDef<World> {
    SagaDef { kind: "test", steps: vec![Arc::new(Make("a")), Arc::new(Make("b")), Arc::new(Make("c"))] }
}

async fn dbs() -> Vec<(&'static str, stratus_db::Db)> {
    let mut out = Vec::new();
    for (name, db) in stratus_db::testing::fresh().await {
        db.migrate::<stratus_saga::Migrator>().await.unwrap();
        out.push((name, db));
    }
    out
}

#[tokio::test]
async fn runs_every_step_in_order() {
    for (backend, db) in dbs().await {
        let engine = Engine::new(db, "conductor-1", Duration::from_secs(30));
        let world = World::default();
        engine.create("test", "s1", &json!({})).await.unwrap();
        let out = engine.run(&def(), &world, "s1").await.unwrap();
        let Outcome::Done(state) = out else { panic!("{backend}: {out:?}") };
        assert_eq!(state["done"], json!(["a", "b", "c"]), "{backend}");
        assert_eq!(world.made.lock().unwrap().len(), 3);
        let rec = engine.get("s1").await.unwrap().unwrap();
        assert_eq!(rec.status, Status::Done, "{backend}");
        assert_eq!(rec.step, 3);
        // a finished saga does not run again
        assert_eq!(engine.run(&def(), &world, "s1").await.unwrap(), Outcome::Finished);
    }
}

#[tokio::test]
async fn a_failure_at_every_step_unwinds_everything_with_idempotent_undo_and_actions() {
    for (backend, db) in dbs().await {
        for fail in ["a", "b", "c"] {
            let mut engine = Engine::new(db.clone(), "conductor-1", Duration::from_secs(30));
            engine.faults = Faults { fail_action: Some(fail), repeat_actions: true, repeat_undos: true };
            let world = World::default();
            let id = format!("s-{fail}");
            engine.create("test", &id, &json!({})).await.unwrap();
            let out = engine.run(&def(), &world, &id).await.unwrap();
            let Outcome::Unwound { error, .. } = out else { panic!("{backend}/{fail}: {out:?}") };
            assert!(error.contains(&format!("injected failure in {fail}")), "{error}");
            assert!(world.made.lock().unwrap().is_empty(), "{backend}/{fail}: left {:?}", world.made.lock().unwrap());
            let rec = engine.get(&id).await.unwrap().unwrap();
            assert_eq!(rec.status, Status::Failed, "{backend}/{fail}");
            assert_eq!(rec.step, 0);
            assert!(rec.error.unwrap().contains("injected"));
        }
    }
}

#[tokio::test]
async fn an_orphaned_saga_is_taken_over_and_finished() {
    for (backend, db) in dbs().await {
        let stale = Duration::from_millis(300);
        let first = Engine::new(db.clone(), "conductor-1", stale);
        let world = Arc::new(World::default());
        *world.hang_in.lock().unwrap() = Some("b");
        first.create("test", "s-orphan", &json!({})).await.unwrap();
        let (w, f) = (world.clone(), first.clone());
        let dying = tokio::spawn(async move { f.run(&def(), &w, "s-orphan").await });
        // the first owner gets through "a" and hangs in "b"; then it dies
        tokio::time::sleep(Duration::from_millis(200)).await;
        dying.abort();
        let rec = first.get("s-orphan").await.unwrap().unwrap();
        assert_eq!((rec.step, rec.owner.as_deref()), (1, Some("conductor-1")), "{backend}");
        *world.hang_in.lock().unwrap() = None;

        let second = Engine::new(db.clone(), "conductor-2", stale);
        // not yet stale: the second conductor may not take it
        assert_eq!(second.run(&def(), &world, "s-orphan").await.unwrap(), Outcome::NotOwner, "{backend}");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(second.orphans("test").await.unwrap(), vec!["s-orphan".to_string()], "{backend}");
        let out = second.run(&def(), &world, "s-orphan").await.unwrap();
        let Outcome::Done(state) = out else { panic!("{backend}: {out:?}") };
        assert_eq!(state["done"], json!(["a", "b", "c"]));
        let rec = second.get("s-orphan").await.unwrap().unwrap();
        assert_eq!((rec.status, rec.owner.as_deref()), (Status::Done, Some("conductor-2")));
        // the first owner, back from the dead, cannot write over it
        assert_eq!(first.run(&def(), &world, "s-orphan").await.unwrap(), Outcome::Finished);
        assert!(second.orphans("test").await.unwrap().is_empty());
    }
}

/// An undo that keeps failing leaves the saga stuck, never silently dropped.
#[tokio::test]
async fn an_undo_that_keeps_failing_leaves_the_saga_stuck() {
    struct BadUndo;
    #[async_trait::async_trait]
    impl Step<World> for BadUndo {
        fn name(&self) -> &'static str {
            "bad"
        }
        async fn action(&self, _: &World, _: &mut Run) -> anyhow::Result<()> {
            Ok(())
        }
        async fn undo(&self, _: &World, _: &mut Run) -> anyhow::Result<()> {
            anyhow::bail!("backend unreachable")
        }
    }
    let (_, db) = dbs().await.remove(0);
    let mut engine = Engine::new(db, "c", Duration::from_secs(30));
    engine.undo_attempts = 2;
    engine.faults.fail_action = Some("b");
    let def = SagaDef::<World> { kind: "test", steps: vec![Arc::new(BadUndo), Arc::new(Make("b"))] };
    engine.create("test", "s-stuck", &json!({})).await.unwrap();
    let out = engine.run(&def, &World::default(), "s-stuck").await.unwrap();
    assert!(matches!(out, Outcome::Stuck(ref m) if m.contains("backend unreachable")), "{out:?}");
    assert_eq!(engine.get("s-stuck").await.unwrap().unwrap().status, Status::Stuck);
}
