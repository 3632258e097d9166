//! `sio doctor` against real clusters of `sio-node` processes: healthy on Redis, Kafka and
//! RabbitMQ (every check ok); a node stalled with SIGSTOP (Redis: the broker still counts
//! it; RabbitMQ: it stalls during the doctor's window and is named); a mismatched dialect
//! on the same prefix (a worker speaking the python-socketio protocol on the node
//! cluster's channel); a mixed cluster with a Node.js server, whose application answers
//! the round trip's server-side emit, and an event no server handles (a warning). `--json`
//! output, checked field by field, and the exit status.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use socketio_cluster_tests::conformance::prefix;
use socketio_cluster_tests::env;
use socketio_cluster_tests::node::{NodePeer, free_port};
use socketio_cluster_tests::sio_node::{SioNode, workspace_bin};
use tokio::process::Command;

fn sio() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sio"))
}

async fn nodes(url: &str) -> [SioNode; 2] {
    let bin = workspace_bin("sio-node");
    let nodes = [SioNode::start(&bin, "A", url).await, SioNode::start(&bin, "B", url).await];
    for n in &nodes {
        let start = Instant::now();
        while n.get("/ready").await.0 != 200 {
            assert!(start.elapsed() < Duration::from_secs(20), "sio-node never ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    nodes
}

fn doctor_cmd(url: &str, extra: &[&str]) -> Command {
    let mut c = sio();
    c.args(["--url", url, "doctor", "--json"]).args(extra);
    c
}

/// The JSON report and the exit status.
fn report(out: &Output) -> (Json, i32) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Json = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not one JSON document ({e}): {stdout} / {}", String::from_utf8_lossy(&out.stderr)));
    (report, out.status.code().expect("exit status"))
}

fn check<'a>(report: &'a Json, name: &str) -> &'a Json {
    report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["check"] == name))
        .unwrap_or_else(|| panic!("no {name} check in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_clusters_pass_on_redis_kafka_and_rabbitmq() {
    let amqp = env("AMQP_ADDR");
    let sep = if amqp.contains('?') { '&' } else { '?' };
    for (url, heartbeats) in [
        (format!("{}?prefix={}", env("REDIS_URL"), prefix("doc")), false),
        (format!("kafka://{}?prefix={}&heartbeat_interval_ms=500", env("KAFKA_BROKERS"), prefix("doc")), true),
        (format!("{amqp}{sep}prefix={}&heartbeat_interval_ms=500", prefix("doc")), true),
    ] {
        let _nodes = nodes(&url).await;
        let out = doctor_cmd(&url, &["--window-ms", "1500"]).output().await.unwrap();
        let (r, code) = report(&out);
        assert_eq!(code, 0, "{url}: {r}");
        assert_eq!(r["ok"], true, "{r}");
        assert!(!r.to_string().contains("guest:guest"), "a password in the report: {r}");
        for c in r["checks"].as_array().unwrap() {
            assert!(c["verdict"] == "ok" || c["verdict"] == "skip", "{url}: {c}");
        }
        assert_eq!(check(&r, "broker")["verdict"], "ok");
        assert_eq!(check(&r, "servers")["counted"], 2, "{r}");
        assert_eq!(check(&r, "servers")["answering"], 2, "{r}");
        // the round trip is a server-side emit of `ping` that each sio-node acknowledges
        let rt = check(&r, "round-trip");
        assert_eq!((rt["verdict"].as_str(), rt["event"].as_str()), (Some("ok"), Some("ping")), "{r}");
        let answers = rt["answers"].as_array().unwrap().clone();
        assert_eq!(answers.len(), 2, "{r}");
        assert!(answers.iter().all(|a| a["ms"].as_f64().is_some_and(|ms| ms >= 0.0)), "{r}");
        let mut acked: Vec<&str> = answers.iter().map(|a| a["ack"]["node"].as_str().unwrap_or("?")).collect();
        acked.sort_unstable();
        assert_eq!(acked, ["A", "B"], "each node acknowledged once: {r}");
        if !heartbeats {
            // node-redis names no responder: the answers are named by their acks
            let named: Vec<&Json> = answers.iter().map(|a| &a["node"]).collect();
            assert!(named.contains(&&Json::from("A")) && named.contains(&&Json::from("B")), "{r}");
        }
        assert_eq!(check(&r, "foreign-traffic")["verdict"], "ok", "{r}");
        let hb = check(&r, "heartbeats");
        if heartbeats {
            assert_eq!(hb["verdict"], "ok", "{r}");
            assert_eq!(hb["nodes"].as_array().map(Vec::len), Some(2), "{r}");
            // the nodes named by the heartbeats are those that answered
            let mut named: Vec<&str> = answers.iter().map(|a| a["node"].as_str().unwrap()).collect();
            let mut heard: Vec<&str> =
                hb["nodes"].as_array().unwrap().iter().map(|n| n["node"].as_str().unwrap()).collect();
            named.sort_unstable();
            heard.sort_unstable();
            assert_eq!(named, heard, "{r}");
        } else {
            assert_eq!(hb["verdict"], "skip", "the broker counts: {r}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_node_fails_the_round_trip() {
    // Redis: the stalled node's connection stays open, the broker still counts it
    let url = format!("{}?prefix={}", env("REDIS_URL"), prefix("doc-stall"));
    let [_a, b] = nodes(&url).await;
    b.signal("STOP").await;
    let out = doctor_cmd(&url, &["--window-ms", "200", "--timeout", "1500"]).output().await.unwrap();
    b.signal("CONT").await;
    let (r, code) = report(&out);
    assert_eq!(code, 1, "{r}");
    assert_eq!(r["ok"], false);
    let servers = check(&r, "servers");
    assert_eq!(
        (servers["verdict"].as_str(), servers["counted"].as_u64(), servers["answering"].as_u64()),
        (Some("fail"), Some(2), Some(1)),
        "{r}"
    );
    let rt = check(&r, "round-trip");
    assert_eq!(rt["verdict"], "fail", "{r}");
    assert_eq!(rt["expected"], 2, "{r}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed: servers, round-trip"), "{out:?}");

    // RabbitMQ (heartbeats): B stalls while the doctor listens; it is named
    let amqp = env("AMQP_ADDR");
    let sep = if amqp.contains('?') { '&' } else { '?' };
    let url = format!("{amqp}{sep}prefix={}&heartbeat_interval_ms=300", prefix("doc-stall"));
    let [_a, b] = nodes(&url).await;
    let doctor = doctor_cmd(&url, &["--window-ms", "2500", "--timeout", "1500"]).output();
    let stall = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        b.signal("STOP").await;
    };
    let (out, ()) = tokio::join!(doctor, stall);
    b.signal("CONT").await;
    let (r, code) = report(&out.unwrap());
    assert_eq!(code, 1, "{r}");
    let rt = check(&r, "round-trip");
    assert_eq!(rt["verdict"], "fail", "{r}");
    let missing = rt["missing"].as_array().unwrap();
    assert_eq!(missing.len(), 1, "the stalled node is named: {r}");
    let answered: Vec<&Json> = rt["answers"].as_array().unwrap().iter().map(|a| &a["node"]).collect();
    assert!(!answered.contains(&&missing[0]), "{r}");
    let hb = check(&r, "heartbeats");
    assert_eq!(hb["verdict"], "fail", "{r}");
    assert!(hb["detail"].as_str().unwrap().contains(missing[0].as_str().unwrap()), "{r}");
    assert_eq!(check(&r, "servers")["disagreeing"], Json::Array(missing.clone()), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mismatched_dialect_on_the_prefix_is_foreign_traffic() {
    let prefix = prefix("doc-dialect");
    let url = format!("{}?prefix={prefix}", env("REDIS_URL"));
    let _nodes = nodes(&url).await;
    let doctor = doctor_cmd(&url, &["--window-ms", "2500"]).output();
    // a worker speaking python-socketio's protocol on the node cluster's broadcast channel
    let channel = format!("{prefix}#/#");
    let foreign = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        for i in 0..3 {
            let out = sio()
                .args(["--url", &url, "--dialect", "python", "--channel", &channel, "emit", "hello"])
                .arg(i.to_string())
                .output()
                .await
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let (out, ()) = tokio::join!(doctor, foreign);
    let (r, code) = report(&out.unwrap());
    assert_eq!(code, 1, "{r}");
    let f = check(&r, "foreign-traffic");
    assert_eq!(f["verdict"], "fail", "{r}");
    assert!(f["undecodable"].as_u64().is_some_and(|n| n >= 1), "{r}");
    assert!(f["detail"].as_str().unwrap().contains("not node-redis"), "{r}");
    // the servers themselves are fine
    assert_eq!(check(&r, "round-trip")["verdict"], "ok", "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_js_server_answers_the_round_trip_and_a_missing_handler_is_a_warning() {
    // a mixed cluster on Redis: a sio-node and a socket.io server on @socket.io/redis-adapter
    let prefix = prefix("doc-mixed");
    let url = format!("{}?prefix={prefix}", env("REDIS_URL"));
    let bin = workspace_bin("sio-node");
    let a = SioNode::start(&bin, "A", &url).await;
    let start = Instant::now();
    while a.get("/ready").await.0 != 200 {
        assert!(start.elapsed() < Duration::from_secs(20), "sio-node never ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let config = serde_json::json!({
        "name": "N1", "port": free_port(), "prefix": prefix, "mode": "classic", "server": true,
        "redis": env("REDIS_URL"), "requestsTimeout": 3000,
    });
    let _n1 = NodePeer::start("N1", config).await;

    let out = doctor_cmd(&url, &["--window-ms", "300", "--timeout", "1500"]).output().await.unwrap();
    let (r, code) = report(&out);
    assert_eq!(code, 0, "{r}");
    assert_eq!(check(&r, "servers")["answering"], 2, "{r}");
    let rt = check(&r, "round-trip");
    assert_eq!(rt["verdict"], "ok", "{r}");
    let mut acks: Vec<String> = rt["answers"].as_array().unwrap().iter().map(|a| a["ack"].to_string()).collect();
    acks.sort_unstable();
    assert_eq!(acks.len(), 2, "{r}");
    assert!(acks[0].contains("pong from N1"), "the Node.js server's own ack: {r}");
    assert!(acks[1].contains(r#""node":"A""#), "{r}");

    // an event no server handles: both are alive (they answer the adapter's request), so
    // the round trip warns and the doctor passes
    let out = doctor_cmd(&url, &["--window-ms", "300", "--timeout", "1000", "--event", "nobody-handles-this"])
        .output()
        .await
        .unwrap();
    let (r, code) = report(&out);
    assert_eq!(code, 0, "{r}");
    let rt = check(&r, "round-trip");
    assert_eq!((rt["verdict"].as_str(), rt["expected"].as_u64()), (Some("warn"), Some(2)), "{r}");
    assert_eq!(rt["answers"].as_array().map(Vec::len), Some(0), "{r}");
    assert!(rt["detail"].as_str().unwrap().contains("without a `nobody-handles-this` handler"), "{r}");
    assert_eq!(check(&r, "servers")["verdict"], "ok", "{r}");
}
