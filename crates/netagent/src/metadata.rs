//! The metadata proxy (Neutron's namespace metadata proxy and metadata agent
//! in one): it listens inside a DHCP (`qdhcp-<network>`) or router
//! (`qrouter-<router>`) namespace, where guests reach it as
//! `http://169.254.169.254`, finds the instance a request comes from by its
//! source address on the network (or the router's networks) it serves, and
//! forwards the request to the compute metadata API with the headers Nova
//! trusts: `X-Instance-ID`, `X-Tenant-ID`, `X-Instance-ID-Signature` (the
//! shared secret's HMAC of the instance id) and `X-Forwarded-For`. The
//! answer (status, content type, body) streams back as it comes.
//!
//! The listening socket is made by a short-lived thread that entered the
//! namespace (setns is per thread), and is then served on the runtime:
//! a socket stays in the namespace it was made in. The connections to the
//! metadata API are made from the runtime's threads, in the agent's own
//! namespace, where that API is reachable.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use stratus_core::metadata_proxy::{FORWARDED_FOR, INSTANCE_ID, INSTANCE_ID_SIGNATURE, TENANT_ID, sign};
use stratus_network::rpc::{PLUGIN, PortByAddress, PortOwner};
use tokio::task::JoinHandle;

/// Where `ip netns` keeps named namespaces.
const NETNS_DIR: &str = "/run/netns";

/// Largest request body forwarded (the password a guest posts is at most
/// 1020 bytes; nothing else has a body).
const MAX_BODY: usize = 64 * 1024;

/// How long the metadata API may take to answer one request.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(60);

/// What a proxy serves: the guests of one network (a DHCP namespace) or of
/// the networks a router has interfaces on (a router namespace).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Network(String),
    Router(String),
}

/// The instance behind a guest address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceRef {
    pub instance_id: String,
    pub project_id: String,
}

/// Finds the instance whose port has `ip` in `scope`. `Ok(None)`: no
/// instance has it (the request gets a 404); `Err`: the answer could not be
/// had (a 500, the guest tries again).
#[async_trait::async_trait]
pub trait InstanceLookup: Send + Sync + 'static {
    async fn instance_for(&self, scope: &Scope, ip: IpAddr) -> anyhow::Result<Option<InstanceRef>>;
}

/// Where and as whom a proxy forwards.
#[derive(Clone)]
pub struct Upstream {
    /// The compute metadata API: `http://127.0.0.1:8775` ([`stratus_core::Config::metadata_url`]).
    pub url: String,
    /// `compute.metadata_proxy_shared_secret` ([`stratus_core::metadata_proxy::shared_secret`]).
    pub shared_secret: String,
    /// The network or router this proxy serves.
    pub scope: Scope,
    /// How guest addresses become instances ([`BusLookup`] in the agent).
    pub lookup: Arc<dyn InstanceLookup>,
}

/// The real lookup: the network service's port with that fixed IP in the
/// scope ([`PortByAddress`] on the bus), when it belongs to a server
/// (`device_owner` `compute:*`, `device_id` the server's id).
pub struct BusLookup {
    pub bus: stratus_bus::Bus,
    pub timeout: Duration,
}

#[async_trait::async_trait]
impl InstanceLookup for BusLookup {
    async fn instance_for(&self, scope: &Scope, ip: IpAddr) -> anyhow::Result<Option<InstanceRef>> {
        let (network_ids, router_id) = match scope {
            Scope::Network(n) => (vec![n.clone()], None),
            Scope::Router(r) => (Vec::new(), Some(r.clone())),
        };
        let m = PortByAddress { network_ids, router_id, ip_address: ip.to_string() };
        let request_id = format!("req-{}", uuid::Uuid::new_v4());
        let owner: Option<PortOwner> =
            self.bus.call(PLUGIN, &m, &request_id, self.timeout).await.map_err(|e| anyhow!("network service: {e}"))?;
        Ok(owner
            .filter(|o| o.device_owner.starts_with("compute:") && !o.device_id.is_empty())
            .map(|o| InstanceRef { instance_id: o.device_id, project_id: o.project_id }))
    }
}

/// `/run/netns/<name>`.
pub fn netns_path(netns: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(netns)
}

/// A TCP listener bound to `listen` inside the named namespace, made on a
/// thread of its own that entered the namespace (the runtime's threads
/// never change namespace). The address must be one the namespace has
/// (169.254.169.254 on one of its interfaces, for the usual listen address).
pub async fn bind_in_namespace(netns: &str, listen: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    let path = netns_path(netns);
    let name = netns.to_string();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(format!("netns-bind-{name}"))
        .spawn(move || {
            let bound = (|| -> anyhow::Result<std::net::TcpListener> {
                let ns = std::fs::File::open(&path).with_context(|| format!("open {}", path.display()))?;
                rustix::thread::move_into_link_name_space(ns.as_fd(), Some(rustix::thread::LinkNameSpaceType::Network))
                    .with_context(|| format!("setns {}", path.display()))?;
                std::net::TcpListener::bind(listen).with_context(|| format!("listen on {listen} in namespace {name}"))
            })();
            let _ = tx.send(bound);
        })
        .context("starting the thread that enters the namespace")?;
    rx.await.map_err(|_| anyhow!("the thread entering namespace {netns} ended without an answer"))?
}

/// Serve the metadata proxy for `upstream.scope` on `listen` inside the
/// namespace `netns` (`/run/netns/<netns>`), until the handle is aborted
/// (which closes the socket).
pub async fn serve_in_namespace(netns: &str, listen: SocketAddr, upstream: Upstream) -> anyhow::Result<JoinHandle<()>> {
    let listener = bind_in_namespace(netns, listen).await?;
    tracing::info!(%netns, %listen, scope = ?upstream.scope, "metadata proxy listening");
    serve(listener, upstream)
}

/// Serve the metadata proxy on a listener already bound (in whatever
/// namespace it was made in).
pub fn serve(listener: std::net::TcpListener, upstream: Upstream) -> anyhow::Result<JoinHandle<()>> {
    listener.set_nonblocking(true).context("a non-blocking listener")?;
    let listener = tokio::net::TcpListener::from_std(listener).context("registering the listener")?;
    let client =
        reqwest::Client::builder().no_proxy().timeout(UPSTREAM_TIMEOUT).build().context("the metadata API client")?;
    let app = Router::new().fallback(proxy).with_state(Arc::new(Proxy { upstream, client }));
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await {
            tracing::warn!(error = %e, "metadata proxy stopped");
        }
    }))
}

struct Proxy {
    upstream: Upstream,
    client: reqwest::Client,
}

fn plain(status: StatusCode, explanation: &str) -> Response {
    let reason = status.canonical_reason().unwrap_or("");
    let body = format!("{} {reason}\n\n{explanation}\n\n   ", status.as_u16());
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=UTF-8"))], body).into_response()
}

fn unknown_error() -> Response {
    plain(StatusCode::INTERNAL_SERVER_ERROR, "An unknown error has occurred. Please try your request again.")
}

async fn proxy(State(p): State<Arc<Proxy>>, ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request) -> Response {
    let ip = peer.ip().to_canonical();
    let up = &p.upstream;
    let instance = match up.lookup.instance_for(&up.scope, ip).await {
        Ok(Some(i)) => i,
        Ok(None) => {
            tracing::info!(%ip, scope = ?up.scope, "metadata request from an address no instance has");
            return plain(StatusCode::NOT_FOUND, "The resource could not be found.");
        }
        Err(e) => {
            tracing::warn!(%ip, scope = ?up.scope, error = %format!("{e:#}"), "could not find the instance of a metadata request");
            return unknown_error();
        }
    };
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return plain(StatusCode::BAD_REQUEST, "Request is too large."),
    };
    let path = parts.uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
    let url = format!("{}{path}", up.url.trim_end_matches('/'));
    let mut rb = p
        .client
        .request(parts.method.clone(), url)
        .header(FORWARDED_FOR, ip.to_string())
        .header(INSTANCE_ID, &instance.instance_id)
        .header(TENANT_ID, &instance.project_id)
        .header(INSTANCE_ID_SIGNATURE, sign(&up.shared_secret, &instance.instance_id));
    if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
        rb = rb.header(header::CONTENT_TYPE, ct.clone());
    }
    if !body.is_empty() {
        rb = rb.body(body);
    }
    let resp = match rb.send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(%ip, instance_id = %instance.instance_id, error = %e, "the metadata API did not answer");
            return unknown_error();
        }
    };
    let status = resp.status();
    if status == StatusCode::FORBIDDEN {
        tracing::warn!(
            instance_id = %instance.instance_id,
            "the metadata API answered Forbidden: the shared secrets of the proxy and the API likely differ"
        );
    }
    let mut out = Response::builder().status(status);
    if let Some(ct) = resp.headers().get(header::CONTENT_TYPE) {
        out = out.header(header::CONTENT_TYPE, ct.clone());
    }
    out.body(Body::from_stream(resp.bytes_stream())).unwrap_or_else(|_| unknown_error())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Mutex;

    use axum::http::HeaderMap;

    use super::*;

    /// Knows 127.0.0.1 on network `n1` only.
    struct Loopback;

    #[async_trait::async_trait]
    impl InstanceLookup for Loopback {
        async fn instance_for(&self, scope: &Scope, ip: IpAddr) -> anyhow::Result<Option<InstanceRef>> {
            if *scope == Scope::Network("broken".into()) {
                anyhow::bail!("the network service is away");
            }
            let known = *scope == Scope::Network("n1".into()) && ip == IpAddr::from([127, 0, 0, 1]);
            Ok(known.then(|| InstanceRef { instance_id: "i-1".into(), project_id: "p-1".into() }))
        }
    }

    type Seen = Arc<Mutex<Vec<(String, HeaderMap, Vec<u8>)>>>;

    /// An upstream that records what it got and answers 200 (404 under `/missing`).
    async fn upstream() -> (String, Seen) {
        let seen: Seen = Arc::default();
        let s = seen.clone();
        let app = Router::new().fallback(move |req: Request| {
            let s = s.clone();
            async move {
                let (parts, body) = req.into_parts();
                let body = axum::body::to_bytes(body, 1 << 20).await.unwrap().to_vec();
                let path = parts.uri.path_and_query().unwrap().to_string();
                s.lock().unwrap().push((path.clone(), parts.headers, body));
                if path.starts_with("/missing") {
                    return (StatusCode::NOT_FOUND, "nothing here").into_response();
                }
                ([(header::CONTENT_TYPE, "application/json")], "{\"uuid\": \"i-1\"}").into_response()
            }
        });
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await });
        (url, seen)
    }

    async fn proxy_for(scope: &str, url: &str) -> (String, JoinHandle<()>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let up = Upstream {
            url: url.into(),
            shared_secret: "s3cret".into(),
            scope: Scope::Network(scope.into()),
            lookup: Arc::new(Loopback),
        };
        (format!("http://{addr}"), serve(l, up).unwrap())
    }

    #[tokio::test]
    async fn requests_go_upstream_signed_and_answers_come_back() {
        let (url, seen) = upstream().await;
        let (proxy, task) = proxy_for("n1", &url).await;
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let r = http.get(format!("{proxy}/openstack/latest/meta_data.json?x=1")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(r.text().await.unwrap(), "{\"uuid\": \"i-1\"}");
        let r = http.post(format!("{proxy}/openstack/latest/password")).body("pw").send().await.unwrap();
        assert_eq!(r.status(), 200);
        let r = http.get(format!("{proxy}/missing")).send().await.unwrap();
        assert_eq!((r.status().as_u16(), r.text().await.unwrap().as_str()), (404, "nothing here"));
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 3);
        let (path, h, _) = &seen[0];
        assert_eq!(path, "/openstack/latest/meta_data.json?x=1");
        assert_eq!(h["x-instance-id"], "i-1");
        assert_eq!(h["x-tenant-id"], "p-1");
        assert_eq!(h["x-forwarded-for"], "127.0.0.1");
        assert_eq!(h["x-instance-id-signature"], sign("s3cret", "i-1").as_str());
        assert!(stratus_core::metadata_proxy::verify("s3cret", "i-1", h["x-instance-id-signature"].to_str().unwrap()));
        assert_eq!(seen[1].2, b"pw");
        task.abort();
    }

    #[tokio::test]
    async fn unknown_addresses_and_failed_lookups_stay_here() {
        let (url, seen) = upstream().await;
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let (other, t1) = proxy_for("n2", &url).await;
        let r = http.get(format!("{other}/latest/meta-data/")).send().await.unwrap();
        assert_eq!(r.status(), 404);
        let (broken, t2) = proxy_for("broken", &url).await;
        let r = http.get(format!("{broken}/latest/meta-data/")).send().await.unwrap();
        assert_eq!(r.status(), 500);
        assert!(seen.lock().unwrap().is_empty());
        // an upstream that is not there: 500, as Neutron's agent answers
        let (gone, t3) = proxy_for("n1", "http://127.0.0.1:9").await;
        let r = http.get(format!("{gone}/latest/meta-data/")).send().await.unwrap();
        assert_eq!(r.status(), 500);
        for t in [t1, t2, t3] {
            t.abort();
        }
    }
}
