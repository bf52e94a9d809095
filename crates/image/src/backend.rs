//! Where image data lives: a store trait and the filesystem store.
//!
//! A store takes data as a sequence of chunks (`Upload`) and commits it
//! atomically: until `commit`, the data sits in a partial file that `abort`
//! (or a crash, then the next start) removes, so a broken upload never leaves
//! a half image behind. The object-store backend (Swift) will implement the
//! same trait.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow};
use bytes::Bytes;
use futures::stream::BoxStream;

/// A stream of image data.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// The store's id as clients name it (`stores` field, `X-Image-Meta-Store`).
    fn id(&self) -> &str;
    /// The kind of backend (`file`, later `swift`).
    fn kind(&self) -> &'static str;
    fn description(&self) -> String;
    /// Begin writing new data for an image.
    async fn begin(&self, image_id: &str) -> anyhow::Result<Box<dyn Upload>>;
    /// Read data at `location`, optionally the byte range `[start, end]` (inclusive).
    async fn open(&self, location: &str, range: Option<(u64, u64)>) -> anyhow::Result<ByteStream>;
    /// Remove data; a missing location is not an error.
    async fn delete(&self, location: &str) -> anyhow::Result<()>;
    /// Bytes free for new images, if the store can tell.
    fn free_bytes(&self) -> Option<u64> {
        None
    }
    /// A store that only serves data at locations clients registered (HTTP).
    fn read_only(&self) -> bool {
        false
    }
    /// The size of the data at `location`, if the store can tell without reading it.
    async fn size_of(&self, _location: &str) -> anyhow::Result<Option<u64>> {
        Ok(None)
    }
}

/// Data being written. Dropping it without `commit` aborts.
#[async_trait::async_trait]
pub trait Upload: Send {
    /// Append a batch of chunks (in order).
    async fn write(&mut self, chunks: Vec<Bytes>) -> anyhow::Result<()>;
    /// Make the data durable and visible; returns its location URL.
    async fn commit(self: Box<Self>) -> anyhow::Result<String>;
    async fn abort(self: Box<Self>);
}

/// The filesystem store: one file per image in a directory (`file:///dir/<id>`).
pub struct FileStore {
    id: String,
    dir: PathBuf,
}

impl FileStore {
    /// Open (creating the directory) and remove partial files a crash left behind.
    pub fn open(id: &str, dir: &Path) -> anyhow::Result<FileStore> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create image store {}", dir.display()))?;
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        for entry in std::fs::read_dir(&dir)?.flatten() {
            if entry.file_name().to_string_lossy().ends_with(".partial") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(FileStore { id: id.to_string(), dir })
    }

    fn path_of(&self, location: &str) -> anyhow::Result<PathBuf> {
        let path = location.strip_prefix("file://").ok_or_else(|| anyhow!("not a file location: {location}"))?;
        let path = PathBuf::from(path);
        // only files of this store, never a path a location smuggles in
        if path.parent() != Some(self.dir.as_path()) {
            return Err(anyhow!("location {location} is outside store {}", self.id));
        }
        Ok(path)
    }
}

enum Op {
    Data(Vec<Bytes>),
}

/// Flush written data to disk every this many bytes, so the final sync at
/// commit has little left to do (and dirty pages never pile up).
const SYNC_EVERY: u64 = 64 << 20;
/// Direct I/O block alignment and the size of the aligned staging buffer.
const ALIGN: usize = 4096;
const DIRECT_BUF: usize = 4 << 20;

/// A new image file, written with direct I/O where the filesystem allows it:
/// image data is written once and rarely read back soon, so copying it through
/// the page cache only costs CPU (here buffered writes ran at a third of the
/// speed of direct ones). Data goes through an aligned buffer; the unaligned
/// tail, and everything on filesystems without O_DIRECT, is written normally.
struct ImageFile {
    path: std::path::PathBuf,
    direct: Option<std::fs::File>,
    buffered: Option<std::fs::File>,
    buf: Vec<u8>,
    off: usize,
    fill: usize,
    unsynced: u64,
    /// bytes in the file so far
    written: u64,
}

impl ImageFile {
    fn create(path: &Path) -> anyhow::Result<ImageFile> {
        use std::os::unix::fs::OpenOptionsExt;
        let direct = std::fs::OpenOptions::new().write(true).create_new(true).custom_flags(libc::O_DIRECT).open(path);
        let (direct, buffered) = match direct {
            Ok(f) => (Some(f), None),
            Err(_) => {
                let f = std::fs::File::create_new(path).with_context(|| format!("cannot create {}", path.display()))?;
                (None, Some(f))
            }
        };
        let (buf, off) = if direct.is_some() {
            let buf = vec![0u8; DIRECT_BUF + ALIGN];
            let off = buf.as_ptr().align_offset(ALIGN);
            (buf, off)
        } else {
            (Vec::new(), 0)
        };
        Ok(ImageFile { path: path.to_path_buf(), direct, buffered, buf, off, fill: 0, unsynced: 0, written: 0 })
    }

    /// Leave direct I/O: the rest is written through a normal handle.
    fn buffered_file(&mut self) -> std::io::Result<&mut std::fs::File> {
        self.direct = None;
        if self.buffered.is_none() {
            self.buffered = Some(std::fs::OpenOptions::new().append(true).open(&self.path)?);
        }
        self.buffered.as_mut().ok_or_else(|| std::io::Error::other("no file"))
    }

    fn write_buffered(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.unsynced += data.len() as u64;
        self.written += data.len() as u64;
        let sync = self.unsynced >= SYNC_EVERY;
        if sync {
            self.unsynced = 0;
        }
        let f = self.buffered_file()?;
        f.write_all(data)?;
        if sync {
            f.sync_data()?;
        }
        Ok(())
    }

    /// Write the aligned part of the buffer with direct I/O.
    fn drain(&mut self) -> std::io::Result<()> {
        let n = self.fill / ALIGN * ALIGN;
        if n == 0 {
            return Ok(());
        }
        let (off, fill) = (self.off, self.fill);
        let result = match self.direct.as_mut() {
            Some(f) => f.write_all(&self.buf[off..off + n]),
            None => return Err(std::io::Error::other("direct file gone")),
        };
        if let Err(e) = result {
            // e.g. a filesystem that accepts O_DIRECT at open but not at write:
            // fall back to buffered writes from where the file ends now
            tracing::debug!(error = %e, "direct write refused, writing buffered");
            let len = std::fs::metadata(&self.path)?.len();
            let done = (len.saturating_sub(self.written) as usize).min(fill);
            self.written += done as u64;
            let pending = self.buf[off + done..off + fill].to_vec();
            self.fill = 0;
            return self.write_buffered(&pending);
        }
        self.written += n as u64;
        self.buf.copy_within(off + n..off + fill, off);
        self.fill -= n;
        Ok(())
    }

    fn write(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        if self.direct.is_none() {
            return self.write_buffered(data);
        }
        while !data.is_empty() {
            let room = DIRECT_BUF - self.fill;
            let take = room.min(data.len());
            let at = self.off + self.fill;
            self.buf[at..at + take].copy_from_slice(&data[..take]);
            self.fill += take;
            data = &data[take..];
            if self.fill == DIRECT_BUF {
                self.drain()?;
                if self.direct.is_none() {
                    return self.write_buffered(data);
                }
            }
        }
        Ok(())
    }

    /// Write what is left and make it durable.
    fn finish(mut self) -> std::io::Result<()> {
        if self.direct.is_some() {
            self.drain()?;
            if self.fill > 0 {
                let (off, fill) = (self.off, self.fill);
                let rest = self.buf[off..off + fill].to_vec();
                self.fill = 0;
                self.write_buffered(&rest)?;
            }
        }
        match (&self.buffered, &self.direct) {
            (Some(f), _) | (None, Some(f)) => f.sync_data(),
            (None, None) => Ok(()),
        }
    }
}

struct FileUpload {
    tx: Option<tokio::sync::mpsc::Sender<Op>>,
    writer: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    partial: PathBuf,
    target: PathBuf,
}

#[async_trait::async_trait]
impl Store for FileStore {
    fn id(&self) -> &str {
        &self.id
    }
    fn kind(&self) -> &'static str {
        "file"
    }
    fn description(&self) -> String {
        format!("Filesystem store {}", self.id)
    }

    async fn begin(&self, image_id: &str) -> anyhow::Result<Box<dyn Upload>> {
        let target = self.dir.join(image_id);
        let partial = self.dir.join(format!("{image_id}.{}.partial", uuid::Uuid::new_v4().simple()));
        let mut file = ImageFile::create(&partial)?;
        // file writes run on their own thread, overlapping with hashing and the network
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Op>(4);
        let writer = tokio::task::spawn_blocking(move || {
            while let Some(Op::Data(batch)) = rx.blocking_recv() {
                for b in batch {
                    file.write(&b)?;
                }
            }
            file.finish()
        });
        Ok(Box::new(FileUpload { tx: Some(tx), writer: Some(writer), partial, target }))
    }

    async fn open(&self, location: &str, range: Option<(u64, u64)>) -> anyhow::Result<ByteStream> {
        use futures::StreamExt;
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let path = self.path_of(location)?;
        let mut file = tokio::fs::File::open(&path).await.with_context(|| format!("cannot open {}", path.display()))?;
        const CHUNK: usize = 1 << 20;
        let stream = match range {
            None => tokio_util::io::ReaderStream::with_capacity(file, CHUNK).boxed(),
            Some((start, end)) => {
                file.seek(std::io::SeekFrom::Start(start)).await?;
                let take = file.take(end.saturating_sub(start) + 1);
                tokio_util::io::ReaderStream::with_capacity(take, CHUNK).boxed()
            }
        };
        Ok(stream)
    }

    async fn delete(&self, location: &str) -> anyhow::Result<()> {
        let path = self.path_of(location)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(anyhow!("cannot remove {}: {e}", path.display())),
        }
    }
}

impl FileUpload {
    async fn finish_writer(&mut self) -> anyhow::Result<()> {
        self.tx.take();
        match self.writer.take() {
            Some(w) => {
                w.await.map_err(|e| anyhow!("writer thread failed: {e}"))?.map_err(|e| anyhow!("write failed: {e}"))
            }
            None => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl Upload for FileUpload {
    async fn write(&mut self, chunks: Vec<Bytes>) -> anyhow::Result<()> {
        let sent = match &self.tx {
            Some(tx) => tx.send(Op::Data(chunks)).await.is_ok(),
            None => false,
        };
        if !sent {
            // the writer stopped: report its error
            self.finish_writer().await?;
            return Err(anyhow!("the image writer stopped"));
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> anyhow::Result<String> {
        if let Err(e) = self.finish_writer().await {
            let _ = tokio::fs::remove_file(&self.partial).await;
            return Err(e);
        }
        tokio::fs::rename(&self.partial, &self.target).await?;
        Ok(format!("file://{}", self.target.display()))
    }

    async fn abort(mut self: Box<Self>) {
        let _ = self.finish_writer().await;
        let _ = tokio::fs::remove_file(&self.partial).await;
    }
}

impl Drop for FileUpload {
    fn drop(&mut self) {
        // dropped without commit or abort (a cancelled request): remove the partial file
        if self.writer.is_some() {
            self.tx.take();
            let partial = self.partial.clone();
            if let Some(w) = self.writer.take() {
                tokio::spawn(async move {
                    let _ = w.await;
                    let _ = tokio::fs::remove_file(&partial).await;
                });
            }
        }
    }
}

/// Is fetching from `url` allowed? Only `http` URLs to the configured hosts:
/// a cloud must not be turned into a proxy into its own networks.
pub fn url_allowed(allowed_hosts: &[String], url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("Invalid URL {url}: {e}"))?;
    if parsed.scheme() != "http" {
        return Err(format!("URL {url} does not pass filtering: scheme {} is not allowed", parsed.scheme()));
    }
    let host = parsed.host_str().unwrap_or("");
    if !allowed_hosts.iter().any(|h| h == host) {
        return Err(format!("URL {url} does not pass filtering: host {host} is not allowed"));
    }
    Ok(())
}

/// A read-only store of data on web servers (`http://` locations). It never
/// writes, and only reads from hosts the configuration allows.
pub struct HttpStore {
    id: String,
    http: reqwest::Client,
    allowed_hosts: Vec<String>,
}

impl HttpStore {
    pub fn new(id: &str, allowed_hosts: Vec<String>) -> anyhow::Result<HttpStore> {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(HttpStore { id: id.to_string(), http, allowed_hosts })
    }

    fn check(&self, location: &str) -> anyhow::Result<()> {
        url_allowed(&self.allowed_hosts, location).map_err(|e| anyhow!(e))
    }
}

#[async_trait::async_trait]
impl Store for HttpStore {
    fn id(&self) -> &str {
        &self.id
    }
    fn kind(&self) -> &'static str {
        "http"
    }
    fn description(&self) -> String {
        format!("Read-only HTTP store {}", self.id)
    }
    fn read_only(&self) -> bool {
        true
    }

    async fn begin(&self, _image_id: &str) -> anyhow::Result<Box<dyn Upload>> {
        Err(anyhow!("store {} is read-only", self.id))
    }

    async fn open(&self, location: &str, range: Option<(u64, u64)>) -> anyhow::Result<ByteStream> {
        use futures::StreamExt;
        self.check(location)?;
        let mut rq = self.http.get(location);
        if let Some((a, b)) = range {
            rq = rq.header("range", format!("bytes={a}-{b}"));
        }
        let r = rq.send().await?;
        if !r.status().is_success() {
            return Err(anyhow!("{location} answered {}", r.status()));
        }
        Ok(r.bytes_stream().map(|c| c.map_err(std::io::Error::other)).boxed())
    }

    async fn delete(&self, _location: &str) -> anyhow::Result<()> {
        // data on a web server is not ours to delete
        Ok(())
    }

    async fn size_of(&self, location: &str) -> anyhow::Result<Option<u64>> {
        self.check(location)?;
        let r = self.http.head(location).send().await?;
        if !r.status().is_success() {
            return Err(anyhow!("{location} answered {}", r.status()));
        }
        Ok(r.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()))
    }
}

/// The configured stores, by id.
#[derive(Clone)]
pub struct Stores {
    pub list: Vec<Arc<dyn Store>>,
    pub default: String,
    /// Where staged data (interoperable import) waits.
    pub staging: Arc<dyn Store>,
    /// Weights by store id (0 when not configured).
    pub weights: Vec<(String, i64)>,
}

impl Stores {
    pub fn get(&self, id: &str) -> Option<&Arc<dyn Store>> {
        self.list.iter().find(|s| s.id() == id)
    }

    pub fn weight(&self, id: &str) -> i64 {
        self.weights.iter().find(|(s, _)| s == id).map(|(_, w)| *w).unwrap_or(0)
    }

    /// Store ids ordered by weight, heaviest first (stable for equal weights).
    pub fn by_weight(&self, ids: &mut [String]) {
        ids.sort_by_key(|id| std::cmp::Reverse(self.weight(id)));
    }

    /// The store that serves `url` (an HTTP location), if one does.
    pub fn for_url(&self, url: &str) -> Option<&Arc<dyn Store>> {
        if url.starts_with("http://") || url.starts_with("https://") {
            self.list.iter().find(|s| s.kind() == "http")
        } else {
            None
        }
    }

    pub fn default_store(&self) -> &Arc<dyn Store> {
        self.get(&self.default).unwrap_or(&self.list[0])
    }

    /// The store holding a location.
    pub fn for_location(&self, store_id: &str) -> Option<&Arc<dyn Store>> {
        if store_id == self.staging.id() { Some(&self.staging) } else { self.get(store_id) }
    }

    /// Open the stores of the configuration.
    pub fn from_config(cfg: &stratus_core::Config) -> anyhow::Result<Stores> {
        let base = cfg.data_dir.join("images");
        let mut list: Vec<Arc<dyn Store>> = Vec::new();
        for id in &cfg.image.stores {
            let dir = cfg
                .image
                .store_dirs
                .iter()
                .find_map(|d| d.split_once('=').filter(|(k, _)| k == id).map(|(_, p)| PathBuf::from(p)))
                .unwrap_or_else(|| base.join(id));
            list.push(Arc::new(FileStore::open(id, &dir)?));
        }
        if list.is_empty() {
            return Err(anyhow!("image.stores is empty: the image service needs a store"));
        }
        if !cfg.image.http_store.is_empty() {
            list.push(Arc::new(HttpStore::new(&cfg.image.http_store, cfg.image.allowed_url_hosts.clone())?));
        }
        if !cfg.image.stores.contains(&cfg.image.default_store) {
            return Err(anyhow!("image.default_store {:?} is not one of image.stores", cfg.image.default_store));
        }
        let staging: Arc<dyn Store> = Arc::new(FileStore::open("os_glance_staging_store", &base.join("_staging"))?);
        let mut weights = Vec::new();
        for w in &cfg.image.store_weights {
            let (id, n) = w.split_once('=').ok_or_else(|| anyhow!("image.store_weights: {w:?} is not id=weight"))?;
            let n: i64 = n.trim().parse().map_err(|_| anyhow!("image.store_weights: {w:?} has no integer weight"))?;
            weights.push((id.trim().to_string(), n));
        }
        Ok(Stores { list, default: cfg.image.default_store.clone(), staging, weights })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct and buffered writes give the same bytes, whatever the chunking.
    #[test]
    fn image_file_writes_exactly_the_data() {
        let dir = std::env::temp_dir().join(format!("stratus-imagefile-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let data: Vec<u8> = (0..(DIRECT_BUF * 2 + 12345)).map(|i| (i * 7 % 251) as u8).collect();
        for chunk in [1usize, 4095, 4096, 65536, 1 << 20, DIRECT_BUF + 3] {
            let path = dir.join(format!("f{chunk}"));
            let mut f = ImageFile::create(&path).unwrap_or_else(|e| panic!("{e}"));
            for c in data.chunks(chunk) {
                f.write(c).unwrap_or_else(|e| panic!("{e}"));
            }
            f.finish().unwrap_or_else(|e| panic!("{e}"));
            let back = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(back == data, "chunk {chunk}: {} bytes back of {}", back.len(), data.len());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
