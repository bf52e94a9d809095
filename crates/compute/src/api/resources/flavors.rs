//! `/flavors`: list (brief and detail, with Nova's filters, sorting and
//! paging), show, create and delete (admin), description update (2.55).
//!
//! Per microversion: `description` from 2.55, `extra_specs` in the flavor
//! from 2.61 (when the caller may list extra specs), `swap` as 0 rather than
//! `""` from 2.75, unknown query parameters refused from 2.75.

use std::cmp::Ordering;

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};
use stratus_core::AuthContext;
use stratus_core::Microversion;
use stratus_core::auth::Auth;
use stratus_core::extract::{Json, RawQuery};

use super::common::{self, invalid, invalid_query, py_repr};
use crate::api::{accepted_empty, authorize, is_admin, ok};
use crate::error::{ComputeError, Result, bad, not_found};
use crate::store::flavors::{self, Flavor, NewFlavor};
use crate::{ComputeService, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.1/flavors", get(index).post(create))
        .route("/v2.1/flavors/detail", get(detail))
        .route("/v2.1/flavors/{id}", get(show).put(update).delete(delete))
}

/// The keys Nova lets a flavor list sort by.
const SORT_KEYS: &[&str] = &[
    "created_at",
    "description",
    "disabled",
    "ephemeral_gb",
    "flavorid",
    "id",
    "is_public",
    "memory_mb",
    "name",
    "root_gb",
    "rxtx_factor",
    "swap",
    "updated_at",
    "vcpu_weight",
    "vcpus",
];

const MAX_INT: i64 = 0x7FFF_FFFF;

pub fn flavor_not_found(id: &str) -> ComputeError {
    not_found(format!("Flavor {id} could not be found."))
}

/// May the caller see extra specs inside flavors (2.61)?
pub fn may_see_extra_specs(svc: &ComputeService, ctx: &AuthContext, mv: Microversion) -> bool {
    mv.at_least(2, 61)
        && svc.policy.allowed(
            ctx,
            "os_compute_api:os-flavor-extra-specs:index",
            &json!({"project_id": ctx.project_id, "user_id": ctx.user_id}),
        )
}

/// The detailed view of a flavor (show, create, update, detail list).
pub fn view(svc: &ComputeService, f: &Flavor, mv: Microversion, extra_specs: bool) -> Value {
    let mut v = Map::new();
    v.insert("id".into(), json!(f.id));
    v.insert("name".into(), json!(f.name));
    v.insert("ram".into(), json!(f.memory_mb));
    v.insert("disk".into(), json!(f.root_gb));
    v.insert("swap".into(), if f.swap == 0 && !mv.at_least(2, 75) { json!("") } else { json!(f.swap) });
    v.insert("OS-FLV-EXT-DATA:ephemeral".into(), json!(f.ephemeral_gb));
    v.insert("OS-FLV-DISABLED:disabled".into(), json!(f.disabled));
    v.insert("vcpus".into(), json!(f.vcpus));
    v.insert("os-flavor-access:is_public".into(), json!(f.is_public));
    v.insert("rxtx_factor".into(), if f.rxtx_factor == 0.0 { json!("") } else { json!(f.rxtx_factor) });
    v.insert("links".into(), common::links(svc, "flavors", &f.id));
    if mv.at_least(2, 55) {
        v.insert("description".into(), json!(f.description));
    }
    if extra_specs {
        v.insert("extra_specs".into(), json!(f.extra_specs));
    }
    Value::Object(v)
}

fn brief(svc: &ComputeService, f: &Flavor, mv: Microversion) -> Value {
    let mut v = json!({"id": f.id, "name": f.name, "links": common::links(svc, "flavors", &f.id)});
    if mv.at_least(2, 55) {
        v["description"] = json!(f.description);
    }
    v
}

/// A flavor the caller may see: admins see every flavor, others the public
/// ones and the private ones their project was given; anything else is a 404.
pub async fn visible(svc: &ComputeService, ctx: &AuthContext, id: &str) -> Result<Flavor> {
    let f = flavors::get_by_flavorid(&svc.db, id).await?.ok_or_else(|| flavor_not_found(id))?;
    if f.is_public || is_admin(svc, ctx) {
        return Ok(f);
    }
    match ctx.project_id.as_deref() {
        Some(p) if flavors::project_can_use(&svc.db, &f, p).await? => Ok(f),
        _ => Err(flavor_not_found(id)),
    }
}

#[derive(Clone, Debug, PartialEq, PartialOrd)]
enum SortVal {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

fn sort_val(f: &Flavor, key: &str) -> SortVal {
    match key {
        "created_at" => SortVal::Int(f.created_at),
        "updated_at" => f.updated_at.map_or(SortVal::Null, SortVal::Int),
        "description" => f.description.clone().map_or(SortVal::Null, SortVal::Str),
        "disabled" => SortVal::Bool(f.disabled),
        "is_public" => SortVal::Bool(f.is_public),
        "ephemeral_gb" => SortVal::Int(f.ephemeral_gb),
        "id" => SortVal::Int(f.internal_id),
        "memory_mb" => SortVal::Int(f.memory_mb),
        "name" => SortVal::Str(f.name.clone()),
        "root_gb" => SortVal::Int(f.root_gb),
        "rxtx_factor" => SortVal::Float(f.rxtx_factor),
        "swap" => SortVal::Int(f.swap),
        "vcpu_weight" => f.vcpu_weight.map_or(SortVal::Null, SortVal::Int),
        "vcpus" => SortVal::Int(f.vcpus),
        _ => SortVal::Str(f.id.clone()),
    }
}

fn compare(a: &Flavor, b: &Flavor, key: &str, desc: bool) -> Ordering {
    let o = sort_val(a, key)
        .partial_cmp(&sort_val(b, key))
        .unwrap_or(Ordering::Equal)
        .then(a.internal_id.cmp(&b.internal_id));
    if desc { o.reverse() } else { o }
}

/// The flavors a list request asks for, one page of them.
async fn page(svc: &ComputeService, ctx: &AuthContext, mv: Microversion, q: &RawQuery) -> Result<(Vec<Flavor>, usize)> {
    common::check_query(
        q,
        &["limit", "marker", "is_public", "minRam", "minDisk", "sort_key", "sort_dir"],
        mv.at_least(2, 75),
    )?;
    let sort_key = q.get("sort_key").filter(|s| !s.is_empty()).unwrap_or("flavorid");
    if !SORT_KEYS.contains(&sort_key) {
        let list = SORT_KEYS.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", ");
        return Err(invalid_query("sort_key", sort_key, &format!("'{sort_key}' is not one of [{list}]")));
    }
    let sort_dir = q.get("sort_dir").filter(|s| !s.is_empty()).unwrap_or("asc");
    if !["asc", "desc"].contains(&sort_dir) {
        return Err(invalid_query("sort_dir", sort_dir, &format!("'{sort_dir}' is not one of ['asc', 'desc']")));
    }
    let (limit, marker) = common::limit_marker(q)?;
    let admin = is_admin(svc, ctx);
    // admins may ask for public (default), private, or all ("none") flavors
    let is_public: Option<bool> = if admin {
        match q.get("is_public") {
            None => Some(true),
            Some(v) if v.eq_ignore_ascii_case("none") => None,
            Some(v) => Some(common::bool_word(v).ok_or_else(|| bad(format!("Invalid is_public filter [{v}]")))?),
        }
    } else {
        Some(true)
    };
    let min_ram = match q.get("minRam") {
        None => None,
        Some(v) => Some(v.trim().parse::<i64>().map_err(|_| bad(format!("Invalid minRam filter [{v}]")))?),
    };
    let min_disk = match q.get("minDisk") {
        None => None,
        Some(v) => Some(v.trim().parse::<i64>().map_err(|_| bad(format!("Invalid minDisk filter [{v}]")))?),
    };
    let access = match ctx.project_id.as_deref() {
        Some(p) => flavors::accessible_private(&svc.db, p).await?,
        None => Default::default(),
    };
    let all = flavors::all(&svc.db).await?;
    // what the caller may see at all (the marker must be one of these)
    let seen: Vec<Flavor> =
        all.into_iter().filter(|f| admin || f.is_public || access.contains(&f.internal_id)).collect();
    let marker_row = match &marker {
        None => None,
        Some(m) => {
            Some(seen.iter().find(|f| &f.id == m).cloned().ok_or_else(|| bad(format!("marker [{m}] not found")))?)
        }
    };
    let desc = sort_dir == "desc";
    let mut list: Vec<Flavor> = seen
        .into_iter()
        .filter(|f| match is_public {
            None => true,
            Some(true) => f.is_public || (ctx.project_id.is_some() && access.contains(&f.internal_id)),
            Some(false) => !f.is_public,
        })
        .filter(|f| admin || !f.disabled)
        .filter(|f| min_ram.is_none_or(|m| f.memory_mb >= m))
        .filter(|f| min_disk.is_none_or(|m| f.root_gb >= m))
        .collect();
    list.sort_by(|a, b| compare(a, b, sort_key, desc));
    if let Some(m) = marker_row {
        list.retain(|f| compare(f, &m, sort_key, desc) == Ordering::Greater);
    }
    list.truncate(limit);
    Ok((list, limit))
}

async fn index(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, q: RawQuery) -> Result<Response> {
    let (list, limit) = page(&svc, &ctx, mv, &q).await?;
    let mut body = json!({"flavors": list.iter().map(|f| brief(&svc, f, mv)).collect::<Vec<_>>()});
    let links = common::next_links(&svc, "flavors", &q, list.len(), limit, list.last().map(|f| f.id.as_str()));
    if !links.is_empty() {
        body["flavors_links"] = json!(links);
    }
    Ok(ok(body))
}

async fn detail(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, q: RawQuery) -> Result<Response> {
    let (list, limit) = page(&svc, &ctx, mv, &q).await?;
    let specs = may_see_extra_specs(&svc, &ctx, mv);
    let mut body = json!({"flavors": list.iter().map(|f| view(&svc, f, mv, specs)).collect::<Vec<_>>()});
    let links = common::next_links(&svc, "flavors/detail", &q, list.len(), limit, list.last().map(|f| f.id.as_str()));
    if !links.is_empty() {
        body["flavors_links"] = json!(links);
    }
    Ok(ok(body))
}

async fn show(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Path(id): Path<String>) -> Result<Response> {
    let f = visible(&svc, &ctx, &id).await?;
    Ok(ok(json!({"flavor": view(&svc, &f, mv, may_see_extra_specs(&svc, &ctx, mv))})))
}

/// Python's `str()` of a JSON number given as a flavor id.
fn number_id(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e16 => format!("{f:.1}"),
        Some(f) => f.to_string(),
        None => n.to_string(),
    }
}

fn flavor_id(v: &Value) -> Result<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => {
            let s = number_id(n);
            // Nova: "if not flavorid" generates one (0 counts as none)
            Ok(if n.as_f64() == Some(0.0) { None } else { Some(s) })
        }
        Value::String(s) => {
            common::string("id", v, 1, 255)?;
            let ok = s.bytes().all(|b| b.is_ascii_alphanumeric() || b". _-".contains(&b))
                && !s.starts_with(' ')
                && !s.ends_with(' ');
            if !ok {
                return Err(invalid(
                    "id",
                    v,
                    &format!("{} does not match '^(?! )[a-zA-Z0-9. _-]+(?<! )$'", py_repr(v)),
                ));
            }
            Ok(Some(s.clone()))
        }
        other => Err(invalid("id", other, &format!("{} is not of type 'string', 'number', 'null'", py_repr(other)))),
    }
}

fn rxtx(v: &Value) -> Result<f64> {
    let f = match v {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::String(s) => {
            let ok = {
                let (a, b) = s.split_once('.').unwrap_or((s, "0"));
                !a.is_empty()
                    && !b.is_empty()
                    && a.bytes().all(|c| c.is_ascii_digit())
                    && b.bytes().all(|c| c.is_ascii_digit())
            };
            if !ok {
                return Err(invalid(
                    "rxtx_factor",
                    v,
                    &format!("{} does not match '^[0-9]+(\\.[0-9]+)?$'", py_repr(v)),
                ));
            }
            s.parse::<f64>().unwrap_or(0.0)
        }
        other => {
            return Err(invalid(
                "rxtx_factor",
                other,
                &format!("{} is not of type 'number', 'string'", py_repr(other)),
            ));
        }
    };
    if f <= 0.0 {
        return Err(invalid("rxtx_factor", v, &format!("{} is less than or equal to the minimum of 0", py_repr(v))));
    }
    if f > 3.40282e38 {
        return Err(invalid("rxtx_factor", v, &format!("{} is greater than the maximum of 3.40282e+38", py_repr(v))));
    }
    Ok(f)
}

async fn create(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Json(body): Json<Value>) -> Result<Response> {
    let top = common::object(&body, None)?;
    let fv = common::required(top, None, "flavor")?;
    common::no_extra(top, None, &["flavor"])?;
    let f = common::object(fv, Some("flavor"))?;
    let mut allowed = vec![
        "name",
        "id",
        "ram",
        "vcpus",
        "disk",
        "OS-FLV-EXT-DATA:ephemeral",
        "swap",
        "rxtx_factor",
        "os-flavor-access:is_public",
    ];
    if mv.at_least(2, 55) {
        allowed.push("description");
    }
    let name = f.get("name").map(|v| common::name("name", v)).transpose()?;
    let id = match f.get("id") {
        Some(v) => flavor_id(v)?,
        None => None,
    };
    let ram = f.get("ram").map(|v| common::integer("ram", v, 1, MAX_INT, false)).transpose()?;
    let vcpus = f.get("vcpus").map(|v| common::integer("vcpus", v, 1, MAX_INT, false)).transpose()?;
    let disk = f.get("disk").map(|v| common::integer("disk", v, 0, MAX_INT, false)).transpose()?;
    let ephemeral = f
        .get("OS-FLV-EXT-DATA:ephemeral")
        .map(|v| common::integer("OS-FLV-EXT-DATA:ephemeral", v, 0, MAX_INT, false))
        .transpose()?
        .unwrap_or(0);
    let swap = f.get("swap").map(|v| common::integer("swap", v, 0, MAX_INT, false)).transpose()?.unwrap_or(0);
    let rxtx_factor = f.get("rxtx_factor").map(rxtx).transpose()?.unwrap_or(1.0);
    let is_public = f
        .get("os-flavor-access:is_public")
        .map(|v| common::boolean("os-flavor-access:is_public", v))
        .transpose()?
        .unwrap_or(true);
    let description = match f.get("description") {
        Some(v) if mv.at_least(2, 55) => common::description("description", v, 65535)?,
        _ => None,
    };
    for key in ["name", "ram", "vcpus", "disk"] {
        common::required(f, Some("flavor"), key)?;
    }
    common::no_extra(f, Some("flavor"), &allowed)?;
    let (Some(name), Some(ram), Some(vcpus), Some(disk)) = (name, ram, vcpus, disk) else {
        return Err(bad("'flavor' is incomplete"));
    };
    // as in Nova: the body's schema first, then the policy
    authorize(&svc, &ctx, "os_compute_api:os-flavor-manage:create", &json!({}))?;
    let new = NewFlavor {
        id: id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        name: name.trim().to_string(),
        memory_mb: ram,
        vcpus,
        root_gb: disk,
        ephemeral_gb: ephemeral,
        swap,
        rxtx_factor,
        is_public,
        description,
    };
    let created = flavors::create(&svc.db, new).await?;
    Ok(ok(json!({"flavor": view(&svc, &created, mv, may_see_extra_specs(&svc, &ctx, mv))})))
}

async fn update(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    if !mv.at_least(2, 55) {
        return Err(common::version_not_found());
    }
    let f = common::the_object(&body, "flavor")?;
    let description = common::description("description", common::required(f, Some("flavor"), "description")?, 65535)?;
    common::no_extra(f, Some("flavor"), &["description"])?;
    authorize(&svc, &ctx, "os_compute_api:os-flavor-manage:update", &json!({}))?;
    let updated = flavors::update_description(&svc.db, &id, description).await?.ok_or_else(|| flavor_not_found(&id))?;
    Ok(ok(json!({"flavor": view(&svc, &updated, mv, may_see_extra_specs(&svc, &ctx, mv))})))
}

async fn delete(S(svc): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    authorize(&svc, &ctx, "os_compute_api:os-flavor-manage:delete", &json!({}))?;
    if !flavors::delete(&svc.db, &id).await? {
        return Err(flavor_not_found(&id));
    }
    Ok(accepted_empty())
}
