//! No image is left stuck in a transient state. Work on an image's data
//! (upload, staging, import) keeps a heartbeat on the image row while it runs;
//! if the process doing it dies, the heartbeat stops and the reaper (run by
//! every API process) moves the image on: `saving` → `killed`, an unfinished
//! staging (`uploading` with nothing staged) → `queued`, `importing` →
//! `queued`. Any partial files were never committed and are removed at the
//! next start of the store.

use std::time::Duration;

use crate::State;

/// How often running work touches its image.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// Work silent for this long is dead.
pub const DEAD_AFTER: Duration = Duration::from_secs(120);

/// Keeps an image's `updated_at` fresh until dropped.
pub struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub fn heartbeat(svc: &State, id: &str) -> Heartbeat {
    let (svc, id) = (svc.clone(), id.to_string());
    Heartbeat(tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = crate::store::images::touch(&svc.db, &id).await {
                tracing::warn!(image = %id, error = %e, "image heartbeat failed");
            }
        }
    }))
}

/// Move images whose work died on; returns how many.
pub async fn reap_once(svc: &State, dead_after: Duration) -> anyhow::Result<u64> {
    let now = crate::store::now_us();
    let cutoff = now - dead_after.as_micros() as i64;
    let n = crate::store::images::reap_stale(&svc.db, cutoff, now).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    if n > 0 {
        tracing::warn!(images = n, "images whose upload or import died were moved on (killed / queued)");
    }
    Ok(n)
}

/// Run the reaper every minute, for the life of the process.
pub fn spawn(svc: State) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            if let Err(e) = reap_once(&svc, DEAD_AFTER).await {
                tracing::warn!(error = %e, "image reaper failed");
            }
        }
    });
}
