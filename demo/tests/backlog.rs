//! A node behind a backlog hears its peers' heartbeats late, not never: it must not evict
//! them. On RabbitMQ and Kafka (heartbeat clusters, 300 ms heartbeats, 1.5 s timeout), A's
//! inbound queue is held for 5 s by a client that stopped reading (the slow-socket
//! timeout), while B keeps heartbeating behind it at the broker. Before the fence (a peer
//! is evicted only once A's own health check round, sent after the timeout, has come back
//! with nothing from the peer ahead of it) A evicted B during every such wait. Then B is
//! killed (SIGKILL: no goodbye) and A must still evict it, within the timeout plus 3 s.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use socketio_cluster_tests::conformance::prefix;
use socketio_cluster_tests::counter::Counter;
use socketio_cluster_tests::env;
use socketio_cluster_tests::sio_node::SioNode;
use socketio_emitter::Emitter;

fn stat(stats: &serde_json::Value, name: &str) -> u64 {
    stats["namespaces"]["/"][name].as_u64().unwrap_or_else(|| panic!("no {name} in {stats}"))
}

async fn behind_a_backlog(url: &str) {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_sio-node"));
    let a = SioNode::start_with(bin, "A", url, &["--slow-socket-timeout-ms", "5000"]).await;
    let mut b = SioNode::start(bin, "B", url).await;
    let start = Instant::now();
    while stat(&a.get_json("/stats").await, "known_nodes") != 1 {
        assert!(start.elapsed() < Duration::from_secs(20), "A never heard B");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut counter = Counter::start(&format!("http://127.0.0.1:{}", a.port), 2, "backlog", "m").await;
    assert_eq!(counter.ask("pause 0").await["ok"], serde_json::json!(true));

    // 8 MB of emits: more than client 0's buffers hold, so A's inbound queue waits the
    // slow-socket timeout (5 s) for it, and everything after, B's heartbeats included,
    // waits at the broker
    let io = Emitter::connect(url).await.expect("emitter");
    let room = io.to("backlog");
    let pad = "x".repeat(2000);
    let sent: Vec<_> = futures_util::stream::iter(0..4000u64)
        .map(|i| {
            let (room, pad) = (room.clone(), pad.clone());
            async move { room.emit("m", (i, 0, pad)).await }
        })
        .buffered(256)
        .collect()
        .await;
    assert!(sent.iter().all(Result::is_ok), "emits");
    // the reading client gets everything once the wait is over (and the backlog read)
    let start = Instant::now();
    loop {
        let got = counter.status().await;
        if got.counts[1] == 4000 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the reading client: {:?}", got.counts);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stats = a.get_json("/stats").await;
    assert!(stat(&stats, "dropped_deliveries") > 0, "A's inbound never waited for the stalled client: {stats}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stats = a.get_json("/stats").await;
    println!(
        "{url}: after the wait, A knows {} node(s), evicted {}",
        stat(&stats, "known_nodes"),
        stat(&stats, "evicted_nodes")
    );
    assert_eq!(stat(&stats, "evicted_nodes"), 0, "A evicted a live peer it heard late: {stats}");
    assert_eq!(stat(&stats, "known_nodes"), 1, "{stats}");
    counter.close().await;

    // a peer that is gone is still evicted
    b.signal("KILL").await;
    let killed = Instant::now();
    b.exited(Duration::from_secs(5)).await.expect("B exits");
    while stat(&a.get_json("/stats").await, "evicted_nodes") == 0 {
        assert!(killed.elapsed() < Duration::from_millis(1500 + 3000), "A never evicted the killed B");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("{url}: B evicted {:?} after SIGKILL (timeout 1.5 s)", killed.elapsed());
    assert_eq!(stat(&a.get_json("/stats").await, "known_nodes"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_behind_a_rabbitmq_backlog_evicts_no_live_peer() {
    let amqp = env("AMQP_ADDR");
    let sep = if amqp.contains('?') { '&' } else { '?' };
    let url = format!("{amqp}{sep}prefix={}&heartbeat_interval_ms=300&heartbeat_timeout_ms=1500", prefix("backlog"));
    behind_a_backlog(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_behind_a_kafka_backlog_evicts_no_live_peer() {
    let url = format!(
        "kafka://{}?prefix={}&heartbeat_interval_ms=300&heartbeat_timeout_ms=1500",
        env("KAFKA_BROKERS"),
        prefix("backlog")
    );
    behind_a_backlog(&url).await;
}
