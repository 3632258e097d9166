//! `sio-node --log-format json`: every line is a JSON object, and the cluster's events an
//! operator looks for are one line each with the node id, the namespace and the broker,
//! the broker's password hidden. A reconnect: a private, password-protected redis-server
//! restarted under the node. An eviction: on RabbitMQ (servers counted by heartbeats) a
//! peer `sio-node` stalled with SIGSTOP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::Value as Json;
use socketio_cluster_tests::conformance::prefix;
use socketio_cluster_tests::env;
use socketio_cluster_tests::node::free_port;
use socketio_cluster_tests::private_redis::PrivateRedis;
use socketio_cluster_tests::sio_node::SioNode;

const PASSWORD: &str = "s3cret-pw";

fn bin() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_sio-node"))
}

/// Every line so far, parsed (a line that is not a JSON object fails the test).
fn json_lines(node: &SioNode) -> Vec<Json> {
    node.log_lines()
        .iter()
        .map(|l| {
            let j: Json = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            assert!(j.is_object() && j["level"].is_string() && j["message"].is_string(), "{l}");
            assert!(!l.contains(PASSWORD), "a password in the logs: {l}");
            j
        })
        .collect()
}

/// Waits for lines whose message is `message`; all of them.
async fn lines_saying(node: &SioNode, message: &str, within: Duration) -> Vec<Json> {
    let start = Instant::now();
    loop {
        let found: Vec<Json> = json_lines(node).into_iter().filter(|j| j["message"] == message).collect();
        if !found.is_empty() {
            return found;
        }
        assert!(start.elapsed() < within, "no {message:?} line within {within:?}: {:#?}", node.log_lines());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_is_one_json_line_per_namespace_with_node_namespace_and_broker() {
    let port = free_port();
    let args = ["--port", &port.to_string(), "--requirepass", PASSWORD];
    let mut redis = PrivateRedis::start_with(port, &args).await;
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{port}");
    let node = SioNode::start_logging(bin(), "A", &url, &["--log-format", "json"], "info,socketioxide=warn").await;
    lines_saying(&node, "cluster adapter started", Duration::from_secs(10)).await;
    redis.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _redis = PrivateRedis::start_with(port, &args).await;
    let lines = lines_saying(&node, "transport reconnected, subscriptions restored", Duration::from_secs(20)).await;
    let mut namespaces: Vec<&str> = lines.iter().map(|j| j["nsp"].as_str().expect("nsp")).collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    assert_eq!(namespaces, ["/", "/admin"], "{lines:#?}");
    for j in &lines {
        assert!(j["node"].as_str().is_some_and(|n| !n.is_empty()), "{j}");
        let broker = j["broker"].as_str().expect("broker");
        assert!(broker.contains(&format!("127.0.0.1:{port}")), "{j}");
    }
    json_lines(&node); // every line JSON, no password anywhere
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eviction_is_one_json_line_with_node_peer_namespace_and_broker() {
    let amqp = env("AMQP_ADDR");
    let sep = if amqp.contains('?') { '&' } else { '?' };
    let url = format!("{amqp}{sep}prefix={}&heartbeat_interval_ms=300&heartbeat_timeout_ms=1500", prefix("evict"));
    let a = SioNode::start_logging(bin(), "A", &url, &["--log-format", "json"], "info,socketioxide=warn").await;
    let b = SioNode::start(bin(), "B", &url).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while a.get_json("/health").await["known_nodes"] != 1 {
        assert!(Instant::now() < deadline, "A never saw B");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.signal("STOP").await;
    let lines = lines_saying(&a, "evicting a silent node", Duration::from_secs(15)).await;
    b.signal("CONT").await;
    let root = lines.iter().find(|j| j["nsp"] == "/").unwrap_or_else(|| panic!("no eviction in /: {lines:#?}"));
    assert!(root["node"].as_str().is_some_and(|n| !n.is_empty()), "{root}");
    assert!(root["peer"].as_str().is_some_and(|n| !n.is_empty() && root["node"] != n), "{root}");
    assert_eq!(root["level"], "WARN", "{root}");
    assert!(root["broker"].as_str().is_some_and(|b| b.starts_with("amqp") && !b.contains("guest:guest")), "{root}");
    json_lines(&a);
}
