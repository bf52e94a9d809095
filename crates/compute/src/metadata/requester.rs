//! Who is asking: the instance the metadata proxy names, as Nova's
//! `_handle_instance_id_request` checks it. A header missing (or given
//! twice) is a 400, a signature that is not the shared secret's HMAC of the
//! instance id a 403, an instance that does not exist (or not in the
//! project named) a 404.

use axum::http::{HeaderMap, StatusCode};
use stratus_core::metadata_proxy::{self, FORWARDED_FOR, INSTANCE_ID, INSTANCE_ID_SIGNATURE, TENANT_ID};

use super::{MetadataError, MetadataService};
use crate::store::instances::{self, Instance};

/// The instance a request is about, and the guest address the proxy saw.
pub struct Requester {
    pub instance: Instance,
    pub forwarded_for: Option<String>,
}

/// The value of a header the proxy sets once; `Ok(None)` when absent.
fn single(headers: &HeaderMap, name: &str, label: &str) -> Result<Option<String>, MetadataError> {
    let mut all = headers.get_all(name).iter();
    let Some(first) = all.next() else { return Ok(None) };
    if all.next().is_some() {
        return Err(MetadataError::bad_request(format!("Multiple {label} headers found within request.")));
    }
    match first.to_str() {
        Ok(v) => Ok(Some(v.to_string())),
        Err(_) => Err(MetadataError::bad_request(format!("The {label} header is not text."))),
    }
}

/// The instance named by a request from a metadata proxy.
pub async fn identify(svc: &MetadataService, headers: &HeaderMap) -> Result<Requester, MetadataError> {
    let instance_id = single(headers, INSTANCE_ID, "X-Instance-ID")?;
    let signature = single(headers, INSTANCE_ID_SIGNATURE, "X-Instance-ID-Signature")?;
    let tenant_id = single(headers, TENANT_ID, "X-Tenant-ID")?;
    // the guest's address, as the proxy saw it (the first of a list)
    let forwarded_for = headers
        .get(FORWARDED_FOR)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    let Some(instance_id) = instance_id else {
        return Err(MetadataError::bad_request("X-Instance-ID header is missing from request."));
    };
    let Some(signature) = signature else {
        return Err(MetadataError::bad_request("X-Instance-ID-Signature header is missing from request."));
    };
    let Some(tenant_id) = tenant_id else {
        return Err(MetadataError::bad_request("X-Tenant-ID header is missing from request."));
    };
    if !metadata_proxy::verify(&svc.shared_secret, &instance_id, &signature) {
        tracing::warn!(
            %instance_id,
            requester = forwarded_for.as_deref().unwrap_or(""),
            "X-Instance-ID-Signature does not match the expected signature"
        );
        return Err(MetadataError::new(StatusCode::FORBIDDEN, "Invalid proxy request signature."));
    }
    let Some(instance) = instances::get_live(&svc.api.db, &instance_id).await? else {
        tracing::warn!(%instance_id, "metadata asked for an instance that does not exist");
        return Err(MetadataError::not_found());
    };
    if instance.project_id != tenant_id {
        tracing::warn!(%tenant_id, %instance_id, "Tenant_id does not match the tenant_id of the instance");
        return Err(MetadataError::not_found());
    }
    Ok(Requester { instance, forwarded_for })
}
