//! A node killed in the middle of cluster requests: 3 real `sio-node` processes on
//! Redis (sharded), Kafka and RabbitMQ, one client each, and a requester (the emitter
//! library) that has heard all three. Node C is stopped (SIGSTOP: it answers nothing),
//! `fetch_sockets`, `server_side_emit` with ack and a broadcast with acks start, then C is
//! killed (SIGKILL). Each request completes within its timeout with the answers of A and B
//! and a shortfall naming C; the server count drops to 2 within the heartbeat timeout
//! (heartbeat mode) or at once (Redis counts subscribers).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use serde_json::json;
use socketio_cluster_tests::conformance::prefix;
use socketio_cluster_tests::env;
use socketio_cluster_tests::node::NodePeer;
use socketio_cluster_tests::sio_node::{SioNode, workspace_bin};
use socketio_emitter::{Emitter, Gathered};

const TIMEOUT_MS: u64 = 8000;
const HEARTBEAT_TIMEOUT_MS: u64 = 2000;

async fn killed_mid_request(base: &str, tag: &str) {
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!(
        "{base}{sep}prefix={}&request_timeout_ms={TIMEOUT_MS}&heartbeat_interval_ms=500&heartbeat_timeout_ms={HEARTBEAT_TIMEOUT_MS}",
        prefix(tag)
    );
    let bin = workspace_bin("sio-node");
    let nodes = [SioNode::start(&bin, "A", &url).await, SioNode::start(&bin, "B", &url).await];
    let mut c = SioNode::start(&bin, "C", &url).await;
    let uid_of = async |n: &SioNode| n.get_json("/stats").await["namespaces"]["/"]["uid"].as_str().unwrap().to_owned();
    let victim = uid_of(&c).await;
    let mut clients = NodePeer::start("clients", json!({"name": "clients", "server": false})).await;
    clients
        .call(
            "clients",
            json!({"clients": [
                {"name": "a1", "port": nodes[0].port},
                {"name": "b1", "port": nodes[1].port},
                {"name": "c1", "port": c.port},
            ]}),
        )
        .await;
    // a requester that has heard every node (it names the ones that fail to answer)
    let io = Emitter::connect(&url).await.expect("emitter");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = io.fetch_sockets().await.expect("fetch sockets");
        if got.value.len() == 3 && got.shortfall.is_none() {
            break;
        }
        assert!(Instant::now() < deadline, "{tag}: never saw the 3 sockets: {got:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    c.signal("STOP").await;
    let started = Instant::now();
    let ask = io.timeout(Duration::from_millis(TIMEOUT_MS));
    let requests = async {
        let (sockets, server, acks) = tokio::join!(
            io.fetch_sockets(),
            ask.server_side_emit_with_ack("ping", ()),
            ask.emit_with_ack("question", "q")
        );
        let sockets = sockets.expect("fetch sockets");
        let sockets: Gathered<Vec<serde_json::Value>> =
            Gathered { value: sockets.value.iter().map(|s| json!(s.id)).collect(), shortfall: sockets.shortfall };
        let as_json = |g: Gathered<Vec<socketio_emitter::Value>>| Gathered {
            value: g.value.iter().map(|v| serde_json::to_value(v).unwrap()).collect(),
            shortfall: g.shortfall,
        };
        [
            ("fetch sockets", sockets, started.elapsed()),
            ("server-side emit with ack", as_json(server.expect("server-side emit")), started.elapsed()),
            ("broadcast with ack", as_json(acks.expect("broadcast with ack")), started.elapsed()),
        ]
    };
    let kill = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        c.signal("KILL").await;
    };
    let (results, ()) = tokio::join!(requests, kill);
    for (what, got, took) in results {
        println!("{tag} {what}: {} answers after {took:?}; {:?}", got.value.len(), got.shortfall);
        assert_eq!(got.value.len(), 2, "{tag} {what}: the answers of A and B: {got:?}");
        let s = got.shortfall.unwrap_or_else(|| panic!("{tag} {what}: complete without C"));
        assert_eq!(s.missing_nodes, vec![victim.clone()], "{tag} {what}: names C: {s}");
        assert!(took < Duration::from_millis(TIMEOUT_MS + 1000), "{tag} {what}: within its timeout: {took:?}");
    }
    // the dead node leaves the count
    let deadline = Instant::now() + Duration::from_millis(HEARTBEAT_TIMEOUT_MS + 5000);
    loop {
        let n = io.server_count().await.expect("server count");
        if n == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "{tag}: the server count stayed {n}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(c.exited(Duration::from_secs(5)).await.is_some(), "C was killed");
    clients.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sharded_node_killed_mid_request() {
    killed_mid_request(&format!("{}?mode=sharded", env("REDIS_URL")), "killr").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_node_killed_mid_request() {
    killed_mid_request(&format!("kafka://{}", env("KAFKA_BROKERS")), "killk").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_node_killed_mid_request() {
    killed_mid_request(&env("AMQP_ADDR"), "killa").await;
}
