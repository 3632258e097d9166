//! `sio stats`: per-second rates by message type and the cluster size, from real traffic
//! of real `sio-node` clusters: broadcasts on Redis (classic), heartbeats on RabbitMQ;
//! `--watch --json` lines read as they come, and a single sample without `--watch`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use socketio_cluster_tests::conformance::prefix;
use socketio_cluster_tests::env;
use socketio_cluster_tests::sio_node::{SioNode, workspace_bin};
use socketio_emitter::Emitter;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn sio() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sio"))
}

async fn nodes(url: &str) -> [SioNode; 2] {
    let bin = workspace_bin("sio-node");
    [SioNode::start(&bin, "A", url).await, SioNode::start(&bin, "B", url).await]
}

/// Reads `sio stats --watch --json` lines until one satisfies `want` (within 15 s),
/// calling `traffic` between lines.
async fn watch_until(url: &str, want: impl Fn(&Json) -> bool, traffic: impl AsyncFn()) -> Json {
    let mut child = sio()
        .args(["--url", url, "stats", "--watch", "--json", "--interval-ms", "300"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let start = Instant::now();
    let mut seen = Vec::new();
    loop {
        traffic().await;
        let line = tokio::time::timeout(Duration::from_secs(5), lines.next_line())
            .await
            .expect("a line per interval")
            .unwrap()
            .expect("sio stats ended");
        let j: Json = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert_eq!(j["interval_ms"], 300, "{j}");
        if want(&j) {
            return j;
        }
        seen.push(j);
        assert!(start.elapsed() < Duration::from_secs(15), "never seen: {seen:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_on_redis_and_heartbeats_on_rabbitmq_are_counted_per_second() {
    let url = format!("{}?prefix={}", env("REDIS_URL"), prefix("stats"));
    let _nodes = nodes(&url).await;
    let io = Emitter::connect(&url).await.unwrap();
    let line = watch_until(
        &url,
        |j| j["servers"] == 2 && j["by_type_per_s"]["broadcast"].as_f64().is_some_and(|r| r > 0.0),
        async || {
            for i in 0..10 {
                io.emit("tick", (i,)).await.unwrap();
            }
        },
    )
    .await;
    assert!(line["bytes_per_s"].as_f64().is_some_and(|b| b > 0.0), "{line}");
    assert_eq!(line["undecodable"], 0, "{line}");

    let amqp = env("AMQP_ADDR");
    let sep = if amqp.contains('?') { '&' } else { '?' };
    let url = format!("{amqp}{sep}prefix={}&heartbeat_interval_ms=100", prefix("stats"));
    let _nodes = nodes(&url).await;
    watch_until(
        &url,
        |j| j["servers"] == 2 && j["by_type_per_s"]["heartbeat"].as_f64().is_some_and(|r| r > 0.0),
        async || {},
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_watch_one_sample_then_exit() {
    let url = format!("{}?prefix={}", env("REDIS_URL"), prefix("stats-once"));
    let out = sio().args(["--url", &url, "stats", "--interval-ms", "200"]).output().await.unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("servers 0  messages/s 0  bytes/s 0"), "{stdout}");
}
