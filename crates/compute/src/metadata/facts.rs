//! What the EC2 tree says beyond the server's record: its addresses (Nova's
//! `get_ec2_ip_info`), its floating IPs and security groups (asked of the
//! network service with the service token, as the server view does), and
//! its volumes' devices.

use super::MetadataError;
use crate::ComputeService;
use crate::store::instances::Instance;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ec2Facts {
    /// The server's fixed IPv4 addresses, in port order.
    pub fixed_ipv4: Vec<String>,
    /// The floating IPs on its ports, in port order.
    pub floating_ips: Vec<String>,
    /// The names of its ports' security groups.
    pub security_groups: Vec<String>,
    /// The device names of its volumes (`/dev/vdb`), sorted.
    pub volume_devices: Vec<String>,
    /// The guest's address as the proxy saw it (`local-ipv4` when the
    /// server has no fixed IPv4).
    pub remote_address: Option<String>,
}

impl Ec2Facts {
    pub async fn load(
        svc: &ComputeService,
        inst: &Instance,
        remote_address: Option<&str>,
    ) -> Result<Ec2Facts, MetadataError> {
        let vifs = crate::network::vifs_of(&inst.system_metadata);
        let fixed_ipv4 =
            vifs.iter().flat_map(|v| v.ips.iter()).filter(|(_, ver)| *ver == 4).map(|(a, _)| a.clone()).collect();
        let ports: Vec<String> = vifs.iter().map(|v| v.port_id.clone()).collect();
        let on_ports = crate::api::floating_ips::on_ports(svc, &ports).await;
        let floating_ips =
            ports.iter().flat_map(|p| on_ports.get(p).into_iter().flatten()).map(|(_, ip)| ip.clone()).collect();
        let uuids = std::slice::from_ref(&inst.uuid);
        let security_groups = crate::api::security_groups::bindings(svc, uuids)
            .await
            .remove(&inst.uuid)
            .unwrap_or_default()
            .iter()
            .filter_map(|g| g["name"].as_str().map(str::to_string))
            .collect();
        let mut volume_devices: Vec<String> = crate::volume::of_instance(&svc.db, &inst.uuid)
            .await
            .map_err(|e| MetadataError::internal(&format!("{e:#}")))?
            .into_iter()
            .filter(|b| b.destination_type == "volume")
            .filter_map(|b| b.device_name)
            .collect();
        volume_devices.sort();
        Ok(Ec2Facts {
            fixed_ipv4,
            floating_ips,
            security_groups,
            volume_devices,
            remote_address: remote_address.map(str::to_string),
        })
    }
}
