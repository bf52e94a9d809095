//! The images a compute host's guests boot from, kept on the host (Nova's
//! image cache under `instances/_base`): each image is downloaded from the
//! image service once, into `<image_cache_dir>/<image id>`, with its record
//! beside it (`<image id>.json`), so a later boot, rebuild or resize on this
//! host needs neither the network nor the image to still exist.
//!
//! A download goes to a temporary name and is renamed into place once its
//! size and hash match the record, so a half-written file is never booted.
//! Concurrent boots of one image wait for the one download (one async mutex
//! per image id).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

use crate::placement::TokenSource;

/// Where image records and data come from.
#[async_trait::async_trait]
pub trait ImageSource: Send + Sync {
    /// The image's record (`GET /v2/images/{id}`).
    async fn show(&self, id: &str) -> anyhow::Result<Value>;
    /// Write the image's data to `dest`; gives the bytes written.
    async fn download(&self, id: &str, dest: &Path) -> anyhow::Result<u64>;
}

/// The image service, as the compute host's service user.
pub struct ImageServiceSource {
    pub images: Arc<stratus_clients::ImageClient>,
    pub tokens: TokenSource,
}

#[async_trait::async_trait]
impl ImageSource for ImageServiceSource {
    async fn show(&self, id: &str) -> anyhow::Result<Value> {
        let token = (self.tokens)().await?;
        self.images.show(id, &token, None).await.map_err(|e| anyhow::anyhow!("image {id}: {e}"))
    }

    async fn download(&self, id: &str, dest: &Path) -> anyhow::Result<u64> {
        let token = (self.tokens)().await?;
        self.images.download(id, dest, &token, None).await
    }
}

/// An image on this host.
#[derive(Clone, Debug)]
pub struct CachedImage {
    pub id: String,
    pub path: PathBuf,
    /// Its record in the image service when it was downloaded.
    pub record: Value,
}

impl CachedImage {
    pub fn disk_format(&self) -> Option<String> {
        self.record["disk_format"].as_str().map(str::to_string)
    }

    /// An image property (`kernel_id`, `ramdisk_id`, ...), when set and not empty.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.record.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
    }
}

/// What a guest boots from: its image and, when the image names them, a
/// kernel and ramdisk to boot directly.
#[derive(Clone, Debug)]
pub struct BootImages {
    pub image: CachedImage,
    pub kernel: Option<CachedImage>,
    pub ramdisk: Option<CachedImage>,
}

/// A host's image cache.
pub struct ImageCache {
    dir: PathBuf,
    source: Arc<dyn ImageSource>,
    /// One lock per image id: a boot waits for another's download of the same image.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl ImageCache {
    pub fn new(dir: PathBuf, source: Arc<dyn ImageSource>) -> ImageCache {
        ImageCache { dir, source, locks: Mutex::new(HashMap::new()) }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock_of(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.entry(id.to_string()).or_default().clone()
    }

    /// The image on this host, downloaded first when it is not here yet.
    pub async fn fetch(&self, id: &str) -> anyhow::Result<CachedImage> {
        // the id names files: only what an image id can be
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            anyhow::bail!("invalid image id {id:?}");
        }
        let lock = self.lock_of(id);
        let _held = lock.lock().await;
        let path = self.dir.join(id);
        let meta = self.dir.join(format!("{id}.json"));
        if let Some(record) = cached_record(&path, &meta).await {
            return Ok(CachedImage { id: id.to_string(), path, record });
        }
        let record = self.source.show(id).await?;
        let status = record["status"].as_str().unwrap_or("");
        if status != "active" {
            anyhow::bail!("image {id} is {status}, not active: it cannot be booted");
        }
        tokio::fs::create_dir_all(&self.dir).await?;
        let part = self.dir.join(format!(".{id}.{}.part", uuid::Uuid::new_v4().simple()));
        let res = async {
            let started = std::time::Instant::now();
            let n = self.source.download(id, &part).await?;
            check(&record, &part, n).await?;
            // the record first: data without its record is fetched again, never booted half-described
            let meta_part = part.with_extension("json");
            tokio::fs::write(&meta_part, serde_json::to_vec(&record)?).await?;
            tokio::fs::rename(&meta_part, &meta).await?;
            tokio::fs::rename(&part, &path).await?;
            tracing::info!(image = %id, bytes = n, dir = %self.dir.display(),
                seconds = started.elapsed().as_secs_f64(), "image downloaded to the host's cache");
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = res {
            let _ = tokio::fs::remove_file(&part).await;
            let _ = tokio::fs::remove_file(part.with_extension("json")).await;
            return Err(e.context(format!("downloading image {id}")));
        }
        Ok(CachedImage { id: id.to_string(), path, record })
    }

    /// The image and its `kernel_id` / `ramdisk_id` images, all on this host.
    pub async fn boot_images(&self, id: &str) -> anyhow::Result<BootImages> {
        let image = self.fetch(id).await?;
        let fetch_opt = |key: &str| {
            let other = image.property(key).map(str::to_string);
            async move {
                match other {
                    Some(o) => self.fetch(&o).await.map(Some),
                    None => Ok(None),
                }
            }
        };
        let (kernel, ramdisk) = tokio::try_join!(fetch_opt("kernel_id"), fetch_opt("ramdisk_id"))?;
        Ok(BootImages { image, kernel, ramdisk })
    }
}

/// The record of an image whose data and record are both here.
async fn cached_record(path: &Path, meta: &Path) -> Option<Value> {
    if !tokio::fs::metadata(path).await.ok()?.is_file() {
        return None;
    }
    let text = tokio::fs::read(meta).await.ok()?;
    serde_json::from_slice(&text).ok()
}

/// The data is what the record says: its size, and its hash when the record has one.
async fn check(record: &Value, path: &Path, n: u64) -> anyhow::Result<()> {
    if let Some(size) = record["size"].as_u64()
        && size != n
    {
        anyhow::bail!("got {n} bytes, the image has {size}");
    }
    if record["os_hash_algo"].as_str() == Some("sha512")
        && let Some(want) = record["os_hash_value"].as_str().map(str::to_ascii_lowercase)
    {
        let p = path.to_path_buf();
        let got = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
            use sha2::Digest;
            use std::io::Read;
            let mut f = std::fs::File::open(p)?;
            let mut h = sha2::Sha512::new();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let r = f.read(&mut buf)?;
                if r == 0 {
                    break;
                }
                h.update(&buf[..r]);
            }
            Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
        })
        .await??;
        if got != want {
            anyhow::bail!("sha512 of the data is {got}, the image says {want}");
        }
    }
    Ok(())
}

/// The image's custom properties, for a guest booted from it (what the API
/// keeps in the server's system metadata).
pub fn properties_of(record: &Value) -> Map<String, Value> {
    crate::api::servers::image_properties(record)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    /// Images in memory, counting what is asked of them; downloads take a while.
    #[derive(Default)]
    struct Counting {
        images: HashMap<String, (Value, Vec<u8>)>,
        shows: AtomicUsize,
        downloads: Mutex<Vec<String>>,
    }

    impl Counting {
        fn with(mut self, id: &str, fields: Value, data: &[u8]) -> Self {
            use sha2::Digest;
            let hash: String = sha2::Sha512::digest(data).iter().map(|b| format!("{b:02x}")).collect();
            let mut rec = json!({"id": id, "status": "active", "disk_format": "raw", "size": data.len(),
                "os_hash_algo": "sha512", "os_hash_value": hash});
            for (k, v) in fields.as_object().unwrap() {
                rec[k] = v.clone();
            }
            self.images.insert(id.to_string(), (rec, data.to_vec()));
            self
        }
        fn downloads_of(&self, id: &str) -> usize {
            self.downloads.lock().unwrap().iter().filter(|d| *d == id).count()
        }
    }

    #[async_trait::async_trait]
    impl ImageSource for Counting {
        async fn show(&self, id: &str) -> anyhow::Result<Value> {
            self.shows.fetch_add(1, Ordering::SeqCst);
            self.images.get(id).map(|(r, _)| r.clone()).ok_or_else(|| anyhow::anyhow!("no image {id}"))
        }
        async fn download(&self, id: &str, dest: &Path) -> anyhow::Result<u64> {
            self.downloads.lock().unwrap().push(id.to_string());
            tokio::time::sleep(Duration::from_millis(100)).await;
            let (_, data) = self.images.get(id).ok_or_else(|| anyhow::anyhow!("no image {id}"))?;
            tokio::fs::write(dest, data).await?;
            Ok(data.len() as u64)
        }
    }

    const IMG: &str = "11111111-1111-1111-1111-111111111111";
    const KERNEL: &str = "22222222-2222-2222-2222-222222222222";
    const RAMDISK: &str = "33333333-3333-3333-3333-333333333333";

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn two_concurrent_boots_download_an_image_once() {
        let dir = tempfile::tempdir().unwrap();
        let src = Arc::new(Counting::default().with(IMG, json!({"disk_format": "qcow2"}), b"disk bytes"));
        let cache = Arc::new(ImageCache::new(dir.path().join("cache"), src.clone()));
        let (a, b) = tokio::join!(cache.fetch(IMG), cache.fetch(IMG));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(src.downloads_of(IMG), 1, "one download for two boots");
        assert_eq!(src.shows.load(Ordering::SeqCst), 1);
        assert_eq!(a.path, dir.path().join("cache").join(IMG));
        assert_eq!(a.path, b.path);
        assert_eq!(std::fs::read(&a.path).unwrap(), b"disk bytes");
        assert_eq!(a.disk_format().as_deref(), Some("qcow2"));
        // no temporary files left behind: the data and its record
        assert_eq!(listing(&dir.path().join("cache")), vec![IMG.to_string(), format!("{IMG}.json")]);
        // a later boot, even by another cache of the same directory (a restarted host), downloads nothing
        let again = ImageCache::new(dir.path().join("cache"), src.clone());
        let c = again.fetch(IMG).await.unwrap();
        assert_eq!(c.disk_format().as_deref(), Some("qcow2"));
        assert_eq!(src.downloads_of(IMG), 1);
        assert_eq!(src.shows.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn kernel_and_ramdisk_come_with_their_image() {
        let dir = tempfile::tempdir().unwrap();
        let src = Arc::new(
            Counting::default()
                .with(IMG, json!({"kernel_id": KERNEL, "ramdisk_id": RAMDISK, "os_command_line": "quiet"}), b"disk")
                .with(KERNEL, json!({"disk_format": "aki"}), b"kernel")
                .with(RAMDISK, json!({"disk_format": "ari"}), b"ramdisk"),
        );
        let cache = ImageCache::new(dir.path().to_path_buf(), src.clone());
        let (x, y) = tokio::join!(cache.boot_images(IMG), cache.boot_images(IMG));
        let (x, y) = (x.unwrap(), y.unwrap());
        let kernel = x.kernel.unwrap();
        assert_eq!(std::fs::read(&kernel.path).unwrap(), b"kernel");
        assert_eq!(kernel.disk_format().as_deref(), Some("aki"));
        assert_eq!(std::fs::read(x.ramdisk.unwrap().path).unwrap(), b"ramdisk");
        assert_eq!(y.kernel.unwrap().path, kernel.path);
        for id in [IMG, KERNEL, RAMDISK] {
            assert_eq!(src.downloads_of(id), 1, "{id}");
        }
        assert_eq!(properties_of(&x.image.record)["os_command_line"], "quiet");
        // an image without them boots alone
        let src = Arc::new(Counting::default().with(IMG, json!({}), b"disk"));
        let b = ImageCache::new(dir.path().join("other"), src).boot_images(IMG).await.unwrap();
        assert!(b.kernel.is_none() && b.ramdisk.is_none());
    }

    #[tokio::test]
    async fn bad_data_or_an_inactive_image_is_never_cached() {
        let dir = tempfile::tempdir().unwrap();
        let mut src = Counting::default().with(IMG, json!({}), b"disk").with(KERNEL, json!({"status": "queued"}), b"");
        // the service's record promises other bytes than it sends
        src.images.get_mut(IMG).unwrap().0["os_hash_value"] = json!("00");
        let src = Arc::new(src);
        let cache = ImageCache::new(dir.path().to_path_buf(), src.clone());
        let e = cache.fetch(IMG).await.unwrap_err();
        assert!(format!("{e:#}").contains("sha512"), "{e:#}");
        let e = cache.fetch(KERNEL).await.unwrap_err();
        assert!(format!("{e:#}").contains("not active"), "{e:#}");
        assert!(cache.fetch("../etc/passwd").await.is_err());
        assert!(listing(dir.path()).is_empty(), "nothing left: {:?}", listing(dir.path()));
        // the next boot tries again
        assert!(cache.fetch(IMG).await.is_err());
        assert_eq!(src.downloads_of(IMG), 2);
    }
}
