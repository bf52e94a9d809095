//! Backups: the volume host's side (copy a volume into the backup store,
//! restore, delete). The store is a directory: `<backups_dir>/<backup_id>/`
//! holds `manifest.json` and the chunks (`chunk-000000`, ...) this backup
//! wrote.
//!
//! A volume is read in chunks of [`CHUNK`] bytes. A chunk of zeros is not
//! written (sparse volumes back up fast and small); any other chunk is
//! hashed (SHA-256) and written, unless the backup is incremental and its
//! parent's manifest has the same hash at the same place: then the manifest
//! points at the chunk where the parent keeps it. A backup is made in
//! `.<id>.part` and renamed into place when whole, so a failed backup leaves
//! no chunk directory. Restores write the chunks (zeros as holes) into the
//! volume's raw target, checking every hash.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use futures::StreamExt;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use stratus_bus::{RemoteError, handler};
use stratus_db::Db;

use crate::entity::{backup, snapshot, volume};
use crate::manager::VolumeHost;
use crate::model::{backup_status as bs, snapshot_status as ss, volume_status as vs};
use crate::rpc::{self, CreateBackup, DeleteBackup, RestoreBackup};

/// Bytes per chunk.
pub const CHUNK: u64 = 32 << 20;

/// How many chunks are read, hashed and written at once.
const PARALLEL: usize = 4;

const MANIFEST: &str = "manifest.json";

/// What a backup holds: one entry per chunk of the volume.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub version: u32,
    pub backup_id: String,
    #[serde(default)]
    pub parent_id: Option<String>,
    pub chunk_size: u64,
    /// The volume's size in bytes.
    pub size: u64,
    pub chunks: Vec<Chunk>,
}

/// One chunk: all zeros (`sha256` None), or its hash and the backup whose
/// directory holds its file.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Chunk {
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub stored_in: Option<String>,
}

fn chunk_name(i: usize) -> String {
    format!("chunk-{i:06}")
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn is_zero(buf: &[u8]) -> bool {
    // slice equality is a memcmp: fast in any build
    static ZEROS: [u8; 64 * 1024] = [0u8; 64 * 1024];
    buf.chunks(ZEROS.len()).all(|c| c == &ZEROS[..c.len()])
}

/// The directory of backup `id` (ids are UUIDs: nothing else is a path here).
fn backup_dir(root: &Path, id: &str) -> anyhow::Result<PathBuf> {
    uuid::Uuid::parse_str(id).with_context(|| format!("{id:?} is not a backup id"))?;
    Ok(root.join(id))
}

/// Read the manifest of backup `id`.
pub async fn read_manifest(root: &Path, id: &str) -> anyhow::Result<Manifest> {
    let p = backup_dir(root, id)?.join(MANIFEST);
    let text = tokio::fs::read(&p).await.with_context(|| format!("cannot read {}", p.display()))?;
    Ok(serde_json::from_slice(&text)?)
}

fn any(e: crate::error::VolumeError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// Serve the backup topics of `host` (`volume.<host>.backup`, `.restore`, `.delete_backup`).
pub async fn serve(host: &Arc<VolumeHost>) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut tasks = Vec::new();
    let me = host.clone();
    tasks.push(
        host.bus
            .serve(
                &rpc::host_topic(&host.host, "backup"),
                handler(move |m: CreateBackup, _| {
                    let me = me.clone();
                    async move {
                        tokio::spawn(async move { create_backup(&me, &m.backup_id).await });
                        Ok::<_, RemoteError>(())
                    }
                }),
            )
            .await?,
    );
    let me = host.clone();
    tasks.push(
        host.bus
            .serve(
                &rpc::host_topic(&host.host, "restore"),
                handler(move |m: RestoreBackup, _| {
                    let me = me.clone();
                    async move {
                        tokio::spawn(async move { restore_backup(&me, &m).await });
                        Ok::<_, RemoteError>(())
                    }
                }),
            )
            .await?,
    );
    let me = host.clone();
    tasks.push(
        host.bus
            .serve(
                &rpc::host_topic(&host.host, "delete_backup"),
                handler(move |m: DeleteBackup, _| {
                    let me = me.clone();
                    async move {
                        tokio::spawn(async move { delete_backup(&me, &m.backup_id).await });
                        Ok::<_, RemoteError>(())
                    }
                }),
            )
            .await?,
    );
    Ok(tasks)
}

async fn get_backup(db: &Db, id: &str) -> anyhow::Result<Option<backup::Model>> {
    Ok(backup::Entity::find_by_id(id.to_string()).one(&db.read).await?)
}

/// The volume (or snapshot) a backup reads goes back to what it was.
async fn release_source(db: &Db, b: &backup::Model) {
    let now = crate::api::now();
    if let Some(sid) = &b.snapshot_id {
        let _ = crate::api::snapshots::transition(&db.write, sid, &[ss::BACKING_UP], ss::AVAILABLE).await;
        return;
    }
    let Ok(Some(v)) = crate::store::volumes::get(&db.read, &b.volume_id).await else { return };
    if v.status != vs::BACKING_UP {
        return;
    }
    let back = match v.previous_status.as_deref() {
        Some(p) if p != vs::BACKING_UP => p.to_string(),
        _ if v.attach_status == crate::model::attach_status::ATTACHED => vs::IN_USE.to_string(),
        _ => vs::AVAILABLE.to_string(),
    };
    let _ = volume::Entity::update_many()
        .col_expr(volume::Column::Status, Expr::value(back))
        .col_expr(volume::Column::PreviousStatus, Expr::value(Option::<String>::None))
        .col_expr(volume::Column::UpdatedAt, Expr::value(now))
        .filter(volume::Column::Id.eq(v.id.as_str()))
        .filter(volume::Column::Status.eq(vs::BACKING_UP))
        .exec(&db.write)
        .await;
}

/// A backup that could not be made: `error` with the reason, and its volume
/// (or snapshot) back to what it was.
pub async fn fail_backup(db: &Db, backup_id: &str, reason: &str) {
    let reason: String = reason.chars().take(255).collect();
    let _ = backup::Entity::update_many()
        .col_expr(backup::Column::Status, Expr::value(bs::ERROR))
        .col_expr(backup::Column::FailReason, Expr::value(reason))
        .col_expr(backup::Column::UpdatedAt, Expr::value(crate::api::now()))
        .filter(backup::Column::Id.eq(backup_id))
        .filter(backup::Column::Status.eq(bs::CREATING))
        .exec(&db.write)
        .await;
    if let Ok(Some(b)) = get_backup(db, backup_id).await {
        release_source(db, &b).await;
    }
}

async fn create_backup(host: &VolumeHost, backup_id: &str) {
    let root = host.cfg.backups_dir();
    let part = root.join(format!(".{backup_id}.part"));
    let r = make_backup(host, backup_id, &root, &part).await;
    let _ = tokio::fs::remove_dir_all(&part).await;
    match r {
        Ok(b) => {
            release_source(&host.db, &b).await;
        }
        Err(e) => {
            tracing::warn!(backup = %backup_id, error = %format!("{e:#}"), "backup failed");
            if let Ok(d) = backup_dir(&root, backup_id) {
                // only when the row no longer claims it (never a finished backup's data)
                if let Ok(Some(b)) = get_backup(&host.db, backup_id).await
                    && b.status != bs::AVAILABLE
                {
                    let _ = tokio::fs::remove_dir_all(&d).await;
                }
            }
            fail_backup(&host.db, backup_id, &format!("{e:#}")).await;
        }
    }
}

/// Copy the volume (or snapshot) into `part`, move it into place, mark the
/// backup available; the backup row.
async fn make_backup(host: &VolumeHost, backup_id: &str, root: &Path, part: &Path) -> anyhow::Result<backup::Model> {
    let b = get_backup(&host.db, backup_id).await?.context("backup is gone")?;
    if b.status != bs::CREATING {
        bail!("backup is {}, not creating", b.status);
    }
    let location = match &b.snapshot_id {
        Some(sid) => snapshot::Entity::find_by_id(sid.clone())
            .one(&host.db.read)
            .await?
            .and_then(|s| s.provider_location)
            .with_context(|| format!("snapshot {sid} has no data"))?,
        None => crate::store::volumes::get(&host.db.read, &b.volume_id)
            .await
            .map_err(any)?
            .and_then(|v| v.provider_location)
            .context("volume has no data")?,
    };
    let parent = match &b.parent_id {
        Some(p) => Some(read_manifest(root, p).await.context("cannot read the parent backup")?),
        None => None,
    };
    let (raw, is_copy) = host.driver.raw_view(&location).await?;
    let r = write_chunks(&raw, part, backup_id, parent).await;
    if is_copy {
        let _ = tokio::fs::remove_file(&raw).await;
    }
    let (manifest, written) = r?;
    let text = serde_json::to_vec(&manifest)?;
    let mpath = part.join(MANIFEST);
    tokio::fs::write(&mpath, &text).await?;
    tokio::fs::File::open(&mpath).await?.sync_all().await?;
    // the directory's entries (chunk files, manifest) too
    tokio::fs::File::open(part).await?.sync_all().await?;
    let dir = backup_dir(root, backup_id)?;
    tokio::fs::rename(part, &dir).await.with_context(|| format!("cannot move the backup to {}", dir.display()))?;

    let mut meta = b.service_metadata.as_deref().map(crate::api::json_object).unwrap_or_default();
    meta.insert("chunk_size".into(), Value::from(CHUNK));
    meta.insert("chunks".into(), Value::from(manifest.chunks.len()));
    let done = backup::Entity::update_many()
        .col_expr(backup::Column::Status, Expr::value(bs::AVAILABLE))
        .col_expr(backup::Column::ObjectCount, Expr::value(written as i64))
        .col_expr(backup::Column::ServiceMetadata, Expr::value(Value::Object(meta).to_string()))
        .col_expr(backup::Column::UpdatedAt, Expr::value(crate::api::now()))
        .filter(backup::Column::Id.eq(backup_id))
        .filter(backup::Column::Status.eq(bs::CREATING))
        .exec(&host.db.write)
        .await?;
    if done.rows_affected != 1 {
        let _ = tokio::fs::remove_dir_all(&dir).await;
        bail!("backup deleted while being made");
    }
    Ok(b)
}

/// Read `raw` chunk by chunk into `part`; the manifest and how many chunk files were written.
async fn write_chunks(
    raw: &Path,
    part: &Path,
    backup_id: &str,
    parent: Option<Manifest>,
) -> anyhow::Result<(Manifest, usize)> {
    let _ = tokio::fs::remove_dir_all(part).await;
    tokio::fs::create_dir_all(part).await.with_context(|| format!("cannot create {}", part.display()))?;
    let file = Arc::new(std::fs::File::open(raw).with_context(|| format!("cannot open {}", raw.display()))?);
    let size = file.metadata()?.len();
    let count = size.div_ceil(CHUNK) as usize;
    let parent = Arc::new(parent);
    let results: Vec<anyhow::Result<(Chunk, bool)>> = futures::stream::iter(0..count)
        .map(|i| {
            let (file, parent, part) = (file.clone(), parent.clone(), part.to_path_buf());
            let backup_id = backup_id.to_string();
            async move {
                tokio::task::spawn_blocking(move || {
                    use std::os::unix::fs::FileExt;
                    let off = i as u64 * CHUNK;
                    let len = CHUNK.min(size - off) as usize;
                    let mut buf = vec![0u8; len];
                    file.read_exact_at(&mut buf, off)?;
                    if is_zero(&buf) {
                        return Ok((Chunk::default(), false));
                    }
                    let hash = hex(&Sha256::digest(&buf));
                    if let Some(p) = parent.as_ref()
                        && p.chunk_size == CHUNK
                        && let Some(pc) = p.chunks.get(i)
                        && pc.sha256.as_deref() == Some(hash.as_str())
                        && pc.stored_in.is_some()
                    {
                        return Ok((pc.clone(), false));
                    }
                    // durable before the backup can be called available
                    let mut f = std::fs::File::create(part.join(chunk_name(i)))?;
                    std::io::Write::write_all(&mut f, &buf)?;
                    f.sync_data()?;
                    Ok((Chunk { sha256: Some(hash), stored_in: Some(backup_id) }, true))
                })
                .await
                .map_err(|e| anyhow::anyhow!("chunk task failed: {e}"))?
            }
        })
        .buffered(PARALLEL)
        .collect()
        .await;
    let mut chunks = Vec::with_capacity(count);
    let mut written = 0;
    for r in results {
        let (c, w) = r?;
        written += usize::from(w);
        chunks.push(c);
    }
    let parent_id = parent.as_ref().as_ref().map(|p| p.backup_id.clone());
    Ok((Manifest { version: 1, backup_id: backup_id.to_string(), parent_id, chunk_size: CHUNK, size, chunks }, written))
}

/// Write backup `b`'s data into the volume at `location` (its raw target;
/// what was there before is dropped).
async fn write_into(host: &VolumeHost, backup_id: &str, location: &str) -> anyhow::Result<()> {
    let root = host.cfg.backups_dir();
    let m = read_manifest(&root, backup_id).await?;
    let target = host.driver.raw_target(location).await?;
    let len = match tokio::fs::metadata(&target).await {
        Ok(md) => md.len(),
        Err(_) => crate::driver::virtual_size(Path::new(location)).await?,
    };
    if m.size > len {
        bail!("the volume ({len} bytes) is smaller than the backup ({} bytes)", m.size);
    }
    let r = async {
        let t = target.clone();
        let file = tokio::task::spawn_blocking(move || -> anyhow::Result<std::fs::File> {
            let f = std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(&t)?;
            // every byte a hole first: zero chunks need no write
            f.set_len(0)?;
            f.set_len(len)?;
            Ok(f)
        })
        .await??;
        let file = Arc::new(file);
        let mut sources = Vec::new();
        for (i, c) in m.chunks.iter().enumerate() {
            if let (Some(hash), Some(dir)) = (&c.sha256, &c.stored_in) {
                sources.push((i, hash.clone(), backup_dir(&root, dir)?.join(chunk_name(i))));
            }
        }
        let chunk_size = m.chunk_size;
        let results: Vec<anyhow::Result<()>> = futures::stream::iter(sources)
            .map(|(i, hash, path)| {
                let file = file.clone();
                async move {
                    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                        use std::os::unix::fs::FileExt;
                        let buf = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
                        if hex(&Sha256::digest(&buf)) != hash {
                            bail!("chunk {i} is damaged (hash mismatch)");
                        }
                        file.write_all_at(&buf, i as u64 * chunk_size)?;
                        Ok(())
                    })
                    .await
                    .map_err(|e| anyhow::anyhow!("chunk task failed: {e}"))?
                }
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        for r in results {
            r?;
        }
        let f = file.clone();
        tokio::task::spawn_blocking(move || f.sync_all()).await??;
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = r {
        if target != Path::new(location) {
            let _ = tokio::fs::remove_file(&target).await;
        }
        return Err(e);
    }
    host.driver.finish_raw_write(location, &target).await
}

/// The backup is no longer being restored.
async fn restore_done(db: &Db, backup_id: &str) {
    let _ = backup::Entity::update_many()
        .col_expr(backup::Column::Status, Expr::value(bs::AVAILABLE))
        .col_expr(backup::Column::RestoreVolumeId, Expr::value(Option::<String>::None))
        .col_expr(backup::Column::UpdatedAt, Expr::value(crate::api::now()))
        .filter(backup::Column::Id.eq(backup_id))
        .filter(backup::Column::Status.eq(bs::RESTORING))
        .exec(&db.write)
        .await;
}

/// Restore into an existing volume (`restoring-backup`): its data, then its
/// metadata and bootable flag as the backup recorded them.
async fn restore_backup(host: &VolumeHost, m: &RestoreBackup) {
    let r = async {
        let b = get_backup(&host.db, &m.backup_id).await?.context("backup is gone")?;
        let v =
            crate::store::volumes::get(&host.db.read, &m.volume_id).await.map_err(any)?.context("volume is gone")?;
        let loc = v.provider_location.clone().context("volume has no data")?;
        write_into(host, &b.id, &loc).await?;
        let src = crate::api::backups::source_volume(&b);
        let mut meta = crate::store::volumes::json_map(&v.metadata);
        if let Some(Value::Object(bm)) = src.get("metadata") {
            meta.extend(bm.clone());
        }
        let bootable = src.get("bootable").and_then(Value::as_bool).unwrap_or(v.bootable);
        let r = volume::Entity::update_many()
            .col_expr(volume::Column::Status, Expr::value(vs::AVAILABLE))
            .col_expr(volume::Column::Metadata, Expr::value(Value::Object(meta).to_string()))
            .col_expr(volume::Column::Bootable, Expr::value(bootable))
            .col_expr(volume::Column::UpdatedAt, Expr::value(crate::api::now()))
            .filter(volume::Column::Id.eq(v.id.as_str()))
            .filter(volume::Column::Status.eq(vs::RESTORING_BACKUP))
            .exec(&host.db.write)
            .await?;
        if r.rows_affected != 1 {
            bail!("volume status changed while restoring");
        }
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = r {
        tracing::warn!(backup = %m.backup_id, volume = %m.volume_id, error = %format!("{e:#}"), "restore failed");
        let _ =
            crate::store::volumes::transition(&host.db.write, &m.volume_id, &[vs::RESTORING_BACKUP], "error_restoring")
                .await;
    }
    restore_done(&host.db, &m.backup_id).await;
}

async fn delete_backup(host: &VolumeHost, backup_id: &str) {
    let r = async {
        let Some(b) = get_backup(&host.db, backup_id).await? else { return anyhow::Ok(()) };
        let dir = backup_dir(&host.cfg.backups_dir(), &b.id)?;
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", dir.display())),
        }
        backup::Entity::delete_by_id(b.id.clone()).exec(&host.db.write).await?;
        // a forced delete of a backup being made: its volume is free again
        // (unless another backup of it is under way)
        let busy = backup::Entity::find()
            .filter(backup::Column::VolumeId.eq(b.volume_id.as_str()))
            .filter(backup::Column::Status.eq(bs::CREATING))
            .one(&host.db.read)
            .await?;
        if busy.is_none() {
            release_source(&host.db, &b).await;
        }
        Ok(())
    }
    .await;
    if let Err(e) = r {
        tracing::warn!(backup = %backup_id, error = %format!("{e:#}"), "backup delete failed");
        let _ = crate::api::backups::transition(&host.db.write, backup_id, &[], bs::ERROR_DELETING).await;
    }
}

/// Write the backup `backup_id` into the volume file at `location` (a new volume made from a backup).
pub async fn restore_into(host: &VolumeHost, backup_id: &str, location: &str) -> anyhow::Result<()> {
    let r = write_into(host, backup_id, location).await;
    restore_done(&host.db, backup_id).await;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_detection() {
        assert!(is_zero(&[0u8; 1000]));
        let mut b = vec![0u8; 1000];
        b[999] = 1;
        assert!(!is_zero(&b));
        b[999] = 0;
        b[3] = 7;
        assert!(!is_zero(&b));
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
