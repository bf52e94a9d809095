//! `GET /allocation_candidates`, computed on the in-memory index the way
//! placement computes it in `objects/allocation_candidate.py` and
//! `objects/research_context.py`:
//!
//! 1. `root_required` narrows the roots that may anchor a candidate.
//! 2. Each request group yields allocation requests of its own. A suffixed
//!    group (and the unsuffixed one when there are neither trees nor sharing
//!    providers) is satisfied by a single provider that has every trait and
//!    aggregate asked and room for every amount. The unsuffixed group in a
//!    world of trees or sharing providers may take each resource class from a
//!    different provider of one tree (or a sharing provider of its aggregates),
//!    the providers together having the required traits.
//! 3. The groups' requests are combined per anchor (root provider): every
//!    combination that respects `group_policy=isolate` and `same_subtree`,
//!    whose summed amounts still fit, and (before 1.29) that takes at most one
//!    provider per tree, is a candidate, until `limit`.
//! 4. Provider summaries cover every provider of the trees involved.
//!
//! The order is deterministic (providers by creation, combinations in order)
//! where placement's is "deterministic but undefined"; `limit` keeps the first
//! ones.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::error::{PlacementError, Result};
use crate::index::{Index, NameId, Provider, ProviderId};
use crate::model::{CandidateRequest, GroupPolicy, RequestGroup};
use crate::standard::MISC_SHARES_VIA_AGGREGATE;

/// Which providers satisfied which request group (by group index).
pub type Mappings = BTreeMap<usize, BTreeSet<ProviderId>>;

/// An amount of one class from one provider.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Resource {
    pub provider: ProviderId,
    pub rc: NameId,
    pub amount: i64,
}

/// One candidate: what to allocate where, and which providers satisfied
/// which request group (by group index).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllocationRequest {
    pub anchor: ProviderId,
    pub use_same_provider: bool,
    pub resources: Vec<Resource>,
    pub mappings: Mappings,
}

/// The answer: candidates and the providers to summarize.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Candidates {
    pub requests: Vec<AllocationRequest>,
    pub summaries: Vec<ProviderId>,
    /// the classes asked for, for summaries before 1.27
    pub requested: BTreeSet<NameId>,
}

/// A request group with its names resolved against the index.
struct Resolved {
    index: usize,
    use_same_provider: bool,
    resources: Vec<(NameId, i64)>,
    required: Vec<Vec<NameId>>,
    forbidden: Vec<NameId>,
    rps_in_aggs: Option<HashSet<ProviderId>>,
    forbidden_aggs: Vec<NameId>,
    tree_root: Option<ProviderId>,
    /// per resource: (provider, root) with room for the amount
    with_resource: Vec<Vec<(ProviderId, ProviderId)>>,
}

fn trait_ids(idx: &Index, names: &[String]) -> Result<Vec<NameId>> {
    let mut sorted: Vec<&String> = names.iter().collect();
    sorted.sort();
    sorted.iter().map(|n| idx.trait_id(n).ok_or_else(|| PlacementError::TraitNotFound((*n).clone()))).collect()
}

/// Resolve a group; `Ok(None)` when it cannot match anything.
fn resolve(idx: &Index, g: &RequestGroup, index: usize, lists: bool) -> Result<Option<Resolved>> {
    let mut resources = Vec::new();
    for (rc, amount) in &g.resources {
        let id = idx.rc_id(rc).ok_or_else(|| PlacementError::ResourceClassNotFound(rc.clone()))?;
        resources.push((id, *amount));
    }
    let rps_in_aggs = if g.member_of.is_empty() {
        None
    } else {
        let set = providers_in_aggregates(idx, &g.member_of);
        if set.is_empty() {
            return Ok(None);
        }
        Some(set)
    };
    let mut required = Vec::new();
    for any in &g.required_traits {
        required.push(trait_ids(idx, any)?);
    }
    let forbidden = trait_ids(idx, &g.forbidden_traits)?;
    let tree_root = match &g.in_tree {
        None => None,
        Some(u) => match idx.by_uuid(u) {
            None => return Ok(None),
            Some(p) => Some(p.root),
        },
    };
    let forbidden_aggs = g.forbidden_aggs.iter().filter_map(|a| idx.agg_id(a)).collect();
    let mut with_resource = Vec::new();
    for (rc, amount) in resources.iter().filter(|_| lists) {
        let fits = |p: &Provider| p.inv(*rc).is_some_and(|i| i.fits(*amount));
        let list: Vec<(ProviderId, ProviderId)> = match tree_root {
            Some(root) => idx.tree(root).filter(|p| fits(p)).map(|p| (p.id, p.root)).collect(),
            None => idx.iter().filter(|p| fits(p)).map(|p| (p.id, p.root)).collect(),
        };
        if list.is_empty() {
            return Ok(None);
        }
        with_resource.push(list);
    }
    Ok(Some(Resolved {
        index,
        use_same_provider: g.use_same_provider,
        resources,
        required,
        forbidden,
        rps_in_aggs,
        forbidden_aggs,
        tree_root,
        with_resource,
    }))
}

/// Providers in (any of each list of) the aggregates: AND of ORs.
pub fn providers_in_aggregates(idx: &Index, member_of: &[Vec<String>]) -> HashSet<ProviderId> {
    let mut acc: Option<HashSet<ProviderId>> = None;
    for any in member_of {
        let mut s = HashSet::new();
        for a in any {
            if let Some(id) = idx.agg_id(a) {
                s.extend(idx.with_agg(id));
            }
        }
        acc = Some(match acc {
            None => s,
            Some(prev) => prev.intersection(&s).copied().collect(),
        });
    }
    acc.unwrap_or_default()
}

fn has_all(p: &Provider, required: &[Vec<NameId>]) -> bool {
    required.iter().all(|any| any.iter().any(|t| p.has_trait(*t)))
}

fn has_any(p: &Provider, traits: &[NameId]) -> bool {
    traits.iter().any(|t| p.has_trait(*t))
}

fn in_any_agg(p: &Provider, aggs: &[NameId]) -> bool {
    aggs.iter().any(|a| p.has_agg(*a))
}

/// The roots of every tree that shares an aggregate with the sharing provider `sp`.
fn anchors_for_sharing(idx: &Index, sp: &Provider) -> BTreeSet<ProviderId> {
    let mut out = BTreeSet::new();
    for a in &sp.aggs {
        for m in idx.with_agg(*a) {
            if let Some(p) = idx.get(m) {
                out.insert(p.root);
            }
        }
    }
    out
}

/// Requests for a group that one provider must satisfy alone.
fn single(idx: &Index, g: &Resolved, anchors: &Option<HashSet<ProviderId>>, sharing: NameId) -> Vec<AllocationRequest> {
    let ok = |p: &Provider| {
        has_all(p, &g.required)
            && g.rps_in_aggs.as_ref().is_none_or(|s| s.contains(&p.id))
            && !in_any_agg(p, &g.forbidden_aggs)
            && !has_any(p, &g.forbidden)
    };
    let matched: Vec<(ProviderId, ProviderId)> = match g.with_resource.first() {
        Some(first) => first
            .iter()
            .filter(|(id, _)| {
                idx.get(*id).is_some_and(|p| {
                    ok(p) && g.resources.iter().all(|(rc, amount)| p.inv(*rc).is_some_and(|i| i.fits(*amount)))
                })
            })
            .copied()
            .collect(),
        None => {
            // a resourceless group (1.36, in a same_subtree)
            let all: Box<dyn Iterator<Item = &Provider>> = match g.tree_root {
                Some(root) => Box::new(idx.tree(root)),
                None => Box::new(idx.iter()),
            };
            all.filter(|p| ok(p)).map(|p| (p.id, p.root)).collect()
        }
    };
    let in_anchors = |root: ProviderId| anchors.as_ref().is_none_or(|a| a.contains(&root));
    let mut out = Vec::new();
    for (id, root) in matched {
        let req = AllocationRequest {
            anchor: root,
            use_same_provider: g.use_same_provider,
            resources: g
                .resources
                .iter()
                .map(|(rc, amount)| Resource { provider: id, rc: *rc, amount: *amount })
                .collect(),
            mappings: BTreeMap::from([(g.index, BTreeSet::from([id]))]),
        };
        let shares = idx.get(id).filter(|p| p.has_trait(sharing));
        if let Some(sp) = shares {
            if in_anchors(root) {
                out.push(req.clone());
            }
            for anchor in anchors_for_sharing(idx, sp) {
                if anchor != root && in_anchors(anchor) {
                    out.push(AllocationRequest { anchor, ..req.clone() });
                }
            }
        } else if in_anchors(root) {
            out.push(req);
        }
    }
    out
}

/// (provider, anchor root, class) candidates of a group spread over a tree.
type Candidate = (ProviderId, ProviderId, NameId);

/// Requests for the unsuffixed group when providers of one tree (or sharing
/// providers) may together satisfy it.
fn multiple(
    idx: &Index,
    g: &Resolved,
    anchors: &Option<HashSet<ProviderId>>,
    sharing: &BTreeSet<ProviderId>,
) -> Vec<AllocationRequest> {
    if !g.required.is_empty() {
        let any_trait: BTreeSet<NameId> = g.required.iter().flatten().copied().collect();
        if !any_trait.iter().any(|t| idx.with_trait(*t).next().is_some()) {
            return Vec::new();
        }
    }
    let bad_aggs: HashSet<ProviderId> = g.forbidden_aggs.iter().flat_map(|a| idx.with_agg(*a)).collect();
    let mut provs: BTreeSet<Candidate> = BTreeSet::new();
    for (ri, (rc, _)) in g.resources.iter().enumerate() {
        let list = &g.with_resource[ri];
        let mut cands: BTreeSet<Candidate> = list.iter().map(|(p, root)| (*p, *root, *rc)).collect();
        if g.tree_root.is_none() {
            let with: HashSet<ProviderId> = list.iter().map(|(p, _)| *p).collect();
            for sp in sharing {
                if with.contains(sp)
                    && g.rps_in_aggs.as_ref().is_none_or(|s| s.contains(sp))
                    && let Some(p) = idx.get(*sp)
                {
                    for anchor in anchors_for_sharing(idx, p) {
                        cands.insert((*sp, anchor, *rc));
                    }
                }
            }
        }
        if let Some(a) = anchors {
            cands.retain(|(_, root, _)| a.contains(root));
        }
        if let Some(s) = &g.rps_in_aggs {
            cands.retain(|(p, root, _)| s.contains(p) || s.contains(root));
        }
        if !bad_aggs.is_empty() {
            cands.retain(|(p, root, _)| !bad_aggs.contains(p) && !bad_aggs.contains(root));
        }
        if cands.is_empty() {
            return Vec::new();
        }
        if provs.is_empty() {
            provs = cands;
        } else {
            let mine: BTreeSet<ProviderId> = provs.iter().map(|c| c.1).collect();
            let theirs: BTreeSet<ProviderId> = cands.iter().map(|c| c.1).collect();
            provs.extend(cands);
            provs.retain(|c| mine.contains(&c.1) && theirs.contains(&c.1));
        }
        if provs.is_empty() {
            return Vec::new();
        }
    }
    if (!g.required.is_empty() || !g.forbidden.is_empty()) && sharing.is_empty() {
        let keep = trees_with_traits(idx, &provs, &g.required, &g.forbidden);
        provs.retain(|c| keep.contains(&c.1));
    }

    // per anchor, per class (in class order): the providers that can give it
    let mut trees: BTreeMap<ProviderId, BTreeMap<(usize, NameId), Vec<Resource>>> = BTreeMap::new();
    let amount: HashMap<NameId, i64> = g.resources.iter().copied().collect();
    for (p, root, rc) in &provs {
        trees.entry(*root).or_default().entry((idx.rc_rank(*rc), *rc)).or_default().push(Resource {
            provider: *p,
            rc: *rc,
            amount: amount.get(rc).copied().unwrap_or(0),
        });
    }
    let mut out = Vec::new();
    let mut seen: HashSet<(Vec<Resource>, BTreeSet<ProviderId>)> = HashSet::new();
    for (root, by_rc) in trees {
        let lists: Vec<Vec<Resource>> = by_rc.into_values().collect();
        for combo in Product::new(&lists) {
            if !combo_has_traits(idx, &combo, &g.required, &g.forbidden) {
                continue;
            }
            let providers: BTreeSet<ProviderId> = combo.iter().map(|r| r.provider).collect();
            let resources: Vec<Resource> = combo.into_iter().cloned().collect();
            let mut key = resources.clone();
            key.sort();
            if !seen.insert((key, providers.clone())) {
                continue;
            }
            out.push(AllocationRequest {
                anchor: root,
                use_same_provider: g.use_same_provider,
                resources,
                mappings: BTreeMap::from([(g.index, providers)]),
            });
        }
    }
    out
}

/// placement's `_get_trees_with_traits`: the trees (roots) whose candidate
/// providers without forbidden traits could together have the required ones.
fn trees_with_traits(
    idx: &Index,
    provs: &BTreeSet<Candidate>,
    required: &[Vec<NameId>],
    forbidden: &[NameId],
) -> HashSet<ProviderId> {
    let mut traits_by_root: HashMap<ProviderId, BTreeSet<NameId>> = HashMap::new();
    let mut good_roots = HashSet::new();
    let ids: BTreeSet<ProviderId> = provs.iter().map(|c| c.0).collect();
    for id in ids {
        let Some(p) = idx.get(id) else { continue };
        if has_any(p, forbidden) {
            continue;
        }
        good_roots.insert(p.root);
        traits_by_root.entry(p.root).or_default().extend(p.traits.iter().copied());
    }
    if required.is_empty() {
        return good_roots;
    }
    traits_by_root
        .into_iter()
        .filter(|(_, have)| required.iter().all(|any| any.iter().any(|t| have.contains(t))))
        .map(|(root, _)| root)
        .collect()
}

/// Do the providers of one combination together have the required traits,
/// and none of them a forbidden one?
fn combo_has_traits(idx: &Index, combo: &[&Resource], required: &[Vec<NameId>], forbidden: &[NameId]) -> bool {
    let mut all = BTreeSet::new();
    for r in combo {
        let Some(p) = idx.get(r.provider) else { return false };
        if has_any(p, forbidden) {
            return false;
        }
        all.extend(p.traits.iter().copied());
    }
    required.iter().all(|any| any.iter().any(|t| all.contains(t)))
}

/// The cartesian product of lists, in odometer order.
struct Product<'a, T> {
    lists: &'a [Vec<T>],
    pos: Vec<usize>,
    done: bool,
}

impl<'a, T> Product<'a, T> {
    fn new(lists: &'a [Vec<T>]) -> Self {
        let done = lists.iter().any(|l| l.is_empty());
        Product { lists, pos: vec![0; lists.len()], done }
    }
}

impl<'a, T> Iterator for Product<'a, T> {
    type Item = Vec<&'a T>;

    fn next(&mut self) -> Option<Vec<&'a T>> {
        if self.done {
            return None;
        }
        let item: Vec<&T> = self.pos.iter().zip(self.lists).filter_map(|(i, l)| l.get(*i)).collect();
        // advance the last position first
        let mut k = self.lists.len();
        loop {
            if k == 0 {
                self.done = true;
                break;
            }
            k -= 1;
            self.pos[k] += 1;
            if self.pos[k] < self.lists[k].len() {
                break;
            }
            self.pos[k] = 0;
        }
        Some(item)
    }
}

/// Search the index.
pub fn search(idx: &Index, req: &CandidateRequest) -> Result<Candidates> {
    search_with(idx, req, true)
}

/// `fast`: take the shortcut for a single one-provider group (tests compare both ways).
fn search_with(idx: &Index, req: &CandidateRequest, fast: bool) -> Result<Candidates> {
    let empty = Candidates::default();
    let anchors: Option<HashSet<ProviderId>> =
        if req.wide.root_required.is_empty() && req.wide.root_forbidden.is_empty() {
            None
        } else {
            let required = trait_ids(idx, &req.wide.root_required)?;
            let forbidden = trait_ids(idx, &req.wide.root_forbidden)?;
            let roots: HashSet<ProviderId> = idx
                .iter()
                .filter(|p| p.parent.is_none() && required.iter().all(|t| p.has_trait(*t)) && !has_any(p, &forbidden))
                .map(|p| p.id)
                .collect();
            if roots.is_empty() {
                return Ok(empty);
            }
            Some(roots)
        };
    let has_trees = idx.has_trees();
    let sharing_trait = idx.trait_id(MISC_SHARES_VIA_AGGREGATE).unwrap_or(NameId::MAX);
    let sharing: BTreeSet<ProviderId> = idx.with_trait(sharing_trait).collect();
    if let [g] = req.groups.as_slice()
        && fast
        && (g.use_same_provider || (sharing.is_empty() && !has_trees))
    {
        return one_provider_each(idx, req, g, &anchors, sharing_trait, has_trees);
    }
    let mut per_group: Vec<Vec<AllocationRequest>> = Vec::new();
    let mut requested = BTreeSet::new();
    for (i, g) in req.groups.iter().enumerate() {
        let Some(rg) = resolve(idx, g, i, true)? else {
            return Ok(empty);
        };
        requested.extend(rg.resources.iter().map(|(rc, _)| *rc));
        let areqs = if !rg.use_same_provider && (!sharing.is_empty() || has_trees) {
            multiple(idx, &rg, &anchors, &sharing)
        } else {
            single(idx, &rg, &anchors, sharing_trait)
        };
        if areqs.is_empty() {
            return Ok(empty);
        }
        per_group.push(areqs);
    }
    let mut out = merge(idx, req, &per_group, has_trees);
    out.requested = requested;
    Ok(out)
}

/// The fewest providers, in order, that may satisfy a group, when an
/// aggregate or trait filter narrows them (`None`: look at all of them).
fn narrowest(idx: &Index, g: &Resolved) -> Option<Vec<ProviderId>> {
    let mut best: Option<Vec<ProviderId>> = g.rps_in_aggs.as_ref().map(|s| s.iter().copied().collect());
    for any in &g.required {
        let size: usize = any.iter().map(|t| idx.trait_count(*t)).sum();
        if best.as_ref().is_none_or(|b| size < b.len()) {
            best = Some(any.iter().flat_map(|t| idx.with_trait(*t)).collect());
        }
    }
    if let (Some(root), Some(b)) = (g.tree_root, best.as_ref())
        && idx.tree_size(root) < b.len()
    {
        return None;
    }
    best.map(|mut ids| {
        ids.sort_unstable();
        ids.dedup();
        ids
    })
}

/// The common case, fast: one request group that a single provider must
/// satisfy. Providers are checked in order and candidates made only until
/// `limit`; the answer is the one the general path gives (each provider
/// yields one candidate, nothing to combine).
fn one_provider_each(
    idx: &Index,
    req: &CandidateRequest,
    g: &RequestGroup,
    anchors: &Option<HashSet<ProviderId>>,
    sharing: NameId,
    has_trees: bool,
) -> Result<Candidates> {
    let Some(rg) = resolve(idx, g, 0, false)? else {
        return Ok(Candidates::default());
    };
    let ok = |p: &Provider| {
        rg.resources.iter().all(|(rc, amount)| p.inv(*rc).is_some_and(|i| i.fits(*amount)))
            && has_all(p, &rg.required)
            && rg.rps_in_aggs.as_ref().is_none_or(|s| s.contains(&p.id))
            && !in_any_agg(p, &rg.forbidden_aggs)
            && !has_any(p, &rg.forbidden)
    };
    let anchored = |p: &Provider| match anchors {
        None => true,
        Some(a) => {
            a.contains(&p.root)
                || (p.has_trait(sharing) && anchors_for_sharing(idx, p).iter().any(|x| *x != p.root && a.contains(x)))
        }
    };
    let in_tree = |p: &Provider| rg.tree_root.is_none_or(|r| p.root == r);
    let all: Box<dyn Iterator<Item = &Provider>> = match narrowest(idx, &rg) {
        Some(ids) => Box::new(ids.into_iter().filter_map(|id| idx.get(id))),
        None => match rg.tree_root {
            Some(root) => Box::new(idx.tree(root)),
            None => Box::new(idx.iter()),
        },
    };
    let limit = req.wide.limit.unwrap_or(usize::MAX);
    let mut requests = Vec::new();
    for p in all.filter(|p| in_tree(p) && ok(p) && anchored(p)).take(limit) {
        requests.push(AllocationRequest {
            anchor: p.root,
            use_same_provider: false,
            resources: rg
                .resources
                .iter()
                .map(|(rc, amount)| Resource { provider: p.id, rc: *rc, amount: *amount })
                .collect(),
            mappings: BTreeMap::from([(0, BTreeSet::from([p.id]))]),
        });
    }
    let mut summaries = Vec::new();
    if !req.nested_aware && has_trees {
        let mut seen = BTreeSet::new();
        for a in &requests {
            for r in &a.resources {
                if seen.insert(r.provider) {
                    summaries.push(r.provider);
                }
            }
        }
    } else {
        let mut seen = HashSet::new();
        for a in &requests {
            if let Some(p) = a.mappings.values().flatten().next().and_then(|id| idx.get(*id))
                && seen.insert(p.root)
            {
                summaries.extend(idx.tree(p.root).map(|x| x.id));
            }
        }
    }
    Ok(Candidates { requests, summaries, requested: rg.resources.iter().map(|(rc, _)| *rc).collect() })
}

/// Ancestors of a provider, itself included.
fn ancestors(idx: &Index, id: ProviderId) -> HashSet<ProviderId> {
    let mut out = HashSet::from([id]);
    let mut cur = idx.get(id).and_then(|p| p.parent);
    while let Some(p) = cur {
        if !out.insert(p) {
            break;
        }
        cur = idx.get(p).and_then(|x| x.parent);
    }
    out
}

fn same_subtree(idx: &Index, providers: &BTreeSet<ProviderId>) -> bool {
    if providers.len() <= 1 {
        return true;
    }
    let mut common: Option<HashSet<ProviderId>> = None;
    for p in providers {
        let a = ancestors(idx, *p);
        common = Some(match common {
            None => a,
            Some(c) => c.intersection(&a).copied().collect(),
        });
    }
    common.is_some_and(|c| c.iter().any(|p| providers.contains(p)))
}

fn merge(idx: &Index, req: &CandidateRequest, per_group: &[Vec<AllocationRequest>], has_trees: bool) -> Candidates {
    let groups = per_group.len();
    let mut order: Vec<ProviderId> = Vec::new();
    let mut by_anchor: HashMap<ProviderId, Vec<Vec<&AllocationRequest>>> = HashMap::new();
    for (gi, areqs) in per_group.iter().enumerate() {
        for a in areqs {
            let lists = by_anchor.entry(a.anchor).or_insert_with(|| {
                order.push(a.anchor);
                vec![Vec::new(); groups]
            });
            lists[gi].push(a);
        }
    }
    let granular = req.groups.iter().filter(|g| !g.suffix.is_empty()).count();
    let isolate = req.wide.group_policy == Some(GroupPolicy::Isolate);
    let subtree_groups: Vec<Vec<usize>> = req
        .wide
        .same_subtrees
        .iter()
        .map(|set| set.iter().filter_map(|s| req.groups.iter().position(|g| &g.suffix == s)).collect())
        .collect();
    let exclude_nested = !req.nested_aware && has_trees;
    let limit = req.wide.limit.unwrap_or(usize::MAX);

    let mut requests: Vec<AllocationRequest> = Vec::new();
    let mut seen: HashSet<(Vec<Resource>, Mappings)> = HashSet::new();
    'anchors: for anchor in order {
        let Some(lists) = by_anchor.get(&anchor) else { continue };
        if lists.iter().any(Vec::is_empty) {
            continue;
        }
        for combo in Product::new(lists) {
            if isolate {
                let distinct: BTreeSet<ProviderId> = combo
                    .iter()
                    .filter(|a| a.use_same_provider)
                    .flat_map(|a| a.mappings.values().next().into_iter().flatten().copied())
                    .collect();
                if distinct.len() != granular {
                    continue;
                }
            }
            if !subtree_groups.iter().all(|gs| {
                let rps: BTreeSet<ProviderId> =
                    combo.iter().flat_map(|a| gs.iter().filter_map(|g| a.mappings.get(g)).flatten().copied()).collect();
                same_subtree(idx, &rps)
            }) {
                continue;
            }
            // consolidate: one amount per (provider, class)
            let mut resources: Vec<Resource> = Vec::new();
            let mut mappings: Mappings = BTreeMap::new();
            for a in &combo {
                for r in &a.resources {
                    match resources.iter_mut().find(|x| x.provider == r.provider && x.rc == r.rc) {
                        Some(x) => x.amount = x.amount.saturating_add(r.amount),
                        None => resources.push(r.clone()),
                    }
                }
                for (g, ps) in &a.mappings {
                    mappings.entry(*g).or_default().extend(ps.iter().copied());
                }
            }
            let exceeds = resources.iter().any(|r| {
                idx.get(r.provider)
                    .and_then(|p| p.inv(r.rc))
                    .is_none_or(|i| i.used.saturating_add(r.amount) > i.capacity() || r.amount > i.max_unit)
            });
            if exceeds {
                continue;
            }
            if exclude_nested {
                let rps: BTreeSet<ProviderId> = resources.iter().map(|r| r.provider).collect();
                let roots: BTreeSet<ProviderId> = rps.iter().filter_map(|p| idx.get(*p).map(|x| x.root)).collect();
                if rps.len() != roots.len() {
                    continue;
                }
            }
            let mut key = resources.clone();
            key.sort();
            if !seen.insert((key, mappings.clone())) {
                continue;
            }
            requests.push(AllocationRequest { anchor, use_same_provider: false, resources, mappings });
            if requests.len() >= limit {
                break 'anchors;
            }
        }
    }

    let mut summaries = Vec::new();
    if exclude_nested {
        let mut seen = BTreeSet::new();
        for a in &requests {
            for r in &a.resources {
                if seen.insert(r.provider) {
                    summaries.push(r.provider);
                }
            }
        }
    } else {
        let mut roots = Vec::new();
        let mut seen = HashSet::new();
        for a in &requests {
            for r in &a.resources {
                if let Some(p) = idx.get(r.provider)
                    && seen.insert(p.root)
                {
                    roots.push(p.root);
                }
            }
            // resourceless groups: their providers' trees count too
            for ps in a.mappings.values() {
                for id in ps {
                    if let Some(p) = idx.get(*id)
                        && seen.insert(p.root)
                    {
                        roots.push(p.root);
                    }
                }
            }
        }
        for root in roots {
            summaries.extend(idx.tree(root).map(|p| p.id));
        }
    }
    Candidates { requests, summaries, requested: BTreeSet::new() }
}

#[cfg(test)]
mod tests;
