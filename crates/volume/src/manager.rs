//! The volume host: serves `volume.<host>.*`, drives its backend, and
//! reports its pools (the `cinder-volume` service record) and its backup
//! service (`cinder-backup`) alive.
//!
//! Every operation ends in a status: a failure leaves the resource in its
//! error state and removes any file half made.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};
use stratus_bus::{Bus, RemoteError, handler};
use stratus_core::Config;
use stratus_db::Db;

use crate::driver::Driver;
use crate::entity::{snapshot, volume};
use crate::model::{snapshot_status as ss, volume_status as vs};
use crate::rpc::{
    self, CreateSnapshot, CreateVolume, DeleteSnapshot, DeleteVolume, ExtendVolume, InitializeConnection, UploadImage,
};
use crate::{TokenSource, store};

/// A volume host and what it drives.
pub struct VolumeHost {
    /// The host name (`volume.<host>.*` topics).
    pub host: String,
    pub db: Db,
    pub cfg: Config,
    pub bus: Bus,
    pub driver: Arc<dyn Driver>,
    /// The image service and a service token (volumes from images, uploads).
    pub images: Option<(Arc<stratus_clients::ImageClient>, TokenSource)>,
    /// The heartbeat and consumer tasks, stopped when the host is dropped.
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Drop for VolumeHost {
    fn drop(&mut self) {
        if let Ok(t) = self.tasks.lock() {
            for h in t.iter() {
                h.abort();
            }
        }
    }
}

fn remote(e: impl std::fmt::Display) -> RemoteError {
    RemoteError::new("VolumeHostError", e.to_string())
}

fn any(e: crate::error::VolumeError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

impl VolumeHost {
    /// Start serving `host`: report once (so the scheduler sees it at
    /// once), then serve its topics and report every `report_interval`.
    pub async fn start(
        db: Db,
        cfg: Config,
        bus: Bus,
        host: &str,
        driver: Arc<dyn Driver>,
        images: Option<(Arc<stratus_clients::ImageClient>, TokenSource)>,
    ) -> anyhow::Result<Arc<VolumeHost>> {
        let me = Arc::new(VolumeHost {
            host: host.to_string(),
            db,
            cfg,
            bus,
            driver,
            images,
            tasks: std::sync::Mutex::new(Vec::new()),
        });
        me.report().await?;
        let mut tasks = me.serve().await?;
        tasks.extend(crate::backup::serve(&me).await?);
        let weak = Arc::downgrade(&me);
        let every = std::time::Duration::from_secs(me.cfg.volume.report_interval.max(1));
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(me) = weak.upgrade() else { return };
                if let Err(e) = me.report().await {
                    tracing::warn!(host = %me.host, error = %e, "volume host report failed");
                }
            }
        }));
        if let Ok(mut t) = me.tasks.lock() {
            t.extend(tasks);
        }
        tracing::info!(host = %me.host, driver = me.driver.name(), "volume host up");
        Ok(me)
    }

    /// `host@backend`, the name of this host's `cinder-volume` service.
    pub fn service_host(&self) -> String {
        format!("{}@{}", self.host, self.driver.backend_name())
    }

    /// Report the pools (capacity less what this host's volumes claim) and the backup service.
    pub async fn report(&self) -> anyhow::Result<()> {
        let claimed = store::volumes::allocated_gb(&self.db.read, &self.host).await.map_err(any)?;
        let pools = self.driver.pools(claimed).await?;
        let zone = &self.cfg.volume.availability_zone;
        store::services::heartbeat(&self.db.write, &self.service_host(), "cinder-volume", zone, &pools)
            .await
            .map_err(any)?;
        store::services::heartbeat(&self.db.write, &self.host, "cinder-backup", zone, &[]).await.map_err(any)?;
        Ok(())
    }

    async fn serve(self: &Arc<Self>) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
        let mut tasks = Vec::new();
        let topic = |op: &str| rpc::host_topic(&self.host, op);
        // casts: each runs on its own task, so one slow copy never holds the others
        macro_rules! cast_handler {
            ($op:expr, $ty:ty, $method:ident) => {{
                let me = self.clone();
                tasks.push(
                    self.bus
                        .serve(
                            &topic($op),
                            handler(move |m: $ty, _| {
                                let me = me.clone();
                                async move {
                                    tokio::spawn(async move { me.$method(m).await });
                                    Ok::<_, RemoteError>(())
                                }
                            }),
                        )
                        .await?,
                );
            }};
        }
        cast_handler!("create", CreateVolume, create_volume);
        cast_handler!("delete", DeleteVolume, delete_volume);
        cast_handler!("extend", ExtendVolume, extend_volume);
        cast_handler!("snapshot", CreateSnapshot, create_snapshot);
        cast_handler!("delete_snapshot", DeleteSnapshot, delete_snapshot);
        cast_handler!("upload_image", UploadImage, upload_image);
        let me = self.clone();
        tasks.push(
            self.bus
                .serve(
                    &topic("connection"),
                    handler(move |m: InitializeConnection, _| {
                        let me = me.clone();
                        async move { me.connection(&m).await.map_err(remote) }
                    }),
                )
                .await?,
        );
        Ok(tasks)
    }

    async fn volume(&self, id: &str) -> anyhow::Result<Option<volume::Model>> {
        store::volumes::get(&self.db.read, id).await.map_err(any)
    }

    async fn create_volume(self: Arc<Self>, m: CreateVolume) {
        match self.make_volume(&m).await {
            Ok(location) => {
                // the volume may have been deleted meanwhile: then the file goes too
                let done = async {
                    let Some(mut v) = self.volume(&m.volume_id).await? else {
                        anyhow::bail!("deleted while being created");
                    };
                    if v.status != vs::CREATING {
                        anyhow::bail!("status changed to {} while being created", v.status);
                    }
                    v.provider_location = Some(location.clone());
                    v.status = vs::AVAILABLE.into();
                    v.launched_at = Some(crate::api::now());
                    v.updated_at = v.launched_at.clone();
                    store::volumes::save(&self.db.write, &v).await.map_err(any)
                }
                .await;
                if let Err(e) = done {
                    tracing::warn!(volume = %m.volume_id, error = %e, "volume made but not kept");
                    let _ = self.driver.delete(&location).await;
                }
            }
            Err(e) => {
                tracing::warn!(volume = %m.volume_id, error = %format!("{e:#}"), "volume create failed");
                let _ = store::volumes::transition(&self.db.write, &m.volume_id, &[vs::CREATING], vs::ERROR).await;
            }
        }
    }

    /// Make the volume's file from its source; its location.
    async fn make_volume(&self, m: &CreateVolume) -> anyhow::Result<String> {
        let s = &m.source;
        if let Some(sid) = &s.snapshot_id {
            let snap = <snapshot::Entity as sea_orm::EntityTrait>::find_by_id(sid.clone())
                .one(&self.db.read)
                .await?
                .ok_or_else(|| anyhow::anyhow!("snapshot {sid} is gone"))?;
            let loc = snap.provider_location.ok_or_else(|| anyhow::anyhow!("snapshot {sid} has no data"))?;
            return self.driver.copy_from(&m.volume_id, m.size, &loc).await;
        }
        if let Some(vid) = &s.source_volid {
            let src = self.volume(vid).await?.ok_or_else(|| anyhow::anyhow!("source volume {vid} is gone"))?;
            let loc = src.provider_location.ok_or_else(|| anyhow::anyhow!("source volume {vid} has no data"))?;
            return self.driver.copy_from(&m.volume_id, m.size, &loc).await;
        }
        if let Some(image_id) = &s.image_id {
            let (images, tokens) =
                self.images.as_ref().ok_or_else(|| anyhow::anyhow!("no image service configured"))?;
            let token = tokens().await?;
            let image = match images.get(image_id, &token, None).await? {
                stratus_clients::image::ImageLookup::Found(v) => v,
                _ => anyhow::bail!("image {image_id} not found"),
            };
            let format = image.get("disk_format").and_then(Value::as_str).unwrap_or("raw").to_string();
            let tmp = self.scratch(&format!("image-{}", m.volume_id));
            let r = async {
                images.download(image_id, &tmp, &token, None).await?;
                // qemu-img reads these formats itself; anything else is taken as raw bytes
                let fmt = match format.as_str() {
                    "vhd" => "vpc",
                    "qcow2" | "vmdk" | "vdi" | "vhdx" | "raw" => format.as_str(),
                    _ => "raw",
                };
                self.driver.create_from_file(&m.volume_id, m.size, &tmp, fmt).await
            }
            .await;
            let _ = tokio::fs::remove_file(&tmp).await;
            return r;
        }
        if let Some(bid) = &s.backup_id {
            let loc = self.driver.create(&m.volume_id, m.size).await?;
            if let Err(e) = crate::backup::restore_into(self, bid, &loc).await {
                let _ = self.driver.delete(&loc).await;
                return Err(e);
            }
            return Ok(loc);
        }
        self.driver.create(&m.volume_id, m.size).await
    }

    /// A scratch file path on the volume host (image downloads, conversions).
    pub fn scratch(&self, name: &str) -> PathBuf {
        let dir = self.cfg.volumes_dir().join(".scratch");
        let _ = std::fs::create_dir_all(&dir);
        dir.join(format!("{name}-{}", uuid::Uuid::new_v4()))
    }

    async fn delete_volume(self: Arc<Self>, m: DeleteVolume) {
        let r = async {
            let Some(v) = self.volume(&m.volume_id).await? else { return anyhow::Ok(()) };
            use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
            let snaps = snapshot::Entity::find()
                .filter(snapshot::Column::VolumeId.eq(v.id.as_str()))
                .all(&self.db.read)
                .await?;
            if !snaps.is_empty() && !m.cascade {
                anyhow::bail!("volume has snapshots");
            }
            for s in snaps {
                if let Some(loc) = &s.provider_location {
                    self.driver.delete(loc).await?;
                }
                snapshot::Entity::delete_by_id(s.id.clone()).exec(&self.db.write).await?;
            }
            if let Some(loc) = &v.provider_location {
                self.driver.delete(loc).await?;
            }
            crate::entity::attachment::Entity::delete_many()
                .filter(crate::entity::attachment::Column::VolumeId.eq(v.id.as_str()))
                .exec(&self.db.write)
                .await?;
            store::volumes::delete(&self.db.write, &v.id).await.map_err(any)?;
            Ok(())
        }
        .await;
        if let Err(e) = r {
            tracing::warn!(volume = %m.volume_id, error = %e, "volume delete failed");
            let _ = store::volumes::set_status(&self.db.write, &m.volume_id, vs::ERROR_DELETING).await;
        }
    }

    async fn extend_volume(self: Arc<Self>, m: ExtendVolume) {
        let r = async {
            let mut v = self.volume(&m.volume_id).await?.ok_or_else(|| anyhow::anyhow!("volume is gone"))?;
            let loc = v.provider_location.clone().ok_or_else(|| anyhow::anyhow!("volume has no data"))?;
            self.driver.extend(&loc, m.new_size).await?;
            v.size = m.new_size;
            v.status =
                if v.attach_status == crate::model::attach_status::ATTACHED { vs::IN_USE } else { vs::AVAILABLE }
                    .into();
            v.updated_at = Some(crate::api::now());
            store::volumes::save(&self.db.write, &v).await.map_err(any)
        }
        .await;
        if let Err(e) = r {
            tracing::warn!(volume = %m.volume_id, error = %e, "volume extend failed");
            let _ = store::volumes::set_status(&self.db.write, &m.volume_id, vs::ERROR_EXTENDING).await;
        }
    }

    async fn connection(&self, m: &InitializeConnection) -> anyhow::Result<Value> {
        let v = self.volume(&m.volume_id).await?.ok_or_else(|| anyhow::anyhow!("volume {} is gone", m.volume_id))?;
        let loc = v.provider_location.ok_or_else(|| anyhow::anyhow!("volume {} has no data", m.volume_id))?;
        let mut info = self.driver.connection_info(&loc, &m.connector).await?;
        if let Some(d) = info.get_mut("data").and_then(Value::as_object_mut) {
            d.insert("volume_id".into(), json!(v.id));
            d.insert("encrypted".into(), json!(v.encrypted));
            d.insert("qos_specs".into(), Value::Null);
        }
        Ok(info)
    }

    async fn create_snapshot(self: Arc<Self>, m: CreateSnapshot) {
        use sea_orm::sea_query::Expr;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let r = async {
            let v = self.volume(&m.volume_id).await?.ok_or_else(|| anyhow::anyhow!("volume is gone"))?;
            let loc = v.provider_location.ok_or_else(|| anyhow::anyhow!("volume has no data"))?;
            let snap_loc = self.driver.snapshot(&m.snapshot_id, &loc).await?;
            let r = snapshot::Entity::update_many()
                .col_expr(snapshot::Column::ProviderLocation, Expr::value(snap_loc.clone()))
                .col_expr(snapshot::Column::Status, Expr::value(ss::AVAILABLE))
                .col_expr(snapshot::Column::Progress, Expr::value("100%"))
                .col_expr(snapshot::Column::UpdatedAt, Expr::value(crate::api::now()))
                .filter(snapshot::Column::Id.eq(m.snapshot_id.as_str()))
                .filter(snapshot::Column::Status.eq(ss::CREATING))
                .exec(&self.db.write)
                .await?;
            if r.rows_affected != 1 {
                let _ = self.driver.delete(&snap_loc).await;
                anyhow::bail!("snapshot deleted while being taken");
            }
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = r {
            tracing::warn!(snapshot = %m.snapshot_id, error = %e, "snapshot failed");
            let _ = snapshot::Entity::update_many()
                .col_expr(snapshot::Column::Status, Expr::value(ss::ERROR))
                .filter(snapshot::Column::Id.eq(m.snapshot_id.as_str()))
                .filter(snapshot::Column::Status.eq(ss::CREATING))
                .exec(&self.db.write)
                .await;
        }
    }

    async fn delete_snapshot(self: Arc<Self>, m: DeleteSnapshot) {
        use sea_orm::sea_query::Expr;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let r = async {
            let Some(s) = snapshot::Entity::find_by_id(m.snapshot_id.clone()).one(&self.db.read).await? else {
                return anyhow::Ok(());
            };
            if let Some(loc) = &s.provider_location {
                self.driver.delete(loc).await?;
            }
            snapshot::Entity::delete_by_id(s.id).exec(&self.db.write).await?;
            Ok(())
        }
        .await;
        if let Err(e) = r {
            tracing::warn!(snapshot = %m.snapshot_id, error = %e, "snapshot delete failed");
            let _ = snapshot::Entity::update_many()
                .col_expr(snapshot::Column::Status, Expr::value(ss::ERROR_DELETING))
                .filter(snapshot::Column::Id.eq(m.snapshot_id.as_str()))
                .exec(&self.db.write)
                .await;
        }
    }

    async fn upload_image(self: Arc<Self>, m: UploadImage) {
        let r = async {
            let v = self.volume(&m.volume_id).await?.ok_or_else(|| anyhow::anyhow!("volume is gone"))?;
            let loc = v.provider_location.clone().ok_or_else(|| anyhow::anyhow!("volume has no data"))?;
            let (images, _) = self.images.as_ref().ok_or_else(|| anyhow::anyhow!("no image service configured"))?;
            let (raw, is_copy) = self.driver.raw_view(&loc).await?;
            let r = async {
                if m.disk_format == "raw" || m.disk_format.is_empty() {
                    images.upload(&m.image_id, &raw, &m.token).await
                } else {
                    let out = self.scratch(&format!("upload-{}", m.image_id));
                    let fmt = if m.disk_format == "vhd" { "vpc" } else { m.disk_format.as_str() };
                    let r = async {
                        crate::driver::qemu_img(&[
                            "convert",
                            "-q",
                            "-U",
                            "-f",
                            "raw",
                            "-O",
                            fmt,
                            &raw.to_string_lossy(),
                            &out.to_string_lossy(),
                        ])
                        .await?;
                        images.upload(&m.image_id, &out, &m.token).await
                    }
                    .await;
                    let _ = tokio::fs::remove_file(&out).await;
                    r
                }
            }
            .await;
            if is_copy {
                let _ = tokio::fs::remove_file(&raw).await;
            }
            r
        }
        .await;
        if let Err(e) = &r {
            tracing::warn!(volume = %m.volume_id, image = %m.image_id, error = %e, "upload to image failed");
            if let Some((images, _)) = &self.images {
                let _ = images.delete(&m.image_id, &m.token).await;
            }
        }
        // the volume goes back to what it was before the upload
        if let Ok(Some(v)) = self.volume(&m.volume_id).await {
            let back =
                if v.attach_status == crate::model::attach_status::ATTACHED { vs::IN_USE } else { vs::AVAILABLE };
            let _ = store::volumes::transition(&self.db.write, &m.volume_id, &[vs::UPLOADING], back).await;
        }
    }
}
