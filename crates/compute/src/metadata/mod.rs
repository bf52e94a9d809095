//! The metadata API (Nova's metadata service, port 8775): what a guest asks
//! `http://169.254.169.254` for, forwarded by the metadata proxy of its
//! network's DHCP or router namespace (`stratus_netagent::metadata`).
//!
//! - `/` lists the EC2 versions; every other path needs the requester
//!   ([`requester`]): the proxy names the instance in `X-Instance-ID` and
//!   `X-Tenant-ID` and signs the id with the shared secret
//!   (`X-Instance-ID-Signature`, [`stratus_core::metadata_proxy`]).
//! - `/openstack/...` ([`openstack`]): `meta_data.json`, `user_data`,
//!   `network_data.json`, vendor data (the config drive's content,
//!   [`stratus_virt::metadata`]) and `password` ([`password`]).
//! - Anything else is the EC2 tree ([`ec2`]): `/latest/meta-data/...`,
//!   `/latest/user-data`, and the dated versions (`/2009-04-04/...`).
//!
//! Errors are plain text, as Nova's (webob's) are: guests look at the status.

pub mod ec2;
pub mod facts;
pub mod openstack;
pub mod password;
pub mod requester;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as S;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use crate::State;

/// What the metadata API needs: the compute API's state (database,
/// configuration, the network service for floating IPs and security groups)
/// and the secret the proxies sign with.
pub struct MetadataService {
    pub api: State,
    pub shared_secret: String,
}

pub const TEXT: &str = "text/plain; charset=UTF-8";
pub const JSON: &str = "application/json";

/// An error answer: a status and Nova's explanation, as plain text.
#[derive(Debug)]
pub struct MetadataError {
    pub status: StatusCode,
    pub explanation: String,
}

impl MetadataError {
    pub fn new(status: StatusCode, explanation: impl Into<String>) -> MetadataError {
        MetadataError { status, explanation: explanation.into() }
    }
    pub fn bad_request(explanation: impl Into<String>) -> MetadataError {
        Self::new(StatusCode::BAD_REQUEST, explanation)
    }
    pub fn not_found() -> MetadataError {
        Self::new(StatusCode::NOT_FOUND, "The resource could not be found.")
    }
    /// A failure of ours: logged with its cause, answered as Nova does.
    pub fn internal(cause: &dyn std::fmt::Display) -> MetadataError {
        tracing::error!(request_id = %stratus_core::http::current_request_id(), error = %cause, "metadata request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "An unknown error has occurred. Please try your request again.")
    }
}

impl From<crate::error::ComputeError> for MetadataError {
    fn from(e: crate::error::ComputeError) -> Self {
        MetadataError::internal(&e)
    }
}

impl IntoResponse for MetadataError {
    fn into_response(self) -> Response {
        let reason = self.status.canonical_reason().unwrap_or("");
        let body = format!("{} {reason}\n\n{}\n\n   ", self.status.as_u16(), self.explanation);
        (self.status, [(header::CONTENT_TYPE, HeaderValue::from_static(TEXT))], body).into_response()
    }
}

/// What a path leads to.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// A listing or a value, as text.
    Text(String),
    /// A JSON document.
    Json(Vec<u8>),
    /// Bytes as stored (user data), as text/plain like Nova.
    Data(Vec<u8>),
    /// The password handler (GET reads, POST sets once).
    Password,
}

impl Answer {
    fn into_response(self) -> Response {
        let (ct, body) = match self {
            Answer::Text(s) => (TEXT, s.into_bytes()),
            Answer::Json(b) => (JSON, b),
            Answer::Data(b) => (TEXT, b),
            Answer::Password => (TEXT, Vec::new()),
        };
        (StatusCode::OK, [(header::CONTENT_TYPE, HeaderValue::from_static(ct))], body).into_response()
    }
}

/// The metadata API with the shared HTTP layers (request ids, access log).
pub fn router(svc: Arc<MetadataService>) -> Router {
    let opts = svc.api.cfg.http_options();
    let routes = Router::new().route("/", any(handle)).route("/{*path}", any(handle)).with_state(svc);
    stratus_core::http::service("metadata", stratus_core::FaultStyle::Compute, routes, &opts)
}

/// Serve the metadata API on `compute.metadata_listen` until `shutdown`
/// (nothing when it is empty). One that cannot listen is reported and left
/// out: guests then go without metadata, the rest of the cloud works.
pub async fn serve(api: State, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let listen = api.cfg.compute.metadata_listen.clone();
    if listen.is_empty() {
        return Ok(());
    }
    let addr: SocketAddr = listen.parse().map_err(|e| anyhow::anyhow!("compute.metadata_listen {listen:?}: {e}"))?;
    let shared_secret = stratus_core::metadata_proxy::shared_secret(&api.cfg)?;
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(%addr, error = %e, "the metadata API cannot listen: guests will get no metadata");
            return Ok(());
        }
    };
    tracing::info!(%addr, "compute metadata API listening");
    let app = router(Arc::new(MetadataService { api, shared_secret }));
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

async fn handle(
    S(svc): S<Arc<MetadataService>>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    match answer(&svc, &method, &headers, uri.path(), &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn answer(
    svc: &MetadataService,
    method: &Method,
    headers: &HeaderMap,
    path: &str,
    body: &[u8],
) -> Result<Response, MetadataError> {
    let tokens = normalize(path);
    if tokens.is_empty() {
        // the versions, before anyone is identified (as Nova)
        return Ok(Answer::Text(ec2::versions_listing()).into_response());
    }
    let who = requester::identify(svc, headers).await?;
    let found = if tokens[0] == "openstack" {
        openstack::lookup(&who.instance, &svc.api.cfg, &tokens[1..])?
    } else {
        // `/ec2/...` and anything else are the EC2 tree
        let facts = facts::Ec2Facts::load(&svc.api, &who.instance, who.forwarded_for.as_deref()).await?;
        ec2::lookup(&who.instance, &svc.api.cfg, &facts, &tokens)?
    };
    if found == Answer::Password {
        return password::handle(&svc.api.db, &who.instance, method, body).await;
    }
    Ok(found.into_response())
}

/// The path's segments as Python's `posixpath.normpath` leaves them (what
/// Nova looks up): empty and `.` segments dropped, `..` taking one back,
/// a trailing slash ignored.
pub fn normalize(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s.to_string()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalize_as_nova_reads_them() {
        assert!(normalize("/").is_empty());
        assert!(normalize("").is_empty());
        assert_eq!(normalize("/latest/meta-data/"), ["latest", "meta-data"]);
        assert_eq!(normalize("//openstack/./latest//meta_data.json"), ["openstack", "latest", "meta_data.json"]);
        assert_eq!(normalize("/openstack/x/../latest"), ["openstack", "latest"]);
        assert!(normalize("/../..").is_empty());
    }

    #[test]
    fn errors_are_plain_text_with_the_status() {
        let r = MetadataError::not_found().into_response();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(r.headers()[header::CONTENT_TYPE], TEXT);
    }
}
