//! The network data plane end to end, with the real agent and a real guest:
//! `stratus up` (real network agent, QEMU under TCG, the tiny guest), a key
//! pair and SSH allowed in the default group, a server on `private`, a
//! floating IP from `public`; then from the host, through the external bridge
//! only: `ssh root@FIP hostname` prints the server's name, and it pings a
//! second server booted after the network's dnsmasq started (its lease came
//! from dnsmasq re-reading its hosts); the guest got its address and MTU by
//! DHCP (its tap has the network's MTU too) and reaches
//! the external gateway through SNAT; an agent restarted (the cloud stopped
//! and started) keeps the guest reachable; disassociating the floating IP
//! cuts it (status DOWN); the port or the router administratively down
//! cuts it too; a port forwarding of another floating IP's port
//! 2222 reaches the guest's SSH, and its deletion cuts it; `stratus down`
//! leaves no namespace, bridge or dnsmasq of the cloud behind.
//!
//! Every send to a cloud address is checked first with `ip route get`: it
//! must lead to the external bridge the cloud made, never the default route.
//! Needs root, QEMU, the tiny guest, dnsmasq, nft and ssh; without them it
//! says SKIPPING loudly, and with STRATUS_REQUIRE_QEMU=1 (scripts/test) it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_stratus");
/// The test's own external network: a bridge, a range and tables of its
/// own, so it never meets another cloud on the machine (whose `br-ex`
/// holds 198.51.100.0/24).
const EXTERNAL_CIDR: &str = "198.18.250.0/24";
const EXTERNAL_GATEWAY: &str = "198.18.250.1";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn on_path(b: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).chain([PathBuf::from("/usr/sbin")]).any(|d| d.join(b).is_file()))
        .unwrap_or(false)
}

fn prerequisites() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/tiny-guest/out");
    let mut why = None;
    for b in ["qemu-system-x86_64", "dnsmasq", "nft", "ssh", "ssh-keygen"] {
        if !on_path(b) {
            why = Some(format!("{b} is not installed"));
        }
    }
    if !d.join("vmlinuz").is_file() {
        why = Some("the tiny guest is not built (scripts/tiny-guest/build)".into());
    }
    if !rustix_is_root() {
        why = Some("not root".into());
    }
    match why {
        None => Some(std::path::absolute(d).unwrap()),
        Some(w) => {
            if std::env::var("STRATUS_REQUIRE_QEMU").as_deref() == Ok("1") {
                panic!("STRATUS_REQUIRE_QEMU=1 but {w}");
            }
            eprintln!("!!! SKIPPING the data plane test: {w}");
            None
        }
    }
}

fn rustix_is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// Stops the cloud and removes what it made (`stratus down`), pass or fail.
struct Cleanup {
    dir: PathBuf,
    env: Vec<(String, String)>,
    up: Option<Child>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(mut c) = self.up.take() {
            let _ = Command::new("kill").args(["-INT", &c.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline && c.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = stratus(&self.dir, &self.env).arg("down").stdout(Stdio::null()).stderr(Stdio::null()).status();
        let _ = Command::new("pkill").args(["-9", "-f", &self.dir.display().to_string()]).status();
    }
}

fn stratus(dir: &Path, env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).env("NO_COLOR", "1").env_remove("STRATUS_DATA_DIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

async fn eventually<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The address must lead to the cloud's external bridge, else nothing is sent.
fn guard(ip: &str) {
    let bridge = external_bridge();
    let out = Command::new("ip").args(["route", "get", ip]).output().unwrap();
    let route = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        route.contains(&format!(" dev {bridge} ")),
        "refusing to send to {ip}: it routes as `{}`, not through {bridge}",
        route.trim()
    );
}

fn ssh(key: &Path, ip: &str, cmd: &str, timeout: u32) -> std::process::Output {
    ssh_port(key, ip, 22, cmd, timeout)
}

fn ssh_port(key: &Path, ip: &str, port: u16, cmd: &str, timeout: u32) -> std::process::Output {
    guard(ip);
    Command::new("ssh")
        .arg("-i")
        .arg(key)
        .args(["-p", &port.to_string()])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "BatchMode=yes",
            "-o",
            &format!("ConnectTimeout={timeout}"),
            &format!("root@{ip}"),
            cmd,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

struct Api {
    client: reqwest::Client,
    tok: String,
}

impl Api {
    async fn call(&self, method: reqwest::Method, url: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self.client.request(method, url).header("x-auth-token", &self.tok);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.unwrap_or(Value::Null))
    }
    async fn get(&self, url: &str) -> Value {
        let (s, v) = self.call(reqwest::Method::GET, url, None).await;
        assert_eq!(s, 200, "GET {url}: {v}");
        v
    }
    async fn post(&self, url: &str, body: Value) -> Value {
        let (s, v) = self.call(reqwest::Method::POST, url, Some(body)).await;
        assert!((200..300).contains(&s), "POST {url}: {s} {v}");
        v
    }
}

/// The external bridge of this test process.
fn external_bridge() -> String {
    format!("brdp{}", std::process::id() % 100_000)
}

fn namespaces() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| d.flatten().filter_map(|e| e.file_name().into_string().ok()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_guest_is_reached_over_ssh_through_its_floating_ip_and_nothing_is_left() {
    let Some(tiny) = prerequisites() else { return };
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().to_path_buf();
    let (identity, image, compute, network) = (free_port(), free_port(), free_port(), free_port());
    let env: Vec<(String, String)> = [
        ("STRATUS_IDENTITY__LISTEN", format!("127.0.0.1:{identity}")),
        ("STRATUS_IMAGE__LISTEN", format!("127.0.0.1:{image}")),
        ("STRATUS_PLACEMENT__LISTEN", format!("127.0.0.1:{}", free_port())),
        ("STRATUS_COMPUTE__LISTEN", format!("127.0.0.1:{compute}")),
        ("STRATUS_COMPUTE__METADATA_LISTEN", format!("0.0.0.0:{}", free_port())),
        ("STRATUS_COMPUTE__CONSOLE_LISTEN", format!("127.0.0.1:{}", free_port())),
        ("STRATUS_NETWORK__LISTEN", format!("127.0.0.1:{network}")),
        ("STRATUS_VOLUME__LISTEN", format!("127.0.0.1:{}", free_port())),
        ("STRATUS_IDENTITY__PASSWORD_HASH_ROUNDS", "4".into()),
        ("STRATUS_COMPUTE__DRIVER", "qemu".into()),
        ("STRATUS_COMPUTE__QEMU_ACCEL", "tcg".into()),
        ("STRATUS_COMPUTE__TINY_GUEST_DIR", tiny.display().to_string()),
        ("STRATUS_NETWORK__AGENT__DRIVER", "real".into()),
        ("STRATUS_NETWORK__AGENT__BRIDGE_MAPPINGS", format!("[\"public:{}\"]", external_bridge())),
        ("STRATUS_NETWORK__AGENT__FIREWALL_TABLE", format!("sgdp{}", std::process::id())),
        ("STRATUS_NETWORK__BOOTSTRAP__PUBLIC_CIDR", EXTERNAL_CIDR.into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut guard_ = Cleanup { dir: dir.clone(), env: env.clone(), up: None };

    let key = dir.join("key");
    assert!(
        Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key).status().unwrap().success()
    );
    let public_key = std::fs::read_to_string(dir.join("key.pub")).unwrap();

    let log = std::fs::File::create(dir.join("up.log")).unwrap();
    let child = stratus(&dir, &env)
        .args(["up", "--admin-password", "dataplane"])
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    guard_.up = Some(child);

    let client = reqwest::Client::new();
    let idurl = format!("http://127.0.0.1:{identity}");
    let tok: String = eventually("a token", 90, || {
        let (client, idurl) = (client.clone(), idurl.clone());
        async move {
            let r = client
                .post(format!("{idurl}/v3/auth/tokens"))
                .json(&json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin",
                    "domain": {"id": "default"}, "password": "dataplane"}}},
                    "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}))
                .send()
                .await
                .ok()?;
            (r.status() == 201).then(|| r.headers()["x-subject-token"].to_str().unwrap().to_string())
        }
    })
    .await;
    let api = Api { client: client.clone(), tok };
    let (nova, neutron) = (format!("http://127.0.0.1:{compute}/v2.1"), format!("http://127.0.0.1:{network}/v2.0"));
    let up_log = || std::fs::read_to_string(dir.join("up.log")).unwrap_or_default();
    eventually("stratus up to say it is up", 120, || {
        let l = up_log();
        async move { l.contains("Stratus is up").then_some(()) }
    })
    .await;
    assert!(up_log().contains("network agent: real"), "{}", up_log());

    let img = api.get(&format!("http://127.0.0.1:{image}/v2/images?name=tiny")).await["images"][0]["id"].clone();
    let flavors = api.get(&format!("{nova}/flavors")).await;
    let flavor = flavors["flavors"].as_array().unwrap().iter().find(|f| f["name"] == "m1.tiny").unwrap()["id"].clone();
    let private = api.get(&format!("{neutron}/networks?name=private")).await["networks"][0].clone();
    let public = api.get(&format!("{neutron}/networks?name=public")).await["networks"][0]["id"].clone();
    let router =
        api.get(&format!("{neutron}/routers?name=router1")).await["routers"][0]["id"].as_str().unwrap().to_string();
    assert!(namespaces().contains(&format!("qrouter-{router}")), "the router's namespace");
    api.post(&format!("{nova}/os-keypairs"), json!({"keypair": {"name": "k", "public_key": public_key}})).await;
    let project = private["project_id"].as_str().unwrap().to_string();
    let sg = api.get(&format!("{neutron}/security-groups?name=default&project_id={project}")).await["security_groups"]
        [0]["id"]
        .clone();
    let ssh_rule = api
        .post(
            &format!("{neutron}/security-group-rules"),
            json!({"security_group_rule": {"security_group_id": sg, "direction": "ingress", "protocol": "tcp",
                "port_range_min": 22, "port_range_max": 22}}),
        )
        .await["security_group_rule"]["id"]
        .clone();
    api.post(
        &format!("{neutron}/security-group-rules"),
        json!({"security_group_rule": {"security_group_id": sg, "direction": "ingress", "protocol": "icmp"}}),
    )
    .await;

    let t0 = Instant::now();
    let server = api
        .post(
            &format!("{nova}/servers"),
            json!({"server": {"name": "vm1", "imageRef": img, "flavorRef": flavor, "key_name": "k",
                "networks": [{"uuid": private["id"]}]}}),
        )
        .await;
    let uuid = server["server"]["id"].as_str().unwrap().to_string();
    let st = eventually("vm1 to leave BUILD", 120, || {
        let (api, u) = (&api, format!("{nova}/servers/{uuid}"));
        async move {
            let s = api.call(reqwest::Method::GET, &u, None).await.1;
            let st = s["server"]["status"].as_str()?.to_string();
            (st != "BUILD").then(|| (st, s["server"]["fault"].clone()))
        }
    })
    .await;
    assert_eq!(st.0, "ACTIVE", "fault: {}", st.1);
    let port = api.get(&format!("{neutron}/ports?device_id={uuid}")).await["ports"][0].clone();
    let fixed = port["fixed_ips"][0]["ip_address"].as_str().unwrap().to_string();
    let console = eventually("the guest's DHCP lease and SSH server", 120, || {
        let (api, u) = (&api, format!("{nova}/servers/{uuid}/action"));
        async move {
            let v = api.call(reqwest::Method::POST, &u, Some(json!({"os-getConsoleOutput": {"length": 200}}))).await.1;
            let out = v["output"].as_str()?.to_string();
            (out.contains("STRATUS-SSH-READY") && out.contains("STRATUS-IP eth0")).then_some(out)
        }
    })
    .await;
    assert!(console.contains(&format!("STRATUS-IP eth0 {fixed}/24")), "the lease is the port's address: {console}");

    // a second guest on the network: its lease comes from the running dnsmasq
    // re-reading its hosts file (the data dir is private, 0700, as a
    // newcomer's /root is: dnsmasq must read it as root)
    let server2 = api
        .post(
            &format!("{nova}/servers"),
            json!({"server": {"name": "vm2", "imageRef": img, "flavorRef": flavor, "key_name": "k",
                "networks": [{"uuid": private["id"]}]}}),
        )
        .await;
    let uuid2 = server2["server"]["id"].as_str().unwrap().to_string();
    let fixed2 = eventually("vm2's port", 60, || {
        let (api, u) = (&api, format!("{neutron}/ports?device_id={uuid2}"));
        async move {
            let p = api.call(reqwest::Method::GET, &u, None).await.1;
            p["ports"][0]["fixed_ips"][0]["ip_address"].as_str().map(str::to_string)
        }
    })
    .await;
    let console2 = eventually("vm2's DHCP lease", 120, || {
        let (api, u) = (&api, format!("{nova}/servers/{uuid2}/action"));
        async move {
            let v = api.call(reqwest::Method::POST, &u, Some(json!({"os-getConsoleOutput": {"length": 200}}))).await.1;
            let out = v["output"].as_str()?.to_string();
            out.contains("STRATUS-IP eth0").then_some(out)
        }
    })
    .await;
    assert!(console2.contains(&format!("STRATUS-IP eth0 {fixed2}/24")), "vm2's lease: {console2}");

    let fip = api
        .post(
            &format!("{neutron}/floatingips"),
            json!({"floatingip": {"floating_network_id": public, "port_id": port["id"]}}),
        )
        .await["floatingip"]
        .clone();
    let (fip_id, fip_ip) =
        (fip["id"].as_str().unwrap().to_string(), fip["floating_ip_address"].as_str().unwrap().to_string());
    eventually("the floating IP to go ACTIVE", 30, || {
        let (api, u) = (&api, format!("{neutron}/floatingips/{fip_id}"));
        async move { (api.call(reqwest::Method::GET, &u, None).await.1["floatingip"]["status"] == "ACTIVE").then_some(()) }
    })
    .await;

    // from the host, through the external bridge only
    let name = eventually("ssh root@FIP hostname", 60, || {
        let o = ssh(&key, &fip_ip, "hostname", 5);
        async move { o.status.success().then(|| String::from_utf8_lossy(&o.stdout).trim().to_string()) }
    })
    .await;
    assert_eq!(name, "vm1");
    eprintln!("server create to ssh: {:?}", t0.elapsed());
    // east-west: vm1 reaches vm2 on their network
    let o = ssh(&key, &fip_ip, &format!("ping -c1 -W3 {fixed2}"), 5);
    assert!(o.status.success(), "vm1 cannot ping vm2: {}", String::from_utf8_lossy(&o.stdout));
    let o = ssh(&key, &fip_ip, "cat /sys/class/net/eth0/mtu; ip route | grep default", 5);
    let said = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(said.starts_with(&format!("{}\n", private["mtu"])), "MTU from DHCP: {said}");
    // the tap too has the network's MTU
    let tap = format!("tap{}", port["id"].as_str().unwrap().chars().take(11).collect::<String>());
    let tap_mtu = std::fs::read_to_string(format!("/sys/class/net/{tap}/mtu")).unwrap();
    assert_eq!(tap_mtu.trim(), private["mtu"].to_string(), "{tap}'s MTU");
    assert!(said.contains("default via 10.0.0.1"), "gateway from DHCP: {said}");
    // SNAT: the guest reaches the external network's gateway (the host's bridge address)
    let o = ssh(&key, &fip_ip, &format!("ping -c1 -W3 {EXTERNAL_GATEWAY}"), 5);
    assert!(o.status.success(), "SNAT to the external gateway: {}", String::from_utf8_lossy(&o.stdout));
    // containment: the host forwards nothing between the external bridge and its other interfaces
    let t = Command::new("nft")
        .args(["-j", "list", "table", "inet", &format!("contain-{}", external_bridge())])
        .output()
        .unwrap();
    let rules = String::from_utf8_lossy(&t.stdout).to_string();
    assert!(rules.contains(&external_bridge()) && rules.matches("\"drop\"").count() >= 2, "{rules}");

    // metadata: the guest's own, through its router's proxy (signed for its instance)
    let o = ssh(&key, &fip_ip, "wget -qO- http://169.254.169.254/openstack/latest/meta_data.json", 5);
    let md = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(md.contains(&uuid) && md.contains("\"name\""), "metadata: {md} {}", String::from_utf8_lossy(&o.stderr));

    // security groups: without the SSH rule an established session is cut and no new one gets in
    let held = Command::new("ssh")
        .arg("-i")
        .arg(&key)
        .args(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"])
        .args(["-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2", "-o", "BatchMode=yes"])
        .arg(format!("root@{fip_ip}"))
        .arg("echo before; sleep 6; echo after")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (s, _) = api
        .call(reqwest::Method::DELETE, &format!("{neutron}/security-group-rules/{}", ssh_rule.as_str().unwrap()), None)
        .await;
    assert_eq!(s, 204);
    let out = tokio::task::spawn_blocking(move || held.wait_with_output().unwrap()).await.unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(said.contains("before") && !said.contains("after"), "the held session went on: {said:?}");
    let o = ssh(&key, &fip_ip, "hostname", 3);
    assert!(!o.status.success(), "ssh got in without a rule allowing it");
    let ssh_rule = api
        .post(
            &format!("{neutron}/security-group-rules"),
            json!({"security_group_rule": {"security_group_id": sg, "direction": "ingress", "protocol": "tcp",
                "port_range_min": 22, "port_range_max": 22}}),
        )
        .await["security_group_rule"]["id"]
        .clone();
    let _ = ssh_rule;
    eventually("ssh allowed again", 30, || {
        let o = ssh(&key, &fip_ip, "hostname", 3);
        async move { o.status.success().then_some(()) }
    })
    .await;

    // administratively down, the guest's port passes nothing (and is DOWN);
    // so does its router; both up again, it is reachable again
    let port_id = port["id"].as_str().unwrap().to_string();
    for (what, url, body) in [
        ("port", format!("{neutron}/ports/{port_id}"), "port"),
        ("router", format!("{neutron}/routers/{router}"), "router"),
    ] {
        let (s, v) = api.call(reqwest::Method::PUT, &url, Some(json!({body: {"admin_state_up": false}}))).await;
        assert_eq!(s, 200, "{v}");
        eventually(&format!("ssh cut with the {what} down"), 30, || {
            let o = ssh(&key, &fip_ip, "hostname", 2);
            async move { (!o.status.success()).then_some(()) }
        })
        .await;
        if what == "port" {
            let p = api.get(&url).await;
            assert_eq!(p["port"]["status"], "DOWN", "{p}");
        }
        let (s, v) = api.call(reqwest::Method::PUT, &url, Some(json!({body: {"admin_state_up": true}}))).await;
        assert_eq!(s, 200, "{v}");
        eventually(&format!("ssh back with the {what} up"), 60, || {
            let o = ssh(&key, &fip_ip, "hostname", 3);
            async move { o.status.success().then_some(()) }
        })
        .await;
    }
    let p = api.get(&format!("{neutron}/ports/{port_id}")).await;
    assert_eq!(p["port"]["status"], "ACTIVE", "{p}");

    // the agent restarted (the whole cloud): the guest stays reachable
    let mut c = guard_.up.take().unwrap();
    let _ = Command::new("kill").args(["-INT", &c.id().to_string()]).status();
    let _ = c.wait();
    let o = ssh(&key, &fip_ip, "hostname", 5);
    assert!(o.status.success(), "reachable while the agent is down");
    std::fs::write(dir.join("up.log"), "").unwrap();
    let log = std::fs::OpenOptions::new().append(true).open(dir.join("up.log")).unwrap();
    guard_.up = Some(
        stratus(&dir, &env)
            .args(["up", "--admin-password", "dataplane"])
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap(),
    );
    eventually("stratus up again", 120, || {
        let l = up_log();
        async move { l.contains("network agent in sync").then_some(()) }
    })
    .await;
    let o = ssh(&key, &fip_ip, "hostname", 5);
    assert!(o.status.success(), "reachable after the agent's resync: {}", String::from_utf8_lossy(&o.stderr));

    // disassociated: DOWN, and the address no longer answers
    let (s, v) = api
        .call(
            reqwest::Method::PUT,
            &format!("{neutron}/floatingips/{fip_id}"),
            Some(json!({"floatingip": {"port_id": null}})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    eventually("the floating IP to go DOWN", 30, || {
        let (api, u) = (&api, format!("{neutron}/floatingips/{fip_id}"));
        async move { (api.call(reqwest::Method::GET, &u, None).await.1["floatingip"]["status"] == "DOWN").then_some(()) }
    })
    .await;
    let o = ssh(&key, &fip_ip, "hostname", 3);
    assert!(!o.status.success(), "a disassociated floating IP still reaches the guest");

    // a port forwarding (the port has no floating IP now): a second floating
    // IP's port 2222 to the guest's SSH
    let fip2 = api
        .post(&format!("{neutron}/floatingips"), json!({"floatingip": {"floating_network_id": public}}))
        .await["floatingip"]
        .clone();
    let (fip2_id, fip2_ip) =
        (fip2["id"].as_str().unwrap().to_string(), fip2["floating_ip_address"].as_str().unwrap().to_string());
    let pf = api
        .post(
            &format!("{neutron}/floatingips/{fip2_id}/port_forwardings"),
            json!({"port_forwarding": {"protocol": "tcp", "internal_ip_address": fixed, "internal_port": 22,
                "internal_port_id": port["id"], "external_port": 2222}}),
        )
        .await["port_forwarding"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let name = eventually("ssh -p 2222 root@FIP2 hostname", 30, || {
        let o = ssh_port(&key, &fip2_ip, 2222, "hostname", 3);
        async move { o.status.success().then(|| String::from_utf8_lossy(&o.stdout).trim().to_string()) }
    })
    .await;
    assert_eq!(name, "vm1");
    let o = ssh(&key, &fip2_ip, "hostname", 3);
    assert!(!o.status.success(), "a port forwarding of 2222 let port 22 through");
    let (s, _) = api
        .call(reqwest::Method::DELETE, &format!("{neutron}/floatingips/{fip2_id}/port_forwardings/{pf}"), None)
        .await;
    assert_eq!(s, 204);
    eventually("the port forwarding's removal to hold", 30, || {
        let o = ssh_port(&key, &fip2_ip, 2222, "hostname", 2);
        async move { (!o.status.success()).then_some(()) }
    })
    .await;
    let (s, _) = api.call(reqwest::Method::DELETE, &format!("{neutron}/floatingips/{fip2_id}"), None).await;
    assert_eq!(s, 204);

    // everything the cloud made goes with `stratus down`
    for id in [&uuid, &uuid2] {
        let (s, _) = api.call(reqwest::Method::DELETE, &format!("{nova}/servers/{id}"), None).await;
        assert_eq!(s, 204);
    }
    let mut c = guard_.up.take().unwrap();
    let _ = Command::new("kill").args(["-INT", &c.id().to_string()]).status();
    let _ = c.wait();
    let out = stratus(&dir, &env).arg("down").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // this cloud's: its router's and its network's (other clouds on the machine may make theirs meanwhile)
    let ours = [format!("qrouter-{router}"), format!("qdhcp-{}", private["id"].as_str().unwrap())];
    let left: Vec<String> = namespaces().into_iter().filter(|n| ours.contains(n)).collect();
    assert!(left.is_empty(), "namespaces left: {left:?}");
    let bridge = format!("brq{}", private["id"].as_str().unwrap().chars().take(11).collect::<String>());
    assert!(!Path::new("/sys/class/net").join(&bridge).exists(), "{bridge} left");
    assert!(!Path::new("/sys/class/net").join(external_bridge()).exists(), "the external bridge left");
    let t =
        Command::new("nft").args(["list", "table", "inet", &format!("sgdp{}", std::process::id())]).output().unwrap();
    assert!(!t.status.success(), "the security group table is left");
    let procs = Command::new("pgrep").args(["-f", &dir.display().to_string()]).output().unwrap();
    assert!(procs.stdout.is_empty(), "processes left: {}", String::from_utf8_lossy(&procs.stdout));
}
