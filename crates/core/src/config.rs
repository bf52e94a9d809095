//! Configuration: one TOML file, every option overridable by an environment
//! variable `STRATUS_<SECTION>__<KEY>` (e.g. `STRATUS_IDENTITY__LISTEN`,
//! `STRATUS_DATABASE__URL`); top-level keys as `STRATUS_<KEY>`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where a local cloud keeps everything: database, keys, clouds.yaml.
    pub data_dir: PathBuf,
    pub database: DatabaseConfig,
    pub api: ApiConfig,
    pub identity: IdentityConfig,
    pub image: ImageConfig,
    pub placement: PlacementConfig,
    pub compute: ComputeConfig,
    pub network: NetworkConfig,
    pub volume: VolumeConfig,
    pub bus: BusConfig,
    pub service_user: ServiceUserConfig,
    pub policy: PolicyConfig,
    pub bootstrap: BootstrapConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./stratus-data"),
            database: DatabaseConfig::default(),
            api: ApiConfig::default(),
            identity: IdentityConfig::default(),
            image: ImageConfig::default(),
            placement: PlacementConfig::default(),
            compute: ComputeConfig::default(),
            network: NetworkConfig::default(),
            volume: VolumeConfig::default(),
            bus: BusConfig::default(),
            service_user: ServiceUserConfig::default(),
            policy: PolicyConfig::default(),
            bootstrap: BootstrapConfig::default(),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH`, `postgres://...` or `mysql://...`. Empty: SQLite in the data dir.
    pub url: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Largest request body accepted, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Origins allowed by CORS; empty disables CORS.
    pub cors_allowed_origins: Vec<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig { max_body_bytes: 1024 * 1024, cors_allowed_origins: Vec::new() }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    pub listen: String,
    /// URL clients reach identity at; empty: `http://<listen>`.
    pub public_url: String,
    /// Token lifetime in seconds.
    pub token_expiration: i64,
    /// How long after expiry `allow_expired=1` may still validate a token, in seconds.
    pub allow_expired_window: i64,
    /// bcrypt cost for password hashes (4..=31).
    pub password_hash_rounds: u32,
    /// Fernet key repository; empty: `<data_dir>/fernet-keys`.
    pub fernet_key_repository: String,
    /// Keys kept by `fernet rotate` (primary + staged + secondaries), at least 3.
    pub fernet_max_active_keys: usize,
    /// Seconds a validated token is served from the in-process cache.
    pub token_cache_seconds: u64,
    /// Lock a user after this many failed password attempts (0: never).
    pub lockout_failure_attempts: u32,
    /// Seconds a locked user stays locked.
    pub lockout_duration: i64,
    /// Days a password stays valid (0: forever).
    pub password_expires_days: i64,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            listen: "127.0.0.1:5000".into(),
            public_url: String::new(),
            token_expiration: 3600,
            allow_expired_window: 172_800,
            password_hash_rounds: 12,
            fernet_key_repository: String::new(),
            fernet_max_active_keys: 3,
            token_cache_seconds: 5,
            lockout_failure_attempts: 0,
            lockout_duration: 1800,
            password_expires_days: 0,
        }
    }
}

/// The image service (Glance v2).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageConfig {
    /// Address the image API listens on.
    pub listen: String,
    /// URL clients reach it by (default: `http://<listen>`).
    pub public_url: String,
    /// Filesystem stores by id; each keeps its images in `<data_dir>/images/<id>`
    /// unless `store_dirs` names a directory for it.
    pub stores: Vec<String>,
    /// Directories for stores, as `id=path`.
    pub store_dirs: Vec<String>,
    /// The store uploads go to when none is named.
    pub default_store: String,
    /// Store weights as `id=weight`: an image's `stores` lists the heaviest first.
    pub store_weights: Vec<String>,
    /// Id of a read-only HTTP store for image locations (`""`: none).
    pub http_store: String,
    /// Show image locations and let owners manage them (Glance's show_multiple_locations:
    /// reveals backend URLs, off by default).
    pub show_multiple_locations: bool,
    /// Show `direct_url` (the first location) on images.
    pub show_image_direct_url: bool,
    /// Hosts image data may be fetched from (web-download import, HTTP locations).
    /// Empty: never fetch anything over the network.
    pub allowed_url_hosts: Vec<String>,
    /// Image files `stratus up` registers as public images (once, by file name).
    pub preload: Vec<String>,
    /// Largest image accepted, in bytes.
    pub image_size_cap: u64,
    /// How many images a project may have when no unified limit says otherwise (-1: unlimited).
    pub default_image_count_total: i64,
    /// Total bytes of image data a project may store when no unified limit says otherwise, in MiB (-1: unlimited).
    pub default_image_size_total: i64,
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig {
            listen: "127.0.0.1:9292".into(),
            public_url: String::new(),
            stores: vec!["local".into()],
            store_dirs: Vec::new(),
            default_store: "local".into(),
            store_weights: Vec::new(),
            http_store: String::new(),
            show_multiple_locations: false,
            show_image_direct_url: false,
            allowed_url_hosts: Vec::new(),
            preload: Vec::new(),
            image_size_cap: 1 << 40,
            default_image_count_total: -1,
            default_image_size_total: -1,
        }
    }
}

/// The placement service.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlacementConfig {
    pub listen: String,
    /// URL clients reach it by (default: `http://<listen>`).
    pub public_url: String,
}

impl Default for PlacementConfig {
    fn default() -> Self {
        PlacementConfig { listen: "127.0.0.1:8778".into(), public_url: String::new() }
    }
}

/// The network service (Neutron v2.0 API).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    pub listen: String,
    /// URL clients reach it by (default: `http://<listen>`).
    pub public_url: String,
    /// MTU of tenant networks (VXLAN overhead taken off a 1500 underlay).
    pub default_mtu: i64,
    /// Base MAC address of ports: the first three bytes are kept, the rest random.
    pub base_mac: String,
    /// How many times a port create retries a MAC or IP that another create took first.
    pub allocation_retries: u32,
    /// Default quotas per project (-1: unlimited).
    pub quota_network: i64,
    pub quota_subnet: i64,
    pub quota_port: i64,
    pub quota_router: i64,
    pub quota_floatingip: i64,
    pub quota_security_group: i64,
    pub quota_security_group_rule: i64,
    pub quota_subnetpool: i64,
    pub quota_rbac_policy: i64,
    /// Seconds without a heartbeat before an agent counts as dead (Neutron's `agent_down_time`).
    pub agent_down_time: u64,
    /// Seconds between an agent's heartbeats (Neutron's `[agent] report_interval`).
    pub agent_report_interval: u64,
    /// The availability zone agents report (Neutron's `[agent] availability_zone`).
    pub agent_availability_zone: String,
    /// The networks `stratus up` makes for the admin project, as devstack does.
    pub bootstrap: NetworkBootstrapConfig,
    /// The network agent of each host (`stratus network-agent`, and the one
    /// `stratus up` runs for its compute hosts).
    pub agent: NetworkAgentConfig,
}

/// The data plane a host's network agent programs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkAgentConfig {
    /// `real` (bridges, VXLAN, dnsmasq, nftables: needs root), `fake` (no
    /// data plane), or `auto`: real when this process can program the kernel.
    pub driver: String,
    /// This host's VXLAN tunnel endpoint (empty: no tunnels, one host).
    pub local_ip: String,
    /// `physnet:bridge` pairs: flat networks on `physnet` use that bridge
    /// (the external network's bridge holds its gateway address).
    pub bridge_mappings: Vec<String>,
    /// `physnet:interface` pairs (Neutron's `physical_interface_mappings`):
    /// a flat network on `physnet` puts the interface into its bridge, a VLAN
    /// network the interface's 802.1Q device `<interface>.<vid>`. Empty by
    /// default: a mapped interface carries tenant frames off the machine.
    pub physical_interface_mappings: Vec<String>,
    /// The dnsmasq binary.
    pub dnsmasq: String,
    /// The radvd binary (routers' IPv6 router advertisements).
    pub radvd: String,
    /// The nftables tables of the security groups (`bridge` and `inet`): one
    /// per agent on a machine (a second cloud on the same machine, as a test
    /// makes, takes another).
    pub firewall_table: String,
}

impl Default for NetworkAgentConfig {
    fn default() -> Self {
        NetworkAgentConfig {
            driver: "auto".into(),
            local_ip: String::new(),
            bridge_mappings: vec!["public:br-ex".into()],
            physical_interface_mappings: Vec::new(),
            dnsmasq: "dnsmasq".into(),
            radvd: "radvd".into(),
            firewall_table: "stratus-sg".into(),
        }
    }
}

/// The networks bootstrap makes once (found by name on later runs): an
/// external `public` network with `public-subnet`, a `private` network with
/// `private-subnet`, and `router1` joining them, so that
/// `openstack server create --network private` works on a fresh cloud.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkBootstrapConfig {
    /// Make the networks at all.
    pub enable: bool,
    /// CIDR of `public-subnet` (gateway: its first address; the rest is the allocation pool).
    pub public_cidr: String,
    /// CIDR of `private-subnet`.
    pub private_cidr: String,
    /// Physical network of `public` as a flat provider network (empty: the default tenant type).
    pub public_physical_network: String,
}

impl Default for NetworkBootstrapConfig {
    fn default() -> Self {
        NetworkBootstrapConfig {
            enable: true,
            public_cidr: "198.51.100.0/24".into(),
            private_cidr: "10.0.0.0/24".into(),
            public_physical_network: "public".into(),
        }
    }
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            listen: "127.0.0.1:9696".into(),
            public_url: String::new(),
            default_mtu: 1450,
            base_mac: "fa:16:3e:00:00:00".into(),
            allocation_retries: 10,
            quota_network: 100,
            quota_subnet: 100,
            quota_port: 500,
            quota_router: 10,
            quota_floatingip: 50,
            quota_security_group: 10,
            quota_security_group_rule: 100,
            quota_subnetpool: -1,
            quota_rbac_policy: 10,
            agent_down_time: 75,
            agent_report_interval: 30,
            agent_availability_zone: "nova".into(),
            bootstrap: NetworkBootstrapConfig::default(),
            agent: NetworkAgentConfig::default(),
        }
    }
}

/// Block storage: the Cinder v3 API, its scheduler, volume hosts and the backup service.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VolumeConfig {
    pub listen: String,
    /// URL clients reach it by (default: `http://<listen>`).
    pub public_url: String,
    /// Volume hosts `stratus up` runs in its own process (each with the file backend).
    pub local_hosts: Vec<String>,
    /// Where the file backend keeps volumes (default: `<data_dir>/volumes`).
    pub volumes_dir: String,
    /// Where backups go (default: `<data_dir>/backups`).
    pub backups_dir: String,
    /// `raw` (sparse files) or `qcow2` (through qemu-img).
    pub file_format: String,
    /// Capacity a file backend pool reports, in GiB.
    pub capacity_gb: i64,
    /// The availability zone volume hosts report.
    pub availability_zone: String,
    /// The volume type made at bootstrap and used when none is asked for.
    pub default_volume_type: String,
    /// Seconds between a volume host's heartbeats; a host silent for
    /// `service_down_time` is down.
    pub report_interval: u64,
    pub service_down_time: u64,
    /// Default quotas per project (-1: unlimited).
    pub quota_volumes: i64,
    pub quota_snapshots: i64,
    pub quota_gigabytes: i64,
    pub quota_backups: i64,
    pub quota_backup_gigabytes: i64,
    pub quota_per_volume_gigabytes: i64,
    pub quota_groups: i64,
}

impl Default for VolumeConfig {
    fn default() -> Self {
        VolumeConfig {
            listen: "127.0.0.1:8776".into(),
            public_url: String::new(),
            local_hosts: vec!["volume1".into()],
            volumes_dir: String::new(),
            backups_dir: String::new(),
            file_format: "raw".into(),
            capacity_gb: 1000,
            availability_zone: "nova".into(),
            default_volume_type: "__DEFAULT__".into(),
            report_interval: 10,
            service_down_time: 60,
            quota_volumes: 10,
            quota_snapshots: 10,
            quota_gigabytes: 1000,
            quota_backups: 10,
            quota_backup_gigabytes: 1000,
            quota_per_volume_gigabytes: -1,
            quota_groups: 10,
        }
    }
}

/// The compute service: API, conductor, scheduler and compute hosts.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComputeConfig {
    pub listen: String,
    /// URL clients reach it by (default: `http://<listen>`).
    pub public_url: String,
    /// Compute hosts `stratus up` runs in its own process (names; empty: none).
    pub local_hosts: Vec<String>,
    /// Hypervisor driver of compute hosts: `qemu` (real guests), `fake` (a
    /// full participant without guests), or `auto`: `qemu` when `qemu_binary`
    /// is found, else `fake`.
    pub driver: String,
    /// The QEMU binary (a name looked up on `PATH`, or a path).
    pub qemu_binary: String,
    /// Accelerator of QEMU guests: `kvm`, `tcg`, or `auto` (KVM when it works, else TCG).
    pub qemu_accel: String,
    /// The bridge QEMU guests' tap devices join; empty: each network's own bridge, as the
    /// network agent names it (`stratus up` and `stratus compute` clear it when the real agent runs).
    pub qemu_bridge: String,
    /// Seconds a guest may take to shut down cleanly before it is stopped hard
    /// (Nova's `shutdown_timeout`).
    pub shutdown_timeout: u64,
    /// Where guests' disks and state live, one directory per host (default: `<data_dir>/instances`).
    pub instances_dir: String,
    /// Where each host keeps the images its guests boot from (default:
    /// `<data_dir>/compute-image-cache`; the image service's own cache is `<data_dir>/image-cache`).
    pub image_cache_dir: String,
    /// The tiny test guest (`vmlinuz`, `initrd.gz`, built by `scripts/tiny-guest/build`);
    /// default: `scripts/tiny-guest/out` under the current directory or an ancestor of the binary.
    pub tiny_guest_dir: String,
    /// The zone of hosts no aggregate puts elsewhere.
    pub default_availability_zone: String,
    /// The zone a server gets when it names none (empty: any host).
    pub default_schedule_zone: String,
    /// Servers get ports from the network service (false: servers never have networks).
    pub networking: bool,
    /// Servers get volumes from the block storage service (attachments,
    /// boot from volume); false: volume requests are refused.
    pub block_storage: bool,
    /// Hosts tried for one server before it goes to ERROR (the first and the alternates).
    pub max_attempts: u32,
    /// Seconds without a heartbeat before a service counts as down.
    pub service_down_time: u64,
    /// Seconds between a service's heartbeats and inventory reports.
    pub report_interval: u64,
    /// Seconds a conductor's saga may go without its owner's heartbeat before another takes it.
    pub saga_takeover_seconds: u64,
    /// Seconds the conductor waits for a host to build a server.
    pub build_timeout: u64,
    /// Allocation ratios and reserved amounts reported for each host's inventory.
    pub cpu_allocation_ratio: f64,
    pub ram_allocation_ratio: f64,
    pub disk_allocation_ratio: f64,
    pub reserved_host_cpus: i64,
    pub reserved_host_memory_mb: i64,
    pub reserved_host_disk_mb: i64,
    /// Capacity of a fake host.
    pub fake_vcpus: i64,
    pub fake_memory_mb: i64,
    pub fake_disk_gb: i64,
    /// Seconds a fake host takes to boot a server.
    pub fake_boot_seconds: f64,
    /// Weigher multipliers: positive spreads (prefers free), negative packs.
    pub ram_weight_multiplier: f64,
    pub cpu_weight_multiplier: f64,
    pub disk_weight_multiplier: f64,
    /// How many of the best hosts the scheduler picks among at random (1: always the best).
    pub host_subset_size: u32,
    /// Default quotas per project (-1: unlimited).
    pub quota_instances: i64,
    pub quota_cores: i64,
    pub quota_ram: i64,
    pub quota_key_pairs: i64,
    pub quota_server_groups: i64,
    pub quota_server_group_members: i64,
    pub quota_metadata_items: i64,
    pub quota_injected_files: i64,
    pub quota_injected_file_content_bytes: i64,
    pub quota_injected_file_path_length: i64,
    /// Where the noVNC console proxy listens (Nova's `novncproxy_host`:`novncproxy_port`); empty: not served.
    pub novncproxy_listen: String,
    /// The URL novnc consoles are handed out under (Nova's `[vnc] novncproxy_base_url`;
    /// default: `http://<novncproxy_listen>/vnc_auto.html`).
    pub novncproxy_base_url: String,
    /// noVNC's files, served by the noVNC proxy; empty: Debian's `/usr/share/novnc`
    /// when the `novnc` package is installed, else `scripts/novnc/out` (what
    /// `scripts/install` unpacks) under the current directory or an ancestor of the binary.
    pub novnc_dir: String,
    /// Where the serial console proxy listens (Nova's `[serial_console] serialproxy_host`:`serialproxy_port`);
    /// empty: not served.
    pub serialproxy_listen: String,
    /// The URL serial consoles are handed out under (Nova's `[serial_console] base_url`;
    /// default: `ws://<serialproxy_listen>/`).
    pub serialproxy_base_url: String,
    /// Seconds a console token stays valid (Nova's `[consoleauth] token_ttl`); a connection consumes it.
    pub console_token_ttl: u64,
    /// Where the metadata API listens (Nova's `metadata_listen`:`metadata_listen_port`),
    /// reached by the network agents' metadata proxies; empty: not served.
    pub metadata_listen: String,
    /// The secret the metadata proxies sign instance ids with (Nova's and Neutron's
    /// `metadata_proxy_shared_secret`); empty: generated into `<data_dir>/metadata-proxy-secret`
    /// at first start, where the compute API and the network agents read it.
    pub metadata_proxy_shared_secret: String,
}

impl Default for ComputeConfig {
    fn default() -> Self {
        ComputeConfig {
            listen: "127.0.0.1:8774".into(),
            public_url: String::new(),
            local_hosts: vec!["compute1".into()],
            driver: "auto".into(),
            qemu_binary: "qemu-system-x86_64".into(),
            qemu_accel: "auto".into(),
            qemu_bridge: "br-stratus".into(),
            shutdown_timeout: 60,
            instances_dir: String::new(),
            image_cache_dir: String::new(),
            tiny_guest_dir: String::new(),
            default_availability_zone: "nova".into(),
            default_schedule_zone: String::new(),
            networking: true,
            block_storage: true,
            max_attempts: 3,
            service_down_time: 60,
            report_interval: 10,
            saga_takeover_seconds: 30,
            build_timeout: 600,
            cpu_allocation_ratio: 4.0,
            ram_allocation_ratio: 1.0,
            disk_allocation_ratio: 1.0,
            reserved_host_cpus: 0,
            reserved_host_memory_mb: 512,
            reserved_host_disk_mb: 0,
            fake_vcpus: 64,
            fake_memory_mb: 262_144,
            fake_disk_gb: 4096,
            fake_boot_seconds: 0.0,
            ram_weight_multiplier: 1.0,
            cpu_weight_multiplier: 1.0,
            disk_weight_multiplier: 1.0,
            host_subset_size: 1,
            quota_instances: 10,
            quota_cores: 20,
            quota_ram: 51_200,
            quota_key_pairs: 100,
            quota_server_groups: 10,
            quota_server_group_members: 10,
            quota_metadata_items: 128,
            quota_injected_files: 5,
            quota_injected_file_content_bytes: 10_240,
            quota_injected_file_path_length: 255,
            novncproxy_listen: "127.0.0.1:6080".into(),
            novncproxy_base_url: String::new(),
            novnc_dir: String::new(),
            serialproxy_listen: "127.0.0.1:6083".into(),
            serialproxy_base_url: String::new(),
            console_token_ttl: 600,
            metadata_listen: "127.0.0.1:8775".into(),
            metadata_proxy_shared_secret: String::new(),
        }
    }
}

/// The message bus inside services.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    /// `inprocess` (one process only) or an AMQP URL, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`.
    pub url: String,
    /// Seconds a `call` waits for its reply.
    pub call_timeout: u64,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig { url: "inprocess".into(), call_timeout: 60 }
    }
}

/// The user services authenticate as when they call each other over REST.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceUserConfig {
    pub username: String,
    /// Empty: bootstrap generates one into `<data_dir>/service-password`, where every role reads it.
    pub password: String,
    /// Its project (in the Default domain).
    pub project: String,
}

impl Default for ServiceUserConfig {
    fn default() -> Self {
        ServiceUserConfig { username: "stratus".into(), password: String::new(), project: "service".into() }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// YAML file of rule overrides (`"identity:get_user": "role:admin"`).
    pub file: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootstrapConfig {
    /// The admin's password; empty: generated on first bootstrap and printed once.
    pub admin_password: String,
    pub region: String,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        BootstrapConfig { admin_password: String::new(), region: "RegionOne".into() }
    }
}

impl Config {
    /// Read `path` (if given), then apply `STRATUS_*` environment overrides.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?,
            None => String::new(),
        };
        Self::from_parts(&text, std::env::vars())
    }

    /// Build from TOML text and (name, value) environment pairs.
    pub fn from_parts(text: &str, env: impl Iterator<Item = (String, String)>) -> anyhow::Result<Config> {
        let mut root: toml::Table = toml::from_str(text).map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("STRATUS_") else {
                continue;
            };
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            if path.iter().any(String::is_empty) {
                continue;
            }
            // only keys the configuration knows; other STRATUS_* variables are not ours to judge
            if !Self::known_path(&path) {
                continue;
            }
            let parsed = parse_env_value(&value);
            set_path(&mut root, &path, parsed);
        }
        let cfg: Config = toml::Value::Table(root)
            .try_into()
            .map_err(|e: toml::de::Error| anyhow::anyhow!("invalid configuration: {e}"))?;
        Ok(cfg)
    }

    /// Make every path the cloud reads or writes absolute, relative paths
    /// being taken from `base` (the directory `stratus` was started in): a
    /// path handed to another program (qemu-img's backing file, a guest's
    /// directory) must not depend on that program's own directory.
    pub fn make_paths_absolute(&mut self, base: &Path) {
        let abs = |p: &Path| -> PathBuf {
            let joined = if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
            std::path::absolute(&joined).unwrap_or(joined)
        };
        let abs_str = |s: &mut String| {
            if !s.is_empty() {
                *s = abs(Path::new(s.as_str())).to_string_lossy().into_owned();
            }
        };
        self.data_dir = abs(&self.data_dir);
        abs_str(&mut self.identity.fernet_key_repository);
        abs_str(&mut self.volume.volumes_dir);
        abs_str(&mut self.volume.backups_dir);
        abs_str(&mut self.compute.instances_dir);
        abs_str(&mut self.compute.image_cache_dir);
        abs_str(&mut self.compute.tiny_guest_dir);
        abs_str(&mut self.compute.novnc_dir);
        abs_str(&mut self.policy.file);
        self.image.preload.iter_mut().for_each(abs_str);
        for entry in &mut self.image.store_dirs {
            if let Some((id, dir)) = entry.split_once('=') {
                let dir = abs(Path::new(dir.trim()));
                *entry = format!("{id}={}", dir.display());
            }
        }
        // a QEMU binary given as a path (not a name looked up on PATH)
        if self.compute.qemu_binary.contains('/') {
            abs_str(&mut self.compute.qemu_binary);
        }
        if let Some(rest) = self.database.url.strip_prefix("sqlite://")
            && !rest.starts_with('/')
            && !rest.starts_with(':')
            && !rest.is_empty()
        {
            let (file, query) = match rest.split_once('?') {
                Some((f, q)) => (f, Some(q)),
                None => (rest, None),
            };
            let mut url = format!("sqlite://{}", abs(Path::new(file)).display());
            if let Some(q) = query {
                url.push('?');
                url.push_str(q);
            }
            self.database.url = url;
        }
    }

    fn known_path(path: &[String]) -> bool {
        let defaults = toml::Value::try_from(Config::default()).unwrap_or(toml::Value::Table(Default::default()));
        let mut cur = &defaults;
        for key in path {
            match cur.get(key.as_str()) {
                Some(v) => cur = v,
                None => return false,
            }
        }
        true
    }

    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!("sqlite://{}/stratus.db", self.data_dir.display())
        } else {
            self.database.url.clone()
        }
    }

    pub fn identity_public_url(&self) -> String {
        if self.identity.public_url.is_empty() {
            format!("http://{}", self.identity.listen)
        } else {
            self.identity.public_url.trim_end_matches('/').to_string()
        }
    }

    pub fn image_public_url(&self) -> String {
        if self.image.public_url.is_empty() {
            format!("http://{}", self.image.listen)
        } else {
            self.image.public_url.trim_end_matches('/').to_string()
        }
    }

    pub fn placement_public_url(&self) -> String {
        if self.placement.public_url.is_empty() {
            format!("http://{}", self.placement.listen)
        } else {
            self.placement.public_url.trim_end_matches('/').to_string()
        }
    }

    pub fn compute_public_url(&self) -> String {
        if self.compute.public_url.is_empty() {
            format!("http://{}", self.compute.listen)
        } else {
            self.compute.public_url.trim_end_matches('/').to_string()
        }
    }

    pub fn volume_public_url(&self) -> String {
        if self.volume.public_url.is_empty() {
            format!("http://{}", self.volume.listen)
        } else {
            self.volume.public_url.trim_end_matches('/').to_string()
        }
    }

    /// Where the file backend keeps volumes.
    pub fn volumes_dir(&self) -> PathBuf {
        if self.volume.volumes_dir.is_empty() {
            self.data_dir.join("volumes")
        } else {
            PathBuf::from(&self.volume.volumes_dir)
        }
    }

    /// Where backups go.
    pub fn backups_dir(&self) -> PathBuf {
        if self.volume.backups_dir.is_empty() {
            self.data_dir.join("backups")
        } else {
            PathBuf::from(&self.volume.backups_dir)
        }
    }

    pub fn network_public_url(&self) -> String {
        if self.network.public_url.is_empty() {
            format!("http://{}", self.network.listen)
        } else {
            self.network.public_url.trim_end_matches('/').to_string()
        }
    }

    /// Where compute hosts keep their guests (each host in a subdirectory).
    pub fn instances_dir(&self) -> PathBuf {
        if self.compute.instances_dir.is_empty() {
            self.data_dir.join("instances")
        } else {
            PathBuf::from(&self.compute.instances_dir)
        }
    }

    /// Where compute hosts keep the images their guests boot from.
    pub fn image_cache_dir(&self) -> PathBuf {
        if self.compute.image_cache_dir.is_empty() {
            self.data_dir.join("compute-image-cache")
        } else {
            PathBuf::from(&self.compute.image_cache_dir)
        }
    }

    /// The tiny guest's directory, when one holds a built kernel and
    /// initramfs: the configured one, else `scripts/tiny-guest/out` under the
    /// current directory or an ancestor of the running binary (a checkout's
    /// `target/*/stratus`).
    pub fn tiny_guest_dir(&self) -> Option<PathBuf> {
        let built = |d: &Path| d.join("vmlinuz").is_file() && d.join("initrd.gz").is_file();
        if !self.compute.tiny_guest_dir.is_empty() {
            let d = PathBuf::from(&self.compute.tiny_guest_dir);
            return built(&d).then_some(d);
        }
        let rel = Path::new("scripts").join("tiny-guest").join("out");
        let mut bases: Vec<PathBuf> = Vec::new();
        if let Ok(cwd) = std::env::current_dir() {
            bases.push(cwd);
        }
        if let Ok(exe) = std::env::current_exe() {
            bases.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
        }
        bases.into_iter().map(|b| b.join(&rel)).find(|d| built(d))
    }

    /// noVNC's files for the noVNC console proxy: the configured directory, else
    /// the first that holds noVNC's page of `/usr/share/novnc` (Debian's
    /// package) and `scripts/novnc/out` under the current directory or an
    /// ancestor of the running binary.
    pub fn novnc_dir(&self) -> Option<PathBuf> {
        if !self.compute.novnc_dir.is_empty() {
            return Some(PathBuf::from(&self.compute.novnc_dir));
        }
        let has_page = |d: &Path| d.join("vnc_lite.html").is_file() || d.join("vnc_auto.html").is_file();
        let mut candidates = vec![PathBuf::from("/usr/share/novnc")];
        let rel = Path::new("scripts").join("novnc").join("out");
        if let Ok(cwd) = std::env::current_dir() {
            candidates.push(cwd.join(&rel));
        }
        if let Ok(exe) = std::env::current_exe() {
            candidates.extend(exe.ancestors().skip(1).map(|a| a.join(&rel)));
        }
        candidates.into_iter().find(|d| has_page(d))
    }

    /// Where the generated metadata proxy secret lives when the configuration gives none.
    pub fn metadata_proxy_secret_file(&self) -> PathBuf {
        self.data_dir.join("metadata-proxy-secret")
    }

    /// The URL the metadata proxies forward to: `http://<metadata_listen>`, an
    /// unspecified listen address (`0.0.0.0`, `::`) reached on loopback.
    pub fn metadata_url(&self) -> String {
        match self.compute.metadata_listen.parse::<std::net::SocketAddr>() {
            Ok(a) if a.ip().is_unspecified() => {
                let ip: std::net::IpAddr = if a.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                };
                format!("http://{}", std::net::SocketAddr::new(ip, a.port()))
            }
            _ => format!("http://{}", self.compute.metadata_listen),
        }
    }

    /// Where the generated service-user password lives when the configuration gives none.
    pub fn service_password_file(&self) -> PathBuf {
        self.data_dir.join("service-password")
    }

    pub fn fernet_key_repository(&self) -> PathBuf {
        if self.identity.fernet_key_repository.is_empty() {
            self.data_dir.join("fernet-keys")
        } else {
            PathBuf::from(&self.identity.fernet_key_repository)
        }
    }

    pub fn http_options(&self) -> crate::http::HttpOptions {
        crate::http::HttpOptions {
            max_body_bytes: self.api.max_body_bytes,
            cors_allowed_origins: self.api.cors_allowed_origins.clone(),
        }
    }
}

fn parse_env_value(v: &str) -> toml::Value {
    // numbers, booleans and arrays as TOML would read them; anything else is a string
    if let Ok(t) = toml::from_str::<toml::Table>(&format!("v = {v}"))
        && let Some(x) = t.get("v")
    {
        return x.clone();
    }
    toml::Value::String(v.to_string())
}

fn set_path(root: &mut toml::Table, path: &[String], value: toml::Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = root;
    for p in parents {
        let entry = cur.entry(p.clone()).or_insert_with(|| toml::Value::Table(Default::default()));
        if !entry.is_table() {
            *entry = toml::Value::Table(Default::default());
        }
        let toml::Value::Table(t) = entry else { return };
        cur = t;
    }
    cur.insert(last.clone(), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file() {
        let text = "[identity]\nlisten = \"127.0.0.1:1\"\ntoken_expiration = 10\n";
        let env = vec![
            ("STRATUS_IDENTITY__LISTEN".to_string(), "127.0.0.1:5555".to_string()),
            ("STRATUS_IDENTITY__PASSWORD_HASH_ROUNDS".to_string(), "4".to_string()),
            ("STRATUS_DATA_DIR".to_string(), "/tmp/x".to_string()),
            ("STRATUS_UNRELATED".to_string(), "zzz".to_string()),
        ];
        let cfg = Config::from_parts(text, env.into_iter()).unwrap();
        assert_eq!(cfg.identity.listen, "127.0.0.1:5555");
        assert_eq!(cfg.identity.token_expiration, 10);
        assert_eq!(cfg.identity.password_hash_rounds, 4);
        assert_eq!(cfg.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(cfg.identity_public_url(), "http://127.0.0.1:5555");
    }

    #[test]
    fn the_metadata_url_reaches_an_unspecified_listen_on_loopback() {
        let mut cfg = Config::default();
        assert_eq!(cfg.metadata_url(), "http://127.0.0.1:8775");
        cfg.compute.metadata_listen = "0.0.0.0:8775".into();
        assert_eq!(cfg.metadata_url(), "http://127.0.0.1:8775");
        cfg.compute.metadata_listen = "[::]:9000".into();
        assert_eq!(cfg.metadata_url(), "http://[::1]:9000");
        cfg.compute.metadata_listen = "192.0.2.1:8775".into();
        assert_eq!(cfg.metadata_url(), "http://192.0.2.1:8775");
    }

    #[test]
    fn relative_paths_become_absolute() {
        let text = "data_dir = \"./data\"\n[compute]\ninstances_dir = \"inst/../guests\"\nqemu_binary = \"qemu-system-x86_64\"\n\
                    [image]\nstore_dirs = [\"a=./s/a\", \"b=/abs/b\"]\n[database]\nurl = \"sqlite://./db/x.db?mode=rwc\"\n";
        let mut cfg = Config::from_parts(text, std::iter::empty()).unwrap();
        cfg.make_paths_absolute(Path::new("/srv/cloud"));
        assert_eq!(cfg.data_dir, PathBuf::from("/srv/cloud/data"));
        assert_eq!(cfg.instances_dir(), PathBuf::from("/srv/cloud/inst/../guests"));
        assert_eq!(cfg.image_cache_dir(), PathBuf::from("/srv/cloud/data/compute-image-cache"));
        assert_eq!(cfg.image.store_dirs, vec!["a=/srv/cloud/s/a".to_string(), "b=/abs/b".to_string()]);
        assert_eq!(cfg.compute.qemu_binary, "qemu-system-x86_64");
        assert_eq!(cfg.database.url, "sqlite:///srv/cloud/db/x.db?mode=rwc");
    }

    #[test]
    fn bad_file_is_an_error() {
        assert!(Config::from_parts("[identity]\nlisten = 5\n", std::iter::empty()).is_err());
        assert!(Config::from_parts("[nonsense]\n", std::iter::empty()).is_err());
    }
}

#[cfg(test)]
mod sample_file {
    use super::*;

    /// etc/stratus.toml documents every option with its default value.
    #[test]
    fn the_sample_file_is_the_defaults() {
        let text = include_str!("../../../etc/stratus.toml");
        let cfg = Config::from_parts(text, std::iter::empty()).unwrap_or_else(|e| panic!("etc/stratus.toml: {e}"));
        let a = toml::Value::try_from(&cfg).unwrap_or_else(|e| panic!("{e}"));
        let b = toml::Value::try_from(Config::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a, b, "etc/stratus.toml and Config::default() differ");
    }
}
