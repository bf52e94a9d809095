//! The console proxies: websocket servers on the compute API's host (Nova's
//! `nova-novncproxy` and `nova-serialproxy`). A client upgrades to a
//! websocket with its token (`?token=`, inside `?path=` as noVNC sends it,
//! or a `token` cookie); the proxy consumes the token, connects to the
//! guest's console the authorization names, and pipes binary frames both
//! ways. A bad or used token gets the upgrade and then an empty close, as
//! Nova's proxy answers. The noVNC proxy also serves noVNC's files when they
//! are installed (Debian's `novnc` package), and says so when they are not.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use stratus_core::Config;
use stratus_db::Db;
use stratus_virt::{ConsoleEndpoint, ConsoleKind};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::store;

/// One proxy: the console kind it leads to, and noVNC's files for the noVNC proxy.
pub struct Proxy {
    pub db: Db,
    pub kind: ConsoleKind,
    pub static_dir: Option<PathBuf>,
}

/// The routes of a proxy: every path (clients connect at `/`, `/websockify`, ...).
pub fn router(proxy: Proxy) -> Router {
    Router::new().fallback(handle).with_state(Arc::new(proxy))
}

/// The noVNC proxy and the serial proxy of the configuration (those with a
/// listen address), served until `shutdown`. A proxy that cannot listen is
/// reported and left out: consoles are not worth the whole cloud.
/// `shutdown` makes the future that ends a proxy (one per proxy).
pub async fn serve_all<F>(db: Db, cfg: &Config, shutdown: impl Fn() -> F) -> anyhow::Result<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let c = &cfg.compute;
    let mut tasks = Vec::new();
    for (kind, listen, what) in
        [(ConsoleKind::Vnc, &c.novncproxy_listen, "noVNC"), (ConsoleKind::Serial, &c.serialproxy_listen, "serial")]
    {
        if listen.is_empty() {
            continue;
        }
        let addr: SocketAddr =
            listen.parse().map_err(|e| anyhow::anyhow!("{what} console proxy listen {listen:?}: {e}"))?;
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(%addr, error = %e, "the {what} console proxy cannot listen: its consoles will not connect");
                continue;
            }
        };
        let static_dir = (kind == ConsoleKind::Vnc).then(|| cfg.novnc_dir().unwrap_or_default());
        if let Some(dir) = &static_dir {
            if dir.join("vnc_lite.html").exists() || dir.join("vnc_auto.html").exists() {
                tracing::info!(%addr, dir = %dir.display(), "noVNC console proxy listening, serving noVNC");
            } else {
                tracing::info!(%addr, "noVNC console proxy listening; noVNC's files are not there (scripts/install unpacks them)");
            }
        } else {
            tracing::info!(%addr, "serial console proxy listening");
        }
        let app = router(Proxy { db: db.clone(), kind, static_dir });
        let shutdown = shutdown();
        tasks.push(tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(shutdown).await }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// The token of a request, where Nova's proxy looks: the `token` query
/// parameter, a `token` inside the `path` parameter, a `token` cookie.
pub fn token_of(query: Option<&str>, headers: &HeaderMap) -> Option<String> {
    let params = |q: &str| -> Vec<(String, String)> {
        q.split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .map(|(k, v)| (percent_decode(k), percent_decode(v)))
            .collect()
    };
    if let Some(q) = query {
        let ps = params(q);
        if let Some((_, t)) = ps.iter().find(|(k, v)| k == "token" && !v.is_empty()) {
            return Some(t.clone());
        }
        if let Some((_, p)) = ps.iter().find(|(k, _)| k == "path") {
            let inner = p.split_once('?').map(|(_, q)| q).unwrap_or(p);
            if let Some((_, t)) = params(inner).into_iter().find(|(k, v)| k == "token" && !v.is_empty()) {
                return Some(t);
            }
        }
    }
    for cookie in headers.get_all(header::COOKIE) {
        let Ok(c) = cookie.to_str() else { continue };
        for part in c.split(';') {
            if let Some((k, v)) = part.trim().split_once('=')
                && k == "token"
                && !v.is_empty()
            {
                return Some(percent_decode(v));
            }
        }
    }
    None
}

fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push(h << 4 | l);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A browser's websocket from another site is refused (cross-site
/// websocket hijacking): its `Origin` must name the host it connects to.
fn origin_ok(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else { return true };
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
    let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or(origin);
    let hostname = |h: &str| h.rsplit_once(':').map(|(n, _)| n.to_string()).unwrap_or_else(|| h.to_string());
    hostname(origin_host.trim_end_matches('/')) == hostname(host)
}

async fn handle(
    State(proxy): State<Arc<Proxy>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(_) => return static_file(&proxy, uri.path()).await,
    };
    let token = token_of(uri.query(), &headers);
    let origin_ok = origin_ok(&headers);
    ws.protocols(["binary"]).on_upgrade(move |socket| async move {
        session(proxy, token.filter(|_| origin_ok), socket).await;
    })
}

/// One console connection: consume the token, connect, pipe.
async fn session(proxy: Arc<Proxy>, token: Option<String>, mut socket: WebSocket) {
    let auth = match token {
        Some(t) => store::consume(&proxy.db, &t).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "console token check failed");
            None
        }),
        None => None,
    };
    let wanted = if proxy.kind == ConsoleKind::Vnc { "novnc" } else { "serial" };
    let Some(auth) = auth.filter(|a| a.console_type == wanted) else {
        tracing::info!(kind = proxy.kind.as_str(), "console connection refused: invalid token");
        let _ = socket.send(Message::Close(None)).await;
        return;
    };
    let endpoint = store::endpoint(&auth);
    tracing::info!(instance = %auth.instance_uuid, kind = proxy.kind.as_str(), ?endpoint, "console connection");
    let piped = match &endpoint {
        ConsoleEndpoint::Tcp { host, port } => match tokio::net::TcpStream::connect((host.as_str(), *port)).await {
            Ok(s) => pipe(socket, s).await,
            Err(e) => Err(e),
        },
        ConsoleEndpoint::Unix { path } => match tokio::net::UnixStream::connect(path).await {
            Ok(s) => pipe(socket, s).await,
            Err(e) => Err(e),
        },
    };
    if let Err(e) = piped {
        tracing::info!(instance = %auth.instance_uuid, error = %e, "console connection ended");
    }
}

/// Websocket frames to the console and the console's bytes back as binary
/// frames, until either side closes.
async fn pipe(socket: WebSocket, console: impl AsyncRead + AsyncWrite + Unpin) -> std::io::Result<()> {
    let (mut rd, mut wr) = tokio::io::split(console);
    let (mut tx, mut rx) = socket.split();
    let up = async {
        while let Some(Ok(m)) = rx.next().await {
            match m {
                Message::Binary(b) => wr.write_all(&b).await?,
                Message::Text(t) => wr.write_all(t.as_str().as_bytes()).await?,
                Message::Close(_) => break,
                _ => {}
            }
        }
        std::io::Result::Ok(())
    };
    let down = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = rd.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            if tx.send(Message::Binary(Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
                break;
            }
        }
        let _ = tx.send(Message::Close(None)).await;
        std::io::Result::Ok(())
    };
    tokio::select! {
        r = up => r,
        r = down => r,
    }
}

/// A file of noVNC (the noVNC proxy with noVNC installed); else a word on what this is.
async fn static_file(proxy: &Proxy, path: &str) -> Response {
    let Some(dir) = &proxy.static_dir else {
        return (
            StatusCode::BAD_REQUEST,
            "This is the serial console proxy of Stratus: connect a websocket with ?token=<token> \
             (the URL of `openstack console url show --serial`).\n",
        )
            .into_response();
    };
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "vnc_lite.html" } else { rel };
    if rel.split('/').any(|seg| seg.is_empty() || seg == "." || seg == ".." || seg.contains('\\')) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut file = dir.join(rel);
    // vnc_auto.html (Nova's default URL) is vnc_lite.html since noVNC 1.0
    if rel == "vnc_auto.html" && !file.exists() {
        file = dir.join("vnc_lite.html");
    }
    match tokio::fs::read(&file).await {
        Ok(data) => ([(header::CONTENT_TYPE, content_type(&file))], data).into_response(),
        Err(_) if !dir.exists() => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!(
                "noVNC is not installed on this host ({} is missing; Debian: apt-get install novnc).\n\
                 The console proxy itself works: a VNC client speaking websockets connects here with ?token=<token>.\n",
                dir.display()
            ),
        )
            .into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "ogg" | "oga" => "audio/ogg",
        "mp3" => "audio/mpeg",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_found_where_nova_looks() {
        let h = HeaderMap::new();
        assert_eq!(token_of(Some("token=abc"), &h).as_deref(), Some("abc"));
        assert_eq!(token_of(Some("path=%3Ftoken%3Dabc"), &h).as_deref(), Some("abc"));
        assert_eq!(token_of(Some("path=websockify%3Ftoken%3Dxyz&x=1"), &h).as_deref(), Some("xyz"));
        assert_eq!(token_of(None, &h), None);
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=b; token=cookie1".parse().unwrap());
        assert_eq!(token_of(None, &h).as_deref(), Some("cookie1"));
        assert_eq!(token_of(Some("token=q"), &h).as_deref(), Some("q"));
    }

    #[test]
    fn cross_site_origins_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "cloud:6080".parse().unwrap());
        assert!(origin_ok(&h));
        h.insert(header::ORIGIN, "http://cloud:6080".parse().unwrap());
        assert!(origin_ok(&h));
        h.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(!origin_ok(&h));
    }
}
