//! A newcomer's first hour, as the README tells it: `stratus up` started in a
//! directory with the default, relative data dir (`./stratus-data`), a real
//! guest booted on it (its overlay's backing file must not be a relative
//! path), `stratus up` stopped while the guest runs (it says so, and how to
//! stop it), then `stratus down` stops the guest and removes its tap and the
//! idle bridge.
//!
//! Needs qemu-system-x86_64 and the built tiny guest; without them it says
//! SKIPPING loudly, and with STRATUS_REQUIRE_QEMU=1 (scripts/test) it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_stratus");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn tiny_guest() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/tiny-guest/out");
    let qemu = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("qemu-system-x86_64").is_file()))
        .unwrap_or(false);
    let why = if !qemu {
        "qemu-system-x86_64 is not installed"
    } else if !d.join("vmlinuz").is_file() || !d.join("initrd.gz").is_file() {
        "the tiny guest is not built (scripts/tiny-guest/build)"
    } else {
        return Some(std::path::absolute(d).unwrap());
    };
    if std::env::var("STRATUS_REQUIRE_QEMU").as_deref() == Ok("1") {
        panic!("STRATUS_REQUIRE_QEMU=1 but {why}");
    }
    eprintln!("!!! SKIPPING the first-hour test: {why}");
    None
}

/// Ends whatever the test left (processes whose command line names the
/// scratch directory, the bridge), pass or fail.
struct Cleanup {
    dir: PathBuf,
    bridge: String,
    up: Option<Child>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(mut c) = self.up.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("pkill").args(["-9", "-f", &self.dir.display().to_string()]).status();
        let brif = Path::new("/sys/class/net").join(&self.bridge).join("brif");
        if let Ok(taps) = std::fs::read_dir(&brif) {
            for t in taps.flatten() {
                let _ = Command::new("ip").args(["link", "del", "dev"]).arg(t.file_name()).status();
            }
        }
        let _ = Command::new("ip").args(["link", "del", "dev", &self.bridge]).stderr(Stdio::null()).status();
    }
}

struct Ports {
    identity: u16,
    image: u16,
    compute: u16,
    network: u16,
}

fn stratus(dir: &Path, ports: &Ports, bridge: &str, tiny: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env("STRATUS_IDENTITY__LISTEN", format!("127.0.0.1:{}", ports.identity))
        .env("STRATUS_IMAGE__LISTEN", format!("127.0.0.1:{}", ports.image))
        .env("STRATUS_PLACEMENT__LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("STRATUS_COMPUTE__LISTEN", format!("127.0.0.1:{}", ports.compute))
        .env("STRATUS_NETWORK__LISTEN", format!("127.0.0.1:{}", ports.network))
        .env("STRATUS_VOLUME__LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("STRATUS_IDENTITY__PASSWORD_HASH_ROUNDS", "4")
        // one real network agent per machine at a time: tests of their own use it
        .env("STRATUS_NETWORK__AGENT__DRIVER", "fake")
        .env("STRATUS_COMPUTE__DRIVER", "qemu")
        .env("STRATUS_COMPUTE__QEMU_ACCEL", "tcg")
        .env("STRATUS_COMPUTE__QEMU_BRIDGE", bridge)
        .env("STRATUS_COMPUTE__TINY_GUEST_DIR", tiny)
        .env("NO_COLOR", "1")
        .env_remove("STRATUS_DATA_DIR");
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
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn qemu_of(uuid: &str) -> bool {
    Command::new("pgrep").args(["-f", &format!("guest={uuid}")]).stdout(Stdio::null()).status().unwrap().success()
}

#[tokio::test]
async fn a_real_guest_from_a_relative_data_dir_then_up_stopped_and_down() {
    let Some(tiny) = tiny_guest() else { return };
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().to_path_buf();
    let ports = Ports { identity: free_port(), image: free_port(), compute: free_port(), network: free_port() };
    let bridge = format!("brfh{}", ports.identity);
    let mut guard = Cleanup { dir: dir.clone(), bridge: bridge.clone(), up: None };

    // `stratus up` in the scratch directory, no --data-dir: ./stratus-data
    let mut child = stratus(&dir, &ports, &bridge, &tiny)
        .args(["up", "--admin-password", "first-hour"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    guard.up = Some(child);
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(l);
        }
    });

    let client = reqwest::Client::new();
    let id = format!("http://127.0.0.1:{}", ports.identity);
    let tok: String = eventually("a token", 60, || {
        let (client, id) = (client.clone(), id.clone());
        async move {
            let r = client
                .post(format!("{id}/v3/auth/tokens"))
                .json(&json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin",
                    "domain": {"id": "default"}, "password": "first-hour"}}},
                    "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}))
                .send()
                .await
                .ok()?;
            (r.status() == 201).then(|| r.headers()["x-subject-token"].to_str().unwrap().to_string())
        }
    })
    .await;
    let get = |url: String| {
        let (client, tok) = (client.clone(), tok.clone());
        async move {
            let r = client.get(url).header("x-auth-token", tok).send().await.ok()?;
            if r.status() != 200 {
                return None;
            }
            r.json::<Value>().await.ok()
        }
    };
    // the data dir is ./stratus-data under the directory it started in
    assert!(dir.join("stratus-data").join("clouds.yaml").is_file());

    let image = eventually("the tiny image", 60, || {
        let u = format!("http://127.0.0.1:{}/v2/images?name=tiny", ports.image);
        let get = &get;
        async move { get(u).await?["images"][0]["id"].as_str().map(str::to_string) }
    })
    .await;
    let compute = format!("http://127.0.0.1:{}/v2.1", ports.compute);
    let flavors = get(format!("{compute}/flavors")).await.unwrap();
    let flavor = flavors["flavors"].as_array().unwrap().iter().find(|f| f["name"] == "m1.tiny").unwrap()["id"].clone();
    let nets = get(format!("http://127.0.0.1:{}/v2.0/networks?name=private", ports.network)).await.unwrap();
    let net = nets["networks"][0]["id"].as_str().unwrap().to_string();

    let r = client
        .post(format!("{compute}/servers"))
        .header("x-auth-token", &tok)
        .json(&json!({"server": {"name": "vm1", "imageRef": image, "flavorRef": flavor, "networks": [{"uuid": net}]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let server: Value = r.json().await.unwrap();
    let uuid = server["server"]["id"].as_str().unwrap().to_string();
    let status = eventually("vm1 to leave BUILD", 120, || {
        let (u, get) = (format!("{compute}/servers/{uuid}"), &get);
        async move {
            let s = get(u).await?;
            let st = s["server"]["status"].as_str()?.to_string();
            (st != "BUILD").then(|| (st, s["server"]["fault"].clone()))
        }
    })
    .await;
    assert_eq!(status.0, "ACTIVE", "fault: {}", status.1);
    // its overlay's backing file is absolute (a relative one broke the first server)
    let disk = dir.join("stratus-data/instances");
    let overlay = walk(&disk).into_iter().find(|p| p.ends_with(format!("{uuid}/disk.qcow2"))).unwrap();
    let info = Command::new("qemu-img").args(["info", "-U", "--output=json"]).arg(&overlay).output().unwrap();
    let info: Value = serde_json::from_slice(&info.stdout).unwrap();
    let backing = info["full-backing-filename"].as_str().or(info["backing-filename"].as_str()).unwrap();
    assert!(backing.starts_with('/'), "backing file {backing}");

    let marker = format!("STRATUS-GUEST-READY uuid={uuid} name=vm1");
    eventually("the guest's marker on its console", 120, || {
        let (client, tok, marker) = (client.clone(), tok.clone(), marker.clone());
        let u = format!("{compute}/servers/{uuid}/action");
        async move {
            let r = client
                .post(u)
                .header("x-auth-token", tok)
                .json(&json!({"os-getConsoleOutput": {"length": 100}}))
                .send()
                .await
                .ok()?;
            let v: Value = r.json().await.ok()?;
            v["output"].as_str()?.contains(&marker).then_some(())
        }
    })
    .await;

    // Ctrl-C: the cloud stops, the guest runs on, and it is said
    let mut child = guard.up.take().unwrap();
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "stratus up did not stop on SIGINT");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    reader.join().unwrap();
    assert!(code.success(), "stratus up exited with {code}");
    let printed = lines.lock().unwrap().join("\n");
    let data = dir.join("stratus-data");
    assert!(printed.contains("1 guest still running"), "{printed}");
    assert!(printed.contains(&format!("stratus --data-dir {} down", data.display())), "{printed}");
    assert!(qemu_of(&uuid), "the guest should outlive stratus up");
    let taps_before = std::fs::read_dir(Path::new("/sys/class/net").join(&bridge).join("brif")).unwrap().count();
    assert_eq!(taps_before, 1, "the guest's tap is on the bridge");

    // `stratus down` from the same directory stops it and removes tap and bridge
    let out = stratus(&dir, &ports, &bridge, &tiny).arg("down").output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said} {}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("stopped 1 guest of"), "{said}");
    assert!(!qemu_of(&uuid), "the guest still runs after stratus down");
    assert!(!Path::new("/sys/class/net").join(&bridge).exists(), "bridge {bridge} left behind");
    // its disk stays; a second down finds nothing to stop
    assert!(overlay.is_file());
    let out = stratus(&dir, &ports, &bridge, &tiny).arg("down").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("stopped 0 guests"));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
