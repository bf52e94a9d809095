//! What Nova's network proxy APIs share (floating IPs, security groups,
//! networks): they forward to the network service with the caller's token,
//! over the same REST client servers' ports use, and they end at
//! microversion 2.35 (`MAX_PROXY_API_SUPPORT_VERSION`): from 2.36 Nova
//! answers 404 as for any route the version does not have.

use axum::http::StatusCode;
use serde_json::Value;
use stratus_clients::network::{NetworkClient, NetworkError};
use stratus_core::Microversion;

use super::resources::common as c;
use crate::ComputeService;
use crate::error::{ComputeError, Result};

/// 404 from 2.36 on (the proxies are Nova's up to 2.35).
pub fn up_to_2_35(mv: Microversion) -> Result<()> {
    if mv.at_least(2, 36) { Err(c::version_not_found()) } else { Ok(()) }
}

/// The network service's client; 501 when compute runs without networking.
pub fn neutron(svc: &ComputeService) -> Result<&NetworkClient> {
    match svc.deps()?.network.as_deref() {
        Some(n) => Ok(&n.client),
        None => Err(ComputeError::Status(
            StatusCode::NOT_IMPLEMENTED,
            "Network driver does not support this function.".into(),
        )),
    }
}

/// A failure the proxy has no Nova word for: a 500 with the cause logged.
pub fn failed(e: NetworkError) -> ComputeError {
    ComputeError::Internal(anyhow::anyhow!("{e}"))
}

/// The message the network service gave (Nova passes neutronclient's text on).
pub fn message(e: &NetworkError) -> String {
    match e {
        NetworkError::Refused { message, .. } => message.clone(),
        NetworkError::Failed(e) => format!("{e:#}"),
    }
}

/// Nova's answer to an API removed with nova-network: 410 at any microversion.
pub fn gone() -> ComputeError {
    ComputeError::Status(
        StatusCode::GONE,
        "This resource is no longer available.  No forwarding address is given.".into(),
    )
}

/// One resource, or None when the network service says 404.
pub async fn show(net: &NetworkClient, token: &str, path: &str, key: &str) -> Result<Option<Value>> {
    match net.get(token, path).await {
        Ok(v) => Ok(Some(v[key].clone())),
        Err(NetworkError::Refused { status: 404, .. }) => Ok(None),
        Err(e) => Err(failed(e)),
    }
}
