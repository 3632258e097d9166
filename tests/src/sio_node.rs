//! Runs `sio-node` (crate `demo`) processes for end-to-end suites.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value as Json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::node::free_port;

/// A running `sio-node`, killed on drop.
#[derive(Debug)]
pub struct SioNode {
    /// Its HTTP / Socket.IO port on 127.0.0.1.
    pub port: u16,
    child: Child,
    /// Its stderr lines, when started with [`SioNode::start_logging`].
    logs: Arc<Mutex<Vec<String>>>,
}

/// The path of a binary of this workspace, next to the running test's directory
/// (`target/<profile>/<name>`). `cargo test --workspace` builds every binary first; run
/// alone, a suite needs `cargo build -p <crate>` of the binary's crate.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(path.exists(), "{} is missing: build it first (cargo build -p demo)", path.display());
    path
}

impl SioNode {
    /// Starts `bin` (`sio-node`) as node `name` on `adapter` and waits until it listens.
    pub async fn start(bin: &Path, name: &str, adapter: &str) -> SioNode {
        Self::start_with(bin, name, adapter, &[]).await
    }

    /// Like [`SioNode::start`], with more command-line arguments.
    pub async fn start_with(bin: &Path, name: &str, adapter: &str, extra: &[&str]) -> SioNode {
        Self::spawn(bin, name, adapter, extra, "warn", false).await
    }

    /// Like [`SioNode::start_with`], logging at `rust_log` into [`SioNode::log_lines`]
    /// instead of the test's stderr.
    pub async fn start_logging(bin: &Path, name: &str, adapter: &str, extra: &[&str], rust_log: &str) -> SioNode {
        Self::spawn(bin, name, adapter, extra, rust_log, true).await
    }

    async fn spawn(bin: &Path, name: &str, adapter: &str, extra: &[&str], rust_log: &str, capture: bool) -> SioNode {
        let port = free_port();
        let mut child = Command::new(bin)
            .args(["--port", &port.to_string(), "--id", name, "--adapter", adapter])
            .args(extra)
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::null())
            .stderr(if capture { Stdio::piped() } else { Stdio::inherit() })
            .kill_on_drop(true)
            .spawn()
            .expect("spawn sio-node");
        let logs = Arc::new(Mutex::new(Vec::new()));
        if let Some(stderr) = child.stderr.take() {
            let logs = Arc::clone(&logs);
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    logs.lock().unwrap_or_else(PoisonError::into_inner).push(line);
                }
            });
        }
        // like wait_for_port, but a node that exits (a refused --adapter) fails at once,
        // with its last lines when they are kept
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let log = logs.lock().unwrap_or_else(PoisonError::into_inner).join("\n");
                panic!("sio-node {name} exited ({status}) before it listened:\n{log}");
            }
            assert!(tokio::time::Instant::now() < deadline, "sio-node {name} did not listen on {port} within 10 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        SioNode { port, child, logs }
    }

    /// The stderr lines so far (only with [`SioNode::start_logging`]).
    pub fn log_lines(&self) -> Vec<String> {
        self.logs.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Its resident set size in KiB (`VmRSS` of `/proc/<pid>/status`).
    pub fn rss_kib(&self) -> u64 {
        let pid = self.child.id().expect("sio-node is running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status")
    }

    /// Sends `signal` (a `kill -s` name: `TERM`, `STOP`, `CONT`, ...) to the process.
    pub async fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("sio-node is running");
        crate::send_signal(pid, signal);
    }

    /// Waits up to `within` for the process to exit; its status, or `None` if it is still
    /// running.
    pub async fn exited(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        tokio::time::timeout(within, self.child.wait()).await.ok().map(|r| r.expect("wait for sio-node"))
    }

    /// `GET path` on the node's HTTP port: the status code and the body. Panics if the
    /// node does not answer within 10 s.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let port = self.port;
        let request = async move {
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect to sio-node");
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
                .await
                .expect("send request");
            let mut response = String::new();
            s.read_to_string(&mut response).await.expect("read response");
            response
        };
        let response = tokio::time::timeout(Duration::from_secs(10), request)
            .await
            .unwrap_or_else(|_| panic!("GET {path}: no answer within 10 s"));
        let status = response.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
        (status, body)
    }

    /// The value of one series of `GET /metrics`, named with its labels
    /// (`socketio_cluster_received_total{namespace="/"}`); panics if it is absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let (_, body) = self.get("/metrics").await;
        body.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no {series} in {body}"))
    }

    /// `GET path` on the node's HTTP port, as JSON.
    pub async fn get_json(&self, path: &str) -> Json {
        let (_, body) = self.get(path).await;
        let start = body.find('{').unwrap_or_else(|| panic!("GET {path}: no JSON in {body:?}"));
        serde_json::from_str(body[start..].trim()).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }
}
