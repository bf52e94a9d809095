//! `GET /` and `GET /v3/` (API versions, no token), `GET /v3/extensions`.

use axum::Router;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::State;
use crate::api::ok;

pub fn routes() -> Router<State> {
    Router::new().route("/", get(versions)).route("/v3", get(v3)).route("/v3/", get(v3))
}

pub fn authed_routes() -> Router<State> {
    Router::new().route("/v3/extensions", get(extensions))
}

fn version_doc(base: &str) -> Value {
    json!({
        "id": "v3.0",
        "status": "CURRENT",
        "version": crate::VERSIONS.max.to_string(),
        "min_version": crate::VERSIONS.min.to_string(),
        "updated": "2023-08-31T00:00:00Z",
        "links": [
            {"href": "https://docs.openstack.org/", "type": "text/html", "rel": "describedby"},
            {"href": format!("{base}/v3/"), "rel": "self"},
        ],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}],
    })
}

async fn versions(AxState(svc): AxState<State>) -> Response {
    (StatusCode::MULTIPLE_CHOICES, axum::Json(json!({"versions": [version_doc(&svc.base_url)]}))).into_response()
}

async fn v3(AxState(svc): AxState<State>) -> Response {
    ok(json!({"versions": [version_doc(&svc.base_url)]}))
}

/// The extensions Cinder lists (clients read the aliases to find features).
const EXTENSIONS: &[(&str, &str, &str)] = &[
    ("os-admin-actions", "AdminActions", "Enable admin actions."),
    ("os-availability-zone", "AvailabilityZones", "Describe Availability Zones."),
    ("backups", "Backups", "Backups support."),
    ("os-extended-services", "ExtendedServices", "Extended services support."),
    ("os-extended-snapshot-attributes", "ExtendedSnapshotAttributes", "Extended SnapshotAttributes support."),
    ("os-hosts", "Hosts", "Admin-only host administration."),
    ("qos-specs", "Qos_specs_manage", "QoS specs support."),
    ("os-quota-class-sets", "Quota_classes", "Quota classes management support."),
    ("os-quota-sets", "Quotas", "Quota management support."),
    ("scheduler-stats", "Scheduler_stats", "Scheduler stats support."),
    ("os-services", "Services", "Services support."),
    ("os-snapshot-actions", "SnapshotActions", "Enable snapshot manager actions."),
    ("os-types-extra-specs", "TypesExtraSpecs", "Type extra specs support."),
    ("os-types-manage", "TypesManage", "Types manage support."),
    ("os-used-limits", "UsedLimits", "Provide data on limited resources that are being used."),
    ("os-vol-host-attr", "VolumeHostAttribute", "Expose host as an attribute of a volume."),
    ("os-vol-image-meta", "VolumeImageMetadata", "Show image metadata associated with the volume."),
    ("os-vol-mig-status-attr", "VolumeMigStatusAttribute", "Expose migration_status as an attribute of a volume."),
    ("os-vol-tenant-attr", "VolumeTenantAttribute", "Expose the internal project_id as an attribute of a volume."),
    ("os-volume-actions", "VolumeActions", "Enable volume actions."),
    ("os-volume-encryption-metadata", "VolumeEncryptionMetadata", "Volume encryption metadata."),
    ("os-volume-transfer", "VolumeTransfer", "Volume transfer management support."),
    ("os-volume-type-access", "VolumeTypeAccess", "Volume type access support."),
    ("encryption", "VolumeTypeEncryption", "Encryption support for volume types."),
    ("os-volume-unmanage", "VolumeUnmanage", "Enable volume unmanage operation."),
];

async fn extensions() -> Response {
    let items: Vec<Value> = EXTENSIONS
        .iter()
        .map(|(alias, name, desc)| {
            json!({"alias": alias, "name": name, "description": desc, "links": [], "updated": "2013-04-18T00:00:00+00:00"})
        })
        .collect();
    ok(json!({"extensions": items}))
}
