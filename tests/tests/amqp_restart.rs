//! RabbitMQ restarted (`rabbitmqctl stop_app` / `start_app`) in the middle of traffic
//! under a running 3-node cluster: publishes fail with a clear error during the outage,
//! the nodes evict each other, then every node reconnects, gets a new queue with every
//! binding (room channels too) and receives again; membership and requests recover; the
//! old queues are gone, and dropping the nodes deletes the new ones.
//!
//! The broker restarted is a private RabbitMQ node on free ports, started here (about
//! 6 s) and stopped at the end, also when the test fails: the shared broker, and whoever
//! else uses it at the same time, is never disturbed. Needs `rabbitmq-server` on the
//! machine (`scripts/services.sh up rabbitmq` installs it) and root (as the scripts).

// the test reports its timings on stderr (visible with --nocapture)
#![allow(clippy::print_stderr)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use socketio_adapter_amqp::{AmqpOptions, AmqpTransport, AmqpTransportError};
use socketio_adapter_core::dialect::EMITTER_UID;
use socketio_adapter_core::{
    Adapter, Body, BroadcastOptions, ClusterAdapter, ClusterConfig, EventPacket, Message, Room, Transport,
};
use socketio_cluster_tests::conformance::{Node, converge, eventually, prefix};
use socketio_cluster_tests::rabbitmq::PrivateRabbitMq;
use socketio_cluster_tests::recorder::{Recorder, sid};

/// Longest outage handling we accept: reconnect backoff is capped at 2 s (core's `Backoff`).
const WAIT: Duration = Duration::from_secs(30);

async fn node(opts: &AmqpOptions, name: &str) -> (Node<AmqpTransport>, AmqpTransport) {
    let transport = AmqpTransport::connect(opts).await.expect("connect");
    let config = ClusterConfig::default()
        .with_request_timeout(Duration::from_secs(3))
        .with_heartbeat_interval(Duration::from_millis(300))
        .with_heartbeat_timeout(Duration::from_millis(1500))
        .with_health_check_interval(Some(Duration::from_millis(500)));
    let sockets = Recorder::new(name);
    let adapter = ClusterAdapter::new(transport.clone(), opts.dialect(), "/", sockets.clone(), config).expect("config");
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
    let broker = Arc::new(tokio::task::block_in_place(|| PrivateRabbitMq::start_plain("amqp-restart")));
    let case = async {
        let prefix = prefix("amqp-restart");
        let url = format!("{}?prefix={prefix}&subscription_mode=dynamic&connect_timeout_ms=1000", broker.url());
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
        // a publish-only process (an emitter) on the same broker
        let emitter = AmqpTransport::connect(&opts).await.expect("connect the emitter");

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
        let b = broker.clone();
        tokio::task::spawn_blocking(move || b.ctl(&["stop_app"])).await.expect("join").expect("stop_app");
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
        let b = broker.clone();
        tokio::task::spawn_blocking(move || b.ctl(&["start_app"])).await.expect("join").expect("start_app");
        let restarted = started.elapsed();
        eventually("every node and the emitter reconnected", WAIT, || {
            transports.iter().chain([&emitter]).all(|t| t.is_connected() && t.stats().reconnects >= 1)
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
        // the emitter publishes again, still without a queue of its own
        let msg = Message::new(
            Some(EMITTER_UID.to_owned()),
            "/",
            Body::Broadcast { packet: EventPacket::new("from-emitter", vec![]), opts: BroadcastOptions::all() },
        );
        let out = opts.dialect().encode(&msg).expect("encode");
        emitter.publish(&out.channel, out.payload).await.expect("the emitter publishes after the restart");
        eventually("the emitter's broadcast", WAIT, || nodes.iter().all(|n| !n.sockets.got("from-emitter").is_empty()))
            .await;
        assert_eq!(emitter.queue_name(), None, "a publish-only transport declared a queue");

        let new_queues: Vec<String> = transports.iter().map(|t| t.queue_name().expect("queue")).collect();
        assert_eq!(broker.queues().len(), 3, "one queue per node and none for the emitter");
        let queues = broker.queues();
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
            let queues = broker.queues();
            new_queues.iter().all(|q| !queues.contains(q))
        })
        .await;
    };
    tokio::time::timeout(Duration::from_secs(120), case).await.expect("case did not finish within 120 s");
}
