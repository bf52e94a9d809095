//! `GET /os-migrations` (admin): the migration records of servers.
//!
//! Per microversion: filters `status`, `host`, `source_compute`,
//! `instance_uuid`, `migration_type` always; from 2.23 each record shows its
//! `migration_type`; from 2.59 `uuid`, paging newest first by
//! `limit`/`marker` with `migrations_links`, `changes-since`, and unknown
//! parameters refused; `changes-before` from 2.66; `user_id`/`project_id`
//! (shown and filtered) from 2.80. Hosts are shown only to those allowed
//! `os-migrations:index:host`.

use axum::Router;
use axum::extract::State as S;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use stratus_core::Microversion;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use super::common::{self as c, naive_time};
use crate::api::{authorize, ok};
use crate::error::{Result, bad};
use crate::store::migrations::{self, Filter, Migration};
use crate::{ComputeService, State};

pub fn routes() -> Router<State> {
    Router::new().route("/v2.1/os-migrations", get(index))
}

fn view(m: &Migration, mv: Microversion, hosts: bool) -> Value {
    let host = |v: &Option<String>| if hosts { json!(v) } else { Value::Null };
    let mut v = json!({
        "id": m.id,
        "instance_uuid": m.instance_uuid,
        "status": m.status,
        "source_compute": host(&m.source_compute),
        "source_node": host(&m.source_node),
        "dest_compute": host(&m.dest_compute),
        "dest_node": host(&m.dest_node),
        "dest_host": host(&m.dest_host),
        "old_instance_type_id": m.old_instance_type_id,
        "new_instance_type_id": m.new_instance_type_id,
        "created_at": naive_time(m.created_at),
        "updated_at": m.updated_at.map(naive_time),
    });
    if mv.at_least(2, 23) {
        v["migration_type"] = json!(m.migration_type);
    }
    if mv.at_least(2, 59) {
        v["uuid"] = json!(m.uuid);
    }
    if mv.at_least(2, 80) {
        v["user_id"] = json!(m.user_id);
        v["project_id"] = json!(m.project_id);
    }
    v
}

fn time_param(q: &RawQuery, name: &str) -> Result<Option<i64>> {
    match q.get(name) {
        None => Ok(None),
        Some(s) => match stratus_core::time::parse(s) {
            Some(t) => Ok(Some(t.timestamp_micros())),
            None => Err(c::invalid_query(name, s, &format!("'{s}' is not a 'date-time'"))),
        },
    }
}

async fn index(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, q: RawQuery) -> Result<Response> {
    let svc: &ComputeService = &svc;
    authorize(svc, &ctx, "os_compute_api:os-migrations:index", &json!({}))?;
    let project = q.get("project_id").filter(|_| mv.at_least(2, 80));
    if project.is_none() || project != ctx.project_id.as_deref() {
        authorize(svc, &ctx, "os_compute_api:os-migrations:index:all_projects", &json!({}))?;
    }
    let hosts = svc.policy.allowed(&ctx, "os_compute_api:os-migrations:index:host", &json!({}));
    let paged = mv.at_least(2, 59);
    let mut allowed = vec!["hidden", "host", "instance_uuid", "source_compute", "status", "migration_type"];
    if paged {
        allowed.extend(["limit", "marker", "changes-since"]);
    }
    if mv.at_least(2, 66) {
        allowed.push("changes-before");
    }
    if mv.at_least(2, 80) {
        allowed.extend(["user_id", "project_id"]);
    }
    c::check_query(&q, &allowed, paged)?;
    let get = |k: &str| q.get(k).map(str::to_string);
    let mut f = Filter {
        status: get("status"),
        host: get("host"),
        source_compute: get("source_compute"),
        instance_uuid: get("instance_uuid"),
        migration_type: get("migration_type"),
        ..Default::default()
    };
    if mv.at_least(2, 80) {
        f.user_id = get("user_id");
        f.project_id = get("project_id");
    }
    if paged {
        f.changes_since = time_param(&q, "changes-since")?;
    }
    if mv.at_least(2, 66) {
        f.changes_before = time_param(&q, "changes-before")?;
        if let (Some(a), Some(b)) = (f.changes_since, f.changes_before)
            && b < a
        {
            return Err(bad("The value of changes-since must be less than or equal to changes-before."));
        }
    }
    let body = if paged {
        let (limit, marker) = c::limit_marker(&q)?;
        let marker = match marker {
            None => None,
            Some(m) => Some(
                migrations::get(&svc.db, &m).await?.ok_or_else(|| bad(format!("Marker {m} could not be found.")))?,
            ),
        };
        let list = migrations::list(&svc.db, &f, true, marker.as_ref(), Some(limit as u64)).await?;
        let items: Vec<Value> = list.iter().map(|m| view(m, mv, hosts)).collect();
        let mut body = json!({"migrations": items});
        let links = c::next_links(svc, "os-migrations", &q, list.len(), limit, list.last().map(|m| m.uuid.as_str()));
        if !links.is_empty() {
            body["migrations_links"] = Value::Array(links);
        }
        body
    } else {
        let list = migrations::list(&svc.db, &f, false, None, None).await?;
        json!({"migrations": list.iter().map(|m| view(m, mv, hosts)).collect::<Vec<_>>()})
    };
    Ok(ok(body))
}
