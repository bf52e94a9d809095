//! Key pairs: per user, unique by name; fingerprints computed as Nova does
//! (MD5 of the SSH key blob, SHA-1 of an x509 certificate, colon hex), and
//! generated keys (before 2.92) made with OpenSSL.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
    TransactionTrait,
};
use stratus_core::Config;
use stratus_db::Db;

use crate::entity::keypair;
use crate::error::{ComputeError, Result, bad, conflict};

pub type Keypair = keypair::Model;

pub const TYPE_SSH: &str = "ssh";
pub const TYPE_X509: &str = "x509";

/// A key pair to store.
#[derive(Clone, Debug)]
pub struct NewKeypair {
    pub user_id: String,
    pub name: String,
    pub key_type: String,
    pub public_key: String,
    pub fingerprint: String,
}

/// A user's key pairs, by name (then id, as Nova pages them).
pub async fn list(db: &Db, user_id: &str) -> Result<Vec<Keypair>> {
    Ok(keypair::Entity::find()
        .filter(keypair::Column::UserId.eq(user_id))
        .order_by_asc(keypair::Column::Name)
        .order_by_asc(keypair::Column::Id)
        .all(&db.read)
        .await?)
}

pub async fn get(db: &Db, user_id: &str, name: &str) -> Result<Option<Keypair>> {
    Ok(keypair::Entity::find()
        .filter(keypair::Column::UserId.eq(user_id))
        .filter(keypair::Column::Name.eq(name))
        .one(&db.read)
        .await?)
}

pub async fn count_by_user<C: ConnectionTrait>(conn: &C, user_id: &str) -> Result<i64> {
    Ok(keypair::Entity::find().filter(keypair::Column::UserId.eq(user_id)).count(conn).await? as i64)
}

/// Store a key pair within the user's `key_pairs` quota (counted under the
/// user's quota lock, so racing creates cannot exceed it); a taken name is a 409.
pub async fn create(db: &Db, cfg: &Config, project_id: &str, new: NewKeypair) -> Result<Keypair> {
    let scope = format!("user:{}", new.user_id);
    super::quotas::ensure_lock_row(db, &scope, "key_pairs").await?;
    let txn = db.write.begin().await?;
    let res = async {
        super::quotas::lock(&txn, &scope, "key_pairs").await?;
        let limit = super::quotas::limit_of(&txn, cfg, project_id, Some(&new.user_id), "key_pairs").await?;
        let used = count_by_user(&txn, &new.user_id).await?;
        if limit >= 0 && used + 1 > limit {
            return Err(ComputeError::OverQuota("Quota exceeded, too many key pairs.".into()));
        }
        let m = keypair::ActiveModel {
            user_id: Set(new.user_id.clone()),
            name: Set(new.name.clone()),
            fingerprint: Set(new.fingerprint.clone()),
            public_key: Set(new.public_key.clone()),
            key_type: Set(new.key_type.clone()),
            created_at: Set(chrono::Utc::now().timestamp_micros()),
            ..Default::default()
        };
        match m.insert(&txn).await {
            Ok(m) => Ok(m),
            Err(e) if stratus_db::is_unique_violation(&e) => {
                Err(conflict(format!("Key pair '{}' already exists.", new.name)))
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    match res {
        Ok(m) => {
            txn.commit().await?;
            Ok(m)
        }
        Err(e) => {
            txn.rollback().await?;
            Err(e)
        }
    }
}

/// Delete a user's key pair; false if there was none by that name.
pub async fn delete(db: &Db, user_id: &str, name: &str) -> Result<bool> {
    let r = keypair::Entity::delete_many()
        .filter(keypair::Column::UserId.eq(user_id))
        .filter(keypair::Column::Name.eq(name))
        .exec(&db.write)
        .await?;
    Ok(r.rows_affected > 0)
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

fn invalid(reason: &str) -> ComputeError {
    bad(format!("Keypair data is invalid: {reason}"))
}

/// Read one SSH wire-format string (`uint32 length` + bytes).
fn ssh_string<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    if buf.len() < 4 {
        return None;
    }
    let n = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let rest = &buf[4..];
    if rest.len() < n {
        return None;
    }
    let (s, tail) = rest.split_at(n);
    *buf = tail;
    Some(s)
}

/// Check that `blob` is a well-formed public key of `kind` (what
/// `load_ssh_public_key` accepts: RSA, ECDSA on P-256/384/521, Ed25519).
fn valid_ssh_blob(kind: &str, blob: &[u8]) -> bool {
    let mut b = blob;
    let Some(inner) = ssh_string(&mut b) else { return false };
    if inner != kind.as_bytes() {
        return false;
    }
    let fields: Vec<&[u8]> = std::iter::from_fn(|| ssh_string(&mut b)).collect();
    if !b.is_empty() {
        return false;
    }
    match kind {
        "ssh-rsa" => fields.len() == 2 && !fields[0].is_empty() && fields[1].len() >= 64,
        "ssh-ed25519" => fields.len() == 1 && fields[0].len() == 32,
        "ecdsa-sha2-nistp256" | "ecdsa-sha2-nistp384" | "ecdsa-sha2-nistp521" => {
            let curve = &kind["ecdsa-sha2-".len()..];
            fields.len() == 2 && fields[0] == curve.as_bytes() && fields[1].first() == Some(&4)
        }
        _ => false,
    }
}

/// The fingerprint of an OpenSSH public key line (`ssh-rsa AAAA... comment`),
/// or a 400 in Nova's words when it is not one.
pub fn ssh_fingerprint(public_key: &str) -> Result<String> {
    use base64::Engine as _;
    let fail = || invalid("failed to generate fingerprint");
    let mut parts = public_key.split_whitespace();
    let kind = parts.next().ok_or_else(fail)?;
    let data = parts.next().ok_or_else(fail)?;
    let blob = base64::engine::general_purpose::STANDARD.decode(data).map_err(|_| fail())?;
    if !valid_ssh_blob(kind, &blob) {
        return Err(fail());
    }
    let digest = openssl::hash::hash(openssl::hash::MessageDigest::md5(), &blob).map_err(|_| fail())?;
    Ok(colon_hex(&digest))
}

/// The SHA-1 fingerprint of a PEM x509 certificate.
pub fn x509_fingerprint(pem: &str) -> Result<String> {
    let cert = openssl::x509::X509::from_pem(pem.as_bytes())
        .map_err(|e| invalid(&format!("failed to generate X509 fingerprint. Error message: {e}")))?;
    let digest = cert
        .digest(openssl::hash::MessageDigest::sha1())
        .map_err(|e| invalid(&format!("failed to generate X509 fingerprint. Error message: {e}")))?;
    Ok(colon_hex(&digest))
}

/// A generated key pair: (private key PEM, public key, fingerprint).
pub type Generated = (String, String, String);

fn ssh_put(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
}

/// An RSA key in SSH's `mpint` form: big endian, a leading zero when the top bit is set.
fn ssh_mpint(out: &mut Vec<u8>, n: &[u8]) {
    if n.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v = vec![0u8];
        v.extend_from_slice(n);
        ssh_put(out, &v);
    } else {
        ssh_put(out, n);
    }
}

fn openssl_err(e: openssl::error::ErrorStack) -> ComputeError {
    ComputeError::Internal(anyhow::anyhow!("key generation failed: {e}"))
}

/// A new 2048-bit RSA key as Nova makes one: the private key in PEM, the public
/// key as an OpenSSH line ending in `Generated-by-Nova`.
pub fn generate_ssh() -> Result<Generated> {
    use base64::Engine as _;
    let rsa = openssl::rsa::Rsa::generate(2048).map_err(openssl_err)?;
    let private = String::from_utf8(rsa.private_key_to_pem().map_err(openssl_err)?)
        .map_err(|e| ComputeError::Internal(e.into()))?;
    let mut blob = Vec::new();
    ssh_put(&mut blob, b"ssh-rsa");
    ssh_mpint(&mut blob, &rsa.e().to_vec());
    ssh_mpint(&mut blob, &rsa.n().to_vec());
    let public = format!("ssh-rsa {} Generated-by-Nova", base64::engine::general_purpose::STANDARD.encode(&blob));
    let fingerprint = ssh_fingerprint(&public)?;
    Ok((private, public, fingerprint))
}

/// A new self-signed certificate for WinRM client authentication of `user_id`
/// (the x509 key pair type): the private key in PEM, the certificate in PEM as
/// the public key, its SHA-1 fingerprint.
pub fn generate_x509(user_id: &str) -> Result<Generated> {
    use openssl::asn1::Asn1Time;
    use openssl::bn::{BigNum, MsbOption};
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::x509::extension::ExtendedKeyUsage;
    use openssl::x509::{X509, X509NameBuilder};

    let rsa = openssl::rsa::Rsa::generate(2048).map_err(openssl_err)?;
    let private = String::from_utf8(rsa.private_key_to_pem().map_err(openssl_err)?)
        .map_err(|e| ComputeError::Internal(e.into()))?;
    let key = PKey::from_rsa(rsa).map_err(openssl_err)?;
    let mut name = X509NameBuilder::new().map_err(openssl_err)?;
    // a CN longer than 64 characters is refused by OpenSSL; user ids are 32-64
    let cn: String = user_id.chars().take(64).collect();
    name.append_entry_by_text("CN", if cn.is_empty() { "nova" } else { &cn }).map_err(openssl_err)?;
    let name = name.build();
    let mut b = X509::builder().map_err(openssl_err)?;
    b.set_version(2).map_err(openssl_err)?;
    let mut serial = BigNum::new().map_err(openssl_err)?;
    serial.rand(64, MsbOption::MAYBE_ZERO, false).map_err(openssl_err)?;
    let serial = serial.to_asn1_integer().map_err(openssl_err)?;
    b.set_serial_number(&serial).map_err(openssl_err)?;
    b.set_subject_name(&name).map_err(openssl_err)?;
    b.set_issuer_name(&name).map_err(openssl_err)?;
    b.set_pubkey(&key).map_err(openssl_err)?;
    let not_before = Asn1Time::days_from_now(0).map_err(openssl_err)?;
    let not_after = Asn1Time::days_from_now(3650).map_err(openssl_err)?;
    b.set_not_before(&not_before).map_err(openssl_err)?;
    b.set_not_after(&not_after).map_err(openssl_err)?;
    let eku = ExtendedKeyUsage::new().client_auth().build().map_err(openssl_err)?;
    b.append_extension(eku).map_err(openssl_err)?;
    b.sign(&key, MessageDigest::sha256()).map_err(openssl_err)?;
    let cert = b.build();
    let pem = String::from_utf8(cert.to_pem().map_err(openssl_err)?).map_err(|e| ComputeError::Internal(e.into()))?;
    let fingerprint = colon_hex(&cert.digest(MessageDigest::sha1()).map_err(openssl_err)?);
    Ok((private, pem, fingerprint))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    // an RSA public key and its fingerprint as Python's hashlib computes it
    const SAMPLE: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDx8nkQv/zgGgB4rMYmIf+6A4l6Rr+o/6lHBQdW5aYd44bd8JttDCE/F/pNRr0lRE+PiqSPO8nDPHw0010JeMH9gYgnnFlyY3/OcJ02RhIPyyxYpv9FhY+2YiUkpwFOcLImyrxEsYXpD/0d3ac30bNH6Sw9JD9UZHYcpSxsIbECHw== Generated-by-Nova";

    #[test]
    fn fingerprint_as_nova_computes_it() {
        assert_eq!(ssh_fingerprint(SAMPLE).unwrap(), "1e:2c:9b:56:79:4b:45:77:f9:ca:7a:98:2c:b0:d5:3c");
        assert!(ssh_fingerprint("ssh-rsa notbase64!").is_err());
        assert!(ssh_fingerprint("ssh-rsa AAAA").is_err());
        assert!(ssh_fingerprint("").is_err());
        // the blob says ssh-rsa, the prefix says ed25519
        let lying = SAMPLE.replacen("ssh-rsa", "ssh-ed25519", 1);
        assert!(ssh_fingerprint(&lying).is_err());
    }

    #[test]
    fn generated_keys_are_well_formed() {
        let (private, public, fp) = generate_ssh().unwrap();
        assert!(private.starts_with("-----BEGIN RSA PRIVATE KEY-----"), "{private}");
        assert!(public.starts_with("ssh-rsa AAAA") && public.ends_with(" Generated-by-Nova"));
        assert_eq!(fp.len(), 47);
        assert_eq!(ssh_fingerprint(&public).unwrap(), fp);
        let (private, cert, fp) = generate_x509("a-user").unwrap();
        assert!(private.contains("PRIVATE KEY"));
        assert_eq!(x509_fingerprint(&cert).unwrap(), fp);
        assert_eq!(fp.len(), 59);
        assert!(x509_fingerprint("not a cert").is_err());
    }
}
