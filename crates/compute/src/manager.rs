//! A compute host: registers its service and its resource provider, keeps
//! a heartbeat, reports inventory, runs what the conductor and the API ask
//! of its hypervisor driver, keeps power states in sync, and after a restart
//! re-adopts the servers it runs.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::TransactionTrait;
use serde_json::{Map, Value, json};
use stratus_bus::{Bus, RemoteError, handler};
use stratus_core::Config;
use stratus_db::Db;
use stratus_virt::{Driver, GuestSpec, PowerState};

use crate::model::{task, vm};
use crate::placement::{Placement, TokenSource};
use crate::rpc::{self, Action, BuildAndRunInstance, BuildResult, GetConsoleOutput, InstanceAction};
use crate::store::instances::{self, Change, Expect, Instance};
use crate::store::{self, compute_nodes, services};

pub const BINARY: &str = "nova-compute";

pub struct ComputeHost {
    pub host: String,
    pub node: String,
    pub db: Db,
    pub cfg: Config,
    pub driver: Arc<dyn Driver>,
    pub placement: Arc<Placement>,
    pub images: Arc<stratus_clients::ImageClient>,
    pub tokens: TokenSource,
    pub bus: Bus,
    /// The network service, when servers have ports.
    pub network: Option<Arc<crate::network::Networking>>,
    /// The block storage service, when servers have volumes.
    pub volumes: Option<Arc<crate::volume::Volumes>>,
    pub service_id: i64,
    pub node_id: i64,
    /// The node's resource provider.
    pub provider: String,
    /// The images this host's guests boot from, when its driver needs them.
    pub image_cache: Arc<crate::image_cache::ImageCache>,
}

fn remote(e: impl std::fmt::Display) -> RemoteError {
    RemoteError::new("ComputeError", e.to_string())
}

impl ComputeHost {
    /// Register, re-adopt, and serve `compute.<host>` until the process ends.
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        host: &str,
        db: Db,
        cfg: Config,
        driver: Arc<dyn Driver>,
        placement: Arc<Placement>,
        images: Arc<stratus_clients::ImageClient>,
        tokens: TokenSource,
        bus: Bus,
        network: Option<Arc<crate::network::Networking>>,
        volumes: Option<Arc<crate::volume::Volumes>>,
    ) -> anyhow::Result<Arc<ComputeHost>> {
        let svc = services::upsert(&db, host, BINARY, &rpc::compute_topic(host)).await?;
        services::heartbeat(&db, svc.id).await?;
        let cap = driver.capacity().await?;
        let node = compute_nodes::upsert(
            &db,
            compute_nodes::NewComputeNode {
                host: host.to_string(),
                hypervisor_hostname: host.to_string(),
                hypervisor_type: cap.hypervisor_type.clone(),
                hypervisor_version: cap.hypervisor_version,
                host_ip: cap.host_ip.clone(),
                vcpus: cap.vcpus,
                memory_mb: cap.memory_mb,
                local_gb: cap.disk_gb,
                uuid: uuid::Uuid::new_v4().to_string(),
                service_id: svc.id,
                cpu_info: cap.cpu_info.to_string(),
            },
        )
        .await?;
        let image_cache = Arc::new(crate::image_cache::ImageCache::new(
            cfg.image_cache_dir(),
            Arc::new(crate::image_cache::ImageServiceSource { images: images.clone(), tokens: tokens.clone() }),
        ));
        let me = Arc::new(ComputeHost {
            host: host.to_string(),
            node: node.hypervisor_hostname.clone(),
            db,
            cfg,
            driver,
            placement,
            images,
            tokens,
            bus,
            network,
            volumes,
            service_id: svc.id,
            node_id: node.id,
            provider: node.uuid.clone(),
            image_cache,
        });
        me.report().await?;
        me.readopt().await?;
        me.serve().await?;
        let ticker = me.clone();
        tokio::spawn(async move {
            let every = Duration::from_secs(ticker.cfg.compute.report_interval.max(1));
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = services::heartbeat(&ticker.db, ticker.service_id).await {
                    tracing::warn!(host = %ticker.host, error = %e, "heartbeat failed");
                }
                if let Err(e) = ticker.report().await {
                    tracing::warn!(host = %ticker.host, error = %e, "inventory report failed");
                }
                if let Err(e) = ticker.sync_power_states().await {
                    tracing::warn!(host = %ticker.host, error = %e, "power state sync failed");
                }
            }
        });
        tracing::info!(host = %me.host, provider = %me.provider, driver = me.driver.name(), "compute host up");
        Ok(me)
    }

    async fn serve(self: &Arc<Self>) -> anyhow::Result<()> {
        let topic = rpc::compute_topic(&self.host);
        let me = self.clone();
        self.bus
            .serve(
                &topic,
                handler(move |m: BuildAndRunInstance, _| {
                    let me = me.clone();
                    async move { Ok::<_, RemoteError>(me.build(&m).await) }
                }),
            )
            .await?;
        let me = self.clone();
        self.bus
            .serve(
                &format!("{topic}.actions"),
                handler(move |m: InstanceAction, _| {
                    let me = me.clone();
                    async move {
                        // actions on different servers run side by side
                        tokio::spawn(async move { me.act(&m).await });
                        Ok::<_, RemoteError>(())
                    }
                }),
            )
            .await?;
        let me = self.clone();
        self.bus
            .serve(
                &format!("{topic}.console"),
                handler(move |m: GetConsoleOutput, _| {
                    let me = me.clone();
                    async move { me.driver.console_output(&m.instance_uuid, m.length).await.map_err(remote) }
                }),
            )
            .await?;
        let me = self.clone();
        self.bus
            .serve(
                &rpc::console_endpoint_topic(&self.host),
                handler(move |m: rpc::GetConsoleEndpoint, _| {
                    let me = me.clone();
                    async move { me.console_endpoint(&m).await.map_err(remote) }
                }),
            )
            .await?;
        let me = self.clone();
        self.bus
            .serve(
                &rpc::attach_interface_topic(&self.host),
                handler(move |m: rpc::AttachInterface, _| {
                    let me = me.clone();
                    async move { me.attach_interface(&m).await.map_err(remote) }
                }),
            )
            .await?;
        let me = self.clone();
        self.bus
            .serve(
                &rpc::detach_interface_topic(&self.host),
                handler(move |m: rpc::DetachInterface, _| {
                    let me = me.clone();
                    async move {
                        tokio::spawn(async move { me.detach_interface(&m).await });
                        Ok::<_, RemoteError>(())
                    }
                }),
            )
            .await?;
        let me = self.clone();
        self.bus
            .serve(
                &rpc::attach_volume_topic(&self.host),
                handler(move |m: rpc::AttachVolume, _| {
                    let me = me.clone();
                    async move { me.attach_volume(&m).await.map_err(remote) }
                }),
            )
            .await?;
        let me = self.clone();
        self.bus
            .serve(
                &rpc::detach_volume_topic(&self.host),
                handler(move |m: rpc::DetachVolume, _| {
                    let me = me.clone();
                    async move {
                        tokio::spawn(async move { me.detach_volume(&m).await });
                        Ok::<_, RemoteError>(())
                    }
                }),
            )
            .await?;
        let me = self.clone();
        self.bus
            .serve(
                &format!("{topic}.destroy"),
                handler(move |m: rpc::DestroyGuest, _| {
                    let me = me.clone();
                    async move { me.driver.destroy(&m.instance_uuid).await.map_err(remote) }
                }),
            )
            .await?;
        Ok(())
    }

    /// Where a guest's remote console is, or why it has none.
    async fn console_endpoint(&self, m: &rpc::GetConsoleEndpoint) -> anyhow::Result<rpc::ConsoleEndpointReply> {
        use rpc::ConsoleEndpointReply as R;
        match self.driver.console_endpoint(&m.instance_uuid, m.kind).await {
            Ok(ep) => Ok(R::Ready(ep)),
            Err(e) if e.downcast_ref::<stratus_virt::ConsoleUnavailable>().is_some() => Ok(R::Unavailable),
            Err(e) if e.downcast_ref::<stratus_virt::GuestNotRunning>().is_some() => Ok(R::NotRunning),
            Err(e) if e.downcast_ref::<stratus_virt::NoSuchGuest>().is_some() => Ok(R::NoGuest),
            Err(e) => Err(e),
        }
    }

    /// Report inventory, traits and aggregates to placement; usage to the node record.
    pub async fn report(&self) -> anyhow::Result<()> {
        let cap = self.driver.capacity().await?;
        let c = &self.cfg.compute;
        self.placement.ensure_provider(&self.provider, &self.node).await?;
        let inv = |total: i64, reserved: i64, ratio: f64| {
            json!({"total": total, "reserved": reserved.min(total), "min_unit": 1, "max_unit": total.max(1),
                "step_size": 1, "allocation_ratio": ratio})
        };
        let inventories = json!({
            "VCPU": inv(cap.vcpus, c.reserved_host_cpus, c.cpu_allocation_ratio),
            "MEMORY_MB": inv(cap.memory_mb, c.reserved_host_memory_mb, c.ram_allocation_ratio),
            "DISK_GB": inv(cap.disk_gb, (c.reserved_host_disk_mb + 1023) / 1024, c.disk_allocation_ratio),
        });
        self.placement.set_inventories(&self.provider, &inventories).await?;
        self.placement.set_traits(&self.provider, &cap.traits).await?;
        let aggs: Vec<String> =
            store::aggregates::of_host(&self.db, &self.host).await?.into_iter().map(|a| a.uuid).collect();
        self.placement.set_aggregates(&self.provider, &aggs).await?;
        let guests = self.driver.list().await?;
        let (mut vcpus, mut mem, mut disk) = (0, 0, 0);
        for g in &guests {
            vcpus += g.vcpus;
            mem += g.memory_mb;
            disk += g.root_gb;
        }
        compute_nodes::update_usage(
            &self.db,
            self.node_id,
            vcpus,
            mem + c.reserved_host_memory_mb,
            disk,
            i64::try_from(guests.len()).unwrap_or(0),
        )
        .await?;
        Ok(())
    }

    /// After a restart: servers whose guests exist keep running; tasks cut
    /// short by the restart are cleared (deletes are finished).
    async fn readopt(&self) -> anyhow::Result<()> {
        let guests = self.driver.list().await?;
        for inst in instances::on_host(&self.db, &self.host).await? {
            let guest = guests.iter().find(|g| g.uuid == inst.uuid);
            match inst.task_state.as_deref() {
                Some(task::DELETING) => {
                    self.terminate(&inst, "").await;
                    continue;
                }
                // a build in flight belongs to its saga, which will ask again
                Some(task::SCHEDULING | task::SPAWNING | task::NETWORKING | task::BLOCK_DEVICE_MAPPING) => continue,
                Some(_) => {
                    instances::update(
                        &self.db,
                        &inst.uuid,
                        &Expect::live(),
                        Change { task_state: Some(None), ..Default::default() },
                    )
                    .await?;
                }
                None => {}
            }
            let power = guest.map(|g| g.power_state).unwrap_or(PowerState::NoState);
            instances::update(
                &self.db,
                &inst.uuid,
                &Expect::live(),
                Change { power_state: Some(power.code()), ..Default::default() },
            )
            .await?;
        }
        tracing::info!(host = %self.host, guests = guests.len(), "re-adopted the host's servers");
        Ok(())
    }

    /// The hypervisor is the truth for power states; a guest that stopped on its own makes its server SHUTOFF.
    pub async fn sync_power_states(&self) -> anyhow::Result<()> {
        let guests = self.driver.list().await?;
        for inst in instances::on_host(&self.db, &self.host).await? {
            if inst.task_state.is_some() || inst.vm_state == vm::BUILDING {
                continue;
            }
            let power =
                guests.iter().find(|g| g.uuid == inst.uuid).map(|g| g.power_state).unwrap_or(PowerState::NoState);
            if power.code() == inst.power_state {
                continue;
            }
            let mut ch = Change { power_state: Some(power.code()), ..Default::default() };
            if inst.vm_state == vm::ACTIVE && matches!(power, PowerState::Shutdown | PowerState::Crashed) {
                ch.vm_state = Some(vm::STOPPED);
            }
            instances::update(&self.db, &inst.uuid, &Expect::live().task(&[None]).on_host(&self.host), ch).await?;
        }
        Ok(())
    }

    fn guest_spec(&self, inst: &Instance) -> GuestSpec {
        guest_spec(inst, &self.cfg.compute.default_availability_zone)
    }

    /// The spec with the local paths of what the guest boots from, when the
    /// driver boots image data: the spec's image and its kernel and ramdisk,
    /// fetched into this host's image cache first. A server booted from a
    /// volume has no image.
    async fn with_images(&self, mut spec: GuestSpec) -> anyhow::Result<GuestSpec> {
        if !self.driver.needs_images() {
            return Ok(spec);
        }
        if spec.image_id.is_empty() {
            // volume-backed: the volume is the disk, but the kernel and ramdisk its image
            // metadata names (copied from the image) still boot it
            let prop = |k: &str| spec.image_properties.get(k).and_then(Value::as_str).map(str::to_string);
            if let Some(kernel) = prop("kernel_id") {
                spec.kernel_path = Some(self.image_cache.fetch(&kernel).await?.path);
                if let Some(ramdisk) = prop("ramdisk_id") {
                    spec.ramdisk_path = Some(self.image_cache.fetch(&ramdisk).await?.path);
                }
            }
            return Ok(spec);
        }
        let boot = self.image_cache.boot_images(&spec.image_id).await?;
        spec.image_format = boot.image.disk_format();
        spec.image_path = Some(boot.image.path);
        spec.kernel_path = boot.kernel.map(|k| k.path);
        spec.ramdisk_path = boot.ramdisk.map(|r| r.path);
        Ok(spec)
    }

    /// The guest's spec for a new spawn of it here, images fetched.
    async fn boot_spec(&self, inst: &Instance) -> anyhow::Result<GuestSpec> {
        self.with_images(self.guest_spec(inst)).await
    }

    /// Build a server assigned here. Idempotent: a server already running here is reported active.
    pub async fn build(&self, m: &BuildAndRunInstance) -> BuildResult {
        match self.try_build(m).await {
            Ok(r) => r,
            Err(e) => {
                let msg = format!("{e:#}");
                tracing::warn!(host = %self.host, instance = %m.instance_uuid, error = %msg, "build failed");
                let _ = self.driver.destroy(&m.instance_uuid).await;
                let _ = instances::finish_event(
                    &self.db,
                    &m.instance_uuid,
                    &m.action_request_id,
                    "compute__do_build_and_run_instance",
                    Some(&msg),
                )
                .await;
                BuildResult::Failed(msg)
            }
        }
    }

    async fn try_build(&self, m: &BuildAndRunInstance) -> anyhow::Result<BuildResult> {
        let Some(inst) = instances::get_live(&self.db, &m.instance_uuid).await? else {
            return Ok(BuildResult::Deleted);
        };
        if inst.task_state.as_deref() == Some(task::DELETING) {
            return Ok(BuildResult::Deleted);
        }
        if inst.vm_state == vm::ACTIVE && inst.host.as_deref() == Some(self.host.as_str()) {
            return Ok(BuildResult::Active);
        }
        // the event's start and the task state change commit together
        let txn = self.db.write.begin().await?;
        instances::start_event_in(
            &txn,
            &inst.uuid,
            &m.action_request_id,
            "compute__do_build_and_run_instance",
            Some(&self.host),
        )
        .await?;
        let spawning = instances::update_in(
            &txn,
            &inst.uuid,
            &Expect::live().vm(&[vm::BUILDING]).on_host(&self.host),
            Change { task_state: Some(Some(task::SPAWNING)), ..Default::default() },
        )
        .await?;
        txn.commit().await?;
        if !spawning {
            return Ok(BuildResult::Deleted);
        }
        self.driver.spawn(&self.boot_spec(&inst).await?).await?;
        self.connect_volumes(&inst.uuid).await?;
        let txn = self.db.write.begin().await?;
        let done = instances::update_in(
            &txn,
            &inst.uuid,
            &Expect::live().vm(&[vm::BUILDING]).task(&[Some(task::SPAWNING)]).on_host(&self.host),
            Change {
                vm_state: Some(vm::ACTIVE),
                task_state: Some(None),
                power_state: Some(PowerState::Running.code()),
                launched_at: Some(Some(instances::now())),
                progress: Some(0),
                ..Default::default()
            },
        )
        .await?;
        if done {
            instances::finish_event_in(
                &txn,
                &inst.uuid,
                &m.action_request_id,
                "compute__do_build_and_run_instance",
                None,
            )
            .await?;
        }
        txn.commit().await?;
        if !done {
            // deleted while spawning: undo the guest, the delete releases the rest
            self.driver.destroy(&inst.uuid).await?;
            return Ok(BuildResult::Deleted);
        }
        Ok(BuildResult::Active)
    }

    /// Run an action; its outcome lands in the server's states, its event and (on failure) a fault.
    pub async fn act(&self, m: &InstanceAction) {
        let event = event_name(&m.action);
        let Ok(Some(inst)) = instances::get(&self.db, &m.instance_uuid).await else { return };
        let _ = instances::start_event(&self.db, &inst.uuid, &m.action_request_id, event, Some(&self.host)).await;
        let result = self.try_act(&inst, m).await;
        let err = result.as_ref().err().map(|e| format!("{e:#}"));
        if let Some(msg) = &err {
            tracing::warn!(host = %self.host, instance = %inst.uuid, action = event, error = %msg, "action failed");
            // the action failed: the server keeps its state, the task ends
            let power = self
                .driver
                .list()
                .await
                .ok()
                .and_then(|gs| gs.into_iter().find(|g| g.uuid == inst.uuid))
                .map(|g| g.power_state.code());
            let _ = instances::update(
                &self.db,
                &inst.uuid,
                &Expect::live(),
                Change { task_state: Some(None), power_state: power, ..Default::default() },
            )
            .await;
            let _ = instances::add_fault(&self.db, &inst.uuid, 500, msg, None, Some(&self.host)).await;
        }
        let _ = instances::finish_event(&self.db, &inst.uuid, &m.action_request_id, event, err.as_deref()).await;
    }

    async fn set(&self, uuid: &str, expect_task: &'static str, ch: Change) -> anyhow::Result<()> {
        instances::update(
            &self.db,
            uuid,
            &Expect::live().task(&[Some(expect_task)]),
            Change { task_state: Some(None), ..ch },
        )
        .await?;
        Ok(())
    }

    async fn try_act(&self, inst: &Instance, m: &InstanceAction) -> anyhow::Result<()> {
        let id = inst.uuid.as_str();
        let d = &self.driver;
        let power = |p: PowerState| Some(p.code());
        match &m.action {
            Action::Stop => {
                d.power_off(id).await?;
                self.set(
                    id,
                    task::POWERING_OFF,
                    Change {
                        vm_state: Some(vm::STOPPED),
                        power_state: power(PowerState::Shutdown),
                        ..Default::default()
                    },
                )
                .await
            }
            Action::Start => {
                d.power_on(id).await?;
                self.set(
                    id,
                    task::POWERING_ON,
                    Change {
                        vm_state: Some(vm::ACTIVE),
                        power_state: power(PowerState::Running),
                        ..Default::default()
                    },
                )
                .await
            }
            Action::Reboot { hard } => {
                d.reboot(id, *hard).await?;
                let t = if *hard { task::REBOOTING_HARD } else { task::REBOOTING };
                self.set(
                    id,
                    t,
                    Change {
                        vm_state: Some(vm::ACTIVE),
                        power_state: power(PowerState::Running),
                        ..Default::default()
                    },
                )
                .await
            }
            Action::Pause => {
                d.pause(id).await?;
                self.set(
                    id,
                    task::PAUSING,
                    Change { vm_state: Some(vm::PAUSED), power_state: power(PowerState::Paused), ..Default::default() },
                )
                .await
            }
            Action::Unpause => {
                d.unpause(id).await?;
                self.set(
                    id,
                    task::UNPAUSING,
                    Change {
                        vm_state: Some(vm::ACTIVE),
                        power_state: power(PowerState::Running),
                        ..Default::default()
                    },
                )
                .await
            }
            Action::Suspend => {
                d.suspend(id).await?;
                self.set(
                    id,
                    task::SUSPENDING,
                    Change {
                        vm_state: Some(vm::SUSPENDED),
                        power_state: power(PowerState::Suspended),
                        ..Default::default()
                    },
                )
                .await
            }
            Action::Resume => {
                d.resume(id).await?;
                self.set(
                    id,
                    task::RESUMING,
                    Change {
                        vm_state: Some(vm::ACTIVE),
                        power_state: power(PowerState::Running),
                        ..Default::default()
                    },
                )
                .await
            }
            Action::Terminate => {
                self.terminate(inst, &m.action_request_id).await;
                Ok(())
            }
            Action::Rebuild { image_id } => {
                let mut spec = self.guest_spec(inst);
                spec.image_id = image_id.clone();
                if self.driver.needs_images() {
                    // the new image's properties (the server's record keeps those it was created with)
                    let img = self.image_cache.fetch(image_id).await?;
                    spec.image_properties = crate::image_cache::properties_of(&img.record);
                }
                // the new image is here before the old guest goes
                let spec = self.with_images(spec).await?;
                d.destroy(id).await?;
                d.spawn(&spec).await?;
                self.replug_volumes(id).await?;
                let was_stopped = inst.vm_state == vm::STOPPED;
                if was_stopped {
                    d.power_off(id).await?;
                }
                self.set(
                    id,
                    task::REBUILDING,
                    Change {
                        vm_state: Some(if was_stopped { vm::STOPPED } else { vm::ACTIVE }),
                        power_state: power(if was_stopped { PowerState::Shutdown } else { PowerState::Running }),
                        launched_at: Some(Some(instances::now())),
                        ..Default::default()
                    },
                )
                .await
            }
            Action::Snapshot { image_id } => self.snapshot(inst, image_id).await,
            Action::Backup { image_id, backup_type, rotation } => {
                self.snapshot(inst, image_id).await?;
                let token = (self.tokens)().await?;
                crate::backups::rotate(&self.images, &token, &inst.uuid, backup_type, *rotation).await.map(|_| ())
            }
            Action::FinishResize => self.finish_resize(inst).await,
            Action::ConfirmResize => self.confirm_resize(inst).await,
            Action::RevertResize => self.revert_resize(inst).await,
            Action::DestroyGuest => d.destroy(id).await,
        }
    }

    /// Plug an attached port into the guest and record it in the server's
    /// network info (Nova's `attach_interface` on the host, event
    /// `compute_attach_interface`). On failure nothing stays plugged; the API
    /// gives the port back.
    pub async fn attach_interface(&self, m: &rpc::AttachInterface) -> anyhow::Result<()> {
        const EVENT: &str = "compute_attach_interface";
        let id = m.instance_uuid.as_str();
        let _ = instances::start_event(&self.db, id, &m.action_request_id, EVENT, Some(&self.host)).await;
        let result: anyhow::Result<()> = async {
            let Some(inst) = instances::get_live(&self.db, id).await? else {
                anyhow::bail!("Instance {id} could not be found.");
            };
            if inst.host.as_deref() != Some(self.host.as_str()) {
                anyhow::bail!("Instance {id} is not on host {}", self.host);
            }
            let iface = stratus_virt::GuestInterface {
                port_id: m.vif.port_id.clone(),
                network_id: m.vif.network_id.clone(),
                mac_address: m.vif.mac.clone(),
                tag: m.vif.tag.clone(),
                ips: m.vif.ips.iter().map(|(a, _)| a.clone()).collect(),
                mtu: m.vif.mtu,
            };
            self.driver.attach_interface(id, &iface).await?;
            let vif = m.vif.clone();
            let recorded = crate::network::change_network_info(&self.db, id, |vifs| {
                match vifs.iter_mut().find(|v| v.port_id == vif.port_id) {
                    Some(v) => *v = vif.clone(),
                    None => vifs.push(vif.clone()),
                }
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}"));
            match recorded {
                Ok(true) => Ok(()),
                Ok(false) => {
                    let _ = self.driver.detach_interface(id, &iface.port_id).await;
                    anyhow::bail!("Instance {id} could not be found.")
                }
                Err(e) => {
                    let _ = self.driver.detach_interface(id, &iface.port_id).await;
                    Err(e)
                }
            }
        }
        .await;
        let err = result.as_ref().err().map(|e| format!("{e:#}"));
        if let Some(msg) = &err {
            tracing::warn!(host = %self.host, instance = %id, port = %m.vif.port_id, error = %msg, "attach interface failed");
            let _ = instances::add_fault(&self.db, id, 500, msg, None, Some(&self.host)).await;
        }
        let _ = instances::finish_event(&self.db, id, &m.action_request_id, EVENT, err.as_deref()).await;
        result
    }

    /// Unplug a port from the guest, give it back to the network service
    /// (deleted when compute made it, unbound when it is the user's) and drop
    /// it from the server's network info (event `compute_detach_interface`).
    pub async fn detach_interface(&self, m: &rpc::DetachInterface) {
        const EVENT: &str = "compute_detach_interface";
        let id = m.instance_uuid.as_str();
        let _ = instances::start_event(&self.db, id, &m.action_request_id, EVENT, Some(&self.host)).await;
        let result: anyhow::Result<()> = async {
            let Some(inst) = instances::get_live(&self.db, id).await? else {
                anyhow::bail!("Instance {id} could not be found.");
            };
            let Some(vif) = crate::network::vifs_of(&inst.system_metadata).into_iter().find(|v| v.port_id == m.port_id)
            else {
                anyhow::bail!("Port {} is not attached", m.port_id);
            };
            self.driver.detach_interface(id, &m.port_id).await?;
            if let Some(net) = &self.network {
                net.release_port(&m.port_id, vif.preserve).await?;
            }
            crate::network::change_network_info(&self.db, id, |vifs| vifs.retain(|v| v.port_id != m.port_id))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(())
        }
        .await;
        let err = result.as_ref().err().map(|e| format!("{e:#}"));
        if let Some(msg) = &err {
            tracing::warn!(host = %self.host, instance = %id, port = %m.port_id, error = %msg, "detach interface failed");
            let _ = instances::add_fault(&self.db, id, 500, msg, None, Some(&self.host)).await;
        }
        let _ = instances::finish_event(&self.db, id, &m.action_request_id, EVENT, err.as_deref()).await;
    }

    /// Connect one reserved volume to a guest here: the attachment gets
    /// this host's connector, the driver the volume, and the attachment is
    /// completed (the volume is `in-use`). Connected already is fine.
    async fn connect_volume(&self, vols: &crate::volume::Volumes, b: &crate::volume::Bdm) -> anyhow::Result<()> {
        let (Some(volume_id), Some(attachment_id)) = (&b.volume_id, &b.attachment_id) else {
            anyhow::bail!("volume mapping {} has no volume attachment", b.uuid);
        };
        let ip = self.driver.capacity().await.map(|c| c.host_ip).unwrap_or_else(|_| "127.0.0.1".into());
        let att = vols.attachment_update(attachment_id, crate::volume::connector(&self.host, &ip)).await?;
        let info = att.get("connection_info").cloned().unwrap_or(Value::Null);
        crate::volume::update(
            &self.db,
            &b.uuid,
            crate::volume::BdmChange { connection_info: Some(Some(info.to_string())), ..Default::default() },
        )
        .await?;
        let gv = stratus_virt::GuestVolume {
            volume_id: volume_id.clone(),
            attachment_id: attachment_id.clone(),
            device_name: b.device_name.clone().unwrap_or_default(),
            connection_info: info,
        };
        self.driver.attach_volume(&b.instance_uuid, &gv).await?;
        if let Err(e) = vols.attachment_complete(attachment_id).await {
            let _ = self.driver.detach_volume(&b.instance_uuid, volume_id).await;
            return Err(e.into());
        }
        Ok(())
    }

    /// After a guest was made anew (rebuild, resize to another host): plug
    /// back the volumes it had, with the connections they already have.
    async fn replug_volumes(&self, instance_uuid: &str) -> anyhow::Result<()> {
        for b in crate::volume::of_instance(&self.db, instance_uuid).await? {
            let (Some(volume_id), Some(attachment_id), Some(info)) =
                (&b.volume_id, &b.attachment_id, &b.connection_info)
            else {
                continue;
            };
            let gv = stratus_virt::GuestVolume {
                volume_id: volume_id.clone(),
                attachment_id: attachment_id.clone(),
                device_name: b.device_name.clone().unwrap_or_default(),
                connection_info: serde_json::from_str(info).unwrap_or(Value::Null),
            };
            self.driver.attach_volume(instance_uuid, &gv).await?;
        }
        Ok(())
    }

    /// At build: connect every volume the build prepared.
    async fn connect_volumes(&self, instance_uuid: &str) -> anyhow::Result<()> {
        let Some(vols) = &self.volumes else { return Ok(()) };
        for b in crate::volume::of_instance(&self.db, instance_uuid).await? {
            if b.attachment_id.is_some() {
                self.connect_volume(vols, &b).await?;
            }
        }
        Ok(())
    }

    /// Connect a volume the API reserved to a server here (Nova's
    /// `attach_volume` on the host, event `compute_attach_volume`). On
    /// failure nothing stays connected; the API gives the reservation back.
    pub async fn attach_volume(&self, m: &rpc::AttachVolume) -> anyhow::Result<()> {
        const EVENT: &str = "compute_attach_volume";
        let id = m.instance_uuid.as_str();
        let _ = instances::start_event(&self.db, id, &m.action_request_id, EVENT, Some(&self.host)).await;
        let result: anyhow::Result<()> = async {
            let Some(vols) = &self.volumes else { anyhow::bail!("this host has no block storage service") };
            let Some(inst) = instances::get_live(&self.db, id).await? else {
                anyhow::bail!("Instance {id} could not be found.");
            };
            if inst.host.as_deref() != Some(self.host.as_str()) {
                anyhow::bail!("Instance {id} is not on host {}", self.host);
            }
            let Some(b) = crate::volume::get(&self.db, &m.bdm_uuid).await? else {
                anyhow::bail!("volume mapping {} is gone", m.bdm_uuid);
            };
            self.connect_volume(vols, &b).await
        }
        .await;
        let err = result.as_ref().err().map(|e| format!("{e:#}"));
        if let Some(msg) = &err {
            tracing::warn!(host = %self.host, instance = %id, bdm = %m.bdm_uuid, error = %msg, "attach volume failed");
            let _ = instances::add_fault(&self.db, id, 500, msg, None, Some(&self.host)).await;
        }
        let _ = instances::finish_event(&self.db, id, &m.action_request_id, EVENT, err.as_deref()).await;
        result
    }

    /// Disconnect a volume from a guest here, give its attachment back and
    /// drop its mapping (event `compute_detach_volume`).
    pub async fn detach_volume(&self, m: &rpc::DetachVolume) {
        const EVENT: &str = "compute_detach_volume";
        let id = m.instance_uuid.as_str();
        let _ = instances::start_event(&self.db, id, &m.action_request_id, EVENT, Some(&self.host)).await;
        let result: anyhow::Result<()> = async {
            let Some(b) = crate::volume::find(&self.db, id, &m.volume_id).await? else {
                anyhow::bail!("Volume {} is not attached to {id}", m.volume_id);
            };
            self.driver.detach_volume(id, &m.volume_id).await?;
            if let (Some(vols), Some(a)) = (&self.volumes, &b.attachment_id) {
                vols.attachment_delete(a).await?;
            }
            crate::volume::remove(&self.db, &b.uuid).await?;
            Ok(())
        }
        .await;
        let err = result.as_ref().err().map(|e| format!("{e:#}"));
        if let Some(msg) = &err {
            tracing::warn!(host = %self.host, instance = %id, volume = %m.volume_id, error = %msg, "detach volume failed");
            let _ = instances::add_fault(&self.db, id, 500, msg, None, Some(&self.host)).await;
        }
        let _ = instances::finish_event(&self.db, id, &m.action_request_id, EVENT, err.as_deref()).await;
    }

    /// Delete a server here: its guest, its allocations, its record. Idempotent.
    pub async fn terminate(&self, inst: &Instance, request_id: &str) {
        let result: anyhow::Result<()> = async {
            self.driver.destroy(&inst.uuid).await?;
            // its console URLs lead nowhere now (Nova's clean_console_auths_for_instance)
            crate::console::store::delete_for_instance(&self.db, &inst.uuid).await?;
            if let Some(vols) = &self.volumes {
                vols.release_instance(&self.db, &inst.uuid).await?;
            }
            if let Some(net) = &self.network {
                net.deallocate(&inst.uuid, &crate::network::preserved(&inst.system_metadata)).await?;
            }
            self.placement.release(&inst.uuid).await?;
            if let Some(mig) = migration_of(inst) {
                self.placement.release(&mig.uuid).await?;
            }
            instances::update(
                &self.db,
                &inst.uuid,
                &Expect::live(),
                Change {
                    vm_state: Some(vm::DELETED),
                    task_state: Some(None),
                    power_state: Some(PowerState::NoState.code()),
                    terminated_at: Some(Some(instances::now())),
                    deleted: Some(true),
                    ..Default::default()
                },
            )
            .await?;
            store::server_groups::remove_member(&self.db, &inst.uuid).await?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(host = %self.host, instance = %inst.uuid, request_id, error = %format!("{e:#}"), "delete failed");
            let _ = instances::update(
                &self.db,
                &inst.uuid,
                &Expect::live(),
                Change { vm_state: Some(vm::ERROR), task_state: Some(None), ..Default::default() },
            )
            .await;
            let _ = instances::add_fault(&self.db, &inst.uuid, 500, &format!("{e:#}"), None, Some(&self.host)).await;
        }
    }

    async fn snapshot(&self, inst: &Instance, image_id: &str) -> anyhow::Result<()> {
        let dir = self.cfg.data_dir.join("tmp");
        tokio::fs::create_dir_all(&dir).await?;
        let path = dir.join(format!("snapshot-{image_id}"));
        let res: anyhow::Result<()> = async {
            instances::update(
                &self.db,
                &inst.uuid,
                &Expect::live(),
                Change { task_state: Some(Some(task::IMAGE_PENDING_UPLOAD)), ..Default::default() },
            )
            .await?;
            let format = self.driver.snapshot(&inst.uuid, &path).await?;
            let token = (self.tokens)().await?;
            if format != "raw" {
                // the API made the image `raw`; the image service checks data against it
                let patch = json!([{"op": "replace", "path": "/disk_format", "value": format}]);
                self.images.update(image_id, &patch, &token, None).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            instances::update(
                &self.db,
                &inst.uuid,
                &Expect::live(),
                Change { task_state: Some(Some(task::IMAGE_UPLOADING)), ..Default::default() },
            )
            .await?;
            self.images.upload(image_id, &path, &token).await?;
            Ok(())
        }
        .await;
        let _ = tokio::fs::remove_file(&path).await;
        instances::update(
            &self.db,
            &inst.uuid,
            &Expect::live(),
            Change { task_state: Some(None), ..Default::default() },
        )
        .await?;
        if res.is_err()
            && let Ok(token) = (self.tokens)().await
        {
            let _ = self.images.delete(image_id, &token).await;
        }
        res
    }

    /// On the destination: the guest with its new flavor (here, or moved here).
    async fn finish_resize(&self, inst: &Instance) -> anyhow::Result<()> {
        let mig = migration_of(inst).ok_or_else(|| anyhow::anyhow!("no migration recorded for {}", inst.uuid))?;
        let mut spec = self.guest_spec(inst);
        let new: Value = serde_json::from_str(inst.new_flavor.as_deref().unwrap_or("null"))?;
        spec.vcpus = new["vcpus"].as_i64().unwrap_or(spec.vcpus);
        spec.memory_mb = new["memory_mb"].as_i64().unwrap_or(spec.memory_mb);
        spec.root_gb = new["root_gb"].as_i64().unwrap_or(spec.root_gb);
        spec.ephemeral_gb = new["ephemeral_gb"].as_i64().unwrap_or(spec.ephemeral_gb);
        let spec = self.with_images(spec).await?;
        if mig.source_host == self.host {
            self.driver.resize(&inst.uuid, &spec).await?;
            self.driver.power_on(&inst.uuid).await?;
        } else {
            self.driver.spawn(&spec).await?;
            self.replug_volumes(&inst.uuid).await?;
        }
        let stopped = mig.old_vm_state == vm::STOPPED;
        if stopped {
            self.driver.power_off(&inst.uuid).await?;
        }
        let flavor = (
            new["id"].as_str().map(str::to_string).unwrap_or_else(|| new["id"].to_string()),
            spec.vcpus,
            spec.memory_mb,
            spec.root_gb,
            spec.ephemeral_gb,
            new.to_string(),
        );
        // the record is finished before the server shows VERIFY_RESIZE (what clients wait for)
        crate::store::migrations::set_status(&self.db, &mig.uuid, crate::store::migrations::status::FINISHED).await?;
        instances::update(
            &self.db,
            &inst.uuid,
            &Expect::live(),
            Change {
                vm_state: Some(vm::RESIZED),
                task_state: Some(None),
                power_state: Some(if stopped { PowerState::Shutdown } else { PowerState::Running }.code()),
                host: Some(Some(self.host.clone())),
                node: Some(Some(self.node.clone())),
                old_flavor: Some(Some(inst.flavor.clone())),
                new_flavor: Some(None),
                flavor: Some(flavor),
                ..Default::default()
            },
        )
        .await?;
        Ok(())
    }

    /// On the destination: keep the new flavor; the source's guest and claim go.
    async fn confirm_resize(&self, inst: &Instance) -> anyhow::Result<()> {
        let mig = migration_of(inst).ok_or_else(|| anyhow::anyhow!("no migration recorded for {}", inst.uuid))?;
        if mig.source_host != self.host {
            let src = rpc::compute_topic(&mig.source_host);
            // the source drops its copy of the guest
            self.bus
                .cast(
                    &format!("{src}.actions"),
                    &InstanceAction {
                        instance_uuid: inst.uuid.clone(),
                        action: Action::DestroyGuest,
                        action_request_id: String::new(),
                    },
                    "",
                )
                .await
                .ok();
        }
        self.placement.release(&mig.uuid).await?;
        let mut sys: Map<String, Value> = serde_json::from_str(&inst.system_metadata).unwrap_or_default();
        sys.remove("migration");
        crate::store::migrations::set_status(&self.db, &mig.uuid, crate::store::migrations::status::CONFIRMED).await?;
        instances::update(
            &self.db,
            &inst.uuid,
            &Expect::live(),
            Change {
                vm_state: Some(if mig.old_vm_state == vm::STOPPED { vm::STOPPED } else { vm::ACTIVE }),
                task_state: Some(None),
                old_flavor: Some(None),
                system_metadata: Some(Value::Object(sys).to_string()),
                ..Default::default()
            },
        )
        .await?;
        Ok(())
    }

    /// Back to the old flavor and the source host; the new claim goes, the old one comes back.
    async fn revert_resize(&self, inst: &Instance) -> anyhow::Result<()> {
        let mig = migration_of(inst).ok_or_else(|| anyhow::anyhow!("no migration recorded for {}", inst.uuid))?;
        let old: Value = serde_json::from_str(inst.old_flavor.as_deref().unwrap_or("null"))?;
        let mut spec = self.guest_spec(inst);
        spec.vcpus = old["vcpus"].as_i64().unwrap_or(spec.vcpus);
        spec.memory_mb = old["memory_mb"].as_i64().unwrap_or(spec.memory_mb);
        spec.root_gb = old["root_gb"].as_i64().unwrap_or(spec.root_gb);
        spec.ephemeral_gb = old["ephemeral_gb"].as_i64().unwrap_or(spec.ephemeral_gb);
        if mig.source_host == self.host {
            let spec = self.with_images(spec.clone()).await?;
            self.driver.resize(&inst.uuid, &spec).await?;
            if mig.old_vm_state != vm::STOPPED {
                self.driver.power_on(&inst.uuid).await?;
            }
        } else {
            self.driver.destroy(&inst.uuid).await?;
        }
        let (claim, _) = self.placement.allocations(&mig.uuid).await?;
        let (project, user) = (inst.project_id.as_str(), inst.user_id.as_str());
        self.placement.replace(&inst.uuid, &claim, project, user).await?;
        self.placement.release(&mig.uuid).await?;
        let mut sys: Map<String, Value> = serde_json::from_str(&inst.system_metadata).unwrap_or_default();
        sys.remove("migration");
        let stopped = mig.old_vm_state == vm::STOPPED;
        let flavor = (
            old["id"].as_str().map(str::to_string).unwrap_or_else(|| old["id"].to_string()),
            spec.vcpus,
            spec.memory_mb,
            spec.root_gb,
            spec.ephemeral_gb,
            old.to_string(),
        );
        crate::store::migrations::set_status(&self.db, &mig.uuid, crate::store::migrations::status::REVERTED).await?;
        instances::update(
            &self.db,
            &inst.uuid,
            &Expect::live(),
            Change {
                vm_state: Some(if stopped { vm::STOPPED } else { vm::ACTIVE }),
                task_state: Some(None),
                power_state: Some(if stopped { PowerState::Shutdown } else { PowerState::Running }.code()),
                host: Some(Some(mig.source_host.clone())),
                node: Some(Some(mig.source_node.clone())),
                old_flavor: Some(None),
                flavor: Some(flavor),
                system_metadata: Some(Value::Object(sys).to_string()),
                ..Default::default()
            },
        )
        .await?;
        Ok(())
    }
}

/// What a server's guest is, from its record alone: sizes, image, the
/// server's metadata and key, its network interfaces. (Local image paths
/// come later, from the host's image cache.) A server with no zone of its
/// own is in `default_zone`.
pub fn guest_spec(inst: &Instance, default_zone: &str) -> GuestSpec {
    let flavor: Value = serde_json::from_str(&inst.flavor).unwrap_or(Value::Null);
    let sys: Map<String, Value> = serde_json::from_str(&inst.system_metadata).unwrap_or_default();
    let image_properties = sys.get("image_properties").and_then(Value::as_object).cloned().unwrap_or_default();
    let interfaces = crate::network::vifs_of(&inst.system_metadata)
        .into_iter()
        .map(|v| stratus_virt::GuestInterface {
            port_id: v.port_id,
            network_id: v.network_id,
            mac_address: v.mac,
            tag: v.tag,
            ips: v.ips.into_iter().map(|(a, _)| a).collect(),
            mtu: v.mtu,
        })
        .collect();
    GuestSpec {
        uuid: inst.uuid.clone(),
        name: inst.display_name.clone(),
        hostname: inst.hostname.clone(),
        vcpus: inst.vcpus,
        memory_mb: inst.memory_mb,
        root_gb: inst.root_gb,
        ephemeral_gb: inst.ephemeral_gb,
        swap_mb: flavor["swap"].as_i64().unwrap_or(0),
        image_id: inst.image_ref.clone(),
        image_path: None,
        image_properties,
        user_data: inst.user_data.clone(),
        metadata: serde_json::from_str(&inst.metadata).unwrap_or_default(),
        key_data: inst.key_data.clone(),
        key_name: inst.key_name.clone(),
        project_id: inst.project_id.clone(),
        availability_zone: inst
            .availability_zone
            .clone()
            .filter(|z| !z.is_empty())
            .unwrap_or_else(|| default_zone.to_string()),
        launch_index: inst.launch_index,
        image_format: None,
        kernel_path: None,
        ramdisk_path: None,
        interfaces,
    }
}

/// A resize in progress, as recorded in the server's system metadata.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Migration {
    pub uuid: String,
    pub source_host: String,
    pub source_node: String,
    pub dest_host: String,
    pub dest_node: String,
    pub old_vm_state: String,
}

pub fn migration_of(inst: &Instance) -> Option<Migration> {
    let sys: Value = serde_json::from_str(&inst.system_metadata).ok()?;
    serde_json::from_value(sys.get("migration")?.clone()).ok()
}

/// The event name Nova records for an action.
pub fn event_name(a: &Action) -> &'static str {
    match a {
        Action::Stop => "compute_stop_instance",
        Action::Start => "compute_start_instance",
        Action::Reboot { .. } => "compute_reboot_instance",
        Action::Pause => "compute_pause_instance",
        Action::Unpause => "compute_unpause_instance",
        Action::Suspend => "compute_suspend_instance",
        Action::Resume => "compute_resume_instance",
        Action::Terminate => "compute_terminate_instance",
        Action::Rebuild { .. } => "compute_rebuild_instance",
        Action::Snapshot { .. } => "compute_snapshot_instance",
        Action::Backup { .. } => "compute_backup_instance",
        Action::FinishResize => "compute_finish_resize",
        Action::ConfirmResize => "compute_confirm_resize",
        Action::RevertResize => "compute_revert_resize",
        Action::DestroyGuest => "compute_destroy_guest",
    }
}
