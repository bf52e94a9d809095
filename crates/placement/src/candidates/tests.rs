//! Allocation candidates against hand-computed answers.

use std::collections::BTreeSet;

use stratus_core::Microversion;

use super::*;
use crate::entity::{inventory, provider};
use crate::query;
use crate::standard;
use crate::store::snapshot::Snapshot;

fn uuid_of(id: i64) -> String {
    format!("00000000-0000-4000-8000-{id:012}")
}

/// A world of providers (answers name them by name).
#[derive(Default)]
struct World {
    snap: Snapshot,
    next: i64,
    custom_traits: Vec<String>,
}

impl World {
    fn rp(&mut self, name: &str, parent: Option<i64>) -> i64 {
        self.next += 1;
        let id = self.next;
        let root = parent
            .map(|p| self.snap.providers.iter().find(|x| x.id == p).and_then(|x| x.root_provider_id).unwrap_or(p));
        self.snap.providers.push(provider::Model {
            id,
            uuid: uuid_of(id),
            name: name.to_string(),
            generation: 0,
            parent_provider_id: parent,
            root_provider_id: Some(root.unwrap_or(id)),
            created_at: 0,
            updated_at: 0,
        });
        id
    }
    fn inv(&mut self, rp: i64, rc: &str, total: i64) {
        self.inv_with(rp, rc, total, |_| {});
    }
    fn inv_with(&mut self, rp: i64, rc: &str, total: i64, f: impl FnOnce(&mut inventory::Model)) {
        let mut m = inventory::Model {
            id: 0,
            resource_provider_id: rp,
            resource_class: rc.to_string(),
            total,
            reserved: 0,
            min_unit: 1,
            max_unit: total,
            step_size: 1,
            allocation_ratio: 1.0,
            created_at: 0,
            updated_at: 0,
        };
        f(&mut m);
        self.snap.inventories.push(m);
    }
    fn used(&mut self, rp: i64, rc: &str, n: i64) {
        self.snap.usage.push((rp, rc.to_string(), n));
    }
    fn traits(&mut self, rp: i64, traits: &[&str]) {
        for t in traits {
            if standard::is_custom(t) {
                self.custom_traits.push(t.to_string());
            }
            self.snap.traits.push((rp, t.to_string()));
        }
    }
    fn aggs(&mut self, rp: i64, aggs: &[&str]) {
        for a in aggs {
            self.snap.aggregates.push((rp, a.to_string()));
        }
    }
    fn index(self) -> Index {
        let mut idx = Index::default();
        let rcs: Vec<String> = standard::RESOURCE_CLASSES.iter().map(|s| s.to_string()).collect();
        let mut traits: Vec<String> = standard::traits().map(str::to_string).collect();
        traits.extend(self.custom_traits);
        idx.set_names(rcs, traits);
        idx.apply(None, self.snap);
        idx
    }
}

/// A candidate as sorted (provider, class, amount).
type Found = Vec<(String, String, i64)>;

/// Candidates, and the summarized providers.
fn ask(idx: &Index, qs: &str, mv: (u16, u16)) -> (Vec<Found>, BTreeSet<String>) {
    let pairs: Vec<(String, String)> = qs
        .split('&')
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    let req = query::candidate_request(&pairs, Microversion(mv.0, mv.1)).unwrap();
    let found = search(idx, &req).unwrap();
    let mut reqs: Vec<Found> = found
        .requests
        .iter()
        .map(|a| {
            let mut v: Vec<(String, String, i64)> = a
                .resources
                .iter()
                .map(|r| (idx.get(r.provider).unwrap().name.clone(), idx.rcs.name(r.rc).to_string(), r.amount))
                .collect();
            v.sort();
            v
        })
        .collect();
    reqs.sort();
    let sums = found.summaries.iter().map(|id| idx.get(*id).unwrap().name.clone()).collect();
    (reqs, sums)
}

fn r(p: &str, rc: &str, n: i64) -> (String, String, i64) {
    (p.to_string(), rc.to_string(), n)
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

const LATEST: (u16, u16) = (1, 39);

fn flat() -> Index {
    let mut w = World::default();
    let cn1 = w.rp("cn1", None);
    w.inv(cn1, "VCPU", 8);
    w.inv(cn1, "MEMORY_MB", 1024);
    w.traits(cn1, &["HW_CPU_X86_AVX2", "CUSTOM_GOLD"]);
    w.aggs(cn1, &["agg-a"]);
    let cn2 = w.rp("cn2", None);
    w.inv(cn2, "VCPU", 2);
    w.inv(cn2, "MEMORY_MB", 1024);
    w.used(cn2, "VCPU", 2);
    let cn3 = w.rp("cn3", None);
    w.inv(cn3, "VCPU", 8);
    let cn4 = w.rp("cn4", None);
    w.inv_with(cn4, "VCPU", 16, |i| {
        i.reserved = 8;
        i.allocation_ratio = 2.0;
        i.max_unit = 4;
    });
    w.inv(cn4, "MEMORY_MB", 2048);
    w.traits(cn4, &["HW_CPU_X86_SSE"]);
    w.aggs(cn4, &["agg-a", "agg-b"]);
    w.index()
}

#[test]
fn flat_capacity() {
    let idx = flat();
    let (reqs, sums) = ask(&idx, "resources=VCPU:1,MEMORY_MB:512", LATEST);
    assert_eq!(
        reqs,
        vec![
            vec![r("cn1", "MEMORY_MB", 512), r("cn1", "VCPU", 1)],
            vec![r("cn4", "MEMORY_MB", 512), r("cn4", "VCPU", 1)],
        ]
    );
    assert_eq!(sums, set(&["cn1", "cn4"]));
    // cn4: (16 - 8) * 2 = 16 VCPU but max_unit 4
    let (reqs, _) = ask(&idx, "resources=VCPU:5", LATEST);
    assert_eq!(reqs, vec![vec![r("cn1", "VCPU", 5)], vec![r("cn3", "VCPU", 5)]]);
    let (reqs, _) = ask(&idx, "resources=VCPU:4", LATEST);
    assert_eq!(reqs.len(), 3);
    let (reqs, _) = ask(&idx, "resources=VCPU:9", LATEST);
    assert!(reqs.is_empty());
}

#[test]
fn flat_traits_and_aggregates() {
    let idx = flat();
    let (reqs, _) = ask(&idx, "resources=VCPU:1&required=HW_CPU_X86_AVX2", LATEST);
    assert_eq!(reqs, vec![vec![r("cn1", "VCPU", 1)]]);
    let (reqs, _) = ask(&idx, "resources=VCPU:1&required=!HW_CPU_X86_AVX2", LATEST);
    assert_eq!(reqs, vec![vec![r("cn3", "VCPU", 1)], vec![r("cn4", "VCPU", 1)]]);
    let (reqs, _) = ask(&idx, "resources=VCPU:1&required=in:HW_CPU_X86_AVX2,HW_CPU_X86_SSE", LATEST);
    assert_eq!(reqs, vec![vec![r("cn1", "VCPU", 1)], vec![r("cn4", "VCPU", 1)]]);
    let (reqs, _) =
        ask(&idx, "resources=VCPU:1&required=in:HW_CPU_X86_AVX2,HW_CPU_X86_SSE&required=!CUSTOM_GOLD", LATEST);
    assert_eq!(reqs, vec![vec![r("cn4", "VCPU", 1)]]);
}

#[test]
fn member_of() {
    let mut w = World::default();
    let a = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
    let b = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";
    for (name, aggs) in [("cn1", vec![a]), ("cn2", vec![a, b]), ("cn3", vec![b]), ("cn4", vec![])] {
        let id = w.rp(name, None);
        w.inv(id, "VCPU", 4);
        w.aggs(id, &aggs);
    }
    let idx = w.index();
    let names = |qs: &str| -> Vec<String> { ask(&idx, qs, LATEST).0.into_iter().map(|v| v[0].0.clone()).collect() };
    assert_eq!(names(&format!("resources=VCPU:1&member_of={a}")), ["cn1", "cn2"]);
    assert_eq!(names(&format!("resources=VCPU:1&member_of=in:{a},{b}")), ["cn1", "cn2", "cn3"]);
    assert_eq!(names(&format!("resources=VCPU:1&member_of={a}&member_of={b}")), ["cn2"]);
    assert_eq!(names(&format!("resources=VCPU:1&member_of=!{a}")), ["cn3", "cn4"]);
    assert_eq!(names(&format!("resources=VCPU:1&member_of=!in:{a},{b}")), ["cn4"]);
}

/// cn (MEMORY_MB, DISK_GB) with two NUMA children (VCPU); numa1 has CUSTOM_X.
fn numa() -> Index {
    let mut w = World::default();
    let cn = w.rp("cn", None);
    w.inv(cn, "MEMORY_MB", 2048);
    w.inv(cn, "DISK_GB", 100);
    w.traits(cn, &["CUSTOM_ROOT"]);
    let n0 = w.rp("numa0", Some(cn));
    w.inv(n0, "VCPU", 4);
    let n1 = w.rp("numa1", Some(cn));
    w.inv(n1, "VCPU", 4);
    w.traits(n1, &["CUSTOM_X"]);
    let flat = w.rp("flat", None);
    w.inv(flat, "VCPU", 4);
    w.inv(flat, "MEMORY_MB", 2048);
    w.index()
}

#[test]
fn nested_trees() {
    let idx = numa();
    let (reqs, sums) = ask(&idx, "resources=VCPU:2,MEMORY_MB:512", LATEST);
    assert_eq!(
        reqs,
        vec![
            vec![r("cn", "MEMORY_MB", 512), r("numa0", "VCPU", 2)],
            vec![r("cn", "MEMORY_MB", 512), r("numa1", "VCPU", 2)],
            vec![r("flat", "MEMORY_MB", 512), r("flat", "VCPU", 2)],
        ]
    );
    assert_eq!(sums, set(&["cn", "numa0", "numa1", "flat"]));
    // before 1.29 a candidate takes at most one provider per tree
    let (reqs, sums) = ask(&idx, "resources=VCPU:2,MEMORY_MB:512", (1, 28));
    assert_eq!(reqs, vec![vec![r("flat", "MEMORY_MB", 512), r("flat", "VCPU", 2)]]);
    assert_eq!(sums, set(&["flat"]));
    // the providers of a candidate together have the traits
    let (reqs, _) = ask(&idx, "resources=VCPU:2,MEMORY_MB:512&required=CUSTOM_X", LATEST);
    assert_eq!(reqs, vec![vec![r("cn", "MEMORY_MB", 512), r("numa1", "VCPU", 2)]]);
    let (reqs, _) = ask(&idx, "resources=VCPU:2,MEMORY_MB:512&required=!CUSTOM_X", LATEST);
    assert_eq!(reqs.len(), 2);
    assert!(!reqs.iter().flatten().any(|x| x.0 == "numa1"));
    // a trait on a provider that gives nothing does not count
    let (reqs, _) = ask(&idx, "resources=VCPU:2&required=CUSTOM_ROOT", LATEST);
    assert!(reqs.is_empty());
    let (reqs, _) = ask(&idx, "resources=VCPU:2,MEMORY_MB:1&required=CUSTOM_ROOT", LATEST);
    assert_eq!(reqs.len(), 2);
    // in_tree
    let (reqs, _) = ask(&idx, &format!("resources=VCPU:2&in_tree={}", uuid_of(2)), LATEST);
    assert_eq!(reqs, vec![vec![r("numa0", "VCPU", 2)], vec![r("numa1", "VCPU", 2)]]);
    // root_required picks anchors
    let (reqs, _) = ask(&idx, "resources=VCPU:1&root_required=CUSTOM_ROOT", LATEST);
    assert_eq!(reqs, vec![vec![r("numa0", "VCPU", 1)], vec![r("numa1", "VCPU", 1)]]);
    let (reqs, _) = ask(&idx, "resources=VCPU:1&root_required=!CUSTOM_ROOT", LATEST);
    assert_eq!(reqs, vec![vec![r("flat", "VCPU", 1)]]);
    // more than any provider of the tree has
    let (reqs, _) = ask(&idx, "resources=VCPU:5", LATEST);
    assert!(reqs.is_empty());
}

/// cn (VCPU 8) with two PFs (SRIOV_NET_VF 4 each), pf1 on CUSTOM_PHYSNET_B.
fn sriov() -> Index {
    let mut w = World::default();
    let cn = w.rp("cn", None);
    w.inv(cn, "VCPU", 8);
    let pf0 = w.rp("pf0", Some(cn));
    w.inv(pf0, "SRIOV_NET_VF", 4);
    w.traits(pf0, &["CUSTOM_PHYSNET_A"]);
    let pf1 = w.rp("pf1", Some(cn));
    w.inv(pf1, "SRIOV_NET_VF", 4);
    w.traits(pf1, &["CUSTOM_PHYSNET_B"]);
    w.index()
}

#[test]
fn granular_groups() {
    let idx = sriov();
    let q = "resources=VCPU:1&resources1=SRIOV_NET_VF:1&resources2=SRIOV_NET_VF:1";
    let (reqs, sums) = ask(&idx, &format!("{q}&group_policy=isolate"), LATEST);
    assert_eq!(
        reqs,
        vec![
            vec![r("cn", "VCPU", 1), r("pf0", "SRIOV_NET_VF", 1), r("pf1", "SRIOV_NET_VF", 1)],
            vec![r("cn", "VCPU", 1), r("pf0", "SRIOV_NET_VF", 1), r("pf1", "SRIOV_NET_VF", 1)],
        ],
        "two mappings: group 1 on pf0 and on pf1"
    );
    assert_eq!(sums, set(&["cn", "pf0", "pf1"]));
    let (reqs, _) = ask(&idx, &format!("{q}&group_policy=none"), LATEST);
    assert_eq!(
        reqs,
        vec![
            vec![r("cn", "VCPU", 1), r("pf0", "SRIOV_NET_VF", 1), r("pf1", "SRIOV_NET_VF", 1)],
            vec![r("cn", "VCPU", 1), r("pf0", "SRIOV_NET_VF", 1), r("pf1", "SRIOV_NET_VF", 1)],
            vec![r("cn", "VCPU", 1), r("pf0", "SRIOV_NET_VF", 2)],
            vec![r("cn", "VCPU", 1), r("pf1", "SRIOV_NET_VF", 2)],
        ]
    );
    let (reqs, _) = ask(&idx, &format!("{q}&required1=CUSTOM_PHYSNET_B&group_policy=isolate"), LATEST);
    assert_eq!(reqs, vec![vec![r("cn", "VCPU", 1), r("pf0", "SRIOV_NET_VF", 1), r("pf1", "SRIOV_NET_VF", 1)]]);
    let (reqs, _) =
        ask(&idx, &format!("{q}&required1=CUSTOM_PHYSNET_B&required2=CUSTOM_PHYSNET_B&group_policy=isolate"), LATEST);
    assert!(reqs.is_empty());
    let (reqs, _) =
        ask(&idx, &format!("{q}&required1=CUSTOM_PHYSNET_B&required2=!CUSTOM_PHYSNET_A&group_policy=none"), LATEST);
    assert_eq!(reqs, vec![vec![r("cn", "VCPU", 1), r("pf1", "SRIOV_NET_VF", 2)]]);
    // summed amounts must fit: 3 + 3 > 4 on one PF
    let (reqs, _) = ask(&idx, "resources1=SRIOV_NET_VF:3&resources2=SRIOV_NET_VF:3&group_policy=none", LATEST);
    assert_eq!(
        reqs,
        vec![
            vec![r("pf0", "SRIOV_NET_VF", 3), r("pf1", "SRIOV_NET_VF", 3)],
            vec![r("pf0", "SRIOV_NET_VF", 3), r("pf1", "SRIOV_NET_VF", 3)],
        ]
    );
}

#[test]
fn mappings_name_the_groups() {
    let idx = sriov();
    let pairs: Vec<(String, String)> =
        [("resources", "VCPU:1"), ("resources_NET", "SRIOV_NET_VF:1"), ("required_NET", "CUSTOM_PHYSNET_A")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let req = query::candidate_request(&pairs, Microversion(1, 39)).unwrap();
    let found = search(&idx, &req).unwrap();
    assert_eq!(found.requests.len(), 1);
    let m = &found.requests[0].mappings;
    let name = |g: usize| req.groups[g].suffix.clone();
    let shown: Vec<(String, Vec<String>)> =
        m.iter().map(|(g, ps)| (name(*g), ps.iter().map(|p| idx.get(*p).unwrap().name.clone()).collect())).collect();
    assert_eq!(shown, vec![("".to_string(), vec!["cn".to_string()]), ("_NET".to_string(), vec!["pf0".to_string()])]);
}

#[test]
fn same_subtree() {
    let mut w = World::default();
    let cn = w.rp("cn", None);
    let n0 = w.rp("numa0", Some(cn));
    w.inv(n0, "VCPU", 4);
    let n1 = w.rp("numa1", Some(cn));
    w.inv(n1, "VCPU", 4);
    let pf0 = w.rp("pf0", Some(n0));
    w.inv(pf0, "SRIOV_NET_VF", 4);
    let pf1 = w.rp("pf1", Some(n1));
    w.inv(pf1, "SRIOV_NET_VF", 4);
    w.traits(pf1, &["CUSTOM_FAST"]);
    let idx = w.index();
    let q = "resources1=VCPU:1&resources2=SRIOV_NET_VF:1&group_policy=none";
    let (reqs, _) = ask(&idx, q, LATEST);
    assert_eq!(reqs.len(), 4);
    let (reqs, _) = ask(&idx, &format!("{q}&same_subtree=1,2"), LATEST);
    assert_eq!(
        reqs,
        vec![
            vec![r("numa0", "VCPU", 1), r("pf0", "SRIOV_NET_VF", 1)],
            vec![r("numa1", "VCPU", 1), r("pf1", "SRIOV_NET_VF", 1)],
        ]
    );
    // a resourceless group: the NUMA node above a fast PF
    let (reqs, _) = ask(
        &idx,
        "resources1=VCPU:1&required2=CUSTOM_FAST&resources3=SRIOV_NET_VF:1&same_subtree=1,2,3&group_policy=none",
        LATEST,
    );
    assert_eq!(reqs, vec![vec![r("numa1", "VCPU", 1), r("pf1", "SRIOV_NET_VF", 1)]]);
}

#[test]
fn limit_keeps_the_first() {
    let mut w = World::default();
    for i in 0..5 {
        let id = w.rp(&format!("cn{i}"), None);
        w.inv(id, "VCPU", 4);
    }
    let idx = w.index();
    let (reqs, sums) = ask(&idx, "resources=VCPU:1&limit=2", LATEST);
    assert_eq!(reqs, vec![vec![r("cn0", "VCPU", 1)], vec![r("cn1", "VCPU", 1)]]);
    assert_eq!(sums, set(&["cn0", "cn1"]));
}

#[test]
fn sharing_providers() {
    let mut w = World::default();
    let agg = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
    let cn1 = w.rp("cn1", None);
    w.inv(cn1, "VCPU", 4);
    w.aggs(cn1, &[agg]);
    let cn2 = w.rp("cn2", None);
    w.inv(cn2, "VCPU", 4);
    let ss = w.rp("ss", None);
    w.inv(ss, "DISK_GB", 100);
    w.traits(ss, &[standard::MISC_SHARES_VIA_AGGREGATE]);
    w.aggs(ss, &[agg]);
    let idx = w.index();
    let (reqs, sums) = ask(&idx, "resources=VCPU:1,DISK_GB:10", LATEST);
    assert_eq!(reqs, vec![vec![r("cn1", "VCPU", 1), r("ss", "DISK_GB", 10)]]);
    assert_eq!(sums, set(&["cn1", "ss"]));
    let (reqs, _) = ask(&idx, "resources=DISK_GB:10", LATEST);
    assert_eq!(reqs, vec![vec![r("ss", "DISK_GB", 10)]]);
}

#[test]
fn unknown_names_are_errors() {
    let idx = flat();
    let bad = |qs: &str| {
        let pairs: Vec<(String, String)> = qs
            .split('&')
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect();
        let req = query::candidate_request(&pairs, Microversion(1, 39)).unwrap();
        search(&idx, &req).unwrap_err().to_string()
    };
    assert_eq!(bad("resources=CUSTOM_NOPE:1"), "No such resource class CUSTOM_NOPE.");
    assert_eq!(bad("resources=VCPU:1&required=CUSTOM_NOPE"), "No such trait(s): CUSTOM_NOPE.");
    assert_eq!(bad("resources=VCPU:1&root_required=CUSTOM_NOPE"), "No such trait(s): CUSTOM_NOPE.");
}

#[test]
fn product_order() {
    let lists = vec![vec![1, 2], vec![3], vec![4, 5]];
    let all: Vec<Vec<i32>> = Product::new(&lists).map(|v| v.into_iter().copied().collect()).collect();
    assert_eq!(all, vec![vec![1, 3, 4], vec![1, 3, 5], vec![2, 3, 4], vec![2, 3, 5]]);
    assert_eq!(Product::new(&[Vec::<i32>::new()]).count(), 0);
    assert_eq!(Product::<i32>::new(&[]).count(), 1);
}

#[test]
fn the_shortcut_answers_as_the_general_path() {
    let worlds = [flat(), numa(), sriov()];
    let queries = [
        "resources=VCPU:1",
        "resources=VCPU:1,MEMORY_MB:512",
        "resources=VCPU:4&limit=1",
        "resources=VCPU:1&required=HW_CPU_X86_AVX2",
        "resources=VCPU:1&required=!HW_CPU_X86_AVX2",
        "resources=VCPU:1&required=in:HW_CPU_X86_AVX2,HW_CPU_X86_SSE",
        "resources1=VCPU:1",
        "resources1=VCPU:1&required1=CUSTOM_X",
        "resources1=SRIOV_NET_VF:2&limit=1",
        "resources=VCPU:1&root_required=CUSTOM_ROOT",
        "resources_A=VCPU:1&root_required=!CUSTOM_ROOT",
    ];
    for (w, idx) in worlds.iter().enumerate() {
        for q in queries {
            for mv in [(1, 28), (1, 39)] {
                let pairs: Vec<(String, String)> = q
                    .split('&')
                    .map(|p| {
                        let (k, v) = p.split_once('=').unwrap();
                        (k.to_string(), v.to_string())
                    })
                    .collect();
                let Ok(req) = query::candidate_request(&pairs, Microversion(mv.0, mv.1)) else { continue };
                let fast = search_with(idx, &req, true);
                let slow = search_with(idx, &req, false);
                match (fast, slow) {
                    (Ok(f), Ok(s)) => {
                        assert_eq!(f.requests, s.requests, "world {w}: {q} at {mv:?}");
                        assert_eq!(f.summaries, s.summaries, "world {w}: {q} at {mv:?}");
                    }
                    (Err(f), Err(s)) => assert_eq!(f.to_string(), s.to_string()),
                    (f, s) => panic!("world {w}: {q}: {f:?} vs {s:?}"),
                }
            }
        }
    }
}
