//! The subset of JSON Schema placement validates its bodies and query strings
//! with, answering as placement (through the `jsonschema` library) does:
//! `JSON does not validate: 0 is less than the minimum of 1 ... Failed
//! validating 'minimum' in schema['properties']['total']`.
//!
//! Schemas are built in code (see `api::*` for each body). When several parts
//! of a document are wrong the shallowest error wins, as `jsonschema`'s
//! `best_match` picks it.

use serde_json::Value;

/// A JSON type a schema admits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Object,
    Array,
    String,
    Integer,
    Number,
    Null,
    Boolean,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Object => "object",
            Ty::Array => "array",
            Ty::String => "string",
            Ty::Integer => "integer",
            Ty::Number => "number",
            Ty::Null => "null",
            Ty::Boolean => "boolean",
        }
    }

    fn admits(self, v: &Value) -> bool {
        match self {
            Ty::Object => v.is_object(),
            Ty::Array => v.is_array(),
            Ty::String => v.is_string(),
            // jsonschema (draft 4) counts 1.0 as an integer
            Ty::Integer => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
            Ty::Number => v.is_number(),
            Ty::Null => v.is_null(),
            Ty::Boolean => v.is_boolean(),
        }
    }
}

/// A regular expression of a schema, as text for messages and as a predicate.
#[derive(Clone, Copy)]
pub struct Pattern {
    pub text: &'static str,
    pub test: fn(&str) -> bool,
}

fn is_uuid_chars(s: &str) -> bool {
    s.len() == 36 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// `^[0-9a-fA-F-]{36}$`: how placement's schemas spot a provider or consumer uuid.
pub const UUID_PATTERN: Pattern = Pattern { text: "^[0-9a-fA-F-]{36}$", test: is_uuid_chars };
/// `^[A-Z0-9_]+$`: a resource class (or a trait, or a consumer type).
pub const RC_PATTERN: Pattern = Pattern { text: "^[A-Z0-9_]+$", test: crate::standard::is_rc_name };
/// `^CUSTOM_[A-Z0-9_]+$`.
pub const CUSTOM_PATTERN: Pattern = Pattern { text: "^CUSTOM_[A-Z0-9_]+$", test: crate::standard::is_custom_name };
/// A request group suffix since 1.33.
pub const GROUP_PATTERN_1_33: Pattern = Pattern { text: "[a-zA-Z0-9_-]{1,64}", test: is_suffix_1_33 };

pub fn is_suffix_1_33(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A suffix before 1.33: `[1-9][0-9]*`.
pub fn is_suffix_numeric(s: &str) -> bool {
    !s.is_empty() && !s.starts_with('0') && s.bytes().all(|b| b.is_ascii_digit())
}

/// Is this text a UUID as oslo's `is_uuid_like` sees it (dashes optional, any case)?
pub fn is_uuid_like(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok_and(|u| {
        let simple = s.replace('-', "").to_ascii_lowercase();
        simple == u.simple().to_string()
    })
}

#[derive(Clone, Default)]
pub struct Schema {
    types: Vec<Ty>,
    properties: Vec<(&'static str, Schema)>,
    pattern_properties: Vec<(Pattern, Schema)>,
    closed: bool,
    required: Vec<&'static str>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    min_length: Option<usize>,
    max_length: Option<usize>,
    min_items: Option<usize>,
    min_properties: Option<usize>,
    unique_items: bool,
    enumeration: Vec<&'static str>,
    pattern: Option<Pattern>,
    format_uuid: bool,
    items: Option<Box<Schema>>,
    any_of: Vec<Schema>,
}

impl Schema {
    pub fn any() -> Schema {
        Schema::default()
    }
    pub fn of(types: &[Ty]) -> Schema {
        Schema { types: types.to_vec(), ..Schema::default() }
    }
    pub fn object() -> Schema {
        Schema::of(&[Ty::Object])
    }
    pub fn string() -> Schema {
        Schema::of(&[Ty::String])
    }
    pub fn integer() -> Schema {
        Schema::of(&[Ty::Integer])
    }
    pub fn number() -> Schema {
        Schema::of(&[Ty::Number])
    }
    pub fn array(items: Schema) -> Schema {
        Schema { items: Some(Box::new(items)), ..Schema::of(&[Ty::Array]) }
    }
    pub fn any_of(options: Vec<Schema>) -> Schema {
        Schema { any_of: options, ..Schema::default() }
    }
    pub fn uuid() -> Schema {
        Schema { format_uuid: true, ..Schema::string() }
    }
    pub fn prop(mut self, name: &'static str, s: Schema) -> Schema {
        self.properties.retain(|(n, _)| *n != name);
        self.properties.push((name, s));
        self
    }
    pub fn without(mut self, name: &'static str) -> Schema {
        self.properties.retain(|(n, _)| *n != name);
        self.required.retain(|n| *n != name);
        self
    }
    pub fn pattern_prop(mut self, p: Pattern, s: Schema) -> Schema {
        self.pattern_properties.push((p, s));
        self
    }
    /// `additionalProperties: false`.
    pub fn closed(mut self) -> Schema {
        self.closed = true;
        self
    }
    pub fn required(mut self, names: &[&'static str]) -> Schema {
        for n in names {
            if !self.required.contains(n) {
                self.required.push(n);
            }
        }
        self
    }
    pub fn min(mut self, v: f64) -> Schema {
        self.minimum = Some(v);
        self
    }
    pub fn max(mut self, v: f64) -> Schema {
        self.maximum = Some(v);
        self
    }
    pub fn min_len(mut self, n: usize) -> Schema {
        self.min_length = Some(n);
        self
    }
    pub fn max_len(mut self, n: usize) -> Schema {
        self.max_length = Some(n);
        self
    }
    pub fn min_items(mut self, n: usize) -> Schema {
        self.min_items = Some(n);
        self
    }
    pub fn min_props(mut self, n: usize) -> Schema {
        self.min_properties = Some(n);
        self
    }
    pub fn unique(mut self) -> Schema {
        self.unique_items = true;
        self
    }
    pub fn one_of_strings(mut self, values: &[&'static str]) -> Schema {
        self.enumeration = values.to_vec();
        self
    }
    pub fn matching(mut self, p: Pattern) -> Schema {
        self.pattern = Some(p);
        self
    }

    /// Validate `v`; the error reads as `jsonschema`'s `str(ValidationError)`.
    pub fn validate(&self, v: &Value) -> Result<(), String> {
        let mut errors = Vec::new();
        self.check(v, &mut Vec::new(), &mut Vec::new(), &mut errors);
        // best_match: the shallowest error, the first among equals
        match errors.into_iter().min_by_key(|e| e.instance_path.len()) {
            None => Ok(()),
            Some(e) => Err(e.render()),
        }
    }

    fn check(&self, v: &Value, ipath: &mut Vec<String>, spath: &mut Vec<String>, out: &mut Vec<Failure>) {
        let fail = |out: &mut Vec<Failure>, kw: &str, message: String, spath: &Vec<String>, ipath: &Vec<String>| {
            let mut schema_path = spath.clone();
            schema_path.push(kw.to_string());
            out.push(Failure {
                message,
                keyword: kw.to_string(),
                schema_path,
                instance_path: ipath.clone(),
                instance: py_repr(v),
            });
        };
        if !self.types.is_empty() && !self.types.iter().any(|t| t.admits(v)) {
            let names: Vec<String> = self.types.iter().map(|t| format!("'{}'", t.name())).collect();
            fail(out, "type", format!("{} is not of type {}", py_repr(v), names.join(", ")), spath, ipath);
            return;
        }
        if !self.any_of.is_empty() {
            let ok = self.any_of.iter().any(|s| {
                let mut sub = Vec::new();
                s.check(v, &mut ipath.clone(), &mut spath.clone(), &mut sub);
                sub.is_empty()
            });
            if !ok {
                fail(out, "anyOf", format!("{} is not valid under any of the given schemas", py_repr(v)), spath, ipath);
            }
        }
        match v {
            Value::Object(map) => {
                for (name, s) in &self.properties {
                    if let Some(child) = map.get(*name) {
                        ipath.push(name.to_string());
                        spath.extend(["properties".to_string(), name.to_string()]);
                        s.check(child, ipath, spath, out);
                        spath.truncate(spath.len() - 2);
                        ipath.pop();
                    }
                }
                for (p, s) in &self.pattern_properties {
                    for (k, child) in map {
                        if (p.test)(k) {
                            ipath.push(k.clone());
                            spath.extend(["patternProperties".to_string(), p.text.to_string()]);
                            s.check(child, ipath, spath, out);
                            spath.truncate(spath.len() - 2);
                            ipath.pop();
                        }
                    }
                }
                for r in &self.required {
                    if !map.contains_key(*r) {
                        fail(out, "required", format!("'{r}' is a required property"), spath, ipath);
                    }
                }
                if let Some(n) = self.min_properties
                    && map.len() < n
                {
                    fail(out, "minProperties", format!("{} does not have enough properties", py_repr(v)), spath, ipath);
                }
                if self.closed {
                    let extras: Vec<&String> = map
                        .keys()
                        .filter(|k| {
                            !self.properties.iter().any(|(n, _)| n == k)
                                && !self.pattern_properties.iter().any(|(p, _)| (p.test)(k))
                        })
                        .collect();
                    if !extras.is_empty() {
                        let quoted: Vec<String> = extras.iter().map(|k| py_str(k)).collect();
                        let message = if self.pattern_properties.is_empty() {
                            let verb = if extras.len() == 1 { "was" } else { "were" };
                            format!("Additional properties are not allowed ({} {verb} unexpected)", quoted.join(", "))
                        } else {
                            let verb = if extras.len() == 1 { "does" } else { "do" };
                            let mut pats: Vec<String> =
                                self.pattern_properties.iter().map(|(p, _)| py_str(p.text)).collect();
                            pats.sort();
                            format!("{} {verb} not match any of the regexes: {}", quoted.join(", "), pats.join(", "))
                        };
                        fail(out, "additionalProperties", message, spath, ipath);
                    }
                }
            }
            Value::Array(items) => {
                if let Some(n) = self.min_items
                    && items.len() < n
                {
                    fail(out, "minItems", format!("{} is too short", py_repr(v)), spath, ipath);
                }
                if self.unique_items {
                    let mut seen = std::collections::HashSet::new();
                    if !items.iter().all(|i| seen.insert(i.to_string())) {
                        fail(out, "uniqueItems", format!("{} has non-unique elements", py_repr(v)), spath, ipath);
                    }
                }
                if let Some(s) = &self.items {
                    for (i, child) in items.iter().enumerate() {
                        ipath.push(i.to_string());
                        spath.push("items".to_string());
                        s.check(child, ipath, spath, out);
                        spath.pop();
                        ipath.pop();
                    }
                }
            }
            Value::String(text) => {
                let len = text.chars().count();
                if let Some(n) = self.min_length
                    && len < n
                {
                    fail(out, "minLength", format!("{} is too short", py_repr(v)), spath, ipath);
                }
                if let Some(n) = self.max_length
                    && len > n
                {
                    fail(out, "maxLength", format!("{} is too long", py_repr(v)), spath, ipath);
                }
                if let Some(p) = self.pattern
                    && !(p.test)(text)
                {
                    fail(out, "pattern", format!("{} does not match {}", py_repr(v), py_str(p.text)), spath, ipath);
                }
                if self.format_uuid && !is_uuid_like(text) {
                    fail(out, "format", format!("{} is not a 'uuid'", py_repr(v)), spath, ipath);
                }
                if !self.enumeration.is_empty() && !self.enumeration.contains(&text.as_str()) {
                    let opts: Vec<String> = self.enumeration.iter().map(|e| py_str(e)).collect();
                    fail(out, "enum", format!("{} is not one of [{}]", py_repr(v), opts.join(", ")), spath, ipath);
                }
            }
            Value::Number(n) => {
                let f = n.as_f64().unwrap_or(0.0);
                if let Some(m) = self.minimum
                    && f < m
                {
                    fail(
                        out,
                        "minimum",
                        format!("{} is less than the minimum of {}", py_repr(v), num(m)),
                        spath,
                        ipath,
                    );
                }
                if let Some(m) = self.maximum
                    && f > m
                {
                    fail(
                        out,
                        "maximum",
                        format!("{} is greater than the maximum of {}", py_repr(v), num(m)),
                        spath,
                        ipath,
                    );
                }
            }
            _ => {}
        }
    }
}

struct Failure {
    message: String,
    keyword: String,
    schema_path: Vec<String>,
    instance_path: Vec<String>,
    instance: String,
}

impl Failure {
    fn render(&self) -> String {
        let spath: String = self.schema_path[..self.schema_path.len().saturating_sub(1)]
            .iter()
            .map(|s| format!("[{}]", py_str(s)))
            .collect();
        let ipath: String = self.instance_path.iter().map(|s| format!("[{}]", py_str(s))).collect();
        format!(
            "{}\n\nFailed validating '{}' in schema{}\n\nOn instance{}:\n    {}",
            self.message, self.keyword, spath, ipath, self.instance
        )
    }
}

fn num(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 { format!("{}", f as i64) } else { format!("{f}") }
}

/// A string as Python's `repr` shows it.
pub fn py_str(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') { format!("\"{s}\"") } else { format!("'{}'", s.replace('\'', "\\'")) }
}

/// A JSON value as Python's `repr` shows the decoded value.
pub fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => py_str(s),
        Value::Array(a) => format!("[{}]", a.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => {
            format!(
                "{{{}}}",
                o.iter().map(|(k, v)| format!("{}: {}", py_str(k), py_repr(v))).collect::<Vec<_>>().join(", ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn inventory() -> Schema {
        Schema::object()
            .prop("resource_provider_generation", Schema::integer())
            .prop("total", Schema::integer().min(1.0).max(2147483647.0))
            .required(&["total", "resource_provider_generation"])
            .closed()
    }

    #[test]
    fn messages() {
        let e = inventory().validate(&json!({"total": 0, "resource_provider_generation": 1})).unwrap_err();
        assert!(e.starts_with("0 is less than the minimum of 1"), "{e}");
        assert!(e.contains("Failed validating 'minimum' in schema['properties']['total']"), "{e}");
        let e = inventory().validate(&json!({"total": 0})).unwrap_err();
        assert!(e.starts_with("'resource_provider_generation' is a required property"), "{e}");
        let e = inventory().validate(&json!({"total": 1, "resource_provider_generation": 1, "x": 1})).unwrap_err();
        assert!(e.contains("Additional properties are not allowed ('x' was unexpected)"), "{e}");
        let e = inventory().validate(&json!({"total": "a", "resource_provider_generation": 1})).unwrap_err();
        assert!(e.starts_with("'a' is not of type 'integer'"), "{e}");
        assert!(inventory().validate(&json!({"total": 3, "resource_provider_generation": 1})).is_ok());
        let s = Schema::object().pattern_prop(RC_PATTERN, Schema::integer()).closed();
        let e = s.validate(&json!({"vcpu": 1})).unwrap_err();
        assert!(e.contains("'vcpu' does not match any of the regexes: '^[A-Z0-9_]+$'"), "{e}");
        let s = Schema::array(Schema::uuid()).unique();
        assert!(s.validate(&json!(["x"])).unwrap_err().contains("is not a 'uuid'"));
        let u = "5f0e4cbd-4d7e-4c0e-9a3c-3c1c1b6c5d11";
        assert!(s.validate(&json!([u, u])).unwrap_err().contains("has non-unique elements"));
        assert!(s.validate(&json!([u])).is_ok());
    }

    #[test]
    fn uuids() {
        assert!(is_uuid_like("5f0e4cbd-4d7e-4c0e-9a3c-3c1c1b6c5d11"));
        assert!(is_uuid_like("5f0e4cbd4d7e4c0e9a3c3c1c1b6c5d11"));
        assert!(is_uuid_like("5F0E4CBD-4D7E-4C0E-9A3C-3C1C1B6C5D11"));
        assert!(!is_uuid_like("not-a-uuid"));
        assert!(!is_uuid_like("{5f0e4cbd-4d7e-4c0e-9a3c-3c1c1b6c5d11}"));
    }
}
