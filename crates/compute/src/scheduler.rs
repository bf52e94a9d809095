//! The scheduler: allocation candidates from placement, then filters, then
//! weighers, then a claim through placement; alternates are kept for
//! rescheduling. A multi-create places all servers or none.
//!
//! Filters (Nova's names): ComputeFilter (enabled and up), forced host,
//! ignore_hosts, AvailabilityZoneFilter, AggregateInstanceExtraSpecsFilter,
//! AggregateMultiTenancyIsolation, ImagePropertiesFilter,
//! ServerGroupAffinityFilter / ServerGroupAntiAffinityFilter,
//! SameHostFilter / DifferentHostFilter. Weighers: RAM, CPU and disk
//! (free capacity, min-max normalised, times a configurable multiplier:
//! positive spreads, negative packs) and the soft (anti-)affinity weighers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};
use stratus_core::Config;
use stratus_db::Db;

use crate::placement::Placement;
use crate::rpc::{RequestSpec, SelectDestinations, Selection, Selections};
use crate::store;

pub const NO_VALID_HOST: &str = "No valid host was found. There are not enough hosts available.";

pub struct Scheduler {
    pub db: Db,
    pub cfg: Config,
    pub placement: Arc<Placement>,
}

/// A host that placement offered, with what the filters and weighers need.
#[derive(Clone, Debug)]
struct Candidate {
    host: String,
    node: String,
    provider: String,
    allocations: Value,
    /// Free amount per resource class (capacity - used), updated as this request claims.
    free: BTreeMap<String, f64>,
}

impl Scheduler {
    pub async fn select_destinations(&self, req: &SelectDestinations) -> anyhow::Result<Selections> {
        let spec = &req.spec;
        let mut candidates = self.candidates(spec).await?;
        self.filter_static(spec, &mut candidates).await?;
        let group = match &spec.group {
            Some(g) => store::server_groups::get(&self.db, g).await?,
            None => None,
        };
        // hosts of the group's existing members (and of servers named in same/different_host hints)
        let mut group_hosts: BTreeMap<String, i64> = BTreeMap::new();
        if let Some(g) = &group {
            let others: Vec<String> = g.members.iter().filter(|m| !req.instance_uuids.contains(m)).cloned().collect();
            for h in store::instances::hosts_of(&self.db, &others).await?.into_values() {
                *group_hosts.entry(h).or_default() += 1;
            }
        }
        let same = hint_hosts(&self.db, &spec.hints, "same_host").await?;
        let different = hint_hosts(&self.db, &spec.hints, "different_host").await?;
        let mut claimed: Vec<String> = Vec::new();
        let mut out: Selections = Vec::new();
        for uuid in &req.instance_uuids {
            let mut ok: Vec<&Candidate> = candidates
                .iter()
                .filter(|c| fits(c, spec))
                .filter(|c| same.as_ref().is_none_or(|s| s.contains(&c.host)))
                .filter(|c| different.as_ref().is_none_or(|d| !d.contains(&c.host)))
                .filter(|c| match group.as_ref().map(|g| g.policy.as_str()) {
                    Some("affinity") => group_hosts.is_empty() || group_hosts.contains_key(&c.host),
                    Some("anti-affinity") => {
                        let max = group.as_ref().map(|g| g.max_server_per_host()).unwrap_or(1);
                        group_hosts.get(&c.host).copied().unwrap_or(0) < max
                    }
                    _ => true,
                })
                .collect();
            self.weigh(&mut ok, group.as_ref().map(|g| g.policy.as_str()), &group_hosts);
            let subset = (self.cfg.compute.host_subset_size.max(1) as usize).min(ok.len().max(1));
            if subset > 1 && ok.len() > 1 {
                let pick = rand::random_range(0..subset);
                ok.swap(0, pick);
            }
            let mut chosen: Option<usize> = None;
            for (i, c) in ok.iter().enumerate() {
                if self.placement.claim(uuid, &c.allocations, &spec.project_id, &spec.user_id).await? {
                    chosen = Some(i);
                    break;
                }
            }
            let Some(i) = chosen else {
                for done in &claimed {
                    if let Err(e) = self.placement.release(done).await {
                        tracing::warn!(instance = %done, error = %e, "releasing a claim after a failed multi-create");
                    }
                }
                anyhow::bail!(NoValidHost(NO_VALID_HOST.into()));
            };
            let first = ok[i].clone();
            let mut picks = vec![to_selection(&first)];
            for alt in ok.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, c)| c).take(req.alternates as usize) {
                picks.push(to_selection(alt));
            }
            claimed.push(uuid.clone());
            out.push(picks);
            // later servers of this request see what this one took
            *group_hosts.entry(first.host.clone()).or_default() += 1;
            if let Some(c) = candidates.iter_mut().find(|c| c.provider == first.provider) {
                for (rc, amount) in spec.flavor.resources() {
                    if let Some(f) = c.free.get_mut(rc) {
                        *f -= amount as f64;
                    }
                }
            }
        }
        Ok(out)
    }

    /// Ask placement for hosts with room (and the traits and aggregates the request needs).
    async fn candidates(&self, spec: &RequestSpec) -> anyhow::Result<Vec<Candidate>> {
        let res: Vec<String> = spec.flavor.resources().iter().map(|(k, v)| format!("{k}:{v}")).collect();
        let mut q = vec![("resources".to_string(), res.join(","))];
        let mut required = Vec::new();
        for (k, v) in &spec.flavor.extra_specs {
            if let Some(t) = k.strip_prefix("trait:") {
                match v.as_str() {
                    "required" => required.push(t.to_string()),
                    "forbidden" => required.push(format!("!{t}")),
                    _ => {}
                }
            }
        }
        if !required.is_empty() {
            q.push(("required".into(), required.join(",")));
        }
        q.push(("limit".into(), "1000".into()));
        let v = self.placement.candidates(&q).await?;
        let nodes = store::compute_nodes::list(&self.db).await?;
        let by_uuid: HashMap<&str, &crate::entity::compute_node::Model> =
            nodes.iter().map(|n| (n.uuid.as_str(), n)).collect();
        let summaries = &v["provider_summaries"];
        let mut out = Vec::new();
        for ar in v["allocation_requests"].as_array().into_iter().flatten() {
            let allocs = &ar["allocations"];
            let Some(map) = allocs.as_object() else { continue };
            // the compute node is the root of the providers used
            let Some(rp) = map.keys().find_map(|rp| {
                let root = summaries[rp]["root_provider_uuid"].as_str().unwrap_or(rp);
                by_uuid.contains_key(root).then(|| root.to_string())
            }) else {
                continue;
            };
            let Some(node) = by_uuid.get(rp.as_str()) else { continue };
            let mut free = BTreeMap::new();
            if let Some(rs) = summaries[&rp]["resources"].as_object() {
                for (rc, r) in rs {
                    let cap = r["capacity"].as_f64().unwrap_or(0.0);
                    let used = r["used"].as_f64().unwrap_or(0.0);
                    free.insert(rc.clone(), cap - used);
                }
            }
            out.push(Candidate {
                host: node.host.clone(),
                node: node.hypervisor_hostname.clone(),
                provider: rp,
                allocations: allocs.clone(),
                free,
            });
        }
        Ok(out)
    }

    /// The filters that do not change while one request is placed.
    async fn filter_static(&self, spec: &RequestSpec, cands: &mut Vec<Candidate>) -> anyhow::Result<()> {
        let services = store::services::list(&self.db).await?;
        let down = self.cfg.compute.service_down_time;
        let usable: BTreeSet<&str> = services
            .iter()
            .filter(|s| s.binary == "nova-compute" && !s.disabled && store::services::is_up(s, down))
            .map(|s| s.host.as_str())
            .collect();
        let aggregates = store::aggregates::all(&self.db).await?;
        let default_zone = self.cfg.compute.default_availability_zone.as_str();
        cands.retain(|c| {
            if !usable.contains(c.host.as_str()) {
                return false;
            }
            if spec.forced_host.as_ref().is_some_and(|h| h != &c.host)
                || spec.forced_node.as_ref().is_some_and(|n| n != &c.node)
            {
                return false;
            }
            if spec.ignore_hosts.contains(&c.host) {
                return false;
            }
            if let Some(az) = &spec.availability_zone
                && &store::aggregates::zone_from(&aggregates, &c.host, default_zone) != az
            {
                return false;
            }
            let mine: Vec<&store::aggregates::Aggregate> =
                aggregates.iter().filter(|a| a.hosts.contains(&c.host)).collect();
            aggregate_extra_specs_pass(&spec.flavor.extra_specs, &mine)
                && tenant_isolation_pass(&spec.project_id, &mine)
                && image_properties_pass(&spec.image_properties)
        });
        if cands.is_empty() {
            anyhow::bail!(NoValidHost(NO_VALID_HOST.into()));
        }
        Ok(())
    }

    fn weigh(&self, cands: &mut [&Candidate], policy: Option<&str>, group_hosts: &BTreeMap<String, i64>) {
        let c = &self.cfg.compute;
        let mut weighers: Vec<(f64, Weigher)> = vec![
            (c.ram_weight_multiplier, Box::new(|x: &Candidate| x.free.get("MEMORY_MB").copied().unwrap_or(0.0))),
            (c.cpu_weight_multiplier, Box::new(|x: &Candidate| x.free.get("VCPU").copied().unwrap_or(0.0))),
            (c.disk_weight_multiplier, Box::new(|x: &Candidate| x.free.get("DISK_GB").copied().unwrap_or(0.0))),
        ];
        let members = |x: &Candidate| group_hosts.get(&x.host).copied().unwrap_or(0) as f64;
        match policy {
            Some("soft-affinity") => weighers.push((1.0, Box::new(members))),
            Some("soft-anti-affinity") => weighers.push((-1.0, Box::new(members))),
            _ => {}
        }
        let mut score: HashMap<&str, f64> = HashMap::new();
        for (mult, f) in &weighers {
            if *mult == 0.0 {
                continue;
            }
            let vals: Vec<f64> = cands.iter().map(|x| f(x)).collect();
            let (lo, hi) = vals.iter().fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
            for (x, v) in cands.iter().zip(vals) {
                let norm = if hi > lo { (v - lo) / (hi - lo) } else { 0.0 };
                *score.entry(x.provider.as_str()).or_default() += mult * norm;
            }
        }
        cands.sort_by(|a, b| {
            let (sa, sb) =
                (score.get(a.provider.as_str()).unwrap_or(&0.0), score.get(b.provider.as_str()).unwrap_or(&0.0));
            sb.partial_cmp(sa).unwrap_or(std::cmp::Ordering::Equal).then_with(|| a.host.cmp(&b.host))
        });
    }
}

/// A weigher: a number per host, bigger is better before the multiplier.
type Weigher<'a> = Box<dyn Fn(&Candidate) -> f64 + 'a>;

/// Does the candidate still have room for one more server of this flavor
/// (after what this request already claimed)?
fn fits(c: &Candidate, spec: &RequestSpec) -> bool {
    spec.flavor.resources().iter().all(|(rc, amount)| c.free.get(*rc).is_none_or(|f| *f >= *amount as f64))
}

fn to_selection(c: &Candidate) -> Selection {
    Selection {
        host: c.host.clone(),
        node: c.node.clone(),
        provider: c.provider.clone(),
        allocations: c.allocations.clone(),
    }
}

/// Hosts of the servers a `same_host` / `different_host` hint names.
async fn hint_hosts(
    db: &Db,
    hints: &serde_json::Map<String, Value>,
    key: &str,
) -> anyhow::Result<Option<BTreeSet<String>>> {
    let Some(v) = hints.get(key) else { return Ok(None) };
    let uuids: Vec<String> = match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
        _ => return Ok(None),
    };
    Ok(Some(store::instances::hosts_of(db, &uuids).await?.into_values().collect()))
}

/// AggregateInstanceExtraSpecsFilter: unscoped keys and keys scoped
/// `aggregate_instance_extra_specs:` must match the metadata of one of the
/// host's aggregates (a metadata value may list several, comma separated).
pub fn aggregate_extra_specs_pass(
    extra_specs: &BTreeMap<String, String>,
    aggs: &[&store::aggregates::Aggregate],
) -> bool {
    for (key, want) in extra_specs {
        let key = match key.split_once(':') {
            Some(("aggregate_instance_extra_specs", k)) => k,
            Some(_) => continue,
            None => key.as_str(),
        };
        let values: Vec<&str> =
            aggs.iter().filter_map(|a| a.metadata.get(key)).flat_map(|v| v.split(',')).map(str::trim).collect();
        if values.is_empty() {
            return false;
        }
        let want = want.trim();
        // Nova's operators: "<in> x", "s== x", "= x" (>=), "<or> a <or> b"; a plain value must match exactly
        let matched = if let Some(rest) = want.strip_prefix("<in>") {
            values.iter().any(|v| v.contains(rest.trim()))
        } else if want.starts_with("<or>") {
            want.split("<or>").map(str::trim).filter(|s| !s.is_empty()).any(|w| values.contains(&w))
        } else if let Some(rest) = want.strip_prefix("s==") {
            values.contains(&rest.trim())
        } else if let Some(rest) = want.strip_prefix("= ") {
            let need: f64 = rest.trim().parse().unwrap_or(f64::MAX);
            values.iter().any(|v| v.parse::<f64>().is_ok_and(|x| x >= need))
        } else {
            values.contains(&want)
        };
        if !matched {
            return false;
        }
    }
    true
}

/// AggregateMultiTenancyIsolation: a host in an aggregate with
/// `filter_tenant_id*` metadata takes only those projects' servers.
pub fn tenant_isolation_pass(project: &str, aggs: &[&store::aggregates::Aggregate]) -> bool {
    let allowed: Vec<&str> = aggs
        .iter()
        .flat_map(|a| a.metadata.iter())
        .filter(|(k, _)| k.starts_with("filter_tenant_id"))
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .collect();
    allowed.is_empty() || allowed.contains(&project)
}

/// ImagePropertiesFilter: the image's architecture, hypervisor type and VM
/// mode must be ones these hosts offer (x86_64, qemu/kvm/fake, hvm).
pub fn image_properties_pass(props: &serde_json::Map<String, Value>) -> bool {
    let get =
        |a: &str, b: &str| props.get(a).or_else(|| props.get(b)).and_then(Value::as_str).map(str::to_ascii_lowercase);
    if let Some(arch) = get("hw_architecture", "architecture")
        && !matches!(arch.as_str(), "x86_64" | "amd64" | "i686" | "x86")
    {
        return false;
    }
    if let Some(hv) = get("img_hv_type", "hypervisor_type")
        && !matches!(hv.as_str(), "qemu" | "kvm" | "fake")
    {
        return false;
    }
    if let Some(mode) = get("hw_vm_mode", "vm_mode")
        && !matches!(mode.as_str(), "hvm")
    {
        return false;
    }
    true
}

/// No host could take the request.
#[derive(Debug)]
pub struct NoValidHost(pub String);

impl std::fmt::Display for NoValidHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NoValidHost {}

/// The request a resize or build sends, for logs.
pub fn describe(spec: &RequestSpec) -> Value {
    json!({"flavor": spec.flavor.id, "az": spec.availability_zone, "group": spec.group})
}

pub const BINARY: &str = "nova-scheduler";

/// Run a scheduler: register its service (with a heartbeat) and serve the `scheduler` topic.
pub async fn serve(sched: Arc<Scheduler>, bus: &stratus_bus::Bus, host: &str) -> anyhow::Result<()> {
    let svc = store::services::upsert(&sched.db, host, BINARY, crate::rpc::SCHEDULER).await?;
    store::services::heartbeat(&sched.db, svc.id).await?;
    let s = sched.clone();
    bus.serve(
        crate::rpc::SCHEDULER,
        stratus_bus::handler(move |m: SelectDestinations, _| {
            let s = s.clone();
            async move {
                s.select_destinations(&m).await.map_err(|e| match e.downcast_ref::<NoValidHost>() {
                    Some(n) => stratus_bus::RemoteError::new("NoValidHost", n.0.clone()),
                    None => stratus_bus::RemoteError::new("SchedulerError", format!("{e:#}")),
                })
            }
        }),
    )
    .await?;
    let every = std::time::Duration::from_secs(sched.cfg.compute.report_interval.max(1));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = store::services::heartbeat(&sched.db, svc.id).await {
                tracing::warn!(error = %e, "scheduler heartbeat failed");
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agg(meta: &[(&str, &str)]) -> store::aggregates::Aggregate {
        store::aggregates::Aggregate {
            id: 1,
            uuid: "u".into(),
            name: "a".into(),
            availability_zone: None,
            hosts: vec!["h".into()],
            metadata: meta.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            created_at: 0,
            updated_at: None,
        }
    }

    #[test]
    fn aggregate_extra_specs() {
        let ssd = agg(&[("ssd", "true"), ("speed", "10")]);
        let specs =
            |kv: &[(&str, &str)]| kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>();
        assert!(aggregate_extra_specs_pass(&specs(&[("ssd", "true")]), &[&ssd]));
        assert!(aggregate_extra_specs_pass(&specs(&[("aggregate_instance_extra_specs:ssd", "true")]), &[&ssd]));
        assert!(!aggregate_extra_specs_pass(&specs(&[("ssd", "false")]), &[&ssd]));
        assert!(!aggregate_extra_specs_pass(&specs(&[("gpu", "true")]), &[&ssd]));
        // other scopes are not this filter's business
        assert!(aggregate_extra_specs_pass(&specs(&[("hw:cpu_policy", "dedicated")]), &[]));
        assert!(aggregate_extra_specs_pass(&specs(&[("speed", "= 5")]), &[&ssd]));
        assert!(aggregate_extra_specs_pass(&specs(&[("ssd", "<or> false <or> true")]), &[&ssd]));
    }

    #[test]
    fn tenant_isolation() {
        let iso = agg(&[("filter_tenant_id", "p1,p2")]);
        assert!(tenant_isolation_pass("p1", &[&iso]));
        assert!(!tenant_isolation_pass("p3", &[&iso]));
        assert!(tenant_isolation_pass("p3", &[]));
    }

    #[test]
    fn image_properties() {
        let mut p = serde_json::Map::new();
        assert!(image_properties_pass(&p));
        p.insert("hw_architecture".into(), json!("aarch64"));
        assert!(!image_properties_pass(&p));
        p.insert("hw_architecture".into(), json!("x86_64"));
        p.insert("img_hv_type".into(), json!("xen"));
        assert!(!image_properties_pass(&p));
    }
}
