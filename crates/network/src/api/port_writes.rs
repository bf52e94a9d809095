//! Writing new ports: addresses and MACs chosen inside the transaction that
//! inserts them, all of one request or none, retried when a racing create
//! took what this one chose (the unique keys of `ipallocations` and of
//! (network, MAC) decide).
//!
//! Concurrent creates are written together ([`Combiner`], a group commit):
//! while one transaction is being written, the creates that arrive queue up,
//! and the next writer takes them all into one transaction with one
//! multi-row insert per table. On the single SQLite writer this turns about
//! six statements per port into about one. A combined batch that fails for
//! any reason (a quota, a requested address taken, a collision) is written
//! again one request at a time, so every request gets the answer it would
//! have had alone.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use sea_orm::{ConnectionTrait, TransactionTrait};

use crate::api::ports::{Draft, IpRequest, pairs_with_mac};
use crate::api::subnets::{cidr_of, pools_of};
use crate::entity::ipallocation::Model as Allocation;
use crate::entity::port::Model as Port;
use crate::entity::subnet::Model as Subnet;
use crate::error::{NetworkError, Result, conflict};
use crate::ipam;
use crate::store::ports as store;
use crate::store::{quotas, subnets};
use crate::{NetworkService, State};

/// A port as stored by a create, with its addresses and groups (rendered
/// without reading them back).
pub(super) struct Created {
    pub(super) port: Port,
    pub(super) ips: Vec<Allocation>,
    pub(super) groups: Vec<String>,
}

/// The port limit of each project of `drafts` (read before any writing; the
/// lock row made for limited ones).
async fn limits_of(svc: &NetworkService, drafts: &[Draft]) -> Result<BTreeMap<String, i64>> {
    let mut limits = BTreeMap::new();
    for d in drafts {
        let p = &d.port.project_id;
        if limits.contains_key(p) {
            continue;
        }
        let limit = quotas::limit_of(&svc.db.read, &svc.cfg, p, "port").await?;
        if limit >= 0 {
            // only a limited resource is counted under the project's lock row
            quotas::ensure_lock_row(&svc.db, p).await?;
        }
        limits.insert(p.clone(), limit);
    }
    Ok(limits)
}

/// One request's ports, ready to write.
struct Job {
    drafts: Vec<Draft>,
    limits: BTreeMap<String, i64>,
    reply: tokio::sync::oneshot::Sender<Result<Vec<Created>>>,
}

/// The group commit of port creates of one service.
#[derive(Default)]
pub struct Combiner {
    queue: std::sync::Mutex<Vec<Job>>,
    writer: Arc<tokio::sync::Mutex<()>>,
}

/// Create the ports of one request (all or none), written together with the
/// creates that arrive meanwhile.
pub(super) async fn create(svc: &State, drafts: Vec<Draft>) -> Result<Vec<Created>> {
    let limits = limits_of(svc, &drafts).await?;
    let (reply, mut rx) = tokio::sync::oneshot::channel();
    let c = &svc.port_writes;
    c.queue.lock().map_err(|_| anyhow::anyhow!("port write queue poisoned"))?.push(Job { drafts, limits, reply });
    use tokio::sync::oneshot::error::TryRecvError;
    let gone = || NetworkError::Internal(anyhow::anyhow!("the port writer stopped"));
    loop {
        match rx.try_recv() {
            Ok(r) => return r,
            Err(TryRecvError::Closed) => return Err(gone()),
            Err(TryRecvError::Empty) => {}
        }
        let guard = c.writer.clone().lock_owned().await;
        // a writer before this one may have taken (and answered) this job
        match rx.try_recv() {
            Ok(r) => return r,
            Err(TryRecvError::Closed) => return Err(gone()),
            Err(TryRecvError::Empty) => {}
        }
        let jobs = std::mem::take(&mut *c.queue.lock().map_err(|_| anyhow::anyhow!("port write queue poisoned"))?);
        // written by a task of its own: a request that goes away (its client
        // hung up) must not take the other requests of the batch with it
        let svc = svc.clone();
        let _ = tokio::spawn(async move {
            write_jobs(&svc, jobs).await;
            drop(guard);
        })
        .await;
    }
}

async fn write_jobs(svc: &NetworkService, mut jobs: Vec<Job>) {
    if jobs.len() > 1 {
        match write_combined(svc, &jobs).await {
            Ok(outs) => {
                for (j, out) in jobs.into_iter().zip(outs) {
                    let _ = j.reply.send(Ok(out));
                }
                return;
            }
            Err(e) => tracing::debug!(jobs = jobs.len(), error = %e, "combined port create failed; one by one"),
        }
    }
    for j in jobs.drain(..) {
        let r = store_all(svc, &j.drafts, &j.limits).await;
        let _ = j.reply.send(r);
    }
}

/// Every job in one transaction, once (no retry: a failure is answered by
/// writing the jobs one by one).
async fn write_combined(svc: &NetworkService, jobs: &[Job]) -> Result<Vec<Vec<Created>>> {
    let mut limits = BTreeMap::new();
    let mut plans = Vec::with_capacity(jobs.len());
    for j in jobs {
        limits.extend(j.limits.iter().map(|(k, v)| (k.clone(), *v)));
        plans.push((j.drafts.clone(), choose_macs(svc, &j.drafts).await?));
    }
    recheck_macs(svc, &mut plans).await?;
    write(svc, plans, &limits).await
}

/// The random MACs of a combined batch checked off the writer, one read per
/// network: on a network of 100k ports one batch of 32 would otherwise
/// collide about once in six and be written again one request at a time.
async fn recheck_macs(svc: &NetworkService, plans: &mut [Plan]) -> Result<()> {
    for _ in 0..4 {
        let mut by_net: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (drafts, macs) in plans.iter() {
            for (d, m) in drafts.iter().zip(macs) {
                if let (None, Some(m)) = (d.mac, m) {
                    by_net.entry(d.port.network_id.clone()).or_default().push(ipam::show_mac(m));
                }
            }
        }
        let mut bad: BTreeSet<(String, String)> = BTreeSet::new();
        for (net, macs) in by_net {
            let mut seen = BTreeSet::new();
            for m in &macs {
                if !seen.insert(m.clone()) {
                    bad.insert((net.clone(), m.clone()));
                }
            }
            for m in store::macs_in_use(&svc.db.read, &net, &macs).await? {
                bad.insert((net.clone(), m));
            }
        }
        if bad.is_empty() {
            return Ok(());
        }
        for (drafts, macs) in plans.iter_mut() {
            for (d, m) in drafts.iter().zip(macs.iter_mut()) {
                if let (None, Some(cur)) = (d.mac, m.as_ref())
                    && bad.contains(&(d.port.network_id.clone(), ipam::show_mac(cur)))
                {
                    *m = Some(random_mac(svc));
                }
            }
        }
    }
    // still colliding: the write finds it, and the batch goes one by one
    Ok(())
}

/// Insert the ports of one request (all or none) with their addresses, MACs
/// and groups, retrying when a racing create took an address or MAC this one chose.
async fn store_all(svc: &NetworkService, drafts: &[Draft], limits: &BTreeMap<String, i64>) -> Result<Vec<Created>> {
    let retries = svc.cfg.network.allocation_retries.max(1);
    let mut last = None;
    for _ in 0..=retries {
        let macs = choose_macs(svc, drafts).await?;
        match write(svc, vec![(drafts.to_vec(), macs)], limits).await {
            Ok(mut out) => return Ok(out.pop().unwrap_or_default()),
            Err(e) if retryable(&e) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    tracing::warn!("port create gave up after {retries} retries: {last:?}");
    Err(conflict(
        "IpAddressGenerationFailure",
        "Unable to allocate an address or MAC: racing creates kept taking them; try again.",
    ))
}

/// A MAC for each draft that did not ask for one. For a bulk create each is
/// checked against the network off the writer: with 24 random bits a network
/// of 100k ports collides about once in 170 creates, and one collision would
/// send the whole bulk round again. A single create just goes round again
/// (the unique index is the check: one read fewer on the hot path).
async fn choose_macs(svc: &NetworkService, drafts: &[Draft]) -> Result<Vec<Option<[u8; 6]>>> {
    let mut macs = Vec::with_capacity(drafts.len());
    for d in drafts {
        let mut m = d.mac;
        if m.is_none() && drafts.len() == 1 {
            m = Some(random_mac(svc));
        } else if m.is_none() {
            for _ in 0..8 {
                let r = random_mac(svc);
                let taken = store::mac_in_use(&svc.db.read, &d.port.network_id, &ipam::show_mac(&r)).await?;
                if !taken && !macs.contains(&Some(r)) {
                    m = Some(r);
                    break;
                }
            }
        }
        macs.push(m);
    }
    Ok(macs)
}

/// A request's drafts with the MAC chosen for each (None: a random one).
type Plan = (Vec<Draft>, Vec<Option<[u8; 6]>>);

/// Write the ports of `plans` (each a request's drafts with the MACs chosen
/// for them) in one transaction: the quotas checked for all of them, the
/// addresses chosen, then one insert per table.
async fn write(svc: &NetworkService, plans: Vec<Plan>, limits: &BTreeMap<String, i64>) -> Result<Vec<Vec<Created>>> {
    let mut wanted: BTreeMap<String, i64> = BTreeMap::new();
    for (drafts, _) in &plans {
        for d in drafts {
            *wanted.entry(d.port.project_id.clone()).or_default() += 1;
        }
    }
    let txn = svc.db.write.begin().await?;
    for (p, n) in &wanted {
        let limit = limits.get(p).copied().unwrap_or(-1);
        quotas::check_limit(&txn, &svc.cfg, p, "port", *n, limit).await?;
    }
    let mut pending: Vec<Allocation> = Vec::new();
    let mut rows: Vec<Port> = Vec::new();
    let mut bindings: Vec<(String, Vec<String>)> = Vec::new();
    let mut out = Vec::with_capacity(plans.len());
    for (drafts, macs) in plans {
        let mut made = Vec::with_capacity(drafts.len());
        for (d, chosen) in drafts.into_iter().zip(macs) {
            let mut port = d.port.clone();
            let mac = match d.mac {
                Some(m) => {
                    let s = ipam::show_mac(&m);
                    if store::mac_in_use(&txn, &port.network_id, &s).await? {
                        return Err(conflict(
                            "MacAddressInUse",
                            format!(
                                "Unable to complete operation for network {}. The mac address {s} is in use.",
                                port.network_id
                            ),
                        ));
                    }
                    m
                }
                None => chosen.unwrap_or_else(|| random_mac(svc)),
            };
            port.mac_address = ipam::show_mac(&mac);
            port.allowed_address_pairs = pairs_with_mac(&port.allowed_address_pairs, &port.mac_address);
            let ips = allocate(&txn, &port, &mac, &d.reqs, &pending).await?;
            pending.extend(ips.iter().cloned());
            let mut groups = d.groups.clone();
            groups.sort();
            groups.dedup();
            rows.push(port.clone());
            bindings.push((port.id.clone(), groups.clone()));
            made.push(Created { port, ips, groups });
        }
        out.push(made);
    }
    store::insert_many(&txn, rows).await?;
    subnets::allocate_many(&txn, pending).await?;
    store::add_groups_many(&txn, &bindings).await?;
    txn.commit().await?;
    Ok(out)
}

/// Choose the addresses of `reqs` for a port (inside the inserting transaction).
///
/// `pending`: addresses chosen for other ports of the same transaction, not
/// inserted yet.
pub(super) async fn allocate<C: ConnectionTrait>(
    conn: &C,
    port: &Port,
    mac: &[u8; 6],
    reqs: &[IpRequest],
    pending: &[Allocation],
) -> Result<Vec<Allocation>> {
    let mut out: Vec<Allocation> = Vec::new();
    for r in reqs {
        match r {
            IpRequest::Specific(s, ip) => {
                let held = subnets::taken_among(conn, &s.id, &[ip.to_string()]).await?;
                let taken = taken_of(s, held.into_iter().collect(), &out, pending);
                if taken.contains(&ipam::to_u128(*ip)) {
                    return Err(conflict(
                        "IpAddressAlreadyAllocated",
                        format!("IP address {ip} already allocated in subnet {}", s.id),
                    ));
                }
                out.push(alloc(port, s, *ip));
            }
            IpRequest::Auto(s) => {
                let ip =
                    ipam::eui64(&cidr_of(s)?, mac).ok_or_else(|| anyhow::anyhow!("EUI-64 of a non-IPv6 subnet"))?;
                out.push(alloc(port, s, ip));
            }
            IpRequest::Any(group) => {
                let mut got = None;
                for s in group {
                    let pools = pools_of(s);
                    let version = s.ip_version as u8;
                    // on a big subnet, probe a few random addresses first (one indexed
                    // query); read every allocation only on small or nearly full pools
                    // (small subnets keep Neutron's familiar lowest-first order)
                    let probe = if ipam::pool_size(&pools) > RANDOM_ABOVE {
                        ipam::random_candidates(&pools, 8, |n| rand::random_range(0..n))
                    } else {
                        Vec::new()
                    };
                    let probe_ips: Vec<String> =
                        probe.iter().map(|v| ipam::from_u128(*v, version).to_string()).collect();
                    let held = subnets::taken_among(conn, &s.id, &probe_ips).await?;
                    let mine = taken_of(s, Vec::new(), &out, pending);
                    if let Some(ip) = probe
                        .iter()
                        .zip(&probe_ips)
                        .find(|(v, ip)| !held.contains(*ip) && !mine.contains(v))
                        .map(|(v, _)| ipam::from_u128(*v, version))
                    {
                        got = Some((s, ip));
                        break;
                    }
                    let taken = taken_of(s, subnets::taken(conn, &s.id).await?, &out, pending);
                    if let Some(v) = ipam::next_free(&pools, &taken) {
                        got = Some((s, ipam::from_u128(v, version)));
                        break;
                    }
                }
                let (s, ip) = got.ok_or_else(|| {
                    conflict(
                        "IpAddressGenerationFailure",
                        format!("No more IP addresses available on network {}.", port.network_id),
                    )
                })?;
                out.push(alloc(port, s, ip));
            }
        }
    }
    Ok(out)
}

fn alloc(port: &Port, s: &Subnet, ip: IpAddr) -> Allocation {
    Allocation {
        subnet_id: s.id.clone(),
        ip_address: ip.to_string(),
        network_id: port.network_id.clone(),
        port_id: port.id.clone(),
    }
}

/// The addresses of subnet `s` held: `rows` read from the table, and those
/// chosen in this transaction (`out` for this port, `pending` for others).
fn taken_of(s: &Subnet, rows: Vec<String>, out: &[Allocation], pending: &[Allocation]) -> BTreeSet<u128> {
    rows.iter()
        .map(String::as_str)
        .chain(out.iter().chain(pending).filter(|a| a.subnet_id == s.id).map(|a| a.ip_address.as_str()))
        .filter_map(|a| a.parse::<IpAddr>().ok())
        .map(ipam::to_u128)
        .collect()
}

/// Pools bigger than this are allocated from by random probing.
const RANDOM_ABOVE: u128 = 4096;

/// A unique-key collision or a deadlock with a racing transaction: worth another try.
pub(super) fn retryable(e: &NetworkError) -> bool {
    match e {
        NetworkError::Internal(e) => e.downcast_ref::<sea_orm::DbErr>().is_some_and(|d| {
            stratus_db::is_unique_violation(d) || {
                let m = d.to_string().to_ascii_lowercase();
                m.contains("deadlock") || m.contains("could not serialize") || m.contains("database is locked")
            }
        }),
        _ => false,
    }
}

fn random_mac(svc: &NetworkService) -> [u8; 6] {
    let r: [u8; 3] = rand::random();
    ipam::mac_from_base(&svc.cfg.network.base_mac, r)
}
