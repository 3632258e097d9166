//! Runs a Node.js peer (`tests/node/peer.js`: a socket.io server with the Redis adapter,
//! its clients, and the Redis emitter) and talks to it in JSON lines over stdin/stdout.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value as Json, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::oneshot;

type Waiters = Arc<Mutex<HashMap<u64, oneshot::Sender<Json>>>>;

/// A running Node.js peer.
#[derive(Debug)]
pub struct NodePeer {
    name: String,
    child: Child,
    stdin: ChildStdin,
    waiters: Waiters,
    next: u64,
}

/// The directory of the Node.js scripts.
pub fn scripts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node")
}

/// `node tests/node/<name> '<config>'` with the test modules on `NODE_PATH`, its stderr
/// inherited, killed on drop.
pub fn script(name: &str, config: &Json) -> Command {
    let mut cmd = Command::new("node");
    cmd.arg(scripts_dir().join(name))
        .arg(config.to_string())
        .env("NODE_PATH", crate::env("SIO_NODE_MODULES"))
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    cmd
}

impl NodePeer {
    /// Starts `peer.js` with `config` (see the script for the keys) and waits until it
    /// reports ready.
    pub async fn start(name: &str, config: Json) -> NodePeer {
        let mut child = script("peer.js", &config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn node (is Node.js installed? scripts/services.sh up node)");
        let stdout = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take().expect("stdin");
        let waiters: Waiters = Arc::default();
        let (ready_tx, ready_rx) = oneshot::channel();
        let w = Arc::clone(&waiters);
        let peer_name = name.to_owned();
        tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(msg) = serde_json::from_str::<Json>(&line) else {
                    eprintln!("[{peer_name}] {line}");
                    continue;
                };
                if msg.get("ready").is_some() {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(msg);
                    }
                } else if let Some(id) = msg.get("id").and_then(Json::as_u64) {
                    if let Some(tx) = w.lock().unwrap().remove(&id) {
                        let _ = tx.send(msg);
                    }
                } else {
                    eprintln!("[{peer_name}] {line}");
                }
            }
        });
        let ready = tokio::time::timeout(Duration::from_secs(20), ready_rx)
            .await
            .unwrap_or_else(|_| panic!("node peer {name} did not start within 20 s"))
            .unwrap_or_else(|_| panic!("node peer {name} exited before it was ready"));
        assert!(ready.get("error").is_none(), "node peer {name}: {ready}");
        NodePeer { name: name.to_owned(), child, stdin, waiters, next: 0 }
    }

    /// Sends a command and returns its `result` (panics on an `error` or after 20 s).
    pub async fn call(&mut self, op: &str, args: Json) -> Json {
        match self.try_call(op, args).await {
            Ok(result) => result,
            Err(e) => panic!("node peer {}: {op} failed: {e}", self.name),
        }
    }

    /// Like [`NodePeer::call`] but returns the error text instead of panicking.
    pub async fn try_call(&mut self, op: &str, args: Json) -> Result<Json, String> {
        self.next += 1;
        let id = self.next;
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().unwrap().insert(id, tx);
        let line = format!("{}\n", json!({"id": id, "op": op, "args": args}));
        self.stdin.write_all(line.as_bytes()).await.map_err(|e| e.to_string())?;
        self.stdin.flush().await.map_err(|e| e.to_string())?;
        let reply = tokio::time::timeout(Duration::from_secs(20), rx)
            .await
            .map_err(|_| format!("no answer to {op} within 20 s"))?
            .map_err(|_| "the peer exited".to_owned())?;
        match reply.get("error") {
            Some(e) => Err(e.to_string()),
            None => Ok(reply.get("result").cloned().unwrap_or(Json::Null)),
        }
    }

    /// What this peer's clients received of `event`: (client name, arguments), one entry
    /// per delivery.
    pub async fn received(&mut self, event: &str) -> Vec<(String, Vec<Json>)> {
        let got = self.call("received", json!({ "event": event })).await;
        let mut out = Vec::new();
        for (client, events) in got.as_object().expect("object") {
            for e in events.as_array().expect("array") {
                out.push((client.clone(), e["args"].as_array().cloned().unwrap_or_default()));
            }
        }
        out
    }

    /// Names of this peer's clients that received `event`, one per delivery, sorted.
    pub async fn got(&mut self, event: &str) -> Vec<String> {
        let mut names: Vec<String> = self.received(event).await.into_iter().map(|(n, _)| n).collect();
        names.sort();
        names
    }

    /// Waits (up to `within`) until `event` made as many deliveries as `want` names, then
    /// asserts they went to exactly `want` (sorted client names, one per delivery).
    pub async fn wait_got(&mut self, event: &str, want: &[&str], within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let g = self.got(event).await;
            if g.len() >= want.len() {
                assert_eq!(g, want, "{event}");
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{event}: only {g:?} of {want:?}");
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    /// Stops the peer.
    pub async fn stop(mut self) {
        let _ = self.call("close", Json::Null).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

/// Waits (up to `within`) until something accepts TCP connections on 127.0.0.1:`port`.
pub async fn wait_for_port(port: u16, within: Duration, what: &str) {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "{what} did not listen on {port} within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}
