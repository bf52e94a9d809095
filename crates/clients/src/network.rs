//! The network service (Neutron v2.0) as compute uses it, with the service
//! token: find networks, create, bind, update and delete the ports of servers.

use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

pub struct NetworkClient {
    /// `http://host:9696`
    base: String,
    http: reqwest::Client,
}

/// What the network service said when it did not do what was asked.
#[derive(Debug)]
pub enum NetworkError {
    /// It answered with this status, Neutron error type and message.
    Refused { status: u16, kind: String, message: String },
    /// It could not be reached, or its answer could not be read.
    Failed(anyhow::Error),
}

impl NetworkError {
    pub fn status(&self) -> Option<u16> {
        match self {
            NetworkError::Refused { status, .. } => Some(*status),
            NetworkError::Failed(_) => None,
        }
    }
}

impl std::fmt::Display for NetworkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetworkError::Refused { status, kind, message } => {
                write!(f, "network service answered {status} {kind}: {message}")
            }
            NetworkError::Failed(e) => write!(f, "{e:#}"),
        }
    }
}

impl std::error::Error for NetworkError {}

impl From<reqwest::Error> for NetworkError {
    fn from(e: reqwest::Error) -> Self {
        NetworkError::Failed(anyhow::Error::new(e).context("network service unreachable"))
    }
}

async fn refused(r: reqwest::Response) -> NetworkError {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let e = &v["NeutronError"];
    NetworkError::Refused {
        status,
        kind: e["type"].as_str().unwrap_or_default().to_string(),
        message: e["message"].as_str().map(str::to_string).unwrap_or_else(|| text.trim().to_string()),
    }
}

pub type Result<T> = std::result::Result<T, NetworkError>;

impl NetworkClient {
    pub fn new(base_url: &str) -> anyhow::Result<NetworkClient> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().context("http client")?;
        Ok(NetworkClient { base: base_url.trim_end_matches('/').to_string(), http })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v2.0{path}", self.base)
    }

    fn url_with(&self, path: &str, query: &[(&str, &str)]) -> Result<reqwest::Url> {
        reqwest::Url::parse_with_params(&self.url(path), query)
            .map_err(|e| NetworkError::Failed(anyhow::Error::new(e).context("bad network URL")))
    }

    async fn send(&self, rb: reqwest::RequestBuilder, token: &str) -> Result<Value> {
        let r = rb.header("x-auth-token", token).send().await?;
        if !r.status().is_success() {
            return Err(refused(r).await);
        }
        if r.status().as_u16() == 204 {
            return Ok(Value::Null);
        }
        r.json().await.map_err(|e| NetworkError::Failed(anyhow::Error::new(e).context("bad network answer")))
    }

    /// One network, or None when it does not exist (or the token may not see it).
    pub async fn network(&self, token: &str, id: &str) -> Result<Option<Value>> {
        match self.send(self.http.get(self.url(&format!("/networks/{id}"))), token).await {
            Ok(v) => Ok(Some(v["network"].clone())),
            Err(NetworkError::Refused { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Networks matching `query` (Neutron filters, e.g. `("project_id", p)`).
    pub async fn networks(&self, token: &str, query: &[(&str, &str)]) -> Result<Vec<Value>> {
        let v = self.send(self.http.get(self.url_with("/networks", query)?), token).await?;
        Ok(v["networks"].as_array().cloned().unwrap_or_default())
    }

    /// Ports matching `query` (e.g. `("device_id", server)`).
    pub async fn ports(&self, token: &str, query: &[(&str, &str)]) -> Result<Vec<Value>> {
        let v = self.send(self.http.get(self.url_with("/ports", query)?), token).await?;
        Ok(v["ports"].as_array().cloned().unwrap_or_default())
    }

    pub async fn port(&self, token: &str, id: &str) -> Result<Option<Value>> {
        match self.send(self.http.get(self.url(&format!("/ports/{id}"))), token).await {
            Ok(v) => Ok(Some(v["port"].clone())),
            Err(NetworkError::Refused { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Subnets matching `query` (e.g. `("id", a)`, `("id", b)`).
    pub async fn subnets(&self, token: &str, query: &[(&str, &str)]) -> Result<Vec<Value>> {
        let v = self.send(self.http.get(self.url_with("/subnets", query)?), token).await?;
        Ok(v["subnets"].as_array().cloned().unwrap_or_default())
    }

    /// Any collection (`security-groups`, ...) matching `query`.
    pub async fn list(&self, token: &str, collection: &str, query: &[(&str, &str)]) -> Result<Vec<Value>> {
        let v = self.send(self.http.get(self.url_with(&format!("/{collection}"), query)?), token).await?;
        let key = collection.replace('-', "_");
        Ok(v[key.as_str()].as_array().cloned().unwrap_or_default())
    }

    /// Create a port from Neutron attributes (`network_id`, `fixed_ips`, ...).
    pub async fn create_port(&self, token: &str, port: Value) -> Result<Value> {
        let v = self.send(self.http.post(self.url("/ports")).json(&json!({"port": port})), token).await?;
        Ok(v["port"].clone())
    }

    pub async fn update_port(&self, token: &str, id: &str, port: Value) -> Result<Value> {
        let v = self.send(self.http.put(self.url(&format!("/ports/{id}"))).json(&json!({"port": port})), token).await?;
        Ok(v["port"].clone())
    }

    /// Update a port only while it is at `revision` (`If-Match`; the network
    /// service answers 412 once another change came first).
    pub async fn update_port_at(&self, token: &str, id: &str, port: Value, revision: i64) -> Result<Value> {
        let rb = self
            .http
            .put(self.url(&format!("/ports/{id}")))
            .header("if-match", format!("revision_number={revision}"))
            .json(&json!({"port": port}));
        let v = self.send(rb, token).await?;
        Ok(v["port"].clone())
    }

    /// GET any path under `/v2.0` (e.g. `/floatingips/{id}`): the whole answer.
    pub async fn get(&self, token: &str, path: &str) -> Result<Value> {
        self.send(self.http.get(self.url(path)), token).await
    }

    /// POST a body to any path under `/v2.0`: the whole answer.
    pub async fn post(&self, token: &str, path: &str, body: Value) -> Result<Value> {
        self.send(self.http.post(self.url(path)).json(&body), token).await
    }

    /// PUT a body to any path under `/v2.0`: the whole answer.
    pub async fn put(&self, token: &str, path: &str, body: Value) -> Result<Value> {
        self.send(self.http.put(self.url(path)).json(&body), token).await
    }

    /// DELETE any path under `/v2.0`.
    pub async fn delete(&self, token: &str, path: &str) -> Result<()> {
        self.send(self.http.delete(self.url(path)), token).await.map(|_| ())
    }

    /// Delete a port; false when it was already gone.
    pub async fn delete_port(&self, token: &str, id: &str) -> Result<bool> {
        match self.send(self.http.delete(self.url(&format!("/ports/{id}"))), token).await {
            Ok(_) => Ok(true),
            Err(NetworkError::Refused { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The network of `project`'s auto-allocated topology (auto-allocated-topology),
    /// made on the first call: what Nova's `networks: auto` boots on when the
    /// project has no network of its own.
    pub async fn auto_allocated_network(&self, token: &str, project: &str) -> Result<String> {
        let v = self.send(self.http.get(self.url(&format!("/auto-allocated-topology/{project}"))), token).await?;
        v["auto_allocated_topology"]["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| NetworkError::Failed(anyhow::anyhow!("auto-allocated topology without a network: {v}")))
    }
}
