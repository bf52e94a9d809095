//! Messages on the compute service's bus topics: `conductor`, `scheduler`,
//! `compute.<host>`. Versioned: a receiver refuses versions newer than it knows.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use stratus_bus::Message;

pub const CONDUCTOR: &str = "conductor";
pub const SCHEDULER: &str = "scheduler";

pub fn compute_topic(host: &str) -> String {
    format!("compute.{host}")
}

/// The flavor as scheduling and hosts need it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FlavorSpec {
    pub id: String,
    pub name: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub root_gb: i64,
    pub ephemeral_gb: i64,
    pub swap: i64,
    #[serde(default)]
    pub extra_specs: BTreeMap<String, String>,
}

impl FlavorSpec {
    /// What the flavor asks of placement: `VCPU:2,MEMORY_MB:512,DISK_GB:1`.
    pub fn resources(&self) -> BTreeMap<&'static str, i64> {
        let mut r = BTreeMap::new();
        r.insert("VCPU", self.vcpus);
        r.insert("MEMORY_MB", self.memory_mb);
        let disk = self.root_gb + self.ephemeral_gb + (self.swap + 1023) / 1024;
        if disk > 0 {
            r.insert("DISK_GB", disk);
        }
        r
    }
}

/// Everything the scheduler needs to place servers of one request (Nova's RequestSpec).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RequestSpec {
    pub project_id: String,
    pub user_id: String,
    pub flavor: FlavorSpec,
    pub image_id: String,
    #[serde(default)]
    pub image_properties: Map<String, Value>,
    pub availability_zone: Option<String>,
    pub forced_host: Option<String>,
    pub forced_node: Option<String>,
    /// Scheduler hints as given (`group`, `same_host`, `different_host`, ...).
    #[serde(default)]
    pub hints: Map<String, Value>,
    /// The server group the servers join.
    pub group: Option<String>,
    /// Hosts not to use (already failed for this server, or the source of a resize).
    #[serde(default)]
    pub ignore_hosts: Vec<String>,
}

/// One place a server can go: the claimed first choice or an alternate.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Selection {
    pub host: String,
    pub node: String,
    /// The compute node's resource provider.
    pub provider: String,
    /// The placement allocations for it: `{rp_uuid: {"resources": {...}}}`.
    pub allocations: Value,
}

/// scheduler: pick a host for each instance, claim it, keep alternates.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SelectDestinations {
    pub spec: RequestSpec,
    pub instance_uuids: Vec<String>,
    /// Alternates to keep per instance.
    pub alternates: u32,
}
impl Message for SelectDestinations {
    const NAME: &'static str = "scheduler.select_destinations";
    const VERSION: u32 = 1;
}

/// Reply: per instance (same order), the claimed selection first, then alternates.
pub type Selections = Vec<Vec<Selection>>;

/// conductor: run (or resume) a build saga.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BuildInstances {
    pub saga_id: String,
}
impl Message for BuildInstances {
    const NAME: &'static str = "conductor.build_instances";
    const VERSION: u32 = 1;
}

/// conductor: resize a server to a new flavor (schedules, claims, moves).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResizeInstance {
    pub instance_uuid: String,
    pub flavor: FlavorSpec,
    pub action_request_id: String,
}
impl Message for ResizeInstance {
    const NAME: &'static str = "conductor.resize_instance";
    const VERSION: u32 = 1;
}

/// compute host: build and start a server that is assigned to this host.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BuildAndRunInstance {
    pub instance_uuid: String,
    pub node: String,
    pub action_request_id: String,
}
impl Message for BuildAndRunInstance {
    const NAME: &'static str = "compute.build_and_run_instance";
    const VERSION: u32 = 1;
}

/// The result of a build, as the host reports it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum BuildResult {
    Active,
    /// The server was deleted meanwhile: nothing built, nothing to reschedule.
    Deleted,
    /// The host failed: try another.
    Failed(String),
}

/// compute host: an action on one of its servers.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum Action {
    Stop,
    Start,
    Reboot {
        hard: bool,
    },
    Pause,
    Unpause,
    Suspend,
    Resume,
    Terminate,
    Rebuild {
        image_id: String,
    },
    Snapshot {
        image_id: String,
    },
    /// A snapshot into `image_id`, then the rotation: the oldest backups of
    /// the server with this `backup_type` beyond `rotation` are deleted.
    Backup {
        image_id: String,
        backup_type: String,
        rotation: i64,
    },
    /// Move the guest here with the new flavor (the server's `new_flavor`).
    FinishResize,
    ConfirmResize,
    RevertResize,
    /// Remove the guest from this hypervisor only (the source of a confirmed resize).
    DestroyGuest,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InstanceAction {
    pub instance_uuid: String,
    pub action: Action,
    /// The request id of the instance action this belongs to (its events are recorded there).
    pub action_request_id: String,
}
impl Message for InstanceAction {
    const NAME: &'static str = "compute.instance_action";
    const VERSION: u32 = 1;
}

/// compute host: plug a port (already bound to this host) into a server's
/// guest and add it to the server's network info (call: the reply says it is
/// done; an error means nothing was plugged and the caller gives the port back).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AttachInterface {
    pub instance_uuid: String,
    pub vif: crate::network::Vif,
    pub action_request_id: String,
}
impl Message for AttachInterface {
    const NAME: &'static str = "compute.attach_interface";
    const VERSION: u32 = 1;
}

/// compute host: unplug a port from a server's guest, give the port back
/// (deleted when compute made it, unbound when it is the user's) and drop it
/// from the server's network info (cast).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DetachInterface {
    pub instance_uuid: String,
    pub port_id: String,
    pub action_request_id: String,
}
impl Message for DetachInterface {
    const NAME: &'static str = "compute.detach_interface";
    const VERSION: u32 = 1;
}

/// The topics of a host's interface messages.
pub fn attach_interface_topic(host: &str) -> String {
    format!("{}.attach_interface", compute_topic(host))
}
pub fn detach_interface_topic(host: &str) -> String {
    format!("{}.detach_interface", compute_topic(host))
}

/// compute host: connect a reserved volume (its block device mapping
/// `bdm_uuid`, with a Cinder attachment) to a server's guest and complete
/// the attachment (call: an error means nothing was attached; the caller
/// gives the attachment and the mapping back).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AttachVolume {
    pub instance_uuid: String,
    pub bdm_uuid: String,
    pub action_request_id: String,
}
impl Message for AttachVolume {
    const NAME: &'static str = "compute.attach_volume";
    const VERSION: u32 = 1;
}

/// compute host: disconnect a volume from a server's guest, give its
/// attachment back and drop its block device mapping (cast).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DetachVolume {
    pub instance_uuid: String,
    pub volume_id: String,
    pub action_request_id: String,
}
impl Message for DetachVolume {
    const NAME: &'static str = "compute.detach_volume";
    const VERSION: u32 = 1;
}

/// The topics of a host's volume messages.
pub fn attach_volume_topic(host: &str) -> String {
    format!("{}.attach_volume", compute_topic(host))
}
pub fn detach_volume_topic(host: &str) -> String {
    format!("{}.detach_volume", compute_topic(host))
}

/// compute host: where a guest's remote console is reached (call; the
/// console proxy connects there with a token's authorization).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetConsoleEndpoint {
    pub instance_uuid: String,
    pub kind: stratus_virt::ConsoleKind,
}
impl Message for GetConsoleEndpoint {
    const NAME: &'static str = "compute.get_console_endpoint";
    const VERSION: u32 = 1;
}

/// The host's answer to [`GetConsoleEndpoint`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum ConsoleEndpointReply {
    Ready(stratus_virt::ConsoleEndpoint),
    /// The guest has no such console (Nova's `ConsoleTypeUnavailable`).
    Unavailable,
    /// The guest exists but does not run.
    NotRunning,
    /// The hypervisor has no such guest.
    NoGuest,
}

pub fn console_endpoint_topic(host: &str) -> String {
    format!("{}.console_endpoint", compute_topic(host))
}

/// compute host: the serial console's output (call).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetConsoleOutput {
    pub instance_uuid: String,
    pub length: Option<usize>,
}
impl Message for GetConsoleOutput {
    const NAME: &'static str = "compute.get_console_output";
    const VERSION: u32 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavor_resources_round_swap_up_to_gigabytes() {
        let f = FlavorSpec { vcpus: 2, memory_mb: 512, root_gb: 1, ephemeral_gb: 1, swap: 1, ..Default::default() };
        let r = f.resources();
        assert_eq!((r["VCPU"], r["MEMORY_MB"], r["DISK_GB"]), (2, 512, 3));
        let zero = FlavorSpec { vcpus: 1, memory_mb: 64, ..Default::default() };
        assert!(!zero.resources().contains_key("DISK_GB"));
    }
}

/// compute host: remove a guest now and say when it is gone (call; saga undos use it).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DestroyGuest {
    pub instance_uuid: String,
}
impl Message for DestroyGuest {
    const NAME: &'static str = "compute.destroy_guest";
    const VERSION: u32 = 1;
}

impl FlavorSpec {
    pub fn from_flavor(f: &crate::store::flavors::Flavor) -> FlavorSpec {
        FlavorSpec {
            id: f.id.clone(),
            name: f.name.clone(),
            vcpus: f.vcpus,
            memory_mb: f.memory_mb,
            root_gb: f.root_gb,
            ephemeral_gb: f.ephemeral_gb,
            swap: f.swap,
            extra_specs: f.extra_specs.clone(),
        }
    }
}
