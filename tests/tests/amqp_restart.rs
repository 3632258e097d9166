//! RabbitMQ restarted (`rabbitmqctl stop_app` / `start_app`) in the middle of traffic
//! under a running 3-node cluster: publishes fail with a clear error during the outage,
//! then every node reconnects, gets a new queue with every binding (room channels too)
//! and receives again; requests complete again; the old queues are gone.
//!
//! Its own test binary: it stops the shared broker, which must not disturb the other
//! suites (cargo runs test binaries one after another). A guard starts the broker again
//! even when the test fails.

// the test reports its timings on stderr (visible with --nocapture)
#![allow(clippy::print_stderr)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use socketio_adapter_amqp::{AmqpOptions, AmqpTransport, AmqpTransportError};
use socketio_adapter_core::{Adapter, BroadcastOptions, ClusterAdapter, ClusterConfig, EventPacket, Room, Transport};
use socketio_cluster_tests::conformance::{Node, converge, eventually, prefix};
use socketio_cluster_tests::env;
use socketio_cluster_tests::recorder::{Recorder, sid};

/// Longest outage handling we accept: reconnect backoff is capped at 5 s.
const WAIT: Duration = Duration::from_secs(30);

/// Runs `rabbitmqctl` (the `RABBITMQCTL` command line if set, e.g. `docker compose exec -T
/// rabbitmq rabbitmqctl`; else from `PATH` or the sbin directories) and returns its output.
fn rabbitmqctl(args: &[&str]) -> Result<String, String> {
    let mut cmd = match std::env::var("RABBITMQCTL") {
        Ok(line) => {
            let mut words = line.split_whitespace();
            let mut cmd = std::process::Command::new(words.next().unwrap_or("rabbitmqctl"));
            cmd.args(words);
            cmd
        }
        Err(_) => {
            let found = ["/usr/sbin/rabbitmqctl", "/sbin/rabbitmqctl", "/usr/local/sbin/rabbitmqctl"]
                .into_iter()
                .find(|p| std::path::Path::new(p).exists());
            std::process::Command::new(found.unwrap_or("rabbitmqctl"))
        }
    };
    let out = cmd.args(args).output().map_err(|e| format!("rabbitmqctl {args:?}: {e} (is RabbitMQ local?)"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("rabbitmqctl {args:?}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// The queue names RabbitMQ has right now, from `rabbitmqctl list_queues`.
fn broker_queues() -> Vec<String> {
    let out = rabbitmqctl(&["list_queues", "-q", "--no-table-headers", "name"]).expect("list_queues");
    out.lines().map(|l| l.trim().to_owned()).filter(|l| !l.is_empty()).collect()
}

/// Starts the broker's application again when dropped (also when the test panics).
struct RestartGuard;

impl Drop for RestartGuard {
    fn drop(&mut self) {
        if let Err(e) = rabbitmqctl(&["start_app"]).map(drop) {
            eprintln!("could not restart RabbitMQ: {e}");
        }
        let _ = rabbitmqctl(&["await_startup"]);
    }
}

async fn node(opts: &AmqpOptions, name: &str) -> (Node<AmqpTransport>, AmqpTransport) {
    let transport = AmqpTransport::connect(opts).await.expect("connect");
    let config = ClusterConfig::default()
        .with_request_timeout(Duration::from_secs(3))
        .with_heartbeat_interval(Duration::from_millis(300))
        .with_heartbeat_timeout(Duration::from_millis(1500))
        .with_health_check_interval(Some(Duration::from_millis(500)));
    let sockets = Recorder::new(name);
    let adapter = ClusterAdapter::new(transport.clone(), opts.codec(), "/", sockets.clone(), config).expect("config");
    adapter.init().await.expect("init");
    (Node { adapter, sockets }, transport)
}

/// Broadcasts `event` to room1 from `from` until every node's member got it (messages
/// published while the broker is away are lost): proves the path works again.
async fn reaches_everyone(nodes: &[Node<AmqpTransport>], from: usize, event: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let _ =
            nodes[from].adapter.broadcast(EventPacket::new(event, vec![]), BroadcastOptions::all().to("room1")).await;
        let polled = tokio::time::Instant::now() + Duration::from_millis(500);
        while tokio::time::Instant::now() < polled {
            if nodes.iter().all(|n| !n.sockets.got(event).is_empty()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let missing: Vec<&str> =
            nodes.iter().filter(|n| n.sockets.got(event).is_empty()).map(|n| n.sockets.name.as_str()).collect();
        assert!(tokio::time::Instant::now() < deadline, "{event}: never reached {missing:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_under_traffic() {
    let case = async {
        let prefix = prefix("amqp-restart");
        let url = format!("{}?prefix={prefix}&subscription_mode=dynamic&connect_timeout_ms=1000", env("AMQP_ADDR"));
        let opts = AmqpOptions::parse(&url).expect("url");
        let mut nodes = Vec::new();
        let mut transports = Vec::new();
        for name in ["A", "B", "C"] {
            let (n, t) = node(&opts, name).await;
            nodes.push(n);
            transports.push(t);
        }
        for (n, s) in nodes.iter().zip(["a1", "b1", "c1"]) {
            n.adapter.add_all(&sid(s), &[Room::from("room1")]);
        }
        converge(&nodes, 3).await;
        reaches_everyone(&nodes, 0, "before").await;
        let old_queues: Vec<String> = transports.iter().map(|t| t.queue_name().expect("queue")).collect();

        // traffic from every node, all along
        let nodes = Arc::new(nodes);
        let stop = Arc::new(AtomicBool::new(false));
        let (sent, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let traffic = {
            let (nodes, stop, sent, failed) = (nodes.clone(), stop.clone(), sent.clone(), failed.clone());
            tokio::spawn(async move {
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let from = &nodes[i % 3].adapter;
                    match from.broadcast(EventPacket::new("traffic", vec![]), BroadcastOptions::all().to("room1")).await
                    {
                        Ok(()) => sent.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                    i += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        };
        eventually("traffic flows", WAIT, || nodes.iter().all(|n| n.sockets.got("traffic").len() >= 3)).await;

        let started = tokio::time::Instant::now();
        let guard = RestartGuard;
        tokio::task::spawn_blocking(|| rabbitmqctl(&["stop_app"])).await.expect("join").expect("stop_app");
        eventually("every node sees the connection lost", WAIT, || transports.iter().all(|t| !t.is_connected())).await;
        let err = transports[0].publish(&format!("{prefix}#/#"), "lost".into()).await.expect_err("broker is down");
        assert!(matches!(err, AmqpTransportError::NotConnected), "{err}");
        assert!(err.to_string().contains("not connected"), "{err}");
        let failed_before = failed.load(Ordering::Relaxed);
        eventually("publishes fail during the outage", WAIT, || failed.load(Ordering::Relaxed) > failed_before).await;

        // keep the broker away until every node has evicted the others (no heartbeats),
        // so that membership has to recover too
        let deadline = tokio::time::Instant::now() + WAIT;
        for n in nodes.iter() {
            while n.adapter.server_count().await.expect("count") != 1 {
                assert!(tokio::time::Instant::now() < deadline, "{} never evicted its peers", n.sockets.name);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        tokio::task::spawn_blocking(|| rabbitmqctl(&["start_app"])).await.expect("join").expect("start_app");
        std::mem::forget(guard);
        let restarted = started.elapsed();
        eventually("every node reconnected", WAIT, || {
            transports.iter().all(|t| t.is_connected() && t.stats().reconnects >= 1)
        })
        .await;
        let reconnected = started.elapsed();

        // every node receives again, from every node, on the room channel
        for from in 0..3 {
            reaches_everyone(&nodes, from, &format!("after-{from}")).await;
        }
        let sent_after = sent.load(Ordering::Relaxed);
        eventually("traffic flows again", WAIT, || sent.load(Ordering::Relaxed) > sent_after + 30).await;
        stop.store(true, Ordering::Relaxed);
        traffic.await.expect("traffic task");

        // membership and requests recover too
        converge(&nodes, 3).await;
        let got = nodes[1].adapter.fetch_sockets(BroadcastOptions::all()).await.expect("fetch");
        assert!(got.is_complete(), "{:?}", got.shortfall);
        assert_eq!(got.value.len(), 3);

        // new queues; the old ones went with the old connections
        let new_queues: Vec<String> = transports.iter().map(|t| t.queue_name().expect("queue")).collect();
        let queues = broker_queues();
        for (old, new) in old_queues.iter().zip(&new_queues) {
            assert_ne!(old, new);
            assert!(!queues.contains(old), "{old} survived the restart");
            assert!(queues.contains(new), "{new} not on the broker");
        }
        eprintln!(
            "broker down and up in {restarted:?}, all nodes reconnected after {reconnected:?}; \
             {} broadcasts sent, {} failed during the outage",
            sent.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed)
        );

        // dropping the nodes deletes their queues
        drop(nodes);
        drop(transports);
        eventually("queues deleted with their nodes", WAIT, || {
            let queues = broker_queues();
            new_queues.iter().all(|q| !queues.contains(q))
        })
        .await;
    };
    tokio::time::timeout(Duration::from_secs(120), case).await.expect("case did not finish within 120 s");
}
