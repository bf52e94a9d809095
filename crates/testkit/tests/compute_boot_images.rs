//! A compute host whose driver boots image data (as the QEMU driver does)
//! gets the server's image and the image's kernel and ramdisk in its image
//! cache before the spawn, downloaded once for servers built side by side,
//! and a guest spec that says everything about the server: local paths and
//! disk format, interfaces with their addresses, project, zone, key pair,
//! launch index. A rebuild boots the new image with its own properties.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::{Value, json};
use stratus_testkit::{Cloud, fresh_urls};
use stratus_virt::{Driver, GuestInfo, GuestInterface, GuestSpec, GuestVolume, HostCapacity};

const MV: &str = "2.96";
const HOST: &str = "images-host";

/// The fake hypervisor, but asking for images and keeping every spec it is given.
struct NeedsImages {
    inner: Arc<dyn Driver>,
    specs: Mutex<Vec<GuestSpec>>,
}

#[async_trait::async_trait]
impl Driver for NeedsImages {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn needs_images(&self) -> bool {
        true
    }
    async fn capacity(&self) -> anyhow::Result<HostCapacity> {
        self.inner.capacity().await
    }
    async fn list(&self) -> anyhow::Result<Vec<GuestInfo>> {
        self.inner.list().await
    }
    async fn spawn(&self, spec: &GuestSpec) -> anyhow::Result<()> {
        // what the QEMU driver would boot is there when it is asked to
        for p in [&spec.image_path, &spec.kernel_path, &spec.ramdisk_path].into_iter().flatten() {
            anyhow::ensure!(p.is_file(), "{} is not on the host", p.display());
        }
        self.specs.lock().unwrap().push(spec.clone());
        self.inner.spawn(spec).await
    }
    async fn destroy(&self, uuid: &str) -> anyhow::Result<()> {
        self.inner.destroy(uuid).await
    }
    async fn power_off(&self, uuid: &str) -> anyhow::Result<()> {
        self.inner.power_off(uuid).await
    }
    async fn power_on(&self, uuid: &str) -> anyhow::Result<()> {
        self.inner.power_on(uuid).await
    }
    async fn reboot(&self, uuid: &str, hard: bool) -> anyhow::Result<()> {
        self.inner.reboot(uuid, hard).await
    }
    async fn pause(&self, uuid: &str) -> anyhow::Result<()> {
        self.inner.pause(uuid).await
    }
    async fn unpause(&self, uuid: &str) -> anyhow::Result<()> {
        self.inner.unpause(uuid).await
    }
    async fn suspend(&self, uuid: &str) -> anyhow::Result<()> {
        self.inner.suspend(uuid).await
    }
    async fn resume(&self, uuid: &str) -> anyhow::Result<()> {
        self.inner.resume(uuid).await
    }
    async fn resize(&self, uuid: &str, spec: &GuestSpec) -> anyhow::Result<()> {
        self.inner.resize(uuid, spec).await
    }
    async fn console_output(&self, uuid: &str, lines: Option<usize>) -> anyhow::Result<String> {
        self.inner.console_output(uuid, lines).await
    }
    async fn snapshot(&self, uuid: &str, dest: &std::path::Path) -> anyhow::Result<String> {
        self.inner.snapshot(uuid, dest).await
    }
    async fn attach_interface(&self, uuid: &str, iface: &GuestInterface) -> anyhow::Result<()> {
        self.inner.attach_interface(uuid, iface).await
    }
    async fn detach_interface(&self, uuid: &str, port_id: &str) -> anyhow::Result<()> {
        self.inner.detach_interface(uuid, port_id).await
    }
    async fn attach_volume(&self, uuid: &str, volume: &GuestVolume) -> anyhow::Result<()> {
        self.inner.attach_volume(uuid, volume).await
    }
    async fn detach_volume(&self, uuid: &str, volume_id: &str) -> anyhow::Result<()> {
        self.inner.detach_volume(uuid, volume_id).await
    }
}

async fn image(c: &Cloud, admin: &str, name: &str, format: &str, data: &[u8], props: Value) -> String {
    let container = if matches!(format, "aki" | "ari") { format } else { "bare" };
    let mut fields =
        json!({"name": name, "disk_format": format, "container_format": container, "visibility": "public"});
    for (k, v) in props.as_object().unwrap() {
        fields[k] = v.clone();
    }
    let id = c.create_image(admin, fields).await["id"].as_str().unwrap().to_string();
    let r = c.upload(admin, &id, data.to_vec()).await;
    assert_eq!(r.status, 204, "{}", r.text);
    id
}

fn ready(s: &Value) -> bool {
    (s["status"] == "ACTIVE" && s["OS-EXT-STS:task_state"].is_null()) || s["status"] == "ERROR"
}

#[tokio::test]
async fn a_host_that_boots_images_gets_them_once_and_a_full_guest_spec() {
    for (backend, url) in fresh_urls().await {
        let mut c = Cloud::start_compute(backend, &url, &[], |cfg| cfg.compute.networking = true).await;
        let cfg = c.identity.cfg.clone();
        let driver = Arc::new(NeedsImages {
            inner: stratus_compute::roles::driver(&cfg, "fake", HOST).unwrap(),
            specs: Mutex::new(Vec::new()),
        });
        let shared = c.compute.as_ref().unwrap().shared.clone();
        let host = shared.start_compute(HOST, driver.clone()).await.unwrap();
        c.start_network_agents(&[HOST]).await;
        let admin = c.admin_token().await;

        let kernel = image(&c, &admin, "k", "aki", b"a kernel", json!({})).await;
        let ramdisk = image(&c, &admin, "r", "ari", b"a ramdisk", json!({})).await;
        let disk = vec![9u8; 64 * 1024];
        let props = json!({"kernel_id": kernel, "ramdisk_id": ramdisk, "os_command_line": "console=ttyS0"});
        let boot = image(&c, &admin, "tiny", "raw", &disk, props).await;
        let other = image(&c, &admin, "other", "qcow2", &qcow2_header(), json!({"hw_disk_bus": "virtio"})).await;

        let r = c.neutron(Method::POST, "/networks", &admin, Some(json!({"network": {"name": "net"}}))).await;
        let net = r.body["network"]["id"].as_str().unwrap().to_string();
        let body = json!({"subnet": {"network_id": net, "cidr": "10.9.0.0/24", "ip_version": 4}});
        assert_eq!(c.neutron(Method::POST, "/subnets", &admin, Some(body)).await.status, 201);
        let r = c.nova(Method::POST, "/os-keypairs", &admin, "2.10", Some(json!({"keypair": {"name": "k1"}}))).await;
        assert_eq!(r.status, 201, "{}", r.text);

        // two servers built side by side
        let body = json!({"server": {"name": "pair", "imageRef": boot, "flavorRef": "1", "key_name": "k1",
            "networks": [{"uuid": net}], "min_count": 2, "max_count": 2}});
        let r = c.nova(Method::POST, "/servers", &admin, MV, Some(body)).await;
        assert_eq!(r.status, 202, "{backend}: {}", r.text);
        let l = c.nova(Method::GET, "/servers/detail?name=^pair-", &admin, MV, None).await;
        let ids: Vec<String> =
            l.body["servers"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect();
        assert_eq!(ids.len(), 2);
        let mut servers = Vec::new();
        for id in &ids {
            let s = c.wait_server(&admin, id, 30, ready).await;
            assert_eq!(s["status"], "ACTIVE", "{backend}: {s}");
            servers.push(s);
        }

        // the cache holds each image once (data and record), nothing half-written
        let cache = cfg.data_dir.join("compute-image-cache");
        assert_eq!(host.image_cache.dir(), cache.as_path());
        let mut files: Vec<String> =
            std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        files.sort();
        let mut want: Vec<String> =
            [&boot, &kernel, &ramdisk].iter().flat_map(|i| [i.to_string(), format!("{i}.json")]).collect();
        want.sort();
        assert_eq!(files, want, "{backend}");

        let specs = driver.specs.lock().unwrap().clone();
        assert_eq!(specs.len(), 2, "{backend}");
        let mut launch: Vec<i64> = specs.iter().map(|s| s.launch_index).collect();
        launch.sort();
        assert_eq!(launch, vec![0, 1]);
        for s in &specs {
            let server = servers.iter().find(|x| x["id"] == s.uuid.as_str()).unwrap();
            assert_eq!(s.image_path, Some(cache.join(&boot)));
            assert_eq!(std::fs::read(s.image_path.as_ref().unwrap()).unwrap(), disk);
            assert_eq!(s.image_format.as_deref(), Some("raw"));
            assert_eq!(s.kernel_path, Some(cache.join(&kernel)));
            assert_eq!(std::fs::read(s.kernel_path.as_ref().unwrap()).unwrap(), b"a kernel");
            assert_eq!(s.ramdisk_path, Some(cache.join(&ramdisk)));
            assert_eq!(s.image_properties["os_command_line"], "console=ttyS0");
            assert_eq!(s.key_name.as_deref(), Some("k1"));
            assert!(s.key_data.as_deref().unwrap_or("").starts_with("ssh-rsa "), "{:?}", s.key_data);
            assert_eq!(s.project_id, server["tenant_id"].as_str().unwrap());
            assert_eq!(s.availability_zone, "nova");
            assert_eq!(s.interfaces.len(), 1, "{backend}: {:?}", s.interfaces);
            let addr = &server["addresses"]["net"][0];
            assert_eq!(s.interfaces[0].network_id, net);
            assert_eq!(s.interfaces[0].ips, vec![addr["addr"].as_str().unwrap().to_string()]);
            assert_eq!(s.interfaces[0].mac_address, addr["OS-EXT-IPS-MAC:mac_addr"].as_str().unwrap());
        }

        // a rebuild boots the new image, with its properties and without the old kernel
        let id = &ids[0];
        let r = c
            .nova(
                Method::POST,
                &format!("/servers/{id}/action"),
                &admin,
                MV,
                Some(json!({"rebuild": {"imageRef": other}})),
            )
            .await;
        assert_eq!(r.status, 202, "{backend}: {}", r.text);
        let s = c.wait_server(&admin, id, 30, |s| ready(s) && s["image"]["id"] == other.as_str()).await;
        assert_eq!(s["status"], "ACTIVE", "{backend}: {s}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let spec = loop {
            if let Some(x) = driver.specs.lock().unwrap().get(2).cloned() {
                break x;
            }
            assert!(std::time::Instant::now() < deadline, "{backend}: no spawn for the rebuild");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        assert_eq!(&spec.uuid, id);
        assert_eq!(spec.image_id, other);
        assert_eq!(spec.image_path, Some(cache.join(&other)));
        assert_eq!(spec.image_format.as_deref(), Some("qcow2"));
        assert_eq!((spec.kernel_path.clone(), spec.ramdisk_path.clone()), (None::<PathBuf>, None::<PathBuf>));
        assert_eq!(spec.image_properties.get("hw_disk_bus"), Some(&json!("virtio")));
        assert!(spec.image_properties.get("kernel_id").is_none(), "{:?}", spec.image_properties);
    }
}

/// A small valid qcow2 image (header only, 1 MiB virtual), made by qemu-img.
fn qcow2_header() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.qcow2");
    let out = std::process::Command::new("qemu-img").args(["create", "-q", "-f", "qcow2"]).arg(&p).arg("1M").output();
    let out = out.unwrap_or_else(|e| panic!("qemu-img is needed (install qemu-utils): {e}"));
    assert!(out.status.success());
    std::fs::read(p).unwrap()
}
