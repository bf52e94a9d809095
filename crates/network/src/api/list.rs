//! Neutron's list query language, shared by every collection:
//! `?name=a&name=b` (any of), `fields=id&fields=name`, `sort_key=name&sort_dir=desc`
//! (repeatable), `limit`, `marker`, `page_reverse`, and the tag filters
//! `tags`, `tags-any`, `not-tags`, `not-tags-any` (comma-separated).
//!
//! The parsed [`ListParams`] go to the store, which turns filters, sorting and
//! keyset paging into SQL; [`render`] applies `fields=` and adds the
//! `<collection>_links` paging links.

use serde_json::{Map, Value, json};
use stratus_core::extract::RawQuery;

use crate::error::{Result, bad};

/// A parsed list request.
#[derive(Clone, Debug, Default)]
pub struct ListParams {
    /// Attribute filters in request order: attribute -> accepted values (any of).
    pub filters: Vec<(String, Vec<String>)>,
    /// `fields=`: the attributes to return (empty: all).
    pub fields: Vec<String>,
    /// `(attribute, ascending)` in priority order.
    pub sorts: Vec<(String, bool)>,
    pub limit: Option<u64>,
    pub marker: Option<String>,
    pub page_reverse: bool,
    /// Tag filters (each a list of tags).
    pub tags_all: Vec<String>,
    pub tags_any: Vec<String>,
    pub not_tags_all: Vec<String>,
    pub not_tags_any: Vec<String>,
}

/// Parameters that are not attribute filters.
const CONTROL: &[&str] = &[
    "fields",
    "sort_key",
    "sort_dir",
    "limit",
    "marker",
    "page_reverse",
    "tags",
    "tags-any",
    "not-tags",
    "not-tags-any",
];

impl ListParams {
    pub fn parse(q: &RawQuery) -> Result<ListParams> {
        let mut p = ListParams::default();
        let mut keys = Vec::new();
        let mut dirs = Vec::new();
        for (k, v) in &q.0 {
            match k.as_str() {
                "fields" => p.fields.extend(v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from)),
                "sort_key" => keys.push(v.clone()),
                "sort_dir" => match v.to_ascii_lowercase().as_str() {
                    "asc" => dirs.push(true),
                    "desc" => dirs.push(false),
                    _ => {
                        return Err(bad(format!(
                            "Invalid input for sort_dir. Reason: '{v}' is not a valid sort direction."
                        )));
                    }
                },
                "limit" => {
                    let n: i64 =
                        v.trim().parse().map_err(|_| bad(format!("Invalid limit: '{v}' is not an integer.")))?;
                    if n < 0 {
                        return Err(bad(format!("Limit must be an integer 0 or greater and not '{v}'")));
                    }
                    // 0 means no limit, as in Neutron
                    p.limit = (n > 0).then_some(n as u64);
                }
                "marker" => p.marker = Some(v.clone()),
                "page_reverse" => p.page_reverse = is_true(v),
                "tags" => p.tags_all.extend(split_tags(v)),
                "tags-any" => p.tags_any.extend(split_tags(v)),
                "not-tags" => p.not_tags_all.extend(split_tags(v)),
                "not-tags-any" => p.not_tags_any.extend(split_tags(v)),
                _ => match p.filters.iter_mut().find(|(f, _)| f == k) {
                    Some((_, vals)) => vals.push(v.clone()),
                    None => p.filters.push((k.clone(), vec![v.clone()])),
                },
            }
        }
        if !dirs.is_empty() && dirs.len() != keys.len() {
            return Err(bad("The number of sort_keys and sort_dirs must be same"));
        }
        p.sorts = keys.into_iter().enumerate().map(|(i, k)| (k, dirs.get(i).copied().unwrap_or(true))).collect();
        Ok(p)
    }

    /// Take a filter out of the generic ones (for a resource that handles it itself).
    pub fn take_filter(&mut self, name: &str) -> Option<Vec<String>> {
        let i = self.filters.iter().position(|(f, _)| f == name)?;
        Some(self.filters.remove(i).1)
    }

    pub fn is_control(name: &str) -> bool {
        CONTROL.contains(&name)
    }
}

/// Neutron's truth words for booleans in queries and bodies given as strings.
pub fn is_true(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on" | "t" | "y")
}

fn split_tags(v: &str) -> Vec<String> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

/// Keep only the requested `fields` of a rendered resource.
pub fn project(obj: Value, fields: &[String]) -> Value {
    if fields.is_empty() {
        return obj;
    }
    match obj {
        Value::Object(m) => Value::Object(m.into_iter().filter(|(k, _)| fields.iter().any(|f| f == k)).collect()),
        other => other,
    }
}

/// One page of a collection as Neutron renders it: `{"networks": [...], "networks_links": [...]}`.
///
/// `items` are rendered resources in the order asked for (already reversed
/// back when `page_reverse`), `more` says whether rows lay beyond the page in
/// the paging direction, `base` is the collection URL (`http://h:9696/v2.0/networks`).
pub fn render(collection: &str, items: Vec<Value>, p: &ListParams, more: bool, base: &str, query: &RawQuery) -> Value {
    let ids: Vec<String> = items.iter().map(|i| i["id"].as_str().unwrap_or_default().to_string()).collect();
    let items: Vec<Value> = items.into_iter().map(|i| project(i, &p.fields)).collect();
    let mut body = Map::new();
    body.insert(collection.to_string(), Value::Array(items));
    if let Some(limit) = p.limit {
        let mut links = Vec::new();
        let keep: Vec<(String, String)> =
            query.0.iter().filter(|(k, _)| k != "marker" && k != "page_reverse" && k != "limit").cloned().collect();
        let link = |marker: &str, reverse: bool| {
            let mut q = keep.clone();
            q.push(("limit".into(), limit.to_string()));
            q.push(("marker".into(), marker.to_string()));
            if reverse {
                q.push(("page_reverse".into(), "True".into()));
            }
            format!("{base}?{}", encode(&q))
        };
        // forward: more rows after the last one; backward: more before the first
        let (has_next, has_prev) = if p.page_reverse { (p.marker.is_some(), more) } else { (more, p.marker.is_some()) };
        if has_next && let Some(last) = ids.last() {
            links.push(json!({"rel": "next", "href": link(last, false)}));
        }
        if has_prev && let Some(first) = ids.first() {
            links.push(json!({"rel": "previous", "href": link(first, true)}));
        }
        if !links.is_empty() {
            body.insert(format!("{collection}_links"), Value::Array(links));
        }
    }
    Value::Object(body)
}

fn encode(pairs: &[(String, String)]) -> String {
    fn esc(s: &str) -> String {
        let mut out = String::new();
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    }
    pairs.iter().map(|(k, v)| format!("{}={}", esc(k), esc(v))).collect::<Vec<_>>().join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> RawQuery {
        RawQuery(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn parses_filters_sorts_and_paging() {
        let p = ListParams::parse(&q(&[
            ("name", "a"),
            ("name", "b"),
            ("fields", "id"),
            ("fields", "name"),
            ("sort_key", "name"),
            ("sort_dir", "desc"),
            ("limit", "2"),
            ("tags-any", "x,y"),
        ]))
        .unwrap();
        assert_eq!(p.filters, vec![("name".to_string(), vec!["a".to_string(), "b".to_string()])]);
        assert_eq!(p.fields, vec!["id", "name"]);
        assert_eq!(p.sorts, vec![("name".to_string(), false)]);
        assert_eq!(p.limit, Some(2));
        assert_eq!(p.tags_any, vec!["x", "y"]);
        assert!(ListParams::parse(&q(&[("limit", "x")])).is_err());
        assert!(ListParams::parse(&q(&[("limit", "-1")])).is_err());
        assert!(ListParams::parse(&q(&[("sort_dir", "up")])).is_err());
        assert!(ListParams::parse(&q(&[("sort_key", "a"), ("sort_key", "b"), ("sort_dir", "asc")])).is_err());
        assert_eq!(ListParams::parse(&q(&[("limit", "0")])).unwrap().limit, None);
    }

    #[test]
    fn links_follow_the_direction() {
        let items = vec![json!({"id": "a", "name": "x"}), json!({"id": "b", "name": "y"})];
        let query = q(&[("limit", "2"), ("name", "x y")]);
        let p = ListParams::parse(&query).unwrap();
        let body = render("networks", items.clone(), &p, true, "http://h/v2.0/networks", &query);
        let links = body["networks_links"].as_array().unwrap();
        assert_eq!(links.len(), 1);
        assert_eq!(links[0]["rel"], "next");
        assert_eq!(links[0]["href"], "http://h/v2.0/networks?name=x%20y&limit=2&marker=b");
        let query = q(&[("limit", "2"), ("marker", "z"), ("fields", "id")]);
        let p = ListParams::parse(&query).unwrap();
        let body = render("networks", items, &p, false, "http://h/v2.0/networks", &query);
        let links = body["networks_links"].as_array().unwrap();
        assert_eq!(links.len(), 1);
        assert_eq!(links[0]["rel"], "previous");
        assert!(links[0]["href"].as_str().unwrap().ends_with("marker=a&page_reverse=True"));
        assert_eq!(body["networks"][0], json!({"id": "a"}));
    }
}
