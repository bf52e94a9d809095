//! Images a cloud starts with: files the operator names in `image.preload`
//! (a tiny test guest, say), registered as public images owned by the admin
//! project, once, by file name. Nothing is ever downloaded.

use std::path::Path;

use serde_json::Value;

use crate::api::data::{StoreFailure, location, store_stream};
use crate::entity::image;
use crate::store::images::{self, Image};
use crate::{ImageService, format};

/// Register `path` unless an image of that name is already owned by `owner`.
/// Returns the new image's id (None: already there).
pub async fn preload(svc: &ImageService, owner: &str, path: &Path) -> anyhow::Result<Option<String>> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("image").to_string();
    let f = crate::store::images::ListFilter {
        project: Some(owner.to_string()),
        is_admin: true,
        member_status: "accepted".into(),
        names: vec![name.clone()],
        owners: vec![owner.to_string()],
        ..Default::default()
    };
    if images::list(&svc.db, &f).await.map_err(|e| anyhow::anyhow!("{e}"))?.iter().any(|i| i.status == "active") {
        return Ok(None);
    }
    // the disk format is what the data is, as the inspector sees it
    let mut head = vec![0u8; format::HEAD_BYTES];
    let n = {
        use std::io::Read;
        let mut f = std::fs::File::open(path)?;
        let mut n = 0;
        while n < head.len() {
            let r = f.read(&mut head[n..])?;
            if r == 0 {
                break;
            }
            n += r;
        }
        n
    };
    head.truncate(n);
    let size = std::fs::metadata(path)?.len();
    let disk_format = match format::inspect(&head, &[], size).format {
        format::Format::Qcow2 => "qcow2",
        format::Format::Iso => "iso",
        format::Format::Vmdk => "vmdk",
        _ => "raw",
    };
    let now = crate::store::now_us();
    let id = uuid::Uuid::new_v4().to_string();
    let img = Image {
        id: id.clone(),
        name: Some(name),
        status: "saving".into(),
        visibility: "public".into(),
        protected: false,
        os_hidden: false,
        owner: Some(owner.to_string()),
        checksum: None,
        os_hash_algo: None,
        os_hash_value: None,
        size: None,
        virtual_size: None,
        disk_format: Some(disk_format.into()),
        container_format: Some("bare".into()),
        min_disk: 0,
        min_ram: 0,
        properties: "{}".into(),
        locations: "[]".into(),
        staging: None,
        deleted: false,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    images::insert(&svc.db, img, &[]).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let file = tokio::fs::File::open(path).await?;
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20);
    let store = svc.stores.default_store().clone();
    let stored = match store_stream(store.as_ref(), &id, Some(disk_format), stream, svc.cfg.image.image_size_cap).await
    {
        Ok(s) => s,
        Err(e) => {
            images::purge(&svc.db, &id).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            let why = match e {
                StoreFailure::Broken(m) => m,
                StoreFailure::Refused(e) => e.to_string(),
            };
            anyhow::bail!("{}: {why}", path.display());
        }
    };
    let sets = vec![
        (image::Column::Checksum, Some(stored.digests.md5.clone()).into()),
        (image::Column::OsHashAlgo, Some("sha512".to_string()).into()),
        (image::Column::OsHashValue, Some(stored.digests.sha512.clone()).into()),
        (image::Column::Size, Some(stored.digests.size as i64).into()),
        (image::Column::VirtualSize, stored.virtual_size.map(|v| v as i64).into()),
        (image::Column::Locations, Value::Array(vec![location(&stored.url, store.id())]).to_string().into()),
    ];
    images::transition(&svc.db, &id, &["saving"], "active", sets).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Some(id))
}
