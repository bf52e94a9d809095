//! `GET /v2.0/extensions[/{alias}]`: exactly the extensions this API implements
//! (Tempest's `api_extensions` must be this list).

use axum::Router;
use axum::extract::Path;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use crate::State;
use crate::api::ok;
use crate::error::{Result, not_found};

/// (alias, name, description) of every extension served; each resource
/// family adds the extensions it implements.
pub const EXTENSIONS: &[(&str, &str, &str)] = &[
    ("network", "Neutron L2 network", "Networks as the core API defines them"),
    ("external-net", "Neutron external network", "Adds external network attribute to network resource."),
    ("provider", "Provider Network", "Expose mapping of virtual networks to physical networks"),
    ("net-mtu", "Network MTU", "Provides MTU attribute for a network resource."),
    ("net-mtu-writable", "Network MTU (writable)", "Provides a writable MTU attribute for a network resource."),
    ("port-security", "Port Security", "Provides port security"),
    ("standard-attr-description", "standard-attr-description", "Extension to add descriptions to standard attributes"),
    (
        "standard-attr-timestamp",
        "Resource timestamps",
        "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes.",
    ),
    (
        "standard-attr-revisions",
        "Resource revision numbers",
        "This extension will display the revision number of neutron resources.",
    ),
    (
        "standard-attr-tag",
        "Tag support for resources with standard attribute: subnet, trunk, network_segment_range, router, network, policy, subnetpool, port, security_group, floatingip",
        "Enables to set tag on resources with standard attribute.",
    ),
    (
        "revision-if-match",
        "If-Match constraints based on revision_number",
        "Extension indicating that If-Match based on revision_number is supported.",
    ),
    ("filter-validation", "Filter parameters validation", "Provides validation on filter parameters."),
    ("fields-params", "fields-params", "Extension to support fields parameters in list requests"),
    ("pagination", "Pagination support", "Extension that indicates that pagination is enabled."),
    ("sorting", "Sorting support", "Extension that indicates that sorting is enabled."),
    ("project-id", "project_id field enabled", "Extension that indicates that project_id field is enabled."),
    ("quotas", "Quota management support", "Expose functions for quotas management per project"),
    ("quota_details", "Quota details management support", "Expose functions for quotas usage statistics per project"),
    (
        "quota-check-limit",
        "Quota engine limit check",
        "Support for checking the resource usage before applying a new quota limit",
    ),
    (
        "empty-string-filtering",
        "Empty String Filtering Extension",
        "Allow filtering by attributes with empty string value",
    ),
    (
        "ip-substring-filtering",
        "IP address substring filtering",
        "Provides IP address substring filtering when listing ports",
    ),
    (
        "subnet-external-network",
        "Subnet belongs to an external network",
        "Informs if the subnet belongs to an external network",
    ),
    ("security-group", "security-group", "The security groups extension."),
    (
        "service-type",
        "Neutron Service Type Management",
        "API for retrieving service providers for Neutron advanced services",
    ),
    ("stateful-security-group", "Stateful security group", "Indicates if the security group is stateful or not"),
    (
        "security-groups-normalized-cidr",
        "Normalized CIDR field for security group rules",
        "Add new field with normalized remote_ip_prefix cidr in SG rule",
    ),
    (
        "security-groups-rules-belongs-to-default-sg",
        "Security group rule belongs to the project's default security group",
        "Flag to determine if the security group rule belongs to the project's default security group",
    ),
    ("subnet_allocation", "Subnet Allocation", "Enables allocation of subnets from a subnet pool"),
    ("default-subnetpools", "Default Subnetpools", "Provides ability to mark and use a subnetpool as the default."),
    ("address-scope", "Address scope", "Address scopes extension."),
    ("auto-allocated-topology", "Auto Allocated Topology Services", "Auto Allocated Topology Services."),
    (
        "network-ip-availability",
        "Network IP Availability",
        "Provides IP availability data for each network and subnet.",
    ),
    ("binding", "Port Binding", "Expose port bindings of a virtual port to external application"),
    ("allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs"),
    (
        "extra_dhcp_opt",
        "Neutron Extra DHCP options",
        "Extra options configuration for DHCP. For example PXE boot options to DHCP clients can be specified (e.g. tftp-server, server-ip-address, bootfile-name)",
    ),
    (
        "rbac-policies",
        "RBAC Policies",
        "Allows creation and modification of policies that control tenant access to resources.",
    ),
    ("agent", "agent", "The agent management extension."),
    ("l3_agent_scheduler", "L3 Agent Scheduler", "Schedule routers among l3 agents"),
    ("availability_zone", "Availability Zone", "The availability zone extension."),
    (
        "router",
        "Neutron L3 Router",
        "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external networks via a NAT gateway.",
    ),
    (
        "ext-gw-mode",
        "Neutron L3 Configurable external gateway mode",
        "Extension of the router abstraction for specifying whether SNAT should occur on the external gateway",
    ),
    ("extraroute", "Neutron Extra Route", "Extra routes configuration for L3 router"),
    ("l3-ha", "HA Router extension", "Adds HA capability to routers."),
    ("fip-port-details", "Floating IP Port Details Extension", "Add port_details attribute to Floating IP resource"),
    (
        "floating-ip-port-forwarding",
        "Floating IP Port Forwarding",
        "Allow to forward a floating IP port to an internal port",
    ),
    (
        "floating-ip-port-forwarding-description",
        "Floating IP Port Forwarding new attribute description",
        "Add a description field to Port Forwarding rules",
    ),
    (
        "floating-ip-port-forwarding-port-ranges",
        "Floating IP Port Forwarding support port ranges",
        "Add suport to port ranges on Port Forwarding rules",
    ),
    ("expose-port-forwarding-in-fip", "Expose port forwarding in FIP", "Expose port forwarding in FIP"),
    (
        "extraroute-atomic",
        "Atomically add/remove extra routes",
        "Edit extra routes of a router on server side by atomically adding/removing extra routes",
    ),
];

pub fn routes() -> Router<State> {
    Router::new().route("/v2.0/extensions", get(list)).route("/v2.0/extensions/{alias}", get(show))
}

fn render(alias: &str, name: &str, description: &str) -> Value {
    json!({"alias": alias, "name": name, "description": description, "updated": "2013-01-20T00:00:00-00:00", "links": []})
}

async fn list() -> Response {
    ok(json!({"extensions": EXTENSIONS.iter().map(|(a, n, d)| render(a, n, d)).collect::<Vec<_>>()}))
}

async fn show(Path(alias): Path<String>) -> Result<Response> {
    let (a, n, d) = EXTENSIONS
        .iter()
        .find(|(a, _, _)| *a == alias)
        .ok_or_else(|| not_found("HTTPNotFound", format!("Extension with alias {alias} does not exist")))?;
    Ok(ok(json!({"extension": render(a, n, d)})))
}
