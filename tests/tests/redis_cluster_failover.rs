//! Redis Cluster failover under traffic: 3 `sio-node` on a private 6-node cluster (3
//! masters, 3 replicas, `cluster-node-timeout` 2 s), one client each, an emitter
//! publishing every 20 ms. The master serving the traffic's channel is killed (SIGKILL):
//! its replica is promoted, every publish meanwhile completes or fails with an error
//! within a bound (none hangs), every node receives again within a bound of the kill, and
//! the cluster is whole again (a complete `fetch_sockets`). In sharded static mode (the
//! main channel `<prefix>#/#`) and in dynamic mode (the room channel `<prefix>#/#room#`
//! that every client joined). The figures are printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use socketio_cluster_tests::conformance::prefix;
use socketio_cluster_tests::redis_cluster::PrivateCluster;
use socketio_cluster_tests::stall::three_nodes_with_clients;
use socketio_emitter::Emitter;

const NODE_TIMEOUT: Duration = Duration::from_secs(2);
/// What one publish may take while its master is gone: the command timeout (2 s), then
/// the transport's own bound on a command (twice that), and a margin.
const PUBLISH_BOUND: Duration = Duration::from_millis(4500);
/// From the kill to every node receiving again: the failure detection
/// (`cluster-node-timeout`), the replica's election, then the nodes' slot-map refresh
/// and resubscription.
const RECOVERY_BOUND: Duration = Duration::from_secs(15);

/// What the traffic saw: (publishes completed, failed, slowest, first error).
#[derive(Debug, Default)]
struct Traffic {
    sent: u64,
    failed: u64,
    slowest: Duration,
    first_error: Option<String>,
}

async fn failover(mode: &str, room: Option<&str>) {
    let cluster = PrivateCluster::start(NODE_TIMEOUT).await;
    let prefix = prefix("failover");
    let url =
        format!("{}?mode=sharded&subscription_mode={mode}&prefix={prefix}&request_timeout_ms=2000", cluster.url());
    let (nodes, mut c) = three_nodes_with_clients(&url).await;
    let io = Emitter::connect(&url).await.expect("emitter");
    let (io, channel) = match room {
        Some(room) => {
            for client in ["a", "b", "c"] {
                let joined = c.call("call", json!({"name": client, "event": "join", "data": [room]})).await;
                assert_eq!(joined["ok"], true, "{client}: {joined}");
            }
            (io.to(room), format!("{prefix}#/#{room}#"))
        }
        None => (io, format!("{prefix}#/#")),
    };
    io.emit("before", ()).await.expect("emit");
    c.wait_got("before", &["a", "b", "c"], Duration::from_secs(10)).await;
    let master = cluster.owner_of(&channel).await;
    println!("{mode}: the traffic goes to {channel}, served by master {}", master.addr);

    // traffic: one emit every 20 ms, each timed (and bounded here, so that a hang fails
    // the test instead of stalling it)
    let traffic = Arc::new(Mutex::new(Traffic::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let task = {
        let (io, traffic, stop) = (io.clone(), traffic.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                let result = tokio::time::timeout(PUBLISH_BOUND * 4, io.emit("tick", ())).await;
                let took = t.elapsed();
                {
                    let mut tr = traffic.lock().unwrap();
                    tr.slowest = tr.slowest.max(took);
                    match result {
                        Ok(Ok(())) => tr.sent += 1,
                        Ok(Err(e)) => {
                            tr.failed += 1;
                            tr.first_error.get_or_insert_with(|| e.to_string());
                        }
                        Err(_) => {
                            tr.failed += 1;
                            tr.first_error.get_or_insert_with(|| format!("hung for {took:?}"));
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut cluster = cluster;
    cluster.kill(master.port).await;
    let killed = Instant::now();
    let (promoted, took) = cluster.wait_promoted(&master, Duration::from_secs(30)).await;
    println!("{mode}: replica {} promoted {took:?} after the kill", promoted.addr);

    // every node receives again
    let mut round = 0;
    let recovery = loop {
        round += 1;
        let event = format!("after{round}");
        let _ = tokio::time::timeout(PUBLISH_BOUND, io.emit(&event, ())).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        if c.got(&event).await == ["a", "b", "c"] {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < RECOVERY_BOUND,
            "{mode}: not every node receives {RECOVERY_BOUND:?} after the kill (got {:?})",
            c.got(&event).await
        );
    };
    println!("{mode}: every node received again {recovery:?} after the kill");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    task.await.unwrap();
    let tr = std::mem::take(&mut *traffic.lock().unwrap());
    println!(
        "{mode}: traffic: {} publishes completed, {} failed (first: {:?}), slowest {:?}",
        tr.sent, tr.failed, tr.first_error, tr.slowest
    );
    assert!(tr.slowest < PUBLISH_BOUND, "{mode}: a publish took {:?}", tr.slowest);

    // the cluster is whole: requests through every node's response channel complete
    let start = Instant::now();
    loop {
        let fetched = c.call("call", json!({"name": "a", "event": "fetch_sockets"})).await;
        if fetched["complete"] == true && fetched["sockets"].as_array().map(Vec::len) == Some(3) {
            break;
        }
        assert!(start.elapsed() < RECOVERY_BOUND, "{mode}: fetch_sockets after the failover: {fetched}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("{mode}: fetch_sockets complete again {:?} after the kill", killed.elapsed());
    for node in &nodes {
        let start = Instant::now();
        while node.get("/ready").await.0 != 200 {
            assert!(
                start.elapsed() < RECOVERY_BOUND,
                "{mode}: a node is not ready again: {:?}",
                node.get("/ready").await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    c.stop().await;
    // the nodes go before the cluster, so they do not log its disappearance
    drop(nodes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_fails_over_under_static_sharded_nodes() {
    failover("static", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_fails_over_under_dynamic_sharded_nodes() {
    failover("dynamic", Some("room")).await;
}
