//! Checks Keystone's default rules (kept in the identity crate) against this
//! engine. The identity crate's file is included textually so that it is
//! verified here even while the identity crate itself is being written; its
//! own unit tests (every rule parses, names are unique) run here too.

#![allow(clippy::unwrap_used)]

mod keystone {
    include!("../../identity/src/policies.rs");
}

use keystone::DEFAULT_RULES;
use serde_json::{Value, json};
use stratus_policy::{Enforcer, parse_rule};

fn enforcer() -> Enforcer {
    let mut enforcer = Enforcer::new();
    enforcer.register_defaults(DEFAULT_RULES).unwrap();
    enforcer
}

/// Credentials shaped like the ones Stratus services build from a token.
fn project_creds(user: &str, project: &str, domain: &str, roles: &[&str]) -> Value {
    json!({
        "user_id": user,
        "user_domain_id": domain,
        "project_id": project,
        "project_domain_id": domain,
        "domain_id": null,
        "system_scope": null,
        "roles": roles,
        "is_admin_project": false,
        "token": {
            "user": {"id": user, "domain": {"id": domain}},
            "project": {"id": project, "domain": {"id": domain}},
        }
    })
}

fn domain_creds(user: &str, domain: &str, roles: &[&str]) -> Value {
    json!({
        "user_id": user,
        "user_domain_id": domain,
        "project_id": null,
        "project_domain_id": null,
        "domain_id": domain,
        "system_scope": null,
        "roles": roles,
        "is_admin_project": false,
        "token": {
            "user": {"id": user, "domain": {"id": domain}},
            "domain": {"id": domain},
        }
    })
}

fn system_creds(user: &str, roles: &[&str]) -> Value {
    json!({
        "user_id": user,
        "user_domain_id": "default",
        "project_id": null,
        "project_domain_id": null,
        "domain_id": null,
        "system_scope": "all",
        "roles": roles,
        "is_admin_project": false,
        "token": {"user": {"id": user, "domain": {"id": "default"}}, "system": {"all": true}}
    })
}

#[test]
fn every_rule_parses_and_references_resolve() {
    for (name, check) in DEFAULT_RULES {
        if let Err(err) = parse_rule(name, check) {
            panic!("{err}");
        }
    }
    let enforcer = enforcer();
    assert_eq!(enforcer.len(), DEFAULT_RULES.len(), "names are unique");
    assert!(enforcer.dangling_references().is_empty(), "{:?}", enforcer.dangling_references());
}

#[test]
fn covers_the_expected_apis() {
    let enforcer = enforcer();
    for name in [
        "admin_required",
        "service_role",
        "service_or_admin",
        "owner",
        "admin_or_owner",
        "token_subject",
        "admin_or_token_subject",
        "service_admin_or_token_subject",
        "identity:get_user",
        "identity:list_users",
        "identity:create_project",
        "identity:check_token",
        "identity:validate_token",
        "identity:revocation_list",
        "identity:create_application_credential",
        "identity:list_role_assignments",
        "identity:get_limit",
        "identity:create_registered_limits",
        "identity:list_endpoints",
        "identity:get_region",
        "identity:get_auth_catalog",
        "identity:get_auth_projects",
        "identity:get_auth_domains",
        "identity:get_auth_system",
        "identity:list_revoke_events",
        "identity:create_grant",
        "identity:create_system_grant_for_user",
        "identity:create_implied_role",
        "identity:create_domain_role",
        "identity:update_project_tags",
        "identity:create_policy",
        "identity:create_credential",
    ] {
        assert!(enforcer.rule(name).is_some(), "missing {name}");
    }
}

#[test]
fn project_admin_passes_everything_admin_only() {
    let enforcer = enforcer();
    let admin = project_creds("admin", "p-admin", "default", &["admin", "member", "reader"]);
    let other = json!({
        "target.user.id": "someone",
        "target.user.domain_id": "d2",
        "target.project.id": "p9",
        "target.project.domain_id": "d2",
    });
    for rule in [
        "identity:get_user",
        "identity:list_users",
        "identity:create_user",
        "identity:create_project",
        "identity:create_domain",
        "identity:create_endpoint",
        "identity:create_registered_limits",
        "identity:revocation_list",
        "identity:list_revoke_events",
        "identity:create_system_grant_for_user",
    ] {
        assert!(enforcer.enforce(rule, &other, &admin), "{rule}");
    }
}

#[test]
fn system_reader_reads_but_does_not_write() {
    let enforcer = enforcer();
    let reader = system_creds("sysreader", &["reader"]);
    let target = json!({"target.user.id": "x", "target.user.domain_id": "d1"});
    assert!(enforcer.enforce("identity:list_users", &json!({}), &reader));
    assert!(enforcer.enforce("identity:get_user", &target, &reader));
    assert!(enforcer.enforce("identity:list_endpoints", &json!({}), &reader));
    assert!(enforcer.enforce("identity:check_token", &json!({"target.token.user_id": "x"}), &reader));
    assert!(!enforcer.enforce("identity:create_user", &target, &reader));
    assert!(!enforcer.enforce("identity:create_endpoint", &json!({}), &reader));
    assert!(!enforcer.enforce("identity:revoke_token", &json!({"target.token.user_id": "x"}), &reader));
}

#[test]
fn project_member_sees_only_own_things() {
    let enforcer = enforcer();
    let member = project_creds("u1", "p1", "d1", &["member", "reader"]);
    let none = json!({});

    // Auth discovery, regions and registered limits are open.
    for rule in [
        "identity:get_auth_catalog",
        "identity:get_auth_projects",
        "identity:get_region",
        "identity:list_registered_limits",
        "identity:list_limits",
    ] {
        assert!(enforcer.enforce(rule, &none, &member), "{rule}");
    }

    // Users: self only.
    let me = json!({"target.user.id": "u1", "target.user.domain_id": "d1"});
    let them = json!({"target.user.id": "u2", "target.user.domain_id": "d1"});
    assert!(enforcer.enforce("identity:get_user", &me, &member));
    assert!(!enforcer.enforce("identity:get_user", &them, &member));
    assert!(!enforcer.enforce("identity:list_users", &none, &member));
    assert!(!enforcer.enforce("identity:update_user", &me, &member));

    // Projects: own project only.
    let own = json!({"target.project.id": "p1", "target.project.domain_id": "d1"});
    let foreign = json!({"target.project.id": "p2", "target.project.domain_id": "d1"});
    assert!(enforcer.enforce("identity:get_project", &own, &member));
    assert!(!enforcer.enforce("identity:get_project", &foreign, &member));
    assert!(!enforcer.enforce("identity:create_project", &own, &member));

    // The domain of the project the token is scoped to.
    assert!(enforcer.enforce("identity:get_domain", &json!({"target.domain.id": "d1"}), &member));
    assert!(!enforcer.enforce("identity:get_domain", &json!({"target.domain.id": "d2"}), &member));

    // Application credentials: keyed on the flat `user_id` from the URL.
    assert!(enforcer.enforce("identity:create_application_credential", &json!({"user_id": "u1"}), &member));
    assert!(!enforcer.enforce("identity:create_application_credential", &json!({"user_id": "u2"}), &member));
    assert!(enforcer.enforce("identity:list_application_credentials", &json!({"user_id": "u1"}), &member));

    // Tokens: own tokens only; validation also for the service role.
    let my_token = json!({"target.token.user_id": "u1"});
    let their_token = json!({"target.token.user_id": "u2"});
    assert!(enforcer.enforce("identity:check_token", &my_token, &member));
    assert!(enforcer.enforce("identity:validate_token", &my_token, &member));
    assert!(enforcer.enforce("identity:revoke_token", &my_token, &member));
    assert!(!enforcer.enforce("identity:validate_token", &their_token, &member));
    let service = project_creds("nova", "service", "default", &["service"]);
    assert!(enforcer.enforce("identity:validate_token", &their_token, &service));
    assert!(enforcer.enforce("identity:revocation_list", &none, &service));
    assert!(!enforcer.enforce("identity:revocation_list", &none, &member));

    // Credentials.
    let my_cred = json!({"target.credential.user_id": "u1"});
    assert!(enforcer.enforce("identity:create_credential", &my_cred, &member));
    assert!(!enforcer.enforce("identity:get_credential", &json!({"target.credential.user_id": "u2"}), &member));

    // Roles, endpoints, role assignments: admin or system reader only.
    assert!(!enforcer.enforce("identity:list_roles", &none, &member));
    assert!(!enforcer.enforce("identity:list_endpoints", &none, &member));
    assert!(!enforcer.enforce("identity:list_role_assignments", &none, &member));
}

#[test]
fn limits_for_project_and_domain() {
    let enforcer = enforcer();
    let member = project_creds("u1", "p1", "d1", &["reader"]);
    let own_project_limit = json!({"target.limit.project_id": "p1", "target.limit.project.domain_id": "d1"});
    let other_project_limit = json!({"target.limit.project_id": "p2", "target.limit.project.domain_id": "d9"});
    let domain_limit = json!({"target.limit.project_id": null, "target.limit.domain.id": "d1"});
    assert!(enforcer.enforce("identity:get_limit", &own_project_limit, &member));
    assert!(!enforcer.enforce("identity:get_limit", &other_project_limit, &member));
    assert!(!enforcer.enforce("identity:get_limit", &domain_limit, &member));

    let domain_reader = domain_creds("u2", "d1", &["reader"]);
    assert!(enforcer.enforce("identity:get_limit", &domain_limit, &domain_reader));
    assert!(enforcer.enforce("identity:get_limit", &own_project_limit, &domain_reader));
    assert!(!enforcer.enforce("identity:get_limit", &other_project_limit, &domain_reader));
}

#[test]
fn domain_manager_and_reader() {
    let enforcer = enforcer();
    let manager = domain_creds("m1", "d1", &["manager", "member", "reader"]);
    let reader = domain_creds("r1", "d1", &["reader"]);

    // Listing users of the token's domain: the target carries `domain_id`.
    let list_d1 = json!({"target.domain_id": "d1"});
    assert!(enforcer.enforce("identity:list_users", &list_d1, &reader));
    assert!(!enforcer.enforce("identity:list_users", &json!({"target.domain_id": "d2"}), &reader));

    // Users are managed through `token.domain.id`.
    let user_d1 = json!({"target.user.id": "x", "target.user.domain_id": "d1"});
    let user_d2 = json!({"target.user.id": "x", "target.user.domain_id": "d2"});
    assert!(enforcer.enforce("identity:create_user", &user_d1, &manager));
    assert!(!enforcer.enforce("identity:create_user", &user_d2, &manager));
    assert!(!enforcer.enforce("identity:create_user", &user_d1, &reader));
    assert!(enforcer.enforce("identity:get_user", &user_d1, &reader));

    // Projects in the domain; `not None:%(...)s` guards against null ids.
    let project_d1 = json!({"target.project.domain_id": "d1"});
    assert!(enforcer.enforce("identity:create_project", &project_d1, &manager));
    assert!(!enforcer.enforce("identity:create_project", &json!({"target.project.domain_id": "d2"}), &manager));
    assert!(!enforcer.enforce("identity:create_project", &project_d1, &reader));

    // `list_roles` relies on a null `domain_id` reading as `None`.
    assert!(enforcer.enforce("identity:list_roles", &json!({}), &manager));
    let project_manager = project_creds("m2", "p1", "d1", &["manager"]);
    assert!(!enforcer.enforce("identity:list_roles", &json!({}), &project_manager));

    // Grants: a domain manager may hand out global manager/member/reader
    // roles within its domain, but not admin.
    let grant = |role: &str| {
        json!({
            "target.user.domain_id": "d1",
            "target.project.domain_id": "d1",
            "target.role.name": role,
            "target.role.domain_id": null,
        })
    };
    assert!(enforcer.enforce("identity:create_grant", &grant("member"), &manager));
    assert!(enforcer.enforce("identity:revoke_grant", &grant("reader"), &manager));
    // The role-name comparison is a plain string comparison (case matters).
    assert!(!enforcer.enforce("identity:revoke_grant", &grant("Reader"), &manager));
    assert!(!enforcer.enforce("identity:create_grant", &grant("admin"), &manager));
    assert!(enforcer.enforce("identity:check_grant", &grant("admin"), &reader));
    let mut foreign = grant("member");
    foreign["target.project.domain_id"] = json!("d2");
    assert!(!enforcer.enforce("identity:create_grant", &foreign, &manager));
}

#[test]
fn null_target_values_compare_as_none() {
    // Keystone only puts `domain_id` in the list_users target for
    // domain-scoped tokens. A caller that sets it to null instead lets a
    // project-scoped reader through, because null == null as `None`.
    let enforcer = enforcer();
    let member = project_creds("u1", "p1", "d1", &["reader"]);
    assert!(!enforcer.enforce("identity:list_users", &json!({}), &member));
    assert!(enforcer.enforce("identity:list_users", &json!({"target.domain_id": null}), &member));
}
