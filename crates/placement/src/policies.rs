//! Placement's default policy rules, as data for the shared policy engine.
//!
//! These restate the secure-RBAC defaults placement registers in
//! `placement/policies/*.py`: everything needs the `admin` or the `service`
//! role, except `GET /usages`, which a reader of the project asked about may
//! also call, and `POST /reshaper`, which is the service's alone. The target of
//! every rule is `{"project_id": <caller's project>}`, except
//! `placement:usages`, whose target is `{"project_id": <the project_id query
//! parameter>}`.

pub const RP_LIST: &str = "placement:resource_providers:list";
pub const RP_CREATE: &str = "placement:resource_providers:create";
pub const RP_SHOW: &str = "placement:resource_providers:show";
pub const RP_UPDATE: &str = "placement:resource_providers:update";
pub const RP_DELETE: &str = "placement:resource_providers:delete";
pub const INV_LIST: &str = "placement:resource_providers:inventories:list";
pub const INV_CREATE: &str = "placement:resource_providers:inventories:create";
pub const INV_SHOW: &str = "placement:resource_providers:inventories:show";
pub const INV_UPDATE: &str = "placement:resource_providers:inventories:update";
pub const INV_DELETE: &str = "placement:resource_providers:inventories:delete";
pub const AGG_LIST: &str = "placement:resource_providers:aggregates:list";
pub const AGG_UPDATE: &str = "placement:resource_providers:aggregates:update";
pub const RP_TRAIT_LIST: &str = "placement:resource_providers:traits:list";
pub const RP_TRAIT_UPDATE: &str = "placement:resource_providers:traits:update";
pub const RP_TRAIT_DELETE: &str = "placement:resource_providers:traits:delete";
pub const RP_ALLOC_LIST: &str = "placement:resource_providers:allocations:list";
pub const RP_USAGES: &str = "placement:resource_providers:usages";
pub const RC_LIST: &str = "placement:resource_classes:list";
pub const RC_CREATE: &str = "placement:resource_classes:create";
pub const RC_SHOW: &str = "placement:resource_classes:show";
pub const RC_UPDATE: &str = "placement:resource_classes:update";
pub const RC_DELETE: &str = "placement:resource_classes:delete";
pub const TRAITS_LIST: &str = "placement:traits:list";
pub const TRAITS_SHOW: &str = "placement:traits:show";
pub const TRAITS_UPDATE: &str = "placement:traits:update";
pub const TRAITS_DELETE: &str = "placement:traits:delete";
pub const ALLOC_LIST: &str = "placement:allocations:list";
pub const ALLOC_MANAGE: &str = "placement:allocations:manage";
pub const ALLOC_UPDATE: &str = "placement:allocations:update";
pub const ALLOC_DELETE: &str = "placement:allocations:delete";
pub const CANDIDATES_LIST: &str = "placement:allocation_candidates:list";
pub const TOTAL_USAGES: &str = "placement:usages";
pub const RESHAPE: &str = "placement:reshaper:reshape";

const ADMIN_OR_SERVICE: &str = "rule:admin_or_service_api";

#[rustfmt::skip]
pub const DEFAULT_RULES: &[(&str, &str)] = &[
    // base.py
    ("admin_api", "role:admin"),
    ("service_api", "role:service"),
    ("admin_or_service_api", "role:admin or role:service"),
    ("project_reader_api", "role:reader and project_id:%(project_id)s"),
    ("admin_or_project_reader_or_service_api", "role:admin or rule:project_reader_api or role:service"),
    // resource_provider.py
    (RP_LIST, ADMIN_OR_SERVICE),
    (RP_CREATE, ADMIN_OR_SERVICE),
    (RP_SHOW, ADMIN_OR_SERVICE),
    (RP_UPDATE, ADMIN_OR_SERVICE),
    (RP_DELETE, ADMIN_OR_SERVICE),
    // inventory.py
    (INV_LIST, ADMIN_OR_SERVICE),
    (INV_CREATE, ADMIN_OR_SERVICE),
    (INV_SHOW, ADMIN_OR_SERVICE),
    (INV_UPDATE, ADMIN_OR_SERVICE),
    (INV_DELETE, ADMIN_OR_SERVICE),
    // aggregate.py
    (AGG_LIST, ADMIN_OR_SERVICE),
    (AGG_UPDATE, ADMIN_OR_SERVICE),
    // trait.py
    (TRAITS_LIST, ADMIN_OR_SERVICE),
    (TRAITS_SHOW, ADMIN_OR_SERVICE),
    (TRAITS_UPDATE, ADMIN_OR_SERVICE),
    (TRAITS_DELETE, ADMIN_OR_SERVICE),
    (RP_TRAIT_LIST, ADMIN_OR_SERVICE),
    (RP_TRAIT_UPDATE, ADMIN_OR_SERVICE),
    (RP_TRAIT_DELETE, ADMIN_OR_SERVICE),
    // resource_class.py
    (RC_LIST, ADMIN_OR_SERVICE),
    (RC_CREATE, ADMIN_OR_SERVICE),
    (RC_SHOW, ADMIN_OR_SERVICE),
    (RC_UPDATE, ADMIN_OR_SERVICE),
    (RC_DELETE, ADMIN_OR_SERVICE),
    // allocation.py
    (ALLOC_MANAGE, ADMIN_OR_SERVICE),
    (ALLOC_LIST, ADMIN_OR_SERVICE),
    (ALLOC_UPDATE, ADMIN_OR_SERVICE),
    (ALLOC_DELETE, ADMIN_OR_SERVICE),
    (RP_ALLOC_LIST, ADMIN_OR_SERVICE),
    // allocation_candidate.py
    (CANDIDATES_LIST, ADMIN_OR_SERVICE),
    // usage.py
    (RP_USAGES, ADMIN_OR_SERVICE),
    (TOTAL_USAGES, "rule:admin_or_project_reader_or_service_api"),
    // reshaper.py
    (RESHAPE, "rule:service_api"),
];

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn enforcer() -> stratus_policy::Enforcer {
        let mut e = stratus_policy::Enforcer::new();
        e.register_defaults(DEFAULT_RULES).unwrap();
        e
    }

    #[test]
    fn defaults() {
        let e = enforcer();
        assert!(e.dangling_references().is_empty());
        let admin = json!({"roles": ["admin"], "project_id": "p"});
        let service = json!({"roles": ["service"], "project_id": "s"});
        let reader = json!({"roles": ["reader"], "project_id": "p"});
        let target = json!({"project_id": "p"});
        assert!(e.enforce(RP_CREATE, &target, &admin));
        assert!(e.enforce(RP_CREATE, &target, &service));
        assert!(!e.enforce(RP_CREATE, &target, &reader));
        assert!(e.enforce(TOTAL_USAGES, &target, &reader));
        assert!(!e.enforce(TOTAL_USAGES, &json!({"project_id": "q"}), &reader));
        assert!(!e.enforce(RESHAPE, &target, &admin));
        assert!(e.enforce(RESHAPE, &target, &service));
    }
}
