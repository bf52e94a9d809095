//! An in-memory index of every provider — inventory with usage, traits,
//! aggregates, tree — that `GET /allocation_candidates` and `GET
//! /resource_providers` search instead of the database.
//!
//! It stays exact across processes sharing one database: each request first
//! reads the epoch of `placement_state` (one tiny query) and, when a write
//! committed since, reloads just the providers that write recorded in
//! `placement_changes` (see `crate::store`). Epochs are handed out in commit
//! order, so an index at epoch E holds every change up to E.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Instant;

use std::sync::Arc;
use stratus_db::Db;

use tokio::sync::Mutex;

use crate::error::Result;
use crate::store::{self, snapshot::Snapshot};

pub type ProviderId = i64;
/// An interned name (resource class, trait or aggregate uuid).
pub type NameId = u32;

/// Hashing for integer keys (provider ids): a multiply, not SipHash; the
/// keys are database ids, not attacker-chosen strings.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_i64(&mut self, n: i64) {
        self.0 = (n as u64 ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (n ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type IdMap<V> = HashMap<ProviderId, V, std::hash::BuildHasherDefault<IdHasher>>;

/// Strings interned to small integers, with which ones the database knows.
#[derive(Default, Debug, Clone)]
pub struct Interner {
    ids: HashMap<String, NameId>,
    names: Vec<String>,
}

impl Interner {
    pub fn intern(&mut self, s: &str) -> NameId {
        if let Some(id) = self.ids.get(s) {
            return *id;
        }
        let id = self.names.len() as NameId;
        self.names.push(s.to_string());
        self.ids.insert(s.to_string(), id);
        id
    }
    pub fn get(&self, s: &str) -> Option<NameId> {
        self.ids.get(s).copied()
    }
    pub fn name(&self, id: NameId) -> &str {
        self.names.get(id as usize).map(String::as_str).unwrap_or("")
    }
}

/// One inventory of a provider with its current usage.
#[derive(Clone, Debug, PartialEq)]
pub struct Inv {
    pub rc: NameId,
    pub total: i64,
    pub reserved: i64,
    pub min_unit: i64,
    pub max_unit: i64,
    pub step_size: i64,
    pub allocation_ratio: f64,
    pub used: i64,
}

impl Inv {
    /// `int((total - reserved) * allocation_ratio)`, as provider summaries show it.
    pub fn capacity(&self) -> i64 {
        crate::model::capacity(self.total, self.reserved, self.allocation_ratio)
    }

    /// Could `amount` more be allocated here? (placement's SQL capacity check)
    pub fn fits(&self, amount: i64) -> bool {
        self.used.saturating_add(amount) as f64 <= (self.total - self.reserved) as f64 * self.allocation_ratio
            && self.min_unit <= amount
            && self.max_unit >= amount
            && self.step_size > 0
            && amount % self.step_size == 0
    }
}

#[derive(Clone, Debug)]
pub struct Provider {
    pub id: ProviderId,
    pub uuid: String,
    pub name: String,
    pub generation: i64,
    pub parent: Option<ProviderId>,
    pub root: ProviderId,
    pub created_at: i64,
    pub updated_at: i64,
    /// sorted by class
    pub invs: Vec<Inv>,
    /// sorted
    pub traits: Vec<NameId>,
    /// sorted
    pub aggs: Vec<NameId>,
    /// The provider summary of `GET /allocation_candidates` (1.29 and later,
    /// every class): JSON, written when the provider (or a name) changes.
    pub summary: Vec<u8>,
}

impl Provider {
    pub fn inv(&self, rc: NameId) -> Option<&Inv> {
        self.invs.binary_search_by_key(&rc, |i| i.rc).ok().and_then(|i| self.invs.get(i))
    }
    pub fn has_trait(&self, t: NameId) -> bool {
        self.traits.binary_search(&t).is_ok()
    }
    pub fn has_agg(&self, a: NameId) -> bool {
        self.aggs.binary_search(&a).is_ok()
    }
}

#[derive(Default, Debug, Clone)]
pub struct Index {
    pub loaded: bool,
    pub epoch: i64,
    pub names_epoch: i64,
    providers: IdMap<Arc<Provider>>,
    /// provider ids, sorted: the order searches see providers in
    order: Arc<Vec<ProviderId>>,
    by_uuid: Arc<HashMap<String, ProviderId>>,
    /// root -> the providers of its tree
    members: Arc<IdMap<BTreeSet<ProviderId>>>,
    /// how many providers have a parent
    nested: usize,
    agg_members: Arc<HashMap<NameId, BTreeSet<ProviderId>>>,
    trait_members: Arc<HashMap<NameId, BTreeSet<ProviderId>>>,
    pub rcs: Arc<Interner>,
    pub traits: Arc<Interner>,
    pub aggs: Arc<Interner>,
    /// resource classes the database knows, with their order
    rc_order: Arc<HashMap<NameId, usize>>,
    known_traits: Arc<HashSet<NameId>>,
}

/// Intern through a shared interner, copying it only for a new name.
fn intern(i: &mut Arc<Interner>, s: &str) -> NameId {
    match i.get(s) {
        Some(id) => id,
        None => Arc::make_mut(i).intern(s),
    }
}

impl Index {
    pub fn by_uuid(&self, uuid: &str) -> Option<&Provider> {
        self.by_uuid.get(uuid).and_then(|id| self.get(*id))
    }
    pub fn get(&self, id: ProviderId) -> Option<&Provider> {
        self.providers.get(&id).map(|p| &**p)
    }
    /// Every provider, by id (creation order).
    pub fn iter(&self) -> impl Iterator<Item = &Provider> {
        self.order.iter().filter_map(|id| self.get(*id))
    }
    pub fn len(&self) -> usize {
        self.providers.len()
    }
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }
    /// Are there nested providers at all?
    pub fn has_trees(&self) -> bool {
        self.nested > 0
    }
    /// The providers of the tree rooted at `root`, by id.
    pub fn tree(&self, root: ProviderId) -> impl Iterator<Item = &Provider> {
        self.members.get(&root).into_iter().flatten().filter_map(|id| self.get(*id))
    }
    /// How many providers have this trait.
    pub fn trait_count(&self, t: NameId) -> usize {
        self.trait_members.get(&t).map_or(0, BTreeSet::len)
    }
    /// How many providers the tree rooted at `root` has.
    pub fn tree_size(&self, root: ProviderId) -> usize {
        self.members.get(&root).map_or(0, BTreeSet::len)
    }
    pub fn with_agg(&self, agg: NameId) -> impl Iterator<Item = ProviderId> + '_ {
        self.agg_members.get(&agg).into_iter().flatten().copied()
    }
    pub fn with_trait(&self, t: NameId) -> impl Iterator<Item = ProviderId> + '_ {
        self.trait_members.get(&t).into_iter().flatten().copied()
    }
    /// A resource class the database knows.
    pub fn rc_id(&self, name: &str) -> Option<NameId> {
        self.rcs.get(name).filter(|id| self.rc_order.contains_key(id))
    }
    /// Order of a class among all (standard first).
    pub fn rc_rank(&self, id: NameId) -> usize {
        self.rc_order.get(&id).copied().unwrap_or(usize::MAX)
    }
    /// A trait the database knows.
    pub fn trait_id(&self, name: &str) -> Option<NameId> {
        self.traits.get(name).filter(|id| self.known_traits.contains(id))
    }
    /// An aggregate some provider is in (`None`: none is).
    pub fn agg_id(&self, uuid: &str) -> Option<NameId> {
        self.aggs.get(uuid)
    }

    /// Take a provider out of the secondary indexes.
    fn unindex(&mut self, p: &Provider) {
        let id = p.id;
        if let Ok(i) = self.order.binary_search(&id) {
            Arc::make_mut(&mut self.order).remove(i);
        }
        if self.by_uuid.get(&p.uuid) == Some(&id) {
            Arc::make_mut(&mut self.by_uuid).remove(&p.uuid);
        }
        let members = Arc::make_mut(&mut self.members);
        if let Some(m) = members.get_mut(&p.root) {
            m.remove(&id);
            if m.is_empty() {
                members.remove(&p.root);
            }
        }
        if p.parent.is_some() {
            self.nested = self.nested.saturating_sub(1);
        }
        if !p.aggs.is_empty() {
            let aggs = Arc::make_mut(&mut self.agg_members);
            for a in &p.aggs {
                if let Some(m) = aggs.get_mut(a) {
                    m.remove(&id);
                }
            }
        }
        if !p.traits.is_empty() {
            let traits = Arc::make_mut(&mut self.trait_members);
            for t in &p.traits {
                if let Some(m) = traits.get_mut(t) {
                    m.remove(&id);
                }
            }
        }
    }

    /// Put a provider into the secondary indexes.
    fn index(&mut self, p: &Provider) {
        Arc::make_mut(&mut self.by_uuid).insert(p.uuid.clone(), p.id);
        Arc::make_mut(&mut self.members).entry(p.root).or_default().insert(p.id);
        if p.parent.is_some() {
            self.nested += 1;
        }
        if !p.aggs.is_empty() {
            let aggs = Arc::make_mut(&mut self.agg_members);
            for a in &p.aggs {
                aggs.entry(*a).or_default().insert(p.id);
            }
        }
        if !p.traits.is_empty() {
            let traits = Arc::make_mut(&mut self.trait_members);
            for t in &p.traits {
                traits.entry(*t).or_default().insert(p.id);
            }
        }
        if let Err(i) = self.order.binary_search(&p.id) {
            Arc::make_mut(&mut self.order).insert(i, p.id);
        }
    }

    /// Replace the providers `ids` (all when `None`) with what `snap` holds of them.
    pub fn apply(&mut self, ids: Option<&[ProviderId]>, snap: Snapshot) {
        if ids.is_none() {
            let (rcs, traits, aggs) = (self.rcs.clone(), self.traits.clone(), self.aggs.clone());
            let (rc_order, known) = (self.rc_order.clone(), self.known_traits.clone());
            *self = Index { rcs, traits, aggs, rc_order, known_traits: known, ..Index::default() };
        }
        let mut fresh: BTreeMap<ProviderId, Provider> = snap
            .providers
            .into_iter()
            .map(|m| {
                let p = Provider {
                    id: m.id,
                    uuid: m.uuid,
                    name: m.name,
                    generation: m.generation,
                    parent: m.parent_provider_id,
                    root: m.root_provider_id.unwrap_or(m.id),
                    created_at: m.created_at,
                    updated_at: m.updated_at,
                    invs: Vec::new(),
                    traits: Vec::new(),
                    aggs: Vec::new(),
                    summary: Vec::new(),
                };
                (p.id, p)
            })
            .collect();
        let mut used: HashMap<(ProviderId, NameId), i64> = HashMap::new();
        for (rp, rc, u) in snap.usage {
            let rc = intern(&mut self.rcs, &rc);
            *used.entry((rp, rc)).or_default() += u;
        }
        for i in snap.inventories {
            let rc = intern(&mut self.rcs, &i.resource_class);
            if let Some(p) = fresh.get_mut(&i.resource_provider_id) {
                p.invs.push(Inv {
                    rc,
                    total: i.total,
                    reserved: i.reserved,
                    min_unit: i.min_unit,
                    max_unit: i.max_unit,
                    step_size: i.step_size,
                    allocation_ratio: i.allocation_ratio,
                    used: used.get(&(i.resource_provider_id, rc)).copied().unwrap_or(0),
                });
            }
        }
        for (rp, t) in snap.traits {
            let t = intern(&mut self.traits, &t);
            if let Some(p) = fresh.get_mut(&rp) {
                p.traits.push(t);
            }
        }
        for (rp, a) in snap.aggregates {
            let a = intern(&mut self.aggs, &a);
            if let Some(p) = fresh.get_mut(&rp) {
                p.aggs.push(a);
            }
        }
        for p in fresh.values_mut() {
            p.invs.sort_by_key(|i| i.rc);
            p.traits.sort_unstable();
            p.traits.dedup();
            p.aggs.sort_unstable();
            p.aggs.dedup();
        }
        // the providers that went away
        for id in ids.into_iter().flatten() {
            if !fresh.contains_key(id)
                && let Some(old) = self.providers.remove(id)
            {
                self.unindex(&old);
            }
        }
        let written: Vec<ProviderId> = fresh.keys().copied().collect();
        for (id, p) in fresh {
            match self.providers.get(&id).cloned() {
                // the usual change (usage, inventory, generation): the tree,
                // traits and aggregates are as they were
                Some(old)
                    if old.uuid == p.uuid
                        && old.root == p.root
                        && old.parent == p.parent
                        && old.traits == p.traits
                        && old.aggs == p.aggs => {}
                Some(old) => {
                    self.unindex(&old);
                    self.index(&p);
                }
                None => self.index(&p),
            }
            self.providers.insert(id, Arc::new(p));
        }
        for id in written {
            self.write_summary(id);
        }
        self.loaded = true;
    }

    /// (Re)write the cached summary of one provider.
    fn write_summary(&mut self, id: ProviderId) {
        let Some(p) = self.providers.get(&id) else { return };
        let mut out = Vec::with_capacity(256);
        crate::api::allocation_candidates::write_summary(self, p, None, true, true, &mut out);
        if let Some(p) = self.providers.get_mut(&id) {
            Arc::make_mut(p).summary = out;
        }
    }

    /// Take the names of resource classes and traits the database knows.
    pub fn set_names(&mut self, rcs: Vec<String>, traits: Vec<String>) {
        let mut order = HashMap::new();
        for (i, rc) in rcs.iter().enumerate() {
            order.insert(intern(&mut self.rcs, rc), i);
        }
        self.rc_order = Arc::new(order);
        let mut known = HashSet::new();
        for t in &traits {
            known.insert(intern(&mut self.traits, t));
        }
        self.known_traits = Arc::new(known);
        // the order of classes may have changed
        for id in self.order.iter().copied().collect::<Vec<_>>() {
            self.write_summary(id);
        }
    }
}

/// The index as services share it: snapshots that readers hold without
/// locking anybody out, replaced (copy on write) when writes land.
#[derive(Default)]
pub struct Cache {
    current: std::sync::RwLock<Arc<Index>>,
    refresh: Mutex<()>,
    /// One epoch probe at a time ...
    probing: Mutex<()>,
    /// ... and the last one: when it started, what it read.
    last_probe: std::sync::Mutex<Option<(Instant, (i64, i64))>>,
}

impl Cache {
    pub fn new() -> Cache {
        Cache::default()
    }

    fn snapshot(&self) -> Arc<Index> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn probed_since(&self, arrival: Instant) -> Option<(i64, i64)> {
        let last = self.last_probe.lock().ok()?;
        last.filter(|(started, _)| *started >= arrival).map(|(_, epochs)| epochs)
    }

    /// The epochs of the database as of some moment after `arrival`.
    ///
    /// Requests that arrive together share one read of `placement_state`: a
    /// read that *started* after a request arrived sees every write committed
    /// before it, so its answer serves that request as well as its own.
    async fn epochs(&self, db: &Db, arrival: Instant) -> Result<(i64, i64)> {
        if let Some(e) = self.probed_since(arrival) {
            return Ok(e);
        }
        let _one = self.probing.lock().await;
        if let Some(e) = self.probed_since(arrival) {
            return Ok(e);
        }
        let started = Instant::now();
        let epochs = store::read_state(&db.read).await?;
        if let Ok(mut last) = self.last_probe.lock() {
            *last = Some((started, epochs));
        }
        Ok(epochs)
    }

    /// The index, up to date with every write committed before this call.
    pub async fn read(&self, db: &Db) -> Result<Arc<Index>> {
        let (epoch, names_epoch) = self.epochs(db, Instant::now()).await?;
        let fresh = |i: &Index| i.loaded && i.epoch >= epoch && i.names_epoch >= names_epoch;
        let cur = self.snapshot();
        if fresh(&cur) {
            return Ok(cur);
        }
        let _one_at_a_time = self.refresh.lock().await;
        let cur = self.snapshot();
        if fresh(&cur) {
            return Ok(cur);
        }
        let names = if !cur.loaded || cur.names_epoch < names_epoch {
            Some(store::snapshot::names(&db.read).await?)
        } else {
            None
        };
        let (ids, snap) = if cur.loaded {
            let ids = store::changed_since(&db.read, cur.epoch).await?;
            let snap = store::snapshot::load(&db.read, Some(&ids)).await?;
            (Some(ids), snap)
        } else {
            (None, store::snapshot::load(&db.read, None).await?)
        };
        let mut next = if cur.loaded { (*cur).clone() } else { Index::default() };
        if let Some((rcs, traits)) = names {
            next.set_names(rcs, traits);
            next.names_epoch = names_epoch;
        }
        next.apply(ids.as_deref(), snap);
        next.epoch = epoch;
        let next = Arc::new(next);
        match self.current.write() {
            Ok(mut g) => *g = next.clone(),
            Err(poisoned) => *poisoned.into_inner() = next.clone(),
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::{inventory, provider};

    fn rp(id: i64, parent: Option<i64>, root: i64) -> provider::Model {
        provider::Model {
            id,
            uuid: format!("00000000-0000-4000-8000-{id:012}"),
            name: format!("rp{id}"),
            generation: id,
            parent_provider_id: parent,
            root_provider_id: Some(root),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn inv(rp: i64, rc: &str, total: i64) -> inventory::Model {
        inventory::Model {
            id: 0,
            resource_provider_id: rp,
            resource_class: rc.into(),
            total,
            reserved: 0,
            min_unit: 1,
            max_unit: total,
            step_size: 1,
            allocation_ratio: 1.0,
            created_at: 0,
            updated_at: 0,
        }
    }

    /// What searches can see of an index.
    fn observe(idx: &Index) -> Vec<String> {
        let mut out = Vec::new();
        for p in idx.iter() {
            let traits: Vec<&str> = p.traits.iter().map(|t| idx.traits.name(*t)).collect();
            let aggs: Vec<&str> = p.aggs.iter().map(|a| idx.aggs.name(*a)).collect();
            let invs: Vec<String> =
                p.invs.iter().map(|i| format!("{}:{}/{}", idx.rcs.name(i.rc), i.used, i.total)).collect();
            let tree: Vec<i64> = idx.tree(p.root).map(|x| x.id).collect();
            out.push(format!(
                "{} {} root={} parent={:?} gen={} traits={traits:?} aggs={aggs:?} invs={invs:?} tree={tree:?} summary={}",
                p.id,
                p.uuid,
                p.root,
                p.parent,
                p.generation,
                String::from_utf8_lossy(&p.summary)
            ));
            assert_eq!(idx.by_uuid(&p.uuid).map(|x| x.id), Some(p.id));
        }
        for name in ["CUSTOM_A", "CUSTOM_B"] {
            let members: Vec<ProviderId> =
                idx.traits.get(name).map(|t| idx.with_trait(t).collect()).unwrap_or_default();
            out.push(format!("trait {name}: {members:?}"));
        }
        for name in ["agg1", "agg2"] {
            let members: Vec<ProviderId> = idx.aggs.get(name).map(|a| idx.with_agg(a).collect()).unwrap_or_default();
            out.push(format!("agg {name}: {members:?}"));
        }
        out.push(format!("trees: {}", idx.has_trees()));
        out
    }

    fn names(idx: &mut Index) {
        idx.set_names(
            vec!["VCPU".into(), "MEMORY_MB".into(), "DISK_GB".into()],
            vec!["CUSTOM_A".into(), "CUSTOM_B".into()],
        );
    }

    #[test]
    fn incremental_refresh_equals_a_full_load() {
        let before = Snapshot {
            providers: vec![rp(1, None, 1), rp(2, None, 2), rp(3, None, 3), rp(4, Some(3), 3)],
            inventories: vec![inv(1, "VCPU", 8), inv(2, "VCPU", 4), inv(3, "MEMORY_MB", 512), inv(4, "VCPU", 2)],
            usage: vec![(1, "VCPU".into(), 2)],
            traits: vec![(2, "CUSTOM_A".into()), (4, "CUSTOM_B".into())],
            aggregates: vec![(1, "agg1".into()), (2, "agg1".into()), (2, "agg2".into())],
        };
        // 1: more usage; 2: other traits and aggregates; 4: deleted; 5: new
        // under 1; 3: inventory changed
        let mut after = before.clone();
        after.providers.retain(|p| p.id != 4);
        after.providers.push(rp(5, Some(1), 1));
        after.providers.iter_mut().for_each(|p| p.generation += 1);
        after.usage = vec![(1, "VCPU".into(), 5)];
        after.traits = vec![(2, "CUSTOM_B".into()), (5, "CUSTOM_A".into())];
        after.aggregates = vec![(1, "agg1".into()), (2, "agg2".into()), (5, "agg2".into())];
        after.inventories = vec![inv(1, "VCPU", 8), inv(2, "VCPU", 4), inv(3, "DISK_GB", 10), inv(5, "VCPU", 1)];

        let mut full = Index::default();
        names(&mut full);
        full.apply(None, after.clone());

        let mut step = Index::default();
        names(&mut step);
        step.apply(None, before.clone());
        let old = step.clone();
        let changed = [1, 2, 3, 4, 5];
        let part = Snapshot {
            providers: after.providers.iter().filter(|p| changed.contains(&p.id)).cloned().collect(),
            inventories: after.inventories.clone(),
            usage: after.usage.clone(),
            traits: after.traits.clone(),
            aggregates: after.aggregates.clone(),
        };
        step.apply(Some(&changed), part);
        assert_eq!(observe(&step), observe(&full));
        // the snapshot taken before is untouched (copy on write)
        let mut again = Index::default();
        names(&mut again);
        again.apply(None, before);
        assert_eq!(observe(&old), observe(&again));
        // a usage-only change keeps the structure shared
        let mut usage_only = step.clone();
        let snap = Snapshot {
            providers: vec![rp(1, None, 1)],
            inventories: vec![inv(1, "VCPU", 8)],
            usage: vec![(1, "VCPU".into(), 7)],
            traits: vec![],
            aggregates: vec![(1, "agg1".into())],
        };
        usage_only.apply(Some(&[1]), snap);
        assert!(Arc::ptr_eq(&usage_only.members, &step.members));
        assert!(Arc::ptr_eq(&usage_only.agg_members, &step.agg_members));
        assert_eq!(usage_only.get(1).and_then(|p| p.inv(0)).map(|i| i.used), Some(7));
    }
}
