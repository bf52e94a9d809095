//! The Fernet key repository, as Keystone lays it out: files named by index,
//! `0` the staged key (next primary), the highest index the primary key,
//! the rest secondaries that still decrypt. Several processes share one
//! repository; each reloads it when its files change.

use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, anyhow};

/// The keys in use: encrypt with the primary, decrypt with any.
pub struct KeyRing {
    dir: PathBuf,
    inner: RwLock<Loaded>,
}

struct Loaded {
    fernet: Option<fernet::MultiFernet>,
    /// newest modification time seen in the repository
    stamp: Option<SystemTime>,
    checked: Instant,
}

fn key_indexes(dir: &Path) -> anyhow::Result<Vec<u64>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read key repository {}", dir.display()))? {
        let entry = entry?;
        if let Some(i) = entry.file_name().to_str().and_then(|n| n.parse::<u64>().ok()) {
            out.push(i);
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn write_key(dir: &Path, index: u64) -> anyhow::Result<()> {
    let key = fernet::Fernet::generate_key();
    let tmp = dir.join(format!(".{index}.tmp"));
    std::fs::write(&tmp, key.as_bytes())?;
    restrict(&tmp)?;
    std::fs::rename(&tmp, dir.join(index.to_string()))?;
    Ok(())
}

#[cfg(unix)]
fn restrict(p: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}
#[cfg(not(unix))]
fn restrict(_p: &Path) -> anyhow::Result<()> {
    Ok(())
}

/// `stratus fernet setup`: create the repository with a staged and a primary key,
/// unless it already has keys.
pub fn setup(dir: &Path, max_active: usize) -> anyhow::Result<bool> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    if !key_indexes(dir)?.is_empty() {
        return Ok(false);
    }
    write_key(dir, 0)?;
    rotate(dir, max_active)?;
    Ok(true)
}

/// `stratus fernet rotate`: the staged key becomes primary, a new staged key
/// is made, and the oldest secondaries beyond `max_active` are removed.
pub fn rotate(dir: &Path, max_active: usize) -> anyhow::Result<u64> {
    let max_active = max_active.max(3);
    let indexes = key_indexes(dir)?;
    if !indexes.contains(&0) {
        return Err(anyhow!("key repository {} has no staged key 0; run `stratus fernet setup`", dir.display()));
    }
    let next = indexes.last().copied().unwrap_or(0) + 1;
    std::fs::rename(dir.join("0"), dir.join(next.to_string()))?;
    write_key(dir, 0)?;
    let mut indexes = key_indexes(dir)?;
    // keep the staged key and the newest max_active-1 others
    indexes.retain(|i| *i != 0);
    while indexes.len() + 1 > max_active {
        let oldest = indexes.remove(0);
        std::fs::remove_file(dir.join(oldest.to_string()))?;
    }
    Ok(next)
}

fn newest_stamp(dir: &Path) -> Option<SystemTime> {
    let mut newest = std::fs::metadata(dir).and_then(|m| m.modified()).ok();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if let Ok(t) = e.metadata().and_then(|m| m.modified())
                && newest.is_none_or(|n| t > n)
            {
                newest = Some(t);
            }
        }
    }
    newest
}

fn load(dir: &Path) -> anyhow::Result<fernet::MultiFernet> {
    let mut indexes = key_indexes(dir)?;
    if indexes.is_empty() {
        return Err(anyhow!("key repository {} is empty; run `stratus fernet setup`", dir.display()));
    }
    // primary (highest index) first: MultiFernet encrypts with the first key
    indexes.reverse();
    let mut keys = Vec::new();
    for i in indexes {
        let text = std::fs::read_to_string(dir.join(i.to_string()))?;
        let f = fernet::Fernet::new(text.trim())
            .ok_or_else(|| anyhow!("key {i} in {} is not a Fernet key", dir.display()))?;
        keys.push(f);
    }
    Ok(fernet::MultiFernet::new(keys))
}

impl KeyRing {
    pub fn open(dir: &Path) -> anyhow::Result<KeyRing> {
        let fernet = load(dir)?;
        Ok(KeyRing {
            dir: dir.to_path_buf(),
            inner: RwLock::new(Loaded { fernet: Some(fernet), stamp: newest_stamp(dir), checked: Instant::now() }),
        })
    }

    /// Reload when the repository changed (checked at most once a second).
    fn refresh(&self) {
        let due = self.inner.read().map(|l| l.checked.elapsed() > Duration::from_secs(1)).unwrap_or(true);
        if !due {
            return;
        }
        let stamp = newest_stamp(&self.dir);
        let Ok(mut l) = self.inner.write() else {
            return;
        };
        l.checked = Instant::now();
        if stamp != l.stamp {
            match load(&self.dir) {
                Ok(f) => {
                    l.fernet = Some(f);
                    l.stamp = stamp;
                    tracing::info!(dir = %self.dir.display(), "fernet keys reloaded");
                }
                Err(e) => {
                    tracing::error!(error = %e, "fernet keys could not be reloaded; keeping the old ones")
                }
            }
        }
    }

    pub fn encrypt(&self, data: &[u8]) -> anyhow::Result<String> {
        self.refresh();
        let l = self.inner.read().map_err(|_| anyhow!("key ring lock poisoned"))?;
        let f = l.fernet.as_ref().ok_or_else(|| anyhow!("no fernet keys"))?;
        Ok(f.encrypt(data))
    }

    pub fn decrypt(&self, token: &str) -> Option<Vec<u8>> {
        self.refresh();
        let l = self.inner.read().ok()?;
        l.fernet.as_ref()?.decrypt(token).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_rotate_and_old_tokens() {
        let dir = std::env::temp_dir().join(format!("stratus-fernet-{}", uuid::Uuid::new_v4()));
        assert!(setup(&dir, 3).unwrap());
        assert!(!setup(&dir, 3).unwrap(), "setup is idempotent");
        assert_eq!(key_indexes(&dir).unwrap(), vec![0, 1]);
        let ring = KeyRing::open(&dir).unwrap();
        let token = ring.encrypt(b"hello").unwrap();
        // the staged key decrypts before it is primary (another process may rotate first)
        let staged = load(&dir).unwrap();
        assert_eq!(staged.decrypt(&token).unwrap(), b"hello");
        rotate(&dir, 3).unwrap();
        assert_eq!(key_indexes(&dir).unwrap(), vec![0, 1, 2]);
        let ring2 = KeyRing::open(&dir).unwrap();
        assert_eq!(ring2.decrypt(&token).unwrap(), b"hello", "secondary still decrypts");
        rotate(&dir, 3).unwrap();
        assert_eq!(key_indexes(&dir).unwrap(), vec![0, 2, 3]);
        rotate(&dir, 3).unwrap();
        assert_eq!(key_indexes(&dir).unwrap(), vec![0, 3, 4]);
        let ring3 = KeyRing::open(&dir).unwrap();
        assert!(ring3.decrypt(&token).is_none(), "a pruned key no longer decrypts");
        assert!(ring3.decrypt("garbage").is_none());
        std::fs::remove_dir_all(&dir).ok();
    }
}
