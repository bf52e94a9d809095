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

#[rustfmt::skip]
pub const SECURITY_GROUP_RULES: &[(&str, &str)] = &[
    ("create_security_group", "rule:admin_or_project_member"),
    ("get_security_group", "rule:admin_or_project_reader"),
    ("update_security_group", "rule:admin_or_project_member"),
    ("delete_security_group", "rule:admin_or_project_member"),
    ("create_security_group_rule", "rule:admin_or_project_member"),
    ("get_security_group_rule", "rule:admin_or_project_reader"),
    ("delete_security_group_rule", "rule:admin_or_project_member"),
];

#[rustfmt::skip]
pub const SUBNET_RULES: &[(&str, &str)] = &[
    ("network_owner", "project_id:%(network:tenant_id)s"),
    ("admin_or_network_owner", "rule:context_is_admin or (role:member and rule:network_owner)"),
    ("create_subnet", "rule:context_is_admin or (role:member and rule:network_owner)"),
    ("create_subnet:segment_id", "rule:admin_only"),
    ("create_subnet:service_types", "rule:admin_only"),
    ("get_subnet", "rule:admin_or_project_reader_or_service"),
    ("update_subnet", "rule:context_is_admin or (role:member and rule:network_owner)"),
    ("update_subnet:segment_id", "rule:admin_only"),
    ("update_subnet:service_types", "rule:admin_only"),
    ("delete_subnet", "rule:context_is_admin or (role:member and rule:network_owner)"),
    ("create_subnetpool", "rule:admin_or_project_member"),
    ("create_subnetpool:shared", "rule:admin_only"),
    ("create_subnetpool:is_default", "rule:admin_only"),
    ("get_subnetpool", "rule:admin_or_project_reader"),
    ("update_subnetpool", "rule:admin_or_project_member"),
    ("update_subnetpool:is_default", "rule:admin_only"),
    ("delete_subnetpool", "rule:admin_or_project_member"),
    ("get_network_ip_availability", "rule:admin_only"),
    ("create_address_scope", "rule:admin_or_project_member"),
    ("create_address_scope:shared", "rule:admin_only"),
    ("get_address_scope", "rule:admin_or_project_reader"),
    ("update_address_scope", "rule:admin_or_project_member"),
    ("update_address_scope:shared", "rule:admin_only"),
    ("delete_address_scope", "rule:admin_or_project_member"),
    ("get_auto_allocated_topology", "rule:admin_or_project_reader"),
    ("delete_auto_allocated_topology", "rule:admin_or_project_member"),
];

#[rustfmt::skip]
pub const PORT_RULES: &[(&str, &str)] = &[
    ("create_port", "rule:admin_or_project_member or rule:service_api"),
    ("create_port:device_owner", "rule:admin_or_project_member or rule:service_api"),
    ("create_port:mac_address", "rule:context_is_admin or rule:service_api or (role:member and rule:network_owner)"),
    ("create_port:fixed_ips:ip_address", "rule:context_is_admin or rule:service_api or (role:member and rule:network_owner)"),
    ("create_port:fixed_ips:subnet_id", "rule:admin_or_project_member or rule:service_api"),
    ("create_port:port_security_enabled", "rule:context_is_admin or rule:service_api or (role:member and rule:network_owner)"),
    ("create_port:binding:host_id", "rule:admin_or_service"),
    ("create_port:binding:profile", "rule:admin_or_service"),
    ("create_port:binding:vnic_type", "rule:admin_or_project_member or rule:service_api"),
    ("create_port:allowed_address_pairs", "rule:context_is_admin or (role:member and rule:network_owner) or rule:project_member"),
    ("get_port", "rule:admin_or_project_reader_or_service"),
    ("get_port:binding:vif_type", "rule:admin_or_service"),
    ("get_port:binding:vif_details", "rule:admin_or_service"),
    ("get_port:binding:host_id", "rule:admin_or_service"),
    ("get_port:binding:profile", "rule:admin_or_service"),
    ("update_port", "rule:admin_or_project_member or rule:service_api"),
    ("update_port:mac_address", "rule:admin_or_service"),
    ("update_port:fixed_ips:ip_address", "rule:context_is_admin or rule:service_api or (role:member and rule:network_owner)"),
    ("update_port:port_security_enabled", "rule:context_is_admin or rule:service_api or (role:member and rule:network_owner)"),
    ("update_port:binding:host_id", "rule:admin_or_service"),
    ("update_port:binding:profile", "rule:admin_or_service"),
    ("update_port:binding:vnic_type", "rule:admin_or_project_member or rule:service_api"),
    ("update_port:allowed_address_pairs", "rule:context_is_admin or (role:member and rule:network_owner) or rule:project_member"),
    ("delete_port", "rule:admin_or_project_member or rule:service_api or (role:member and rule:network_owner)"),
];

#[rustfmt::skip]
pub const RBAC_RULES: &[(&str, &str)] = &[
    ("create_rbac_policy", "rule:admin_or_project_member"),
    ("get_rbac_policy", "rule:admin_or_project_reader"),
    ("update_rbac_policy", "rule:admin_or_project_member"),
    ("delete_rbac_policy", "rule:admin_or_project_member"),
];

#[rustfmt::skip]
pub const AGENT_RULES: &[(&str, &str)] = &[
    ("get_agent", "rule:admin_only"),
    ("update_agent", "rule:admin_only"),
    ("delete_agent", "rule:admin_only"),
    ("get_l3-agents", "rule:admin_only"),
    ("get_l3-routers", "rule:admin_only"),
    ("create_l3-router", "rule:admin_only"),
    ("delete_l3-router", "rule:admin_only"),
    ("get_availability_zone", "rule:context_is_admin or role:reader"),
];

#[rustfmt::skip]
pub const ROUTER_RULES: &[(&str, &str)] = &[
    ("create_router", "rule:admin_or_project_member"),
    ("create_router:external_gateway_info", "rule:admin_or_project_member"),
    ("create_router:external_gateway_info:network_id", "rule:admin_or_project_member"),
    ("create_router:external_gateway_info:enable_snat", "rule:admin_only"),
    ("create_router:external_gateway_info:external_fixed_ips", "rule:admin_only"),
    ("create_router:ha", "rule:admin_only"),
    ("get_router", "rule:admin_or_project_reader"),
    ("get_router:ha", "rule:admin_only"),
    ("update_router:ha", "rule:admin_only"),
    ("update_router", "rule:admin_or_project_member"),
    ("update_router:external_gateway_info", "rule:admin_or_project_member"),
    ("update_router:external_gateway_info:network_id", "rule:admin_or_project_member"),
    ("update_router:external_gateway_info:enable_snat", "rule:admin_only"),
    ("update_router:external_gateway_info:external_fixed_ips", "rule:admin_only"),
    ("delete_router", "rule:admin_or_project_member"),
    ("add_router_interface", "rule:admin_or_project_member"),
    ("remove_router_interface", "rule:admin_or_project_member"),
    ("add_extraroutes", "rule:admin_or_project_member"),
    ("remove_extraroutes", "rule:admin_or_project_member"),
    ("create_floatingip", "rule:admin_or_project_member"),
    ("create_floatingip:floating_ip_address", "rule:admin_only"),
    ("get_floatingip", "rule:admin_or_project_reader"),
    ("update_floatingip", "rule:admin_or_project_member"),
    ("delete_floatingip", "rule:admin_or_project_member"),
    ("create_floatingip_port_forwarding", "rule:admin_or_project_member"),
    ("get_floatingip_port_forwarding", "rule:admin_or_project_reader"),
    ("update_floatingip_port_forwarding", "rule:admin_or_project_member"),
    ("delete_floatingip_port_forwarding", "rule:admin_or_project_member"),
];

/// Every default rule of the network API (each resource family adds its list).
pub fn all_rules() -> Vec<(&'static str, &'static str)> {
    let mut v = Vec::new();
    for list in [BASE_RULES, NETWORK_RULES, QUOTA_RULES, SUBNET_RULES, PORT_RULES] {
        v.extend_from_slice(list);
    }
    v.extend_from_slice(SECURITY_GROUP_RULES);
    v.extend_from_slice(RBAC_RULES);
    v.extend_from_slice(AGENT_RULES);
    v.extend_from_slice(ROUTER_RULES);
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
