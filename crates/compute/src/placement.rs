//! What compute asks of placement, over its REST API with the service token
//! (as Nova's report client does): register hosts and their inventory, get
//! allocation candidates, claim, move and release allocations.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use futures::future::BoxFuture;
use serde_json::{Value, json};

/// Gives a valid service token.
pub type TokenSource = Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<String>> + Send + Sync>;

pub const VERSION: &str = "placement 1.39";

pub struct Placement {
    base: String,
    http: reqwest::Client,
    tokens: TokenSource,
}

impl Placement {
    pub fn new(base_url: &str, tokens: TokenSource) -> anyhow::Result<Placement> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
        Ok(Placement { base: base_url.trim_end_matches('/').to_string(), http, tokens })
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> anyhow::Result<(u16, Value)> {
        let token = (self.tokens)().await?;
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("x-auth-token", token)
            .header("openstack-api-version", VERSION);
        if let Some(b) = body {
            r = r.json(b);
        }
        let resp = r.send().await.context("placement unreachable")?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let v = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        Ok((status, v))
    }

    /// `GET /allocation_candidates?...`
    pub async fn candidates(&self, query: &[(String, String)]) -> anyhow::Result<Value> {
        let qs: Vec<String> = query.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect();
        let (s, v) = self.send(reqwest::Method::GET, &format!("/allocation_candidates?{}", qs.join("&")), None).await?;
        if s != 200 {
            bail!("allocation candidates: placement answered {s}: {v}");
        }
        Ok(v)
    }

    /// The consumer's allocations (`{}` when it has none) and its generation.
    pub async fn allocations(&self, consumer: &str) -> anyhow::Result<(Value, Option<i64>)> {
        let (s, v) = self.send(reqwest::Method::GET, &format!("/allocations/{consumer}"), None).await?;
        if s != 200 {
            bail!("allocations of {consumer}: placement answered {s}: {v}");
        }
        Ok((v["allocations"].clone(), v["consumer_generation"].as_i64()))
    }

    /// Claim `allocations` (`{rp_uuid: {"resources": {...}}}`) for a new
    /// consumer. `Ok(false)`: the resources are gone (or the consumer exists).
    pub async fn claim(&self, consumer: &str, allocations: &Value, project: &str, user: &str) -> anyhow::Result<bool> {
        let body = json!({"allocations": allocations, "project_id": project, "user_id": user,
            "consumer_generation": null, "consumer_type": "INSTANCE"});
        let (s, v) = self.send(reqwest::Method::PUT, &format!("/allocations/{consumer}"), Some(&body)).await?;
        match s {
            204 => Ok(true),
            409 => Ok(false),
            _ => bail!("claim for {consumer}: placement answered {s}: {v}"),
        }
    }

    /// Replace a consumer's allocations, whatever they are (resize, revert).
    pub async fn replace(
        &self,
        consumer: &str,
        allocations: &Value,
        project: &str,
        user: &str,
    ) -> anyhow::Result<bool> {
        for _ in 0..5 {
            let (_, generation) = self.allocations(consumer).await?;
            let body = json!({"allocations": allocations, "project_id": project, "user_id": user,
                "consumer_generation": generation, "consumer_type": "INSTANCE"});
            let (s, v) = self.send(reqwest::Method::PUT, &format!("/allocations/{consumer}"), Some(&body)).await?;
            match s {
                204 => return Ok(true),
                409 if v.to_string().contains("consumer generation") || v.to_string().contains("concurrent") => {
                    continue;
                }
                409 => return Ok(false),
                _ => bail!("allocations of {consumer}: placement answered {s}: {v}"),
            }
        }
        Ok(false)
    }

    /// Release everything a consumer holds (idempotent).
    pub async fn release(&self, consumer: &str) -> anyhow::Result<()> {
        let (s, v) = self.send(reqwest::Method::DELETE, &format!("/allocations/{consumer}"), None).await?;
        match s {
            204 | 404 => Ok(()),
            _ => bail!("releasing {consumer}: placement answered {s}: {v}"),
        }
    }

    /// Create the provider if missing; its generation.
    pub async fn ensure_provider(&self, uuid: &str, name: &str) -> anyhow::Result<i64> {
        let (s, v) = self.send(reqwest::Method::GET, &format!("/resource_providers/{uuid}"), None).await?;
        if s == 200 {
            return v["generation"].as_i64().context("provider without generation");
        }
        let (s, v) =
            self.send(reqwest::Method::POST, "/resource_providers", Some(&json!({"uuid": uuid, "name": name}))).await?;
        match s {
            200 | 201 => Ok(v["generation"].as_i64().unwrap_or(0)),
            409 => {
                // created meanwhile by another report
                let (s, v) = self.send(reqwest::Method::GET, &format!("/resource_providers/{uuid}"), None).await?;
                if s != 200 {
                    bail!("provider {name}: placement answered {s}: {v}");
                }
                v["generation"].as_i64().context("provider without generation")
            }
            _ => bail!("creating provider {name}: placement answered {s}: {v}"),
        }
    }

    /// Set the provider's whole inventory (retrying generation conflicts).
    pub async fn set_inventories(&self, uuid: &str, inventories: &Value) -> anyhow::Result<()> {
        for _ in 0..10 {
            let (s, cur) =
                self.send(reqwest::Method::GET, &format!("/resource_providers/{uuid}/inventories"), None).await?;
            if s != 200 {
                bail!("inventories of {uuid}: placement answered {s}: {cur}");
            }
            if &cur["inventories"] == inventories {
                return Ok(());
            }
            let body = json!({"resource_provider_generation": cur["resource_provider_generation"], "inventories": inventories});
            let (s, v) = self
                .send(reqwest::Method::PUT, &format!("/resource_providers/{uuid}/inventories"), Some(&body))
                .await?;
            match s {
                200 => return Ok(()),
                409 if v.to_string().contains("concurrent_update") => continue,
                _ => bail!("setting inventories of {uuid}: placement answered {s}: {v}"),
            }
        }
        bail!("inventories of {uuid}: too many concurrent updates")
    }

    /// Set the provider's traits (retrying generation conflicts).
    pub async fn set_traits(&self, uuid: &str, traits: &[String]) -> anyhow::Result<()> {
        for _ in 0..10 {
            let (s, cur) = self.send(reqwest::Method::GET, &format!("/resource_providers/{uuid}/traits"), None).await?;
            if s != 200 {
                bail!("traits of {uuid}: placement answered {s}: {cur}");
            }
            let mut have: Vec<String> = cur["traits"]
                .as_array()
                .map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            let mut want = traits.to_vec();
            have.sort();
            want.sort();
            if have == want {
                return Ok(());
            }
            let body = json!({"resource_provider_generation": cur["resource_provider_generation"], "traits": want});
            let (s, v) =
                self.send(reqwest::Method::PUT, &format!("/resource_providers/{uuid}/traits"), Some(&body)).await?;
            match s {
                200 => return Ok(()),
                409 if v.to_string().contains("concurrent_update") => continue,
                _ => bail!("setting traits of {uuid}: placement answered {s}: {v}"),
            }
        }
        bail!("traits of {uuid}: too many concurrent updates")
    }

    /// Set the provider's aggregates (the uuids of the host aggregates it is in).
    pub async fn set_aggregates(&self, uuid: &str, aggregates: &[String]) -> anyhow::Result<()> {
        for _ in 0..10 {
            let (s, cur) =
                self.send(reqwest::Method::GET, &format!("/resource_providers/{uuid}/aggregates"), None).await?;
            if s == 404 {
                return Ok(()); // the host has not registered yet; it reports its aggregates when it does
            }
            if s != 200 {
                bail!("aggregates of {uuid}: placement answered {s}: {cur}");
            }
            let body =
                json!({"resource_provider_generation": cur["resource_provider_generation"], "aggregates": aggregates});
            let (s, v) =
                self.send(reqwest::Method::PUT, &format!("/resource_providers/{uuid}/aggregates"), Some(&body)).await?;
            match s {
                200 => return Ok(()),
                409 if v.to_string().contains("concurrent_update") => continue,
                _ => bail!("setting aggregates of {uuid}: placement answered {s}: {v}"),
            }
        }
        bail!("aggregates of {uuid}: too many concurrent updates")
    }
}

/// Percent-encode a query component.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b',' | b'!' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
