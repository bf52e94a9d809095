//! The placement client compute hosts and the scheduler use, as Nova's
//! report client does: always at `OpenStack-API-Version: placement 1.39`,
//! with a service token, typed requests and answers, and the retries
//! placement expects of its clients on generation conflicts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use futures::future::BoxFuture;
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The microversion every request is made at.
pub const MICROVERSION: &str = "placement 1.39";

/// Where a service token comes from (e.g. `IdentityClient::service_token`).
pub type TokenSource = Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<String>> + Send + Sync>;

/// How often a write is retried after a provider generation conflict.
const RETRIES: usize = 5;

/// A refusal from placement: status, error code, detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    pub status: u16,
    /// e.g. `placement.concurrent_update`
    pub code: String,
    pub detail: String,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "placement answered {} ({}): {}", self.status, self.code, self.detail)
    }
}

impl std::error::Error for ApiFailure {}

impl ApiFailure {
    pub fn is_concurrent_update(&self) -> bool {
        self.status == 409 && self.code == "placement.concurrent_update"
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceProvider {
    pub uuid: String,
    pub name: String,
    pub generation: i64,
    pub parent_provider_uuid: Option<String>,
    pub root_provider_uuid: String,
}

/// One inventory record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub total: i64,
    pub reserved: i64,
    pub min_unit: i64,
    pub max_unit: i64,
    pub step_size: i64,
    pub allocation_ratio: f64,
}

impl Inventory {
    /// `total` units, nothing reserved, any amount up to the total at once.
    pub fn new(total: i64) -> Inventory {
        Inventory { total, reserved: 0, min_unit: 1, max_unit: total.max(1), step_size: 1, allocation_ratio: 1.0 }
    }
}

/// A request group of an allocation candidates query (`resources{suffix}` ...).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestGroup {
    /// resource class -> amount
    pub resources: BTreeMap<String, i64>,
    /// required traits; `!TRAIT` forbids one
    pub required: Vec<String>,
    /// any-of sets of traits (`required=in:A,B`)
    pub required_any: Vec<Vec<String>>,
    /// aggregates, any of each list (`member_of=in:a,b`); `!a` forbids one
    pub member_of: Vec<Vec<String>>,
    pub in_tree: Option<String>,
}

/// `GET /allocation_candidates`, typed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CandidateQuery {
    /// the unsuffixed group
    pub group: RequestGroup,
    /// granular groups by suffix (`1`, `_NET`, ...)
    pub groups: BTreeMap<String, RequestGroup>,
    /// `none` or `isolate`
    pub group_policy: Option<String>,
    pub limit: Option<usize>,
    /// traits the root of each candidate must have (`!TRAIT`: must not)
    pub root_required: Vec<String>,
    pub same_subtree: Vec<Vec<String>>,
}

impl CandidateQuery {
    /// A query for these amounts, nothing else.
    pub fn resources(amounts: &[(&str, i64)]) -> CandidateQuery {
        let mut q = CandidateQuery::default();
        for (rc, n) in amounts {
            q.group.resources.insert(rc.to_string(), *n);
        }
        q
    }

    /// The query string pairs.
    pub fn pairs(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut group = |suffix: &str, g: &RequestGroup| {
            if !g.resources.is_empty() {
                let r: Vec<String> = g.resources.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                out.push((format!("resources{suffix}"), r.join(",")));
            }
            if !g.required.is_empty() {
                out.push((format!("required{suffix}"), g.required.join(",")));
            }
            for any in &g.required_any {
                out.push((format!("required{suffix}"), format!("in:{}", any.join(","))));
            }
            for any in &g.member_of {
                let v = match any.as_slice() {
                    [one] => one.clone(),
                    many => format!("in:{}", many.join(",")),
                };
                out.push((format!("member_of{suffix}"), v));
            }
            if let Some(t) = &g.in_tree {
                out.push((format!("in_tree{suffix}"), t.clone()));
            }
        };
        group("", &self.group);
        for (suffix, g) in &self.groups {
            group(suffix, g);
        }
        if let Some(p) = &self.group_policy {
            out.push(("group_policy".into(), p.clone()));
        }
        if let Some(l) = self.limit {
            out.push(("limit".into(), l.to_string()));
        }
        if !self.root_required.is_empty() {
            out.push(("root_required".into(), self.root_required.join(",")));
        }
        for s in &self.same_subtree {
            out.push(("same_subtree".into(), s.join(",")));
        }
        out
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    pub resources: BTreeMap<String, i64>,
}

/// One allocation candidate: ready to claim as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationRequest {
    /// provider uuid -> resources
    pub allocations: BTreeMap<String, Resources>,
    /// request group suffix -> providers that satisfied it
    #[serde(default)]
    pub mappings: BTreeMap<String, Vec<String>>,
}

impl AllocationRequest {
    /// provider uuid -> resource class -> amount, as `claim` takes them.
    pub fn amounts(&self) -> BTreeMap<String, BTreeMap<String, i64>> {
        self.allocations.iter().map(|(k, v)| (k.clone(), v.resources.clone())).collect()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    pub capacity: i64,
    pub used: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderSummary {
    pub resources: BTreeMap<String, Capacity>,
    #[serde(default)]
    pub traits: Vec<String>,
    #[serde(default)]
    pub parent_provider_uuid: Option<String>,
    #[serde(default)]
    pub root_provider_uuid: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidates {
    pub allocation_requests: Vec<AllocationRequest>,
    pub provider_summaries: BTreeMap<String, ProviderSummary>,
}

/// One provider's part of a consumer's allocations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderAllocation {
    #[serde(default)]
    pub generation: i64,
    pub resources: BTreeMap<String, i64>,
}

/// `GET /allocations/{consumer}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerAllocations {
    pub allocations: BTreeMap<String, ProviderAllocation>,
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    /// `None`: the consumer has no allocations (is unknown to placement).
    #[serde(default)]
    pub consumer_generation: Option<i64>,
    #[serde(default)]
    pub consumer_type: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TypeUsage {
    pub consumer_count: i64,
    pub resources: BTreeMap<String, i64>,
}

/// `GET /usages` of a project (and user).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Usages {
    /// all consumer types together
    pub total: BTreeMap<String, i64>,
    /// by consumer type (`INSTANCE`, `MIGRATION`, `unknown`, ...)
    pub by_consumer_type: BTreeMap<String, TypeUsage>,
}

/// The consumer type of instances (what `claim` records).
pub const INSTANCE: &str = "INSTANCE";
/// The consumer type of migration records (what `move_allocations` records on the source).
pub const MIGRATION: &str = "MIGRATION";

pub struct PlacementClient {
    base: String,
    http: reqwest::Client,
    token: TokenSource,
}

impl PlacementClient {
    /// A client of the placement at `base_url` (e.g. `http://host:8778`).
    pub fn new(base_url: &str, token: TokenSource) -> anyhow::Result<PlacementClient> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
        Ok(PlacementClient { base: base_url.trim_end_matches('/').to_string(), http, token })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let token = (self.token)().await.context("no service token for placement")?;
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.base))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut req = self
            .http
            .request(method.clone(), url)
            .header("x-auth-token", token)
            .header("openstack-api-version", MICROVERSION)
            .header("accept", "application/json");
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req.send().await.with_context(|| format!("{method} {path}"))?;
        let status = r.status();
        let text = r.text().await?;
        let v = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        Ok((status, v))
    }

    fn failure(status: StatusCode, v: &Value) -> anyhow::Error {
        let e = &v["errors"][0];
        anyhow::Error::new(ApiFailure {
            status: status.as_u16(),
            code: e["code"].as_str().unwrap_or("").to_string(),
            detail: e["detail"].as_str().map(str::to_string).unwrap_or_else(|| v.to_string()),
        })
    }

    fn expect(status: StatusCode, v: Value, ok: &[u16]) -> anyhow::Result<Value> {
        if ok.contains(&status.as_u16()) { Ok(v) } else { Err(Self::failure(status, &v)) }
    }

    pub async fn get_provider(&self, uuid: &str) -> anyhow::Result<Option<ResourceProvider>> {
        let (status, v) = self.send(Method::GET, &format!("/resource_providers/{uuid}"), &[], None).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Ok(Some(serde_json::from_value(Self::expect(status, v, &[200])?)?))
    }

    /// The provider, created (under `parent`) when missing.
    pub async fn ensure_provider(
        &self,
        uuid: &str,
        name: &str,
        parent: Option<&str>,
    ) -> anyhow::Result<ResourceProvider> {
        if let Some(p) = self.get_provider(uuid).await? {
            return Ok(p);
        }
        let body = json!({"uuid": uuid, "name": name, "parent_provider_uuid": parent});
        let (status, v) = self.send(Method::POST, "/resource_providers", &[], Some(&body)).await?;
        if status == StatusCode::CONFLICT
            && let Some(p) = self.get_provider(uuid).await?
        {
            // created meanwhile by someone else
            return Ok(p);
        }
        Ok(serde_json::from_value(Self::expect(status, v, &[200])?)?)
    }

    /// Delete a provider; false when there was none.
    pub async fn delete_provider(&self, uuid: &str) -> anyhow::Result<bool> {
        let (status, v) = self.send(Method::DELETE, &format!("/resource_providers/{uuid}"), &[], None).await?;
        match status.as_u16() {
            204 => Ok(true),
            404 => Ok(false),
            _ => Err(Self::failure(status, &v)),
        }
    }

    async fn generation(&self, uuid: &str) -> anyhow::Result<i64> {
        let p = self.get_provider(uuid).await?.ok_or_else(|| anyhow!("resource provider {uuid} not found"))?;
        Ok(p.generation)
    }

    /// Replace a provider's inventory (retrying on generation conflicts);
    /// the provider's new generation.
    pub async fn set_inventories(&self, uuid: &str, inventories: &BTreeMap<String, Inventory>) -> anyhow::Result<i64> {
        for attempt in 0..RETRIES {
            let generation = self.generation(uuid).await?;
            let body = json!({"resource_provider_generation": generation, "inventories": inventories});
            let (status, v) =
                self.send(Method::PUT, &format!("/resource_providers/{uuid}/inventories"), &[], Some(&body)).await?;
            if status == StatusCode::OK {
                return v["resource_provider_generation"].as_i64().context("no generation in the answer");
            }
            let e = Self::failure(status, &v);
            let retry = e.downcast_ref::<ApiFailure>().is_some_and(ApiFailure::is_concurrent_update);
            if !retry || attempt + 1 == RETRIES {
                return Err(e);
            }
        }
        Err(anyhow!("unreachable"))
    }

    /// Replace a provider's traits, creating the custom ones; the new generation.
    pub async fn set_traits(&self, uuid: &str, traits: &[String]) -> anyhow::Result<i64> {
        for t in traits.iter().filter(|t| t.starts_with("CUSTOM_")) {
            let (status, v) = self.send(Method::PUT, &format!("/traits/{t}"), &[], None).await?;
            Self::expect(status, v, &[201, 204])?;
        }
        for attempt in 0..RETRIES {
            let generation = self.generation(uuid).await?;
            let body = json!({"resource_provider_generation": generation, "traits": traits});
            let (status, v) =
                self.send(Method::PUT, &format!("/resource_providers/{uuid}/traits"), &[], Some(&body)).await?;
            if status == StatusCode::OK {
                return v["resource_provider_generation"].as_i64().context("no generation in the answer");
            }
            let e = Self::failure(status, &v);
            let retry = e.downcast_ref::<ApiFailure>().is_some_and(ApiFailure::is_concurrent_update);
            if !retry || attempt + 1 == RETRIES {
                return Err(e);
            }
        }
        Err(anyhow!("unreachable"))
    }

    /// Replace a provider's aggregates; the new generation.
    pub async fn set_aggregates(&self, uuid: &str, aggregates: &[String]) -> anyhow::Result<i64> {
        for attempt in 0..RETRIES {
            let generation = self.generation(uuid).await?;
            let body = json!({"resource_provider_generation": generation, "aggregates": aggregates});
            let (status, v) =
                self.send(Method::PUT, &format!("/resource_providers/{uuid}/aggregates"), &[], Some(&body)).await?;
            if status == StatusCode::OK {
                return v["resource_provider_generation"].as_i64().context("no generation in the answer");
            }
            let e = Self::failure(status, &v);
            let retry = e.downcast_ref::<ApiFailure>().is_some_and(ApiFailure::is_concurrent_update);
            if !retry || attempt + 1 == RETRIES {
                return Err(e);
            }
        }
        Err(anyhow!("unreachable"))
    }

    pub async fn allocation_candidates(&self, q: &CandidateQuery) -> anyhow::Result<Candidates> {
        let (status, v) = self.send(Method::GET, "/allocation_candidates", &q.pairs(), None).await?;
        Ok(serde_json::from_value(Self::expect(status, v, &[200])?)?)
    }

    /// Claim resources for a consumer (an instance): true when claimed, false
    /// on a conflict (no room left, or the consumer changed: `consumer_generation`
    /// is `None` for a new consumer).
    pub async fn claim(
        &self,
        consumer: &str,
        allocations: &BTreeMap<String, BTreeMap<String, i64>>,
        project_id: &str,
        user_id: &str,
        consumer_generation: Option<i64>,
    ) -> anyhow::Result<bool> {
        self.claim_as(consumer, allocations, project_id, user_id, consumer_generation, INSTANCE).await
    }

    /// `claim` with another consumer type.
    pub async fn claim_as(
        &self,
        consumer: &str,
        allocations: &BTreeMap<String, BTreeMap<String, i64>>,
        project_id: &str,
        user_id: &str,
        consumer_generation: Option<i64>,
        consumer_type: &str,
    ) -> anyhow::Result<bool> {
        let allocs: BTreeMap<&String, Resources> =
            allocations.iter().map(|(k, v)| (k, Resources { resources: v.clone() })).collect();
        let body = json!({
            "allocations": allocs,
            "project_id": project_id,
            "user_id": user_id,
            "consumer_generation": consumer_generation,
            "consumer_type": consumer_type,
        });
        let (status, v) = self.send(Method::PUT, &format!("/allocations/{consumer}"), &[], Some(&body)).await?;
        match status.as_u16() {
            204 => Ok(true),
            409 => Ok(false),
            _ => Err(Self::failure(status, &v)),
        }
    }

    pub async fn get_allocations(&self, consumer: &str) -> anyhow::Result<ConsumerAllocations> {
        let (status, v) = self.send(Method::GET, &format!("/allocations/{consumer}"), &[], None).await?;
        Ok(serde_json::from_value(Self::expect(status, v, &[200])?)?)
    }

    /// Remove all of a consumer's allocations; false when it had none.
    pub async fn delete_allocations(&self, consumer: &str) -> anyhow::Result<bool> {
        let (status, v) = self.send(Method::DELETE, &format!("/allocations/{consumer}"), &[], None).await?;
        match status.as_u16() {
            204 => Ok(true),
            404 => Ok(false),
            _ => Err(Self::failure(status, &v)),
        }
    }

    /// Move all of `from`'s allocations to `to` in one request (`POST
    /// /allocations`), as Nova moves an instance's allocations to its
    /// migration record on resize and migrate: `to` gets exactly what `from`
    /// had, `from` is left with none. True when moved (or when `from` had
    /// nothing), false on a conflict (either consumer changed meanwhile).
    pub async fn move_allocations(&self, from: &str, to: &str) -> anyhow::Result<bool> {
        let source = self.get_allocations(from).await?;
        if source.allocations.is_empty() {
            return Ok(true);
        }
        let target = self.get_allocations(to).await?;
        let project = source.project_id.clone().unwrap_or_default();
        let user = source.user_id.clone().unwrap_or_default();
        let moved: BTreeMap<&String, Resources> =
            source.allocations.iter().map(|(k, v)| (k, Resources { resources: v.resources.clone() })).collect();
        let source_type = source.consumer_type.clone().filter(|t| t != "unknown").unwrap_or_else(|| INSTANCE.into());
        // instance -> migration record on the way out, migration -> instance on a revert
        let target_type = target
            .consumer_type
            .clone()
            .filter(|t| t != "unknown")
            .unwrap_or_else(|| if source_type == MIGRATION { INSTANCE.into() } else { MIGRATION.into() });
        let mut body = serde_json::Map::new();
        body.insert(
            from.to_string(),
            json!({"allocations": {}, "project_id": project, "user_id": user,
                   "consumer_generation": source.consumer_generation, "consumer_type": source_type}),
        );
        body.insert(
            to.to_string(),
            json!({"allocations": moved, "project_id": project, "user_id": user,
                   "consumer_generation": target.consumer_generation, "consumer_type": target_type}),
        );
        let (status, v) = self.send(Method::POST, "/allocations", &[], Some(&Value::Object(body))).await?;
        match status.as_u16() {
            204 => Ok(true),
            409 => Ok(false),
            _ => Err(Self::failure(status, &v)),
        }
    }

    /// What a project (and user) uses.
    pub async fn usages(&self, project_id: &str, user_id: Option<&str>) -> anyhow::Result<Usages> {
        let mut q = vec![("project_id".to_string(), project_id.to_string())];
        if let Some(u) = user_id {
            q.push(("user_id".into(), u.to_string()));
        }
        let (status, v) = self.send(Method::GET, "/usages", &q, None).await?;
        let v = Self::expect(status, v, &[200])?;
        let mut out = Usages::default();
        for (ctype, u) in v["usages"].as_object().into_iter().flatten() {
            let mut tu = TypeUsage::default();
            for (k, n) in u.as_object().into_iter().flatten() {
                let n = n.as_i64().unwrap_or(0);
                if k == "consumer_count" {
                    tu.consumer_count = n;
                } else {
                    tu.resources.insert(k.clone(), n);
                    *out.total.entry(k.clone()).or_default() += n;
                }
            }
            out.by_consumer_type.insert(ctype.clone(), tu);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs() {
        let mut q = CandidateQuery::resources(&[("VCPU", 2), ("MEMORY_MB", 512)]);
        q.group.required = vec!["HW_CPU_X86_AVX2".into(), "!CUSTOM_SLOW".into()];
        q.group.member_of = vec![vec!["a".into()], vec!["b".into(), "c".into()]];
        q.groups.insert(
            "_NET".into(),
            RequestGroup {
                resources: BTreeMap::from([("SRIOV_NET_VF".into(), 1)]),
                required_any: vec![vec!["CUSTOM_A".into(), "CUSTOM_B".into()]],
                ..Default::default()
            },
        );
        q.group_policy = Some("isolate".into());
        q.limit = Some(10);
        let p: Vec<String> = q.pairs().into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            p,
            [
                "resources=MEMORY_MB:512,VCPU:2",
                "required=HW_CPU_X86_AVX2,!CUSTOM_SLOW",
                "member_of=a",
                "member_of=in:b,c",
                "resources_NET=SRIOV_NET_VF:1",
                "required_NET=in:CUSTOM_A,CUSTOM_B",
                "group_policy=isolate",
                "limit=10",
            ]
        );
    }
}
