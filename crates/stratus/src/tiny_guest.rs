//! The tiny test guest (`scripts/tiny-guest/build`: a kernel and an
//! initramfs that boots in a second or two) as images of a fresh cloud, so
//! `openstack server create --image tiny` boots a real guest on the QEMU
//! driver: `tiny-kernel` (aki), `tiny-ramdisk` (ari) and `tiny`, a 1 MiB raw
//! disk whose `kernel_id`, `ramdisk_id` and `os_command_line` boot them.
//! Registered once, through the image API as the service user: an image
//! named `tiny` already there is left alone.

use std::path::Path;

use serde_json::{Value, json};
use stratus_compute::roles::Shared;

pub const NAME: &str = "tiny";
pub const COMMAND_LINE: &str = "console=ttyS0 quiet mitigations=off cryptomgr.notests";
const DISK_BYTES: usize = 1 << 20;

/// Register the tiny guest from `dir` (`vmlinuz`, `initrd.gz`) unless an
/// image named `tiny` exists. Gives the new `tiny` image's id (None: there already).
pub async fn register(shared: &Shared, dir: &Path, data_dir: &Path) -> anyhow::Result<Option<String>> {
    let token = (shared.tokens)().await?;
    if !named(shared, &token, NAME).await?.is_empty() {
        return Ok(None);
    }
    let kernel = ensure(shared, &token, "tiny-kernel", "aki", &dir.join("vmlinuz"), json!({})).await?;
    let ramdisk = ensure(shared, &token, "tiny-ramdisk", "ari", &dir.join("initrd.gz"), json!({})).await?;
    let tmp = data_dir.join("tmp");
    tokio::fs::create_dir_all(&tmp).await?;
    let disk = tmp.join(format!("tiny-disk-{}-{:08x}", std::process::id(), rand::random::<u32>()));
    tokio::fs::write(&disk, vec![0u8; DISK_BYTES]).await?;
    let props = json!({"kernel_id": kernel, "ramdisk_id": ramdisk, "os_command_line": COMMAND_LINE});
    let made = create(shared, &token, NAME, "raw", "bare", &disk, props).await;
    let _ = tokio::fs::remove_file(&disk).await;
    made.map(Some)
}

/// The ids of the images named `name`.
async fn named(shared: &Shared, token: &str, name: &str) -> anyhow::Result<Vec<(String, String)>> {
    let found = shared
        .images
        .list(&[("name".to_string(), name.to_string())], 100, token, None)
        .await
        .map_err(|e| anyhow::anyhow!("listing images named {name}: {e}"))?;
    Ok(found
        .iter()
        .filter_map(|i| Some((i["id"].as_str()?.to_string(), i["status"].as_str().unwrap_or("").to_string())))
        .collect())
}

/// An active image `name`: one there already (left from a run cut short), else a new one.
async fn ensure(
    shared: &Shared,
    token: &str,
    name: &str,
    format: &str,
    file: &Path,
    props: Value,
) -> anyhow::Result<String> {
    if let Some((id, _)) = named(shared, token, name).await?.into_iter().find(|(_, status)| status == "active") {
        return Ok(id);
    }
    create(shared, token, name, format, format, file, props).await
}

/// A new public image with `file`'s data; removed again when the upload fails.
async fn create(
    shared: &Shared,
    token: &str,
    name: &str,
    disk_format: &str,
    container_format: &str,
    file: &Path,
    props: Value,
) -> anyhow::Result<String> {
    let mut body = json!({"name": name, "disk_format": disk_format, "container_format": container_format,
        "visibility": "public"});
    if let (Some(b), Some(p)) = (body.as_object_mut(), props.as_object()) {
        b.extend(p.clone());
    }
    let img = shared.images.create(&body, token, None).await?;
    let id = img["id"].as_str().ok_or_else(|| anyhow::anyhow!("image {name}: created without an id"))?.to_string();
    if let Err(e) = shared.images.upload(&id, file, token).await {
        let _ = shared.images.delete(&id, token).await;
        return Err(e.context(format!("uploading {} as image {name}", file.display())));
    }
    Ok(id)
}
