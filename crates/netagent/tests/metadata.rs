//! The metadata proxy in a real network namespace: a namespace standing in
//! for a DHCP namespace (169.254.169.254 on its end of a veth, addresses in
//! 198.18.0.0/15), a second one standing in for the guest (a route to
//! 169.254.169.254 through the first), the proxy listening inside the first
//! on 169.254.169.254:80, a fake metadata API on 127.0.0.1 of the host that
//! records what reaches it, and a fake lookup that knows one guest address.
//!
//! Needs root, `ip` and `ss`. Without them this test fails, unless
//! STRATUS_SKIP_KERNEL_TESTS=1 (then it says loudly that it skipped). Names
//! carry the process id; a guard removes both namespaces (and with them the
//! veth pair) however the test ends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use stratus_netagent::metadata::{InstanceLookup, InstanceRef, Scope, Upstream, serve_in_namespace};

const SECRET: &str = "proxy-test-secret";
const INSTANCE: &str = "7c3e1f0a-5b2d-4e8f-9a61-0d2c4b6e8f10";
const PROJECT: &str = "0123456789abcdef0123456789abcdef";
const NETWORK: &str = "4f1c2d3e-aaaa-bbbb-cccc-000000000001";

fn run(args: &[&str]) -> std::process::Output {
    Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("running {args:?}: {e}"))
}

fn must(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// False (after a loud message) when the test may skip; panics when it may not.
fn kernel_tests_possible() -> bool {
    let root = rustix::process::geteuid().is_root();
    let have =
        |p: &str| ["/usr/sbin", "/sbin", "/usr/bin", "/bin"].iter().any(|d| std::path::Path::new(d).join(p).is_file());
    let missing: Vec<&str> = ["ip", "ss"].into_iter().filter(|p| !have(p)).collect();
    if root && missing.is_empty() {
        return true;
    }
    let why = format!("root: {root}, missing programs: {missing:?}");
    if std::env::var("STRATUS_SKIP_KERNEL_TESTS").as_deref() == Ok("1") {
        eprintln!("!!!!!!!! SKIPPED metadata proxy kernel test ({why}); STRATUS_SKIP_KERNEL_TESTS=1 !!!!!!!!");
        return false;
    }
    panic!("the metadata proxy kernel test needs root, ip and ss ({why}); set STRATUS_SKIP_KERNEL_TESTS=1 to skip");
}

/// Two namespaces joined by a veth pair; both removed when dropped.
struct Lab {
    /// Where the proxy listens (a DHCP namespace's stand-in).
    proxy_ns: String,
    /// The guest's.
    guest_ns: String,
    /// 198.18.<a>.<b>: the /24 of this lab.
    net: String,
}

impl Lab {
    fn new() -> Lab {
        let pid = std::process::id();
        let idx = pid % 512;
        let lab = Lab {
            proxy_ns: format!("mdp-{pid}"),
            guest_ns: format!("mdg-{pid}"),
            net: format!("198.{}.{}", 18 + idx / 256, idx % 256),
        };
        // leftovers of an earlier run with the same pid
        let _ = run(&["ip", "netns", "del", &lab.proxy_ns]);
        let _ = run(&["ip", "netns", "del", &lab.guest_ns]);
        must(&["ip", "netns", "add", &lab.proxy_ns]);
        must(&["ip", "netns", "add", &lab.guest_ns]);
        let (p, g) = (lab.proxy_ns.as_str(), lab.guest_ns.as_str());
        must(&["ip", "-n", p, "link", "add", "md-p", "type", "veth", "peer", "name", "md-g", "netns", g]);
        for ns in [p, g] {
            must(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        must(&["ip", "-n", p, "addr", "add", &format!("{}.1/24", lab.net), "dev", "md-p"]);
        // as Neutron's DHCP agent: the metadata address on the namespace's port
        must(&["ip", "-n", p, "addr", "add", "169.254.169.254/32", "dev", "md-p"]);
        must(&["ip", "-n", p, "link", "set", "md-p", "up"]);
        // the guest: a known address (.2) and one no instance has (.3)
        must(&["ip", "-n", g, "addr", "add", &format!("{}.2/24", lab.net), "dev", "md-g"]);
        must(&["ip", "-n", g, "addr", "add", &format!("{}.3/24", lab.net), "dev", "md-g"]);
        must(&["ip", "-n", g, "link", "set", "md-g", "up"]);
        must(&["ip", "-n", g, "route", "add", "169.254.169.254/32", "via", &format!("{}.1", lab.net), "dev", "md-g"]);
        lab
    }

    fn guest_ip(&self, host: u8) -> IpAddr {
        format!("{}.{host}", self.net).parse().unwrap()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.guest_ns]);
        let _ = run(&["ip", "netns", "del", &self.proxy_ns]);
    }
}

/// Knows one guest address on one network; counts its questions.
struct OneGuest {
    ip: IpAddr,
    asked: Mutex<Vec<(Scope, IpAddr)>>,
}

#[async_trait::async_trait]
impl InstanceLookup for OneGuest {
    async fn instance_for(&self, scope: &Scope, ip: IpAddr) -> anyhow::Result<Option<InstanceRef>> {
        self.asked.lock().unwrap().push((scope.clone(), ip));
        let known = ip == self.ip && *scope == Scope::Network(NETWORK.into());
        Ok(known.then(|| InstanceRef { instance_id: INSTANCE.into(), project_id: PROJECT.into() }))
    }
}

type Seen = Arc<Mutex<Vec<(String, HeaderMap, Vec<u8>)>>>;

/// A stand-in metadata API on the host's loopback that records each request.
async fn fake_metadata_api() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let app = Router::new().fallback(move |req: Request| {
        let s = s.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20).await.unwrap().to_vec();
            s.lock().unwrap().push((parts.uri.to_string(), parts.headers, body));
            ([("content-type", "application/json")], "{\"uuid\": \"from-upstream\"}").into_response()
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, seen)
}

/// An HTTP request made from inside `ns` (a thread that entered it, with a
/// runtime of its own, so the client's sockets are the guest's), from
/// source address `from`.
fn request_from(ns: &str, from: IpAddr, method: &str, url: &str, body: &str) -> (u16, String) {
    let path = format!("/run/netns/{ns}");
    let (method, url, body) = (method.parse::<reqwest::Method>().unwrap(), url.to_string(), body.to_string());
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).unwrap();
        rustix::thread::move_into_link_name_space(f.as_fd(), Some(rustix::thread::LinkNameSpaceType::Network)).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let http = reqwest::Client::builder()
                .no_proxy()
                .local_address(from)
                .timeout(std::time::Duration::from_secs(20))
                .build()
                .unwrap();
            let r = http.request(method, url).body(body).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    })
    .join()
    .unwrap()
}

fn valid_signature(id: &str, signature: &str) -> bool {
    let mut m = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    m.update(id.as_bytes());
    let want: String = m.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    want == signature
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_reach_the_metadata_api_through_the_namespace_proxy() {
    if !kernel_tests_possible() {
        return;
    }
    let lab = Lab::new();
    let guest = lab.guest_ip(2);
    let stranger = lab.guest_ip(3);

    // the guest's way to 169.254.169.254 is the veth, through the proxy's namespace
    for from in [guest, stranger] {
        let route = must(&["ip", "-n", &lab.guest_ns, "route", "get", "169.254.169.254", "from", &from.to_string()]);
        assert!(route.contains("dev md-g"), "{route}");
        assert!(route.contains(&format!("via {}.1", lab.net)), "{route}");
    }
    let route = must(&["ip", "-n", &lab.proxy_ns, "route", "get", "169.254.169.254"]);
    assert!(route.starts_with("local 169.254.169.254"), "{route}");

    let (api, seen) = fake_metadata_api().await;
    let lookup = Arc::new(OneGuest { ip: guest, asked: Mutex::default() });
    let upstream = Upstream {
        url: api,
        shared_secret: SECRET.into(),
        scope: Scope::Network(NETWORK.into()),
        lookup: lookup.clone(),
    };
    let listen: SocketAddr = "169.254.169.254:80".parse().unwrap();
    let proxy = serve_in_namespace(&lab.proxy_ns, listen, upstream).await.unwrap();
    // the socket is in the proxy's namespace, not the host's
    let listening = must(&["ip", "netns", "exec", &lab.proxy_ns, "ss", "-ltnH"]);
    assert!(listening.contains("169.254.169.254:80"), "{listening}");
    assert!(!must(&["ss", "-ltnH"]).contains("169.254.169.254:80"));

    let (ns, url) = (lab.guest_ns.clone(), "http://169.254.169.254/openstack/latest/meta_data.json?x=1");
    let (status, body) = tokio::task::spawn_blocking(move || request_from(&ns, guest, "GET", url, "")).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "{\"uuid\": \"from-upstream\"}");
    let ns = lab.guest_ns.clone();
    let (status, body) = tokio::task::spawn_blocking(move || {
        request_from(&ns, guest, "POST", "http://169.254.169.254/openstack/2013-04-04/password", "encrypted")
    })
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "{:?}", seen.iter().map(|s| &s.0).collect::<Vec<_>>());
        let (uri, h, _) = &seen[0];
        assert_eq!(uri, "/openstack/latest/meta_data.json?x=1");
        assert_eq!(h["x-instance-id"], INSTANCE);
        assert_eq!(h["x-tenant-id"], PROJECT);
        assert_eq!(h["x-forwarded-for"], guest.to_string().as_str());
        assert!(valid_signature(INSTANCE, h["x-instance-id-signature"].to_str().unwrap()), "{h:?}");
        let (uri, h, body) = &seen[1];
        assert_eq!(uri, "/openstack/2013-04-04/password");
        assert_eq!(body, b"encrypted");
        assert!(valid_signature(INSTANCE, h["x-instance-id-signature"].to_str().unwrap()), "{h:?}");
    }
    assert_eq!(
        lookup.asked.lock().unwrap()[0],
        (Scope::Network(NETWORK.into()), guest),
        "the lookup gets the guest's own address"
    );

    // an address no instance has: 404, and nothing reaches the metadata API
    let ns = lab.guest_ns.clone();
    let (status, body) = tokio::task::spawn_blocking(move || {
        request_from(&ns, stranger, "GET", "http://169.254.169.254/latest/meta-data/instance-id", "")
    })
    .await
    .unwrap();
    assert_eq!(status, 404, "{body}");
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert_eq!(lookup.asked.lock().unwrap().last().unwrap().1, stranger);

    proxy.abort();
    let _ = proxy.await;
}
