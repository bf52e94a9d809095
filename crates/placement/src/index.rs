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

use stratus_db::Db;
use tokio::sync::{Mutex, RwLock, RwLockReadGuard};

use crate::error::Result;
use crate::store::{self, snapshot::Snapshot};

pub type ProviderId = i64;
/// An interned name (resource class, trait or aggregate uuid).
pub type NameId = u32;

/// Strings interned to small integers, with which ones the database knows.
#[derive(Default, Debug)]
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

#[derive(Default, Debug)]
pub struct Index {
    pub loaded: bool,
    pub epoch: i64,
    pub names_epoch: i64,
    pub providers: BTreeMap<ProviderId, Provider>,
    by_uuid: HashMap<String, ProviderId>,
    /// root -> the providers of its tree
    members: HashMap<ProviderId, BTreeSet<ProviderId>>,
    /// how many providers have a parent
    nested: usize,
    agg_members: HashMap<NameId, BTreeSet<ProviderId>>,
    trait_members: HashMap<NameId, BTreeSet<ProviderId>>,
    pub rcs: Interner,
    pub traits: Interner,
    pub aggs: Interner,
    /// resource classes the database knows, with their order
    rc_order: HashMap<NameId, usize>,
    known_traits: HashSet<NameId>,
}

impl Index {
    pub fn by_uuid(&self, uuid: &str) -> Option<&Provider> {
        self.by_uuid.get(uuid).and_then(|id| self.providers.get(id))
    }
    pub fn get(&self, id: ProviderId) -> Option<&Provider> {
        self.providers.get(&id)
    }
    /// Are there nested providers at all?
    pub fn has_trees(&self) -> bool {
        self.nested > 0
    }
    /// The providers of the tree rooted at `root`, by id.
    pub fn tree(&self, root: ProviderId) -> impl Iterator<Item = &Provider> {
        self.members.get(&root).into_iter().flatten().filter_map(|id| self.providers.get(id))
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

    fn unindex(&mut self, id: ProviderId) {
        let Some(p) = self.providers.remove(&id) else {
            return;
        };
        if self.by_uuid.get(&p.uuid) == Some(&id) {
            self.by_uuid.remove(&p.uuid);
        }
        if let Some(m) = self.members.get_mut(&p.root) {
            m.remove(&id);
            if m.is_empty() {
                self.members.remove(&p.root);
            }
        }
        if p.parent.is_some() {
            self.nested = self.nested.saturating_sub(1);
        }
        for a in &p.aggs {
            if let Some(m) = self.agg_members.get_mut(a) {
                m.remove(&id);
            }
        }
        for t in &p.traits {
            if let Some(m) = self.trait_members.get_mut(t) {
                m.remove(&id);
            }
        }
    }

    fn index(&mut self, p: Provider) {
        self.by_uuid.insert(p.uuid.clone(), p.id);
        self.members.entry(p.root).or_default().insert(p.id);
        if p.parent.is_some() {
            self.nested += 1;
        }
        for a in &p.aggs {
            self.agg_members.entry(*a).or_default().insert(p.id);
        }
        for t in &p.traits {
            self.trait_members.entry(*t).or_default().insert(p.id);
        }
        self.providers.insert(p.id, p);
    }

    /// Replace the providers `ids` (all when `None`) with what `snap` holds of them.
    pub fn apply(&mut self, ids: Option<&[ProviderId]>, snap: Snapshot) {
        match ids {
            None => {
                let (rcs, traits, aggs) =
                    (std::mem::take(&mut self.rcs), std::mem::take(&mut self.traits), std::mem::take(&mut self.aggs));
                let (rc_order, known) = (std::mem::take(&mut self.rc_order), std::mem::take(&mut self.known_traits));
                *self = Index { rcs, traits, aggs, rc_order, known_traits: known, ..Index::default() };
            }
            Some(ids) => {
                for id in ids {
                    self.unindex(*id);
                }
            }
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
                };
                (p.id, p)
            })
            .collect();
        let mut used: HashMap<(ProviderId, NameId), i64> = HashMap::new();
        for (rp, rc, u) in snap.usage {
            let rc = self.rcs.intern(&rc);
            *used.entry((rp, rc)).or_default() += u;
        }
        for i in snap.inventories {
            let rc = self.rcs.intern(&i.resource_class);
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
            let t = self.traits.intern(&t);
            if let Some(p) = fresh.get_mut(&rp) {
                p.traits.push(t);
            }
        }
        for (rp, a) in snap.aggregates {
            let a = self.aggs.intern(&a);
            if let Some(p) = fresh.get_mut(&rp) {
                p.aggs.push(a);
            }
        }
        for (_, mut p) in fresh {
            p.invs.sort_by_key(|i| i.rc);
            p.traits.sort_unstable();
            p.traits.dedup();
            p.aggs.sort_unstable();
            p.aggs.dedup();
            self.index(p);
        }
        self.loaded = true;
    }

    /// Take the names of resource classes and traits the database knows.
    pub fn set_names(&mut self, rcs: Vec<String>, traits: Vec<String>) {
        self.rc_order.clear();
        for (i, rc) in rcs.iter().enumerate() {
            let id = self.rcs.intern(rc);
            self.rc_order.insert(id, i);
        }
        self.known_traits.clear();
        for t in &traits {
            let id = self.traits.intern(t);
            self.known_traits.insert(id);
        }
    }
}

/// The index as services share it: refreshed on demand, read concurrently.
#[derive(Default)]
pub struct Cache {
    inner: RwLock<Index>,
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
    pub async fn read(&self, db: &Db) -> Result<RwLockReadGuard<'_, Index>> {
        let (epoch, names_epoch) = self.epochs(db, Instant::now()).await?;
        {
            let g = self.inner.read().await;
            if g.loaded && g.epoch >= epoch && g.names_epoch >= names_epoch {
                return Ok(g);
            }
        }
        let _one_at_a_time = self.refresh.lock().await;
        let (loaded, have_epoch, have_names) = {
            let g = self.inner.read().await;
            if g.loaded && g.epoch >= epoch && g.names_epoch >= names_epoch {
                return Ok(g);
            }
            (g.loaded, g.epoch, g.names_epoch)
        };
        let names =
            if !loaded || have_names < names_epoch { Some(store::snapshot::names(&db.read).await?) } else { None };
        let (ids, snap) = if loaded {
            let ids = store::changed_since(&db.read, have_epoch).await?;
            let snap = store::snapshot::load(&db.read, Some(&ids)).await?;
            (Some(ids), snap)
        } else {
            (None, store::snapshot::load(&db.read, None).await?)
        };
        let mut g = self.inner.write().await;
        if let Some((rcs, traits)) = names {
            g.set_names(rcs, traits);
            g.names_epoch = names_epoch;
        }
        g.apply(ids.as_deref(), snap);
        g.epoch = epoch;
        Ok(g.downgrade())
    }
}
