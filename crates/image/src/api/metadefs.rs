//! `/v2/metadefs`: metadata definition namespaces and what they hold
//! (objects, properties, tags, resource type associations), and the resource
//! types (Glance's `metadef_*.py` controllers).
//!
//! Request bodies are checked against the schemas served under
//! `/v2/schemas/metadefs/*` (read-only attributes first: 403), as Glance does.
//! A namespace the caller may not see is a 404 everywhere; a policy refusal
//! on a namespace the caller may see is a 403. Protected namespaces keep
//! their content: deleting it (or them) is a 403.

use std::cmp::Ordering;
use std::fmt::Write as _;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum::routing::{delete, get};
use serde_json::{Map, Value, json};
use stratus_core::AuthContext;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use super::{created, is_admin, no_content, ok, time};
use crate::error::{Result, bad, forbidden, not_found};
use crate::store::metadefs::{
    self as store, Association, Content, Namespace, NamespaceFilter, NewNamespace, Object, Property, Tag,
};
use crate::store::now_us;
use crate::{ImageService, State};

pub fn routes() -> Router<State> {
    const NS: &str = "/v2/metadefs/namespaces/{namespace}";
    Router::new()
        .route("/v2/metadefs/namespaces", get(list_namespaces).post(create_namespace))
        .route(NS, get(show_namespace).put(update_namespace).delete(delete_namespace))
        .route(&format!("{NS}/objects"), get(list_objects).post(create_object).delete(delete_objects))
        .route(&format!("{NS}/objects/{{name}}"), get(show_object).put(update_object).delete(delete_object))
        .route(&format!("{NS}/properties"), get(list_properties).post(create_property).delete(delete_properties))
        .route(&format!("{NS}/properties/{{name}}"), get(show_property).put(update_property).delete(delete_property))
        .route(&format!("{NS}/tags"), get(list_tags).post(create_tags).delete(delete_tags))
        .route(&format!("{NS}/tags/{{name}}"), get(show_tag).post(create_tag).put(update_tag).delete(delete_tag))
        .route("/v2/metadefs/resource_types", get(list_resource_types))
        .route(&format!("{NS}/resource_types"), get(list_associations).post(create_association))
        .route(&format!("{NS}/resource_types/{{name}}"), delete(delete_association))
}

/// Glance's limit_param_default and api_limit_max.
const DEFAULT_LIMIT: usize = 25;
const MAX_LIMIT: usize = 1000;
/// Names of namespaces, objects, properties, tags and resource types.
const MAX_NAME: usize = 80;
const NAMESPACE_SCHEMA: &str = "/v2/schemas/metadefs/namespace";
const OBJECT_SCHEMA: &str = "/v2/schemas/metadefs/object";
/// Attributes a namespace or object body may not carry.
const READ_ONLY: &[&str] = &["self", "schema", "created_at", "updated_at"];
/// Attributes a property, tag or resource type association body may not carry.
const TIMESTAMPS: &[&str] = &["created_at", "updated_at"];
const NAMESPACE_SORT_KEYS: &[&str] =
    &["created_at", "updated_at", "namespace", "display_name", "description", "visibility", "protected", "owner", "id"];
const TAG_SORT_KEYS: &[&str] = &["created_at", "updated_at", "name", "id"];
/// The attributes of a property definition Glance keeps (its `PropertyType`).
const PROPERTY_FIELDS: &[&str] = &[
    "name",
    "type",
    "title",
    "description",
    "operators",
    "default",
    "readonly",
    "minimum",
    "maximum",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "confidential",
    "items",
    "uniqueItems",
    "minItems",
    "maxItems",
    "additionalItems",
];

// ---- request bodies ---------------------------------------------------------

/// A served metadef schema.
fn schema(kind: &str) -> Value {
    crate::schemas::metadef(kind).unwrap_or(Value::Null)
}

/// The property schema; inside objects the name is the key, not required.
fn property_schema(require_name: bool) -> Value {
    let mut s = schema("property");
    if !require_name {
        s["required"] = json!(["type", "title"]);
    }
    s
}

/// What `POST .../tags` takes.
fn tags_schema() -> Value {
    json!({
        "name": "tags",
        "properties": {
            "tags": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}},
                    "required": ["name"],
                    "additionalProperties": false,
                },
            },
        },
        "additionalProperties": false,
    })
}

/// Parse a JSON object body: read-only attributes are a 403, a body the
/// schema refuses a 400.
fn object_body(body: &Bytes, read_only: &[&str], schema: &Value) -> Result<Map<String, Value>> {
    let v: Value = stratus_core::extract::parse_json(crate::error::STYLE, body)?;
    if let Some(m) = v.as_object() {
        for k in read_only {
            if m.contains_key(*k) {
                return Err(forbidden(format!("Attribute '{k}' is read-only.")));
            }
        }
    }
    validate(&v, schema)?;
    match v {
        Value::Object(m) => Ok(m),
        other => Err(schema_error(schema, &format!("{} is not of type 'object'", repr(&other)))),
    }
}

fn schema_error(schema: &Value, why: &str) -> crate::error::ImageError {
    let name = schema["name"].as_str().unwrap_or_default();
    bad(format!("Provided object does not match schema '{name}': {why}"))
}

/// Validate `v` against `schema` (the subset of JSON schema the metadef
/// schemas use); 400 in jsonschema's words.
fn validate(v: &Value, schema: &Value) -> Result<()> {
    check(v, schema, schema).map_err(|why| schema_error(schema, &why))
}

fn repr(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}'"),
        other => other.to_string(),
    }
}

fn is_type(v: &Value, t: &str) -> bool {
    match t {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "null" => v.is_null(),
        _ => true,
    }
}

fn check(v: &Value, s: &Value, root: &Value) -> std::result::Result<(), String> {
    let Some(s) = s.as_object() else {
        return Ok(());
    };
    if let Some(r) = s.get("$ref").and_then(Value::as_str)
        && let Some(target) = r.strip_prefix("#/definitions/").and_then(|d| root["definitions"].get(d))
    {
        check(v, target, root)?;
    }
    for sub in s.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        check(v, sub, root)?;
    }
    if let Some(t) = s.get("type") {
        let fits = match t {
            Value::String(t) => is_type(v, t),
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).any(|t| is_type(v, t)),
            _ => true,
        };
        if !fits {
            return Err(format!("{} is not of type {}", repr(v), repr(t)));
        }
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        return Err(format!("{} is not one of {}", repr(v), Value::Array(e.clone())));
    }
    let num = |k: &str| s.get(k).and_then(Value::as_f64);
    match v {
        Value::String(st) => {
            let n = st.chars().count() as f64;
            if num("maxLength").is_some_and(|m| n > m) {
                return Err(format!("{} is too long", repr(v)));
            }
            if num("minLength").is_some_and(|m| n < m) {
                return Err(format!("{} is too short", repr(v)));
            }
        }
        Value::Number(x) => {
            let x = x.as_f64().unwrap_or_default();
            if let Some(m) = num("minimum").filter(|m| x < *m) {
                return Err(format!("{v} is less than the minimum of {m}"));
            }
            if let Some(m) = num("maximum").filter(|m| x > *m) {
                return Err(format!("{v} is greater than the maximum of {m}"));
            }
        }
        Value::Array(items) => {
            let n = items.len() as f64;
            if num("minItems").is_some_and(|m| n < m) {
                return Err(format!("{v} is too short"));
            }
            if num("maxItems").is_some_and(|m| n > m) {
                return Err(format!("{v} is too long"));
            }
            if s.get("uniqueItems") == Some(&Value::Bool(true))
                && items.iter().enumerate().any(|(i, x)| items[..i].contains(x))
            {
                return Err(format!("{v} has non-unique elements"));
            }
            if let Some(item) = s.get("items") {
                for x in items {
                    check(x, item, root)?;
                }
            }
        }
        Value::Object(map) => {
            for k in s.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
                if !map.contains_key(k) {
                    return Err(format!("'{k}' is a required property"));
                }
            }
            let props = s.get("properties").and_then(Value::as_object);
            for (k, x) in map {
                match props.and_then(|p| p.get(k)) {
                    Some(sub) => check(x, sub, root)?,
                    None => match s.get("additionalProperties") {
                        Some(Value::Bool(false)) => {
                            return Err(format!("Additional properties are not allowed ('{k}' was unexpected)"));
                        }
                        Some(sub @ Value::Object(_)) => check(x, sub, root)?,
                        _ => {}
                    },
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn str_field(body: &Map<String, Value>, key: &str) -> Option<String> {
    body.get(key).and_then(Value::as_str).map(str::to_string)
}

/// A name that will be stored and addressed: 1 to 80 characters.
fn check_name(schema_name: &str, what: &str, name: Option<&str>) -> Result<String> {
    match name {
        None => {
            Err(bad(format!("Provided object does not match schema '{schema_name}': '{what}' is a required property")))
        }
        Some("") => Err(bad(format!("Provided object does not match schema '{schema_name}': '' is too short"))),
        Some(n) if n.chars().count() > MAX_NAME => {
            Err(bad(format!("Provided object does not match schema '{schema_name}': '{n}' is too long")))
        }
        Some(n) => Ok(n.to_string()),
    }
}

/// An optional short text (prefix, properties_target): at most 80 characters.
fn check_short(schema_name: &str, v: Option<String>) -> Result<Option<String>> {
    match v {
        Some(s) if s.chars().count() > MAX_NAME => {
            Err(bad(format!("Provided object does not match schema '{schema_name}': '{s}' is too long")))
        }
        v => Ok(v),
    }
}

/// A property definition as Glance keeps it: its known attributes only.
fn normalize_property(v: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, x) in v.as_object().into_iter().flatten() {
        if !PROPERTY_FIELDS.contains(&k.as_str()) {
            continue;
        }
        let x = match (k.as_str(), x) {
            ("items", Value::Object(items)) => Value::Object(
                items
                    .iter()
                    .filter(|(ik, _)| matches!(ik.as_str(), "type" | "enum"))
                    .map(|(a, b)| (a.clone(), b.clone()))
                    .collect(),
            ),
            _ => x.clone(),
        };
        out.insert(k.clone(), x);
    }
    out
}

/// An object's property map, each definition normalized.
fn normalize_properties(v: Option<&Value>) -> Map<String, Value> {
    v.and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, p)| (k.clone(), Value::Object(normalize_property(p))))
        .collect()
}

fn required_text(v: Option<&Value>) -> Option<String> {
    match v.and_then(Value::as_array) {
        Some(a) if !a.is_empty() => Some(Value::Array(a.clone()).to_string()),
        _ => None,
    }
}

fn bool_header(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "t" | "true" | "on" | "y" | "yes"))
}

// ---- views ------------------------------------------------------------------

fn namespace_view(ns: &Namespace) -> Map<String, Value> {
    let mut v = Map::new();
    v.insert("namespace".into(), json!(ns.namespace));
    if let Some(d) = &ns.display_name {
        v.insert("display_name".into(), json!(d));
    }
    if let Some(d) = &ns.description {
        v.insert("description".into(), json!(d));
    }
    v.insert("visibility".into(), json!(ns.visibility));
    v.insert("protected".into(), json!(ns.protected));
    v.insert("owner".into(), json!(ns.owner));
    v.insert("created_at".into(), json!(time(ns.created_at)));
    v.insert("updated_at".into(), json!(time(ns.updated_at)));
    v.insert("self".into(), json!(format!("/v2/metadefs/namespaces/{}", ns.namespace)));
    v.insert("schema".into(), json!(NAMESPACE_SCHEMA));
    v
}

fn object_required(o: &Object) -> Vec<Value> {
    o.required.as_deref().and_then(|r| serde_json::from_str(r).ok()).unwrap_or_default()
}

fn object_properties(o: &Object) -> Map<String, Value> {
    serde_json::from_str(&o.json_schema).unwrap_or_default()
}

fn object_view(ns: &str, o: &Object) -> Value {
    let mut v = json!({
        "name": o.name,
        "required": object_required(o),
        "properties": object_properties(o),
        "created_at": time(o.created_at),
        "updated_at": time(o.updated_at),
        "self": format!("/v2/metadefs/namespaces/{ns}/objects/{}", o.name),
        "schema": OBJECT_SCHEMA,
    });
    if let Some(d) = &o.description {
        v["description"] = json!(d);
    }
    v
}

/// A property definition as stored (the properties collection shows this).
fn property_definition(p: &Property) -> Map<String, Value> {
    serde_json::from_str(&p.json_schema).unwrap_or_default()
}

/// One property: its definition with its name.
fn property_view(p: &Property) -> Value {
    let mut v = property_definition(p);
    v.insert("name".into(), json!(p.name));
    Value::Object(v)
}

fn tag_view(t: &Tag) -> Value {
    json!({"name": t.name, "created_at": time(t.created_at), "updated_at": time(t.updated_at)})
}

fn association_view(a: &Association) -> Value {
    let mut v = json!({"name": a.resource_type, "created_at": time(a.created_at), "updated_at": time(a.updated_at)});
    if let Some(p) = &a.prefix {
        v["prefix"] = json!(p);
    }
    if let Some(p) = &a.properties_target {
        v["properties_target"] = json!(p);
    }
    v
}

/// A namespace with everything it holds (what exists of it).
fn namespace_detail(
    ns: &Namespace,
    associations: &[Association],
    objects: &[Object],
    properties: &[Property],
    tags: &[Tag],
) -> Map<String, Value> {
    let mut v = namespace_view(ns);
    if !objects.is_empty() {
        v.insert("objects".into(), objects.iter().map(|o| object_view(&ns.namespace, o)).collect());
    }
    if !associations.is_empty() {
        v.insert("resource_type_associations".into(), associations.iter().map(association_view).collect());
    }
    if !properties.is_empty() {
        let map: Map<String, Value> =
            properties.iter().map(|p| (p.name.clone(), Value::Object(property_definition(p)))).collect();
        v.insert("properties".into(), Value::Object(map));
    }
    if !tags.is_empty() {
        v.insert("tags".into(), tags.iter().map(|t| json!({"name": t.name})).collect());
    }
    v
}

/// Show property names (and objects' required names) with the prefix of the
/// namespace's association with `resource_type`, if it has one.
fn apply_prefix(v: &mut Map<String, Value>, associations: &[Association], resource_type: &str) {
    let Some(prefix) = associations
        .iter()
        .find(|a| a.resource_type == resource_type)
        .and_then(|a| a.prefix.clone())
        .filter(|p| !p.is_empty())
    else {
        return;
    };
    let prefixed = |m: &Map<String, Value>| -> Map<String, Value> {
        m.iter().map(|(k, x)| (format!("{prefix}{k}"), x.clone())).collect()
    };
    if let Some(Value::Object(props)) = v.get("properties") {
        let p = prefixed(props);
        v.insert("properties".into(), Value::Object(p));
    }
    for o in v.get_mut("objects").and_then(Value::as_array_mut).into_iter().flatten() {
        if let Some(Value::Object(props)) = o.get("properties") {
            o["properties"] = Value::Object(prefixed(props));
        }
        if let Some(Value::Array(req)) = o.get("required") {
            let req: Vec<Value> =
                req.iter().map(|r| r.as_str().map_or(r.clone(), |s| json!(format!("{prefix}{s}")))).collect();
            o["required"] = Value::Array(req);
        }
    }
}

// ---- access -----------------------------------------------------------------

fn namespace_target(ns: &Namespace) -> Value {
    json!({"project_id": ns.owner, "visibility": ns.visibility})
}

fn caller_target(ctx: &AuthContext) -> Value {
    json!({"project_id": ctx.project_id})
}

/// Check a metadef rule as Glance does: a refusal is a 404 when the caller
/// may not see the namespace either, otherwise a 403.
fn authorize(svc: &ImageService, ctx: &AuthContext, rule: &str, target: &Value) -> Result<()> {
    if svc.policy.allowed(ctx, rule, target) {
        return Ok(());
    }
    if rule == "get_metadef_namespace" || !svc.policy.allowed(ctx, "get_metadef_namespace", target) {
        return Err(not_found("The resource could not be found."));
    }
    svc.enforce(ctx, rule, target)
}

fn visible(svc: &ImageService, ctx: &AuthContext, ns: &Namespace) -> bool {
    ns.visibility == "public" || ctx.project_id.as_deref() == Some(ns.owner.as_str()) || is_admin(svc, ctx)
}

/// A namespace the caller may see; 404 otherwise (whether or not it exists).
async fn load(svc: &ImageService, ctx: &AuthContext, name: &str) -> Result<Namespace> {
    match store::get_namespace(&svc.db, name).await? {
        Some(ns) if visible(svc, ctx, &ns) => Ok(ns),
        _ => Err(not_found(format!("Namespace {name} not found"))),
    }
}

fn protected(what: &str, name: &str) -> crate::error::ImageError {
    forbidden(format!("Metadata definition {what} {name} is protected and cannot be deleted."))
}

// ---- query parameters -------------------------------------------------------

fn parse_limit(v: &str) -> Result<i64> {
    let n: i64 = v.trim().parse().map_err(|_| bad("limit param must be an integer"))?;
    if n < 0 {
        return Err(bad("limit param must be positive"));
    }
    Ok(n)
}

fn sort_dir(q: &RawQuery) -> Result<bool> {
    match q.get("sort_dir").unwrap_or("desc") {
        "desc" => Ok(true),
        "asc" => Ok(false),
        d => Err(bad(format!("Invalid sort direction: {d}"))),
    }
}

fn sort_key<'a>(q: &'a RawQuery, allowed: &[&str]) -> Result<&'a str> {
    let k = q.get("sort_key").unwrap_or("created_at");
    if allowed.contains(&k) {
        Ok(k)
    } else {
        Err(bad(format!("Invalid sort key: {k}. It should be one of the following: {}.", allowed.join(", "))))
    }
}

fn check_visibility_filter(q: &RawQuery, allowed: &[&str]) -> Result<()> {
    match q.get("visibility") {
        Some(v) if !v.is_empty() && !allowed.contains(&v) => Err(bad(format!("Invalid visibility value: {v}"))),
        _ => Ok(()),
    }
}

/// Python's `quote_plus`.
fn quote_plus(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// A path segment for a `Location` header.
fn quote_path(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' | b':' => out.push(b as char),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// The request's parameters as Python's `dict(request.params)` holds them:
/// one value per key (the last), in order of first appearance.
fn params_dict(q: &RawQuery) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in &q.0 {
        match out.iter_mut().find(|(ok, _)| ok == k) {
            Some(slot) => slot.1 = v.clone(),
            None => out.push((k.clone(), v.clone())),
        }
    }
    out
}

fn urlencode(pairs: &[(String, String)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}={}", quote_plus(k), quote_plus(v))).collect::<Vec<_>>().join("&")
}

/// A sortable attribute value.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum SortValue<'a> {
    Text(Option<&'a str>),
    Int(i64),
    Bool(bool),
}

fn namespace_sort_value<'a>(ns: &'a Namespace, key: &str) -> SortValue<'a> {
    match key {
        "namespace" => SortValue::Text(Some(&ns.namespace)),
        "display_name" => SortValue::Text(ns.display_name.as_deref()),
        "description" => SortValue::Text(ns.description.as_deref()),
        "visibility" => SortValue::Text(Some(&ns.visibility)),
        "owner" => SortValue::Text(Some(&ns.owner)),
        "id" => SortValue::Text(Some(&ns.id)),
        "protected" => SortValue::Bool(ns.protected),
        "updated_at" => SortValue::Int(ns.updated_at),
        _ => SortValue::Int(ns.created_at),
    }
}

/// Glance's order: the sort key, then creation, then id, all in one direction.
fn namespace_order(a: &Namespace, b: &Namespace, key: &str, desc: bool) -> Ordering {
    let o = namespace_sort_value(a, key)
        .cmp(&namespace_sort_value(b, key))
        .then(a.created_at.cmp(&b.created_at))
        .then(a.id.cmp(&b.id));
    if desc { o.reverse() } else { o }
}

fn tag_sort_value<'a>(t: &'a Tag, key: &str) -> SortValue<'a> {
    match key {
        "name" => SortValue::Text(Some(&t.name)),
        "id" => SortValue::Text(Some(&t.id)),
        "updated_at" => SortValue::Int(t.updated_at),
        _ => SortValue::Int(t.created_at),
    }
}

fn tag_order(a: &Tag, b: &Tag, key: &str, desc: bool) -> Ordering {
    let o = tag_sort_value(a, key)
        .cmp(&tag_sort_value(b, key))
        .then(a.created_at.cmp(&b.created_at))
        .then(a.name.cmp(&b.name));
    if desc { o.reverse() } else { o }
}

/// A namespace's tags in Glance's default order (newest first).
fn sorted_tags(mut tags: Vec<Tag>) -> Vec<Tag> {
    tags.sort_by(|a, b| tag_order(a, b, "created_at", true));
    tags
}

// ---- namespaces -------------------------------------------------------------

async fn list_namespaces(AxState(svc): AxState<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    let limit = match q.get("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => (parse_limit(l)? as usize).min(MAX_LIMIT),
    };
    let key = sort_key(&q, NAMESPACE_SORT_KEYS)?;
    let desc = sort_dir(&q)?;
    check_visibility_filter(&q, &["public", "private"])?;
    let caller = caller_target(&ctx);
    authorize(&svc, &ctx, "get_metadef_namespaces", &caller)?;
    authorize(&svc, &ctx, "list_metadef_resource_types", &caller)?;
    let marker = match q.get("marker") {
        Some(m) => Some(load(&svc, &ctx, m).await?),
        None => None,
    };
    let filter = NamespaceFilter {
        visible_to: if is_admin(&svc, &ctx) { None } else { Some(ctx.project_id.clone().unwrap_or_default()) },
        visibility: q.get("visibility").map(str::to_string),
        resource_types: q.get("resource_types").map(|r| r.split(',').map(str::to_string).collect()),
    };
    let mut all = store::list_namespaces(&svc.db, &filter).await?;
    all.retain(|ns| svc.policy.allowed(&ctx, "get_metadef_namespace", &namespace_target(ns)));
    all.sort_by(|a, b| namespace_order(a, b, key, desc));
    let page: Vec<Namespace> = all
        .into_iter()
        .filter(|ns| marker.as_ref().is_none_or(|m| namespace_order(ns, m, key, desc) == Ordering::Greater))
        .take(limit)
        .collect();
    let ids: Vec<String> = page.iter().map(|ns| ns.id.clone()).collect();
    let associations = store::associations(&svc.db, &ids).await?;
    let items: Vec<Value> = page
        .iter()
        .map(|ns| {
            let mut v = namespace_view(ns);
            let mine: Vec<Value> =
                associations.iter().filter(|a| a.namespace_id == ns.id).map(association_view).collect();
            if !mine.is_empty() {
                v.insert("resource_type_associations".into(), Value::Array(mine));
            }
            Value::Object(v)
        })
        .collect();
    let mut params = params_dict(&q);
    params.retain(|(k, _)| k != "marker");
    let first = if params.is_empty() {
        "/v2/metadefs/namespaces".to_string()
    } else {
        format!("/v2/metadefs/namespaces?{}", urlencode(&params))
    };
    let mut out = json!({"namespaces": items, "first": first, "schema": "/v2/schemas/metadefs/namespaces"});
    if limit != 0
        && page.len() == limit
        && let Some(last) = page.last()
    {
        params.push(("marker".into(), last.namespace.clone()));
        out["next"] = json!(format!("/v2/metadefs/namespaces?{}", urlencode(&params)));
    }
    Ok(ok(out))
}

async fn create_namespace(AxState(svc): AxState<State>, Auth(ctx): Auth, body: Bytes) -> Result<Response> {
    let body = object_body(&body, READ_ONLY, &schema("namespace"))?;
    let name = check_name("namespace", "namespace", body.get("namespace").and_then(Value::as_str))?;
    let list = |k: &str| body.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
    let (associations, objects, tags) = (list("resource_type_associations"), list("objects"), list("tags"));
    let properties = body.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();

    let caller = caller_target(&ctx);
    authorize(&svc, &ctx, "add_metadef_namespace", &caller)?;
    if !associations.is_empty() {
        authorize(&svc, &ctx, "add_metadef_resource_type_association", &caller)?;
    }
    if !objects.is_empty() {
        authorize(&svc, &ctx, "add_metadef_object", &caller)?;
    }
    if !properties.is_empty() {
        authorize(&svc, &ctx, "add_metadef_property", &caller)?;
    }
    if !tags.is_empty() {
        authorize(&svc, &ctx, "add_metadef_tag", &caller)?;
    }

    let now = now_us();
    let ns = Namespace {
        id: store::new_id(),
        namespace: name,
        display_name: str_field(&body, "display_name"),
        description: str_field(&body, "description"),
        visibility: str_field(&body, "visibility").unwrap_or_else(|| "private".into()),
        protected: body.get("protected").and_then(Value::as_bool).unwrap_or(false),
        owner: str_field(&body, "owner").or_else(|| ctx.project_id.clone()).unwrap_or_default(),
        created_at: now,
        updated_at: now,
    };
    // one microsecond apart: listed by creation, content keeps the request's order
    let at = |i: usize| now + i as i64;
    let mut new =
        NewNamespace { namespace: ns, objects: vec![], properties: vec![], tags: vec![], associations: vec![] };
    for (i, a) in associations.iter().enumerate() {
        let a = a.as_object().cloned().unwrap_or_default();
        new.associations.push(Association {
            namespace_id: new.namespace.id.clone(),
            resource_type: check_name("namespace", "name", a.get("name").and_then(Value::as_str))?,
            prefix: check_short("namespace", str_field(&a, "prefix"))?,
            properties_target: check_short("namespace", str_field(&a, "properties_target"))?,
            created_at: at(i),
            updated_at: at(i),
        });
    }
    for (i, o) in objects.iter().enumerate() {
        let o = o.as_object().cloned().unwrap_or_default();
        new.objects.push(Object {
            id: store::new_id(),
            namespace_id: new.namespace.id.clone(),
            name: check_name("namespace", "name", o.get("name").and_then(Value::as_str))?,
            description: str_field(&o, "description"),
            required: required_text(o.get("required")),
            json_schema: Value::Object(normalize_properties(o.get("properties"))).to_string(),
            created_at: at(i),
            updated_at: at(i),
        });
    }
    for (i, (pname, p)) in properties.iter().enumerate() {
        new.properties.push(Property {
            id: store::new_id(),
            namespace_id: new.namespace.id.clone(),
            name: check_name("namespace", "name", Some(pname))?,
            json_schema: Value::Object(normalize_property(p)).to_string(),
            created_at: at(i),
            updated_at: at(i),
        });
    }
    for (i, t) in tags.iter().enumerate() {
        new.tags.push(Tag {
            id: store::new_id(),
            namespace_id: new.namespace.id.clone(),
            name: check_name("namespace", "name", t.get("name").and_then(Value::as_str))?,
            created_at: at(i),
            updated_at: at(i),
        });
    }
    store::create_namespace(&svc.db, &new).await?;

    let tags = sorted_tags(new.tags.clone());
    let v = namespace_detail(&new.namespace, &new.associations, &new.objects, &new.properties, &tags);
    let mut resp = created(Value::Object(v));
    let location = format!("{}/v2/metadefs/namespaces/{}", svc.base_url, quote_path(&new.namespace.namespace));
    if let Ok(h) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, h);
    }
    Ok(resp)
}

async fn show_namespace(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(name): Path<String>,
    q: RawQuery,
) -> Result<Response> {
    check_visibility_filter(&q, &["public", "private"])?;
    let ns = match store::get_namespace(&svc.db, &name).await? {
        Some(ns) if visible(&svc, &ctx, &ns) => ns,
        Some(_) => return Err(not_found("The resource could not be found.")),
        None => return Err(not_found(format!("Metadata definition namespace={name} was not found."))),
    };
    let target = namespace_target(&ns);
    for rule in [
        "get_metadef_namespace",
        "list_metadef_resource_types",
        "get_metadef_objects",
        "get_metadef_properties",
        "get_metadef_tags",
    ] {
        authorize(&svc, &ctx, rule, &target)?;
    }
    let ids = [ns.id.clone()];
    let associations = store::associations(&svc.db, &ids).await?;
    let objects = store::list_objects(&svc.db, &ns.id).await?;
    let properties = store::list_properties(&svc.db, &ns.id).await?;
    let tags = sorted_tags(store::list_tags(&svc.db, &ns.id).await?);
    let mut v = namespace_detail(&ns, &associations, &objects, &properties, &tags);
    if let Some(rt) = q.get("resource_type").filter(|r| !r.is_empty()) {
        apply_prefix(&mut v, &associations, rt);
    }
    Ok(ok(Value::Object(v)))
}

async fn update_namespace(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let body = object_body(&body, READ_ONLY, &schema("namespace"))?;
    let new_name = check_name("namespace", "namespace", body.get("namespace").and_then(Value::as_str))?;
    let mut ns = load(&svc, &ctx, &name).await?;
    authorize(&svc, &ctx, "modify_metadef_namespace", &namespace_target(&ns))?;
    // what the body leaves out goes back to its default
    ns.namespace = new_name;
    ns.display_name = str_field(&body, "display_name");
    ns.description = str_field(&body, "description");
    ns.visibility = str_field(&body, "visibility").unwrap_or_else(|| "private".into());
    ns.protected = body.get("protected").and_then(Value::as_bool).unwrap_or(false);
    ns.owner = str_field(&body, "owner").or_else(|| ctx.project_id.clone()).unwrap_or_default();
    ns.updated_at = now_us();
    store::update_namespace(&svc.db, &ns).await?;
    Ok(ok(Value::Object(namespace_view(&ns))))
}

async fn delete_namespace(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(name): Path<String>) -> Result<Response> {
    let ns = load(&svc, &ctx, &name).await?;
    authorize(&svc, &ctx, "delete_metadef_namespace", &namespace_target(&ns))?;
    if ns.protected {
        return Err(protected("namespace", &ns.namespace));
    }
    store::delete_namespace(&svc.db, &ns.id).await?;
    Ok(no_content())
}

/// `DELETE .../objects`, `.../properties`, `.../tags`: everything of one kind.
async fn delete_content(svc: &ImageService, ctx: &AuthContext, name: &str, kind: Content) -> Result<Response> {
    let ns = load(svc, ctx, name).await?;
    let target = namespace_target(&ns);
    authorize(svc, ctx, "delete_metadef_namespace", &target)?;
    if kind == Content::Tags {
        authorize(svc, ctx, "delete_metadef_tags", &target)?;
    }
    if ns.protected {
        return Err(protected("namespace", &ns.namespace));
    }
    store::delete_all(&svc.db, &ns.id, kind).await?;
    Ok(no_content())
}

async fn delete_objects(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(name): Path<String>) -> Result<Response> {
    delete_content(&svc, &ctx, &name, Content::Objects).await
}

async fn delete_properties(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(name): Path<String>,
) -> Result<Response> {
    delete_content(&svc, &ctx, &name, Content::Properties).await
}

async fn delete_tags(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(name): Path<String>) -> Result<Response> {
    delete_content(&svc, &ctx, &name, Content::Tags).await
}

// ---- objects ----------------------------------------------------------------

fn object_not_found(name: &str) -> crate::error::ImageError {
    not_found(format!("Could not find metadata object {name}"))
}

/// Set an object's fields from a (validated) object body: what the body leaves out is cleared.
fn object_fields(body: &Map<String, Value>, ns: &Namespace, o: &mut Object) -> Result<()> {
    o.name = check_name("object", "name", body.get("name").and_then(Value::as_str))?;
    o.description = str_field(body, "description");
    o.required = required_text(body.get("required"));
    o.json_schema = Value::Object(normalize_properties(body.get("properties"))).to_string();
    o.namespace_id = ns.id.clone();
    Ok(())
}

async fn create_object(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let body = object_body(&body, READ_ONLY, &schema("object"))?;
    if let Some(props) = body.get("properties").and_then(Value::as_object) {
        let ps = property_schema(false);
        for p in props.values() {
            validate(p, &ps)?;
        }
    }
    let ns = load(&svc, &ctx, &name).await?;
    authorize(&svc, &ctx, "add_metadef_object", &namespace_target(&ns))?;
    let now = now_us();
    let mut o = Object {
        id: store::new_id(),
        namespace_id: String::new(),
        name: String::new(),
        description: None,
        required: None,
        json_schema: String::new(),
        created_at: now,
        updated_at: now,
    };
    object_fields(&body, &ns, &mut o)?;
    store::insert_object(&svc.db, &o, &ns.namespace).await?;
    Ok(created(object_view(&ns.namespace, &o)))
}

async fn list_objects(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(name): Path<String>,
    q: RawQuery,
) -> Result<Response> {
    // validated as Glance does; Glance lists every object regardless
    sort_dir(&q)?;
    check_visibility_filter(&q, &["public", "private", "shared"])?;
    if let Some(l) = q.get("limit")
        && parse_limit(l)? == 0
    {
        return Err(bad("limit param must be positive"));
    }
    let ns = load(&svc, &ctx, &name).await?;
    let target = namespace_target(&ns);
    authorize(&svc, &ctx, "get_metadef_objects", &target)?;
    let objects: Vec<Value> = if svc.policy.allowed(&ctx, "get_metadef_object", &target) {
        store::list_objects(&svc.db, &ns.id).await?.iter().map(|o| object_view(&ns.namespace, o)).collect()
    } else {
        Vec::new()
    };
    Ok(ok(json!({"objects": objects, "schema": "v2/schemas/metadefs/objects"})))
}

async fn show_object(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((name, object)): Path<(String, String)>,
) -> Result<Response> {
    let ns = load(&svc, &ctx, &name).await?;
    authorize(&svc, &ctx, "get_metadef_object", &namespace_target(&ns))?;
    let o = store::get_object(&svc.db, &ns.id, &object).await?.ok_or_else(|| object_not_found(&object))?;
    Ok(ok(object_view(&ns.namespace, &o)))
}

async fn update_object(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((name, object)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response> {
    let body = object_body(&body, READ_ONLY, &schema("object"))?;
    let ns = load(&svc, &ctx, &name).await?;
    authorize(&svc, &ctx, "modify_metadef_object", &namespace_target(&ns))?;
    let mut o = store::get_object(&svc.db, &ns.id, &object).await?.ok_or_else(|| object_not_found(&object))?;
    object_fields(&body, &ns, &mut o)?;
    o.updated_at = now_us();
    store::update_object(&svc.db, &o, &ns.namespace).await?;
    Ok(ok(object_view(&ns.namespace, &o)))
}

async fn delete_object(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((name, object)): Path<(String, String)>,
) -> Result<Response> {
    let ns = load(&svc, &ctx, &name).await?;
    authorize(&svc, &ctx, "delete_metadef_object", &namespace_target(&ns))?;
    let o = store::get_object(&svc.db, &ns.id, &object).await?.ok_or_else(|| object_not_found(&object))?;
    if ns.protected {
        return Err(protected("object", &o.name));
    }
    store::delete_object(&svc.db, &o.id).await?;
    Ok(no_content())
}

// ---- properties -------------------------------------------------------------

fn property_not_found(name: &str) -> crate::error::ImageError {
    not_found(format!("Could not find property {name}"))
}

async fn list_properties(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(name): Path<String>) -> Result<Response> {
    let ns = load(&svc, &ctx, &name).await?;
    authorize(&svc, &ctx, "get_metadef_properties", &namespace_target(&ns))?;
    let map: Map<String, Value> = store::list_properties(&svc.db, &ns.id)
        .await?
        .iter()
        .map(|p| (p.name.clone(), Value::Object(property_definition(p))))
        .collect();
    Ok(ok(json!({"properties": map})))
}

async fn create_property(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let body = object_body(&body, TIMESTAMPS, &property_schema(true))?;
    let pname = check_name("property", "name", body.get("name").and_then(Value::as_str))?;
    let ns = load(&svc, &ctx, &name).await?;
    authorize(&svc, &ctx, "add_metadef_property", &namespace_target(&ns))?;
    let now = now_us();
    let p = Property {
        id: store::new_id(),
        namespace_id: ns.id.clone(),
        name: pname,
        json_schema: Value::Object(normalize_property(&Value::Object(body))).to_string(),
        created_at: now,
        updated_at: now,
    };
    store::insert_property(&svc.db, &p, &ns.namespace).await?;
    Ok(created(property_view(&p)))
}

async fn show_property(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((name, property)): Path<(String, String)>,
    q: RawQuery,
) -> Result<Response> {
    let ns = load(&svc, &ctx, &name).await?;
    let target = namespace_target(&ns);
    authorize(&svc, &ctx, "get_metadef_property", &target)?;
    let mut pname = property.as_str();
    if let Some(rt) = q.get("resource_type").filter(|r| !r.is_empty()) {
        authorize(&svc, &ctx, "get_metadef_resource_type", &target)?;
        let a = store::get_association(&svc.db, &ns.id, rt).await?.ok_or_else(|| {
            not_found(format!(
                "The metadata definition resource-type association of resource-type={rt} to namespace={}, was not found.",
                ns.namespace
            ))
        })?;
        match a.prefix.as_deref().filter(|p| !p.is_empty()) {
            Some(prefix) if pname.starts_with(prefix) => pname = &pname[prefix.len()..],
            prefix => {
                return Err(not_found(format!(
                    "Property {pname} does not start with the expected resource type association prefix of '{}'.",
                    prefix.unwrap_or("None")
                )));
            }
        }
    }
    let p = store::get_property(&svc.db, &ns.id, pname).await?.ok_or_else(|| property_not_found(pname))?;
    Ok(ok(property_view(&p)))
}

async fn update_property(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((name, property)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response> {
    let body = object_body(&body, TIMESTAMPS, &property_schema(true))?;
    let pname = check_name("property", "name", body.get("name").and_then(Value::as_str))?;
    let ns = load(&svc, &ctx, &name).await?;
    authorize(&svc, &ctx, "modify_metadef_property", &namespace_target(&ns))?;
    let mut p = store::get_property(&svc.db, &ns.id, &property).await?.ok_or_else(|| property_not_found(&property))?;
    p.name = pname;
    p.json_schema = Value::Object(normalize_property(&Value::Object(body))).to_string();
    p.updated_at = now_us();
    store::update_property(&svc.db, &p, &ns.namespace).await?;
    Ok(ok(property_view(&p)))
}

async fn delete_property(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((name, property)): Path<(String, String)>,
) -> Result<Response> {
    let ns = load(&svc, &ctx, &name).await?;
    authorize(&svc, &ctx, "remove_metadef_property", &namespace_target(&ns))?;
    let p = store::get_property(&svc.db, &ns.id, &property).await?.ok_or_else(|| property_not_found(&property))?;
    if ns.protected {
        return Err(protected("property", &p.name));
    }
    store::delete_property(&svc.db, &p.id).await?;
    Ok(no_content())
}

// ---- tags -------------------------------------------------------------------

fn tag_not_found(name: &str) -> crate::error::ImageError {
    not_found(format!("Could not find metadata tag {name}"))
}

/// `POST .../tags/{name}`: one tag, named by the path (no body).
async fn create_tag(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((name, tag)): Path<(String, String)>,
) -> Result<Response> {
    let ns = load(&svc, &ctx, &name).await?;
    let tag = check_name("tag", "name", Some(&tag))?;
    authorize(&svc, &ctx, "add_metadef_tag", &namespace_target(&ns))?;
    let now = now_us();
    let t = Tag { id: store::new_id(), namespace_id: ns.id.clone(), name: tag, created_at: now, updated_at: now };
    store::insert_tag(&svc.db, &t, &ns.namespace).await?;
    Ok(created(tag_view(&t)))
}

/// `POST .../tags`: several tags; they replace the namespace's tags unless
/// `X-Openstack-Append` is true.
async fn create_tags(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let body = object_body(&body, TIMESTAMPS, &tags_schema())?;
    let names = body
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|t| check_name("tags", "name", t.get("name").and_then(Value::as_str)))
        .collect::<Result<Vec<String>>>()?;
    let ns = load(&svc, &ctx, &name).await?;
    authorize(&svc, &ctx, "add_metadef_tags", &namespace_target(&ns))?;
    let append = bool_header(&headers, "x-openstack-append");
    let now = now_us();
    let tags: Vec<Tag> = names
        .iter()
        .enumerate()
        .map(|(i, n)| Tag {
            id: store::new_id(),
            namespace_id: ns.id.clone(),
            name: n.clone(),
            created_at: now + i as i64,
            updated_at: now + i as i64,
        })
        .collect();
    if !tags.is_empty() {
        store::add_tags(&svc.db, &ns.id, &tags, append, &ns.namespace).await?;
    }
    let out: Vec<Value> = names.iter().map(|n| json!({"name": n})).collect();
    Ok(created(json!({"tags": out})))
}

async fn list_tags(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(name): Path<String>,
    q: RawQuery,
) -> Result<Response> {
    let desc = sort_dir(&q)?;
    let key = sort_key(&q, TAG_SORT_KEYS)?;
    check_visibility_filter(&q, &["public", "private", "shared"])?;
    let limit = match q.get("limit").filter(|l| !l.is_empty()) {
        Some(l) => Some(parse_limit(l)? as usize),
        None => None,
    };
    let ns = load(&svc, &ctx, &name).await?;
    authorize(&svc, &ctx, "get_metadef_tags", &namespace_target(&ns))?;
    let marker = match q.get("marker").filter(|m| !m.is_empty()) {
        Some(m) => Some(store::get_tag(&svc.db, &ns.id, m).await?.ok_or_else(|| tag_not_found(m))?),
        None => None,
    };
    let mut tags = store::list_tags(&svc.db, &ns.id).await?;
    tags.sort_by(|a, b| tag_order(a, b, key, desc));
    let out: Vec<Value> = tags
        .iter()
        .filter(|t| marker.as_ref().is_none_or(|m| tag_order(t, m, key, desc) == Ordering::Greater))
        .take(limit.unwrap_or(usize::MAX))
        .map(|t| json!({"name": t.name}))
        .collect();
    Ok(ok(json!({"tags": out})))
}

async fn show_tag(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((name, tag)): Path<(String, String)>,
) -> Result<Response> {
    let ns = load(&svc, &ctx, &name).await?;
    authorize(&svc, &ctx, "get_metadef_tag", &namespace_target(&ns))?;
    let t = store::get_tag(&svc.db, &ns.id, &tag).await?.ok_or_else(|| tag_not_found(&tag))?;
    Ok(ok(tag_view(&t)))
}

async fn update_tag(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((name, tag)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response> {
    let body = object_body(&body, TIMESTAMPS, &schema("tag"))?;
    let new_name = check_name("tag", "name", body.get("name").and_then(Value::as_str))?;
    let ns = load(&svc, &ctx, &name).await?;
    authorize(&svc, &ctx, "modify_metadef_tag", &namespace_target(&ns))?;
    let mut t = store::get_tag(&svc.db, &ns.id, &tag).await?.ok_or_else(|| tag_not_found(&tag))?;
    t.name = new_name;
    t.updated_at = now_us();
    store::update_tag(&svc.db, &t, &ns.namespace).await?;
    Ok(ok(tag_view(&t)))
}

async fn delete_tag(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((name, tag)): Path<(String, String)>,
) -> Result<Response> {
    let ns = load(&svc, &ctx, &name).await?;
    authorize(&svc, &ctx, "delete_metadef_tag", &namespace_target(&ns))?;
    let t = store::get_tag(&svc.db, &ns.id, &tag).await?.ok_or_else(|| tag_not_found(&tag))?;
    if ns.protected {
        return Err(protected("tag", &t.name));
    }
    store::delete_tag(&svc.db, &t.id).await?;
    Ok(no_content())
}

// ---- resource types ---------------------------------------------------------

async fn list_resource_types(AxState(svc): AxState<State>, Auth(ctx): Auth) -> Result<Response> {
    authorize(&svc, &ctx, "list_metadef_resource_types", &caller_target(&ctx))?;
    let out: Vec<Value> = store::list_resource_types(&svc.db)
        .await?
        .iter()
        .map(|r| json!({"name": r.name, "created_at": time(r.created_at), "updated_at": time(r.updated_at)}))
        .collect();
    Ok(ok(json!({"resource_types": out})))
}

async fn list_associations(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(name): Path<String>,
) -> Result<Response> {
    let ns = load(&svc, &ctx, &name).await?;
    let target = namespace_target(&ns);
    authorize(&svc, &ctx, "list_metadef_resource_types", &target)?;
    let out: Vec<Value> = if svc.policy.allowed(&ctx, "get_metadef_resource_type", &target) {
        store::associations(&svc.db, std::slice::from_ref(&ns.id)).await?.iter().map(association_view).collect()
    } else {
        Vec::new()
    };
    Ok(ok(json!({"resource_type_associations": out})))
}

async fn create_association(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let body = object_body(&body, TIMESTAMPS, &schema("resource_type"))?;
    let rt = check_name("resource_type_association", "name", body.get("name").and_then(Value::as_str))?;
    let ns = load(&svc, &ctx, &name).await?;
    authorize(&svc, &ctx, "add_metadef_resource_type_association", &namespace_target(&ns))?;
    let now = now_us();
    let a = Association {
        namespace_id: ns.id.clone(),
        resource_type: rt,
        prefix: str_field(&body, "prefix"),
        properties_target: str_field(&body, "properties_target"),
        created_at: now,
        updated_at: now,
    };
    store::insert_association(&svc.db, &a, &ns.namespace).await?;
    Ok(created(association_view(&a)))
}

async fn delete_association(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((name, rt)): Path<(String, String)>,
) -> Result<Response> {
    let ns = load(&svc, &ctx, &name).await?;
    authorize(&svc, &ctx, "remove_metadef_resource_type_association", &namespace_target(&ns))?;
    if store::get_association(&svc.db, &ns.id, &rt).await?.is_none() {
        return Err(not_found(format!("Failed to find resource type {rt} to delete")));
    }
    if ns.protected {
        return Err(protected("resource-type-association", &rt));
    }
    store::delete_association(&svc.db, &ns.id, &rt).await?;
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_bodies_follow_the_schema() {
        let s = schema("namespace");
        assert!(validate(&json!({"namespace": "a", "visibility": "public", "protected": true}), &s).is_ok());
        assert!(validate(&json!({"visibility": "public"}), &s).is_err());
        assert!(validate(&json!({"namespace": "a", "visibility": "shared"}), &s).is_err());
        assert!(validate(&json!({"namespace": "a", "bogus": 1}), &s).is_err());
        assert!(validate(&json!({"namespace": "x".repeat(81)}), &s).is_err());
        assert!(validate(&json!({"namespace": "a", "protected": "yes"}), &s).is_err());
        // embedded property definitions need a title and a type of the known ones
        let good = json!({"namespace": "a", "properties": {"p": {"title": "P", "type": "string"}}});
        assert!(validate(&good, &s).is_ok());
        let bad_type = json!({"namespace": "a", "properties": {"p": {"title": "P", "type": "text"}}});
        assert!(validate(&bad_type, &s).is_err());
        let no_title = json!({"namespace": "a", "properties": {"p": {"type": "string"}}});
        assert!(validate(&no_title, &s).is_err());
        let dup_required = json!({"namespace": "a", "objects": [{"name": "o", "required": ["x", "x"]}]});
        assert!(validate(&dup_required, &s).is_err());
    }

    #[test]
    fn property_bodies_follow_the_schema() {
        let s = property_schema(true);
        assert!(validate(&json!({"name": "p", "title": "P", "type": "integer", "minimum": 0}), &s).is_ok());
        assert!(validate(&json!({"title": "P", "type": "integer"}), &s).is_err());
        assert!(validate(&json!({"name": "p", "title": "P", "type": "integer", "maxLength": -1}), &s).is_err());
        assert!(validate(&json!({"name": "p", "title": "P", "type": "string", "extra": 1}), &s).is_err());
        assert!(validate(&json!({"title": "P", "type": "string"}), &property_schema(false)).is_ok());
    }

    #[test]
    fn properties_keep_glance_attributes() {
        let p = normalize_property(&json!({"title": "T", "type": "array", "required": ["a"],
            "items": {"type": "string", "enum": ["a"], "other": 1}, "unknown": true}));
        assert_eq!(
            Value::Object(p),
            json!({"title": "T", "type": "array", "items": {"type": "string", "enum": ["a"]}})
        );
    }

    #[test]
    fn query_encoding_is_pythons() {
        assert_eq!(quote_plus("a b/c:d"), "a+b%2Fc%3Ad");
        assert_eq!(quote_path("OS::Compute::Libvirt x"), "OS::Compute::Libvirt%20x");
    }
}
