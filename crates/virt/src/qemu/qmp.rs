//! A small typed client of the QEMU Machine Protocol (QMP) over a unix
//! socket: JSON lines, a greeting, `qmp_capabilities`, then commands whose
//! replies may be preceded by asynchronous events, which are kept for
//! [`Qmp::wait_event`].
//!
//! Written here rather than taken from a crate: the one QMP crate (`qapi`)
//! generates the whole schema and pulls in a code generator, while the driver
//! uses a dozen commands.

use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

/// How long one command may take to be answered.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// A QMP error reply (`{"error": {"class", "desc"}}`).
#[derive(Debug)]
pub struct QmpError {
    pub class: String,
    pub desc: String,
}

impl std::fmt::Display for QmpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "QMP {}: {}", self.class, self.desc)
    }
}

impl std::error::Error for QmpError {}

/// One QMP session (QEMU serves one client at a time per socket).
pub struct Qmp {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    events: VecDeque<Value>,
    next_id: u64,
}

impl Qmp {
    /// Connect and negotiate capabilities.
    pub async fn connect(socket: &Path) -> anyhow::Result<Qmp> {
        let stream = tokio::time::timeout(Duration::from_secs(5), UnixStream::connect(socket))
            .await
            .map_err(|_| anyhow!("QMP socket {} did not accept within 5 s", socket.display()))?
            .with_context(|| format!("QMP socket {}", socket.display()))?;
        let (r, w) = stream.into_split();
        let mut q = Qmp { reader: BufReader::new(r), writer: w, events: VecDeque::new(), next_id: 0 };
        let greeting = q.read_line(REPLY_TIMEOUT).await?;
        if greeting.get("QMP").is_none() {
            bail!("not a QMP greeting: {greeting}");
        }
        q.execute("qmp_capabilities", None).await?;
        Ok(q)
    }

    async fn read_line(&mut self, timeout: Duration) -> anyhow::Result<Value> {
        let mut line = String::new();
        let n = tokio::time::timeout(timeout, self.reader.read_line(&mut line))
            .await
            .map_err(|_| anyhow!("QMP: no answer within {timeout:?}"))??;
        if n == 0 {
            bail!("QMP: QEMU closed the connection");
        }
        serde_json::from_str(&line).with_context(|| format!("QMP: not JSON: {line:?}"))
    }

    /// Run a command; its `return` value, or its error as a [`QmpError`].
    pub async fn execute(&mut self, command: &str, arguments: Option<Value>) -> anyhow::Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"execute": command, "id": id});
        if let Some(a) = arguments {
            msg["arguments"] = a;
        }
        let mut bytes = serde_json::to_vec(&msg)?;
        bytes.push(b'\n');
        self.writer.write_all(&bytes).await.context("QMP: write")?;
        loop {
            let v = self.read_line(REPLY_TIMEOUT).await.with_context(|| format!("QMP {command}"))?;
            if v.get("event").is_some() {
                self.events.push_back(v);
                continue;
            }
            if v.get("id").and_then(Value::as_u64) != Some(id) {
                continue;
            }
            if let Some(e) = v.get("error") {
                return Err(QmpError {
                    class: e["class"].as_str().unwrap_or("GenericError").to_string(),
                    desc: e["desc"].as_str().unwrap_or("").to_string(),
                }
                .into());
            }
            return Ok(v.get("return").cloned().unwrap_or(Value::Null));
        }
    }

    /// Wait for an event named `name` whose `data` satisfies `pred` (events
    /// that came with earlier replies count).
    pub async fn wait_event(
        &mut self,
        name: &str,
        pred: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let matches = |v: &Value| v["event"] == name && pred(&v["data"]);
        if let Some(i) = self.events.iter().position(matches) {
            return Ok(self.events.remove(i).unwrap_or(Value::Null));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                bail!("QMP: no {name} event within {timeout:?}");
            }
            let v = self.read_line(left).await.map_err(|e| anyhow!("waiting for {name}: {e:#}"))?;
            if matches(&v) {
                return Ok(v);
            }
            if v.get("event").is_some() {
                self.events.push_back(v);
            }
        }
    }

    /// `query-status`'s `status` (`running`, `paused`, `inmigrate`, ...).
    pub async fn status(&mut self) -> anyhow::Result<String> {
        let r = self.execute("query-status", None).await?;
        Ok(r["status"].as_str().unwrap_or("unknown").to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::UnixListener;

    /// A fake QEMU: greets, answers by id, sends an event before one reply.
    #[tokio::test]
    async fn replies_errors_and_events() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let (r, mut w) = s.into_split();
            let mut r = BufReader::new(r);
            w.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n").await.unwrap();
            let mut line = String::new();
            while r.read_line(&mut line).await.unwrap() > 0 {
                let v: Value = serde_json::from_str(&line).unwrap();
                line.clear();
                let id = v["id"].clone();
                let reply = match v["execute"].as_str().unwrap() {
                    "qmp_capabilities" => json!({"return": {}, "id": id}),
                    "query-status" => json!({"return": {"status": "paused", "running": false}, "id": id}),
                    "device_del" => {
                        let ev = json!({"event": "DEVICE_DELETED", "data": {"device": "vol1"}});
                        w.write_all(format!("{ev}\n").as_bytes()).await.unwrap();
                        json!({"return": {}, "id": id})
                    }
                    _ => json!({"error": {"class": "CommandNotFound", "desc": "nope"}, "id": id}),
                };
                w.write_all(format!("{reply}\n").as_bytes()).await.unwrap();
            }
        });
        let mut q = Qmp::connect(&sock).await.unwrap();
        assert_eq!(q.status().await.unwrap(), "paused");
        let e = q.execute("bogus", None).await.unwrap_err();
        let e = e.downcast_ref::<QmpError>().unwrap();
        assert_eq!(e.class, "CommandNotFound");
        q.execute("device_del", Some(json!({"id": "vol1"}))).await.unwrap();
        let ev = q.wait_event("DEVICE_DELETED", |d| d["device"] == "vol1", Duration::from_secs(1)).await.unwrap();
        assert_eq!(ev["data"]["device"], "vol1");
        let none = q.wait_event("DEVICE_DELETED", |_| true, Duration::from_millis(100)).await;
        assert!(none.is_err());
        drop(q);
        server.await.unwrap();
    }
}
