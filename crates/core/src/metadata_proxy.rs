//! The contract between the metadata proxy of the network agent and the
//! compute metadata API (Neutron's metadata agent and Nova's metadata
//! service): the proxy names the instance a request came from in
//! [`INSTANCE_ID`] and [`TENANT_ID`] and proves it is the proxy with
//! [`INSTANCE_ID_SIGNATURE`], the hex HMAC-SHA256 of the instance id keyed
//! with the shared secret (`compute.metadata_proxy_shared_secret`).

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::Config;

pub const INSTANCE_ID: &str = "x-instance-id";
pub const TENANT_ID: &str = "x-tenant-id";
pub const INSTANCE_ID_SIGNATURE: &str = "x-instance-id-signature";
pub const FORWARDED_FOR: &str = "x-forwarded-for";

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 keyed with `secret` over `instance_id` (HMAC takes keys of
/// any length, so this is never `None`).
fn mac(secret: &str, instance_id: &str) -> Option<HmacSha256> {
    let mut m = HmacSha256::new_from_slice(secret.as_bytes()).ok()?;
    m.update(instance_id.as_bytes());
    Some(m)
}

/// The signature of `instance_id`: lowercase hex of HMAC-SHA256(secret, id),
/// as Neutron's `sign_instance_id` makes it.
pub fn sign(secret: &str, instance_id: &str) -> String {
    let Some(m) = mac(secret, instance_id) else { return String::new() };
    m.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `signature` is the signature of `instance_id` (compared in
/// constant time; hex of either case accepted).
pub fn verify(secret: &str, instance_id: &str, signature: &str) -> bool {
    let (Some(bytes), Some(m)) = (hex_decode(signature), mac(secret, instance_id)) else { return false };
    m.verify_slice(&bytes).is_ok()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

/// The shared secret: the configured one, else the one kept in the data dir
/// (`metadata-proxy-secret`, made at first use, mode 0600), where the
/// compute API and the network agents of a one-host cloud both find it.
pub fn shared_secret(cfg: &Config) -> anyhow::Result<String> {
    if !cfg.compute.metadata_proxy_shared_secret.is_empty() {
        return Ok(cfg.compute.metadata_proxy_shared_secret.clone());
    }
    secret_in_file(&cfg.metadata_proxy_secret_file())
}

fn secret_in_file(path: &Path) -> anyhow::Result<String> {
    if let Ok(s) = std::fs::read_to_string(path)
        && !s.trim().is_empty()
    {
        return Ok(s.trim().to_string());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    // 244 random bits (two v4 UUIDs come from the OS's random source)
    let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, &secret).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| anyhow::anyhow!("cannot restrict {}: {e}", tmp.display()))?;
    }
    // two roles starting at once: the first link wins, both use its secret
    match std::fs::hard_link(&tmp, path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(anyhow::anyhow!("cannot write {}: {e}", path.display())),
    }
    let _ = std::fs::remove_file(&tmp);
    let s = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    Ok(s.trim().to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn signatures_are_hex_hmac_sha256() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?"
        let sig = sign("Jefe", "what do ya want for nothing?");
        assert_eq!(sig, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert!(verify("Jefe", "what do ya want for nothing?", &sig));
        assert!(verify("Jefe", "what do ya want for nothing?", &sig.to_uppercase()));
        assert!(!verify("Jefe", "what do ya want for nothing!", &sig));
        assert!(!verify("jefe", "what do ya want for nothing?", &sig));
        assert!(!verify("Jefe", "what do ya want for nothing?", ""));
        assert!(!verify("Jefe", "what do ya want for nothing?", "zz"));
        assert!(!verify("Jefe", "what do ya want for nothing?", &sig[..62]));
    }

    #[test]
    fn the_secret_is_made_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("stratus-mdsecret-{}", uuid::Uuid::new_v4().simple()));
        let cfg = Config { data_dir: dir.clone(), ..Default::default() };
        let a = shared_secret(&cfg).unwrap();
        assert_eq!(a.len(), 64);
        assert_eq!(shared_secret(&cfg).unwrap(), a);
        let mut given = cfg.clone();
        given.compute.metadata_proxy_shared_secret = "s3cret".into();
        assert_eq!(shared_secret(&given).unwrap(), "s3cret");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
