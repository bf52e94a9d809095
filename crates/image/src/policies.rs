//! Glance's default policy rules, as data for the shared policy engine.

/// Glance's default policy rules, as `(rule name, check string)` pairs for
/// `stratus_policy::Enforcer::register_defaults`.
///
/// These restate the secure-RBAC ("new defaults") check strings Glance
/// registers in `glance/policies/*.py` (the non-deprecated `check_str` of
/// every rule), in Glance's order: base, image, tasks, metadef, cache,
/// discovery. Glance composes them from fragments in `glance/policies/base.py`
/// (`ADMIN`, `PROJECT_MEMBER`, `PROJECT_READER`, `IMAGE_MEMBER_CHECK`, the
/// visibility checks, ...); here each fragment is written out in place and the
/// named rules Glance itself references (`context_is_admin`, `default`,
/// `service_api`, `metadef_admin`) are kept and used through `rule:`.
///
/// Not represented: the deprecated check strings oslo.policy ORs in when
/// `[oslo_policy] enforce_new_defaults = False`, and `scope_types`
/// (every rule is project scoped in Glance).
///
/// # Targets
///
/// Credentials carry `roles`, `project_id` and `user_id`. The target keys the
/// rules read are:
///
/// * Image rules (`add_image` … `copy_image`, the location rules, the member
///   rules and the cache rules that act on one image): `project_id` (the image
///   owner), `owner` (the same value), `visibility`, and `member_id`: the
///   caller's project when the caller reached the image as an image member,
///   otherwise null (which renders as `None` and so never matches a project).
///   For `add_image` Glance builds the target from the request: `project_id`
///   and `owner` are the requested owner (default: the caller's project) and
///   `visibility` the requested one (default `private`). For `get_images` it
///   is the caller's own project (`{"project_id": caller, "owner": caller,
///   "visibility": "private"}`).
/// * Member rules (`get_member(s)`, `add_member`, `delete_member`,
///   `modify_member`): the same image target; Glance enforces `get_image` on
///   it first, so a caller that may not see the image gets 404.
/// * Metadef rules: `project_id` (the namespace owner) and `visibility` (the
///   namespace visibility). Without a namespace (listing namespaces or
///   resource types, creating a namespace) the target is just
///   `{"project_id": <caller's project>}`.
/// * Task, cache-list and discovery rules: an empty target.
///
/// `get_image` and `download_image` pass any reader (member) for `shared`
/// images: as in Glance, hiding shared images from projects that are not
/// members is the image repository's job, not the policy's.
///
/// Glance names the metadef property deletion rule `remove_metadef_property`.
#[rustfmt::skip]
pub const DEFAULT_RULES: &[(&str, &str)] = &[
    // Base rules (base.py). `default` is what unregistered rules and the task
    // rules fall back to; `service_api` still admits admins for services that
    // do not send a service-role token.
    ("default", ""),
    ("context_is_admin", "role:admin"),
    ("service_api", "role:service or role:admin"),

    // Images, locations, members and image actions (image.py)
    (
        "add_image",
        "rule:context_is_admin or (role:member and project_id:%(project_id)s and project_id:%(owner)s)",
    ),
    ("delete_image", "rule:context_is_admin or (role:member and project_id:%(project_id)s)"),
    (
        "get_image",
        concat!(
            "rule:context_is_admin or (role:reader and (project_id:%(project_id)s",
            " or project_id:%(member_id)s or 'community':%(visibility)s",
            " or 'public':%(visibility)s or 'shared':%(visibility)s))",
        ),
    ),
    ("get_images", "rule:context_is_admin or (role:reader and project_id:%(project_id)s)"),
    ("modify_image", "rule:context_is_admin or (role:member and project_id:%(project_id)s)"),
    ("publicize_image", "rule:context_is_admin"),
    ("communitize_image", "rule:context_is_admin or (role:member and project_id:%(project_id)s)"),
    (
        "download_image",
        concat!(
            "rule:context_is_admin or (role:member and (project_id:%(project_id)s",
            " or project_id:%(member_id)s or 'community':%(visibility)s",
            " or 'public':%(visibility)s or 'shared':%(visibility)s))",
        ),
    ),
    (
        "download_from_store",
        concat!(
            "rule:context_is_admin or (role:member and (project_id:%(project_id)s",
            " or project_id:%(member_id)s or 'community':%(visibility)s",
            " or 'public':%(visibility)s or 'shared':%(visibility)s))",
        ),
    ),
    ("upload_image", "rule:context_is_admin or (role:member and project_id:%(project_id)s)"),
    ("delete_image_location", "rule:context_is_admin"),
    ("get_image_location", "rule:context_is_admin or (role:reader and project_id:%(project_id)s)"),
    ("set_image_location", "rule:context_is_admin or (role:member and project_id:%(project_id)s)"),
    (
        "add_image_location",
        "rule:service_api or (role:member and project_id:%(project_id)s and project_id:%(owner)s)",
    ),
    ("fetch_image_location", "rule:service_api"),
    ("add_member", "rule:context_is_admin or (role:member and project_id:%(project_id)s)"),
    ("delete_member", "rule:context_is_admin or (role:member and project_id:%(project_id)s)"),
    (
        "get_member",
        "rule:context_is_admin or role:reader and (project_id:%(project_id)s or project_id:%(member_id)s)",
    ),
    (
        "get_members",
        "rule:context_is_admin or role:reader and (project_id:%(project_id)s or project_id:%(member_id)s)",
    ),
    ("modify_member", "rule:context_is_admin or (role:member and project_id:%(member_id)s)"),
    ("manage_image_cache", "rule:context_is_admin"),
    ("deactivate", "rule:context_is_admin or (role:member and project_id:%(project_id)s)"),
    ("reactivate", "rule:context_is_admin or (role:member and project_id:%(project_id)s)"),
    ("copy_image", "rule:context_is_admin"),
    ("list_cached_nodes", "rule:context_is_admin"),

    // Tasks (tasks.py). The per-task rules are internal and open; the tasks
    // API itself is guarded by `tasks_api_access`.
    ("get_task", "rule:default"),
    ("get_tasks", "rule:default"),
    ("add_task", "rule:default"),
    ("modify_task", "rule:default"),
    ("tasks_api_access", "rule:context_is_admin"),

    // Metadata definitions (metadef.py): reads follow namespace ownership or
    // public visibility, every write is admin only.
    ("metadef_default", ""),
    ("metadef_admin", "rule:context_is_admin"),
    (
        "get_metadef_namespace",
        "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))",
    ),
    ("get_metadef_namespaces", "rule:context_is_admin or (role:reader and project_id:%(project_id)s)"),
    ("modify_metadef_namespace", "rule:metadef_admin"),
    ("add_metadef_namespace", "rule:metadef_admin"),
    ("delete_metadef_namespace", "rule:metadef_admin"),
    (
        "get_metadef_object",
        "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))",
    ),
    (
        "get_metadef_objects",
        "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))",
    ),
    ("modify_metadef_object", "rule:metadef_admin"),
    ("add_metadef_object", "rule:metadef_admin"),
    ("delete_metadef_object", "rule:metadef_admin"),
    (
        "list_metadef_resource_types",
        "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))",
    ),
    (
        "get_metadef_resource_type",
        "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))",
    ),
    ("add_metadef_resource_type_association", "rule:metadef_admin"),
    ("remove_metadef_resource_type_association", "rule:metadef_admin"),
    (
        "get_metadef_property",
        "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))",
    ),
    (
        "get_metadef_properties",
        "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))",
    ),
    ("modify_metadef_property", "rule:metadef_admin"),
    ("add_metadef_property", "rule:metadef_admin"),
    ("remove_metadef_property", "rule:metadef_admin"),
    (
        "get_metadef_tag",
        "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))",
    ),
    (
        "get_metadef_tags",
        "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))",
    ),
    ("modify_metadef_tag", "rule:metadef_admin"),
    ("add_metadef_tag", "rule:metadef_admin"),
    ("add_metadef_tags", "rule:metadef_admin"),
    ("delete_metadef_tag", "rule:metadef_admin"),
    ("delete_metadef_tags", "rule:metadef_admin"),

    // Image cache (cache.py): admin only.
    ("cache_image", "rule:context_is_admin"),
    ("cache_list", "rule:context_is_admin"),
    ("cache_delete", "rule:context_is_admin"),
    ("cache_clean", "rule:context_is_admin"),
    ("cache_prune", "rule:context_is_admin"),

    // Store discovery (discovery.py)
    ("stores_info_detail", "rule:context_is_admin or rule:service_api"),
];

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use stratus_policy::Enforcer;

    use super::DEFAULT_RULES;

    fn enforcer() -> Enforcer {
        let mut enforcer = Enforcer::new();
        enforcer.register_defaults(DEFAULT_RULES).unwrap();
        enforcer
    }

    fn creds(project: &str, roles: &[&str]) -> Value {
        json!({"roles": roles, "project_id": project, "user_id": "u"})
    }

    fn image(owner: &str, visibility: &str, member: Option<&str>) -> Value {
        json!({"project_id": owner, "owner": owner, "visibility": visibility, "member_id": member})
    }

    fn namespace(owner: &str, visibility: &str) -> Value {
        json!({"project_id": owner, "visibility": visibility})
    }

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

    #[test]
    fn no_dangling_references() {
        assert!(enforcer().dangling_references().is_empty());
    }

    #[test]
    fn rule_set_covers_the_api() {
        let enforcer = enforcer();
        for name in [
            "default",
            "context_is_admin",
            "add_image",
            "delete_image",
            "get_image",
            "get_images",
            "modify_image",
            "publicize_image",
            "communitize_image",
            "download_image",
            "upload_image",
            "delete_image_location",
            "get_image_location",
            "set_image_location",
            "add_member",
            "delete_member",
            "get_member",
            "get_members",
            "modify_member",
            "deactivate",
            "reactivate",
            "copy_image",
            "manage_image_cache",
            "cache_image",
            "cache_list",
            "cache_delete",
            "get_task",
            "get_tasks",
            "add_task",
            "modify_task",
            "tasks_api_access",
            "stores_info_detail",
            "get_metadef_namespace",
            "get_metadef_namespaces",
            "add_metadef_namespace",
            "modify_metadef_namespace",
            "delete_metadef_namespace",
            "get_metadef_object",
            "get_metadef_objects",
            "add_metadef_object",
            "modify_metadef_object",
            "delete_metadef_object",
            "list_metadef_resource_types",
            "get_metadef_resource_type",
            "add_metadef_resource_type_association",
            "remove_metadef_resource_type_association",
            "get_metadef_property",
            "get_metadef_properties",
            "add_metadef_property",
            "modify_metadef_property",
            "remove_metadef_property",
            "get_metadef_tag",
            "get_metadef_tags",
            "add_metadef_tag",
            "add_metadef_tags",
            "modify_metadef_tag",
            "delete_metadef_tag",
            "delete_metadef_tags",
        ] {
            assert!(enforcer.rule(name).is_some(), "missing rule {name}");
        }
    }

    #[test]
    fn image_owner_decisions() {
        let enforcer = enforcer();
        let member = creds("p1", &["member", "reader"]);
        let reader = creds("p1", &["reader"]);
        let own = image("p1", "private", None);

        for rule in ["get_image", "get_images", "modify_image", "delete_image", "upload_image", "download_image"] {
            assert!(enforcer.enforce(rule, &own, &member), "member: {rule}");
        }
        assert!(enforcer.enforce("communitize_image", &own, &member));
        assert!(enforcer.enforce("add_member", &own, &member));
        assert!(enforcer.enforce("get_image", &own, &reader));
        assert!(enforcer.enforce("get_members", &own, &reader));
        for rule in ["modify_image", "delete_image", "upload_image", "download_image", "add_member", "deactivate"] {
            assert!(!enforcer.enforce(rule, &own, &reader), "reader: {rule}");
        }
        for rule in ["publicize_image", "copy_image", "delete_image_location", "cache_image", "tasks_api_access"] {
            assert!(!enforcer.enforce(rule, &own, &member), "non-admin: {rule}");
        }
    }

    #[test]
    fn add_image_requires_own_project() {
        let enforcer = enforcer();
        let member = creds("p1", &["member", "reader"]);
        assert!(enforcer.enforce("add_image", &image("p1", "private", None), &member));
        assert!(!enforcer.enforce("add_image", &image("p2", "private", None), &member));
        assert!(!enforcer.enforce("add_image", &image("p1", "private", None), &creds("p1", &["reader"])));
        assert!(enforcer.enforce("add_image", &image("p2", "private", None), &creds("p1", &["admin"])));
    }

    #[test]
    fn other_project_sees_only_visible_images() {
        let enforcer = enforcer();
        let other = creds("p2", &["member", "reader"]);
        assert!(enforcer.enforce("get_image", &image("p1", "public", None), &other));
        assert!(enforcer.enforce("get_image", &image("p1", "community", None), &other));
        assert!(enforcer.enforce("download_image", &image("p1", "public", None), &other));
        assert!(!enforcer.enforce("get_image", &image("p1", "private", None), &other));
        assert!(!enforcer.enforce("download_image", &image("p1", "private", None), &other));
        assert!(!enforcer.enforce("modify_image", &image("p1", "public", None), &other));
        assert!(!enforcer.enforce("delete_image", &image("p1", "public", None), &other));
    }

    #[test]
    fn image_member_decisions() {
        let enforcer = enforcer();
        let other = creds("p2", &["member", "reader"]);
        let shared = image("p1", "shared", Some("p2"));
        assert!(enforcer.enforce("get_image", &shared, &other));
        assert!(enforcer.enforce("get_member", &shared, &other));
        assert!(enforcer.enforce("modify_member", &shared, &other));
        assert!(!enforcer.enforce("add_member", &shared, &other));
        assert!(!enforcer.enforce("delete_member", &shared, &other));
        // The owner cannot accept or reject on the member's behalf.
        assert!(!enforcer.enforce("modify_member", &image("p1", "shared", None), &creds("p1", &["member"])));
        // A non-member reading another project's private image's members.
        assert!(!enforcer.enforce("get_members", &image("p1", "private", None), &other));
    }

    #[test]
    fn admin_can_do_everything() {
        let enforcer = enforcer();
        let admin = creds("p9", &["admin", "member", "reader"]);
        let target = image("p1", "private", None);
        for (name, _) in DEFAULT_RULES {
            assert!(enforcer.enforce(name, &target, &admin), "admin denied {name}");
        }
    }

    #[test]
    fn metadef_decisions() {
        let enforcer = enforcer();
        let reader = creds("p2", &["reader"]);
        assert!(enforcer.enforce("get_metadef_namespace", &namespace("p1", "public"), &reader));
        assert!(enforcer.enforce("get_metadef_objects", &namespace("p1", "public"), &reader));
        assert!(!enforcer.enforce("get_metadef_namespace", &namespace("p1", "private"), &reader));
        assert!(enforcer.enforce("get_metadef_namespace", &namespace("p2", "private"), &reader));
        assert!(enforcer.enforce("get_metadef_namespaces", &json!({"project_id": "p2"}), &reader));
        let member = creds("p1", &["member", "reader"]);
        for rule in ["add_metadef_namespace", "modify_metadef_namespace", "add_metadef_tags", "remove_metadef_property"]
        {
            assert!(!enforcer.enforce(rule, &namespace("p1", "private"), &member), "member: {rule}");
        }
    }

    #[test]
    fn service_and_task_rules() {
        let enforcer = enforcer();
        let service = creds("svc", &["service"]);
        assert!(enforcer.enforce("stores_info_detail", &json!({}), &service));
        assert!(enforcer.enforce("fetch_image_location", &image("p1", "private", None), &service));
        assert!(!enforcer.enforce("stores_info_detail", &json!({}), &creds("p1", &["member"])));
        // The per-task rules fall through to the open `default` rule.
        assert!(enforcer.enforce("get_task", &json!({}), &creds("p1", &["reader"])));
    }
}
