//! Liveness and readiness probes of `sio-node` against a private redis-server (never the
//! shared one: it is stalled with SIGSTOP and killed here). `GET /health` answers at once
//! whatever the broker does; `GET /ready` is 200 while the node is connected and hears
//! itself through the broker, and 503 with a one-line reason within 20 s of the broker
//! stalling or going away (default health check period, 10 s), 200 again once it is back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::time::{Duration, Instant};

use socketio_cluster_tests::node::free_port;
use socketio_cluster_tests::private_redis::PrivateRedis;
use socketio_cluster_tests::sio_node::SioNode;

/// The issue's bound for readiness to turn 503.
const BOUND: Duration = Duration::from_secs(20);

/// `/health` answers 200 from local state within 2 s (a probe's usual timeout).
async fn alive(node: &SioNode) {
    let (code, body) = tokio::time::timeout(Duration::from_secs(2), node.get("/health"))
        .await
        .expect("GET /health did not answer within 2 s: it waits for the broker");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(r#""node":"A""#), "{body}");
}

/// Polls `/ready` (and `/health` meanwhile) until it answers `code`; its body.
async fn ready_turns(node: &SioNode, code: u16, within: Duration, what: &str) -> String {
    let start = Instant::now();
    loop {
        alive(node).await;
        let (got, body) = tokio::time::timeout(Duration::from_secs(2), node.get("/ready"))
            .await
            .expect("GET /ready did not answer within 2 s: it waits for the broker");
        if got == code {
            return body;
        }
        assert!(start.elapsed() < within, "{what}: /ready still {got} {body:?} after {within:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn one_line(body: &str) -> &str {
    let line = body.trim_end_matches('\n');
    eprintln!("/ready: {line}");
    assert!(!line.contains('\n'), "a one-line reason: {body:?}");
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_follows_the_broker_and_health_never_waits_for_it() {
    let mut redis = PrivateRedis::start(free_port()).await;
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_sio-node"));
    let node = SioNode::start(bin, "A", &redis.url()).await;
    assert_eq!(ready_turns(&node, 200, Duration::from_secs(10), "start").await, "ready\n");

    // the broker stalls: the connection stays open, nothing fails, nothing arrives
    redis.signal("STOP").await;
    let why = ready_turns(&node, 503, BOUND, "broker stalled (SIGSTOP)").await;
    let why = one_line(&why);
    assert!(why.starts_with("not ready: namespace /"), "{why}");
    assert!(why.contains("deaf") || why.contains("disconnected"), "{why}");

    redis.signal("CONT").await;
    ready_turns(&node, 200, Duration::from_secs(30), "broker resumed (SIGCONT)").await;

    // the broker goes away
    redis.stop().await;
    let why = ready_turns(&node, 503, BOUND, "broker killed").await;
    let why = one_line(&why);
    assert!(why.contains("redis"), "names the transport: {why}");
    alive(&node).await;
}
