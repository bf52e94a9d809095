//! The image cache: full copies of image data on the API node, in
//! `<data_dir>/image-cache/`, served instead of the store when present.
//!
//! Layout: `<dir>/<image id>` is a cached image; `<dir>/queue/<image id>` an
//! empty file that says the image waits to be cached; partial copies sit in
//! `<dir>/<image id>.<random>.partial` until they are complete and renamed
//! (a crash leaves only partial files, removed at the next start). The files
//! are the truth: they are scanned at start, and the statistics (hits, last
//! access) live in memory next to them.
//!
//! Queued images are copied one at a time by a background worker, started on
//! first use of the cache API (it then also resumes the queue a restart left).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::ImageService;
use crate::backend::{ByteStream, FileStore, Store};

/// Glance's default `image_cache_max_size`: what `prune` trims the cache to.
pub const MAX_SIZE: u64 = 10 * 1024 * 1024 * 1024;
/// Glance's default `image_cache_stall_time`: partial copies older than this are removed by `clean`.
pub const STALL_SECS: f64 = 86400.0;

/// One cached image.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub hits: u64,
    /// Seconds since the epoch.
    pub last_accessed: f64,
    pub last_modified: f64,
    pub size: u64,
}

#[derive(Default)]
struct Inner {
    cached: BTreeMap<String, Entry>,
    /// In the order they were queued, each with the token of its queueing: a
    /// copy commits only if its entry is still the one it started from.
    queued: Vec<(String, u64)>,
    next_token: u64,
}

pub struct ImageCache {
    dir: PathBuf,
    /// Writes partial copies and commits them by rename.
    files: FileStore,
    inner: Mutex<Inner>,
    worker: OnceLock<mpsc::UnboundedSender<String>>,
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn secs(t: std::io::Result<SystemTime>) -> f64 {
    t.ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Image ids are UUIDs: anything else never names a file here.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

async fn remove_file(path: &Path) {
    match tokio::fs::remove_file(path).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "could not remove an image cache file"),
    }
}

impl ImageCache {
    /// Open the cache under `data_dir`, creating its directories, dropping
    /// partial copies and reading what is cached and queued.
    pub fn load(data_dir: &Path) -> anyhow::Result<ImageCache> {
        let dir = data_dir.join("image-cache");
        std::fs::create_dir_all(dir.join("queue"))
            .with_context(|| format!("cannot create the image cache {}", dir.display()))?;
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        let files = FileStore::open("image-cache", &dir)?;
        let mut inner = Inner::default();
        for entry in std::fs::read_dir(&dir)?.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() || !valid_id(&name) {
                continue;
            }
            let modified = secs(meta.modified());
            let accessed = secs(meta.accessed()).max(modified);
            inner
                .cached
                .insert(name, Entry { hits: 0, last_accessed: accessed, last_modified: modified, size: meta.len() });
        }
        let mut queued: Vec<(f64, String)> = Vec::new();
        for entry in std::fs::read_dir(dir.join("queue"))?.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if !valid_id(&name) {
                continue;
            }
            if inner.cached.contains_key(&name) {
                let _ = std::fs::remove_file(entry.path());
                continue;
            }
            queued.push((entry.metadata().map(|m| secs(m.modified())).unwrap_or(0.0), name));
        }
        queued.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        for (_, id) in queued {
            inner.next_token += 1;
            inner.queued.push((id, inner.next_token));
        }
        Ok(ImageCache { dir, files, inner: Mutex::new(inner), worker: OnceLock::new() })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn data_path(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn queue_path(&self, id: &str) -> PathBuf {
        self.dir.join("queue").join(id)
    }

    /// Cached images by id, and the queued ids in queueing order.
    pub fn state(&self) -> (Vec<(String, Entry)>, Vec<String>) {
        let inner = self.lock();
        let cached = inner.cached.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let queued = inner.queued.iter().map(|(id, _)| id.clone()).collect();
        (cached, queued)
    }

    /// `GET /v2/cache` as Glance answers it.
    pub fn view(&self) -> Value {
        let (cached, queued) = self.state();
        let cached: Vec<Value> = cached
            .into_iter()
            .map(|(id, e)| {
                json!({
                    "image_id": id,
                    "hits": e.hits,
                    "last_accessed": e.last_accessed,
                    "last_modified": e.last_modified,
                    "size": e.size,
                })
            })
            .collect();
        json!({"cached_images": cached, "queued_images": queued})
    }

    pub fn is_cached(&self, id: &str) -> bool {
        self.lock().cached.contains_key(id)
    }

    pub fn is_queued(&self, id: &str) -> bool {
        self.lock().queued.iter().any(|(q, _)| q == id)
    }

    /// Queue an image for caching. False when it is already cached or queued.
    pub fn queue(&self, id: &str) -> anyhow::Result<bool> {
        if !valid_id(id) {
            return Err(anyhow!("invalid image id {id:?}"));
        }
        let mut inner = self.lock();
        if inner.cached.contains_key(id) || inner.queued.iter().any(|(q, _)| q == id) {
            return Ok(false);
        }
        std::fs::write(self.queue_path(id), b"").context("cannot queue the image for caching")?;
        inner.next_token += 1;
        let token = inner.next_token;
        inner.queued.push((id.to_string(), token));
        drop(inner);
        if let Some(tx) = self.worker.get() {
            let _ = tx.send(id.to_string());
        }
        Ok(true)
    }

    /// Start the worker that copies queued images (once), handing it what is already queued.
    /// It holds the service weakly: it ends when the service goes.
    pub fn start(&self, svc: &Arc<ImageService>) {
        self.worker.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            for (id, _) in &self.lock().queued {
                let _ = tx.send(id.clone());
            }
            tokio::spawn(run_worker(Arc::downgrade(svc), rx));
            tx
        });
    }

    /// Remove an image from the cache and from the queue. True if it was in either.
    pub async fn remove(&self, id: &str) -> bool {
        if !valid_id(id) {
            return false;
        }
        let (was_cached, was_queued) = {
            let mut inner = self.lock();
            let c = inner.cached.remove(id).is_some();
            let before = inner.queued.len();
            inner.queued.retain(|(q, _)| q != id);
            (c, inner.queued.len() != before)
        };
        if was_cached {
            remove_file(&self.data_path(id)).await;
        }
        if was_queued {
            remove_file(&self.queue_path(id)).await;
        }
        was_cached || was_queued
    }

    /// Empty the cache: returns how many images were dropped.
    pub async fn clear_cached(&self) -> usize {
        let ids: Vec<String> = std::mem::take(&mut self.lock().cached).into_keys().collect();
        for id in &ids {
            remove_file(&self.data_path(id)).await;
        }
        ids.len()
    }

    /// Empty the queue: returns how many images were dropped.
    pub async fn clear_queued(&self) -> usize {
        let ids: Vec<(String, u64)> = std::mem::take(&mut self.lock().queued);
        for (id, _) in &ids {
            remove_file(&self.queue_path(id)).await;
        }
        ids.len()
    }

    /// The cached data of an image of `size` bytes, counting a hit; None when
    /// not cached (or the copy is unusable, which drops it).
    pub async fn open(&self, id: &str, size: u64, range: Option<(u64, u64)>) -> Option<ByteStream> {
        let cached_size = self.lock().cached.get(id).map(|e| e.size)?;
        let path = self.data_path(id);
        if cached_size != size {
            tracing::warn!(image = %id, cached_size, size, "cached copy has the wrong size: dropped");
            self.remove(id).await;
            return None;
        }
        match self.files.open(&format!("file://{}", path.display()), range).await {
            Ok(stream) => {
                if let Some(e) = self.lock().cached.get_mut(id) {
                    e.hits += 1;
                    e.last_accessed = now();
                }
                Some(stream)
            }
            Err(e) => {
                tracing::warn!(image = %id, error = %e, "cached copy unreadable: dropped");
                self.remove(id).await;
                None
            }
        }
    }

    /// Drop entries whose file vanished, queue entries already cached, and
    /// partial copies older than the stall time that no copy is writing.
    pub async fn clean(&self) -> anyhow::Result<()> {
        let ids: Vec<String> = self.lock().cached.keys().cloned().collect();
        for id in ids {
            if tokio::fs::metadata(self.data_path(&id)).await.is_err() {
                self.lock().cached.remove(&id);
            }
        }
        let stale: Vec<String> = {
            let mut inner = self.lock();
            let Inner { cached, queued, .. } = &mut *inner;
            let stale = queued.iter().filter(|(q, _)| cached.contains_key(q)).map(|(q, _)| q.clone()).collect();
            queued.retain(|(q, _)| !cached.contains_key(q));
            stale
        };
        for id in stale {
            remove_file(&self.queue_path(&id)).await;
        }
        let mut dir = tokio::fs::read_dir(&self.dir).await?;
        let limit = now() - STALL_SECS;
        while let Some(entry) = dir.next_entry().await? {
            if entry.file_name().to_string_lossy().ends_with(".partial")
                && let Ok(meta) = entry.metadata().await
                && secs(meta.modified()) < limit
            {
                remove_file(&entry.path()).await;
            }
        }
        Ok(())
    }

    /// Remove the least recently used images until the cache holds at most
    /// `max` bytes: returns (files, bytes) removed.
    pub async fn prune(&self, max: u64) -> (u64, u64) {
        let victims: Vec<(String, u64)> = {
            let mut inner = self.lock();
            let mut total: u64 = inner.cached.values().map(|e| e.size).sum();
            let mut by_age: Vec<(String, f64, u64)> =
                inner.cached.iter().map(|(k, e)| (k.clone(), e.last_accessed, e.size)).collect();
            by_age.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            let mut out = Vec::new();
            for (id, _, size) in by_age {
                if total <= max {
                    break;
                }
                inner.cached.remove(&id);
                total = total.saturating_sub(size);
                out.push((id, size));
            }
            out
        };
        for (id, _) in &victims {
            remove_file(&self.data_path(id)).await;
        }
        (victims.len() as u64, victims.iter().map(|(_, s)| s).sum())
    }

    /// The queueing token of `id`, if it is still queued.
    fn token(&self, id: &str) -> Option<u64> {
        self.lock().queued.iter().find(|(q, _)| q == id).map(|(_, t)| *t)
    }

    /// Take `id` off the queue if it is still the queueing `token` started from.
    fn unqueue(&self, id: &str, token: u64) {
        let mut inner = self.lock();
        let before = inner.queued.len();
        inner.queued.retain(|(q, t)| !(q == id && *t == token));
        if inner.queued.len() != before {
            let _ = std::fs::remove_file(self.queue_path(id));
        }
    }

    /// Copy a queued image from its store into the cache. Whatever happens,
    /// the image leaves the queue: cached, or dropped with the reason logged.
    async fn fetch(&self, svc: &ImageService, id: &str) {
        let Some(token) = self.token(id) else { return };
        if self.is_cached(id) {
            self.unqueue(id, token);
            return;
        }
        match self.copy(svc, id, token).await {
            Ok(true) => tracing::info!(image = %id, "image cached"),
            Ok(false) => tracing::info!(image = %id, "image left the queue while it was being cached"),
            Err(e) => {
                tracing::warn!(image = %id, error = %format!("{e:#}"), "image not cached");
                self.unqueue(id, token);
            }
        }
    }

    /// Ok(false): the queue entry went away meanwhile (the copy is dropped).
    async fn copy(&self, svc: &ImageService, id: &str, token: u64) -> anyhow::Result<bool> {
        let img = crate::store::images::get(&svc.db, id)
            .await
            .map_err(|e| anyhow!("{e}"))?
            .ok_or_else(|| anyhow!("the image is gone"))?;
        if img.status != "active" {
            return Err(anyhow!("the image is {}, not active", img.status));
        }
        let loc = crate::api::locations(&img).into_iter().next().ok_or_else(|| anyhow!("the image has no data"))?;
        let (Some(url), Some(store_id)) = (loc["url"].as_str(), loc["metadata"]["store"].as_str()) else {
            return Err(anyhow!("the image's location is malformed"));
        };
        let store = svc.stores.for_location(store_id).ok_or_else(|| anyhow!("unknown store {store_id}"))?;
        let source = store.open(url, None).await?;
        let stored = match crate::api::data::store_stream(&self.files, id, None, source, u64::MAX).await {
            Ok(s) => s,
            Err(crate::api::data::StoreFailure::Broken(why)) => return Err(anyhow!("reading the store failed: {why}")),
            Err(crate::api::data::StoreFailure::Refused(e)) => return Err(anyhow!("copying failed: {e}")),
        };
        let d = &stored.digests;
        let mismatch = img.size.is_some_and(|s| s != d.size as i64)
            || img.checksum.as_deref().is_some_and(|c| c != d.md5)
            || (img.os_hash_algo.as_deref() == Some("sha512")
                && img.os_hash_value.as_deref().is_some_and(|h| h != d.sha512));
        let committed = !mismatch && {
            let mut inner = self.lock();
            let pos = inner.queued.iter().position(|(q, t)| q == id && *t == token);
            match pos {
                Some(i) => {
                    inner.queued.remove(i);
                    let t = now();
                    inner
                        .cached
                        .insert(id.to_string(), Entry { hits: 0, last_accessed: t, last_modified: t, size: d.size });
                    let _ = std::fs::remove_file(self.queue_path(id));
                    true
                }
                None => false,
            }
        };
        if !committed {
            // the rename put the copy in place: take it back out unless the index owns it
            if !self.is_cached(id) {
                remove_file(&self.data_path(id)).await;
            }
            if mismatch {
                return Err(anyhow!("the data in the store does not match the image's size or checksum"));
            }
        }
        Ok(committed)
    }
}

async fn run_worker(svc: Weak<ImageService>, mut rx: mpsc::UnboundedReceiver<String>) {
    while let Some(id) = rx.recv().await {
        let Some(svc) = svc.upgrade() else { break };
        svc.cache.fetch(&svc, &id).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_never_escape_the_directory() {
        assert!(valid_id("0b7a4bd8-7d1c-4f3e-9d36-4b1f8f0f4b1e"));
        assert!(!valid_id("../etc/passwd"));
        assert!(!valid_id("a.partial"));
        assert!(!valid_id(""));
    }

    #[tokio::test]
    async fn scan_queue_remove_and_prune() {
        let dir = tempfile_dir();
        std::fs::create_dir_all(dir.join("image-cache/queue")).ok();
        std::fs::write(dir.join("image-cache/aaaa"), b"12345").ok();
        std::fs::write(dir.join("image-cache/bbbb.1234.partial"), b"12").ok();
        std::fs::write(dir.join("image-cache/queue/cccc"), b"").ok();
        let cache = ImageCache::load(&dir).unwrap_or_else(|e| panic!("{e}"));
        let (cached, queued) = cache.state();
        assert_eq!(cached.len(), 1);
        assert_eq!(cached[0].0, "aaaa");
        assert_eq!(cached[0].1.size, 5);
        assert_eq!(queued, vec!["cccc".to_string()]);
        assert!(!dir.join("image-cache/bbbb.1234.partial").exists(), "partial copies go at start");
        assert!(!cache.queue("aaaa").unwrap_or(true), "a cached image is not queued again");
        assert!(cache.queue("dddd").unwrap_or(false));
        assert!(cache.queue("../x").is_err());
        assert!(cache.open("aaaa", 5, Some((1, 2))).await.is_some());
        assert_eq!(cache.state().0[0].1.hits, 1);
        assert!(cache.open("aaaa", 6, None).await.is_none(), "a copy of the wrong size is dropped");
        assert!(!dir.join("image-cache/aaaa").exists());
        assert!(cache.remove("cccc").await);
        assert!(!dir.join("image-cache/queue/cccc").exists());
        assert_eq!(cache.clear_queued().await, 1);
        std::fs::write(dir.join("image-cache/eeee"), b"1234567890").ok();
        let cache = ImageCache::load(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cache.prune(4).await, (1, 10));
        assert!(cache.state().0.is_empty());
        std::fs::remove_dir_all(&dir).ok();
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("stratus-image-cache-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&d).ok();
        d
    }
}
