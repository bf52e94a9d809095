//! Servers' ports in the network service, as Nova's network API does it:
//! over Neutron's REST API with the service token (an admin, so it can set a
//! port's project and binding).
//!
//! - The API resolves what a create asks for ([`Networking::resolve`]):
//!   `none`, `auto` (the one network the project can use, else its
//!   auto-allocated topology's network), or a list of
//!   networks / ports / fixed IPs, checked with the caller's token.
//! - The build saga allocates the ports ([`Networking::allocate`]) and binds
//!   them to each host it tries ([`Networking::bind`]); its undo and every
//!   delete call [`Networking::deallocate`], which deletes the ports compute
//!   made and unbinds the ones the user gave (found by `device_id`, so it is
//!   idempotent and survives a crash half-way).
//!
//! What the server got is kept in its system metadata (`network_info`), which
//! the server view renders as `addresses`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use stratus_clients::network::{NetworkClient, NetworkError};

use crate::placement::TokenSource;

/// One requested network attachment, resolved at the API.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Requested {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_id: Option<String>,
    /// A port the user made (kept when the server goes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// A port of a server as the server view needs it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Vif {
    pub port_id: String,
    pub network_id: String,
    pub network_name: String,
    pub mac: String,
    /// (address, version)
    pub ips: Vec<(String, u8)>,
    /// The user's port: unbound, not deleted, when the server goes.
    pub preserve: bool,
    /// The device tag asked for (shown from microversion 2.70).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The network's MTU (the tap's, as os-vif sets it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
}

/// Why a create's networks were refused (status, message), in Nova's words.
#[derive(Debug)]
pub struct Refusal(pub u16, pub String);

pub struct Networking {
    pub client: NetworkClient,
    tokens: TokenSource,
}

fn failed(e: NetworkError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

impl Networking {
    pub fn new(base_url: &str, tokens: TokenSource) -> anyhow::Result<Arc<Networking>> {
        Ok(Arc::new(Networking { client: NetworkClient::new(base_url)?, tokens }))
    }

    async fn token(&self) -> anyhow::Result<String> {
        (self.tokens)().await
    }

    /// What a create's `networks` (Nova's request format, already
    /// schema-checked) means for `project`, checked with the caller's token.
    pub async fn resolve(
        &self,
        user_token: &str,
        project: &str,
        networks: &Value,
        explicit_auto: bool,
    ) -> anyhow::Result<std::result::Result<Vec<Requested>, Refusal>> {
        match networks {
            Value::String(s) if s == "none" => Ok(Ok(Vec::new())),
            Value::Array(list) => {
                let mut out = Vec::new();
                for n in list {
                    let mut r = Requested {
                        tag: n["tag"].as_str().map(str::to_string),
                        fixed_ip: n["fixed_ip"].as_str().map(str::to_string),
                        ..Default::default()
                    };
                    if let Some(ip) = &r.fixed_ip
                        && ip.parse::<std::net::IpAddr>().is_err()
                    {
                        return Ok(Err(Refusal(400, format!("Invalid fixed IP address ({ip})"))));
                    }
                    if let Some(p) = n["port"].as_str().filter(|p| !p.is_empty()) {
                        let Some(port) = self.client.port(user_token, p).await.map_err(failed)? else {
                            return Ok(Err(Refusal(400, format!("Port id {p} could not be found."))));
                        };
                        if port["device_id"].as_str().is_some_and(|d| !d.is_empty()) {
                            return Ok(Err(Refusal(409, format!("Port {p} is still in use."))));
                        }
                        r.port_id = Some(p.to_string());
                        r.network_id = port["network_id"].as_str().map(str::to_string);
                    } else if let Some(u) = n["uuid"].as_str() {
                        if self.client.network(user_token, u).await.map_err(failed)?.is_none() {
                            return Ok(Err(Refusal(400, format!("Network {u} could not be found."))));
                        }
                        r.network_id = Some(u.to_string());
                    } else {
                        return Ok(Err(Refusal(400, "Bad networks format: a network needs a uuid or a port".into())));
                    }
                    out.push(r);
                }
                Ok(Ok(out))
            }
            // `auto` (or nothing before 2.37): the project's one usable network
            _ => {
                let mut usable: Vec<Value> = Vec::new();
                for n in self.client.networks(user_token, &[("project_id", project)]).await.map_err(failed)? {
                    if n["router:external"] != true {
                        usable.push(n);
                    }
                }
                if usable.is_empty() {
                    usable = self.client.networks(user_token, &[("shared", "true")]).await.map_err(failed)?;
                }
                match usable.len() {
                    // none of its own or shared: Neutron's auto-allocated topology (as Nova's
                    // `_auto_allocate_network`), made once per project by the network service
                    0 if explicit_auto => match self.client.auto_allocated_network(user_token, project).await {
                        Ok(net) => Ok(Ok(vec![Requested { network_id: Some(net), ..Default::default() }])),
                        Err(e @ NetworkError::Failed(_)) => Err(failed(e)),
                        Err(e) => {
                            tracing::info!(%project, error = %e, "no auto-allocated network");
                            Ok(Err(Refusal(
                                400,
                                format!("Unable to automatically allocate a network for project {project}"),
                            )))
                        }
                    },
                    0 => Ok(Ok(Vec::new())),
                    1 => Ok(Ok(vec![Requested {
                        network_id: usable[0]["id"].as_str().map(str::to_string),
                        ..Default::default()
                    }])),
                    _ => Ok(Err(Refusal(
                        409,
                        "Multiple possible networks found, use a Network ID to be more specific.".into(),
                    ))),
                }
            }
        }
    }

    /// Create (or take over) the server's ports; a port already made for it
    /// by an earlier attempt is reused (the saga may run this twice).
    pub async fn allocate(
        &self,
        server: &str,
        project: &str,
        zone: &str,
        security_groups: &[String],
        requested: &[Requested],
    ) -> anyhow::Result<Vec<Vif>> {
        let token = self.token().await?;
        let existing = self.client.ports(&token, &[("device_id", server)]).await.map_err(failed)?;
        let owner = format!("compute:{zone}");
        let mut vifs = Vec::new();
        for (i, r) in requested.iter().enumerate() {
            let port = if let Some(p) = &r.port_id {
                self.client
                    .update_port(&token, p, json!({"device_id": server, "device_owner": owner}))
                    .await
                    .map_err(failed)?
            } else if let Some(p) = existing.iter().find(|p| p["name"] == port_name(server, i)) {
                p.clone()
            } else {
                let Some(net) = &r.network_id else { continue };
                let mut body = json!({
                    "network_id": net,
                    "project_id": project,
                    "device_id": server,
                    "device_owner": owner,
                    "name": port_name(server, i),
                });
                if let Some(ip) = &r.fixed_ip {
                    body["fixed_ips"] = json!([{"ip_address": ip}]);
                }
                if !security_groups.is_empty() {
                    body["security_groups"] = json!(self.group_ids(&token, project, security_groups).await?);
                }
                self.client.create_port(&token, body).await.map_err(failed)?
            };
            vifs.push(self.vif_of(&token, &port, r.port_id.is_some(), r.tag.clone()).await?);
        }
        Ok(vifs)
    }

    /// A port as the server's network info keeps it (with its network's name).
    async fn vif_of(&self, token: &str, port: &Value, preserve: bool, tag: Option<String>) -> anyhow::Result<Vif> {
        let net_id = port["network_id"].as_str().unwrap_or_default().to_string();
        let (net_name, mtu) = match self.client.network(token, &net_id).await.map_err(failed)? {
            Some(n) => (
                n["name"].as_str().unwrap_or_default().to_string(),
                n["mtu"].as_u64().and_then(|m| u32::try_from(m).ok()).filter(|m| *m >= 68),
            ),
            None => (String::new(), None),
        };
        Ok(Vif {
            port_id: port["id"].as_str().unwrap_or_default().to_string(),
            network_id: net_id,
            network_name: net_name,
            mac: port["mac_address"].as_str().unwrap_or_default().to_string(),
            ips: port["fixed_ips"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["ip_address"].as_str())
                .map(|ip| (ip.to_string(), if ip.contains(':') { 6 } else { 4 }))
                .collect(),
            preserve,
            tag,
            mtu,
        })
    }

    /// What an interface attach asks for (Nova's `os-interface` create), checked
    /// with the caller's token: the user's port (which must exist, be free and
    /// have an address), a network (which must exist), or neither — then the
    /// one network the project can use, as Nova's `_get_available_networks`
    /// finds them (its own unshared networks and the shared ones).
    pub async fn resolve_attach(
        &self,
        user_token: &str,
        project: &str,
        network_id: Option<&str>,
        port_id: Option<&str>,
        fixed_ip: Option<&str>,
        tag: Option<&str>,
    ) -> anyhow::Result<std::result::Result<Requested, Refusal>> {
        let mut r =
            Requested { fixed_ip: fixed_ip.map(str::to_string), tag: tag.map(str::to_string), ..Default::default() };
        if let Some(p) = port_id {
            let Some(port) = self.client.port(user_token, p).await.map_err(failed)? else {
                return Ok(Err(Refusal(404, format!("Port id {p} could not be found."))));
            };
            if port["device_id"].as_str().is_some_and(|d| !d.is_empty()) {
                return Ok(Err(Refusal(409, format!("Port {p} is still in use."))));
            }
            if port["fixed_ips"].as_array().is_none_or(Vec::is_empty) {
                return Ok(Err(Refusal(400, format!("Port {p} requires a FixedIP in order to be used."))));
            }
            r.port_id = Some(p.to_string());
            r.network_id = port["network_id"].as_str().map(str::to_string);
            return Ok(Ok(r));
        }
        if let Some(n) = network_id {
            if self.client.network(user_token, n).await.map_err(failed)?.is_none() {
                return Ok(Err(Refusal(404, format!("Network {n} could not be found."))));
            }
            r.network_id = Some(n.to_string());
            return Ok(Ok(r));
        }
        let mut nets: Vec<Value> = self
            .client
            .networks(user_token, &[("project_id", project)])
            .await
            .map_err(failed)?
            .into_iter()
            .filter(|n| n["shared"] != true)
            .collect();
        for n in self.client.networks(user_token, &[("shared", "true")]).await.map_err(failed)? {
            if !nets.iter().any(|m| m["id"] == n["id"]) {
                nets.push(n);
            }
        }
        match nets.as_slice() {
            [] => Ok(Err(Refusal(
                400,
                format!("No specific network was requested and none are available for project '{project}'."),
            ))),
            [one] => {
                r.network_id = one["id"].as_str().map(str::to_string);
                Ok(Ok(r))
            }
            _ => {
                Ok(Err(Refusal(400, "Multiple possible networks found, use a Network ID to be more specific.".into())))
            }
        }
    }

    /// The port of an interface attach, bound to `host`: the user's port taken
    /// over, or a new one on the network (with the fixed IP asked for and the
    /// server's security groups). The network service's refusals come back in
    /// Nova's words.
    pub async fn attach_port(
        &self,
        server: &str,
        project: &str,
        zone: &str,
        host: &str,
        security_groups: &[String],
        r: &Requested,
    ) -> anyhow::Result<std::result::Result<Vif, Refusal>> {
        let token = self.token().await?;
        let owner = format!("compute:{zone}");
        let made = if let Some(p) = &r.port_id {
            // taken over only while still free: two attaches of one port race on its revision
            let Some(cur) = self.client.port(&token, p).await.map_err(failed)? else {
                return Ok(Err(Refusal(404, format!("Port id {p} could not be found."))));
            };
            if cur["device_id"].as_str().is_some_and(|d| !d.is_empty()) {
                return Ok(Err(Refusal(409, format!("Port {p} is still in use."))));
            }
            let body = json!({"device_id": server, "device_owner": owner, "binding:host_id": host});
            match cur["revision_number"].as_i64() {
                Some(rev) => self.client.update_port_at(&token, p, body, rev).await,
                None => self.client.update_port(&token, p, body).await,
            }
        } else {
            let Some(net) = &r.network_id else {
                return Ok(Err(Refusal(400, "A network or a port is needed.".into())));
            };
            let mut body = json!({
                "network_id": net,
                "project_id": project,
                "device_id": server,
                "device_owner": owner,
                "binding:host_id": host,
            });
            if let Some(ip) = &r.fixed_ip {
                body["fixed_ips"] = json!([{"ip_address": ip}]);
            }
            if !security_groups.is_empty() {
                body["security_groups"] = json!(self.group_ids(&token, project, security_groups).await?);
            }
            self.client.create_port(&token, body).await
        };
        let port = match made {
            Ok(p) => p,
            Err(NetworkError::Refused { status, kind, message }) => {
                let ip = r.fixed_ip.clone().unwrap_or_default();
                let refusal = match (status, kind.as_str()) {
                    (_, "OverQuota") => Refusal(403, "Maximum number of ports exceeded.".into()),
                    (409, "IpAddressAlreadyAllocated" | "IpAddressInUse") => {
                        Refusal(409, format!("Fixed IP address {ip} is already in use on instance {server}."))
                    }
                    (409, "PortInUse") | (412, _) => {
                        Refusal(409, format!("Port {} is still in use.", r.port_id.as_deref().unwrap_or("")))
                    }
                    (404, _) if r.port_id.is_some() => {
                        Refusal(404, format!("Port id {} could not be found.", r.port_id.as_deref().unwrap_or("")))
                    }
                    (404, _) => {
                        Refusal(404, format!("Network {} could not be found.", r.network_id.as_deref().unwrap_or("")))
                    }
                    (_, "IpAddressGenerationFailure") => Refusal(
                        400,
                        format!(
                            "No fixed IP addresses available for network: {}",
                            r.network_id.as_deref().unwrap_or("")
                        ),
                    ),
                    (409, _) => Refusal(409, message),
                    (400, _) => Refusal(400, message),
                    _ => anyhow::bail!("network service answered {status} {kind}: {message}"),
                };
                return Ok(Err(refusal));
            }
            Err(e) => return Err(failed(e)),
        };
        let vif = self.vif_of(&token, &port, r.port_id.is_some(), r.tag.clone()).await;
        match vif {
            Ok(v) => Ok(Ok(v)),
            Err(e) => {
                // the port must not outlive a failed attach
                let id = port["id"].as_str().unwrap_or_default();
                let _ = self.release_port(id, r.port_id.is_some()).await;
                Err(e)
            }
        }
    }

    /// Give back one port of a server: the user's (`preserve`) is unbound and
    /// its device cleared, one compute made is deleted. Idempotent.
    pub async fn release_port(&self, port_id: &str, preserve: bool) -> anyhow::Result<()> {
        let token = self.token().await?;
        let done = if preserve {
            self.client
                .update_port(&token, port_id, json!({"device_id": "", "device_owner": "", "binding:host_id": ""}))
                .await
                .map(|_| ())
        } else {
            self.client.delete_port(&token, port_id).await.map(|_| ())
        };
        match done {
            Ok(()) | Err(NetworkError::Refused { status: 404, .. }) => Ok(()),
            Err(e) => Err(failed(e)),
        }
    }

    /// The first of the security groups a create names (by name or id) that
    /// the caller cannot see, as Nova's API checks them before a build.
    pub async fn missing_security_group(
        &self,
        user_token: &str,
        project: &str,
        names: &[String],
    ) -> anyhow::Result<Option<String>> {
        for n in names {
            let by_name = self
                .client
                .list(user_token, "security-groups", &[("project_id", project), ("name", n.as_str())])
                .await
                .map_err(failed)?;
            if !by_name.is_empty() {
                continue;
            }
            let by_id = if uuid::Uuid::parse_str(n).is_ok() {
                self.client.list(user_token, "security-groups", &[("id", n.as_str())]).await.map_err(failed)?
            } else {
                Vec::new()
            };
            if by_id.is_empty() {
                return Ok(Some(n.clone()));
            }
        }
        Ok(None)
    }

    /// Security group names as ids in the project (Nova takes names).
    async fn group_ids(&self, token: &str, project: &str, names: &[String]) -> anyhow::Result<Vec<String>> {
        let mut ids = Vec::new();
        for n in names {
            let groups = self
                .client
                .list(token, "security-groups", &[("project_id", project), ("name", n.as_str())])
                .await
                .map_err(failed)?;
            match groups.first().and_then(|g| g["id"].as_str()) {
                Some(id) => ids.push(id.to_string()),
                None if uuid::Uuid::parse_str(n).is_ok() => ids.push(n.clone()),
                None => anyhow::bail!("Security group {n} not found for project {project}."),
            }
        }
        Ok(ids)
    }

    /// Bind the server's ports to the host it is being built on.
    pub async fn bind(&self, vifs: &[Vif], host: &str) -> anyhow::Result<()> {
        if vifs.is_empty() {
            return Ok(());
        }
        let token = self.token().await?;
        for v in vifs {
            self.client.update_port(&token, &v.port_id, json!({"binding:host_id": host})).await.map_err(failed)?;
        }
        Ok(())
    }

    /// Delete the ports compute made for the server, unbind the user's
    /// (`preserve` ids); idempotent.
    pub async fn deallocate(&self, server: &str, preserve: &[String]) -> anyhow::Result<()> {
        let token = self.token().await?;
        for p in self.client.ports(&token, &[("device_id", server)]).await.map_err(failed)? {
            let id = p["id"].as_str().unwrap_or_default();
            let done = if preserve.iter().any(|k| k == id) {
                self.client
                    .update_port(&token, id, json!({"device_id": "", "device_owner": "", "binding:host_id": ""}))
                    .await
                    .map(|_| ())
            } else {
                self.client.delete_port(&token, id).await.map(|_| ())
            };
            match done {
                // gone meanwhile: another deallocate of the same server (a delete and the build racing it)
                Ok(()) | Err(NetworkError::Refused { status: 404, .. }) => {}
                Err(e) => return Err(failed(e)),
            }
        }
        Ok(())
    }
}

/// The name of the i-th port compute makes for a server (how a retried step finds it).
fn port_name(server: &str, i: usize) -> String {
    format!("nova-{server}-{i}")
}

/// The server's ports from its system metadata.
pub fn vifs_of(system_metadata: &str) -> Vec<Vif> {
    let sys: Map<String, Value> = serde_json::from_str(system_metadata).unwrap_or_default();
    sys.get("network_info").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default()
}

/// The user's ports among them (kept when the server goes): those it was
/// created with and those attached later.
pub fn preserved(system_metadata: &str) -> Vec<String> {
    let sys: Map<String, Value> = serde_json::from_str(system_metadata).unwrap_or_default();
    let req: Vec<Requested> =
        sys.get("requested_networks").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default();
    let mut out: Vec<String> = req.into_iter().filter_map(|r| r.port_id).collect();
    for v in vifs_of(system_metadata) {
        if v.preserve && !out.contains(&v.port_id) {
            out.push(v.port_id);
        }
    }
    out
}

/// Change a server's network info (`f` gets its ports, in order) as a
/// compare-and-swap of its system metadata, retried when another change of
/// it came first — so two attaches at once both end recorded. False when
/// the server is gone.
pub async fn change_network_info(
    db: &stratus_db::Db,
    uuid: &str,
    f: impl Fn(&mut Vec<Vif>),
) -> crate::error::Result<bool> {
    use crate::store::instances::{self, Change, Expect};
    for _ in 0..50 {
        let Some(inst) = instances::get_live(db, uuid).await? else { return Ok(false) };
        let mut sys: Map<String, Value> = serde_json::from_str(&inst.system_metadata).unwrap_or_default();
        let mut vifs = vifs_of(&inst.system_metadata);
        f(&mut vifs);
        sys.insert("network_info".into(), serde_json::to_value(&vifs).map_err(anyhow::Error::new)?);
        let swapped = instances::update(
            db,
            uuid,
            &Expect::live().system_metadata(&inst.system_metadata),
            Change { system_metadata: Some(Value::Object(sys).to_string()), ..Default::default() },
        )
        .await?;
        if swapped {
            return Ok(true);
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    Err(crate::error::ComputeError::Internal(anyhow::anyhow!(
        "the network info of server {uuid} kept changing under an update"
    )))
}

/// Nova's `addresses`: `{"net name": [{"version": 4, "addr": ..., "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": ...}]}`.
pub fn addresses(vifs: &[Vif]) -> Value {
    let mut out = Map::new();
    for v in vifs {
        let entry = out.entry(v.network_name.clone()).or_insert_with(|| json!([]));
        if let Some(a) = entry.as_array_mut() {
            for (ip, ver) in &v.ips {
                a.push(
                    json!({"version": ver, "addr": ip, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": v.mac}),
                );
            }
        }
    }
    Value::Object(out)
}

/// The addresses as `/servers/{id}/ips` and a rebuild show them: by network,
/// `version` and `addr` only (Nova's `extend_address=False`).
pub fn plain_addresses(vifs: &[Vif]) -> Value {
    let mut out = Map::new();
    for v in vifs {
        let entry = out.entry(v.network_name.clone()).or_insert_with(|| json!([]));
        if let Some(a) = entry.as_array_mut() {
            for (ip, ver) in &v.ips {
                a.push(json!({"version": ver, "addr": ip}));
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_addresses_have_version_and_addr_only() {
        let vifs = vec![Vif {
            port_id: "p1".into(),
            network_name: "private".into(),
            mac: "fa:16:3e:00:00:01".into(),
            ips: vec![("10.0.0.5".into(), 4)],
            ..Default::default()
        }];
        assert_eq!(plain_addresses(&vifs), json!({"private": [{"version": 4, "addr": "10.0.0.5"}]}));
    }

    #[test]
    fn addresses_group_by_network() {
        let vifs = vec![
            Vif {
                port_id: "p1".into(),
                network_id: "n1".into(),
                network_name: "private".into(),
                mac: "fa:16:3e:00:00:01".into(),
                ips: vec![("10.0.0.5".into(), 4), ("fd00::5".into(), 6)],
                preserve: false,
                tag: None,
                mtu: None,
            },
            Vif {
                port_id: "p2".into(),
                network_name: "other".into(),
                ips: vec![("10.1.0.5".into(), 4)],
                ..Default::default()
            },
        ];
        let a = addresses(&vifs);
        assert_eq!(a["private"].as_array().unwrap().len(), 2);
        assert_eq!(a["private"][1]["version"], 6);
        assert_eq!(a["private"][0]["OS-EXT-IPS-MAC:mac_addr"], "fa:16:3e:00:00:01");
        assert_eq!(a["other"][0]["addr"], "10.1.0.5");
    }

    #[test]
    fn requested_networks_round_trip_through_system_metadata() {
        let sys = json!({"requested_networks": [{"network_id": "n"}, {"port_id": "p", "network_id": "n"}],
            "network_info": [{"port_id": "x", "network_id": "n", "network_name": "a", "mac": "m", "ips": [["10.0.0.1", 4]], "preserve": false}]})
        .to_string();
        assert_eq!(preserved(&sys), vec!["p".to_string()]);
        assert_eq!(vifs_of(&sys)[0].ips[0].0, "10.0.0.1");
        assert!(vifs_of("{}").is_empty());
    }
}
