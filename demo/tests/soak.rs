//! Memory stays bounded under steady traffic with a client that never reads.
//!
//! Two `sio-node` on Redis (a room spread over both), an emitter publishing 500 emits/s of
//! 4 KiB each to the room plus a `fetch_sockets` every second, for `SOAK_SECS` seconds
//! (60 by default; the documented long run is `SOAK_SECS=600`). One client of node A
//! stops reading its TCP socket at the start. Asserted:
//! - the resident memory of each node stays within [`RSS_GROWTH_BOUND`] of what it was
//!   after the warm-up (the stalled client's deliveries are dropped and counted by the
//!   slow-socket policy, never buffered without bound: 500 × 4 KiB/s is 2 MB/s, so an
//!   unbounded buffer would pass the bound within a minute);
//! - every other client receives every emit exactly once and in order;
//! - every delivery the stalled client missed is counted in A's `dropped_deliveries`;
//! - every `fetch_sockets` is complete and no request stays pending.
//!
//! The figures (RSS before, at its peak and after, deliveries, drops) are printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use socketio_cluster_tests::conformance::prefix;
use socketio_cluster_tests::counter::Counter;
use socketio_cluster_tests::env;
use socketio_cluster_tests::sio_node::SioNode;
use socketio_emitter::Emitter;

/// How much a node's RSS may grow over its post-warm-up value during the soak.
const RSS_GROWTH_BOUND_KIB: u64 = 48 * 1024;
const RATE: u64 = 500;
const PAD: usize = 4096;

fn now_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
}

fn soak_secs() -> u64 {
    std::env::var("SOAK_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(60)
}

/// A delivery counter for `node` of the stats JSON.
fn stat(stats: &serde_json::Value, name: &str) -> u64 {
    stats["namespaces"]["/"][name].as_u64().unwrap_or_else(|| panic!("no {name} in {stats}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_under_steady_traffic_with_a_client_that_never_reads() {
    let secs = soak_secs();
    let url = format!("{}?prefix={}", env("REDIS_URL"), prefix("soak"));
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_sio-node"));
    let args = ["--slow-socket-timeout-ms", "1000"];
    let (a, b) = (SioNode::start_with(bin, "A", &url, &args).await, SioNode::start_with(bin, "B", &url, &args).await);
    let mut on_a = Counter::start(&format!("http://127.0.0.1:{}", a.port), 3, "soak", "m").await;
    let mut on_b = Counter::start(&format!("http://127.0.0.1:{}", b.port), 2, "soak", "m").await;
    let io = Emitter::connect(&url).await.expect("emitter");
    let room = io.to("soak");
    let pad = "x".repeat(PAD);

    // warm-up: 5 s of the same traffic, so that buffers, pools and caches reach their size
    let mut seq = 0u64;
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    let warm_until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < warm_until {
        tick.tick().await;
        room.emit("m", (seq, now_ms(), &pad)).await.expect("emit");
        seq += 1;
    }
    let (rss_a0, rss_b0) = (a.rss_kib(), b.rss_kib());
    println!("after the warm-up ({seq} emits): RSS A {rss_a0} KiB, B {rss_b0} KiB");

    // the soak: client 0 of A never reads again
    assert_eq!(on_a.ask("pause 0").await["ok"], serde_json::json!(true));
    let (mut peak_a, mut peak_b, mut fetches) = (rss_a0, rss_b0, 0u64);
    let started = Instant::now();
    let end = started + Duration::from_secs(secs);
    let mut last_sample = Instant::now();
    while Instant::now() < end {
        tick.tick().await;
        room.emit("m", (seq, now_ms(), &pad)).await.expect("emit");
        seq += 1;
        if last_sample.elapsed() >= Duration::from_secs(1) {
            last_sample = Instant::now();
            peak_a = peak_a.max(a.rss_kib());
            peak_b = peak_b.max(b.rss_kib());
            let got = io.fetch_sockets().await.expect("fetch_sockets");
            assert!(got.is_complete(), "fetch_sockets during the soak: {:?}", got.shortfall);
            assert_eq!(got.value.len(), 5, "every client is still there");
            fetches += 1;
        }
    }
    let n = seq;
    let took = started.elapsed();
    let want = n * 4; // the 4 clients that read
    let (got_a, got_b) = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (ga, gb) = (on_a.status().await, on_b.status().await);
            if ga.counts[1..].iter().chain(&gb.counts).sum::<u64>() >= want || Instant::now() > deadline {
                break (ga, gb);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let (rss_a1, rss_b1) = (a.rss_kib(), b.rss_kib());
    peak_a = peak_a.max(rss_a1);
    peak_b = peak_b.max(rss_b1);
    let stats_a = a.get_json("/stats").await;
    let dropped = stat(&stats_a, "dropped_deliveries");
    println!(
        "soak of {took:?}: {n} emits of {PAD} B at {RATE}/s, {fetches} fetch_sockets; \
         RSS A {rss_a0} -> peak {peak_a} -> {rss_a1} KiB, B {rss_b0} -> peak {peak_b} -> {rss_b1} KiB; \
         the stalled client received {} and A dropped {dropped} deliveries to it",
        got_a.counts[0]
    );
    assert_eq!(&got_a.counts[1..], &[n, n], "A's reading clients get every emit: {:?}", got_a.counts);
    assert_eq!(&got_b.counts[..], &[n, n], "B's clients get every emit: {:?}", got_b.counts);
    assert_eq!((got_a.out_of_order + got_b.out_of_order, got_a.dups + got_b.dups), (0, 0), "order, duplicates");
    assert!(dropped > 0, "the stalled client's deliveries are dropped and counted");
    assert!(got_a.counts[0] + dropped <= n, "received {} + dropped {dropped} > sent {n}", got_a.counts[0]);
    for (name, before, peak) in [("A", rss_a0, peak_a), ("B", rss_b0, peak_b)] {
        assert!(
            peak <= before + RSS_GROWTH_BOUND_KIB,
            "node {name}: RSS grew from {before} KiB to {peak} KiB, over the bound of +{RSS_GROWTH_BOUND_KIB} KiB"
        );
    }
    for node in [&a, &b] {
        assert_eq!(stat(&node.get_json("/stats").await, "pending_requests"), 0);
    }
    on_a.close().await;
    on_b.close().await;
}
