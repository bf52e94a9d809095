//! An embedded engine for the [oslo.policy] rule language, as used by every
//! OpenStack service's `policy.yaml`.
//!
//! A service registers its default rules (name → check string) in an
//! [`Enforcer`], lets the operator override some of them from a YAML/JSON
//! policy file, and asks [`Enforcer::enforce`] whether some credentials may
//! perform an action on a target.
//!
//! # The language
//!
//! * `""` and `@` always pass, `!` never passes.
//! * `and`, `or`, `not` and parentheses combine checks; `not` binds tighter
//!   than `and`, which binds tighter than `or`. Keywords are case-insensitive.
//!   As in oslo.policy the string is split on whitespace, so operators and
//!   checks must be separated by spaces (parentheses may be glued on).
//! * `rule:NAME` is the result of another rule (a missing rule fails).
//!   Following more than [`MAX_RULE_DEPTH`] references denies, which stops
//!   self-referencing rules.
//! * `role:NAME` passes when the credentials' `roles` list holds `NAME`,
//!   compared case-insensitively. `NAME` may use substitutions.
//! * `http:URL` / `https:URL` (remote checks) are not supported: they parse
//!   but always fail.
//! * Any other `KEY:VALUE` is a generic check. `KEY` is looked up in the
//!   credentials as a flat key first and then as a dotted path into nested
//!   objects (`token.project.domain.id`); along the path, a list matches when
//!   any element matches. `KEY` may instead be a Python literal (`'member'`,
//!   `True`, `False`, `None`, a number), compared with `VALUE` directly.
//!   `VALUE` is literal text, a quoted literal (`'text'`/`"text"`, quotes
//!   removed), or contains `%(name)s` substitutions from the target (flat key
//!   first, then dotted path). A check whose substitution names a key the
//!   target lacks fails.
//!
//! Values compare as the strings Python's `str()` gives: booleans are `True`
//! and `False`, null is `None`, numbers are in decimal. Keystone's default
//! rules rely on this (`None:%(target.role.domain_id)s`, `not domain_id:None`,
//! `is_admin_project:True`), which also means a null on both sides matches:
//! callers should leave a key out of the target rather than set it to null
//! unless the rule is meant to see `None`.
//!
//! # Differences from oslo.policy
//!
//! * Malformed check strings are errors (naming the rule and byte position)
//!   instead of being logged and treated as `!`.
//! * A missing rule referenced by `rule:` fails even when a `default` rule
//!   exists; only [`Enforcer::enforce`] on an unknown name falls back to
//!   `default`.
//! * A quoted right-hand side (`role:'admin'`) loses its quotes; oslo.policy
//!   would compare them literally.
//! * Target values that are lists or objects are not rendered (the check
//!   fails) instead of being formatted as Python reprs.
//! * Policy files whose value is null are rejected (oslo.policy reads null as
//!   "allow everyone").
//!
//! [oslo.policy]: https://docs.openstack.org/oslo.policy/latest/admin/policy-yaml-file.html

mod error;
mod parser;
mod rule;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

pub use error::{INLINE_RULE, PolicyError};
pub use parser::{parse, parse_rule};
pub use rule::{Check, MAX_RULE_DEPTH, NoRules, Operand, Rule, RuleLookup, Template};

/// Name of the rule [`Enforcer::enforce`] falls back to for unknown rule names.
pub const DEFAULT_RULE: &str = "default";

/// A set of named, parsed rules that can be enforced.
#[derive(Debug, Clone, Default)]
pub struct Enforcer {
    rules: BTreeMap<String, Rule>,
}

impl Enforcer {
    /// An enforcer with no rules (which denies everything).
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers default rules as `(name, check string)` pairs. A name that
    /// is already registered is replaced. Nothing is registered if any check
    /// string fails to parse.
    pub fn register_defaults(&mut self, defaults: &[(&str, &str)]) -> Result<(), PolicyError> {
        let parsed = defaults
            .iter()
            .map(|(name, check)| Ok(((*name).to_owned(), parse_rule(name, check)?)))
            .collect::<Result<Vec<_>, PolicyError>>()?;
        self.rules.extend(parsed);
        Ok(())
    }

    /// Sets (or replaces) one rule.
    pub fn set_rule(&mut self, name: &str, check: &str) -> Result<(), PolicyError> {
        let rule = parse_rule(name, check)?;
        self.rules.insert(name.to_owned(), rule);
        Ok(())
    }

    /// Applies operator overrides: a YAML (or JSON) mapping of rule name to
    /// check string. Each listed rule replaces the registered one (or is
    /// added). An empty document changes nothing. Nothing is applied if any
    /// entry is invalid.
    ///
    /// Besides strings, the legacy list-of-lists form is accepted for a
    /// value: `[["role:a", "role:b"], ["role:c"]]` means
    /// `(role:a and role:b) or role:c`, and `[]` means `@`.
    pub fn load_overrides_str(&mut self, text: &str) -> Result<(), PolicyError> {
        self.load_overrides(text, "<string>")
    }

    /// Reads `path` and applies it like [`Enforcer::load_overrides_str`].
    pub fn load_overrides_file(&mut self, path: &Path) -> Result<(), PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io { path: path.to_owned(), source })?;
        self.load_overrides(&text, &path.display().to_string())
    }

    fn load_overrides(&mut self, text: &str, origin: &str) -> Result<(), PolicyError> {
        use serde_yaml_ng::Value as Yaml;

        let document: Yaml = serde_yaml_ng::from_str(text)
            .map_err(|source| PolicyError::Syntax { origin: origin.to_owned(), source })?;
        let document_error = |reason: String| PolicyError::Document { origin: origin.to_owned(), reason };
        let mapping = match document {
            Yaml::Null => return Ok(()),
            Yaml::Mapping(mapping) => mapping,
            _ => {
                return Err(document_error("expected a mapping of rule names to check strings".to_owned()));
            }
        };
        let mut parsed = Vec::with_capacity(mapping.len());
        for (key, value) in mapping {
            let Yaml::String(name) = key else {
                return Err(document_error(format!("rule name {key:?} is not a string")));
            };
            let rule = match value {
                Yaml::String(check) => parse_rule(&name, &check)?,
                Yaml::Sequence(alternatives) => legacy_list_rule(&name, &alternatives).ok_or_else(|| {
                    document_error(format!("rule `{name}`: a list value must be a list of lists of check strings"))
                })??,
                _ => {
                    return Err(document_error(format!("rule `{name}`: the value must be a check string")));
                }
            };
            parsed.push((name, rule));
        }
        self.rules.extend(parsed);
        Ok(())
    }

    /// Whether `creds` may perform the action guarded by rule `name` on
    /// `target`. Both are JSON objects. An unknown `name` is evaluated with
    /// the rule called [`DEFAULT_RULE`] if there is one, and denied otherwise.
    pub fn enforce(&self, name: &str, target: &Value, creds: &Value) -> bool {
        match self.rules.get(name).or_else(|| self.rules.get(DEFAULT_RULE)) {
            Some(rule) => rule.evaluate(target, creds, &self.rules),
            None => false,
        }
    }

    /// Names of all registered rules, in sorted order.
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules.keys().map(String::as_str)
    }

    /// The parsed rule called `name`.
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.get(name)
    }

    /// Number of registered rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether no rules are registered.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// `(rule, missing)` pairs for every `rule:missing` reference to a rule
    /// that is not registered (such references always fail). Useful as a
    /// start-up warning after loading overrides.
    pub fn dangling_references(&self) -> Vec<(&str, &str)> {
        self.rules
            .iter()
            .flat_map(|(name, rule)| {
                rule.referenced_rules()
                    .into_iter()
                    .filter(|target| !self.rules.contains_key(*target))
                    .map(move |target| (name.as_str(), target))
            })
            .collect()
    }
}

impl RuleLookup for Enforcer {
    fn lookup_rule(&self, name: &str) -> Option<&Rule> {
        self.rules.get(name)
    }
}

/// The legacy list-of-lists syntax: the outer list is `or`, each inner list
/// (or bare string) is `and`. `None` when the shape is wrong.
fn legacy_list_rule(name: &str, alternatives: &[serde_yaml_ng::Value]) -> Option<Result<Rule, PolicyError>> {
    use serde_yaml_ng::Value as Yaml;

    if alternatives.is_empty() {
        return Some(Ok(Rule::Allow));
    }
    let mut or_members = Vec::new();
    for alternative in alternatives {
        let checks: Vec<&str> = match alternative {
            Yaml::String(check) => vec![check.as_str()],
            Yaml::Sequence(items) => items.iter().map(Yaml::as_str).collect::<Option<_>>()?,
            _ => return None,
        };
        let mut and_members = Vec::with_capacity(checks.len());
        for check in checks {
            match parse_rule(name, check) {
                Ok(rule) => and_members.push(rule),
                Err(err) => return Some(Err(err)),
            }
        }
        match and_members.len() {
            0 => {}
            1 => or_members.extend(and_members),
            _ => or_members.push(Rule::And(and_members)),
        }
    }
    Some(Ok(match or_members.len() {
        0 => Rule::Deny,
        1 => or_members.remove(0),
        _ => Rule::Or(or_members),
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(check: &str, target: &Value, creds: &Value) -> bool {
        parse(check).unwrap().evaluate(target, creds, &NoRules)
    }

    fn project_member() -> Value {
        json!({
            "user_id": "u1",
            "user_domain_id": "d1",
            "project_id": "p1",
            "project_domain_id": "d1",
            "domain_id": null,
            "system_scope": null,
            "roles": ["Member", "reader"],
            "is_admin_project": false,
            "token": {
                "user": {"id": "u1", "domain": {"id": "d1"}},
                "project": {"id": "p1", "domain": {"id": "d1"}},
                "roles": [{"id": "r1", "name": "member"}, {"id": "r2", "name": "reader"}]
            }
        })
    }

    #[test]
    fn constants_evaluate() {
        let none = json!({});
        assert!(eval("", &none, &none));
        assert!(eval("@", &none, &none));
        assert!(!eval("!", &none, &none));
        assert!(!eval("not @", &none, &none));
        assert!(eval("not !", &none, &none));
    }

    #[test]
    fn roles_case_insensitive() {
        let creds = project_member();
        let none = json!({});
        assert!(eval("role:member", &none, &creds));
        assert!(eval("role:MEMBER", &none, &creds));
        assert!(eval("role:Reader", &none, &creds));
        assert!(!eval("role:admin", &none, &creds));
        assert!(!eval("role:admin", &none, &json!({"roles": "admin"})));
        assert!(!eval("role:admin", &none, &json!({})));
        assert!(!eval("role:admin", &none, &json!({"roles": [1, null]})));
    }

    #[test]
    fn role_substitution() {
        let creds = project_member();
        assert!(eval("role:%(target.role.name)s", &json!({"target.role.name": "READER"}), &creds));
        assert!(!eval("role:%(target.role.name)s", &json!({"target.role.name": "admin"}), &creds));
        assert!(!eval("role:%(target.role.name)s", &json!({}), &creds));
        assert!(eval("role:%(target.role.name)s", &json!({"target": {"role": {"name": "member"}}}), &creds));
    }

    #[test]
    fn boolean_operators() {
        let creds = project_member();
        let t = json!({});
        assert!(eval("role:member and role:reader", &t, &creds));
        assert!(!eval("role:member and role:admin", &t, &creds));
        assert!(eval("role:admin or role:reader", &t, &creds));
        assert!(!eval("role:admin or role:service", &t, &creds));
        assert!(eval("not role:admin", &t, &creds));
        assert!(!eval("not role:member", &t, &creds));
        // not > and > or: `not a and b or c` is `((not a) and b) or c`.
        assert!(eval("not role:admin and role:member or role:nope", &t, &creds));
        assert!(!eval("not role:member and role:member or role:nope", &t, &creds));
        // `a or b and c` is `a or (b and c)`.
        assert!(eval("role:member or role:admin and role:nope", &t, &creds));
        assert!(!eval("(role:member or role:admin) and role:nope", &t, &creds));
        assert!(eval("not (role:admin or role:service)", &t, &creds));
    }

    #[test]
    fn generic_flat_substitution() {
        let creds = project_member();
        assert!(eval("project_id:%(project_id)s", &json!({"project_id": "p1"}), &creds));
        assert!(!eval("project_id:%(project_id)s", &json!({"project_id": "p2"}), &creds));
        assert!(eval("user_id:%(target.user.id)s", &json!({"target.user.id": "u1"}), &creds));
        assert!(eval("user_id:u1", &json!({}), &creds));
        assert!(eval("user_id:'u1'", &json!({}), &creds));
        assert!(eval("user_id:\"u1\"", &json!({}), &creds));
        assert!(!eval("user_id:'u2'", &json!({}), &creds));
    }

    #[test]
    fn generic_nested_substitution_and_paths() {
        let creds = project_member();
        let nested = json!({"target": {"project": {"domain_id": "d1", "id": "p1"}}});
        assert!(eval("project_domain_id:%(target.project.domain_id)s", &nested, &creds));
        assert!(eval("token.project.domain.id:%(target.project.domain_id)s", &nested, &creds));
        assert!(!eval("token.domain.id:%(target.project.domain_id)s", &nested, &creds));
        // Flat key wins over the nested path.
        let both = json!({"target.project.id": "p1", "target": {"project": {"id": "other"}}});
        assert!(eval("project_id:%(target.project.id)s", &both, &creds));
        // Flat credential key wins too.
        let flat_creds = json!({"token.project.id": "flat", "token": {"project": {"id": "nested"}}});
        assert!(eval("token.project.id:flat", &json!({}), &flat_creds));
        assert!(!eval("token.project.id:nested", &json!({}), &flat_creds));
        let only_nested = json!({"token": {"project": {"id": "nested"}}});
        assert!(eval("token.project.id:nested", &json!({}), &only_nested));
    }

    #[test]
    fn missing_values_fail() {
        let creds = project_member();
        assert!(!eval("project_id:%(project_id)s", &json!({}), &creds));
        assert!(!eval("project_id:%(target.project.id)s", &json!({"target": {}}), &creds));
        assert!(!eval("nonexistent:p1", &json!({}), &creds));
        assert!(!eval("token.project.nope:p1", &json!({}), &creds));
        assert!(!eval("user_id.deeper:u1", &json!({}), &creds));
        // Missing target key: even `not` cannot rescue the check itself, but
        // it does negate its failure, as in oslo.policy.
        assert!(eval("not project_id:%(project_id)s", &json!({}), &creds));
        // Lists and objects are not rendered.
        assert!(!eval("project_id:%(x)s", &json!({"x": ["p1"]}), &creds));
        assert!(!eval("project_id:%(x)s", &json!({"x": {"id": "p1"}}), &creds));
        // A non-object target only serves literal checks.
        assert!(eval("project_id:p1", &Value::Null, &creds));
        assert!(!eval("project_id:%(x)s", &Value::Null, &creds));
    }

    #[test]
    fn python_str_comparisons() {
        let creds = project_member();
        let t = json!({});
        assert!(eval("is_admin_project:False", &t, &creds));
        assert!(!eval("is_admin_project:True", &t, &creds));
        assert!(eval("token.is_admin_project:True", &t, &json!({"token": {"is_admin_project": true}})));
        assert!(!eval("is_admin_project:true", &t, &json!({"is_admin_project": true})));
        assert!(eval("count:3", &t, &json!({"count": 3})));
        assert!(eval("ratio:0.5", &t, &json!({"ratio": 0.5})));
        assert!(eval("x:%(n)s", &json!({"n": 7}), &json!({"x": "7"})));
        assert!(eval("x:%(b)s", &json!({"b": true}), &json!({"x": "True"})));
        // null is `None` on both sides.
        assert!(eval("domain_id:None", &t, &creds));
        assert!(!eval("not domain_id:None", &t, &creds));
        assert!(eval("domain_id:%(target.domain_id)s", &json!({"target.domain_id": null}), &creds));
        // Object-valued credentials never match.
        assert!(!eval("token:x", &t, &creds));
    }

    #[test]
    fn literal_left_side() {
        let creds = json!({});
        let t = json!({"target.role.name": "member", "target.role.domain_id": null, "enabled": true, "n": 1});
        assert!(eval("'member':%(target.role.name)s", &t, &creds));
        assert!(eval("\"member\":%(target.role.name)s", &t, &creds));
        assert!(!eval("'admin':%(target.role.name)s", &t, &creds));
        assert!(eval("None:%(target.role.domain_id)s", &t, &creds));
        assert!(!eval("None:%(target.role.name)s", &t, &creds));
        assert!(eval("True:%(enabled)s", &t, &creds));
        assert!(!eval("False:%(enabled)s", &t, &creds));
        assert!(eval("1:%(n)s", &t, &creds));
        assert!(!eval("'member':%(missing)s", &t, &creds));
    }

    #[test]
    fn list_credentials_match_any_element() {
        let creds = json!({
            "groups": ["g1", "g2"],
            "token": {"roles": [{"name": "member"}, {"name": "reader"}]},
            "nested": [["a", "b"], ["c"]],
        });
        let t = json!({"g": "g2"});
        assert!(eval("groups:%(g)s", &t, &creds));
        assert!(!eval("groups:g3", &t, &creds));
        assert!(eval("token.roles.name:reader", &t, &creds));
        assert!(!eval("token.roles.name:admin", &t, &creds));
        assert!(eval("nested:c", &t, &creds));
    }

    #[test]
    fn remote_checks_fail() {
        let creds = project_member();
        assert!(!eval("http://policy.example.com/check", &json!({}), &creds));
        assert!(!eval("https://policy.example.com/%(x)s", &json!({"x": 1}), &creds));
        assert!(eval("not http://x", &json!({}), &creds));
    }

    #[test]
    fn rule_references() {
        let mut enforcer = Enforcer::new();
        enforcer
            .register_defaults(&[
                ("admin_required", "role:admin or is_admin:1"),
                ("owner", "user_id:%(user_id)s"),
                ("admin_or_owner", "rule:admin_required or rule:owner"),
                ("uses_missing", "rule:does_not_exist"),
                ("not_missing", "not rule:does_not_exist"),
            ])
            .unwrap();
        let creds = project_member();
        assert!(enforcer.enforce("admin_or_owner", &json!({"user_id": "u1"}), &creds));
        assert!(!enforcer.enforce("admin_or_owner", &json!({"user_id": "u2"}), &creds));
        assert!(enforcer.enforce("admin_or_owner", &json!({"user_id": "u2"}), &json!({"roles": ["admin"]})));
        assert!(!enforcer.enforce("uses_missing", &json!({}), &creds));
        assert!(enforcer.enforce("not_missing", &json!({}), &creds));
        assert_eq!(
            enforcer.dangling_references(),
            vec![("not_missing", "does_not_exist"), ("uses_missing", "does_not_exist")]
        );
    }

    #[test]
    fn recursion_guard() {
        let mut enforcer = Enforcer::new();
        enforcer
            .register_defaults(&[
                ("loop", "rule:loop"),
                ("ping", "rule:pong or role:nope"),
                ("pong", "rule:ping"),
                ("negated_loop", "not rule:negated_loop"),
                ("allow_or_loop", "@ or rule:loop"),
                ("loop_or_allow", "rule:loop or @"),
                ("not_loop", "not rule:loop"),
            ])
            .unwrap();
        let creds = project_member();
        let t = json!({});
        assert!(!enforcer.enforce("loop", &t, &creds));
        assert!(!enforcer.enforce("ping", &t, &creds));
        assert!(!enforcer.enforce("negated_loop", &t, &creds));
        // Short-circuiting happens before the runaway reference is reached.
        assert!(enforcer.enforce("allow_or_loop", &t, &creds));
        // A runaway reference denies the whole evaluation, even under `not`.
        assert!(!enforcer.enforce("loop_or_allow", &t, &creds));
        assert!(!enforcer.enforce("not_loop", &t, &creds));
    }

    #[test]
    fn deep_but_finite_chains_work() {
        let names: Vec<String> = (0..=MAX_RULE_DEPTH).map(|i| format!("r{i}")).collect();
        let checks: Vec<String> = (0..=MAX_RULE_DEPTH)
            .map(|i| if i == MAX_RULE_DEPTH { "@".to_owned() } else { format!("rule:r{}", i + 1) })
            .collect();
        let pairs: Vec<(&str, &str)> =
            names.iter().map(String::as_str).zip(checks.iter().map(String::as_str)).collect();
        let mut enforcer = Enforcer::new();
        enforcer.register_defaults(&pairs).unwrap();
        let t = json!({});
        // r0 follows exactly MAX_RULE_DEPTH references.
        assert!(enforcer.enforce("r0", &t, &t));
        enforcer.set_rule("start", "rule:r0").unwrap();
        assert!(!enforcer.enforce("start", &t, &t));
    }

    #[test]
    fn unknown_rule_uses_default() {
        let mut enforcer = Enforcer::new();
        let t = json!({});
        let creds = project_member();
        assert!(!enforcer.enforce("anything", &t, &creds));
        enforcer.register_defaults(&[("default", "role:member")]).unwrap();
        assert!(enforcer.enforce("anything", &t, &creds));
        assert!(!enforcer.enforce("anything", &t, &json!({"roles": []})));
        enforcer.set_rule("explicit", "!").unwrap();
        assert!(!enforcer.enforce("explicit", &t, &creds));
    }

    #[test]
    fn register_defaults_replaces_and_is_atomic() {
        let mut enforcer = Enforcer::new();
        enforcer.register_defaults(&[("a", "role:x"), ("b", "@")]).unwrap();
        enforcer.register_defaults(&[("a", "role:y")]).unwrap();
        assert_eq!(enforcer.rule("a").unwrap().to_string(), "role:y");
        let err = enforcer.register_defaults(&[("c", "@"), ("d", "role:")]).unwrap_err();
        assert!(err.to_string().contains("`d`"), "{err}");
        assert!(enforcer.rule("c").is_none());
        assert_eq!(enforcer.rule_names().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(enforcer.len(), 2);
        assert!(!enforcer.is_empty());
        assert!(Enforcer::new().is_empty());
    }

    #[test]
    fn overrides_replace_defaults() {
        let mut enforcer = Enforcer::new();
        enforcer
            .register_defaults(&[("identity:get_user", "role:admin"), ("identity:list_users", "role:admin")])
            .unwrap();
        let creds = project_member();
        let t = json!({});
        assert!(!enforcer.enforce("identity:get_user", &t, &creds));
        enforcer
            .load_overrides_str(
                "# operator policy\n\"identity:get_user\": \"role:reader\"\nidentity:new_rule: '!'\nidentity:open: ''\n",
            )
            .unwrap();
        assert!(enforcer.enforce("identity:get_user", &t, &creds));
        assert!(!enforcer.enforce("identity:list_users", &t, &creds));
        assert!(!enforcer.enforce("identity:new_rule", &t, &creds));
        assert!(enforcer.enforce("identity:open", &t, &creds));

        // JSON is YAML.
        enforcer.load_overrides_str(r#"{"identity:list_users": "role:member", "identity:get_user": "!"}"#).unwrap();
        assert!(enforcer.enforce("identity:list_users", &t, &creds));
        assert!(!enforcer.enforce("identity:get_user", &t, &creds));

        // Empty documents change nothing.
        enforcer.load_overrides_str("").unwrap();
        enforcer.load_overrides_str("# only a comment\n").unwrap();
        enforcer.load_overrides_str("{}").unwrap();
        assert!(enforcer.enforce("identity:list_users", &t, &creds));
    }

    #[test]
    fn overrides_are_atomic_and_validated() {
        let mut enforcer = Enforcer::new();
        enforcer.register_defaults(&[("a", "@")]).unwrap();
        let err = enforcer.load_overrides_str("a: '!'\nb: 'role:a or'\n").unwrap_err();
        assert!(matches!(&err, PolicyError::Parse { rule, .. } if rule == "b"), "{err}");
        assert!(enforcer.enforce("a", &json!({}), &json!({})), "nothing applied");

        for bad in ["a:\n", "a: 1\n", "a: true\n", "- a\n", "just text", "1: '@'\n", "a: {b: c}\n", "a: [[1]]\n"] {
            let err = enforcer.load_overrides_str(bad).unwrap_err();
            assert!(matches!(err, PolicyError::Document { .. }), "{bad:?}: {err}");
        }
        let err = enforcer.load_overrides_str("a: [unclosed\n").unwrap_err();
        assert!(matches!(err, PolicyError::Syntax { .. }), "{err}");
        assert!(enforcer.enforce("a", &json!({}), &json!({})));
    }

    #[test]
    fn legacy_list_syntax() {
        let mut enforcer = Enforcer::new();
        enforcer
            .load_overrides_str(
                "both: [[\"role:a\", \"role:b\"], [\"role:c\"]]\nempty: []\nempty_inner: [[]]\nbare: [\"role:a\"]\n",
            )
            .unwrap();
        let t = json!({});
        let ab = json!({"roles": ["a", "b"]});
        let a = json!({"roles": ["a"]});
        let c = json!({"roles": ["c"]});
        assert!(enforcer.enforce("both", &t, &ab));
        assert!(!enforcer.enforce("both", &t, &a));
        assert!(enforcer.enforce("both", &t, &c));
        assert!(enforcer.enforce("empty", &t, &t));
        assert!(!enforcer.enforce("empty_inner", &t, &ab));
        assert!(enforcer.enforce("bare", &t, &a));
        assert!(enforcer.load_overrides_str("bad: [[\"role:\"]]\n").is_err());
    }

    #[test]
    fn overrides_from_file() {
        let dir = std::env::temp_dir().join(format!("stratus-policy-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("policy.yaml");
        std::fs::write(&path, "\"identity:get_user\": \"role:reader\"\n").unwrap();
        let mut enforcer = Enforcer::new();
        enforcer.register_defaults(&[("identity:get_user", "!")]).unwrap();
        enforcer.load_overrides_file(&path).unwrap();
        assert!(enforcer.enforce("identity:get_user", &json!({}), &project_member()));
        std::fs::write(&path, "\"identity:get_user\": \"(\"\n").unwrap();
        assert!(enforcer.load_overrides_file(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();

        let err = enforcer.load_overrides_file(&dir.join("missing.yaml")).unwrap_err();
        assert!(matches!(err, PolicyError::Io { .. }));
        assert!(err.to_string().contains("missing.yaml"), "{err}");
    }
}
