//! The upload pipeline: data from the client flows, chunk by chunk, to the
//! store's writer and to two hashing threads (MD5 for `checksum`, SHA-512 for
//! `os_hash_value`) at once, never held whole in memory. The first and last
//! bytes are kept for the format inspector.

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use md5::Md5;
use sha2::{Digest, Sha512};

use crate::backend::Upload;
use crate::format::{HEAD_BYTES, TAIL_BYTES};

/// Chunks are gathered to this size before they go to the threads: fewer hand-offs.
const BATCH: usize = 1 << 20;

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

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

struct Hasher<D> {
    tx: Option<tokio::sync::mpsc::Sender<Bytes>>,
    handle: tokio::task::JoinHandle<D>,
}

impl<D: Digest + Send + 'static> Hasher<D> {
    fn start() -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(8);
        let handle = tokio::task::spawn_blocking(move || {
            let mut d = D::new();
            while let Some(b) = rx.blocking_recv() {
                d.update(&b);
            }
            d
        });
        Hasher { tx: Some(tx), handle }
    }

    async fn feed(&self, b: Bytes) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(b).await;
        }
    }

    async fn finish(mut self) -> Option<String> {
        self.tx.take();
        self.handle.await.ok().map(|d| hex(&d.finalize()))
    }
}

/// Copy `body` into `upload` (not committed here), hashing on the way.
/// `limit`: the most bytes accepted.
pub async fn pump<S, E>(body: S, upload: &mut dyn Upload, limit: u64) -> Result<Digests, PipeError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let md5 = Hasher::<Md5>::start();
    let sha = Hasher::<Sha512>::start();
    let mut head = Vec::new();
    let mut tail: Vec<u8> = Vec::new();
    let mut size: u64 = 0;
    let mut batch = BytesMut::new();
    let mut body = body;

    async fn flush(
        batch: &mut BytesMut,
        upload: &mut dyn Upload,
        md5: &Hasher<Md5>,
        sha: &Hasher<Sha512>,
    ) -> Result<(), PipeError> {
        if batch.is_empty() {
            return Ok(());
        }
        let b = batch.split().freeze();
        md5.feed(b.clone()).await;
        sha.feed(b.clone()).await;
        upload.write(b).await.map_err(PipeError::Store)
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
        if batch.is_empty() && chunk.len() >= BATCH {
            // already big: hand it on without copying
            md5.feed(chunk.clone()).await;
            sha.feed(chunk.clone()).await;
            upload.write(chunk).await.map_err(PipeError::Store)?;
            continue;
        }
        batch.extend_from_slice(&chunk);
        if batch.len() >= BATCH {
            flush(&mut batch, upload, &md5, &sha).await?;
        }
    }
    flush(&mut batch, upload, &md5, &sha).await?;
    let md5 = md5.finish().await.ok_or_else(|| PipeError::Store(anyhow::anyhow!("md5 thread failed")))?;
    let sha512 = sha.finish().await.ok_or_else(|| PipeError::Store(anyhow::anyhow!("sha512 thread failed")))?;
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
}
