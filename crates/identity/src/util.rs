//! Small helpers shared by identity's handlers and stores.

use serde_json::{Map, Value};

use crate::error::{IdentityError, Result, bad};

pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

pub fn us_to_iso(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us).map(stratus_core::time::iso_micro).unwrap_or_default()
}

pub fn iso_to_us(s: &str) -> Option<i64> {
    stratus_core::time::parse(s).map(|t| t.timestamp_micros())
}

/// A JSON request object with typed, field-naming accessors.
pub struct Obj<'a> {
    pub map: &'a Map<String, Value>,
    pub name: &'static str,
}

/// The object under `key` of a request body (`{"user": {...}}`), or a 400.
pub fn member<'a>(body: &'a Value, key: &'static str) -> Result<Obj<'a>> {
    match body.get(key) {
        Some(Value::Object(map)) => Ok(Obj { map, name: key }),
        Some(_) => Err(bad(format!("Invalid input for field '{key}': expected an object."))),
        None => Err(bad(format!("Expecting to find {key} in request body."))),
    }
}

impl<'a> Obj<'a> {
    pub fn get(&self, k: &str) -> Option<&'a Value> {
        self.map.get(k)
    }
    pub fn has(&self, k: &str) -> bool {
        self.map.contains_key(k)
    }
    fn wrong(&self, k: &str, what: &str) -> IdentityError {
        bad(format!("Invalid input for field '{}.{k}': expected {what}.", self.name))
    }
    /// Optional string (absent or null: None).
    pub fn str(&self, k: &str) -> Result<Option<String>> {
        match self.map.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.wrong(k, "a string")),
        }
    }
    /// Required non-empty string of at most `max` characters.
    pub fn req_str(&self, k: &str, max: usize) -> Result<String> {
        match self.str(k)? {
            Some(s) if s.trim().is_empty() => {
                Err(bad(format!("Invalid input for field '{}.{k}': it must not be empty.", self.name)))
            }
            Some(s) if s.chars().count() > max => {
                Err(bad(format!("Invalid input for field '{}.{k}': longer than {max} characters.", self.name)))
            }
            Some(s) => Ok(s),
            None => Err(bad(format!("Invalid input for field '{}.{k}': '{k}' is a required property.", self.name))),
        }
    }
    /// Optional string, checked for emptiness and length when present.
    pub fn opt_name(&self, k: &str, max: usize) -> Result<Option<String>> {
        if self.map.get(k).is_none_or(Value::is_null) {
            if self.map.get(k).is_some_and(Value::is_null) {
                return Err(self.wrong(k, "a string"));
            }
            return Ok(None);
        }
        self.req_str(k, max).map(Some)
    }
    pub fn bool(&self, k: &str) -> Result<Option<bool>> {
        match self.map.get(k) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.wrong(k, "a boolean")),
        }
    }
    /// Attributes not in `known`, kept as Keystone keeps them (the `extra` column).
    pub fn extra(&self, known: &[&str]) -> Map<String, Value> {
        self.map.iter().filter(|(k, _)| !known.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

pub fn parse_extra(s: &str) -> Map<String, Value> {
    serde_json::from_str(s).unwrap_or_default()
}

pub fn extra_string(m: &Map<String, Value>) -> String {
    Value::Object(m.clone()).to_string()
}

/// Merge stored extra attributes into a rendered object (rendered fields win).
pub fn with_extra(mut v: Value, extra: &str) -> Value {
    if let Value::Object(o) = &mut v {
        for (k, x) in parse_extra(extra) {
            o.entry(k).or_insert(x);
        }
    }
    v
}

/// Validate a filter value the API treats as boolean.
pub fn parse_bool_filter(v: &str) -> bool {
    !matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "no" | "off" | "n" | "f")
}
