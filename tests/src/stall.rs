//! A broker that stalls under traffic, for any broker: 3 `sio-node` on it, one client
//! each (`NodePeer`), an emitter publishing every 20 ms; the broker is stopped (`stop`,
//! e.g. SIGSTOP) for [`STALL`], then resumed (`resume`). During the stall every node keeps
//! serving its clients and `GET /health`, a cluster request made by a client completes by
//! its timeout with an error (or an incomplete answer), a `sio --timeout 2000 count`
//! returns within its timeout plus its 3 s connect bound (and 1 s to start), and every publish fails or
//! completes within a bound; after `resume` every node receives again within a bound. The
//! figures are printed. Each broker's test (`tests/tests/broker_stall.rs`) says how to
//! stop and resume its broker (never a shared one) and its bounds.

#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use socketio_emitter::Emitter;

use crate::node::NodePeer;
use crate::sio_node::{SioNode, workspace_bin};

/// How long the broker stays stopped.
pub const STALL: Duration = Duration::from_secs(5);

/// The `--timeout` of the `sio` call made during the stall.
const SIO_TIMEOUT: Duration = Duration::from_millis(2000);
/// `sio`'s documented connect bound (`--connect-timeout`, default 3 s).
const SIO_CONNECT_BOUND: Duration = Duration::from_millis(3000);

/// One broker's stall case.
#[derive(Debug, Clone)]
pub struct StallCase {
    /// The broker's name, for the figures.
    pub broker: String,
    /// The adapter URL of the nodes and the emitter (without `request_timeout_ms`).
    pub url: String,
    /// The cluster request timeout of the nodes (`request_timeout_ms`).
    pub request_timeout: Duration,
    /// What one publish may take on the stalled broker (its command timeout and a margin):
    /// also what a request may take before its own timeout starts (counting the servers;
    /// publishing the request is within its timeout).
    pub publish_bound: Duration,
    /// From `resume` to every node receiving again.
    pub recovery_bound: Duration,
}

/// What a stall case measured.
#[derive(Debug, Clone)]
pub struct StallFigures {
    /// Publishes of the traffic that completed, and failed.
    pub published: u64,
    /// Publishes of the traffic that failed.
    pub failed: u64,
    /// The slowest publish of the traffic.
    pub slowest_publish: Duration,
    /// What the cluster request made during the stall took.
    pub request: Duration,
    /// From `resume` to every node receiving again.
    pub recovery: Duration,
}

/// Three `sio-node` (A, B, C) on the cluster at `url`, and a Node.js peer holding one
/// socket.io client on each (named a, b, c).
pub async fn three_nodes_with_clients(url: &str) -> ([SioNode; 3], NodePeer) {
    let bin = workspace_bin("sio-node");
    let nodes = [
        SioNode::start(&bin, "A", url).await,
        SioNode::start(&bin, "B", url).await,
        SioNode::start(&bin, "C", url).await,
    ];
    let mut c = NodePeer::start("clients", json!({"name": "clients", "server": false})).await;
    c.call(
        "clients",
        json!({"clients": [
            {"name": "a", "port": nodes[0].port},
            {"name": "b", "port": nodes[1].port},
            {"name": "c", "port": nodes[2].port},
        ]}),
    )
    .await;
    (nodes, c)
}

/// Runs `case`: see the module documentation.
pub async fn stalled_broker_under_traffic(
    case: &StallCase,
    stop: impl AsyncFnOnce(),
    resume: impl AsyncFnOnce(),
) -> StallFigures {
    let StallCase { broker, url, request_timeout, publish_bound, recovery_bound } = case;
    let sep = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{sep}request_timeout_ms={}", request_timeout.as_millis());
    let (nodes, mut c) = three_nodes_with_clients(&url).await;
    let io = Emitter::connect(&url).await.expect("emitter");
    io.emit("before", ()).await.expect("emit");
    c.wait_got("before", &["a", "b", "c"], Duration::from_secs(10)).await;

    // traffic: one emit every 20 ms, each timed
    let (stop_traffic, sent, failed, slowest) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let traffic = {
        let (io, stop, sent, failed, slowest) =
            (io.clone(), stop_traffic.clone(), sent.clone(), failed.clone(), slowest.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let ok = io.emit("tick", ()).await.is_ok();
                slowest.fetch_max(t.elapsed().as_millis() as u64, Ordering::Relaxed);
                if ok { &sent } else { &failed }.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;

    stop().await;
    let stalled = Instant::now();
    // nodes serve their clients and their liveness endpoint
    for (node, client) in nodes.iter().zip(["a", "b", "c"]) {
        let t = Instant::now();
        let health = tokio::time::timeout(Duration::from_secs(2), node.get_json("/health")).await;
        assert!(health.is_ok(), "{broker}: GET /health on {client}'s node did not answer within 2 s during the stall");
        let who = c.call("call", json!({"name": client, "event": "whoami"})).await;
        assert!(who["node"].is_string(), "{broker}: {client}: {who}");
        println!("{broker}: during the stall: {client}'s node answered /health and whoami in {:?}", t.elapsed());
    }
    // a cluster request completes by its timeout, with an error or an incomplete answer;
    // meanwhile `sio --timeout 2000 count` returns within its timeout plus its connect
    // bound (--connect-timeout, 3 s by default)
    let t = Instant::now();
    let sio = async {
        let args = ["--url", url.as_str(), "--timeout", "2000", "count"];
        let out = tokio::process::Command::new(workspace_bin("sio")).args(args).output().await.expect("run sio");
        (out, t.elapsed())
    };
    let fetch = async {
        let fetched = c.call("call", json!({"name": "a", "event": "fetch_sockets", "timeout": 15000})).await;
        (fetched, t.elapsed())
    };
    let ((fetched, request), (sio_out, sio_took)) = tokio::join!(fetch, sio);
    let sio_bound = SIO_TIMEOUT + SIO_CONNECT_BOUND + Duration::from_millis(1000);
    println!(
        "{broker}: during the stall: sio --timeout 2000 count exited {:?} after {sio_took:?}: {}",
        sio_out.status.code(),
        String::from_utf8_lossy(&sio_out.stderr).trim()
    );
    assert!(sio_took < sio_bound, "{broker}: sio took {sio_took:?}, over --timeout + the connect bound + 1 s");
    println!("{broker}: during the stall: fetch_sockets answered in {request:?}: {fetched}");
    assert!(
        fetched["error"].is_string() || fetched["complete"] == json!(false),
        "{broker}: a request during the stall cannot be complete: {fetched}"
    );
    assert!(
        request < *request_timeout + *publish_bound,
        "{broker}: fetch_sockets took {request:?}, over its timeout {request_timeout:?} + {publish_bound:?}"
    );
    let elapsed = stalled.elapsed();
    if elapsed < STALL {
        tokio::time::sleep(STALL - elapsed).await;
    }
    resume().await;
    let resumed = Instant::now();

    // every node receives again
    let deadline = resumed + *recovery_bound;
    let mut round = 0;
    let recovery = loop {
        round += 1;
        let event = format!("after{round}");
        let _ = io.emit(&event, ()).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        if c.got(&event).await == ["a", "b", "c"] {
            break resumed.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "{broker}: not every node receives {recovery_bound:?} after the stall ended"
        );
    };
    println!("{broker}: after the stall: every node received again within {recovery:?}");
    stop_traffic.store(true, Ordering::Relaxed);
    traffic.await.expect("traffic task");
    let figures = StallFigures {
        published: sent.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        slowest_publish: Duration::from_millis(slowest.load(Ordering::Relaxed)),
        request,
        recovery,
    };
    println!(
        "{broker}: traffic: {} publishes completed, {} failed, slowest {:?}",
        figures.published, figures.failed, figures.slowest_publish
    );
    assert!(figures.slowest_publish < *publish_bound, "{broker}: a publish took {:?}", figures.slowest_publish);
    // and the cluster is whole
    let fetched = c.call("call", json!({"name": "a", "event": "fetch_sockets"})).await;
    assert_eq!(fetched["sockets"].as_array().map(Vec::len), Some(3), "{broker}: {fetched}");
    c.stop().await;
    figures
}
