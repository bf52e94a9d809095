//! The Placement API over HTTP: one module per resource (routes, wire types,
//! handlers), and the conventions placement's handlers share: JSON bodies
//! checked against a schema (415 without `application/json`, 400 for
//! malformed or invalid ones), 406 when the client accepts no JSON,
//! `Last-Modified` and `Cache-Control: no-cache` from 1.15, policy checks.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use stratus_core::{AuthContext, Microversion};

use crate::error::{PlacementError, Result, bad, status};
use crate::schema::Schema;
use crate::store::providers::{self, Provider};
use crate::{PlacementService, State};

pub mod aggregates;
pub mod allocation_candidates;
pub mod allocations;
pub mod inventories;
pub mod reshaper;
pub mod resource_classes;
pub mod resource_providers;
pub mod root;
pub mod traits;
pub mod usages;

pub fn routes(state: State) -> Router {
    Router::new()
        .merge(root::routes())
        .merge(resource_providers::routes())
        .merge(inventories::routes())
        .merge(resource_classes::routes())
        .merge(traits::routes())
        .merge(aggregates::routes())
        .merge(allocations::routes())
        .merge(usages::routes())
        .merge(allocation_candidates::routes())
        .merge(reshaper::routes())
        .with_state(state)
        .layer(axum::middleware::from_fn(reject_nul))
}

/// A NUL in a path or query string can name nothing placement stores (and
/// PostgreSQL refuses it in text): 400 before any handler looks it up.
async fn reject_nul(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let uri = req.uri();
    let raw = format!("{}?{}", uri.path(), uri.query().unwrap_or(""));
    if raw.to_ascii_lowercase().contains("%00") {
        return bad("NUL characters are not allowed in the URL.").into_response();
    }
    next.run(req).await
}

/// Does any string in the document hold a NUL?
fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// 404 (or another status) below the microversion an operation appeared in,
/// as placement's `version_handler` answers.
pub fn since(mv: Microversion, major: u16, minor: u16) -> Result<()> {
    if mv.at_least(major, minor) {
        Ok(())
    } else {
        Err(status(StatusCode::NOT_FOUND, "The resource could not be found."))
    }
}

/// 406 unless the client accepts JSON (no `Accept` accepts anything).
pub fn accept_json(headers: &HeaderMap) -> Result<()> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    if accept.trim().is_empty() {
        return Ok(());
    }
    let ok = accept.split(',').any(|item| {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q_zero = parts.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=").is_some_and(|q| q.trim().parse::<f64>().is_ok_and(|q| q <= 0.0))
        });
        !q_zero && matches!(media.as_str(), "application/json" | "application/*" | "*/*")
    });
    if ok { Ok(()) } else { Err(status(StatusCode::NOT_ACCEPTABLE, "Only application/json is provided")) }
}

/// The body as JSON, after placement's checks: `application/json` (415),
/// well-formed (400 `Malformed JSON`), valid (400 `JSON does not validate`).
pub fn json_body(headers: &HeaderMap, body: &[u8], schema: &Schema) -> Result<Value> {
    require_json(headers)?;
    let v: Value = serde_json::from_slice(body).map_err(|e| bad(format!("Malformed JSON: {e}")))?;
    schema.validate(&v).map_err(|e| bad(format!("JSON does not validate: {e}")))?;
    if has_nul(&v) {
        return Err(bad("JSON does not validate: NUL characters are not allowed in strings."));
    }
    Ok(v)
}

pub fn require_json(headers: &HeaderMap) -> Result<()> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if media != "application/json" {
        let shown = if media.is_empty() { "None".to_string() } else { media };
        return Err(status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("The media type {shown} is not supported, use application/json"),
        ));
    }
    Ok(())
}

/// An integer of a validated body (draft 4 counts `1.0` as one).
pub fn int(v: &Value) -> i64 {
    v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)).unwrap_or(0)
}

/// A time (microseconds) as an HTTP date.
pub fn http_date(us: i64) -> String {
    let t = chrono::DateTime::from_timestamp_micros(us).unwrap_or_default();
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

pub fn now_us() -> i64 {
    crate::store::now_us()
}

/// A response with a JSON body, and from 1.15 `Last-Modified` and `Cache-Control`.
pub fn json_response(
    code: StatusCode,
    body: &impl serde::Serialize,
    mv: Microversion,
    modified: Option<i64>,
) -> Response {
    let bytes = match serde_json::to_vec(body) {
        Ok(b) => b,
        Err(e) => return PlacementError::Internal(e.into()).into_response(),
    };
    let mut resp = (code, [(header::CONTENT_TYPE, "application/json")], bytes).into_response();
    cache_headers(&mut resp, mv, modified);
    resp
}

pub fn ok(body: &Value, mv: Microversion, modified: Option<i64>) -> Response {
    json_response(StatusCode::OK, body, mv, modified)
}

pub fn cache_headers(resp: &mut Response, mv: Microversion, modified: Option<i64>) {
    if mv.at_least(1, 15) {
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if let Ok(v) = HeaderValue::from_str(&http_date(modified.unwrap_or_else(now_us))) {
            h.insert(header::LAST_MODIFIED, v);
        }
    }
}

/// An empty response (204 and friends), with a `Location` when given.
pub fn empty(code: StatusCode, location: Option<String>) -> Response {
    let mut resp = code.into_response();
    if let Some(l) = location
        && let Ok(v) = HeaderValue::from_str(&l)
    {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

impl PlacementService {
    /// 403 unless `rule` allows the caller (target: the caller's project).
    pub fn enforce(&self, ctx: &AuthContext, rule: &str) -> Result<()> {
        self.enforce_on(ctx, rule, &json!({"project_id": ctx.project_id, "user_id": ctx.user_id}))
    }

    pub fn enforce_on(&self, ctx: &AuthContext, rule: &str, target: &Value) -> Result<()> {
        self.policy.enforce(ctx, rule, target).map_err(PlacementError::Api)
    }

    /// A provider, or a 404 worded by the caller.
    pub async fn provider(&self, uuid: &str, not_found: impl FnOnce() -> PlacementError) -> Result<Provider> {
        providers::get(&self.db.read, uuid).await?.ok_or_else(not_found)
    }
}

/// The links of a provider at a microversion.
pub fn provider_links(uuid: &str, mv: Microversion) -> Value {
    let url = format!("/resource_providers/{uuid}");
    let mut links = vec![
        json!({"rel": "self", "href": url}),
        json!({"rel": "inventories", "href": format!("{url}/inventories")}),
        json!({"rel": "usages", "href": format!("{url}/usages")}),
    ];
    if mv.at_least(1, 1) {
        links.push(json!({"rel": "aggregates", "href": format!("{url}/aggregates")}));
    }
    if mv.at_least(1, 6) {
        links.push(json!({"rel": "traits", "href": format!("{url}/traits")}));
    }
    if mv.at_least(1, 11) {
        links.push(json!({"rel": "allocations", "href": format!("{url}/allocations")}));
    }
    Value::Array(links)
}

/// A provider as placement shows it.
pub fn provider_view(
    uuid: &str,
    name: &str,
    generation: i64,
    parent: Option<&str>,
    root: &str,
    mv: Microversion,
) -> Value {
    let mut v = json!({"uuid": uuid, "name": name, "generation": generation, "links": provider_links(uuid, mv)});
    if mv.at_least(1, 14) {
        v["parent_provider_uuid"] = json!(parent);
        v["root_provider_uuid"] = json!(root);
    }
    v
}

pub fn view_of(p: &Provider, mv: Microversion) -> Value {
    provider_view(&p.uuid, &p.name, p.generation, p.parent_provider_uuid.as_deref(), p.root_uuid(), mv)
}
