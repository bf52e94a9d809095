// Keystone's default policy rules as data; see the doc comment on
// `DEFAULT_RULES` for where they come from. (Outer doc comments only: the
// policy crate's tests `include!` this file.)

/// Keystone's default policy rules, as `(rule name, check string)` pairs for
/// `stratus_policy::Enforcer::register_defaults`.
///
/// The check strings restate, as data, the defaults Keystone registers in
/// `keystone/common/policies/*.py`: the `check_str` of every `RuleDefault`
/// and `DocumentedRuleDefault` (Keystone master after 29.0.0, mid 2026), in
/// Keystone's order and grouped by source file. Keystone builds them from shared fragments such as
/// `SYSTEM_READER` (`role:reader and system_scope:all`), `SYSTEM_ADMIN`,
/// `DOMAIN_READER` and `ADMIN_OR_SYSTEM_READER`
/// (`rule:admin_required or (role:reader and system_scope:all)`); here
/// those fragments are expanded in place, while the named base rules
/// (`admin_required`, `owner`, `token_subject`, ...) are kept as rules and
/// referenced with `rule:`.
///
/// Not represented: the deprecated check strings Keystone ORs in when
/// `[oslo_policy] enforce_new_defaults = False`, and the `scope_types`
/// oslo.policy applies when `enforce_scope = True`. The result is Keystone's
/// behaviour with scope enforcement off, where `rule:admin_required`
/// (`role:admin`) still lets any admin through.
///
/// Target and credential attributes these rules read (Keystone flattens the
/// target with dotted keys, e.g. `target.user.domain_id`):
///
/// * credentials: `roles`, `user_id`, `domain_id`, `project_id`,
///   `system_scope`, and the token body under `token` (`token.domain.id`,
///   `token.project.domain.id`).
/// * target: `user_id` (the user in the URL; `rule:owner`,
///   `create_application_credential`, `list_groups_for_user`),
///   `target.user.id`, `target.user.domain_id`, `target.group.domain_id`,
///   `target.project.id`, `target.project.domain_id`, `target.domain.id`,
///   `target.domain_id` (list APIs; set only for domain-scoped tokens),
///   `target.role.name`, `target.role.domain_id`, `target.credential.user_id`,
///   `target.token.user_id`, `target.trust.trustor_user_id`,
///   `target.trust.trustee_user_id`, `target.limit.project_id`,
///   `target.limit.domain.id`, `target.limit.project.domain_id`.
///
/// Values compare as Python strings, so a null compares equal to `None`:
/// several rules rely on it (`None:%(target.role.domain_id)s` for global
/// roles, `not domain_id:None` for domain-scoped tokens). Leave a target key
/// out, rather than setting it to null, when the object it describes does
/// not exist; otherwise a null `domain_id` in the credentials would match it.
#[rustfmt::skip]
pub const DEFAULT_RULES: &[(&str, &str)] = &[
    // Base rules reused by the others (base.py)
    ("admin_required", "role:admin or is_admin:1"),
    ("service_role", "role:service"),
    ("service_or_admin", "rule:admin_required or rule:service_role"),
    ("owner", "user_id:%(user_id)s"),
    ("admin_or_owner", "rule:admin_required or rule:owner"),
    ("token_subject", "user_id:%(target.token.user_id)s"),
    ("admin_or_token_subject", "rule:admin_required or rule:token_subject"),
    ("service_admin_or_token_subject", "rule:service_or_admin or rule:token_subject"),
    (
        "domain_managed_target_role",
        concat!(
            "'manager':%(target.role.name)s or 'member':%(target.role.name)s",
            " or 'reader':%(target.role.name)s",
        ),
    ),
    // Application credential access rules (access_rule.py)
    ("identity:get_access_rule", "(role:reader and system_scope:all) or user_id:%(target.user.id)s"),
    ("identity:list_access_rules", "(role:reader and system_scope:all) or user_id:%(target.user.id)s"),
    ("identity:delete_access_rule", "(role:admin and system_scope:all) or user_id:%(target.user.id)s"),
    // OAuth 1.0a access tokens (access_token.py)
    ("identity:authorize_request_token", "rule:admin_required"),
    ("identity:get_access_token", "rule:admin_required"),
    ("identity:get_access_token_role", "rule:admin_required"),
    ("identity:list_access_tokens", "rule:admin_required"),
    ("identity:list_access_token_roles", "rule:admin_required"),
    ("identity:delete_access_token", "rule:admin_required"),
    // Application credentials (application_credential.py)
    ("identity:get_application_credential", "(rule:admin_required) or (role:reader and system_scope:all) or rule:owner"),
    ("identity:list_application_credentials", "(rule:admin_required) or (role:reader and system_scope:all) or rule:owner"),
    ("identity:create_application_credential", "user_id:%(user_id)s"),
    ("identity:delete_application_credential", "rule:admin_or_owner"),
    // Auth discovery: catalog, projects, domains, system (auth.py)
    ("identity:get_auth_catalog", ""),
    ("identity:get_auth_projects", ""),
    ("identity:get_auth_domains", ""),
    ("identity:get_auth_system", ""),
    // OAuth 1.0a consumers (consumer.py)
    ("identity:get_consumer", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:list_consumers", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:create_consumer", "rule:admin_required"),
    ("identity:update_consumer", "rule:admin_required"),
    ("identity:delete_consumer", "rule:admin_required"),
    // Credentials (credential.py)
    (
        "identity:get_credential",
        concat!(
            "(rule:admin_required) or (role:reader and system_scope:all)",
            " or user_id:%(target.credential.user_id)s",
        ),
    ),
    (
        "identity:list_credentials",
        concat!(
            "(rule:admin_required) or (role:reader and system_scope:all)",
            " or user_id:%(target.credential.user_id)s",
        ),
    ),
    ("identity:create_credential", "(rule:admin_required) or user_id:%(target.credential.user_id)s"),
    ("identity:update_credential", "(rule:admin_required) or user_id:%(target.credential.user_id)s"),
    ("identity:delete_credential", "(rule:admin_required) or user_id:%(target.credential.user_id)s"),
    // Domains (domain.py)
    (
        "identity:get_domain",
        concat!(
            "rule:admin_required or (role:reader and system_scope:all)",
            " or token.domain.id:%(target.domain.id)s",
            " or token.project.domain.id:%(target.domain.id)s",
        ),
    ),
    (
        "identity:list_domains",
        concat!(
            "rule:admin_required or (role:reader and system_scope:all)",
            " or (role:reader and domain_id:%(target.domain.id)s)",
        ),
    ),
    ("identity:create_domain", "rule:admin_required"),
    ("identity:update_domain", "rule:admin_required"),
    ("identity:delete_domain", "rule:admin_required"),
    // Domain configuration (domain_config.py)
    ("identity:create_domain_config", "rule:admin_required"),
    ("identity:get_domain_config", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:get_security_compliance_domain_config", ""),
    ("identity:update_domain_config", "rule:admin_required"),
    ("identity:delete_domain_config", "rule:admin_required"),
    ("identity:get_domain_config_default", "rule:admin_required or (role:reader and system_scope:all)"),
    // EC2 credentials (ec2_credential.py)
    (
        "identity:ec2_get_credential",
        concat!(
            "(rule:admin_required) or (role:reader and system_scope:all)",
            " or user_id:%(target.credential.user_id)s",
        ),
    ),
    ("identity:ec2_list_credentials", "(rule:admin_required) or (role:reader and system_scope:all) or rule:owner"),
    (
        "identity:ec2_create_credential",
        concat!(
            "(rule:admin_required)",
            " or (role:member and user_id:%(target.credential.user_id)s)",
        ),
    ),
    (
        "identity:ec2_delete_credential",
        concat!(
            "(rule:admin_required)",
            " or (role:member and user_id:%(target.credential.user_id)s)",
        ),
    ),
    // Endpoints (endpoint.py)
    ("identity:get_endpoint", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:list_endpoints", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:create_endpoint", "rule:admin_required"),
    ("identity:update_endpoint", "rule:admin_required"),
    ("identity:delete_endpoint", "rule:admin_required"),
    // Endpoint groups (endpoint_group.py)
    ("identity:create_endpoint_group", "rule:admin_required"),
    ("identity:list_endpoint_groups", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:get_endpoint_group", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:update_endpoint_group", "rule:admin_required"),
    ("identity:delete_endpoint_group", "rule:admin_required"),
    ("identity:list_projects_associated_with_endpoint_group", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:list_endpoints_associated_with_endpoint_group", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:get_endpoint_group_in_project", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:list_endpoint_groups_for_project", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:add_endpoint_group_to_project", "rule:admin_required"),
    ("identity:remove_endpoint_group_from_project", "rule:admin_required"),
    // Role grants on projects and domains, and system grants (grant.py)
    (
        "identity:check_grant",
        concat!(
            "(rule:admin_required) or ((role:reader and system_scope:all)",
            " or ((role:reader and domain_id:%(target.user.domain_id)s and domain_id:%(target.project.domain_id)s)",
            " or (role:reader and domain_id:%(target.user.domain_id)s and domain_id:%(target.domain.id)s)",
            " or (role:reader and domain_id:%(target.group.domain_id)s and domain_id:%(target.project.domain_id)s)",
            " or (role:reader and domain_id:%(target.group.domain_id)s and domain_id:%(target.domain.id)s)) and (domain_id:%(target.role.domain_id)s",
            " or None:%(target.role.domain_id)s))",
        ),
    ),
    (
        "identity:list_grants",
        concat!(
            "(rule:admin_required) or ((role:reader and system_scope:all)",
            " or (role:reader and domain_id:%(target.user.domain_id)s and domain_id:%(target.project.domain_id)s)",
            " or (role:reader and domain_id:%(target.user.domain_id)s and domain_id:%(target.domain.id)s)",
            " or (role:reader and domain_id:%(target.group.domain_id)s and domain_id:%(target.project.domain_id)s)",
            " or (role:reader and domain_id:%(target.group.domain_id)s and domain_id:%(target.domain.id)s))",
        ),
    ),
    (
        "identity:create_grant",
        concat!(
            "(rule:admin_required)",
            " or ((role:admin and domain_id:%(target.user.domain_id)s and domain_id:%(target.project.domain_id)s)",
            " or (role:admin and domain_id:%(target.user.domain_id)s and domain_id:%(target.domain.id)s)",
            " or (role:admin and domain_id:%(target.group.domain_id)s and domain_id:%(target.project.domain_id)s)",
            " or (role:admin and domain_id:%(target.group.domain_id)s and domain_id:%(target.domain.id)s)) and (domain_id:%(target.role.domain_id)s",
            " or None:%(target.role.domain_id)s)",
            " or ((role:manager and domain_id:%(target.user.domain_id)s and domain_id:%(target.project.domain_id)s)",
            " or (role:manager and domain_id:%(target.user.domain_id)s and domain_id:%(target.domain.id)s)",
            " or (role:manager and domain_id:%(target.group.domain_id)s and domain_id:%(target.project.domain_id)s)",
            " or (role:manager and domain_id:%(target.group.domain_id)s and domain_id:%(target.domain.id)s)) and rule:domain_managed_target_role",
        ),
    ),
    (
        "identity:revoke_grant",
        concat!(
            "(rule:admin_required)",
            " or ((role:admin and domain_id:%(target.user.domain_id)s and domain_id:%(target.project.domain_id)s)",
            " or (role:admin and domain_id:%(target.user.domain_id)s and domain_id:%(target.domain.id)s)",
            " or (role:admin and domain_id:%(target.group.domain_id)s and domain_id:%(target.project.domain_id)s)",
            " or (role:admin and domain_id:%(target.group.domain_id)s and domain_id:%(target.domain.id)s)) and (domain_id:%(target.role.domain_id)s",
            " or None:%(target.role.domain_id)s)",
            " or ((role:manager and domain_id:%(target.user.domain_id)s and domain_id:%(target.project.domain_id)s)",
            " or (role:manager and domain_id:%(target.user.domain_id)s and domain_id:%(target.domain.id)s)",
            " or (role:manager and domain_id:%(target.group.domain_id)s and domain_id:%(target.project.domain_id)s)",
            " or (role:manager and domain_id:%(target.group.domain_id)s and domain_id:%(target.domain.id)s)) and rule:domain_managed_target_role",
        ),
    ),
    ("identity:list_system_grants_for_user", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:check_system_grant_for_user", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:create_system_grant_for_user", "rule:admin_required"),
    ("identity:revoke_system_grant_for_user", "rule:admin_required"),
    ("identity:list_system_grants_for_group", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:check_system_grant_for_group", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:create_system_grant_for_group", "rule:admin_required"),
    ("identity:revoke_system_grant_for_group", "rule:admin_required"),
    // Groups (group.py)
    (
        "identity:get_group",
        concat!(
            "(rule:admin_required) or (role:reader and system_scope:all)",
            " or (role:reader and domain_id:%(target.group.domain_id)s)",
        ),
    ),
    (
        "identity:list_groups",
        concat!(
            "(rule:admin_required) or (role:reader and system_scope:all)",
            " or (role:reader and domain_id:%(target.group.domain_id)s)",
        ),
    ),
    (
        "identity:list_groups_for_user",
        concat!(
            "(rule:admin_required) or (role:reader and system_scope:all)",
            " or (role:reader and domain_id:%(target.user.domain_id)s)",
            " or user_id:%(user_id)s",
        ),
    ),
    (
        "identity:create_group",
        concat!(
            "(rule:admin_required)",
            " or (role:manager and domain_id:%(target.group.domain_id)s)",
        ),
    ),
    (
        "identity:update_group",
        concat!(
            "(rule:admin_required)",
            " or (role:manager and domain_id:%(target.group.domain_id)s)",
        ),
    ),
    (
        "identity:delete_group",
        concat!(
            "(rule:admin_required)",
            " or (role:manager and domain_id:%(target.group.domain_id)s)",
        ),
    ),
    (
        "identity:list_users_in_group",
        concat!(
            "(rule:admin_required) or (role:reader and system_scope:all)",
            " or (role:reader and domain_id:%(target.group.domain_id)s)",
        ),
    ),
    (
        "identity:remove_user_from_group",
        concat!(
            "(rule:admin_required)",
            " or (role:manager and domain_id:%(target.group.domain_id)s and domain_id:%(target.user.domain_id)s)",
        ),
    ),
    (
        "identity:check_user_in_group",
        concat!(
            "(rule:admin_required) or (role:reader and system_scope:all)",
            " or (role:reader and domain_id:%(target.group.domain_id)s and domain_id:%(target.user.domain_id)s)",
        ),
    ),
    (
        "identity:add_user_to_group",
        concat!(
            "(rule:admin_required)",
            " or (role:manager and domain_id:%(target.group.domain_id)s and domain_id:%(target.user.domain_id)s)",
        ),
    ),
    // Federation identity providers (identity_provider.py)
    ("identity:create_identity_provider", "rule:admin_required"),
    ("identity:list_identity_providers", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:get_identity_provider", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:update_identity_provider", "rule:admin_required"),
    ("identity:delete_identity_provider", "rule:admin_required"),
    // Implied roles (implied_role.py)
    ("identity:get_implied_role", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:list_implied_roles", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:create_implied_role", "rule:admin_required"),
    ("identity:delete_implied_role", "rule:admin_required"),
    ("identity:list_role_inference_rules", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:check_implied_role", "rule:admin_required or (role:reader and system_scope:all)"),
    // Project/domain limits (limit.py)
    ("identity:get_limit_model", ""),
    (
        "identity:get_limit",
        concat!(
            "rule:admin_required or (role:reader and system_scope:all)",
            " or (domain_id:%(target.limit.domain.id)s",
            " or domain_id:%(target.limit.project.domain_id)s)",
            " or (project_id:%(target.limit.project_id)s and not None:%(target.limit.project_id)s)",
        ),
    ),
    ("identity:list_limits", ""),
    ("identity:create_limits", "rule:admin_required"),
    ("identity:update_limit", "rule:admin_required"),
    ("identity:delete_limit", "rule:admin_required"),
    // Federation mappings (mapping.py)
    ("identity:create_mapping", "rule:admin_required"),
    ("identity:get_mapping", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:list_mappings", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:delete_mapping", "rule:admin_required"),
    ("identity:update_mapping", "rule:admin_required"),
    // Policy blobs (policy.py)
    ("identity:get_policy", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:list_policies", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:create_policy", "rule:admin_required"),
    ("identity:update_policy", "rule:admin_required"),
    ("identity:delete_policy", "rule:admin_required"),
    // Policy associations (policy_association.py)
    ("identity:create_policy_association_for_endpoint", "rule:admin_required"),
    ("identity:check_policy_association_for_endpoint", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:delete_policy_association_for_endpoint", "rule:admin_required"),
    ("identity:create_policy_association_for_service", "rule:admin_required"),
    ("identity:check_policy_association_for_service", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:delete_policy_association_for_service", "rule:admin_required"),
    ("identity:create_policy_association_for_region_and_service", "rule:admin_required"),
    ("identity:check_policy_association_for_region_and_service", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:delete_policy_association_for_region_and_service", "rule:admin_required"),
    ("identity:get_policy_for_endpoint", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:list_endpoints_for_policy", "rule:admin_required or (role:reader and system_scope:all)"),
    // Projects and project tags (project.py)
    (
        "identity:get_project",
        concat!(
            "(rule:admin_required) or (role:reader and system_scope:all)",
            " or (role:reader and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s)",
            " or project_id:%(target.project.id)s",
        ),
    ),
    (
        "identity:list_projects",
        concat!(
            "(rule:admin_required) or (role:reader and system_scope:all)",
            " or (role:reader and domain_id:%(target.domain_id)s)",
        ),
    ),
    (
        "identity:list_user_projects",
        concat!(
            "(rule:admin_required) or (role:reader and system_scope:all)",
            " or (role:reader and domain_id:%(target.user.domain_id)s)",
            " or user_id:%(target.user.id)s",
        ),
    ),
    (
        "identity:create_project",
        concat!(
            "(rule:admin_required)",
            " or (role:manager and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s)",
        ),
    ),
    (
        "identity:update_project",
        concat!(
            "(rule:admin_required)",
            " or (role:manager and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s)",
        ),
    ),
    (
        "identity:delete_project",
        concat!(
            "(rule:admin_required)",
            " or (role:manager and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s)",
        ),
    ),
    (
        "identity:list_project_tags",
        concat!(
            "(rule:admin_required) or (role:reader and system_scope:all)",
            " or (role:reader and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s)",
            " or project_id:%(target.project.id)s",
        ),
    ),
    (
        "identity:get_project_tag",
        concat!(
            "(rule:admin_required) or (role:reader and system_scope:all)",
            " or (role:reader and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s)",
            " or project_id:%(target.project.id)s",
        ),
    ),
    (
        "identity:update_project_tags",
        concat!(
            "(rule:admin_required)",
            " or (role:manager and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s)",
        ),
    ),
    (
        "identity:create_project_tag",
        concat!(
            "(rule:admin_required)",
            " or (role:manager and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s)",
        ),
    ),
    (
        "identity:delete_project_tags",
        concat!(
            "(rule:admin_required)",
            " or (role:manager and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s)",
        ),
    ),
    (
        "identity:delete_project_tag",
        concat!(
            "(rule:admin_required)",
            " or (role:manager and domain_id:%(target.project.domain_id)s and not None:%(target.project.domain_id)s)",
        ),
    ),
    // Project endpoint filters (project_endpoint.py)
    ("identity:list_projects_for_endpoint", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:add_endpoint_to_project", "rule:admin_required"),
    ("identity:check_endpoint_in_project", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:list_endpoints_for_project", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:remove_endpoint_from_project", "rule:admin_required"),
    // Federation protocols (protocol.py)
    ("identity:create_protocol", "rule:admin_required"),
    ("identity:update_protocol", "rule:admin_required"),
    ("identity:get_protocol", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:list_protocols", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:delete_protocol", "rule:admin_required"),
    // Regions (region.py)
    ("identity:get_region", ""),
    ("identity:list_regions", ""),
    ("identity:create_region", "rule:admin_required"),
    ("identity:update_region", "rule:admin_required"),
    ("identity:delete_region", "rule:admin_required"),
    // Registered limits (registered_limit.py)
    ("identity:get_registered_limit", ""),
    ("identity:list_registered_limits", ""),
    ("identity:create_registered_limits", "rule:admin_required"),
    ("identity:update_registered_limit", "rule:admin_required"),
    ("identity:delete_registered_limit", "rule:admin_required"),
    // Revocation events (revoke_event.py)
    ("identity:list_revoke_events", "rule:service_or_admin"),
    // Roles and domain-specific roles (role.py)
    (
        "identity:get_role",
        concat!(
            "(rule:admin_required or (role:reader and system_scope:all))",
            " or (role:manager and rule:domain_managed_target_role)",
        ),
    ),
    (
        "identity:list_roles",
        concat!(
            "(rule:admin_required or (role:reader and system_scope:all))",
            " or (role:manager and not domain_id:None)",
        ),
    ),
    ("identity:create_role", "rule:admin_required"),
    ("identity:update_role", "rule:admin_required"),
    ("identity:delete_role", "rule:admin_required"),
    ("identity:get_domain_role", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:list_domain_roles", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:create_domain_role", "rule:admin_required"),
    ("identity:update_domain_role", "rule:admin_required"),
    ("identity:delete_domain_role", "rule:admin_required"),
    // Role assignments (role_assignment.py)
    (
        "identity:list_role_assignments",
        concat!(
            "(rule:admin_required) or (role:reader and system_scope:all)",
            " or (role:reader and domain_id:%(target.domain_id)s)",
        ),
    ),
    (
        "identity:list_role_assignments_for_tree",
        concat!(
            "(rule:admin_required) or (role:reader and system_scope:all)",
            " or (role:reader and domain_id:%(target.domain_id)s)",
        ),
    ),
    // S3 token validation (s3tokens.py)
    ("identity:s3tokens_validate", "rule:service_or_admin"),
    // EC2 token validation (ec2tokens.py)
    ("identity:ec2tokens_validate", "rule:service_or_admin"),
    // Services (service.py)
    ("identity:get_service", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:list_services", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:create_service", "rule:admin_required"),
    ("identity:update_service", "rule:admin_required"),
    ("identity:delete_service", "rule:admin_required"),
    // Federation service providers (service_provider.py)
    ("identity:create_service_provider", "rule:admin_required"),
    ("identity:list_service_providers", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:get_service_provider", "rule:admin_required or (role:reader and system_scope:all)"),
    ("identity:update_service_provider", "rule:admin_required"),
    ("identity:delete_service_provider", "rule:admin_required"),
    // Token revocation list (token_revocation.py)
    ("identity:revocation_list", "rule:service_or_admin"),
    // Tokens (token.py)
    ("identity:check_token", "rule:admin_required or (role:reader and system_scope:all) or rule:token_subject"),
    (
        "identity:validate_token",
        concat!(
            "rule:admin_required or (role:reader and system_scope:all) or rule:service_role",
            " or rule:token_subject",
        ),
    ),
    ("identity:revoke_token", "rule:admin_required or rule:token_subject"),
    // Trusts (trust.py)
    ("identity:create_trust", "user_id:%(target.trust.trustor_user_id)s"),
    ("identity:list_trusts", "rule:admin_required or (role:reader and system_scope:all)"),
    (
        "identity:list_trusts_for_trustor",
        concat!(
            "(rule:admin_required) or (role:reader and system_scope:all",
            " or user_id:%(target.trust.trustor_user_id)s)",
        ),
    ),
    (
        "identity:list_trusts_for_trustee",
        concat!(
            "(rule:admin_required) or (role:reader and system_scope:all",
            " or user_id:%(target.trust.trustee_user_id)s)",
        ),
    ),
    (
        "identity:list_roles_for_trust",
        concat!(
            "(rule:admin_required) or (role:reader and system_scope:all",
            " or user_id:%(target.trust.trustor_user_id)s",
            " or user_id:%(target.trust.trustee_user_id)s)",
        ),
    ),
    (
        "identity:get_role_for_trust",
        concat!(
            "(rule:admin_required) or (role:reader and system_scope:all",
            " or user_id:%(target.trust.trustor_user_id)s",
            " or user_id:%(target.trust.trustee_user_id)s)",
        ),
    ),
    ("identity:delete_trust", "rule:admin_required or user_id:%(target.trust.trustor_user_id)s"),
    (
        "identity:get_trust",
        concat!(
            "(rule:admin_required) or (role:reader and system_scope:all",
            " or user_id:%(target.trust.trustor_user_id)s",
            " or user_id:%(target.trust.trustee_user_id)s)",
        ),
    ),
    // Users (user.py)
    (
        "identity:get_user",
        concat!(
            "(rule:admin_required) or (role:reader and system_scope:all)",
            " or (role:reader and token.domain.id:%(target.user.domain_id)s)",
            " or user_id:%(target.user.id)s",
        ),
    ),
    (
        "identity:list_users",
        concat!(
            "(rule:admin_required) or (role:reader and system_scope:all)",
            " or (role:reader and domain_id:%(target.domain_id)s)",
        ),
    ),
    ("identity:list_projects_for_user", ""),
    ("identity:list_domains_for_user", ""),
    (
        "identity:create_user",
        concat!(
            "(rule:admin_required)",
            " or (role:manager and token.domain.id:%(target.user.domain_id)s)",
        ),
    ),
    (
        "identity:update_user",
        concat!(
            "(rule:admin_required)",
            " or (role:manager and token.domain.id:%(target.user.domain_id)s)",
        ),
    ),
    (
        "identity:delete_user",
        concat!(
            "(rule:admin_required)",
            " or (role:manager and token.domain.id:%(target.user.domain_id)s)",
        ),
    ),
];

#[cfg(test)]
mod tests {
    use super::DEFAULT_RULES;

    #[test]
    fn every_default_rule_parses() {
        for (name, check) in DEFAULT_RULES {
            if let Err(err) = stratus_policy::parse_rule(name, check) {
                panic!("{err}");
            }
        }
    }

    #[test]
    fn default_rule_names_are_unique() {
        let mut names: Vec<&str> = DEFAULT_RULES.iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate rule names");
    }
}
