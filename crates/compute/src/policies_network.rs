//! Nova's default policy rules for its network proxies (floating IPs and
//! their pools, security groups and their rules, networks): the
//! secure-RBAC defaults of `nova/policies/{floating_ip_pools,floating_ips,
//! security_groups,networks,tenant_networks}.py`.
//!
//! Targets: `project_id`, the caller's project (the server's owner for the
//! server actions and a server's groups).

#[rustfmt::skip]
pub const NETWORK_PROXY_RULES: &[(&str, &str)] = &[
    ("os_compute_api:os-floating-ip-pools", "@"),
    ("os_compute_api:os-floating-ips:list", "rule:project_reader_or_admin"),
    ("os_compute_api:os-floating-ips:show", "rule:project_reader_or_admin"),
    ("os_compute_api:os-floating-ips:create", "rule:project_member_or_admin"),
    ("os_compute_api:os-floating-ips:delete", "rule:project_member_or_admin"),
    ("os_compute_api:os-floating-ips:add", "rule:project_member_or_admin"),
    ("os_compute_api:os-floating-ips:remove", "rule:project_member_or_admin"),
    ("os_compute_api:os-security-groups:get", "rule:project_reader_or_admin"),
    ("os_compute_api:os-security-groups:show", "rule:project_reader_or_admin"),
    ("os_compute_api:os-security-groups:create", "rule:project_member_or_admin"),
    ("os_compute_api:os-security-groups:update", "rule:project_member_or_admin"),
    ("os_compute_api:os-security-groups:delete", "rule:project_member_or_admin"),
    ("os_compute_api:os-security-groups:rule:create", "rule:project_member_or_admin"),
    ("os_compute_api:os-security-groups:rule:delete", "rule:project_member_or_admin"),
    ("os_compute_api:os-security-groups:list", "rule:project_reader_or_admin"),
    ("os_compute_api:os-security-groups:add", "rule:project_member_or_admin"),
    ("os_compute_api:os-security-groups:remove", "rule:project_member_or_admin"),
    ("os_compute_api:os-networks:list", "rule:project_reader_or_admin"),
    ("os_compute_api:os-networks:show", "rule:project_reader_or_admin"),
    ("os_compute_api:os-tenant-networks:list", "rule:project_reader_or_admin"),
    ("os_compute_api:os-tenant-networks:show", "rule:project_reader_or_admin"),
];
