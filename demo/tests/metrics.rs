//! `GET /metrics` of real `sio-node` processes on a private redis-server, scraped before
//! and after real `socket.io-client` traffic and a broker restart, parsed, and checked
//! value by value: the engine's counters, gauges and request histogram per namespace,
//! and the transport's connection state and reconnects.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};
use socketio_cluster_tests::node::{NodePeer, free_port};
use socketio_cluster_tests::private_redis::PrivateRedis;
use socketio_cluster_tests::sio_node::SioNode;

const WAIT: Duration = Duration::from_secs(15);

/// One scrape: `name{labels}` -> value, and the content type.
async fn scrape(node: &SioNode) -> BTreeMap<String, f64> {
    let (code, body) = node.get("/metrics").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.trim_end().ends_with("# EOF"), "a complete exposition: {body}");
    let mut out = BTreeMap::new();
    for line in body.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert!(out.insert(series.to_owned(), value).is_none(), "series twice: {series}");
    }
    out
}

fn value(m: &BTreeMap<String, f64>, series: &str) -> f64 {
    *m.get(series).unwrap_or_else(|| panic!("no {series} in {m:#?}"))
}

async fn call(clients: &mut NodePeer, name: &str, event: &str, data: Json) -> Json {
    let r = clients.call("call", json!({"name": name, "event": event, "data": data})).await;
    assert!(r.get("error").is_none(), "{name} {event}: {r}");
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_with_traffic_and_reconnects() {
    let mut redis = PrivateRedis::start(free_port()).await;
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_sio-node"));
    let a = SioNode::start(bin, "A", &redis.url()).await;
    let b = SioNode::start(bin, "B", &redis.url()).await;
    let before = scrape(&a).await;
    let b_before = scrape(&b).await;
    for (series, want) in [
        (r#"socketio_cluster_local_sockets{namespace="/"}"#, 0.0),
        (r#"socketio_cluster_pending_requests{namespace="/"}"#, 0.0),
        (r#"socketio_cluster_ready{namespace="/"}"#, 1.0),
        (r#"socketio_cluster_ready{namespace="/admin"}"#, 1.0),
        (r#"socketio_cluster_transport_connected{transport="redis"}"#, 1.0),
        (r#"socketio_cluster_transport_reconnects_total{transport="redis"}"#, 0.0),
        (r#"socketio_cluster_request_duration_seconds_count{namespace="/"}"#, 0.0),
    ] {
        assert_eq!(value(&before, series), want, "{series} at start");
    }

    let mut c = NodePeer::start("clients", json!({"name": "clients", "server": false})).await;
    c.call("clients", json!({"clients": [{"name": "a1", "port": a.port}, {"name": "b1", "port": b.port}]})).await;
    call(&mut c, "a1", "join", json!("red")).await;
    for i in 0..5 {
        call(&mut c, "a1", "emit", json!({"event": "hello", "args": [i]})).await;
    }
    c.wait_got("hello", &["a1", "a1", "a1", "a1", "a1", "b1", "b1", "b1", "b1", "b1"], WAIT).await;
    let fetched = call(&mut c, "a1", "fetch_sockets", json!({})).await;
    assert_eq!(fetched["sockets"].as_array().map(Vec::len), Some(2), "{fetched}");

    let after = scrape(&a).await;
    let b_after = scrape(&b).await;
    let grew = |m0: &BTreeMap<String, f64>, m1: &BTreeMap<String, f64>, series: &str, by: f64| {
        let (v0, v1) = (value(m0, series), value(m1, series));
        assert!(v1 - v0 >= by, "{series}: {v0} -> {v1}, expected at least +{by}");
    };
    grew(&before, &after, r#"socketio_cluster_published_total{namespace="/"}"#, 6.0);
    grew(&b_before, &b_after, r#"socketio_cluster_received_total{namespace="/"}"#, 6.0);
    grew(&before, &after, r#"socketio_cluster_request_duration_seconds_count{namespace="/"}"#, 1.0);
    assert!(value(&after, r#"socketio_cluster_request_duration_seconds_sum{namespace="/"}"#) > 0.0);
    assert_eq!(
        value(&after, r#"socketio_cluster_request_duration_seconds_bucket{le="+Inf",namespace="/"}"#),
        value(&after, r#"socketio_cluster_request_duration_seconds_count{namespace="/"}"#),
    );
    assert_eq!(value(&after, r#"socketio_cluster_local_sockets{namespace="/"}"#), 1.0);
    assert_eq!(value(&after, r#"socketio_cluster_local_rooms{namespace="/"}"#), 2.0, "its id and red");
    assert_eq!(value(&after, r#"socketio_cluster_local_sockets{namespace="/admin"}"#), 0.0);
    assert_eq!(value(&b_after, r#"socketio_cluster_known_nodes{namespace="/"}"#), 1.0, "B heard A's broadcasts");
    assert_eq!(value(&after, r#"socketio_cluster_pending_requests{namespace="/"}"#), 0.0);
    grew(&before, &after, r#"socketio_cluster_transport_delivered_total{transport="redis"}"#, 1.0);

    // the broker restarts: the transport reconnects, counted, and is connected again
    redis.stop().await;
    let down = Instant::now();
    loop {
        let m = scrape(&a).await;
        if value(&m, r#"socketio_cluster_transport_connected{transport="redis"}"#) == 0.0 {
            assert_eq!(value(&m, r#"socketio_cluster_ready{namespace="/"}"#), 0.0, "not ready while disconnected");
            break;
        }
        assert!(down.elapsed() < WAIT, "the transport still reports connected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _redis = PrivateRedis::start(redis.port).await;
    loop {
        let m = scrape(&a).await;
        let up = value(&m, r#"socketio_cluster_transport_connected{transport="redis"}"#) == 1.0;
        if up && value(&m, r#"socketio_cluster_transport_reconnects_total{transport="redis"}"#) >= 1.0 {
            break;
        }
        assert!(down.elapsed() < 2 * WAIT, "no reconnect in the metrics: {m:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
