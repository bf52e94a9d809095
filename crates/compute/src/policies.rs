//! Nova's default policy rules (the secure-RBAC defaults of `nova/policies/*.py`),
//! as data for the shared policy engine.
//!
//! Targets: `project_id` (the resource's project; for server rules the
//! server's owner, for quota or usage rules the project asked about),
//! `user_id` where Nova passes it (keypairs).

/// The base rules every other rule composes.
#[rustfmt::skip]
pub const BASE_RULES: &[(&str, &str)] = &[
    ("context_is_admin", "role:admin"),
    ("admin_api", "role:admin"),
    ("project_manager_api", "role:manager and project_id:%(project_id)s"),
    ("project_member_api", "role:member and project_id:%(project_id)s"),
    ("project_reader_api", "role:reader and project_id:%(project_id)s"),
    ("project_manager_or_admin", "rule:project_manager_api or rule:context_is_admin"),
    ("project_member_or_admin", "rule:project_member_api or rule:context_is_admin"),
    ("project_reader_or_admin", "rule:project_reader_api or rule:context_is_admin"),
    ("service_api", "role:service"),
    ("service_or_admin", "rule:service_api or rule:context_is_admin"),
];

/// Rules of the server API, its actions and the resources hanging off a server.
#[rustfmt::skip]
pub const SERVER_RULES: &[(&str, &str)] = &[
    ("os_compute_api:servers:index", "rule:project_reader_or_admin"),
    ("os_compute_api:servers:detail", "rule:project_reader_or_admin"),
    ("os_compute_api:servers:index:get_all_tenants", "rule:admin_api"),
    ("os_compute_api:servers:detail:get_all_tenants", "rule:admin_api"),
    ("os_compute_api:servers:allow_all_filters", "rule:admin_api"),
    ("os_compute_api:servers:show", "rule:project_reader_or_admin"),
    ("os_compute_api:servers:show:host_status", "rule:admin_api"),
    ("os_compute_api:servers:show:flavor-extra-specs", "rule:project_reader_or_admin"),
    ("os_compute_api:servers:create", "rule:project_member_or_admin"),
    ("os_compute_api:servers:create:forced_host", "rule:admin_api"),
    ("os_compute_api:servers:create:requested_destination", "rule:admin_api"),
    ("os_compute_api:servers:create:attach_volume", "rule:project_member_or_admin"),
    ("os_compute_api:servers:create:attach_network", "rule:project_member_or_admin"),
    ("os_compute_api:servers:create:trusted_certs", "rule:project_member_or_admin"),
    ("os_compute_api:servers:create:zero_disk_flavor", "rule:admin_api"),
    ("os_compute_api:servers:delete", "rule:project_member_or_admin"),
    ("os_compute_api:servers:update", "rule:project_member_or_admin"),
    ("os_compute_api:servers:confirm_resize", "rule:project_member_or_admin"),
    ("os_compute_api:servers:revert_resize", "rule:project_member_or_admin"),
    ("os_compute_api:servers:reboot", "rule:project_member_or_admin"),
    ("os_compute_api:servers:resize", "rule:project_member_or_admin"),
    ("os_compute_api:servers:rebuild", "rule:project_member_or_admin"),
    ("os_compute_api:servers:rebuild:trusted_certs", "rule:project_member_or_admin"),
    ("os_compute_api:servers:create_image", "rule:project_member_or_admin"),
    ("os_compute_api:servers:create_image:allow_volume_backed", "rule:project_member_or_admin"),
    ("os_compute_api:servers:start", "rule:project_member_or_admin"),
    ("os_compute_api:os-create-backup", "rule:project_member_or_admin"),
    ("os_compute_api:servers:stop", "rule:project_member_or_admin"),
    ("os_compute_api:servers:trigger_crash_dump", "rule:project_member_or_admin"),
    ("os_compute_api:os-pause-server:pause", "rule:project_member_or_admin"),
    ("os_compute_api:os-pause-server:unpause", "rule:project_member_or_admin"),
    ("os_compute_api:os-suspend-server:suspend", "rule:project_member_or_admin"),
    ("os_compute_api:os-suspend-server:resume", "rule:project_member_or_admin"),
    ("os_compute_api:os-lock-server:lock", "rule:project_member_or_admin"),
    ("os_compute_api:os-lock-server:unlock", "rule:project_member_or_admin"),
    ("os_compute_api:os-lock-server:unlock:unlock_override", "rule:admin_api"),
    ("os_compute_api:os-deferred-delete:force", "rule:project_member_or_admin"),
    ("os_compute_api:os-deferred-delete:restore", "rule:project_member_or_admin"),
    ("os_compute_api:os-console-output", "rule:project_member_or_admin"),
    ("os_compute_api:os-admin-actions:reset_state", "rule:admin_api"),
    ("os_compute_api:os-admin-actions:inject_network_info", "rule:admin_api"),
    ("os_compute_api:os-shelve:shelve", "rule:project_member_or_admin"),
    ("os_compute_api:os-shelve:unshelve", "rule:project_member_or_admin"),
    ("os_compute_api:os-shelve:shelve_offload", "rule:admin_api"),
    ("os_compute_api:os-rescue", "rule:project_member_or_admin"),
    ("os_compute_api:os-unrescue", "rule:project_member_or_admin"),
    ("os_compute_api:server-metadata:index", "rule:project_reader_or_admin"),
    ("os_compute_api:server-metadata:show", "rule:project_reader_or_admin"),
    ("os_compute_api:server-metadata:create", "rule:project_member_or_admin"),
    ("os_compute_api:server-metadata:update_all", "rule:project_member_or_admin"),
    ("os_compute_api:server-metadata:update", "rule:project_member_or_admin"),
    ("os_compute_api:server-metadata:delete", "rule:project_member_or_admin"),
    ("os_compute_api:os-server-tags:index", "rule:project_reader_or_admin"),
    ("os_compute_api:os-server-tags:show", "rule:project_reader_or_admin"),
    ("os_compute_api:os-server-tags:update", "rule:project_member_or_admin"),
    ("os_compute_api:os-server-tags:update_all", "rule:project_member_or_admin"),
    ("os_compute_api:os-server-tags:delete", "rule:project_member_or_admin"),
    ("os_compute_api:os-server-tags:delete_all", "rule:project_member_or_admin"),
    ("os_compute_api:os-instance-actions:list", "rule:project_reader_or_admin"),
    ("os_compute_api:os-instance-actions:show", "rule:project_reader_or_admin"),
    ("os_compute_api:os-instance-actions:events", "rule:admin_api"),
    ("os_compute_api:os-instance-actions:events:details", "rule:admin_api"),
    ("os_compute_api:os-server-password:show", "rule:project_reader_or_admin"),
    ("os_compute_api:os-server-password:clear", "rule:project_member_or_admin"),
    ("os_compute_api:ips:index", "rule:project_reader_or_admin"),
    ("os_compute_api:ips:show", "rule:project_reader_or_admin"),
    ("os_compute_api:os-extended-server-attributes", "rule:admin_api"),
    ("os_compute_api:os-simple-tenant-usage:show", "rule:project_reader_or_admin"),
    ("os_compute_api:os-simple-tenant-usage:list", "rule:admin_api"),
    ("os_compute_api:os-server-diagnostics", "rule:admin_api"),
    ("os_compute_api:os-server-external-events:create", "rule:service_api"),
    ("os_compute_api:os-migrate-server:migrate", "rule:admin_api"),
    ("os_compute_api:os-migrate-server:migrate_live", "rule:admin_api"),
    ("os_compute_api:os-create-backup", "rule:project_member_or_admin"),
    ("os_compute_api:os-attach-interfaces:list", "rule:project_reader_or_admin"),
    ("os_compute_api:os-attach-interfaces:show", "rule:project_reader_or_admin"),
    ("os_compute_api:os-attach-interfaces:create", "rule:project_member_or_admin"),
    ("os_compute_api:os-attach-interfaces:delete", "rule:project_member_or_admin"),
    ("os_compute_api:os-volumes-attachments:index", "rule:project_reader_or_admin"),
    ("os_compute_api:os-volumes-attachments:show", "rule:project_reader_or_admin"),
    ("os_compute_api:os-volumes-attachments:create", "rule:project_member_or_admin"),
    ("os_compute_api:os-volumes-attachments:update", "rule:project_member_or_admin"),
    ("os_compute_api:os-volumes-attachments:swap", "rule:admin_api"),
    ("os_compute_api:os-volumes-attachments:delete", "rule:project_member_or_admin"),
    ("os_compute_api:os-assisted-volume-snapshots:create", "rule:service_api"),
    ("os_compute_api:os-assisted-volume-snapshots:delete", "rule:service_api"),
    ("os_compute_api:os-volumes:list", "rule:project_reader_or_admin"),
    ("os_compute_api:os-volumes:detail", "rule:project_reader_or_admin"),
    ("os_compute_api:os-volumes:show", "rule:project_reader_or_admin"),
    ("os_compute_api:os-volumes:create", "rule:project_member_or_admin"),
    ("os_compute_api:os-volumes:delete", "rule:project_member_or_admin"),
    ("os_compute_api:os-volumes:snapshots:list", "rule:project_reader_or_admin"),
    ("os_compute_api:os-volumes:snapshots:detail", "rule:project_reader_or_admin"),
    ("os_compute_api:os-volumes:snapshots:show", "rule:project_reader_or_admin"),
    ("os_compute_api:os-volumes:snapshots:create", "rule:project_member_or_admin"),
    ("os_compute_api:os-volumes:snapshots:delete", "rule:project_member_or_admin"),
];

/// Every default rule of the compute API: the base, the server rules and the
/// resource rules (flavors, keypairs, aggregates, ... in `RESOURCE_RULES`).
pub fn all_rules() -> Vec<(&'static str, &'static str)> {
    BASE_RULES
        .iter()
        .chain(SERVER_RULES)
        .chain(crate::policies_resources::RESOURCE_RULES)
        .chain(crate::policies_network::NETWORK_PROXY_RULES)
        .copied()
        .collect()
}
