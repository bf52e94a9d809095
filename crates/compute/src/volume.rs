//! Servers' volumes in the block storage service, as Nova's volume API does
//! it: over Cinder's v3 REST API (attachments, microversion 3.44) with the
//! service token (an admin), or the caller's token where Nova checks what
//! the caller may see (a volume to attach, a boot volume made in the
//! caller's project).
//!
//! What a server has is kept in `block_device_mappings` (one row per volume
//! of a server, Nova's BDMs): the API reserves a row and a Cinder
//! attachment; the compute host connects it (attachment update with its
//! connector), has the driver attach it and completes the attachment.
//! Detach and delete give the attachment back (and the volume, when it
//! goes with the server).

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde_json::{Value, json};
use stratus_db::Db;

use crate::placement::TokenSource;

/// The Cinder microversion compute speaks (attachments with `os-complete`).
pub const API_VERSION: &str = "volume 3.44";

/// How long a volume may take to become available (made from an image).
pub const AVAILABLE_TIMEOUT: Duration = Duration::from_secs(180);

/// The block device mappings table.
pub mod bdm {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "block_device_mappings")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub uuid: String,
        pub instance_uuid: String,
        /// `image`, `volume`, `blank`
        pub source_type: String,
        /// `volume` (`local` disks are not recorded)
        pub destination_type: String,
        /// The image a volume is made from (`source_type` image).
        pub image_id: Option<String>,
        pub volume_id: Option<String>,
        /// GiB of a volume compute makes.
        pub volume_size: Option<i64>,
        pub attachment_id: Option<String>,
        pub device_name: Option<String>,
        /// 0 for the boot volume; null when not bootable.
        pub boot_index: Option<i64>,
        pub delete_on_termination: bool,
        pub tag: Option<String>,
        /// What the volume service answered the host's connector with (JSON).
        pub connection_info: Option<String>,
        pub created_at: i64,
        pub updated_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub type Bdm = bdm::Model;

impl bdm::Model {
    /// Compute made the volume (from an image, or blank): it goes with the
    /// server's build when that fails.
    pub fn made_by_compute(&self) -> bool {
        self.source_type != "volume"
    }

    pub fn is_root(&self) -> bool {
        self.boot_index == Some(0)
    }
}

/// A row to record (the API's reservation or a create's request).
#[derive(Clone, Debug, Default)]
pub struct NewBdm {
    pub instance_uuid: String,
    pub source_type: String,
    pub image_id: Option<String>,
    pub volume_id: Option<String>,
    pub volume_size: Option<i64>,
    pub attachment_id: Option<String>,
    pub device_name: Option<String>,
    pub boot_index: Option<i64>,
    pub delete_on_termination: bool,
    pub tag: Option<String>,
}

pub async fn insert(conn: &impl ConnectionTrait, n: NewBdm) -> anyhow::Result<Bdm> {
    let am = bdm::ActiveModel {
        uuid: Set(uuid::Uuid::new_v4().to_string()),
        instance_uuid: Set(n.instance_uuid),
        source_type: Set(n.source_type),
        destination_type: Set("volume".into()),
        image_id: Set(n.image_id),
        volume_id: Set(n.volume_id),
        volume_size: Set(n.volume_size),
        attachment_id: Set(n.attachment_id),
        device_name: Set(n.device_name),
        boot_index: Set(n.boot_index),
        delete_on_termination: Set(n.delete_on_termination),
        tag: Set(n.tag),
        connection_info: Set(None),
        created_at: Set(crate::store::instances::now()),
        updated_at: Set(None),
        ..Default::default()
    };
    Ok(am.insert(conn).await?)
}

/// A server's volumes, boot volume first, then in the order they came.
pub async fn of_instance(db: &Db, instance_uuid: &str) -> anyhow::Result<Vec<Bdm>> {
    let mut rows = bdm::Entity::find()
        .filter(bdm::Column::InstanceUuid.eq(instance_uuid))
        .order_by_asc(bdm::Column::Id)
        .all(&db.read)
        .await?;
    rows.sort_by_key(|b| if b.is_root() { 0 } else { 1 });
    Ok(rows)
}

/// The volumes of many servers (for server lists).
pub async fn of_instances(db: &Db, uuids: &[String]) -> anyhow::Result<Vec<Bdm>> {
    if uuids.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for chunk in uuids.chunks(500) {
        out.extend(
            bdm::Entity::find()
                .filter(bdm::Column::InstanceUuid.is_in(chunk.iter().cloned()))
                .order_by_asc(bdm::Column::Id)
                .all(&db.read)
                .await?,
        );
    }
    Ok(out)
}

/// The row of `volume_id` on a server.
pub async fn find(db: &Db, instance_uuid: &str, volume_id: &str) -> anyhow::Result<Option<Bdm>> {
    Ok(bdm::Entity::find()
        .filter(bdm::Column::InstanceUuid.eq(instance_uuid))
        .filter(bdm::Column::VolumeId.eq(volume_id))
        .one(&db.write)
        .await?)
}

/// The row of `volume_id` on whichever server has it (Nova's `get_by_volume`).
pub async fn by_volume(db: &Db, volume_id: &str) -> anyhow::Result<Option<Bdm>> {
    Ok(bdm::Entity::find()
        .filter(bdm::Column::VolumeId.eq(volume_id))
        .order_by_asc(bdm::Column::Id)
        .one(&db.write)
        .await?)
}

pub async fn get(db: &Db, uuid: &str) -> anyhow::Result<Option<Bdm>> {
    Ok(bdm::Entity::find().filter(bdm::Column::Uuid.eq(uuid)).one(&db.write).await?)
}

/// Change a row's volume, attachment, connection info or flag (`None`: keep).
#[derive(Default)]
pub struct BdmChange {
    pub volume_id: Option<Option<String>>,
    pub attachment_id: Option<Option<String>>,
    pub connection_info: Option<Option<String>>,
    pub delete_on_termination: Option<bool>,
}

pub async fn update(db: &Db, uuid: &str, ch: BdmChange) -> anyhow::Result<()> {
    use sea_orm::sea_query::Expr;
    let mut q = bdm::Entity::update_many()
        .col_expr(bdm::Column::UpdatedAt, Expr::value(crate::store::instances::now()))
        .filter(bdm::Column::Uuid.eq(uuid));
    if let Some(v) = ch.volume_id {
        q = q.col_expr(bdm::Column::VolumeId, Expr::value(v));
    }
    if let Some(v) = ch.attachment_id {
        q = q.col_expr(bdm::Column::AttachmentId, Expr::value(v));
    }
    if let Some(v) = ch.connection_info {
        q = q.col_expr(bdm::Column::ConnectionInfo, Expr::value(v));
    }
    if let Some(v) = ch.delete_on_termination {
        q = q.col_expr(bdm::Column::DeleteOnTermination, Expr::value(v));
    }
    q.exec(&db.write).await?;
    Ok(())
}

pub async fn remove(db: &Db, uuid: &str) -> anyhow::Result<()> {
    bdm::Entity::delete_many().filter(bdm::Column::Uuid.eq(uuid)).exec(&db.write).await?;
    Ok(())
}

/// The next free device name for a server (`/dev/vdb`, `/dev/vdc`, ...),
/// or the one asked for when it is free (else `None`: in use).
pub fn device_name(taken: &[Bdm], asked: Option<&str>, ephemeral: bool) -> Option<String> {
    let used: Vec<String> = taken.iter().filter_map(|b| b.device_name.clone()).collect();
    if let Some(a) = asked.filter(|a| !a.is_empty()) {
        return (!used.iter().any(|u| u == a)).then(|| a.to_string());
    }
    next_device(&used, ephemeral)
}

/// The first free `/dev/vdX` after the root disk (and the ephemeral disk).
pub fn next_device(used: &[String], ephemeral: bool) -> Option<String> {
    let first = if ephemeral { b'c' } else { b'b' };
    (first..=b'z').map(|c| format!("/dev/vd{}", c as char)).find(|d| !used.contains(d))
}

/// The connector a host gives the volume service (os-brick's, for a fake host).
pub fn connector(host: &str, ip: &str) -> Value {
    json!({
        "platform": "x86_64",
        "os_type": "linux",
        "ip": ip,
        "host": host,
        "multipath": false,
        "do_local_attach": false,
        "initiator": format!("iqn.2010-10.org.stratus:{host}"),
    })
}

/// What the volume service answered, when it was not a success.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("block storage answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("block storage: {0}")]
    Other(String),
}

impl VolumeError {
    pub fn status(&self) -> Option<u16> {
        match self {
            VolumeError::Status { status, .. } => Some(*status),
            VolumeError::Other(_) => None,
        }
    }
    /// Cinder's own message (without the status).
    pub fn message(&self) -> String {
        match self {
            VolumeError::Status { message, .. } => message.clone(),
            VolumeError::Other(m) => m.clone(),
        }
    }
}

pub type VResult<T> = std::result::Result<T, VolumeError>;

/// Cinder's fault message: `{"badRequest": {"message": ...}}` (any key).
fn fault_message(text: &str) -> String {
    let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    v.as_object()
        .and_then(|o| o.values().find_map(|f| f["message"].as_str().map(str::to_string)))
        .unwrap_or_else(|| text.chars().take(300).collect())
}

/// The block storage service, with the service token.
pub struct Volumes {
    http: reqwest::Client,
    base: String,
    tokens: TokenSource,
}

impl Volumes {
    pub fn new(base_url: &str, tokens: TokenSource) -> anyhow::Result<Arc<Volumes>> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
        Ok(Arc::new(Volumes { http, base: base_url.trim_end_matches('/').to_string(), tokens }))
    }

    async fn service_token(&self) -> VResult<String> {
        (self.tokens)().await.map_err(|e| VolumeError::Other(format!("service token: {e:#}")))
    }

    async fn send(&self, method: reqwest::Method, path: &str, token: &str, body: Option<Value>) -> VResult<Value> {
        let mut rb = self
            .http
            .request(method, format!("{}/v3{path}", self.base))
            .header("x-auth-token", token)
            .header("openstack-api-version", API_VERSION);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.map_err(|e| VolumeError::Other(e.to_string()))?;
        let status = r.status();
        let text = r.text().await.map_err(|e| VolumeError::Other(e.to_string()))?;
        if !status.is_success() {
            return Err(VolumeError::Status { status: status.as_u16(), message: fault_message(&text) });
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Any call of the block storage API as the caller (`token`): the
    /// deprecated proxies (`/os-volumes`, `/os-snapshots`) forward with it.
    pub async fn call(&self, method: reqwest::Method, path: &str, token: &str, body: Option<Value>) -> VResult<Value> {
        self.send(method, path, token, body).await
    }

    async fn token_or_service(&self, token: Option<&str>) -> VResult<String> {
        match token {
            Some(t) => Ok(t.to_string()),
            None => self.service_token().await,
        }
    }

    /// A volume (`None`: not found, or not visible with `token`; no token: the service's).
    pub async fn get(&self, token: Option<&str>, id: &str) -> VResult<Option<Value>> {
        let token = self.token_or_service(token).await?;
        match self.send(reqwest::Method::GET, &format!("/volumes/{id}"), &token, None).await {
            Ok(v) => Ok(Some(v["volume"].clone())),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Make a volume (from an image when given) in `token`'s project.
    pub async fn create(&self, token: Option<&str>, size: i64, image: Option<&str>, name: &str) -> VResult<Value> {
        let token = self.token_or_service(token).await?;
        let mut v = json!({"size": size, "name": name});
        if let Some(i) = image {
            v["imageRef"] = json!(i);
        }
        let r = self.send(reqwest::Method::POST, "/volumes", &token, Some(json!({"volume": v}))).await?;
        Ok(r["volume"].clone())
    }

    /// Poll a volume until it is `available` (an error status, a vanished
    /// volume or the time running out is an error).
    pub async fn wait_available(&self, id: &str, timeout: Duration) -> VResult<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut pause = Duration::from_millis(50);
        loop {
            let Some(v) = self.get(None, id).await? else {
                return Err(VolumeError::Other(format!("volume {id} went away")));
            };
            let status = v["status"].as_str().unwrap_or_default();
            if status == "available" {
                return Ok(v);
            }
            if status.starts_with("error") {
                return Err(VolumeError::Other(format!("volume {id} went to status {status}")));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(VolumeError::Other(format!(
                    "volume {id} did not become available in {}s (status {status})",
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// Delete a volume once it can be (not while it is being made or
    /// detached); gone already is fine.
    pub async fn delete(&self, id: &str) -> VResult<()> {
        let deadline = tokio::time::Instant::now() + AVAILABLE_TIMEOUT;
        loop {
            let Some(v) = self.get(None, id).await? else { return Ok(()) };
            let status = v["status"].as_str().unwrap_or_default();
            let busy = matches!(
                status,
                "creating" | "downloading" | "attaching" | "detaching" | "reserved" | "deleting" | "in-use"
            );
            if !busy || tokio::time::Instant::now() >= deadline {
                if status == "deleting" {
                    return Ok(());
                }
                let token = self.service_token().await?;
                return match self.send(reqwest::Method::DELETE, &format!("/volumes/{id}"), &token, None).await {
                    Ok(_) => Ok(()),
                    Err(e) if e.status() == Some(404) => Ok(()),
                    Err(e) => Err(e),
                };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Reserve a volume for a server (an attachment without a connector).
    pub async fn attachment_create(
        &self,
        token: Option<&str>,
        volume_id: &str,
        instance_uuid: &str,
        connector: Option<Value>,
    ) -> VResult<Value> {
        let token = self.token_or_service(token).await?;
        let mut a = json!({"volume_id": volume_id, "instance_uuid": instance_uuid});
        if let Some(c) = connector {
            a["connector"] = c;
        }
        let r = self.send(reqwest::Method::POST, "/attachments", &token, Some(json!({"attachment": a}))).await?;
        Ok(r["attachment"].clone())
    }

    /// Give the attachment the host's connector; its connection info.
    pub async fn attachment_update(&self, id: &str, connector: Value) -> VResult<Value> {
        let token = self.service_token().await?;
        let r = self
            .send(
                reqwest::Method::PUT,
                &format!("/attachments/{id}"),
                &token,
                Some(json!({"attachment": {"connector": connector}})),
            )
            .await?;
        Ok(r["attachment"].clone())
    }

    /// The host has the volume: it is in use.
    pub async fn attachment_complete(&self, id: &str) -> VResult<()> {
        let token = self.service_token().await?;
        self.send(
            reqwest::Method::POST,
            &format!("/attachments/{id}/action"),
            &token,
            Some(json!({"os-complete": null})),
        )
        .await?;
        Ok(())
    }

    /// Give an attachment back; gone already is fine.
    pub async fn attachment_delete(&self, id: &str) -> VResult<()> {
        let token = self.service_token().await?;
        match self.send(reqwest::Method::DELETE, &format!("/attachments/{id}"), &token, None).await {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Everything of a server's volumes goes: the attachments are given
    /// back, the volumes that go with the server are deleted, the rows
    /// removed. Idempotent (each row goes once its volume is dealt with).
    pub async fn release_instance(&self, db: &Db, instance_uuid: &str) -> anyhow::Result<()> {
        for b in of_instance(db, instance_uuid).await? {
            if let Some(a) = &b.attachment_id {
                self.attachment_delete(a).await?;
            }
            if b.delete_on_termination
                && let Some(v) = &b.volume_id
            {
                self.delete(v).await?;
            }
            remove(db, &b.uuid).await?;
        }
        Ok(())
    }
}

/// `os-extended-volumes:volumes_attached` of a server: `[{id}]`, with
/// `delete_on_termination` from 2.3.
pub fn volumes_attached(rows: &[&Bdm], with_delete_flag: bool) -> Value {
    Value::Array(
        rows.iter()
            .filter_map(|b| {
                let id = b.volume_id.as_ref()?;
                Some(if with_delete_flag {
                    json!({"id": id, "delete_on_termination": b.delete_on_termination})
                } else {
                    json!({"id": id})
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(dev: &str) -> Bdm {
        Bdm {
            id: 1,
            uuid: String::new(),
            instance_uuid: String::new(),
            source_type: "volume".into(),
            destination_type: "volume".into(),
            image_id: None,
            volume_id: Some("v".into()),
            volume_size: None,
            attachment_id: None,
            device_name: Some(dev.into()),
            boot_index: None,
            delete_on_termination: false,
            tag: None,
            connection_info: None,
            created_at: 0,
            updated_at: None,
        }
    }

    #[test]
    fn device_names_skip_the_taken_ones() {
        assert_eq!(device_name(&[], None, false).as_deref(), Some("/dev/vdb"));
        assert_eq!(device_name(&[], None, true).as_deref(), Some("/dev/vdc"));
        assert_eq!(device_name(&[row("/dev/vdb")], None, false).as_deref(), Some("/dev/vdc"));
        assert_eq!(device_name(&[row("/dev/vdb")], Some("/dev/vdb"), false), None);
        assert_eq!(device_name(&[row("/dev/vdb")], Some("/dev/vdd"), false).as_deref(), Some("/dev/vdd"));
    }

    #[test]
    fn faults_give_their_message() {
        assert_eq!(fault_message(r#"{"badRequest": {"code": 400, "message": "nope"}}"#), "nope");
        assert_eq!(fault_message("plain"), "plain");
    }

    #[test]
    fn the_attached_list_has_the_flag_from_23() {
        let r = row("/dev/vdb");
        assert_eq!(volumes_attached(&[&r], false), json!([{"id": "v"}]));
        assert_eq!(volumes_attached(&[&r], true), json!([{"id": "v", "delete_on_termination": false}]));
    }
}
