//! Cinder's list language over rendered items: filters, `sort`
//! (`key:dir,...`, or `sort_key`/`sort_dir`), `limit`/`marker`/`offset`
//! paging with a `next` link, `with_count`. Lists are made per project and
//! are small; they are filtered and paged in memory, the same on every
//! database.

use std::cmp::Ordering;

use serde_json::{Value, json};

use crate::error::{Result, bad, not_found};

/// The parameters of one list request.
#[derive(Debug, Default, Clone)]
pub struct ListQuery {
    pub limit: Option<usize>,
    pub marker: Option<String>,
    pub offset: usize,
    /// (key, descending)
    pub sort: Vec<(String, bool)>,
    /// Attribute filters, in the order given.
    pub filters: Vec<(String, String)>,
    pub all_tenants: bool,
    pub with_count: bool,
}

const CONTROL: &[&str] = &["limit", "marker", "offset", "sort", "sort_key", "sort_dir", "with_count", "all_tenants"];

fn truthy(v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Ok(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Ok(false),
        _ => Err(bad(format!("Invalid boolean value: {v}"))),
    }
}

impl ListQuery {
    pub fn parse(pairs: &[(String, String)]) -> Result<ListQuery> {
        let mut q = ListQuery::default();
        let mut sort_key: Vec<String> = Vec::new();
        let mut sort_dir: Vec<String> = Vec::new();
        for (k, v) in pairs {
            match k.as_str() {
                "limit" => {
                    let n: i64 = v.parse().map_err(|_| bad(format!("Invalid input received: limit={v}")))?;
                    if n < 0 {
                        return Err(bad("Invalid input received: limit must be >= 0"));
                    }
                    q.limit = Some(n as usize);
                }
                "marker" => q.marker = Some(v.clone()),
                "offset" => {
                    let n: i64 = v.parse().map_err(|_| bad(format!("Invalid input received: offset={v}")))?;
                    if n < 0 {
                        return Err(bad("Invalid input received: offset must be >= 0"));
                    }
                    q.offset = n as usize;
                }
                "sort" => {
                    for part in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        let (key, dir) = part.split_once(':').unwrap_or((part, "desc"));
                        q.sort.push((key.trim().to_string(), parse_dir(dir)?));
                    }
                }
                "sort_key" => sort_key.extend(v.split(',').map(|s| s.trim().to_string())),
                "sort_dir" => sort_dir.extend(v.split(',').map(|s| s.trim().to_string())),
                "with_count" => q.with_count = truthy(v)?,
                "all_tenants" => q.all_tenants = v.is_empty() || truthy(v).unwrap_or(true),
                _ => q.filters.push((k.clone(), v.clone())),
            }
        }
        if !sort_key.is_empty() || !sort_dir.is_empty() {
            if !q.sort.is_empty() {
                return Err(bad(
                    "The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with the 'sort' parameter.",
                ));
            }
            let keys = if sort_key.is_empty() { vec!["created_at".to_string()] } else { sort_key };
            for (i, key) in keys.into_iter().enumerate() {
                let dir = sort_dir.get(i).or(sort_dir.last()).map(String::as_str).unwrap_or("desc");
                q.sort.push((key, parse_dir(dir)?));
            }
        }
        Ok(q)
    }

    /// Take a filter out (the handler applies it itself).
    pub fn take(&mut self, name: &str) -> Option<String> {
        let i = self.filters.iter().position(|(k, _)| k == name)?;
        Some(self.filters.remove(i).1)
    }

    pub fn is_control(name: &str) -> bool {
        CONTROL.contains(&name)
    }
}

fn parse_dir(d: &str) -> Result<bool> {
    match d.trim().to_ascii_lowercase().as_str() {
        "asc" => Ok(false),
        "desc" => Ok(true),
        other => Err(bad(format!("Invalid input received: Invalid sort dirs passed: {other}"))),
    }
}

/// The text of a filter's value in a Python-literal dict (`{'k': 'v'}`), as
/// clients send metadata filters.
pub fn parse_dict(v: &str) -> Option<serde_json::Map<String, Value>> {
    let parsed = serde_json::from_str::<Value>(v).or_else(|_| serde_json::from_str::<Value>(&v.replace('\'', "\"")));
    match parsed {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Does `item` pass the filter `key=want`? Dicts (metadata) match when
/// they hold every pair asked; `name~` (3.34) matches a part of the name.
pub fn matches(item: &Value, key: &str, want: &str) -> bool {
    if let Some(k) = key.strip_suffix('~') {
        return item.get(k).and_then(Value::as_str).is_some_and(|s| s.contains(want));
    }
    match item.get(key) {
        Some(Value::Object(have)) => match parse_dict(want) {
            Some(asked) => asked.iter().all(|(k, v)| have.get(k).and_then(as_text) == as_text(v)),
            None => false,
        },
        Some(Value::Bool(b)) => truthy(want).map(|w| w == *b).unwrap_or(false),
        Some(Value::Null) | None => want.is_empty() || want.eq_ignore_ascii_case("none"),
        Some(v) => match as_text(v) {
            Some(s) if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") => {
                truthy(want).map(|w| w == s.eq_ignore_ascii_case("true")).unwrap_or(false)
            }
            Some(s) => s == want,
            None => false,
        },
    }
}

fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x.as_f64().unwrap_or(0.0).partial_cmp(&y.as_f64().unwrap_or(0.0)).unwrap_or(Ordering::Equal)
        }
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        _ => as_text(a).unwrap_or_default().cmp(&as_text(b).unwrap_or_default()),
    }
}

/// Filter, sort and page `items` (each has `id`); `sortable` are the keys a
/// client may sort by (400 otherwise). The link is `{base}/{collection}` (or
/// `/detail`) with the next page's marker, given when the page is full.
pub fn page(
    mut items: Vec<Value>,
    q: &ListQuery,
    sortable: &[&str],
    next_base: &str,
) -> Result<(Vec<Value>, Option<Value>, usize)> {
    items.retain(|it| q.filters.iter().all(|(k, v)| matches(it, k, v)));
    let count = items.len();
    let mut keys = q.sort.clone();
    for (k, _) in &keys {
        if !sortable.contains(&k.as_str()) {
            return Err(bad(format!("Invalid input received: Invalid sort key {k}")));
        }
    }
    if keys.is_empty() {
        keys.push(("created_at".into(), true));
    }
    if !keys.iter().any(|(k, _)| k == "id") {
        let last_desc = keys.last().map(|(_, d)| *d).unwrap_or(true);
        keys.push(("id".into(), last_desc));
    }
    items.sort_by(|a, b| {
        for (k, desc) in &keys {
            let o = compare(a.get(k).unwrap_or(&Value::Null), b.get(k).unwrap_or(&Value::Null));
            let o = if *desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    let mut start = 0;
    if let Some(m) = &q.marker {
        let i = items
            .iter()
            .position(|it| it.get("id").and_then(Value::as_str) == Some(m.as_str()))
            .ok_or_else(|| not_found(format!("Marker {m} could not be found.")))?;
        start = i + 1;
    }
    start += q.offset;
    let rest: Vec<Value> = items.into_iter().skip(start).collect();
    let total = rest.len();
    // as Cinder: a full page gets a `next` link, even when nothing follows
    let (page, more) = match q.limit {
        Some(l) => (rest.into_iter().take(l).collect::<Vec<_>>(), l > 0 && total >= l),
        None => (rest, false),
    };
    let link = if more {
        page.last().and_then(|it| it.get("id")).and_then(Value::as_str).map(|last| {
            let mut params: Vec<String> = Vec::new();
            if let Some(l) = q.limit {
                params.push(format!("limit={l}"));
            }
            params.push(format!("marker={last}"));
            for (k, desc) in &q.sort {
                params.push(format!("sort={k}:{}", if *desc { "desc" } else { "asc" }));
            }
            for (k, v) in &q.filters {
                params.push(format!("{k}={v}"));
            }
            json!([{"href": format!("{next_base}?{}", params.join("&")), "rel": "next"}])
        })
    } else {
        None
    };
    Ok((page, link, count))
}

/// A list's answer: `{"<collection>": page}`, with `<collection>_links` when
/// there is a next page and `count` when given (callers give it when asked
/// with `with_count`, from 3.45).
pub fn answer(collection: &str, page: Vec<Value>, links: Option<Value>, count: Option<usize>) -> Value {
    let mut out = json!({collection: page});
    if let Some(l) = links {
        out[format!("{collection}_links")] = l;
    }
    if let Some(n) = count {
        out["count"] = json!(n);
    }
    out
}
