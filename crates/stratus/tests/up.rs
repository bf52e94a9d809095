//! `stratus up` as a user runs it: data and tokens survive a restart, keys
//! rotate without invalidating tokens, and two API processes share one cloud.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_stratus");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &[&str], data: &std::path::Path, port: u16) -> Proc {
    let child = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("STRATUS_IDENTITY__LISTEN", format!("127.0.0.1:{port}"))
        .env("STRATUS_IMAGE__LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("STRATUS_PLACEMENT__LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("STRATUS_COMPUTE__LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("STRATUS_NETWORK__LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("STRATUS_VOLUME__LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("STRATUS_IDENTITY__PASSWORD_HASH_ROUNDS", "4")
        // one real network agent per machine at a time: tests of their own use it
        .env("STRATUS_NETWORK__AGENT__DRIVER", "fake")
        // fake guests: CI stays fast whether or not QEMU is installed
        .env("STRATUS_COMPUTE__DRIVER", "fake")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Proc(child)
}

async fn wait_ready(client: &reqwest::Client, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("http://127.0.0.1:{port}/v3")).send().await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("stratus did not come up on port {port}");
}

async fn token(client: &reqwest::Client, port: u16, password: &str) -> String {
    let r = client
        .post(format!("http://127.0.0.1:{port}/v3/auth/tokens"))
        .json(&json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.headers()["x-subject-token"].to_str().unwrap().to_string()
}

async fn validate(client: &reqwest::Client, port: u16, token: &str) -> u16 {
    client
        .get(format!("http://127.0.0.1:{port}/v3/auth/tokens"))
        .header("x-auth-token", token)
        .header("x-subject-token", token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn data_and_tokens_survive_restart_and_key_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let client = reqwest::Client::new();
    let up = start(&["up", "--admin-password", "first-secret"], dir.path(), port);
    wait_ready(&client, port).await;
    assert!(dir.path().join("clouds.yaml").exists());
    assert!(std::fs::read_to_string(dir.path().join("openrc")).unwrap().contains("OS_AUTH_URL="));
    let tok = token(&client, port, "first-secret").await;
    let r = client
        .post(format!("http://127.0.0.1:{port}/v3/projects"))
        .header("x-auth-token", &tok)
        .json(&json!({"project": {"name": "survivor"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    drop(up);

    // rotate the keys while it is down; the old token's key is now a secondary
    let out = Command::new(BIN).args(["fernet", "rotate", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // restart without a password: bootstrap is idempotent and keeps the admin
    let _up = start(&["up"], dir.path(), port);
    wait_ready(&client, port).await;
    assert_eq!(validate(&client, port, &tok).await, 200, "a token survives restart and rotation");
    let r: Value = client
        .get(format!("http://127.0.0.1:{port}/v3/projects?name=survivor"))
        .header("x-auth-token", &tok)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["projects"].as_array().unwrap().len(), 1, "data survives restart: {r}");
    // the password given the first time still works (bootstrap did not reset it)
    token(&client, port, "first-secret").await;

    // a second API process on the same database and keys accepts the same tokens
    let port2 = free_port();
    let _api = start(&["api"], dir.path(), port2);
    wait_ready(&client, port2).await;
    assert_eq!(validate(&client, port2, &tok).await, 200);
    let tok2 = token(&client, port2, "first-secret").await;
    assert_eq!(validate(&client, port, &tok2).await, 200);
    // revoked on one, refused by the other (within its revocation refresh)
    let r = client
        .delete(format!("http://127.0.0.1:{port2}/v3/auth/tokens"))
        .header("x-auth-token", &tok2)
        .header("x-subject-token", &tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = validate(&client, port, &tok).await;
        if s == 401 || s == 404 {
            break;
        }
        assert!(Instant::now() < deadline, "revocation never reached the other process");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `image.preload` files become public images at `stratus up`, once.
#[tokio::test]
async fn up_registers_preloaded_images_once() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("tiny.qcow2");
    let out = Command::new("qemu-img").args(["create", "-q", "-f", "qcow2"]).arg(&disk).arg("8M").output();
    let out = out.unwrap_or_else(|e| panic!("qemu-img is needed (install qemu-utils): {e}"));
    assert!(out.status.success());
    let data = dir.path().join("data");
    let (port, image_port) = (free_port(), free_port());
    let client = reqwest::Client::new();
    for round in 0..2 {
        let child = Command::new(BIN)
            .args(["up", "--admin-password", "pre-secret", "--data-dir"])
            .arg(&data)
            .env("STRATUS_IDENTITY__LISTEN", format!("127.0.0.1:{port}"))
            .env("STRATUS_IMAGE__LISTEN", format!("127.0.0.1:{image_port}"))
            .env("STRATUS_PLACEMENT__LISTEN", format!("127.0.0.1:{}", free_port()))
            .env("STRATUS_COMPUTE__LISTEN", format!("127.0.0.1:{}", free_port()))
            .env("STRATUS_NETWORK__LISTEN", format!("127.0.0.1:{}", free_port()))
            .env("STRATUS_VOLUME__LISTEN", format!("127.0.0.1:{}", free_port()))
            .env("STRATUS_VOLUME__LISTEN", format!("127.0.0.1:{}", free_port()))
            .env("STRATUS_IDENTITY__PASSWORD_HASH_ROUNDS", "4")
            // one real network agent per machine at a time: tests of their own use it
            .env("STRATUS_NETWORK__AGENT__DRIVER", "fake")
            .env("STRATUS_COMPUTE__DRIVER", "fake")
            .env("STRATUS_IMAGE__PRELOAD", format!("[\"{}\"]", disk.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let _p = Proc(child);
        wait_ready(&client, port).await;
        let tok = token(&client, port, "pre-secret").await;
        let mut images = Vec::new();
        for _ in 0..100 {
            if let Ok(r) = client
                .get(format!("http://127.0.0.1:{image_port}/v2/images?name=tiny.qcow2"))
                .header("x-auth-token", &tok)
                .send()
                .await
                && let Ok(v) = r.json::<serde_json::Value>().await
            {
                images = v["images"].as_array().cloned().unwrap_or_default();
                if !images.is_empty() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(images.len(), 1, "round {round}: one image, registered once: {images:?}");
        assert_eq!(images[0]["status"], "active");
        assert_eq!(images[0]["disk_format"], "qcow2");
        assert_eq!(images[0]["visibility"], "public");
        assert_eq!(images[0]["virtual_size"], 8 * 1024 * 1024);
    }
}

/// `stratus up` with extra environment, its standard output collected line by line.
fn start_printing(
    data: &std::path::Path,
    port: u16,
    image_port: u16,
    env: &[(&str, String)],
) -> (Proc, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let mut cmd = Command::new(BIN);
    cmd.args(["up", "--admin-password", "drv-secret", "--data-dir"])
        .arg(data)
        .env("STRATUS_IDENTITY__LISTEN", format!("127.0.0.1:{port}"))
        .env("STRATUS_IMAGE__LISTEN", format!("127.0.0.1:{image_port}"))
        .env("STRATUS_PLACEMENT__LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("STRATUS_COMPUTE__LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("STRATUS_NETWORK__LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("STRATUS_VOLUME__LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("STRATUS_IDENTITY__PASSWORD_HASH_ROUNDS", "4")
        // one real network agent per machine at a time: tests of their own use it
        .env("STRATUS_NETWORK__AGENT__DRIVER", "fake")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(l);
        }
    });
    (Proc(child), lines)
}

async fn printed(lines: &std::sync::Mutex<Vec<String>>, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(l) = lines.lock().unwrap().iter().find(|l| l.contains(what)) {
            return l.trim().to_string();
        }
        assert!(Instant::now() < deadline, "never printed {what:?}: {:?}", lines.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `compute.driver = "auto"` (the default) is the fake driver where QEMU is
/// not installed, and `stratus up` says so.
#[tokio::test]
async fn up_says_which_compute_driver_it_chose() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let env = [("STRATUS_COMPUTE__QEMU_BINARY", "stratus-test-no-such-qemu".to_string())];
    let (_p, lines) = start_printing(dir.path(), port, free_port(), &env);
    let line = printed(&lines, "compute driver:").await;
    assert_eq!(line, "compute driver: fake (stratus-test-no-such-qemu not installed)");
    // and the host came up with it (its network agent too)
    let client = reqwest::Client::new();
    wait_ready(&client, port).await;
    assert!(!lines.lock().unwrap().iter().any(|l| l.contains("registered image tiny")));
}

/// With the QEMU driver and a built tiny guest, `stratus up` registers
/// `tiny-kernel`, `tiny-ramdisk` and `tiny` (which boots them), once.
#[tokio::test]
async fn up_registers_the_tiny_guest_once_with_the_qemu_driver() {
    let dir = tempfile::tempdir().unwrap();
    // stand-ins for the built guest: the registration only carries the bytes
    let tiny = dir.path().join("tiny-guest");
    std::fs::create_dir_all(&tiny).unwrap();
    std::fs::write(tiny.join("vmlinuz"), b"a kernel").unwrap();
    std::fs::write(tiny.join("initrd.gz"), b"an initramfs").unwrap();
    let data = dir.path().join("data");
    let (port, image_port) = (free_port(), free_port());
    let env = [
        ("STRATUS_COMPUTE__DRIVER", "qemu".to_string()),
        ("STRATUS_NETWORK__AGENT__DRIVER", "fake".to_string()),
        ("STRATUS_COMPUTE__QEMU_ACCEL", "tcg".to_string()),
        ("STRATUS_COMPUTE__TINY_GUEST_DIR", tiny.display().to_string()),
    ];
    let client = reqwest::Client::new();
    for round in 0..2 {
        let (_p, lines) = start_printing(&data, port, image_port, &env);
        let line = printed(&lines, "compute driver:").await;
        assert!(line.starts_with("compute driver: qemu (configured, qemu-system-x86_64 at "), "{line}");
        wait_ready(&client, port).await;
        let tok = token(&client, port, "drv-secret").await;
        let image = |name: &str| {
            let (client, tok) = (client.clone(), tok.clone());
            let url = format!("http://127.0.0.1:{image_port}/v2/images?name={name}");
            async move {
                let v: Value = client.get(url).header("x-auth-token", tok).send().await.unwrap().json().await.unwrap();
                v["images"].as_array().cloned().unwrap_or_default()
            }
        };
        if round == 0 {
            printed(&lines, "registered image tiny").await;
        } else {
            // the second start finds it (the log goes to standard output too)
            printed(&lines, "the tiny guest is registered already").await;
            assert!(!lines.lock().unwrap().iter().any(|l| l.contains("registered image tiny")));
        }
        let (k, r, t) = (image("tiny-kernel").await, image("tiny-ramdisk").await, image("tiny").await);
        assert_eq!((k.len(), r.len(), t.len()), (1, 1, 1), "round {round}: {k:?} {r:?} {t:?}");
        assert_eq!((k[0]["disk_format"].as_str(), k[0]["container_format"].as_str()), (Some("aki"), Some("aki")));
        assert_eq!((r[0]["disk_format"].as_str(), r[0]["container_format"].as_str()), (Some("ari"), Some("ari")));
        assert_eq!(k[0]["size"], 8);
        let t = &t[0];
        assert_eq!(t["status"], "active");
        assert_eq!(t["visibility"], "public");
        assert_eq!((t["disk_format"].as_str(), t["container_format"].as_str()), (Some("raw"), Some("bare")));
        assert_eq!(t["size"], 1024 * 1024);
        assert_eq!(t["kernel_id"], k[0]["id"]);
        assert_eq!(t["ramdisk_id"], r[0]["id"]);
        assert_eq!(t["os_command_line"], "console=ttyS0 quiet mitigations=off cryptomgr.notests");
    }
}
