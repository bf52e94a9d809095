//! Remote consoles (`openstack console url show --novnc|--serial`): the API
//! asks the server's host where the guest's console is, stores a one-time,
//! expiring authorization for it under a random token (hashed, as Nova's
//! `console_auth_tokens`), and hands out a URL of a console proxy carrying
//! the token; the proxy ([`proxy`]) consumes the token and pipes a websocket
//! to the console.
//!
//! `migration` (M0005), `entity` and `store` keep the authorizations.

pub mod entity;
pub mod migration;
pub mod proxy;
pub mod store;

use std::time::Duration;

use stratus_core::Config;
use stratus_virt::ConsoleKind;

use crate::ComputeService;
use crate::error::{ComputeError, Result, bad, conflict, invalid_state};
use crate::model::{task, vm};
use crate::rpc::{self, ConsoleEndpointReply};
use crate::store::instances::Instance;

/// The URL novnc consoles are handed out under (`compute.novncproxy_base_url`;
/// empty: the proxy's own address), or none when there is no noVNC proxy.
pub fn novnc_base_url(cfg: &Config) -> Option<String> {
    let c = &cfg.compute;
    match (c.novncproxy_base_url.is_empty(), c.novncproxy_listen.is_empty()) {
        (false, _) => Some(c.novncproxy_base_url.clone()),
        (true, false) => Some(format!("http://{}/vnc_auto.html", c.novncproxy_listen)),
        (true, true) => None,
    }
}

/// The URL serial consoles are handed out under, or none without a serial proxy.
pub fn serial_base_url(cfg: &Config) -> Option<String> {
    let c = &cfg.compute;
    match (c.serialproxy_base_url.is_empty(), c.serialproxy_listen.is_empty()) {
        (false, _) => Some(c.serialproxy_base_url.clone()),
        (true, false) => Some(format!("ws://{}/", c.serialproxy_listen)),
        (true, true) => None,
    }
}

/// The URL of one authorization, as Nova's `ConsoleAuthToken.access_url`:
/// noVNC (1.1 and later) takes the token inside its `path` parameter
/// (`?path=%3Ftoken%3D...`); the others take `?token=`.
pub fn access_url(console_type: &str, base: &str, token: &str) -> String {
    if console_type == "novnc" {
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}path=%3Ftoken%3D{token}")
    } else {
        format!("{base}?token={token}")
    }
}

/// A console URL for a server: `protocol` and `console_type` as the API
/// takes them, `action` the name Nova's state errors use (`get_vnc_console`).
pub async fn get_console(
    svc: &ComputeService,
    inst: &Instance,
    protocol: &str,
    console_type: &str,
    action: &str,
) -> Result<String> {
    let unavailable = || bad(format!("Unavailable console type {console_type}."));
    let (kind, base) = match protocol {
        "vnc" => (ConsoleKind::Vnc, novnc_base_url(&svc.cfg)),
        "serial" => (ConsoleKind::Serial, serial_base_url(&svc.cfg)),
        // SPICE and MKS consoles are off, as in a Nova without them
        _ => return Err(unavailable()),
    };
    let Some(base) = base else { return Err(unavailable()) };
    let wanted = if kind == ConsoleKind::Vnc { "novnc" } else { "serial" };
    if console_type != wanted {
        return Err(bad(format!("Invalid console type {console_type}")));
    }
    let Some(host) = inst.host.clone().filter(|_| inst.vm_state != vm::BUILDING) else {
        return Err(conflict(format!("Instance {} is not ready", inst.uuid)));
    };
    if let Some(t) = inst.task_state.as_deref().filter(|t| [task::DELETING, task::MIGRATING].contains(t)) {
        return Err(invalid_state(action, &inst.uuid, "task_state", t));
    }
    let msg = rpc::GetConsoleEndpoint { instance_uuid: inst.uuid.clone(), kind };
    let rid = stratus_core::http::current_request_id();
    let reply: ConsoleEndpointReply = svc
        .deps()?
        .bus
        .call(&rpc::console_endpoint_topic(&host), &msg, &rid, Duration::from_secs(30))
        .await
        .map_err(|e| conflict(format!("Instance {} is not ready: its host does not answer ({e})", inst.uuid)))?;
    let endpoint = match reply {
        ConsoleEndpointReply::Ready(ep) => ep,
        ConsoleEndpointReply::Unavailable => return Err(unavailable()),
        ConsoleEndpointReply::NotRunning => return Err(invalid_state(action, &inst.uuid, "vm_state", &inst.vm_state)),
        ConsoleEndpointReply::NoGuest => return Err(conflict(format!("Instance {} is not ready", inst.uuid))),
    };
    let new = store::NewAuthorization {
        console_type: console_type.to_string(),
        endpoint,
        instance_uuid: inst.uuid.clone(),
        compute_host: host,
        access_url_base: base.clone(),
        ttl: Duration::from_secs(svc.cfg.compute.console_token_ttl),
    };
    let (token, _) = store::authorize(&svc.db, &new).await.map_err(|e| match e {
        ComputeError::Internal(e) => ComputeError::Internal(e.context("storing a console authorization")),
        other => other,
    })?;
    Ok(access_url(console_type, &base, &token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_carry_the_token_as_nova_puts_it() {
        assert_eq!(
            access_url("novnc", "http://h:6080/vnc_auto.html", "t-1"),
            "http://h:6080/vnc_auto.html?path=%3Ftoken%3Dt-1"
        );
        assert_eq!(
            access_url("novnc", "http://h/vnc_lite.html?scale=1", "t"),
            "http://h/vnc_lite.html?scale=1&path=%3Ftoken%3Dt"
        );
        assert_eq!(access_url("serial", "ws://h:6083/", "t"), "ws://h:6083/?token=t");
    }

    #[test]
    fn base_urls_follow_the_listen_addresses() {
        let mut cfg = Config::default();
        assert_eq!(novnc_base_url(&cfg).as_deref(), Some("http://127.0.0.1:6080/vnc_auto.html"));
        assert_eq!(serial_base_url(&cfg).as_deref(), Some("ws://127.0.0.1:6083/"));
        cfg.compute.serialproxy_listen.clear();
        assert_eq!(serial_base_url(&cfg), None);
        cfg.compute.novncproxy_base_url = "https://cloud.example/vnc_lite.html".into();
        assert_eq!(novnc_base_url(&cfg).as_deref(), Some("https://cloud.example/vnc_lite.html"));
    }
}
