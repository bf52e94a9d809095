//! A long-lived helper of the agent (dnsmasq, radvd) in a namespace,
//! supervised: restarted (backing off up to 10 s) when it dies, stopped for
//! good with [`Supervised::stop`] or when dropped (a dropped agent's helpers
//! must not go on beside the next agent's).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

pub struct Supervised {
    /// The pid file the helper writes once it handles its signals.
    pid_file: PathBuf,
    pid: Arc<AtomicI32>,
    stopped: Arc<AtomicBool>,
    /// A restart asked for: the next exit is expected (no back-off).
    restarting: Arc<AtomicBool>,
    /// The supervisor (None once stopped).
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Send `sig` to process `pid` (nothing when it is gone).
pub fn signal(pid: i32, sig: rustix::process::Signal) {
    if let Some(p) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(p, sig);
    }
}

impl Supervised {
    /// Run `argv` (in the foreground: the supervisor waits on it) in
    /// namespace `ns`, its standard error appended to `log`; it writes
    /// `pid_file` once up. `what` names it in the agent's log.
    pub fn start(what: &'static str, ns: &str, argv: Vec<String>, log: PathBuf, pid_file: PathBuf) -> Supervised {
        let mut cmd = vec!["netns".to_string(), "exec".into(), ns.to_string()];
        cmd.extend(argv);
        let pid = Arc::new(AtomicI32::new(0));
        let stopped = Arc::new(AtomicBool::new(false));
        let restarting = Arc::new(AtomicBool::new(false));
        let (p, st, rs, ns_name) = (pid.clone(), stopped.clone(), restarting.clone(), ns.to_string());
        let task = tokio::spawn(async move {
            let mut delay = Duration::from_millis(200);
            while !st.load(Ordering::SeqCst) {
                let err = std::fs::OpenOptions::new().create(true).append(true).open(&log).ok();
                let mut c = tokio::process::Command::new("ip");
                c.args(&cmd).stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).kill_on_drop(true);
                if let Some(f) = err {
                    c.stderr(f);
                }
                match c.spawn() {
                    Ok(mut child) => {
                        let since = std::time::Instant::now();
                        p.store(child.id().map(|x| x as i32).unwrap_or(0), Ordering::SeqCst);
                        let status = child.wait().await;
                        p.store(0, Ordering::SeqCst);
                        if st.load(Ordering::SeqCst) {
                            break;
                        }
                        if rs.swap(false, Ordering::SeqCst) {
                            continue;
                        }
                        tracing::warn!(namespace = %ns_name, ?status, "{what} exited: restarting it");
                        if since.elapsed() > Duration::from_secs(60) {
                            // it ran a good while: no back-off from old failures
                            delay = Duration::from_millis(200);
                        }
                    }
                    Err(e) => tracing::warn!(namespace = %ns_name, error = %e, "could not start {what}"),
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        });
        Supervised { pid_file, pid, stopped, restarting, task: Some(task) }
    }

    /// The running process, if any.
    pub fn pid(&self) -> Option<i32> {
        Some(self.pid.load(Ordering::SeqCst)).filter(|p| *p > 0)
    }

    /// Whether the running process wrote its pid file (a signal before it
    /// set up its handlers would kill it: SIGHUP's default is to exit).
    fn ready(pid_file: &std::path::Path, pid: i32) -> bool {
        std::fs::read_to_string(pid_file).ok().and_then(|s| s.trim().parse::<i32>().ok()) == Some(pid)
    }

    /// Signal the running process (to reload its files); one still starting
    /// is signalled once it is up (within 5 s).
    pub fn signal(&self, sig: rustix::process::Signal) {
        let Some(pid) = self.pid() else { return };
        if Self::ready(&self.pid_file, pid) {
            signal(pid, sig);
            return;
        }
        let (pid_file, current) = (self.pid_file.clone(), self.pid.clone());
        tokio::spawn(async move {
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if current.load(Ordering::SeqCst) != pid {
                    // restarted meanwhile: the new one reads the files anew
                    return;
                }
                if Self::ready(&pid_file, pid) {
                    signal(pid, sig);
                    return;
                }
            }
        });
    }

    /// Start it anew (TERM; the supervisor starts it again at once).
    pub fn restart(&self) {
        if let Some(pid) = self.pid() {
            self.restarting.store(true, Ordering::SeqCst);
            signal(pid, rustix::process::Signal::TERM);
        }
    }

    /// Stop it for good (TERM, then the supervisor ends within 3 s).
    pub async fn stop(mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.signal(rustix::process::Signal::TERM);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout_at(deadline, &mut task).await.is_err()
        {
            task.abort();
        }
    }
}
