//! Three in-process nodes over the memory transport, in both ways of counting servers
//! (broker count with the classic dialect, heartbeats with the ClusterAdapter dialect),
//! with paused time for every timeout: failures (nodes dying mid-request, silent nodes,
//! deaf subscriptions, bounded request maps, undecodable input) and modes. The cases every
//! transport shares (each cluster operation across 3 nodes) are the conformance suite,
//! run in-process by `conformance_memory.rs`.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use socketio_adapter_core::dialect::{Dialect, NodeClusterDialect, NodeRedisDialect, SubscriptionMode};
use socketio_adapter_core::memory::{MemoryHub, MemoryTransport};
use socketio_adapter_core::testing::Recorder;
use socketio_adapter_core::{
    Adapter, AdapterError, BroadcastOptions, ClusterAdapter, ClusterConfig, ClusterCore, EventPacket, Transport,
    TransportEvent, Value,
};
use tokio::sync::mpsc;

struct Node {
    adapter: ClusterAdapter<MemoryTransport>,
    sockets: Arc<Recorder>,
    transport: MemoryTransport,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Flavor {
    /// classic dialect, servers counted by the broker (like Redis NUMSUB)
    Broker,
    /// ClusterAdapter dialect, servers counted by heartbeats (like Kafka, AMQP)
    Heartbeat,
}

fn dialect(flavor: Flavor) -> Arc<dyn Dialect> {
    match flavor {
        Flavor::Broker => Arc::new(NodeRedisDialect::default()),
        Flavor::Heartbeat => Arc::new(NodeClusterDialect::default()),
    }
}

fn hub(flavor: Flavor) -> MemoryHub {
    match flavor {
        Flavor::Broker => MemoryHub::counting(),
        Flavor::Heartbeat => MemoryHub::new(),
    }
}

async fn node(hub: &MemoryHub, dialect: Arc<dyn Dialect>, name: &str, config: ClusterConfig) -> Node {
    let transport = hub.transport();
    let sockets = Recorder::new(name);
    let adapter = ClusterAdapter::new(transport.clone(), dialect, "/", sockets.clone(), config).expect("adapter");
    adapter.init().await.expect("init");
    Node { adapter, sockets, transport }
}

/// Three nodes A, B, C with sockets a1 [r1], a2 [] / b1 [r1, r2], b2 [r3] / c1 [r2].
async fn cluster(flavor: Flavor, config: ClusterConfig) -> (MemoryHub, Vec<Node>) {
    let hub = hub(flavor);
    let mut nodes = Vec::new();
    for name in ["A", "B", "C"] {
        nodes.push(node(&hub, dialect(flavor), name, config.clone()).await);
    }
    settle().await;
    let [a, b, c] = [&nodes[0], &nodes[1], &nodes[2]];
    a.adapter.add_all("a1", &["r1".into()]);
    a.adapter.add_all("a2", &[]);
    b.adapter.add_all("b1", &["r1".into(), "r2".into()]);
    b.adapter.add_all("b2", &["r3".into()]);
    c.adapter.add_all("c1", &["r2".into()]);
    settle().await;
    for n in &nodes {
        assert_eq!(n.adapter.server_count().await.expect("count"), 3, "{flavor:?}");
    }
    (hub, nodes)
}

/// Lets every in-flight message arrive (time is paused: this only advances the clock
/// once every task is idle).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

fn all() -> BroadcastOptions {
    BroadcastOptions::all()
}

fn ev(name: &str) -> EventPacket {
    EventPacket::new(name, vec![Value::from("x"), Value::Int(1)])
}

const FLAVORS: [Flavor; 2] = [Flavor::Broker, Flavor::Heartbeat];

#[tokio::test(start_paused = true)]
async fn a_node_dying_mid_request_is_named_and_does_not_hang_the_cluster() {
    for flavor in FLAVORS {
        let config = ClusterConfig::default().with_request_timeout(Duration::from_secs(5));
        let (_hub, nodes) = cluster(flavor, config).await;
        let c_id = nodes[2].adapter.node_id().to_owned();
        // C hangs: still subscribed (and counted by the broker), never answers
        nodes[2].transport.freeze();
        let started = tokio::time::Instant::now();
        let got = nodes[0].adapter.fetch_sockets(all()).await.expect("fetch");
        assert!(started.elapsed() <= Duration::from_secs(5) + Duration::from_millis(100));
        let mut ids: Vec<_> = got.value.iter().map(|s| s.id.clone()).collect();
        ids.sort();
        assert_eq!(ids, ["a1", "a2", "b1", "b2"], "{flavor:?}: what arrived");
        let s = got.shortfall.clone().expect("incomplete");
        assert_eq!((s.expected, s.received), (2, 1), "{flavor:?}");
        match flavor {
            // both know who answered: the silent node is named
            Flavor::Heartbeat => assert_eq!(s.missing_nodes, vec![c_id.clone()]),
            // classic responses are anonymous: only the numbers are known
            Flavor::Broker => assert!(s.missing_nodes.is_empty()),
        }
        let err = got.into_result().expect_err("incomplete");
        assert!(err.is_timeout());
        assert!(err.to_string().contains("1 of 2"), "{err}");
        let answers =
            nodes[1].adapter.server_side_emit_with_ack(EventPacket::new("ping", vec![]), None).await.expect("sse");
        assert_eq!(answers.value, vec![Value::from("pong from A")]);
        assert!(answers.shortfall.is_some());
        assert!(nodes[0].adapter.stats().incomplete_requests >= 1);
    }
}

#[tokio::test(start_paused = true)]
async fn silent_nodes_are_evicted_and_pending_requests_stop_waiting_for_them() {
    let config = ClusterConfig::default()
        .with_request_timeout(Duration::from_secs(30))
        .with_heartbeat_interval(Duration::from_secs(1))
        .with_heartbeat_timeout(Duration::from_secs(3));
    let (_hub, nodes) = cluster(Flavor::Heartbeat, config).await;
    let c_id = nodes[2].adapter.node_id().to_owned();
    nodes[2].transport.freeze();
    let started = tokio::time::Instant::now();
    // the request waits for C until C is evicted, far before its own 30 s timeout
    let got = nodes[0].adapter.fetch_sockets(all()).await.expect("fetch");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(2) && waited <= Duration::from_secs(5), "{waited:?}");
    assert_eq!(got.value.len(), 4);
    assert_eq!(got.shortfall.expect("C never answered").missing_nodes, vec![c_id]);
    assert_eq!(nodes[0].adapter.server_count().await.expect("count"), 2);
    assert!(nodes[0].adapter.stats().evicted_nodes >= 1);
    // afterwards requests complete at once
    let started = tokio::time::Instant::now();
    let got = nodes[1].adapter.fetch_sockets(all()).await.expect("fetch");
    assert!(got.is_complete());
    assert!(started.elapsed() < Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn a_node_dying_during_an_ack_broadcast_ends_the_stream_early() {
    let config = ClusterConfig::default()
        .with_heartbeat_interval(Duration::from_secs(1))
        .with_heartbeat_timeout(Duration::from_secs(3));
    let (_hub, nodes) = cluster(Flavor::Heartbeat, config).await;
    // c1 never acks; then C dies after announcing its client count
    nodes[2].sockets.silent.lock().unwrap().insert("c1".into());
    let stream =
        nodes[0].adapter.broadcast_with_ack(ev("q"), all().timeout(Duration::from_secs(60))).await.expect("ack");
    settle().await;
    nodes[2].transport.freeze();
    let started = tokio::time::Instant::now();
    let gathered = stream.collect().await;
    assert!(started.elapsed() < Duration::from_secs(10), "ended by the eviction, not the 60 s timeout");
    assert_eq!(gathered.value.len(), 4);
    let s = gathered.shortfall.expect("c1's ack is missing");
    assert_eq!((s.expected, s.received), (5, 4));
    assert_eq!(s.missing_nodes, vec![nodes[2].adapter.node_id().to_owned()]);
}

#[tokio::test(start_paused = true)]
async fn closing_a_node_updates_the_server_count() {
    for flavor in FLAVORS {
        let (_hub, nodes) = cluster(flavor, ClusterConfig::default()).await;
        nodes[2].adapter.close().await.expect("close");
        settle().await;
        assert_eq!(nodes[0].adapter.server_count().await.expect("count"), 2, "{flavor:?}");
        let got = nodes[0].adapter.fetch_sockets(all()).await.expect("fetch");
        assert!(got.is_complete(), "{flavor:?}");
        assert!(matches!(nodes[2].adapter.fetch_sockets(all()).await, Err(AdapterError::Closed)));
    }
}

#[tokio::test(start_paused = true)]
async fn the_pending_request_map_is_bounded_and_cleaned() {
    let config = ClusterConfig::default().with_max_pending_requests(2).with_request_timeout(Duration::from_secs(2));
    let (_hub, nodes) = cluster(Flavor::Broker, config).await;
    nodes[2].transport.freeze();
    let a = &nodes[0].adapter;
    let (r1, r2, r3) = tokio::join!(
        a.fetch_sockets(all()),
        a.server_side_emit_with_ack(EventPacket::new("ping", vec![]), None),
        async {
            // the third one starts while the two others wait
            tokio::time::sleep(Duration::from_millis(100)).await;
            a.all_rooms().await
        }
    );
    assert!(r1.expect("first").shortfall.is_some());
    assert!(r2.expect("second").shortfall.is_some());
    assert!(matches!(r3, Err(AdapterError::TooManyRequests { limit: 2 })));
    assert_eq!(a.stats().pending_requests, 0, "entries removed on timeout");
    // and on completion
    nodes[2].adapter.close().await.expect("close");
    settle().await;
    assert!(a.fetch_sockets(all()).await.expect("fetch").is_complete());
    assert_eq!(a.stats().pending_requests, 0);
}

#[tokio::test(start_paused = true)]
async fn a_deaf_subscription_is_detected_and_repaired() {
    let config = ClusterConfig::default().with_health_check_interval(Some(Duration::from_secs(2)));
    let (_hub, nodes) = cluster(Flavor::Broker, config).await;
    nodes[1].transport.deafen();
    nodes[0].adapter.broadcast(ev("lost"), all()).await.expect("broadcast");
    settle().await;
    assert!(nodes[1].sockets.got("lost").is_empty(), "deaf");
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(nodes[1].adapter.stats().resubscriptions, 1);
    nodes[0].adapter.broadcast(ev("heard"), all()).await.expect("broadcast");
    settle().await;
    assert_eq!(nodes[1].sockets.got("heard"), ["b1", "b2"]);
    assert_eq!(nodes[0].adapter.stats().resubscriptions, 0, "healthy nodes are left alone");
}

#[tokio::test(start_paused = true)]
async fn undecodable_messages_are_dropped_and_counted() {
    for flavor in FLAVORS {
        let (hub, nodes) = cluster(flavor, ClusterConfig::default()).await;
        let rogue = hub.transport();
        let main = match flavor {
            Flavor::Broker => "socket.io-request#/#",
            Flavor::Heartbeat => "socket.io#/#",
        };
        for junk in [&b"{not json"[..], &[0x93, 0xc1], &[], b"{\"type\":99,\"uid\":\"x\",\"nsp\":\"/\"}"] {
            rogue.publish(main, bytes::Bytes::copy_from_slice(junk)).await.expect("publish");
        }
        settle().await;
        assert_eq!(nodes[0].adapter.stats().undecodable, 4, "{flavor:?}");
        nodes[1].adapter.broadcast(ev("after"), all()).await.expect("broadcast");
        settle().await;
        assert_eq!(nodes[0].sockets.got("after"), ["a1", "a2"], "still working");
    }
}

#[tokio::test(start_paused = true)]
async fn dynamic_mode_routes_room_broadcasts_to_interested_nodes_only() {
    let hub = MemoryHub::new();
    let dialect: Arc<dyn Dialect> =
        Arc::new(NodeClusterDialect::default().with_subscription_mode(SubscriptionMode::Dynamic));
    let mut nodes = Vec::new();
    for name in ["A", "B", "C"] {
        nodes.push(node(&hub, dialect.clone(), name, ClusterConfig::default()).await);
    }
    settle().await;
    nodes[1].adapter.add_all("b1", &["news".into()]);
    settle().await;
    let before = nodes[2].adapter.stats().received;
    nodes[0].adapter.broadcast(ev("news"), all().to("news")).await.expect("broadcast");
    settle().await;
    assert_eq!(nodes[1].sockets.got("news"), ["b1"]);
    assert_eq!(nodes[2].adapter.stats().received, before, "C has no member of 'news': nothing reaches it");
    // when the room empties, B leaves the room channel
    nodes[1].adapter.del("b1", &"news".into());
    settle().await;
    let before = nodes[1].adapter.stats().received;
    nodes[0].adapter.broadcast(ev("news2"), all().to("news")).await.expect("broadcast");
    settle().await;
    assert_eq!(nodes[1].adapter.stats().received, before);
    // joins made by a remote request subscribe too
    nodes[0].adapter.add_sockets(all().to("b1"), vec!["sports".into()]).await.expect("join");
    settle().await;
    nodes[2].adapter.broadcast(ev("sports"), all().to("sports")).await.expect("broadcast");
    settle().await;
    assert_eq!(nodes[1].sockets.got("sports"), ["b1"]);
}

#[tokio::test(start_paused = true)]
async fn a_requester_without_sockets_is_not_counted_and_gets_every_answer() {
    for flavor in FLAVORS {
        let (hub, nodes) = cluster(flavor, ClusterConfig::default()).await;
        let uid = match flavor {
            Flavor::Broker => "requester1".to_owned(),
            Flavor::Heartbeat => socketio_adapter_core::dialect::EMITTER_UID.to_owned(),
        };
        let requester = ClusterCore::requester(hub.transport(), dialect(flavor), "/", uid, ClusterConfig::default())
            .expect("requester");
        assert_eq!(requester.server_count().await.expect("count"), 3, "{flavor:?}");
        let got = requester.fetch_sockets(all().to("r2")).await.expect("fetch").into_result().expect("complete");
        let mut ids: Vec<_> = got.into_iter().map(|s| s.id).collect();
        ids.sort();
        assert_eq!(ids, ["b1", "c1"]);
        let acks = requester.broadcast_with_ack(ev("q"), all().to("r1")).await.expect("acks").collect().await;
        assert!(acks.is_complete(), "{flavor:?}");
        assert_eq!(acks.value.len(), 2);
        // the servers still count three servers and complete their own requests
        assert_eq!(nodes[0].adapter.server_count().await.expect("count"), 3);
        assert!(nodes[0].adapter.fetch_sockets(all()).await.expect("fetch").is_complete());
    }
}

#[tokio::test(start_paused = true)]
async fn operations_before_init_and_after_close_are_errors() {
    let hub = MemoryHub::counting();
    let adapter = ClusterAdapter::new(
        hub.transport(),
        dialect(Flavor::Broker),
        "/",
        Recorder::new("A"),
        ClusterConfig::default(),
    )
    .expect("adapter");
    assert!(matches!(adapter.fetch_sockets(all()).await, Err(AdapterError::NotInitialized)));
    adapter.init().await.expect("init");
    adapter.close().await.expect("close");
    assert!(matches!(adapter.all_rooms().await, Err(AdapterError::Closed)));
    let bad = ClusterAdapter::new(
        hub.transport(),
        dialect(Flavor::Broker),
        "chat",
        Recorder::new("B"),
        ClusterConfig::default(),
    );
    assert!(bad.is_err(), "a namespace starts with '/'");
}

#[tokio::test(start_paused = true)]
async fn reconnect_events_make_heartbeat_nodes_announce_themselves() {
    let hub = MemoryHub::new();
    let a = node(&hub, dialect(Flavor::Heartbeat), "A", ClusterConfig::default()).await;
    let spy = hub.transport();
    let (tx, mut rx) = mpsc::channel(16);
    spy.subscribe(&[socketio_adapter_core::Channel::Exact("socket.io#/#".into())], tx).await.expect("spy");
    a.transport.resubscribe().await.expect("resubscribe");
    settle().await;
    let mut types = HashMap::new();
    while let Ok(TransportEvent::Message { payload, .. }) = rx.try_recv() {
        let v = socketio_adapter_core::json::parse(&payload).expect("json");
        *types.entry(v.get("type").and_then(Value::as_u64).unwrap_or(0)).or_insert(0) += 1;
    }
    assert_eq!(types.get(&1), Some(&1), "one initial heartbeat after the reconnect: {types:?}");
}

/// Two python-dialect nodes (python-socketio's protocol: no counts, no requests):
/// a broadcast with ack to a socket held by the other node gets that socket's ack
/// through a `callback` message; to a local socket nothing is published; what the
/// protocol cannot carry is refused, naming it.
#[tokio::test(start_paused = true)]
async fn python_callbacks_cross_nodes_and_requests_are_refused() {
    use socketio_adapter_core::dialect::PythonDialect;
    let hub = MemoryHub::new();
    let dialect: Arc<dyn Dialect> = Arc::new(PythonDialect::new("flask-socketio"));
    let config = ClusterConfig::default().with_request_timeout(Duration::from_secs(5));
    let a = node(&hub, dialect.clone(), "A", config.clone()).await;
    let b = node(&hub, dialect.clone(), "B", config.clone()).await;
    a.adapter.add_all("a1", &[]);
    b.adapter.add_all("b1", &["r1".into()]);
    settle().await;

    // remote socket: one callback comes back
    let gathered = a.adapter.broadcast_with_ack(ev("q"), all().to("b1")).await.expect("ack").collect().await;
    assert_eq!(gathered.value.len(), 1, "{gathered:?}");
    assert!(gathered.shortfall.is_none(), "{gathered:?}");
    assert_eq!(b.sockets.got("q"), ["b1"]);
    // local socket: answered locally
    let published = a.adapter.stats().published;
    let gathered = a.adapter.broadcast_with_ack(ev("l"), all().to("a1")).await.expect("ack").collect().await;
    assert_eq!(gathered.value.len(), 1, "{gathered:?}");
    assert_eq!(a.adapter.stats().published, published, "nothing published for a local socket");
    // nobody holds it: the timeout, one ack missing
    let gathered = a.adapter.broadcast_with_ack(ev("n"), all().to("zz")).await.expect("ack").collect().await;
    let s = gathered.shortfall.expect("nobody answered");
    assert_eq!((s.expected, s.received), (1, 0));

    for e in [
        a.adapter.server_count().await.unwrap_err(),
        a.adapter.fetch_sockets(all()).await.unwrap_err(),
        a.adapter.all_rooms().await.unwrap_err(),
    ] {
        assert!(matches!(e, AdapterError::Dialect(_)), "{e}");
        assert!(e.to_string().contains("python"), "{e}");
    }
}
