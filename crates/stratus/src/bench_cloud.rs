//! A throwaway `stratus up` (this same program) for the benchmarks that go
//! through the REST APIs: free ports, a temporary data dir, SQLite or a given
//! database, the caller's extra settings; killed and removed when dropped.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

pub struct BenchCloud {
    child: std::process::Child,
    dir: std::path::PathBuf,
    pub http: reqwest::Client,
    pub identity: String,
    pub image: String,
    /// `http://127.0.0.1:port/v2.1`
    pub compute: String,
    /// `http://127.0.0.1:port/v2.0`
    pub network: String,
    /// `http://127.0.0.1:port/v3`
    pub volume: String,
    /// The cloud's data dir (volume files live under `volumes/<host>/`).
    pub data_dir: std::path::PathBuf,
    /// An admin token (project scoped to admin).
    pub token: String,
}

impl Drop for BenchCloud {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // guests' QEMU processes outlive their compute host by design: a
        // throwaway cloud takes its own along (their paths are under its dir)
        let _ = std::process::Command::new("pkill").arg("-9").arg("-f").arg(self.dir.as_os_str()).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0").context("no free port")?.local_addr()?.port())
}

/// The `p`-quantile of sorted values.
pub fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v[(((v.len() - 1) as f64) * p).round() as usize]
}

impl BenchCloud {
    /// Start a cloud; ready once an admin token works and `ready` (given the
    /// cloud and the token) says so.
    pub async fn start<F, Fut>(
        name: &str,
        database_url: Option<&str>,
        env: &[(&str, String)],
        pool: usize,
        ready: F,
    ) -> anyhow::Result<BenchCloud>
    where
        F: Fn(reqwest::Client, String, String) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let exe = std::env::current_exe()?;
        let dir = std::env::temp_dir().join(format!(
            "stratus-bench-{name}-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir)?;
        let (idp, imp, plp, cop, nep, vop) = (port()?, port()?, port()?, port()?, port()?, port()?);
        let log = std::fs::File::create(dir.join("server.log"))?;
        let mut cmd = std::process::Command::new(&exe);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("STRATUS_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("up")
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--admin-password=bench-admin")
            .env("STRATUS_IDENTITY__LISTEN", format!("127.0.0.1:{idp}"))
            .env("STRATUS_IMAGE__LISTEN", format!("127.0.0.1:{imp}"))
            .env("STRATUS_PLACEMENT__LISTEN", format!("127.0.0.1:{plp}"))
            .env("STRATUS_COMPUTE__LISTEN", format!("127.0.0.1:{cop}"))
            .env("STRATUS_NETWORK__LISTEN", format!("127.0.0.1:{nep}"))
            .env("STRATUS_VOLUME__LISTEN", format!("127.0.0.1:{vop}"))
            .env("STRATUS_IDENTITY__PASSWORD_HASH_ROUNDS", "4")
            // the control plane is measured, not guests booting
            .env("STRATUS_COMPUTE__DRIVER", "fake")
            .env("STRATUS_LOG", "warn")
            .stdout(log.try_clone()?)
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some(u) = database_url {
            cmd.env("STRATUS_DATABASE__URL", u);
        }
        let child = cmd.spawn().context("cannot start stratus up")?;
        let mut cloud = BenchCloud {
            child,
            dir: dir.clone(),
            http: reqwest::Client::builder().pool_max_idle_per_host(pool * 2).build()?,
            identity: format!("http://127.0.0.1:{idp}"),
            image: format!("http://127.0.0.1:{imp}"),
            compute: format!("http://127.0.0.1:{cop}/v2.1"),
            network: format!("http://127.0.0.1:{nep}/v2.0"),
            volume: format!("http://127.0.0.1:{vop}/v3"),
            data_dir: dir.join("data"),
            token: String::new(),
        };
        let started = Instant::now();
        loop {
            if started.elapsed() > Duration::from_secs(300) {
                bail!("the cloud did not come up; see {}", dir.join("server.log").display());
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            let Ok(r) = cloud
                .http
                .post(format!("{}/v3/auth/tokens", cloud.identity))
                .json(&json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": "bench-admin"}}},
                    "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}))
                .send()
                .await
            else {
                continue;
            };
            let Some(t) = r.headers().get("x-subject-token").and_then(|v| v.to_str().ok()).map(str::to_string) else {
                continue;
            };
            if ready(cloud.http.clone(), cloud.compute.clone(), t.clone()).await {
                cloud.token = t;
                break;
            }
        }
        println!("cloud up in {:.1} s (pid {})", started.elapsed().as_secs_f64(), cloud.child.id());
        Ok(cloud)
    }

    /// The database kind for reports.
    pub fn db_kind(database_url: Option<&str>) -> &str {
        database_url.map(|u| u.split("://").next().unwrap_or("?")).unwrap_or("sqlite")
    }

    /// POST JSON with the admin token; the parsed answer (error on a non-2xx).
    pub async fn post(&self, url: &str, body: &Value) -> anyhow::Result<Value> {
        let r = self.http.post(url).header("x-auth-token", &self.token).json(body).send().await?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST {url}: {status}: {v}");
        }
        Ok(v)
    }
}
