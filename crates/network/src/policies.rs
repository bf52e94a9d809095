//! Neutron's default policy rules (the secure-RBAC defaults of
//! `neutron/conf/policies/*.py`), as data for the shared policy engine.
//!
//! Targets carry `project_id` (the resource's owner). What a project may *see*
//! (its own, shared and external networks...) is decided in the store's
//! queries, so `get_*` rules here guard the admin-only attributes and the
//! resources without a sharing rule.

#[rustfmt::skip]
pub const BASE_RULES: &[(&str, &str)] = &[
    ("context_is_admin", "role:admin"),
    ("admin_only", "rule:context_is_admin"),
    ("service_api", "role:service"),
    ("project_member", "role:member and project_id:%(project_id)s"),
    ("project_reader", "role:reader and project_id:%(project_id)s"),
    ("admin_or_project_member", "rule:context_is_admin or rule:project_member"),
    ("admin_or_project_reader", "rule:context_is_admin or rule:project_reader"),
    ("admin_or_service", "rule:context_is_admin or rule:service_api"),
    ("admin_or_project_member_or_service", "rule:admin_or_project_member or rule:service_api"),
    ("admin_or_project_reader_or_service", "rule:admin_or_project_reader or rule:service_api"),
];

#[rustfmt::skip]
pub const NETWORK_RULES: &[(&str, &str)] = &[
    ("create_network", "rule:admin_or_project_member"),
    ("create_network:shared", "rule:admin_only"),
    ("create_network:router:external", "rule:admin_only"),
    ("create_network:is_default", "rule:admin_only"),
    ("create_network:port_security_enabled", "rule:admin_or_project_member"),
    ("create_network:segments", "rule:admin_only"),
    ("create_network:provider:network_type", "rule:admin_only"),
    ("create_network:provider:physical_network", "rule:admin_only"),
    ("create_network:provider:segmentation_id", "rule:admin_only"),
    ("get_network", "rule:admin_or_project_reader_or_service"),
    ("get_network:segments", "rule:admin_only"),
    ("get_network:provider:network_type", "rule:admin_or_service"),
    ("get_network:provider:physical_network", "rule:admin_or_service"),
    ("get_network:provider:segmentation_id", "rule:admin_or_service"),
    ("update_network", "rule:admin_or_project_member"),
    ("update_network:shared", "rule:admin_only"),
    ("update_network:router:external", "rule:admin_only"),
    ("update_network:is_default", "rule:admin_only"),
    ("update_network:port_security_enabled", "rule:admin_or_project_member"),
    ("update_network:segments", "rule:admin_only"),
    ("update_network:provider:network_type", "rule:admin_only"),
    ("update_network:provider:physical_network", "rule:admin_only"),
    ("update_network:provider:segmentation_id", "rule:admin_only"),
    ("delete_network", "rule:admin_or_project_member"),
];

#[rustfmt::skip]
pub const QUOTA_RULES: &[(&str, &str)] = &[
    ("get_quota", "rule:admin_or_project_reader"),
    ("update_quota", "rule:admin_only"),
    ("delete_quota", "rule:admin_only"),
];

/// Every default rule of the network API (each resource family adds its list).
pub fn all_rules() -> Vec<(&'static str, &'static str)> {
    let mut v = Vec::new();
    for list in [BASE_RULES, NETWORK_RULES, QUOTA_RULES] {
        v.extend_from_slice(list);
    }
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_rule_parses() {
        let mut e = stratus_policy::Enforcer::new();
        e.register_defaults(&super::all_rules()).unwrap();
    }
}
