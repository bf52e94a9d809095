//! The conductor: runs the build saga of every server create, and resizes.
//!
//! Build saga (`build_instances`), one per create request, its state the
//! instance uuids, the request spec and what each step decided:
//! 1. `begin`: nothing to do; its undo is the end of a failed build: every
//!    server of the request goes to ERROR with a fault.
//! 2. `select_destinations`: the scheduler picks and claims a host per
//!    server (all or none), with alternates. Undo: release the claims.
//! 3. `assign_hosts`: the build requests become placed instances (host,
//!    node, zone). Undo: unassign.
//! 4. `allocate_networks`: the servers' ports in the network service
//!    (created, or the user's taken over). Undo: compute's ports deleted,
//!    the user's unbound.
//! 5. `prepare_block_devices`: the servers' volumes (made from an image or
//!    blank, or the user's) are available and reserved for them (Cinder
//!    attachments). Undo: the attachments go, the volumes made are deleted.
//! 6. `build_on_hosts`: each host builds its server (its ports bound to it); a host that fails is
//!    replaced by the next alternate (claimed anew) up to `max_attempts`;
//!    a server whose every host failed goes to ERROR with its claims
//!    released. Undo: the guests built are destroyed, the claims released.
//! 7. `finish`: the create action is recorded as finished.
//!
//! Any conductor runs any saga: a saga whose conductor died is adopted by
//! another (heartbeat older than `saga_takeover_seconds`) and resumed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::TransactionTrait;
use serde_json::{Value, json};
use stratus_bus::{Bus, BusError, RemoteError, handler};
use stratus_core::Config;
use stratus_db::Db;
use stratus_saga::{Engine, Outcome, Run, SagaDef, Step};

use crate::model::{task, vm};
use crate::placement::Placement;
use crate::rpc::{self, BuildAndRunInstance, BuildResult, RequestSpec, SelectDestinations, Selection, Selections};
use crate::scheduler::NO_VALID_HOST;
use crate::store::instances::{self, Change, Expect};

pub const BUILD: &str = "build_instances";
pub const BINARY: &str = "nova-conductor";

pub struct Conductor {
    pub db: Db,
    pub cfg: Config,
    pub bus: Bus,
    pub placement: Arc<Placement>,
    /// The network service, when servers have ports.
    pub network: Option<Arc<crate::network::Networking>>,
    /// The block storage service, when servers get volumes.
    pub volumes: Option<Arc<crate::volume::Volumes>>,
    pub engine: Engine,
    /// Failure injection for the next sagas this conductor runs (tests).
    pub faults: std::sync::Mutex<stratus_saga::Faults>,
}

/// What a build saga starts from.
pub fn build_state(instance_uuids: &[String], spec: &RequestSpec, request_id: &str) -> Value {
    json!({"instance_uuids": instance_uuids, "spec": spec, "request_id": request_id})
}

fn call_timeout(cfg: &Config) -> Duration {
    Duration::from_secs(cfg.bus.call_timeout.max(1))
}

impl Conductor {
    pub fn new(
        db: Db,
        cfg: Config,
        bus: Bus,
        placement: Arc<Placement>,
        network: Option<Arc<crate::network::Networking>>,
        volumes: Option<Arc<crate::volume::Volumes>>,
        owner: &str,
    ) -> Arc<Conductor> {
        let engine = Engine::new(db.clone(), owner, Duration::from_secs(cfg.compute.saga_takeover_seconds.max(1)));
        Arc::new(Conductor {
            db,
            cfg,
            bus,
            placement,
            network,
            volumes,
            engine,
            faults: std::sync::Mutex::new(Default::default()),
        })
    }

    pub fn build_saga() -> SagaDef<Conductor> {
        SagaDef {
            kind: BUILD,
            steps: vec![
                Arc::new(Begin),
                Arc::new(Select),
                Arc::new(Assign),
                Arc::new(AllocateNetworks),
                Arc::new(PrepareBlockDevices),
                Arc::new(BuildOnHosts),
                Arc::new(Finish),
            ],
        }
    }

    /// Serve the `conductor` topic and adopt orphaned sagas periodically.
    pub async fn start(self: &Arc<Self>) -> anyhow::Result<()> {
        let svc = crate::store::services::upsert(&self.db, &self.engine.owner_host(), BINARY, rpc::CONDUCTOR).await?;
        let me = self.clone();
        self.bus
            .serve(
                rpc::CONDUCTOR,
                handler(move |m: rpc::BuildInstances, _| {
                    let me = me.clone();
                    async move {
                        tokio::spawn(async move { me.run_build(&m.saga_id).await });
                        Ok::<_, RemoteError>(())
                    }
                }),
            )
            .await?;
        let me = self.clone();
        self.bus
            .serve(
                &format!("{}.resize", rpc::CONDUCTOR),
                handler(move |m: rpc::ResizeInstance, _| {
                    let me = me.clone();
                    async move {
                        tokio::spawn(async move { me.resize(&m).await });
                        Ok::<_, RemoteError>(())
                    }
                }),
            )
            .await?;
        let me = self.clone();
        tokio::spawn(async move {
            let every = Duration::from_secs((me.cfg.compute.saga_takeover_seconds / 3).clamp(1, 10));
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = crate::store::services::heartbeat(&me.db, svc.id).await {
                    tracing::warn!(error = %e, "conductor heartbeat failed");
                }
                match me.engine.orphans(BUILD).await {
                    Ok(ids) => {
                        for id in ids {
                            tracing::info!(saga = %id, "adopting an orphaned build saga");
                            let me = me.clone();
                            tokio::spawn(async move { me.run_build(&id).await });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "looking for orphaned sagas failed"),
                }
            }
        });
        Ok(())
    }

    pub async fn run_build(self: &Arc<Self>, saga_id: &str) -> Option<Outcome> {
        let mut engine = self.engine.clone();
        if let Ok(f) = self.faults.lock() {
            engine.faults = f.clone();
        }
        match engine.run(&Self::build_saga(), self, saga_id).await {
            Ok(Outcome::Unwound { error, state }) => {
                // whatever step failed (the first included), the request's servers end in ERROR
                if let Err(e) = fail_servers(self, &state, &error).await {
                    tracing::error!(saga = %saga_id, error = %format!("{e:#}"), "marking failed servers");
                }
                Some(Outcome::Unwound { error, state })
            }
            Ok(o) => Some(o),
            Err(e) => {
                tracing::error!(saga = %saga_id, error = %format!("{e:#}"), "build saga could not run");
                None
            }
        }
    }

    async fn call_host<T: serde::de::DeserializeOwned>(
        &self,
        topic: &str,
        msg: &impl stratus_bus::Message,
        rid: &str,
        t: Duration,
    ) -> Result<T, BusError> {
        self.bus.call(topic, msg, rid, t).await
    }

    /// Build one server on its chosen host, then on the alternates, until one works.
    async fn build_one(&self, run_state: &Value, uuid: &str, picks: &[Selection]) -> anyhow::Result<String> {
        let rid = run_state["request_id"].as_str().unwrap_or_default().to_string();
        let spec: RequestSpec = serde_json::from_value(run_state["spec"].clone())?;
        let max = (self.cfg.compute.max_attempts.max(1) as usize).min(picks.len());
        let mut last_error = String::new();
        for (attempt, pick) in picks.iter().take(max).enumerate() {
            if attempt > 0 {
                // the previous host failed: its claim goes, the alternate's is made
                self.placement.release(uuid).await?;
                if !self.placement.claim(uuid, &pick.allocations, &spec.project_id, &spec.user_id).await? {
                    last_error = format!("alternate host {} has no room any more", pick.host);
                    continue;
                }
                let moved = instances::update(
                    &self.db,
                    uuid,
                    &Expect::live().vm(&[vm::BUILDING]),
                    Change {
                        host: Some(Some(pick.host.clone())),
                        node: Some(Some(pick.node.clone())),
                        ..Default::default()
                    },
                )
                .await?;
                if !moved {
                    self.placement.release(uuid).await?;
                    return Ok("deleted".into());
                }
                tracing::info!(instance = %uuid, host = %pick.host, attempt, "rescheduled to an alternate host");
            }
            if let Some(net) = &self.network
                && let Some(inst) = instances::get_live(&self.db, uuid).await?
            {
                net.bind(&crate::network::vifs_of(&inst.system_metadata), &pick.host).await?;
            }
            let msg = BuildAndRunInstance {
                instance_uuid: uuid.to_string(),
                node: pick.node.clone(),
                action_request_id: rid.clone(),
            };
            let timeout = Duration::from_secs(self.cfg.compute.build_timeout.max(1));
            match self.call_host::<BuildResult>(&rpc::compute_topic(&pick.host), &msg, &rid, timeout).await {
                Ok(BuildResult::Active) => return Ok("active".into()),
                Ok(BuildResult::Deleted) => {
                    self.placement.release(uuid).await?;
                    return Ok("deleted".into());
                }
                Ok(BuildResult::Failed(e)) => last_error = e,
                Err(e) => last_error = e.to_string(),
            }
        }
        // every host failed
        self.placement.release(uuid).await?;
        if let Some(net) = &self.network
            && let Some(inst) = instances::get(&self.db, uuid).await?
        {
            net.deallocate(uuid, &crate::network::preserved(&inst.system_metadata)).await?;
        }
        let message = format!(
            "Exceeded maximum number of retries. Exhausted all hosts available for retrying build failures for instance {uuid}."
        );
        let failed = instances::update(
            &self.db,
            uuid,
            &Expect::live().vm(&[vm::BUILDING]),
            Change { vm_state: Some(vm::ERROR), task_state: Some(None), ..Default::default() },
        )
        .await?;
        if failed {
            instances::add_fault(&self.db, uuid, 500, &message, Some(&last_error), None).await?;
        }
        Ok("error".into())
    }

    /// Resize: move the old claim aside, schedule the new flavor (this host
    /// included), and let the destination finish. On no valid host the
    /// server keeps its flavor and its claim.
    async fn resize(&self, m: &rpc::ResizeInstance) {
        if let Err(e) = self.try_resize(m).await {
            let msg = format!("{e:#}");
            tracing::warn!(instance = %m.instance_uuid, error = %msg, "resize failed");
            let _ = instances::update(
                &self.db,
                &m.instance_uuid,
                &Expect::live(),
                Change { task_state: Some(None), new_flavor: Some(None), ..Default::default() },
            )
            .await;
            let _ = instances::add_fault(&self.db, &m.instance_uuid, 500, &msg, None, None).await;
            let _ = crate::store::migrations::fail_in_progress(&self.db, &m.instance_uuid).await;
            let _ = instances::finish_event(
                &self.db,
                &m.instance_uuid,
                &m.action_request_id,
                "conductor_migrate_server",
                Some(&msg),
            )
            .await;
        }
    }

    async fn try_resize(&self, m: &rpc::ResizeInstance) -> anyhow::Result<()> {
        let uuid = m.instance_uuid.as_str();
        let inst =
            instances::get_live(&self.db, uuid).await?.ok_or_else(|| anyhow::anyhow!("server {uuid} is gone"))?;
        instances::start_event(&self.db, uuid, &m.action_request_id, "conductor_migrate_server", None).await?;
        let mut spec: RequestSpec = serde_json::from_str(&inst.request_spec).unwrap_or_default();
        spec.flavor = m.flavor.clone();
        spec.project_id = inst.project_id.clone();
        spec.user_id = inst.user_id.clone();
        spec.forced_host = None;
        spec.forced_node = None;
        spec.ignore_hosts.clear();
        let mig_uuid = uuid::Uuid::new_v4().to_string();
        let (old_claim, _) = self.placement.allocations(uuid).await?;
        // the old claim moves to the migration, the server's consumer is free for the new one
        self.placement.claim(&mig_uuid, &old_claim, &inst.project_id, &inst.user_id).await?;
        self.placement.release(uuid).await?;
        let req = SelectDestinations { spec, instance_uuids: vec![uuid.to_string()], alternates: 0 };
        let picked: Result<Selections, BusError> =
            self.bus.call(rpc::SCHEDULER, &req, &m.action_request_id, call_timeout(&self.cfg)).await;
        let pick = match picked {
            Ok(mut s) if !s.is_empty() && !s[0].is_empty() => s.remove(0).remove(0),
            other => {
                // back as it was
                self.placement.replace(uuid, &old_claim, &inst.project_id, &inst.user_id).await?;
                self.placement.release(&mig_uuid).await?;
                let why = match other {
                    Err(e) => e.to_string(),
                    Ok(_) => NO_VALID_HOST.to_string(),
                };
                anyhow::bail!("{why}");
            }
        };
        let mig = crate::manager::Migration {
            uuid: mig_uuid,
            source_host: inst.host.clone().unwrap_or_default(),
            source_node: inst.node.clone().unwrap_or_default(),
            dest_host: pick.host.clone(),
            dest_node: pick.node.clone(),
            old_vm_state: inst.vm_state.clone(),
        };
        crate::store::migrations::record_resize(&self.db, &inst, &mig, &m.flavor.id).await?;
        let mut sys: serde_json::Map<String, Value> = serde_json::from_str(&inst.system_metadata).unwrap_or_default();
        sys.insert("migration".into(), serde_json::to_value(&mig)?);
        instances::update(
            &self.db,
            uuid,
            &Expect::live(),
            Change {
                task_state: Some(Some(task::RESIZE_MIGRATED)),
                system_metadata: Some(Value::Object(sys).to_string()),
                ..Default::default()
            },
        )
        .await?;
        instances::finish_event(&self.db, uuid, &m.action_request_id, "conductor_migrate_server", None).await?;
        self.bus
            .cast(
                &format!("{}.actions", rpc::compute_topic(&pick.host)),
                &rpc::InstanceAction {
                    instance_uuid: uuid.to_string(),
                    action: rpc::Action::FinishResize,
                    action_request_id: m.action_request_id.clone(),
                },
                &m.action_request_id,
            )
            .await?;
        Ok(())
    }
}

/// The host name this conductor registers its service under (its owner id up to a `/`).
trait OwnerHost {
    fn owner_host(&self) -> String;
}

impl OwnerHost for Engine {
    fn owner_host(&self) -> String {
        self.owner.split('/').next().unwrap_or(&self.owner).to_string()
    }
}

fn uuids(run: &Run) -> anyhow::Result<Vec<String>> {
    run.get("instance_uuids")
}

/// The end of a failed build: every server of the request still building
/// goes to ERROR with a fault saying why (idempotent).
async fn fail_servers(c: &Conductor, state: &Value, why: &str) -> anyhow::Result<()> {
    let (message, details) = if why.contains(NO_VALID_HOST) {
        (NO_VALID_HOST.to_string(), why.to_string())
    } else {
        ("Build of instance failed".to_string(), why.to_string())
    };
    let rid = state["request_id"].as_str().unwrap_or_default();
    let all: Vec<String> = serde_json::from_value(state["instance_uuids"].clone()).unwrap_or_default();
    for u in all {
        let failed = instances::update(
            &c.db,
            &u,
            &Expect::live().vm(&[vm::BUILDING]),
            Change { vm_state: Some(vm::ERROR), task_state: Some(None), ..Default::default() },
        )
        .await?;
        if failed {
            instances::add_fault(&c.db, &u, 500, &message, Some(&details), None).await?;
        }
        instances::finish_event(&c.db, &u, rid, "conductor_schedule_and_build_instances", Some(why)).await?;
    }
    Ok(())
}

struct Begin;

#[async_trait::async_trait]
impl Step<Conductor> for Begin {
    fn name(&self) -> &'static str {
        "begin"
    }
    async fn action(&self, c: &Conductor, run: &mut Run) -> anyhow::Result<()> {
        let rid: String = run.get("request_id")?;
        let txn = c.db.write.begin().await?;
        for u in uuids(run)? {
            instances::start_event_in(&txn, &u, &rid, "conductor_schedule_and_build_instances", None).await?;
        }
        txn.commit().await?;
        Ok(())
    }
    async fn undo(&self, c: &Conductor, run: &mut Run) -> anyhow::Result<()> {
        let why = run.error.clone().unwrap_or_else(|| "build failed".into());
        fail_servers(c, &run.state, &why).await
    }
}

struct Select;

#[async_trait::async_trait]
impl Step<Conductor> for Select {
    fn name(&self) -> &'static str {
        "select_destinations"
    }
    async fn action(&self, c: &Conductor, run: &mut Run) -> anyhow::Result<()> {
        let spec: RequestSpec = run.get("spec")?;
        let rid: String = run.get("request_id")?;
        let all = uuids(run)?;
        // a claim from an earlier attempt (a crash after the scheduler answered) is let go first
        for u in &all {
            c.placement.release(u).await?;
        }
        let req =
            SelectDestinations { spec, instance_uuids: all, alternates: c.cfg.compute.max_attempts.saturating_sub(1) };
        let picked: Selections = match c.bus.call(rpc::SCHEDULER, &req, &rid, call_timeout(&c.cfg)).await {
            Ok(p) => p,
            Err(BusError::Remote(e)) => anyhow::bail!("{}", e.message),
            Err(e) => anyhow::bail!("scheduler: {e}"),
        };
        run.set("selections", picked)?;
        Ok(())
    }
    async fn undo(&self, c: &Conductor, run: &mut Run) -> anyhow::Result<()> {
        for u in uuids(run)? {
            c.placement.release(&u).await?;
        }
        Ok(())
    }
}

struct Assign;

#[async_trait::async_trait]
impl Step<Conductor> for Assign {
    fn name(&self) -> &'static str {
        "assign_hosts"
    }
    async fn action(&self, c: &Conductor, run: &mut Run) -> anyhow::Result<()> {
        let picked: Selections = run.get("selections")?;
        let aggregates = crate::store::aggregates::all(&c.db).await?;
        let default_zone = c.cfg.compute.default_availability_zone.as_str();
        for (u, picks) in uuids(run)?.iter().zip(picked) {
            let Some(first) = picks.first() else { continue };
            let zone = crate::store::aggregates::zone_from(&aggregates, &first.host, default_zone);
            instances::update(
                &c.db,
                u,
                &Expect::live().vm(&[vm::BUILDING]),
                Change {
                    host: Some(Some(first.host.clone())),
                    node: Some(Some(first.node.clone())),
                    availability_zone: Some(Some(zone)),
                    task_state: Some(Some(task::NETWORKING)),
                    ..Default::default()
                },
            )
            .await?;
        }
        Ok(())
    }
    async fn undo(&self, c: &Conductor, run: &mut Run) -> anyhow::Result<()> {
        for u in uuids(run)? {
            instances::update(
                &c.db,
                &u,
                &Expect::live().vm(&[vm::BUILDING]),
                Change {
                    host: Some(None),
                    node: Some(None),
                    task_state: Some(Some(task::SCHEDULING)),
                    ..Default::default()
                },
            )
            .await?;
        }
        Ok(())
    }
}

struct AllocateNetworks;

#[async_trait::async_trait]
impl Step<Conductor> for AllocateNetworks {
    fn name(&self) -> &'static str {
        "allocate_networks"
    }
    async fn action(&self, c: &Conductor, run: &mut Run) -> anyhow::Result<()> {
        let Some(net) = &c.network else { return Ok(()) };
        for u in uuids(run)? {
            let Some(inst) = instances::get_live(&c.db, &u).await? else { continue };
            let mut sys: serde_json::Map<String, Value> =
                serde_json::from_str(&inst.system_metadata).unwrap_or_default();
            let requested: Vec<crate::network::Requested> =
                sys.get("requested_networks").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default();
            if requested.is_empty() {
                continue;
            }
            let groups: Vec<String> =
                sys.get("security_groups").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default();
            let zone =
                inst.availability_zone.clone().unwrap_or_else(|| c.cfg.compute.default_availability_zone.clone());
            let vifs = net.allocate(&u, &inst.project_id, &zone, &groups, &requested).await?;
            sys.insert("network_info".into(), serde_json::to_value(&vifs)?);
            instances::update(
                &c.db,
                &u,
                &Expect::live(),
                Change { system_metadata: Some(Value::Object(sys).to_string()), ..Default::default() },
            )
            .await?;
            // A delete that began before the ports existed gave back none of
            // them: once it is seen (deleting or gone), they go here. A delete
            // that begins after this read finds them by their device.
            let now = instances::get_live(&c.db, &u).await?;
            if now.as_ref().is_none_or(|i| i.task_state.as_deref() == Some(task::DELETING)) {
                net.deallocate(&u, &crate::network::preserved(&inst.system_metadata)).await?;
            }
        }
        Ok(())
    }
    async fn undo(&self, c: &Conductor, run: &mut Run) -> anyhow::Result<()> {
        let Some(net) = &c.network else { return Ok(()) };
        for u in uuids(run)? {
            let Some(inst) = instances::get(&c.db, &u).await? else { continue };
            net.deallocate(&u, &crate::network::preserved(&inst.system_metadata)).await?;
            let mut sys: serde_json::Map<String, Value> =
                serde_json::from_str(&inst.system_metadata).unwrap_or_default();
            if sys.remove("network_info").is_some() {
                instances::update(
                    &c.db,
                    &u,
                    &Expect::live(),
                    Change { system_metadata: Some(Value::Object(sys).to_string()), ..Default::default() },
                )
                .await?;
            }
        }
        Ok(())
    }
}

/// The volumes the servers boot from or get at build: made (from an image,
/// or blank) with the creator's token and waited for until available, then
/// reserved for their server (a Cinder attachment); the host connects them.
/// Undo: the attachments go back, the volumes made here are deleted.
struct PrepareBlockDevices;

#[async_trait::async_trait]
impl Step<Conductor> for PrepareBlockDevices {
    fn name(&self) -> &'static str {
        "prepare_block_devices"
    }
    async fn action(&self, c: &Conductor, run: &mut Run) -> anyhow::Result<()> {
        let Some(vols) = &c.volumes else { return Ok(()) };
        let token: Option<String> = run.state.get("user_token").and_then(Value::as_str).map(str::to_string);
        for u in uuids(run)? {
            let Some(inst) = instances::get_live(&c.db, &u).await? else { continue };
            if inst.task_state.as_deref() == Some(task::DELETING) {
                continue;
            }
            let rows = crate::volume::of_instance(&c.db, &u).await?;
            if rows.is_empty() {
                continue;
            }
            instances::update(
                &c.db,
                &u,
                &Expect::live().vm(&[vm::BUILDING]),
                Change { task_state: Some(Some(task::BLOCK_DEVICE_MAPPING)), ..Default::default() },
            )
            .await?;
            // what this pass made, in case a delete comes meanwhile
            let (mut made, mut reserved) = (Vec::new(), Vec::new());
            for (i, b) in rows.iter().enumerate() {
                let volume_id = match &b.volume_id {
                    Some(v) => v.clone(),
                    None => {
                        let size = b.volume_size.unwrap_or(1).max(1);
                        let name = format!("{u}-vol{i}");
                        let v = vols.create(token.as_deref(), size, b.image_id.as_deref(), &name).await?;
                        let id = v["id"].as_str().unwrap_or_default().to_string();
                        anyhow::ensure!(!id.is_empty(), "the volume service made a volume without an id: {v}");
                        made.push(id.clone());
                        crate::volume::update(
                            &c.db,
                            &b.uuid,
                            crate::volume::BdmChange { volume_id: Some(Some(id.clone())), ..Default::default() },
                        )
                        .await?;
                        id
                    }
                };
                if b.attachment_id.is_some() {
                    continue;
                }
                if b.made_by_compute() {
                    vols.wait_available(&volume_id, crate::volume::AVAILABLE_TIMEOUT).await?;
                }
                let a = vols.attachment_create(None, &volume_id, &u, None).await?;
                let aid = a["id"].as_str().unwrap_or_default().to_string();
                anyhow::ensure!(!aid.is_empty(), "the volume service made an attachment without an id: {a}");
                reserved.push(aid.clone());
                crate::volume::update(
                    &c.db,
                    &b.uuid,
                    crate::volume::BdmChange { attachment_id: Some(Some(aid)), ..Default::default() },
                )
                .await?;
            }
            // A delete that began before these existed gave none of them
            // back: once it is seen (deleting or gone), they go here.
            let now = instances::get_live(&c.db, &u).await?;
            if now.as_ref().is_none_or(|i| i.task_state.as_deref() == Some(task::DELETING)) {
                for a in &reserved {
                    vols.attachment_delete(a).await?;
                }
                for v in &made {
                    vols.delete(v).await?;
                }
                vols.release_instance(&c.db, &u).await?;
            }
        }
        // the creator's token is not kept past the step that needs it
        if let Some(o) = run.state.as_object_mut() {
            o.remove("user_token");
        }
        Ok(())
    }
    async fn undo(&self, c: &Conductor, run: &mut Run) -> anyhow::Result<()> {
        if let Some(o) = run.state.as_object_mut() {
            o.remove("user_token");
        }
        let Some(vols) = &c.volumes else { return Ok(()) };
        for u in uuids(run)? {
            for b in crate::volume::of_instance(&c.db, &u).await? {
                if let Some(a) = &b.attachment_id {
                    vols.attachment_delete(a).await?;
                    crate::volume::update(
                        &c.db,
                        &b.uuid,
                        crate::volume::BdmChange {
                            attachment_id: Some(None),
                            connection_info: Some(None),
                            ..Default::default()
                        },
                    )
                    .await?;
                }
                if b.made_by_compute()
                    && let Some(v) = &b.volume_id
                {
                    vols.delete(v).await?;
                    crate::volume::update(
                        &c.db,
                        &b.uuid,
                        crate::volume::BdmChange { volume_id: Some(None), ..Default::default() },
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }
}

struct BuildOnHosts;

#[async_trait::async_trait]
impl Step<Conductor> for BuildOnHosts {
    fn name(&self) -> &'static str {
        "build_on_hosts"
    }
    async fn action(&self, c: &Conductor, run: &mut Run) -> anyhow::Result<()> {
        let picked: Selections = run.get("selections")?;
        let mut results: BTreeMap<String, String> = run.get("results").unwrap_or_default();
        let state = run.state.clone();
        let todo: Vec<(String, Vec<Selection>)> =
            uuids(run)?.into_iter().zip(picked).filter(|(u, _)| !results.contains_key(u)).collect();
        let outcomes = futures::future::join_all(todo.iter().map(|(u, picks)| c.build_one(&state, u, picks))).await;
        for ((u, _), r) in todo.iter().zip(outcomes) {
            results.insert(u.clone(), r?);
        }
        run.set("results", results)?;
        Ok(())
    }
    async fn undo(&self, c: &Conductor, run: &mut Run) -> anyhow::Result<()> {
        let rid: String = run.get("request_id").unwrap_or_default();
        for u in uuids(run)? {
            if let Some(inst) = instances::get(&c.db, &u).await?
                && let Some(host) = &inst.host
            {
                let topic = format!("{}.destroy", rpc::compute_topic(host));
                c.bus
                    .call::<_, ()>(&topic, &rpc::DestroyGuest { instance_uuid: u.clone() }, &rid, call_timeout(&c.cfg))
                    .await?;
            }
            c.placement.release(&u).await?;
            instances::update(
                &c.db,
                &u,
                &Expect::live(),
                Change { vm_state: Some(vm::BUILDING), power_state: Some(0), ..Default::default() },
            )
            .await?;
        }
        Ok(())
    }
}

struct Finish;

#[async_trait::async_trait]
impl Step<Conductor> for Finish {
    fn name(&self) -> &'static str {
        "finish"
    }
    async fn action(&self, c: &Conductor, run: &mut Run) -> anyhow::Result<()> {
        let rid: String = run.get("request_id")?;
        let txn = c.db.write.begin().await?;
        for u in uuids(run)? {
            instances::finish_event_in(&txn, &u, &rid, "conductor_schedule_and_build_instances", None).await?;
        }
        txn.commit().await?;
        Ok(())
    }
    async fn undo(&self, _: &Conductor, _: &mut Run) -> anyhow::Result<()> {
        Ok(())
    }
}

/// The heartbeat interval of a conductor's service record and its orphan scan.
pub fn scan_interval(cfg: &Config) -> Duration {
    Duration::from_secs((cfg.compute.saga_takeover_seconds / 3).clamp(1, 10))
}
