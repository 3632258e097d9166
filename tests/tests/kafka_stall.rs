//! A Kafka broker that stalls under traffic (issue #16): 3 `sio-node` on a private tansu
//! (never the shared one), one client each, an emitter publishing every 20 ms; tansu is
//! stopped with SIGSTOP for 5 s, then resumed. During the stall every node keeps serving
//! its clients and `GET /health`, a cluster request made by a client completes by its
//! timeout (not the longer `message_timeout_ms` its publish could wait) with an error or
//! an incomplete answer, and every publish fails or completes
//! within a bound; after SIGCONT every node receives again within a bound. The figures
//! are printed. (The Kafka variant of `broker_stall.rs`, kept apart until both share one
//! body.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use socketio_cluster_tests::node::{NodePeer, free_port};
use socketio_cluster_tests::sio_node::{SioNode, workspace_bin};
use socketio_cluster_tests::tansu::PrivateTansu;
use socketio_emitter::Emitter;

const REQUEST_TIMEOUT_MS: u64 = 2000;
/// How long a record may wait for the stalled broker's acknowledgement (`message.timeout.ms`).
const MESSAGE_TIMEOUT_MS: u64 = 3000;
/// The metadata look-up after a timed-out publish (the topic check) waits this long.
const CONNECT_TIMEOUT_MS: u64 = 2000;
/// What a publish may take on a stalled broker: its message timeout, the topic check
/// after it, and a margin.
const PUBLISH_BOUND: Duration = Duration::from_millis(MESSAGE_TIMEOUT_MS + CONNECT_TIMEOUT_MS + 2000);
/// A cluster request made during the stall ends by its timeout (the publish included)
/// and this margin.
const REQUEST_BOUND: Duration = Duration::from_millis(REQUEST_TIMEOUT_MS + 1000);
/// From SIGCONT to every node receiving again.
const RECOVERY_BOUND: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_kafka_broker_under_traffic() {
    let broker = PrivateTansu::start(free_port()).await;
    let url = format!(
        "kafka://{}?prefix=stall&request_timeout_ms={REQUEST_TIMEOUT_MS}&message_timeout_ms={MESSAGE_TIMEOUT_MS}\
         &connect_timeout_ms={CONNECT_TIMEOUT_MS}&heartbeat_interval_ms=1000",
        broker.brokers()
    );
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
    io.emit("before", ()).await.expect("emit");
    c.wait_got("before", &["a", "b", "c"], Duration::from_secs(10)).await;

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

    broker.signal("STOP").await;
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
    assert!(took < REQUEST_BOUND, "fetch_sockets took {took:?}, over its timeout ({REQUEST_TIMEOUT_MS} ms)");
    let elapsed = stalled.elapsed();
    if elapsed < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_secs(5) - elapsed).await;
    }
    broker.signal("CONT").await;
    let resumed = Instant::now();

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
    let fetched = c.call("call", json!({"name": "a", "event": "fetch_sockets"})).await;
    assert_eq!(fetched["sockets"].as_array().map(Vec::len), Some(3), "{fetched}");
    c.stop().await;
}
