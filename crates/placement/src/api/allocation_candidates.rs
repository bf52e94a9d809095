//! `GET /allocation_candidates` (1.10): the scheduler's question, answered
//! from the in-memory index (`crate::candidates`), rendered in the shape of
//! the microversion: list-form requests before 1.12, traits in summaries from
//! 1.17, every class in summaries from 1.27, parents and roots from 1.29,
//! mappings from 1.34.

use axum::Router;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use stratus_core::Microversion;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use super::{accept_json, since};
use crate::State;
use crate::candidates::Candidates;
use crate::error::Result;
use crate::index::Index;
use crate::model::CandidateRequest;
use crate::policies as p;
use crate::query;

pub fn routes() -> Router<State> {
    Router::new().route("/allocation_candidates", get(list))
}

/// Write a string that is (nearly always) a uuid or a resource class,
/// trait or suffix name: those need no escaping; anything else is escaped.
fn put_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else if serde_json::to_writer(&mut *out, s).is_err() {
        out.extend_from_slice(b"\"\"");
    }
}

fn put_int(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// One provider summary: `{"resources": {...}, "traits": [...],
/// "parent_provider_uuid": ..., "root_provider_uuid": ...}`, with only the
/// `requested` classes when given (before 1.27), traits from 1.17, parent
/// and root from 1.29 (what the index caches per provider is the 1.29 form).
pub fn write_summary(
    idx: &Index,
    p: &crate::index::Provider,
    requested: Option<&std::collections::BTreeSet<crate::index::NameId>>,
    traits: bool,
    tree: bool,
    out: &mut Vec<u8>,
) {
    let uuid = |id: i64| idx.get(id).map(|p| p.uuid.as_str()).unwrap_or("");
    out.extend_from_slice(b"{\"resources\":{");
    let mut invs: Vec<_> = p.invs.iter().filter(|i| requested.is_none_or(|r| r.contains(&i.rc))).collect();
    invs.sort_by_key(|i| idx.rc_rank(i.rc));
    for (n, i) in invs.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        put_str(out, idx.rcs.name(i.rc));
        out.extend_from_slice(b":{\"capacity\":");
        put_int(out, i.capacity());
        out.extend_from_slice(b",\"used\":");
        put_int(out, i.used);
        out.push(b'}');
    }
    out.push(b'}');
    if traits {
        out.extend_from_slice(b",\"traits\":[");
        let mut names: Vec<&str> = p.traits.iter().map(|t| idx.traits.name(*t)).collect();
        names.sort_unstable();
        for (n, t) in names.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            put_str(out, t);
        }
        out.push(b']');
    }
    if tree {
        out.extend_from_slice(b",\"parent_provider_uuid\":");
        match p.parent {
            Some(parent) => put_str(out, uuid(parent)),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"root_provider_uuid\":");
        put_str(out, if p.root == p.id { &p.uuid } else { uuid(p.root) });
    }
    out.push(b'}');
}

/// The response body of a search as the microversion shapes it, written
/// straight out (this is the scheduler's hot path: a thousand candidates
/// make half a megabyte).
pub fn render(idx: &Index, req: &CandidateRequest, found: &Candidates, mv: Microversion) -> Vec<u8> {
    // the resources of a candidate mostly come from one provider: look it up once
    let last: std::cell::Cell<(i64, &str)> = std::cell::Cell::new((i64::MIN, ""));
    let uuid = |id: i64| {
        let (lid, lu) = last.get();
        if lid == id {
            return lu;
        }
        let u = idx.get(id).map(|p| p.uuid.as_str()).unwrap_or("");
        last.set((id, u));
        u
    };
    let mut out: Vec<u8> = Vec::with_capacity(64 + found.requests.len() * 200 + found.summaries.len() * 300);
    out.extend_from_slice(b"{\"allocation_requests\":[");
    for (i, a) in found.requests.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let keyed = mv.at_least(1, 12);
        out.extend_from_slice(if keyed { b"{\"allocations\":{" } else { b"{\"allocations\":[" });
        // per provider, in order of appearance
        let mut first_provider = true;
        for (k, r) in a.resources.iter().enumerate() {
            if a.resources[..k].iter().any(|x| x.provider == r.provider) {
                continue;
            }
            if !first_provider {
                out.push(b',');
            }
            first_provider = false;
            if keyed {
                put_str(&mut out, uuid(r.provider));
                out.extend_from_slice(b":{\"resources\":{");
            } else {
                out.extend_from_slice(b"{\"resource_provider\":{\"uuid\":");
                put_str(&mut out, uuid(r.provider));
                out.extend_from_slice(b"},\"resources\":{");
            }
            let mut first = true;
            for x in a.resources[k..].iter().filter(|x| x.provider == r.provider) {
                if !first {
                    out.push(b',');
                }
                first = false;
                put_str(&mut out, idx.rcs.name(x.rc));
                out.push(b':');
                put_int(&mut out, x.amount);
            }
            out.extend_from_slice(b"}}");
        }
        out.push(if keyed { b'}' } else { b']' });
        if mv.at_least(1, 34) {
            out.extend_from_slice(b",\"mappings\":{");
            for (j, (g, ps)) in a.mappings.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                put_str(&mut out, req.groups.get(*g).map(|g| g.suffix.as_str()).unwrap_or(""));
                out.extend_from_slice(b":[");
                for (n, p) in ps.iter().enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    put_str(&mut out, uuid(*p));
                }
                out.push(b']');
            }
            out.push(b'}');
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"provider_summaries\":{");
    let all_classes = mv.at_least(1, 27);
    let requested = (!all_classes).then_some(&found.requested);
    let mut first_summary = true;
    for id in &found.summaries {
        let Some(p) = idx.get(*id) else { continue };
        if !first_summary {
            out.push(b',');
        }
        first_summary = false;
        put_str(&mut out, &p.uuid);
        out.push(b':');
        if mv.at_least(1, 29) && !p.summary.is_empty() {
            out.extend_from_slice(&p.summary);
        } else {
            write_summary(idx, p, requested, mv.at_least(1, 17), mv.at_least(1, 29), &mut out);
        }
    }
    out.extend_from_slice(b"}}");
    out
}

async fn list(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    since(mv, 1, 10)?;
    accept_json(&headers)?;
    svc.enforce(&ctx, p::CANDIDATES_LIST)?;
    let req = query::candidate_request(&q, mv)?;
    let (found, idx) = svc.allocation_candidates(&req).await?;
    let body = render(&idx, &req, &found, mv);
    drop(idx);
    let mut resp = (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    super::cache_headers(&mut resp, mv, None);
    Ok(resp)
}
