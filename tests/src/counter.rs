//! Runs `tests/node/counter.js`: K `socket.io-client` websocket clients in one Node.js
//! process that join a room and count every delivery (see the script for the protocol).

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value as Json, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::node::script;

/// A running counter process, killed on drop.
#[derive(Debug)]
pub struct Counter {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

/// What the clients of a [`Counter`] received so far.
#[derive(Debug, Clone)]
pub struct Counts {
    /// Deliveries per client.
    pub counts: Vec<u64>,
    /// Whether each client is still connected.
    pub connected: Vec<bool>,
    /// All deliveries.
    pub total: u64,
    /// Deliveries whose sequence number skipped ahead (something before them is missing).
    pub out_of_order: u64,
    /// Deliveries of a sequence number already seen.
    pub dups: u64,
    /// Exact mode ([`Counter::start_exact`]): (sender, seq) pairs some client never
    /// received, summed over the clients.
    pub missing: u64,
    /// Exact mode: deliveries from an unknown sender or with a seq out of range.
    pub unexpected: u64,
}

impl Counter {
    /// Starts `clients` clients on `url` (`http://127.0.0.1:PORT`) that each join `room`
    /// with the `join` contract event and count `event`; returns once all joined.
    pub async fn start(url: &str, clients: usize, room: &str, event: &str) -> Counter {
        Self::spawn(json!({"url": url, "clients": clients, "room": room, "event": event, "join": "join"})).await
    }

    /// Like [`Counter::start`], in exact mode: the event's arguments are `(seq, t_ms or
    /// null, sender)` from senders `0..senders`, each sending seq `0..expect`; every
    /// client checks each (sender, seq) against a bitmap, so [`Counts`] has exact
    /// duplicates, per-sender order and the missing ones.
    pub async fn start_exact(
        url: &str,
        clients: usize,
        room: &str,
        event: &str,
        senders: usize,
        expect: u64,
    ) -> Counter {
        Self::spawn(json!({
            "url": url, "clients": clients, "room": room, "event": event, "join": "join",
            "senders": senders, "expect": expect,
        }))
        .await
    }

    async fn spawn(config: Json) -> Counter {
        let mut child = script("counter.js", &config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn node counter.js");
        let stdin = child.stdin.take().expect("stdin");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut c = Counter { child, stdin, lines };
        let ready = c.read(Duration::from_secs(60)).await;
        assert_eq!(ready["ready"], json!(true), "counter.js did not start: {ready}");
        c
    }

    async fn read(&mut self, within: Duration) -> Json {
        let line = tokio::time::timeout(within, self.lines.next_line())
            .await
            .expect("counter.js did not answer in time")
            .expect("counter.js stdout")
            .expect("counter.js exited");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("counter.js printed {line:?}: {e}"))
    }

    /// Sends `command` and returns its answer.
    pub async fn ask(&mut self, command: &str) -> Json {
        self.stdin.write_all(format!("{command}\n").as_bytes()).await.expect("counter.js stdin");
        self.stdin.flush().await.expect("counter.js stdin");
        self.read(Duration::from_secs(30)).await
    }

    /// The counts so far.
    pub async fn status(&mut self) -> Counts {
        let s = self.ask("status").await;
        let n = |k: &str| s[k].as_u64().unwrap_or(0);
        Counts {
            counts: s["counts"].as_array().expect("counts").iter().map(|c| c.as_u64().unwrap_or(0)).collect(),
            connected: s["connected"]
                .as_array()
                .expect("connected")
                .iter()
                .map(|c| c.as_bool() == Some(true))
                .collect(),
            total: n("total"),
            out_of_order: n("out_of_order"),
            dups: n("dups"),
            missing: n("missing"),
            unexpected: n("unexpected"),
        }
    }

    /// Waits until `total` deliveries arrived, or until nothing arrived for `idle`;
    /// returns the counts either way.
    pub async fn wait_total(&mut self, total: u64, idle: Duration) -> Counts {
        let mut last = self.status().await;
        let mut since = tokio::time::Instant::now();
        while last.total < total {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = self.status().await;
            if now.total != last.total {
                since = tokio::time::Instant::now();
            } else if since.elapsed() >= idle {
                return now;
            }
            last = now;
        }
        last
    }

    /// Disconnects the clients and waits for the process to end.
    pub async fn close(mut self) {
        let _ = self.ask("close").await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}
