//! Remote consoles end to end on every database: the API (remote-consoles
//! at 2.6+, the legacy actions up to 2.5, os-console-auth-tokens at 2.31+,
//! Nova's codes), and websocket clients through the noVNC and serial proxies
//! to the fake driver's consoles (bytes both ways; tokens one-time, bound to
//! their console kind, expiring).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{Value, json};
use stratus_compute::console::proxy::{self, Proxy};
use stratus_testkit::{Cloud, fresh_urls};
use stratus_virt::ConsoleKind;
use tokio_tungstenite::tungstenite::Message;

const MV: &str = "2.96";

struct Consoles {
    cloud: Cloud,
    novnc: std::net::SocketAddr,
    serial: std::net::SocketAddr,
    _novnc_files: tempfile::TempDir,
}

/// A compute cloud with both console proxies on ephemeral ports; noVNC's
/// files are a stand-in page.
async fn start(backend: &'static str, url: &str, ttl: u64) -> Consoles {
    let nl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (novnc, serial) = (nl.local_addr().unwrap(), sl.local_addr().unwrap());
    let files = tempfile::tempdir().unwrap();
    std::fs::write(files.path().join("vnc_lite.html"), "<html><script>noVNC</script></html>").unwrap();
    let dir = files.path().to_string_lossy().into_owned();
    let cloud = Cloud::start_compute(backend, url, &["host-a"], |cfg| {
        cfg.compute.novncproxy_listen = novnc.to_string();
        cfg.compute.serialproxy_listen = serial.to_string();
        cfg.compute.novnc_dir = dir.clone();
        cfg.compute.console_token_ttl = ttl;
    })
    .await;
    let db = cloud.identity.db.clone();
    for (listener, kind, static_dir) in
        [(nl, ConsoleKind::Vnc, Some(files.path().to_path_buf())), (sl, ConsoleKind::Serial, None)]
    {
        let app = proxy::router(Proxy { db: db.clone(), kind, static_dir });
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    Consoles { cloud, novnc, serial, _novnc_files: files }
}

async fn server(c: &Cloud, tok: &str, image: &str) -> String {
    let body = json!({"server": {"name": "vm1", "imageRef": image, "flavorRef": "1", "networks": "none"}});
    let r = c.nova(Method::POST, "/servers", tok, MV, Some(body)).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    let s = c.wait_server(tok, &id, 30, |s| s["status"] == "ACTIVE" || s["status"] == "ERROR").await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    id
}

async fn remote(c: &Cloud, tok: &str, id: &str, mv: &str, body: Value) -> stratus_testkit::Resp {
    c.nova(Method::POST, &format!("/servers/{id}/remote-consoles"), tok, mv, Some(body)).await
}

fn token_of(url: &str) -> String {
    let t = url.rsplit_once("token%3D").or_else(|| url.rsplit_once("token=")).unwrap().1;
    t.to_string()
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A websocket to a proxy at `path_and_query`, with extra request headers.
async fn connect(addr: std::net::SocketAddr, path_and_query: &str, headers: &[(&str, &str)]) -> Ws {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{addr}{path_and_query}").into_client_request().unwrap();
    req.headers_mut().insert("sec-websocket-protocol", "binary".parse().unwrap());
    for (k, v) in headers {
        let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap();
        req.headers_mut().insert(name, v.parse().unwrap());
    }
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (ws, resp) = tokio_tungstenite::client_async(req, tcp).await.unwrap();
    assert_eq!(resp.status(), 101);
    assert_eq!(resp.headers()["sec-websocket-protocol"], "binary");
    ws
}

/// The next data frame's bytes; None when the proxy closes instead.
async fn next_data(ws: &mut Ws) -> Option<Vec<u8>> {
    loop {
        let m = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next()).await.expect("the proxy is silent");
        match m {
            Some(Ok(Message::Binary(b))) => return Some(b.to_vec()),
            Some(Ok(Message::Text(t))) => return Some(t.as_bytes().to_vec()),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// Everything the console sends until `want` bytes have come.
async fn read_n(ws: &mut Ws, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < want {
        got.extend(next_data(ws).await.expect("the proxy closed"));
    }
    got
}

#[tokio::test]
async fn remote_consoles_api_and_proxies_on_every_database() {
    for (backend, url) in fresh_urls().await {
        let Consoles { cloud, novnc, serial, _novnc_files: _files } = start(backend, &url, 600).await;
        let admin = cloud.admin_token().await;
        let image = cloud.boot_image(&admin).await;
        let (_, _, tok) = cloud.user_with_role(&admin, "member").await;
        let id = server(&cloud, &tok, &image).await;
        let vnc = json!({"remote_console": {"protocol": "vnc", "type": "novnc"}});

        // 2.6+: remote-consoles
        let r = remote(&cloud, &tok, &id, "2.6", vnc.clone()).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body["remote_console"]["protocol"], "vnc");
        assert_eq!(r.body["remote_console"]["type"], "novnc");
        let url = r.body["remote_console"]["url"].as_str().unwrap().to_string();
        assert!(url.starts_with(&format!("http://{novnc}/vnc_auto.html?path=%3Ftoken%3D")), "{url}");
        assert_eq!(r.body["remote_console"].as_object().unwrap().len(), 3);
        assert_eq!(remote(&cloud, &tok, &id, "2.5", vnc.clone()).await.status, 404);
        assert_eq!(remote(&cloud, &tok, "00000000-0000-0000-0000-000000000000", MV, vnc.clone()).await.status, 404);
        for (mv, body, want) in [
            ("2.6", json!({"remote_console": {"protocol": "telnet", "type": "novnc"}}), "is not one of"),
            ("2.6", json!({"remote_console": {"protocol": "vnc", "type": "x"}}), "is not one of"),
            ("2.6", json!({"remote_console": {"protocol": "vnc"}}), "'type' is a required property"),
            ("2.6", json!({"remote_console": {"protocol": "vnc", "type": "novnc", "x": 1}}), "Additional properties"),
            ("2.6", json!({"remote_console": {"protocol": "vnc", "type": "serial"}}), "Invalid console type serial"),
            ("2.6", json!({"remote_console": {"protocol": "vnc", "type": "xvpvnc"}}), "Invalid console type xvpvnc"),
            (
                "2.6",
                json!({"remote_console": {"protocol": "spice", "type": "spice-html5"}}),
                "Unavailable console type",
            ),
            (
                "2.6",
                json!({"remote_console": {"protocol": "rdp", "type": "rdp-html5"}}),
                "Unavailable console type rdp.",
            ),
            ("2.6", json!({"remote_console": {"protocol": "mks", "type": "webmks"}}), "is not one of"),
            (
                "2.8",
                json!({"remote_console": {"protocol": "mks", "type": "webmks"}}),
                "Unavailable console type webmks.",
            ),
            ("2.6", json!({"console": {}}), "'remote_console' is a required property"),
        ] {
            let r = remote(&cloud, &tok, &id, mv, body.clone()).await;
            assert_eq!(r.status, 400, "{backend}: {body} -> {}", r.text);
            assert!(r.text.contains(want), "{body}: {} lacks {want:?}", r.text);
        }

        // 2.1-2.5: the legacy actions
        let act = |mv: &'static str, body: Value| {
            let (cloud, tok, id) = (&cloud, &tok, &id);
            async move { cloud.nova(Method::POST, &format!("/servers/{id}/action"), tok, mv, Some(body)).await }
        };
        let r = act("2.1", json!({"os-getVNCConsole": {"type": "novnc"}})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["console"]["type"], "novnc");
        assert_eq!(r.body["console"].as_object().unwrap().len(), 2);
        let r = act("2.5", json!({"os-getSerialConsole": {"type": "serial"}})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let serial_url = r.body["console"]["url"].as_str().unwrap().to_string();
        assert!(serial_url.starts_with(&format!("ws://{serial}/?token=")), "{serial_url}");
        assert_eq!(act("2.6", json!({"os-getVNCConsole": {"type": "novnc"}})).await.status, 404);
        assert_eq!(act("2.1", json!({"os-getVNCConsole": {"type": "foo"}})).await.status, 400);
        assert_eq!(act("2.1", json!({"os-getVNCConsole": {}})).await.status, 400);
        let r = act("2.1", json!({"os-getSPICEConsole": {"type": "spice-html5"}})).await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert!(r.text.contains("Unavailable console type spice-html5."), "{}", r.text);
        assert_eq!(act("2.1", json!({"os-getRDPConsole": {"type": "rdp-html5"}})).await.status, 400);

        // os-console-auth-tokens: admins, 2.31+
        let token = token_of(&url);
        let show = |mv: &'static str, who: &str, t: &str| {
            let (cloud, who, t) = (&cloud, who.to_string(), t.to_string());
            async move { cloud.nova(Method::GET, &format!("/os-console-auth-tokens/{t}"), &who, mv, None).await }
        };
        assert_eq!(show("2.31", &tok, &token).await.status, 403);
        assert_eq!(show("2.30", &admin, &token).await.status, 400);
        assert_eq!(show("2.31", &admin, "nonsense").await.status, 404);
        let r = show("2.31", &admin, &token).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["console"]["instance_uuid"], id.as_str());
        assert_eq!(r.body["console"]["host"], "127.0.0.1");
        assert!(r.body["console"]["port"].as_i64().unwrap() > 0);
        assert!(r.body["console"]["internal_access_path"].is_null());

        // the noVNC proxy: the RFB greeting, then bytes both ways
        let mut ws = connect(novnc, &format!("/?token={token}"), &[]).await;
        assert_eq!(read_n(&mut ws, 12).await, b"RFB 003.008\n");
        ws.send(Message::Binary(b"RFB 003.008\n".to_vec().into())).await.unwrap();
        assert_eq!(read_n(&mut ws, 12).await, b"RFB 003.008\n", "echoed by the fake guest");
        // one-time: the token is gone, a second connection is closed at once
        assert_eq!(show("2.31", &admin, &token).await.status, 404);
        let mut again = connect(novnc, &format!("/?token={token}"), &[]).await;
        assert_eq!(next_data(&mut again).await, None);
        drop(ws);

        // the token inside noVNC's `path` parameter, and as a cookie
        let fresh = || async {
            let r = remote(&cloud, &tok, &id, MV, vnc.clone()).await;
            assert_eq!(r.status, 200, "{}", r.text);
            token_of(r.body["remote_console"]["url"].as_str().unwrap())
        };
        let t = fresh().await;
        let mut ws = connect(novnc, &format!("/websockify?path=%3Ftoken%3D{t}"), &[]).await;
        assert_eq!(read_n(&mut ws, 12).await, b"RFB 003.008\n");
        let t = fresh().await;
        let mut ws = connect(novnc, "/websockify", &[("cookie", &format!("token={t}"))]).await;
        assert_eq!(read_n(&mut ws, 12).await, b"RFB 003.008\n");
        // a wrong token, no token, another site's page: closed without a byte
        let t = fresh().await;
        let mut ws = connect(novnc, &format!("/?token=bad{t}"), &[]).await;
        assert_eq!(next_data(&mut ws).await, None);
        let mut ws = connect(novnc, "/", &[]).await;
        assert_eq!(next_data(&mut ws).await, None);
        let mut ws = connect(novnc, &format!("/?token={t}"), &[("origin", "http://evil.example")]).await;
        assert_eq!(next_data(&mut ws).await, None);

        // the serial proxy: an echo through the fake guest's serial port;
        // a novnc token is no good there
        let t = fresh().await;
        let mut ws = connect(serial, &format!("/?token={t}"), &[]).await;
        assert_eq!(next_data(&mut ws).await, None);
        let mut ws = connect(serial, &format!("/?token={}", token_of(&serial_url)), &[]).await;
        ws.send(Message::Binary(b"uname -a\n".to_vec().into())).await.unwrap();
        assert_eq!(read_n(&mut ws, 9).await, b"uname -a\n");
        let r =
            remote(&cloud, &tok, &id, MV, json!({"remote_console": {"protocol": "serial", "type": "serial"}})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["remote_console"]["protocol"], "serial");

        // noVNC's files at the noVNC proxy (vnc_auto.html is vnc_lite.html)
        let page = reqwest::get(format!("http://{novnc}/vnc_auto.html?path=%3Ftoken%3Dx")).await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("noVNC"));
        assert_eq!(reqwest::get(format!("http://{novnc}/../etc/passwd")).await.unwrap().status(), 404);

        // a server that does not run has no console: 409
        let r = act(MV, json!({"os-stop": null})).await;
        assert_eq!(r.status, 202, "{}", r.text);
        cloud.wait_server(&tok, &id, 30, |s| s["status"] == "SHUTOFF").await;
        let r = remote(&cloud, &tok, &id, MV, vnc.clone()).await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        assert!(r.text.contains("vm_state stopped"), "{}", r.text);

        // a deleted server's console URLs are forgotten
        let r = act("2.1", json!({"os-getSerialConsole": {"type": "serial"}})).await;
        assert_eq!(r.status, 409, "{}", r.text);
        let r = act(MV, json!({"os-start": null})).await;
        assert_eq!(r.status, 202, "{}", r.text);
        cloud.wait_server(&tok, &id, 30, |s| s["status"] == "ACTIVE").await;
        let t = fresh().await;
        assert_eq!(show("2.31", &admin, &t).await.status, 200);
        let r = cloud.nova(Method::DELETE, &format!("/servers/{id}"), &tok, MV, None).await;
        assert_eq!(r.status, 204, "{}", r.text);
        cloud.wait_server(&tok, &id, 30, |s| s.is_null()).await;
        assert_eq!(show("2.31", &admin, &t).await.status, 404);
    }
}

#[tokio::test]
async fn console_tokens_expire() {
    let (backend, url) = fresh_urls().await.into_iter().next().unwrap();
    let Consoles { cloud, novnc, .. } = start(backend, &url, 1).await;
    let admin = cloud.admin_token().await;
    let image = cloud.boot_image(&admin).await;
    let id = server(&cloud, &admin, &image).await;
    let r = remote(&cloud, &admin, &id, MV, json!({"remote_console": {"protocol": "vnc", "type": "novnc"}})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let token = token_of(r.body["remote_console"]["url"].as_str().unwrap());
    let show = cloud.nova(Method::GET, &format!("/os-console-auth-tokens/{token}"), &admin, MV, None).await;
    assert_eq!(show.status, 200, "{}", show.text);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let show = cloud.nova(Method::GET, &format!("/os-console-auth-tokens/{token}"), &admin, MV, None).await;
    assert_eq!(show.status, 404, "{}", show.text);
    let mut ws = connect(novnc, &format!("/?token={token}"), &[]).await;
    assert_eq!(next_data(&mut ws).await, None);
}
