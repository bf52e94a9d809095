//! What the resource modules share: Nova's validation messages (the words
//! of its JSON-schema validator), links and paging, and time formats.

use serde_json::{Map, Value};
use stratus_core::extract::RawQuery;

use crate::ComputeService;
use crate::error::{ComputeError, Result, bad};

/// Nova's `[api] max_limit`: the most items a page holds.
pub const MAX_LIMIT: usize = 1000;

/// `str()` of a value as Python prints it inside Nova's messages.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// `repr()` of a JSON value the way Python shows the decoded object.
pub fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        Value::Array(a) => format!("[{}]", a.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| format!("{}: {}", py_repr(&Value::String(k.clone())), py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A 400 about one field, as Nova words it.
pub fn invalid(field: &str, value: &Value, message: &str) -> ComputeError {
    bad(format!("Invalid input for field/attribute {field}. Value: {}. {message}", py_str(value)))
}

/// A 400 about one query parameter, as Nova words it.
pub fn invalid_query(param: &str, value: &str, message: &str) -> ComputeError {
    bad(format!("Invalid input for query parameters {param}. Value: {value}. {message}"))
}

/// The body must be an object; `parent` names it in messages (None: the body itself).
pub fn object<'a>(v: &'a Value, parent: Option<&str>) -> Result<&'a Map<String, Value>> {
    match v {
        Value::Object(o) => Ok(o),
        other => {
            let msg = format!("{} is not of type 'object'", py_repr(other));
            Err(match parent {
                Some(p) => invalid(p, other, &msg),
                None => bad(msg),
            })
        }
    }
}

/// `key` must be present in `obj` (named `parent` in messages).
pub fn required<'a>(obj: &'a Map<String, Value>, parent: Option<&str>, key: &str) -> Result<&'a Value> {
    obj.get(key).ok_or_else(|| {
        let msg = format!("'{key}' is a required property");
        match parent {
            Some(p) => invalid(p, &Value::Object(obj.clone()), &msg),
            None => bad(msg),
        }
    })
}

/// No keys beyond `allowed` (JSON schema's `additionalProperties: false`).
pub fn no_extra(obj: &Map<String, Value>, parent: Option<&str>, allowed: &[&str]) -> Result<()> {
    let extra: Vec<&String> = obj.keys().filter(|k| !allowed.contains(&k.as_str())).collect();
    if extra.is_empty() {
        return Ok(());
    }
    let list = extra.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", ");
    let verb = if extra.len() == 1 { "was" } else { "were" };
    let msg = format!("Additional properties are not allowed ({list} {verb} unexpected)");
    Err(match parent {
        Some(p) => invalid(p, &Value::Object(obj.clone()), &msg),
        None => bad(msg),
    })
}

/// The single top-level key of an action body (`{"add_host": {...}}`).
pub fn the_object<'a>(body: &'a Value, key: &str) -> Result<&'a Map<String, Value>> {
    let top = object(body, None)?;
    let inner = required(top, None, key)?;
    no_extra(top, None, &[key])?;
    object(inner, Some(key))
}

fn type_error(field: &str, v: &Value, types: &str) -> ComputeError {
    invalid(field, v, &format!("{} is not of type {types}", py_repr(v)))
}

/// A string of `min..=max` characters.
pub fn string<'a>(field: &str, v: &'a Value, min: usize, max: usize) -> Result<&'a str> {
    let Value::String(s) = v else {
        return Err(type_error(field, v, "'string'"));
    };
    length(field, v, s, min, max)?;
    no_nul(field, v, s)?;
    Ok(s)
}

/// PostgreSQL stores no NUL character in text: refuse it rather than fail.
pub fn no_nul(field: &str, v: &Value, s: &str) -> Result<()> {
    if s.contains('\0') {
        return Err(invalid(field, v, "The value holds a NUL character."));
    }
    Ok(())
}

fn length(field: &str, v: &Value, s: &str, min: usize, max: usize) -> Result<()> {
    let n = s.chars().count();
    if n < min {
        return Err(invalid(field, v, &format!("{} is too short", py_repr(v))));
    }
    if n > max {
        return Err(invalid(field, v, &format!("{} is too long", py_repr(v))));
    }
    Ok(())
}

/// A string or null.
pub fn opt_string<'a>(field: &str, v: &'a Value, min: usize, max: usize) -> Result<Option<&'a str>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => {
            length(field, v, s, min, max)?;
            no_nul(field, v, s)?;
            Ok(Some(s))
        }
        other => Err(type_error(field, other, "'string', 'null'")),
    }
}

/// One of `allowed`.
pub fn one_of<'a>(field: &str, v: &'a Value, allowed: &[&str]) -> Result<&'a str> {
    if let Value::String(s) = v
        && allowed.contains(&s.as_str())
    {
        return Ok(s);
    }
    if !v.is_string() {
        return Err(type_error(field, v, "'string'"));
    }
    let list = allowed.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(", ");
    Err(invalid(field, v, &format!("{} is not one of [{list}]", py_repr(v))))
}

/// An integer given as a number or a string of digits (`['integer', 'string']`
/// with Nova's pattern), within `min..=max`.
pub fn integer(field: &str, v: &Value, min: i64, max: i64, allow_negative: bool) -> Result<i64> {
    let n = match v {
        Value::Number(n) => match n.as_i64() {
            Some(i) => i,
            None => return Err(type_error(field, v, "'integer', 'string'")),
        },
        Value::String(s) => {
            let digits = s.strip_prefix('-').filter(|_| allow_negative).unwrap_or(s);
            let pattern = if allow_negative { "^-?[0-9]+$" } else { "^[0-9]+$" };
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(field, v, &format!("{} does not match '{pattern}'", py_repr(v))));
            }
            match s.parse::<i64>() {
                Ok(i) => i,
                Err(_) => {
                    return Err(invalid(field, v, &format!("{} is greater than the maximum of {max}", py_repr(v))));
                }
            }
        }
        other => return Err(type_error(field, other, "'integer', 'string'")),
    };
    if n < min {
        return Err(invalid(field, v, &format!("{} is less than the minimum of {min}", py_repr(v))));
    }
    if n > max {
        return Err(invalid(field, v, &format!("{} is greater than the maximum of {max}", py_repr(v))));
    }
    Ok(n)
}

/// The words `parameter_types.boolean` accepts (booleans and their spellings).
const BOOL_WORDS: &[(&str, bool)] = &[
    ("True", true),
    ("TRUE", true),
    ("true", true),
    ("1", true),
    ("ON", true),
    ("On", true),
    ("on", true),
    ("YES", true),
    ("Yes", true),
    ("yes", true),
    ("False", false),
    ("FALSE", false),
    ("false", false),
    ("0", false),
    ("OFF", false),
    ("Off", false),
    ("off", false),
    ("NO", false),
    ("No", false),
    ("no", false),
];

/// A boolean or one of its spellings.
pub fn boolean(field: &str, v: &Value) -> Result<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => BOOL_WORDS.iter().find(|(w, _)| *w == s).map(|(_, b)| *b).ok_or_else(|| {
            invalid(
                field,
                v,
                &format!(
                    "{} is not one of [True, {}, False, {}]",
                    py_repr(v),
                    BOOL_WORDS.iter().filter(|(_, b)| *b).map(|(w, _)| format!("'{w}'")).collect::<Vec<_>>().join(", "),
                    BOOL_WORDS
                        .iter()
                        .filter(|(_, b)| !*b)
                        .map(|(w, _)| format!("'{w}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        }),
        other => Err(type_error(field, other, "'boolean', 'string'")),
    }
}

/// oslo's `bool_from_string(strict=True)` for query parameters: None if not a boolean word.
pub fn bool_word(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Some(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Some(false),
        _ => None,
    }
}

fn printable(c: char) -> bool {
    // Nova's ranges cover the Basic Multilingual Plane only
    (c as u32) <= 0xFFFF && !c.is_control() && !is_format_or_separator(c)
}

fn is_format_or_separator(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x180E | 0x200B..=0x200F | 0x2028..=0x202E
        | 0x2060..=0x2064 | 0x2066..=0x206F | 0xD800..=0xF8FF | 0xFEFF | 0xFFF9..=0xFFFB)
}

fn space(c: char) -> bool {
    !printable(c) || c.is_whitespace()
}

/// `parameter_types.name`: 1-255 printable characters, no leading or trailing whitespace.
pub fn name(field: &str, v: &Value) -> Result<String> {
    let s = string(field, v, 1, 255)?;
    let ok = s.chars().all(printable) && !s.chars().next().is_some_and(space) && !s.chars().last().is_some_and(space);
    if !ok {
        return Err(bad(
            "An invalid 'name' value was provided. The name must be: printable characters. Can not start or end with whitespace.",
        ));
    }
    Ok(s.to_string())
}

/// `parameter_types.az_name`: as a name, without `:`.
pub fn az_name(field: &str, v: &Value) -> Result<String> {
    let s = string(field, v, 1, 255)?;
    let ok = s.chars().all(|c| printable(c) && c != ':')
        && !s.chars().next().is_some_and(space)
        && !s.chars().last().is_some_and(space);
    if !ok {
        return Err(bad(
            "An invalid 'name' value was provided. The name must be: printable characters except :.Can not start or end with whitespace.",
        ));
    }
    Ok(s.to_string())
}

/// A free-text description: printable characters (spaces included), up to `max`.
pub fn description(field: &str, v: &Value, max: usize) -> Result<Option<String>> {
    let Some(s) = opt_string(field, v, 0, max)? else {
        return Ok(None);
    };
    if !s.chars().all(printable) {
        return Err(invalid(field, v, &format!("{} does not match '^[printable characters]*$'", py_repr(v))));
    }
    // the column is a TEXT: 65535 bytes on MySQL
    if s.len() > max {
        return Err(invalid(field, v, &format!("{} is too long", py_repr(v))));
    }
    Ok(Some(s.to_string()))
}

/// `parameter_types.fqdn`: a host name (letters, digits, `-._`).
pub fn fqdn(field: &str, v: &Value) -> Result<String> {
    let s = string(field, v, 1, 255)?;
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) {
        return Err(invalid(field, v, &format!("{} does not match '^[a-zA-Z0-9-._]*$'", py_repr(v))));
    }
    Ok(s.to_string())
}

/// Is `s` a UUID in any of the spellings oslo's `is_uuid_like` accepts?
pub fn is_uuid_like(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok_and(|u| {
        let canonical = u.hyphenated().to_string();
        canonical == s.to_ascii_lowercase() || u.simple().to_string() == s.to_ascii_lowercase().replace('-', "")
    })
}

/// Query parameters a microversion accepts: before `strict_from`, unknown
/// ones are ignored; from it on they are a 400 (2.75 for most lists).
pub fn check_query(q: &RawQuery, allowed: &[&str], strict: bool) -> Result<()> {
    if !strict {
        return Ok(());
    }
    let mut extra: Vec<&str> = Vec::new();
    for (k, _) in &q.0 {
        if !allowed.contains(&k.as_str()) && !extra.contains(&k.as_str()) {
            extra.push(k);
        }
    }
    if extra.is_empty() {
        return Ok(());
    }
    let list = extra.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", ");
    let verb = if extra.len() == 1 { "was" } else { "were" };
    Err(bad(format!("Additional properties are not allowed ({list} {verb} unexpected)")))
}

/// `limit` and `marker` as Nova reads them: a limit beyond the maximum is the maximum.
pub fn limit_marker(q: &RawQuery) -> Result<(usize, Option<String>)> {
    let limit = match q.get("limit") {
        None => MAX_LIMIT,
        Some(v) => {
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid_query("limit", v, &format!("'{v}' does not match '^[0-9]*$'")));
            }
            v.parse::<usize>().unwrap_or(usize::MAX).min(MAX_LIMIT)
        }
    };
    Ok((limit, q.get("marker").map(str::to_string)))
}

/// An `offset` parameter (server groups page by offset).
pub fn offset(q: &RawQuery) -> Result<usize> {
    match q.get("offset") {
        None => Ok(0),
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => Ok(v.parse().unwrap_or(usize::MAX)),
        Some(v) => Err(invalid_query("offset", v, &format!("'{v}' does not match '^[0-9]*$'"))),
    }
}

/// `self` and `bookmark` links of an item.
pub fn links(svc: &ComputeService, collection: &str, id: &str) -> Value {
    serde_json::json!([
        {"rel": "self", "href": format!("{}/v2.1/{collection}/{id}", svc.base_url)},
        {"rel": "bookmark", "href": format!("{}/{collection}/{id}", svc.base_url)},
    ])
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The `next` link of a page, when the page is full: the request's
/// parameters (sorted, as Nova writes them) with `marker` set to the last item.
pub fn next_links(
    svc: &ComputeService,
    collection: &str,
    q: &RawQuery,
    shown: usize,
    limit: usize,
    last: Option<&str>,
) -> Vec<Value> {
    let Some(last) = last else { return Vec::new() };
    if limit == 0 || shown != limit {
        return Vec::new();
    }
    let mut params: Vec<(String, String)> = Vec::new();
    for (k, v) in &q.0 {
        if k != "marker" && !params.iter().any(|(pk, _)| pk == k) {
            params.push((k.clone(), v.clone()));
        }
    }
    params.sort();
    params.push(("marker".into(), last.to_string()));
    let qs = params.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&");
    vec![serde_json::json!({"rel": "next", "href": format!("{}/v2.1/{collection}?{qs}", svc.base_url)})]
}

/// A stored time as Nova's JSON shows naive datetimes: `2016-12-27T22:51:32.877711`.
pub fn naive_time(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us).unwrap_or_default().format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// Nova's 404 for a route this microversion does not have.
pub fn version_not_found() -> ComputeError {
    crate::error::not_found("The resource could not be found.")
}

/// Nova's `validate_integer` for path ids: `Invalid input received: id must be an integer`.
pub fn int_id(id: &str) -> Result<i64> {
    id.trim().parse::<i64>().map_err(|_| bad("Invalid input received: id must be an integer"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn python_reprs() {
        assert_eq!(py_repr(&json!({"a": [1, true, null, "x'y"]})), "{'a': [1, True, None, 'x\\'y']}");
        assert_eq!(py_str(&json!("abc")), "abc");
    }

    #[test]
    fn validators_speak_novas_words() {
        let e = integer("ram", &json!(0), 1, 10, false).unwrap_err();
        assert_eq!(e.to_string(), "Invalid input for field/attribute ram. Value: 0. 0 is less than the minimum of 1");
        assert_eq!(integer("ram", &json!("12"), 1, 100, false).unwrap(), 12);
        assert!(integer("ram", &json!("1.5"), 1, 100, false).is_err());
        assert!(integer("ram", &json!(1.5), 1, 100, false).is_err());
        assert_eq!(integer("q", &json!("-1"), -1, 100, true).unwrap(), -1);
        assert!(boolean("b", &json!("Yes")).unwrap());
        assert!(boolean("b", &json!("maybe")).is_err());
        assert!(name("n", &json!(" lead")).is_err());
        assert!(name("n", &json!("trail\t")).is_err());
        assert!(name("n", &json!("ok name")).is_ok());
        assert!(name("n", &json!("")).is_err());
        assert!(az_name("n", &json!("a:b")).is_err());
        assert!(description("d", &json!("line\nbreak"), 255).is_err());
        assert!(is_uuid_like("9d2f9c1e-5c3b-4b7a-8a3e-2f6b1c0d9e8f"));
        assert!(!is_uuid_like("42"));
        let extra = serde_json::Map::from_iter([("x".to_string(), json!(1))]);
        assert_eq!(
            no_extra(&extra, None, &[]).unwrap_err().to_string(),
            "Additional properties are not allowed ('x' was unexpected)"
        );
    }
}
