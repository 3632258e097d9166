//! No silent loss between a node and its clients: a burst published into the cluster
//! reaches every client of a room on a `sio-node`, counted delivery by delivery, in order.
//! (Before the bridge waited for full socket buffers, socketioxide's per-socket buffer
//! overflowed under such a burst and about 1% of the deliveries vanished without a word.)
//! A client that stops reading loses only its own deliveries, each one counted, under the
//! slow-socket policy (`drop`: the others get everything; `disconnect`: it is cut off).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use socketio_cluster_tests::conformance::prefix;
use socketio_cluster_tests::counter::Counter;
use socketio_cluster_tests::env;
use socketio_cluster_tests::sio_node::SioNode;
use socketio_emitter::Emitter;

fn now_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
}

/// Publishes `n` emits of `(seq, t_ms, pad)` to `room` (`pad`: `pad` bytes of text), up
/// to 256 in flight, in order.
async fn burst(io: &Emitter, room: &str, event: &str, n: u64, pad: usize) {
    let room = io.to(room);
    let pad = "x".repeat(pad);
    let results: Vec<_> = futures_util::stream::iter(0..n)
        .map(|i| {
            let room = room.clone();
            let pad = pad.clone();
            async move { room.emit(event, (i, now_ms(), pad)).await }
        })
        .buffered(256)
        .collect()
        .await;
    for r in results {
        r.expect("emit");
    }
}

async fn burst_reaches_every_client(clients: usize, n: u64) {
    burst_over(&format!("{}?prefix={}", env("REDIS_URL"), prefix("burst")), clients, n).await;
}

/// A burst over the cluster at `url` (the node's adapter and the emitter): the clients
/// joined through the `join` contract event, whose ack promises that the room's channel is
/// subscribed (per-room channels: sharded Redis, RabbitMQ), so nothing may be missing even
/// at the start.
async fn burst_over(url: &str, clients: usize, n: u64) {
    let url = url.to_owned();
    let node = SioNode::start(std::path::Path::new(env!("CARGO_BIN_EXE_sio-node")), "A", &url).await;
    let mut counter = Counter::start(&format!("http://127.0.0.1:{}", node.port), clients, "burst", "m").await;
    let io = Emitter::connect(&url).await.expect("emitter");
    let started = std::time::Instant::now();
    burst(&io, "burst", "m", n, 0).await;
    let published = started.elapsed();
    let want = n * clients as u64;
    let got = counter.wait_total(want, Duration::from_secs(15)).await;
    eprintln!(
        "burst of {n} to {clients} clients: published in {published:?}, {} of {want} deliveries in {:?}",
        got.total,
        started.elapsed()
    );
    assert_eq!(got.counts, vec![n; clients], "deliveries per client (every one of {n})");
    assert_eq!((got.out_of_order, got.dups), (0, 0), "order and duplicates");
    counter.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_reaches_every_client_of_a_room() {
    burst_reaches_every_client(10, 20_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_reaches_every_client_of_a_large_room() {
    burst_reaches_every_client(100, 3_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_sharded_redis_reaches_every_client_from_the_first_message() {
    burst_over(&format!("{}?prefix={}&mode=sharded", env("REDIS_URL"), prefix("burst")), 10, 5_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_rabbitmq_reaches_every_client_from_the_first_message() {
    let amqp = env("AMQP_ADDR");
    let sep = if amqp.contains('?') { '&' } else { '?' };
    burst_over(&format!("{amqp}{sep}prefix={}", prefix("burst")), 10, 5_000).await;
}

/// One of 4 clients stops reading its TCP socket, then 4,000 emits of 2 KB (8 MB, more than
/// the kernel's socket buffers) arrive. The other three get every one, in order; every
/// delivery the stuck client misses is in the node's `dropped_deliveries` (after it reads
/// again and drains its buffer: received + dropped = sent, exactly).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_loses_only_its_own_deliveries_and_each_is_counted() {
    let (n, clients) = (4_000u64, 4usize);
    let url = format!("{}?prefix={}", env("REDIS_URL"), prefix("slow"));
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_sio-node"));
    let node = SioNode::start_with(bin, "A", &url, &["--slow-socket-timeout-ms", "500"]).await;
    let mut counter = Counter::start(&format!("http://127.0.0.1:{}", node.port), clients, "slow", "m").await;
    assert_eq!(counter.ask("pause 0").await["ok"], serde_json::json!(true));
    let io = Emitter::connect(&url).await.expect("emitter");
    burst(&io, "slow", "m", n, 2000).await;
    let got = counter.wait_total(n * (clients as u64 - 1), Duration::from_secs(15)).await;
    assert_eq!(&got.counts[1..], &[n, n, n], "the clients that read get everything");
    assert_eq!((got.out_of_order, got.dups), (0, 0), "order and duplicates");
    assert!(got.counts[0] < n, "the stuck client cannot have read everything: {:?}", got.counts);
    // it reads again: what its buffers held arrives, the rest was dropped and counted
    counter.ask("resume 0").await;
    let mut idle = 0;
    let (received, dropped) = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = got.counts[0];
        let now = counter.status().await;
        let stats = node.get_json("/stats").await;
        let dropped = stats["namespaces"]["/"]["dropped_deliveries"].as_u64().expect("dropped_deliveries");
        if now.counts[0] + dropped == n || idle > 50 {
            break (now.counts[0], dropped);
        }
        idle += usize::from(now.counts[0] == before);
    };
    eprintln!("stuck client: {received} received, {dropped} dropped of {n}");
    assert!(dropped > 0, "the node must have dropped (and counted) deliveries to the stuck client");
    assert_eq!(received + dropped, n, "every delivery is either received or counted as dropped");
    assert!(counter.status().await.connected[0], "policy drop keeps the client connected");
    counter.close().await;
}

/// With `--slow-socket-policy disconnect` the client that stopped reading is disconnected
/// (as soon as its DISCONNECT packet fits in its buffer); the others still get everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disconnect_policy_cuts_off_a_client_that_stops_reading() {
    let (n, clients) = (4_000u64, 3usize);
    let url = format!("{}?prefix={}", env("REDIS_URL"), prefix("slowdisc"));
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_sio-node"));
    let args = ["--slow-socket-timeout-ms", "500", "--slow-socket-policy", "disconnect"];
    let node = SioNode::start_with(bin, "A", &url, &args).await;
    let mut counter = Counter::start(&format!("http://127.0.0.1:{}", node.port), clients, "slow", "m").await;
    counter.ask("pause 0").await;
    let io = Emitter::connect(&url).await.expect("emitter");
    burst(&io, "slow", "m", n, 2000).await;
    let got = counter.wait_total(n * (clients as u64 - 1), Duration::from_secs(15)).await;
    assert_eq!(&got.counts[1..], &[n, n], "the clients that read get everything");
    // once it reads again, its DISCONNECT packet fits (at the next delivery)
    counter.ask("resume 0").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    burst(&io, "slow", "m", 1, 0).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while counter.status().await.connected[0] {
        assert!(tokio::time::Instant::now() < deadline, "the stuck client was never disconnected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = node.get_json("/stats").await;
    assert!(stats["namespaces"]["/"]["dropped_deliveries"].as_u64().unwrap_or(0) > 0, "{stats}");
    counter.close().await;
}
