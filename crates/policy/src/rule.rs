//! The parsed form of a check string and its evaluation.
//!
//! Values are compared the way oslo.policy compares them: both sides are
//! turned into the text Python's `str()` would produce (`"True"`/`"False"`
//! for booleans, `"None"` for null, the decimal form for numbers) and
//! compared as strings. Keystone's defaults depend on that, e.g.
//! `None:%(target.role.domain_id)s` ("the role is global") or
//! `not domain_id:None` ("the token is domain scoped").

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde_json::Value;

/// How many `rule:` indirections one evaluation may follow before it is
/// abandoned (and the whole enforcement denies). Guards against rules that
/// refer to themselves, directly or through other rules.
pub const MAX_RULE_DEPTH: usize = 32;

/// A parsed check string: a tree of checks joined by `and`, `or` and `not`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// `@`, or the empty check string: always passes.
    Allow,
    /// `!`: never passes.
    Deny,
    /// `not <rule>`.
    Not(Box<Rule>),
    /// `<rule> and <rule> ...`: every member must pass.
    And(Vec<Rule>),
    /// `<rule> or <rule> ...`: at least one member must pass.
    Or(Vec<Rule>),
    /// A single `kind:match` check.
    Check(Check),
}

/// One `kind:match` check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// `rule:<name>`: the result of another rule. A rule that does not exist
    /// fails.
    Rule(String),
    /// `role:<name>`: the credentials' `roles` list holds the (substituted)
    /// name, compared case-insensitively.
    Role(Template),
    /// `http:<url>` / `https:<url>`: oslo.policy's remote checks. They are not
    /// supported here (there is no remote policy server) and always fail.
    Remote {
        /// `http` or `https`.
        scheme: String,
        /// The URL template, as written.
        url: String,
    },
    /// Any other `kind:match` check: compares a credentials attribute (or a
    /// literal) with the (substituted) match value.
    Generic {
        /// The left-hand side.
        left: Operand,
        /// The right-hand side.
        right: Template,
    },
}

/// Left-hand side of a generic check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    /// A key into the credentials: looked up as a flat key first, then as a
    /// dotted path into nested objects (`token.project.domain.id`).
    Creds(String),
    /// A Python literal (`'member'`, `"x"`, `True`, `False`, `None`, a number),
    /// stored as the text `str()` of it gives. The check compares it with
    /// the right-hand side and never looks at the credentials.
    Literal {
        /// As written in the check string.
        source: String,
        /// What it compares as.
        value: String,
    },
}

/// Right-hand side of a check: literal text with optional `%(name)s`
/// substitutions taken from the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    pub(crate) parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    Text(String),
    Target(String),
}

/// Where `rule:<name>` checks find the rules they refer to.
pub trait RuleLookup {
    /// The rule called `name`, if there is one.
    fn lookup_rule(&self, name: &str) -> Option<&Rule>;
}

impl RuleLookup for HashMap<String, Rule> {
    fn lookup_rule(&self, name: &str) -> Option<&Rule> {
        self.get(name)
    }
}

impl RuleLookup for BTreeMap<String, Rule> {
    fn lookup_rule(&self, name: &str) -> Option<&Rule> {
        self.get(name)
    }
}

/// A [`RuleLookup`] that knows no rules (every `rule:` check fails).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRules;

impl RuleLookup for NoRules {
    fn lookup_rule(&self, _name: &str) -> Option<&Rule> {
        None
    }
}

/// Evaluation was abandoned because [`MAX_RULE_DEPTH`] was exceeded.
struct TooDeep;

impl Rule {
    /// Evaluates the rule for `creds` acting on `target`.
    ///
    /// `rules` resolves `rule:` references. Evaluation that follows more than
    /// [`MAX_RULE_DEPTH`] references is abandoned and yields `false` as a
    /// whole (a `not` above the runaway reference cannot turn it into a pass).
    pub fn evaluate<L>(&self, target: &Value, creds: &Value, rules: &L) -> bool
    where
        L: RuleLookup + ?Sized,
    {
        self.eval(target, creds, rules, 0).unwrap_or(false)
    }

    fn eval<L>(&self, target: &Value, creds: &Value, rules: &L, depth: usize) -> Result<bool, TooDeep>
    where
        L: RuleLookup + ?Sized,
    {
        match self {
            Rule::Allow => Ok(true),
            Rule::Deny => Ok(false),
            Rule::Not(inner) => Ok(!inner.eval(target, creds, rules, depth)?),
            Rule::And(members) => {
                for member in members {
                    if !member.eval(target, creds, rules, depth)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Rule::Or(members) => {
                for member in members {
                    if member.eval(target, creds, rules, depth)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Rule::Check(check) => check.eval(target, creds, rules, depth),
        }
    }

    /// Names of all rules this rule refers to with `rule:` (not recursive).
    pub fn referenced_rules(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_references(&mut out);
        out
    }

    fn collect_references<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Rule::Allow | Rule::Deny => {}
            Rule::Not(inner) => inner.collect_references(out),
            Rule::And(members) | Rule::Or(members) => {
                for member in members {
                    member.collect_references(out);
                }
            }
            Rule::Check(Check::Rule(name)) => out.push(name),
            Rule::Check(_) => {}
        }
    }
}

impl Check {
    fn eval<L>(&self, target: &Value, creds: &Value, rules: &L, depth: usize) -> Result<bool, TooDeep>
    where
        L: RuleLookup + ?Sized,
    {
        match self {
            Check::Rule(name) => {
                if depth >= MAX_RULE_DEPTH {
                    return Err(TooDeep);
                }
                match rules.lookup_rule(name) {
                    Some(rule) => rule.eval(target, creds, rules, depth + 1),
                    None => Ok(false),
                }
            }
            Check::Role(template) => Ok(template.render(target).is_some_and(|wanted| has_role(creds, &wanted))),
            Check::Remote { .. } => Ok(false),
            Check::Generic { left, right } => {
                let Some(wanted) = right.render(target) else {
                    return Ok(false);
                };
                Ok(match left {
                    Operand::Literal { value, .. } => *value == wanted,
                    Operand::Creds(key) => creds_match(creds, key, &wanted),
                })
            }
        }
    }
}

fn has_role(creds: &Value, wanted: &str) -> bool {
    let wanted = wanted.to_lowercase();
    match creds.get("roles") {
        Some(Value::Array(roles)) => roles.iter().filter_map(Value::as_str).any(|role| role.to_lowercase() == wanted),
        _ => false,
    }
}

/// Does the credentials attribute `key` equal `wanted`? A flat key wins over
/// a dotted path; lists anywhere along the path match when any element does.
fn creds_match(creds: &Value, key: &str, wanted: &str) -> bool {
    if let Some(value) = creds.get(key) {
        return leaf_matches(value, wanted);
    }
    let segments: Vec<&str> = key.split('.').collect();
    path_matches(creds, &segments, wanted)
}

fn path_matches(value: &Value, segments: &[&str], wanted: &str) -> bool {
    match segments.split_first() {
        None => leaf_matches(value, wanted),
        Some((first, rest)) => match value {
            Value::Object(map) => map.get(*first).is_some_and(|child| path_matches(child, rest, wanted)),
            Value::Array(items) => items.iter().any(|item| path_matches(item, segments, wanted)),
            _ => false,
        },
    }
}

fn leaf_matches(value: &Value, wanted: &str) -> bool {
    match value {
        Value::Array(items) => items.iter().any(|item| leaf_matches(item, wanted)),
        other => python_str(other).is_some_and(|text| text == wanted),
    }
}

/// The text Python's `str()` gives for a scalar JSON value; `None` for
/// arrays and objects (which never compare equal to anything here).
fn python_str(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(true) => Some("True".to_owned()),
        Value::Bool(false) => Some("False".to_owned()),
        Value::Null => Some("None".to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// Finds `name` in the target: as a flat key first (`"target.user.id"`), then
/// as a dotted path into nested objects.
fn target_value<'a>(target: &'a Value, name: &str) -> Option<&'a Value> {
    if let Some(value) = target.get(name) {
        return Some(value);
    }
    let mut current = target;
    for segment in name.split('.') {
        current = current.as_object()?.get(segment)?;
    }
    Some(current)
}

impl Template {
    pub(crate) fn new(source: String, parts: Vec<Part>) -> Self {
        Template { source, parts }
    }

    /// The right-hand side as written in the check string.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Names of the target attributes this template substitutes.
    pub fn target_keys(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Target(name) => Some(name.as_str()),
            Part::Text(_) => None,
        })
    }

    /// Substitutes target values into the template. `None` when a
    /// substituted key is missing from the target (or is a list/object), in
    /// which case the check fails. A null target value renders as `None`,
    /// as in Python.
    pub fn render(&self, target: &Value) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Target(name) => out.push_str(&python_str(target_value(target, name)?)?),
            }
        }
        Some(out)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Creds(key) => f.write_str(key),
            Operand::Literal { source, .. } => f.write_str(source),
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::Rule(name) => write!(f, "rule:{name}"),
            Check::Role(template) => write!(f, "role:{template}"),
            Check::Remote { scheme, url } => write!(f, "{scheme}:{url}"),
            Check::Generic { left, right } => write!(f, "{left}:{right}"),
        }
    }
}

/// Renders the rule back into the policy language (fully parenthesised,
/// so the text re-parses into the same tree).
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn join(f: &mut fmt::Formatter<'_>, members: &[Rule], op: &str) -> fmt::Result {
            f.write_str("(")?;
            for (i, member) in members.iter().enumerate() {
                if i > 0 {
                    write!(f, " {op} ")?;
                }
                write!(f, "{member}")?;
            }
            f.write_str(")")
        }
        match self {
            Rule::Allow => f.write_str("@"),
            Rule::Deny => f.write_str("!"),
            Rule::Not(inner) => write!(f, "not {inner}"),
            Rule::And(members) => join(f, members, "and"),
            Rule::Or(members) => join(f, members, "or"),
            Rule::Check(check) => write!(f, "{check}"),
        }
    }
}
