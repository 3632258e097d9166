//! A RabbitMQ that stalls under traffic: 3 `sio-node` on a private RabbitMQ node (never
//! the shared one), one client each, an emitter publishing every 20 ms; the node's Erlang
//! VM (`beam.smp`) is stopped with SIGSTOP for 5 s, then resumed. During the stall every
//! node keeps serving its clients and `GET /health`, a cluster request made by a client
//! completes by its timeout with an error, a `sio` command ends within `--connect-timeout`
//! plus `--timeout`, and every publish fails or completes within a bound; after SIGCONT
//! every node receives again within a bound. The figures are printed. (The Redis variant:
//! `broker_stall.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use socketio_cluster_tests::node::NodePeer;
use socketio_cluster_tests::rabbitmq::PrivateRabbitMq;
use socketio_cluster_tests::sio_node::{SioNode, workspace_bin};
use socketio_emitter::Emitter;

const REQUEST_TIMEOUT_MS: u64 = 2000;
/// A publish waits for its confirm at most `operation_timeout_ms` (2 s here); a margin.
const PUBLISH_BOUND: Duration = Duration::from_millis(3500);
/// From SIGCONT to every node receiving again.
const RECOVERY_BOUND: Duration = Duration::from_secs(15);
/// `sio --timeout` during the stall, and its default `--connect-timeout`.
const SIO_TIMEOUT_MS: u64 = 1000;
const SIO_CONNECT_BOUND_MS: u64 = 3000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_rabbitmq_under_traffic() {
    let rabbit = tokio::task::block_in_place(|| PrivateRabbitMq::start_plain("stall"));
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", rabbit.vm_pid())).unwrap_or_default();
    assert_eq!(comm.trim(), "beam.smp", "the pid file names the Erlang VM");
    let url = format!("{}?request_timeout_ms={REQUEST_TIMEOUT_MS}&operation_timeout_ms=2000", rabbit.url());
    let bin = workspace_bin("sio-node");
    let nodes = [
        SioNode::start(&bin, "A", &url).await,
        SioNode::start(&bin, "B", &url).await,
        SioNode::start(&bin, "C", &url).await,
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
    let io = Emitter::connect(&url).await.expect("emitter");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        io.emit("before", ()).await.expect("emit");
        tokio::time::sleep(Duration::from_millis(300)).await;
        if c.got("before").await == ["a", "b", "c"] {
            break;
        }
        assert!(Instant::now() < deadline, "not every node receives before the stall");
    }

    // traffic: one emit every 20 ms, each timed
    let (stop, sent, failed, slowest) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let traffic = {
        let (io, stop, sent, failed, slowest) =
            (io.clone(), stop.clone(), sent.clone(), failed.clone(), slowest.clone());
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

    rabbit.signal("STOP");
    let stalled = Instant::now();
    // nodes serve their clients and their liveness endpoint
    for (node, client) in nodes.iter().zip(["a", "b", "c"]) {
        let t = Instant::now();
        let health = tokio::time::timeout(Duration::from_secs(2), node.get_json("/health")).await;
        assert!(health.is_ok(), "GET /health on {client}'s node did not answer within 2 s during the stall");
        let who = c.call("call", json!({"name": client, "event": "whoami"})).await;
        assert!(who["node"].is_string(), "{client}: {who}");
        println!("during the stall: {client}'s node answered /health and whoami in {:?}", t.elapsed());
    }
    // a cluster request completes by its timeout, with an error or an incomplete answer
    let t = Instant::now();
    let fetched = c.call("call", json!({"name": "a", "event": "fetch_sockets", "timeout": 15000})).await;
    let took = t.elapsed();
    println!("during the stall: fetch_sockets answered in {took:?}: {fetched}");
    assert!(
        fetched["error"].is_string() || fetched["complete"] == json!(false),
        "a request during the stall cannot be complete: {fetched}"
    );
    assert!(took < Duration::from_millis(REQUEST_TIMEOUT_MS) + PUBLISH_BOUND, "fetch_sockets took {took:?}");
    // a new `sio` process ends within its connect bound plus its timeout, with an error
    let t = Instant::now();
    let out = tokio::process::Command::new(workspace_bin("sio"))
        .args(["--url", &url, "--timeout", &SIO_TIMEOUT_MS.to_string(), "count"])
        .output();
    let out = tokio::time::timeout(Duration::from_secs(15), out).await.expect("sio hangs").expect("run sio");
    let took = t.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    println!("during the stall: sio count ended in {took:?} ({}): {}", out.status, err.trim());
    assert!(!out.status.success(), "sio count cannot succeed during the stall");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(!err.contains("guest:guest"), "no password: {err}");
    let bound = Duration::from_millis(SIO_CONNECT_BOUND_MS + SIO_TIMEOUT_MS + 1000);
    assert!(took < bound, "sio count took {took:?}, over {bound:?}");
    let elapsed = stalled.elapsed();
    if elapsed < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_secs(5) - elapsed).await;
    }
    rabbit.signal("CONT");
    let resumed = Instant::now();
    println!("stalled for {:?}", resumed - stalled);

    // every node receives again
    let deadline = resumed + RECOVERY_BOUND;
    let mut round = 0;
    loop {
        round += 1;
        let event = format!("after{round}");
        let _ = io.emit(&event, ()).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        if c.got(&event).await == ["a", "b", "c"] {
            println!("after SIGCONT: every node received again within {:?}", resumed.elapsed());
            break;
        }
        assert!(Instant::now() < deadline, "not every node receives {RECOVERY_BOUND:?} after SIGCONT");
    }
    stop.store(true, Ordering::Relaxed);
    traffic.await.unwrap();
    let slowest = Duration::from_millis(slowest.load(Ordering::Relaxed));
    println!(
        "traffic: {} publishes completed, {} failed, slowest {slowest:?}",
        sent.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed)
    );
    assert!(slowest < PUBLISH_BOUND, "a publish took {slowest:?}");
    // and the cluster is whole
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let fetched = c.call("call", json!({"name": "a", "event": "fetch_sockets"})).await;
        if fetched["sockets"].as_array().map(Vec::len) == Some(3) {
            break;
        }
        assert!(Instant::now() < deadline, "the cluster is not whole again: {fetched}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    c.stop().await;
}
