//! The typed placement client of `stratus-clients` against the real router.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use stratus_clients::placement::{ApiFailure, CandidateQuery, Inventory, PlacementClient, RequestGroup, TokenSource};

fn token() -> TokenSource {
    Arc::new(|| Box::pin(async { Ok(common::SERVICE.to_string()) }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_round_trip() {
    for s in common::servers().await {
        let c = PlacementClient::new(&s.url, token()).unwrap();
        let cn = "a1000000-0000-4000-8000-000000000001";
        let pf = "a1000000-0000-4000-8000-000000000002";
        assert_eq!(c.get_provider(cn).await.unwrap(), None);
        let p = c.ensure_provider(cn, "compute-1", None).await.unwrap();
        assert_eq!(p.root_provider_uuid, cn);
        let again = c.ensure_provider(cn, "compute-1", None).await.unwrap();
        assert_eq!(again, p);
        let child = c.ensure_provider(pf, "compute-1_pf0", Some(cn)).await.unwrap();
        assert_eq!(child.parent_provider_uuid.as_deref(), Some(cn));

        let invs = BTreeMap::from([
            ("VCPU".to_string(), Inventory { allocation_ratio: 4.0, ..Inventory::new(4) }),
            ("MEMORY_MB".to_string(), Inventory::new(4096)),
        ]);
        let g = c.set_inventories(cn, &invs).await.unwrap();
        assert_eq!(g, 1);
        c.set_inventories(pf, &BTreeMap::from([("SRIOV_NET_VF".to_string(), Inventory::new(8))])).await.unwrap();
        let g = c.set_traits(cn, &["HW_CPU_X86_AVX2".into(), "CUSTOM_GOLD".into()]).await.unwrap();
        assert_eq!(g, 2);
        c.set_traits(pf, &["CUSTOM_PHYSNET_PUBLIC".into()]).await.unwrap();
        let g = c.set_aggregates(cn, &["b1000000-0000-4000-8000-000000000001".into()]).await.unwrap();
        assert_eq!(g, 3);

        // candidates, typed
        let mut q = CandidateQuery::resources(&[("VCPU", 2), ("MEMORY_MB", 1024)]);
        q.group.required = vec!["CUSTOM_GOLD".into()];
        q.groups.insert(
            "_NET".into(),
            RequestGroup {
                resources: BTreeMap::from([("SRIOV_NET_VF".to_string(), 1)]),
                required: vec!["CUSTOM_PHYSNET_PUBLIC".into()],
                ..Default::default()
            },
        );
        q.group_policy = Some("isolate".into());
        q.limit = Some(10);
        let cands = c.allocation_candidates(&q).await.unwrap();
        assert_eq!(cands.allocation_requests.len(), 1, "{cands:?}");
        let pick = &cands.allocation_requests[0];
        assert_eq!(pick.mappings["_NET"], vec![pf.to_string()]);
        assert_eq!(cands.provider_summaries[cn].resources["VCPU"].capacity, 16);
        assert_eq!(cands.provider_summaries[pf].parent_provider_uuid.as_deref(), Some(cn));
        assert!(cands.provider_summaries[cn].traits.contains(&"CUSTOM_GOLD".to_string()));

        // claim it; a second claim for the same new consumer conflicts
        let vm = "c1000000-0000-4000-8000-000000000001";
        assert!(c.claim(vm, &pick.amounts(), "proj", "user", None).await.unwrap());
        assert!(!c.claim(vm, &pick.amounts(), "proj", "user", None).await.unwrap());
        let a = c.get_allocations(vm).await.unwrap();
        assert_eq!(a.consumer_generation, Some(1));
        assert_eq!(a.consumer_type.as_deref(), Some("INSTANCE"));
        assert_eq!(a.allocations[cn].resources["VCPU"], 2);
        // no room for 15 more VCPU
        let too_much = BTreeMap::from([(cn.to_string(), BTreeMap::from([("VCPU".to_string(), 15)]))]);
        assert!(!c.claim("c1000000-0000-4000-8000-000000000002", &too_much, "proj", "user", None).await.unwrap());
        let u = c.usages("proj", None).await.unwrap();
        assert_eq!(u.total["VCPU"], 2);
        assert_eq!(u.by_consumer_type["INSTANCE"].consumer_count, 1);
        assert_eq!(c.usages("proj", Some("someone-else")).await.unwrap().total.get("VCPU"), None);

        // resize: move to a migration record and back
        let migration = "d1000000-0000-4000-8000-000000000001";
        assert!(c.move_allocations(vm, migration).await.unwrap());
        assert!(c.get_allocations(vm).await.unwrap().allocations.is_empty());
        let m = c.get_allocations(migration).await.unwrap();
        assert_eq!(m.allocations[cn].resources["VCPU"], 2);
        assert_eq!(m.consumer_type.as_deref(), Some("MIGRATION"));
        assert_eq!(c.usages("proj", None).await.unwrap().by_consumer_type["MIGRATION"].resources["VCPU"], 2);
        assert!(c.move_allocations(migration, vm).await.unwrap());
        assert_eq!(c.get_allocations(vm).await.unwrap().consumer_type.as_deref(), Some("INSTANCE"));
        assert!(c.move_allocations(migration, vm).await.unwrap(), "nothing left to move");

        // errors are typed
        let e = c.delete_provider(cn).await.unwrap_err();
        let f = e.downcast_ref::<ApiFailure>().unwrap();
        assert_eq!(f.status, 409);
        assert_eq!(f.code, "placement.resource_provider.cannot_delete_parent");
        let e = c.set_inventories(pf, &BTreeMap::new()).await.unwrap_err();
        assert_eq!(e.downcast_ref::<ApiFailure>().unwrap().code, "placement.inventory.inuse");

        assert!(c.delete_allocations(vm).await.unwrap());
        assert!(!c.delete_allocations(vm).await.unwrap());
        assert!(c.delete_provider(pf).await.unwrap());
        assert!(c.delete_provider(cn).await.unwrap());
        assert!(!c.delete_provider(cn).await.unwrap());
    }
}

/// Generation conflicts are retried: concurrent writers all get through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn client_retries_generation_conflicts() {
    for s in common::servers().await {
        let c = Arc::new(PlacementClient::new(&s.url, token()).unwrap());
        let cn = "a2000000-0000-4000-8000-000000000001";
        c.ensure_provider(cn, "cn", None).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..4 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                let invs = BTreeMap::from([("VCPU".to_string(), Inventory::new(4 + i))]);
                c.set_inventories(cn, &invs).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(c.get_provider(cn).await.unwrap().unwrap().generation, 4);
    }
}
