//! The cluster-logic conformance suite: every cluster operation across 3 nodes. Each
//! transport's broker suite provides a [`Backend`] and instantiates it with
//! [`conformance_suite!`](crate::conformance_suite); so does adapter-core's in-process
//! suite over the memory transport, so that one set of cases serves both.
//!
//! Every case uses its own channel prefix, so cases run in parallel against one broker.
//! Waits are polls with a deadline, never fixed sleeps standing in for a result.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::dialect::Dialect;
use crate::testing::{Recorder, lock, short, sid};
use crate::{Adapter, BroadcastOptions, ClusterAdapter, ClusterConfig, EventPacket, Room, Transport, Value};

/// How to reach one broker in one mode.
pub trait Backend: Send + Sync + 'static {
    /// The transport.
    type T: Transport;
    /// A short name for messages.
    fn name(&self) -> String;
    /// The dialect, with this channel prefix.
    fn dialect(&self, prefix: &str) -> Arc<dyn Dialect>;
    /// A fresh transport (its own connections): one per node.
    fn connect(&self, prefix: &str) -> impl Future<Output = Self::T> + Send;
    /// The cluster configuration.
    fn config(&self) -> ClusterConfig {
        ClusterConfig::default()
            .with_request_timeout(Duration::from_secs(3))
            .with_heartbeat_interval(Duration::from_millis(500))
            .with_heartbeat_timeout(Duration::from_millis(1500))
    }
}

/// One node of a test cluster.
#[derive(Debug)]
pub struct Node<T: Transport> {
    /// The adapter of namespace `/`.
    pub adapter: ClusterAdapter<T>,
    /// What it delivered.
    pub sockets: Arc<Recorder>,
}

/// A unique channel prefix for one case.
pub fn prefix(case: &str) -> String {
    format!("sio-test-{case}-{:08x}", fastrand::u32(..))
}

/// Polls `cond` every 10 ms until it holds or `within` passes.
pub async fn eventually(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Starts one node of namespace `nsp`.
pub async fn node<B: Backend>(b: &B, prefix: &str, nsp: &str, name: &str) -> Node<B::T> {
    node_with(b, prefix, nsp, name, b.config()).await
}

/// Starts one node of namespace `nsp` with `config`.
pub async fn node_with<B: Backend>(b: &B, prefix: &str, nsp: &str, name: &str, config: ClusterConfig) -> Node<B::T> {
    let sockets = Recorder::new(name);
    let transport = b.connect(prefix).await;
    let adapter =
        ClusterAdapter::new(transport, b.dialect(prefix), nsp, sockets.clone(), config).expect("adapter config");
    adapter.init().await.expect("adapter init");
    Node { adapter, sockets }
}

/// Waits until every node sees `n` servers and has applied its room subscriptions.
pub async fn converge<T: Transport>(nodes: &[Node<T>], n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    for node in nodes {
        loop {
            let count = node.adapter.server_count().await.expect("server count");
            let pending = node.adapter.stats().room_channels_pending;
            if count == n && pending == 0 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "node {} sees {count} servers (want {n}), {pending} room subscriptions pending",
                node.sockets.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Three nodes A, B, C with sockets `a1 [r1], a2 [] / b1 [r1, r2], b2 [r3] / c1 [r2]`.
pub async fn cluster<B: Backend>(b: &B, case: &str) -> (String, Vec<Node<B::T>>) {
    let prefix = prefix(case);
    let mut nodes = Vec::new();
    for name in ["A", "B", "C"] {
        nodes.push(node(b, &prefix, "/", name).await);
    }
    let [a, bn, c] = [&nodes[0], &nodes[1], &nodes[2]];
    a.adapter.add_all(&sid("a1"), &["r1".into()]);
    a.adapter.add_all(&sid("a2"), &[]);
    bn.adapter.add_all(&sid("b1"), &["r1".into(), "r2".into()]);
    bn.adapter.add_all(&sid("b2"), &["r3".into()]);
    c.adapter.add_all(&sid("c1"), &["r2".into()]);
    converge(&nodes, 3).await;
    (prefix, nodes)
}

fn all() -> BroadcastOptions {
    BroadcastOptions::all()
}

fn ev(name: &str) -> EventPacket {
    EventPacket::new(name, vec![Value::from("x"), Value::Int(1)])
}

fn everyone_got<T: Transport>(nodes: &[Node<T>], event: &str) -> Vec<String> {
    let mut v: Vec<String> = nodes.iter().flat_map(|n| n.sockets.got(event)).collect();
    v.sort();
    v
}

/// Waits until `event` reached exactly `want` sockets across `nodes`, then publishes a
/// barrier from `from` and waits for it everywhere, so that any extra delivery would
/// have arrived too, and checks again.
async fn delivered_exactly<T: Transport>(nodes: &[Node<T>], event: &str, want: &[&str]) {
    eventually(&format!("{event} to reach {want:?}"), Duration::from_secs(5), || {
        everyone_got(nodes, event).len() >= want.len()
    })
    .await;
    let barrier = format!("barrier-{}", fastrand::u32(..));
    for n in nodes {
        n.adapter.broadcast(EventPacket::new(&barrier, vec![]), all()).await.expect("barrier");
    }
    eventually("barriers", Duration::from_secs(5), || {
        nodes.iter().all(|n| n.sockets.got(&barrier).len() == nodes.len() * n.adapter.local_sockets(&[]).len())
    })
    .await;
    assert_eq!(everyone_got(nodes, event), want, "{event}");
}

/// Broadcasts reach exactly the matching sockets: all, rooms (union), except, socket ids
/// as rooms, local, volatile; arguments arrive intact; namespaces are isolated.
pub async fn broadcasts<B: Backend>(b: &B) {
    let (prefix, nodes) = cluster(b, "bc").await;
    let a = &nodes[0].adapter;
    a.broadcast(ev("all"), all()).await.expect("broadcast");
    a.broadcast(ev("r1"), all().to("r1")).await.expect("broadcast");
    a.broadcast(ev("r1r2"), all().to("r1").to("r2")).await.expect("broadcast");
    a.broadcast(ev("not_r1"), all().except("r1")).await.expect("broadcast");
    a.broadcast(ev("r2_not"), all().to("r2").except(sid("b2")).except(sid("c1"))).await.expect("broadcast");
    a.broadcast(ev("sid"), all().to(sid("c1")).to(sid("a2"))).await.expect("broadcast");
    a.broadcast(ev("local"), all().local()).await.expect("broadcast");
    a.broadcast(ev("nobody"), all().to("r404")).await.expect("broadcast");
    nodes[1].adapter.broadcast(ev("volatile"), all().to("r3").volatile()).await.expect("broadcast");
    let binary = EventPacket::new(
        "binary",
        vec![
            Value::Binary(vec![0u8, 1, 2, 255].into()),
            Value::UInt(u64::MAX),
            Value::Float(1.5),
            Value::Map([("k".to_owned(), Value::Array(vec![Value::Null, Value::Bool(true)]))].into_iter().collect()),
        ],
    );
    nodes[2].adapter.broadcast(binary.clone(), all().to("r1")).await.expect("broadcast");

    delivered_exactly(&nodes, "all", &["a1", "a2", "b1", "b2", "c1"]).await;
    delivered_exactly(&nodes, "r1", &["a1", "b1"]).await;
    delivered_exactly(&nodes, "r1r2", &["a1", "b1", "c1"]).await;
    delivered_exactly(&nodes, "not_r1", &["a2", "b2", "c1"]).await;
    delivered_exactly(&nodes, "r2_not", &["b1"]).await;
    delivered_exactly(&nodes, "sid", &["a2", "c1"]).await;
    delivered_exactly(&nodes, "local", &["a1", "a2"]).await;
    delivered_exactly(&nodes, "nobody", &[]).await;
    delivered_exactly(&nodes, "volatile", &["b2"]).await;
    delivered_exactly(&nodes, "binary", &["a1", "b1"]).await;
    assert!(nodes[1].sockets.deliveries("volatile").iter().all(|(_, _, v)| *v), "volatile flag crosses the wire");
    assert_eq!(nodes[2].sockets.packets("all")[0].args, vec![Value::from("x"), Value::Int(1)]);
    assert_eq!(nodes[1].sockets.packets("binary")[0].args, binary.args, "binary, big ints, floats, maps intact");

    // another namespace on the same broker and prefix is isolated
    let admin = [node(b, &prefix, "/admin", "A-admin").await, node(b, &prefix, "/admin", "C-admin").await];
    admin[1].adapter.add_all(&sid("adm1"), &[]);
    converge(&admin, 2).await;
    admin[0].adapter.broadcast(ev("admin"), all()).await.expect("broadcast");
    a.broadcast(ev("root-only"), all()).await.expect("broadcast");
    eventually("admin broadcast", Duration::from_secs(5), || admin[1].sockets.got("admin") == ["adm1"]).await;
    delivered_exactly(&nodes, "root-only", &["a1", "a2", "b1", "b2", "c1"]).await;
    assert!(everyone_got(&nodes, "admin").is_empty(), "/admin broadcast leaked into /");
    assert!(admin[1].sockets.got("root-only").is_empty(), "/ broadcast leaked into /admin");
}

/// Broadcast with acks: every client's ack across the cluster, the count first.
pub async fn acks<B: Backend>(b: &B) {
    let (prefix, nodes) = cluster(b, "ack").await;
    let stream =
        nodes[0].adapter.broadcast_with_ack(ev("q"), all().timeout(Duration::from_secs(3))).await.expect("ack");
    let gathered = stream.collect().await;
    assert!(gathered.is_complete(), "{:?}", gathered.shortfall);
    let mut values: Vec<String> =
        gathered.value.iter().map(|a| a.result.clone().expect("ok").as_str().expect("str").to_owned()).collect();
    values.sort();
    assert_eq!(values, ["ack:a1", "ack:a2", "ack:b1", "ack:b2", "ack:c1"]);
    // local acks name their socket, remote ones their node where the protocol says
    assert!(gathered.value.iter().any(|a| a.socket.as_deref() == Some(sid("a1").as_str())));
    if b.dialect(&prefix).capabilities().identified_responses {
        let node_b = nodes[1].adapter.node_id().to_owned();
        assert!(gathered.value.iter().any(|a| a.node.as_deref() == Some(node_b.as_str())), "acks name node B");
    }

    // members on one remote node only
    let mut stream = nodes[2].adapter.broadcast_with_ack(ev("q2"), all().to("r3")).await.expect("ack");
    let first = futures_util::StreamExt::next(&mut stream).await.expect("one ack");
    assert_eq!(stream.expected_clients(), 1);
    assert_eq!(first.result, Ok(Value::from("ack:b2")));
    assert!(futures_util::StreamExt::next(&mut stream).await.is_none());
    assert!(stream.shortfall().is_none());

    // nobody: completes at once with nothing
    let gathered = nodes[1].adapter.broadcast_with_ack(ev("q3"), all().to("r404")).await.expect("ack").collect().await;
    assert!(gathered.is_complete() && gathered.value.is_empty());
}

/// A client that never acks: the stream ends at the timeout with what arrived.
pub async fn ack_timeout<B: Backend>(b: &B) {
    let (_prefix, nodes) = cluster(b, "ackto").await;
    lock(&nodes[1].sockets.silent).insert(sid("b1"));
    let started = tokio::time::Instant::now();
    let gathered = nodes[0]
        .adapter
        .broadcast_with_ack(ev("q"), all().to("r1").timeout(Duration::from_millis(1500)))
        .await
        .expect("ack")
        .collect()
        .await;
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(1400) && elapsed < Duration::from_secs(5), "{elapsed:?}");
    let s = gathered.shortfall.expect("incomplete");
    assert_eq!((s.expected, s.received), (2, 1));
    assert_eq!(gathered.value.len(), 1);
    assert_eq!(gathered.value[0].result, Ok(Value::from("ack:a1")));
}

/// fetch sockets and all rooms see every node.
pub async fn fetch_and_rooms<B: Backend>(b: &B) {
    let (_prefix, nodes) = cluster(b, "fetch").await;
    let got = nodes[2].adapter.fetch_sockets(all().to("r1").to("r3")).await.expect("fetch");
    assert!(got.is_complete(), "{:?}", got.shortfall);
    let mut ids: Vec<_> = got.value.iter().map(|s| short(&s.id)).collect();
    ids.sort();
    assert_eq!(ids, ["a1", "b1", "b2"]);
    let b1 = got.value.iter().find(|s| s.id == sid("b1")).expect("b1");
    let mut rooms: Vec<String> = b1.rooms.iter().map(|r| r.as_str().to_owned()).collect();
    rooms.sort();
    assert_eq!(rooms, [sid("b1"), "r1".into(), "r2".into()]);
    assert_eq!(b1.data.get("node"), Some(&Value::from("B")), "socket data crosses the wire");

    let everyone = nodes[0].adapter.fetch_sockets(all().except("r2")).await.expect("fetch").into_result();
    let mut ids: Vec<_> = everyone.expect("complete").into_iter().map(|s| short(&s.id)).collect();
    ids.sort();
    assert_eq!(ids, ["a1", "a2", "b2"]);

    let rooms = nodes[1].adapter.all_rooms().await.expect("rooms").into_result().expect("complete");
    let mut names: Vec<String> = rooms.iter().map(|r| short(r.as_str())).collect();
    names.sort();
    assert_eq!(names, ["a1", "a2", "b1", "b2", "c1", "r1", "r2", "r3"]);
}

fn rooms_of<T: Transport>(n: &Node<T>, s: &str) -> Vec<String> {
    let mut r: Vec<String> =
        n.adapter.socket_rooms(&sid(s)).unwrap_or_default().iter().map(|r| short(r.as_str())).collect();
    r.sort();
    r
}

/// socketsJoin / socketsLeave / disconnectSockets apply on every node, the sender too.
pub async fn join_leave_disconnect<B: Backend>(b: &B) {
    let (_prefix, nodes) = cluster(b, "jld").await;
    nodes[0].adapter.add_sockets(all().to("r2"), vec![Room::from("vip"), Room::from("r9")]).await.expect("join");
    eventually("join", Duration::from_secs(5), || rooms_of(&nodes[2], "c1").contains(&"vip".to_owned())).await;
    eventually("join", Duration::from_secs(5), || rooms_of(&nodes[1], "b1") == ["b1", "r1", "r2", "r9", "vip"]).await;
    assert_eq!(rooms_of(&nodes[0], "a1"), ["a1", "r1"]);

    nodes[0].adapter.add_sockets(all().to("r1"), vec![Room::from("front")]).await.expect("join incl. sender");
    eventually("sender joins too", Duration::from_secs(5), || rooms_of(&nodes[0], "a1").contains(&"front".into()))
        .await;

    nodes[2].adapter.del_sockets(all().except(sid("c1")), vec![Room::from("vip")]).await.expect("leave");
    eventually("leave", Duration::from_secs(5), || !rooms_of(&nodes[1], "b1").contains(&"vip".to_owned())).await;
    assert!(rooms_of(&nodes[2], "c1").contains(&"vip".to_owned()));
    assert_eq!(nodes[1].adapter.local_sockets(&["r9".into()]), vec![sid("b1")], "the room index follows");

    nodes[1].adapter.disconnect_sockets(all().to("r1"), true).await.expect("disconnect");
    eventually("disconnect", Duration::from_secs(5), || {
        lock(&nodes[0].sockets.disconnected).len() == 1 && lock(&nodes[1].sockets.disconnected).len() == 1
    })
    .await;
    assert_eq!(*lock(&nodes[0].sockets.disconnected), vec![("a1".to_owned(), true)]);
    assert_eq!(*lock(&nodes[1].sockets.disconnected), vec![("b1".to_owned(), true)]);
    // a broadcast after the request proves it had its chance to arrive at C
    delivered_exactly(&nodes, "after", &[]).await;
    assert!(lock(&nodes[2].sockets.disconnected).is_empty());
}

/// Server-side emit reaches every other node; with ack, their answers come back.
pub async fn server_side_emit<B: Backend>(b: &B) {
    let (_prefix, nodes) = cluster(b, "sse").await;
    nodes[0].adapter.server_side_emit(EventPacket::new("hello", vec![1.into()])).await.expect("emit");
    eventually("server-side emit", Duration::from_secs(5), || {
        nodes[1..].iter().all(|n| lock(&n.sockets.server_events).len() == 1)
    })
    .await;
    for n in &nodes[1..] {
        assert_eq!(lock(&n.sockets.server_events)[0].args, vec![Value::Int(1)]);
    }
    let answers = nodes[1]
        .adapter
        .server_side_emit_with_ack(EventPacket::new("ping", vec![]), None)
        .await
        .expect("emit with ack")
        .into_result()
        .expect("complete");
    let mut answers: Vec<String> = answers.iter().map(|v| v.as_str().expect("str").to_owned()).collect();
    answers.sort();
    assert_eq!(answers, ["pong from A", "pong from C"]);
    assert!(lock(&nodes[0].sockets.server_events).iter().all(|p| p.event != "hello"), "not delivered to the sender");
}

/// The server count follows nodes joining and leaving (close, and vanishing without close).
pub async fn membership<B: Backend>(b: &B) {
    let (prefix, mut nodes) = cluster(b, "members").await;
    let d = node(b, &prefix, "/", "D").await;
    nodes.push(d);
    converge(&nodes, 4).await;
    let d = nodes.pop().expect("D");
    d.adapter.close().await.expect("close");
    converge(&nodes, 3).await;

    // C vanishes without a goodbye: requests stop waiting for it
    let c = nodes.pop().expect("C");
    drop(c);
    let started = tokio::time::Instant::now();
    converge(&nodes, 2).await;
    let got = nodes[0].adapter.fetch_sockets(all()).await.expect("fetch");
    let mut ids: Vec<_> = got.value.iter().map(|s| short(&s.id)).collect();
    ids.sort();
    assert_eq!(ids, ["a1", "a2", "b1", "b2"]);
    assert!(got.is_complete(), "{:?}", got.shortfall);
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// The maximum message size: a publish over it fails before reaching the broker
/// (nothing delivered anywhere); a message over the receiver's limit is dropped unread and
/// counted, and the receiver goes on with the next one.
pub async fn message_size<B: Backend>(b: &B) {
    let prefix = prefix("size");
    let small = node_with(b, &prefix, "/", "S", b.config().with_max_message_size(64 * 1024)).await;
    let big = node_with(b, &prefix, "/", "B", b.config().with_max_message_size(512 * 1024)).await;
    small.adapter.add_all(&sid("s1"), &[]);
    big.adapter.add_all(&sid("b1"), &[]);
    let nodes = [small, big];
    converge(&nodes, 2).await;
    let blob = |kib: usize| EventPacket::new("blob", vec![Value::from("x".repeat(kib * 1024))]);
    // over the sender's own limit: refused, nothing published
    let published = nodes[1].adapter.stats().published;
    let e = nodes[1].adapter.broadcast(blob(600), all()).await.expect_err("600 KiB over a 512 KiB limit");
    assert!(matches!(e, crate::AdapterError::MessageTooLarge { limit: 524_288, .. }), "{e}");
    assert!(e.to_string().contains("max_message_bytes"), "{e}");
    assert_eq!(nodes[1].adapter.stats().published, published, "nothing published");
    // over the receiver's limit: dropped there, delivered where it fits
    nodes[1].adapter.broadcast(blob(100), all()).await.expect("broadcast 100 KiB");
    nodes[1].adapter.broadcast(ev("after"), all()).await.expect("broadcast");
    delivered_exactly(&nodes, "after", &["b1", "s1"]).await;
    assert_eq!(everyone_got(&nodes, "blob"), ["b1"], "only the node that accepts 100 KiB");
    assert_eq!(nodes[0].adapter.stats().oversized, 1, "counted by the small node");
    assert_eq!(nodes[1].adapter.stats().oversized, 0);
}

/// Namespaces with glob metacharacters hear their own traffic only: nodes of `/n*`,
/// `/n?`, `/n[x]` and `/n\x` receive nothing of `/nx` (Redis patterns are escaped; the
/// other transports route exact names), and their own broadcasts still arrive.
pub async fn metacharacters<B: Backend>(b: &B) {
    let prefix = prefix("meta");
    let plain = [node(b, &prefix, "/nx", "X1").await, node(b, &prefix, "/nx", "X2").await];
    plain[1].adapter.add_all(&sid("x2"), &[]);
    let mut globs = Vec::new();
    for (i, nsp) in ["/n*", "/n?", "/n[x]", "/n\\x"].into_iter().enumerate() {
        let pair = [node(b, &prefix, nsp, &format!("G{i}a")).await, node(b, &prefix, nsp, &format!("G{i}b")).await];
        pair[0].adapter.add_all(&sid(&format!("g{i}")), &[]);
        globs.push(pair);
    }
    plain[0].adapter.broadcast(ev("leak"), all()).await.expect("broadcast");
    eventually("x2 got it", Duration::from_secs(5), || plain[1].sockets.got("leak").len() == 1).await;
    // published after `leak` reached a subscriber: on one broker connection it arrives
    // after `leak` would have
    for (i, pair) in globs.iter().enumerate() {
        pair[1].adapter.broadcast(ev("own"), all()).await.expect("broadcast");
        let g = format!("g{i}");
        eventually(&format!("{g} got its own"), Duration::from_secs(5), || pair[0].sockets.got("own") == [g.clone()])
            .await;
    }
    for pair in &globs {
        let n = &pair[0];
        assert!(n.sockets.got("leak").is_empty(), "{}", n.sockets.name);
        assert_eq!(n.adapter.stats().other_namespace, 0, "{} heard /nx's traffic", n.sockets.name);
    }
}

/// Runs one case with an overall deadline, so that a hang fails the test instead of
/// stalling the suite.
pub async fn run(case: impl Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(60), case).await.expect("case did not finish within 60 s");
}

/// Instantiates the conformance suite for a backend: one `#[tokio::test]` per case.
///
/// A backend over the in-memory transport (the broker suites in `tests/` do the same
/// with Redis, Kafka and RabbitMQ):
///
/// ```
/// use std::sync::Arc;
/// use socketio_adapter_core::dialect::{Dialect, NodeClusterDialect};
/// use socketio_adapter_core::conformance_suite;
/// use socketio_adapter_core::memory::{MemoryHub, MemoryTransport};
/// use socketio_adapter_core::testing::conformance::Backend;
///
/// struct Memory(MemoryHub);
///
/// impl Backend for Memory {
///     type T = MemoryTransport;
///     fn name(&self) -> String {
///         "memory".into()
///     }
///     fn dialect(&self, prefix: &str) -> Arc<dyn Dialect> {
///         Arc::new(NodeClusterDialect::new(prefix))
///     }
///     async fn connect(&self, _prefix: &str) -> MemoryTransport {
///         self.0.transport()
///     }
/// }
///
/// conformance_suite!(memory, Memory(MemoryHub::new()));
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! conformance_suite {
    ($module:ident, $backend:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn broadcasts() {
                $crate::testing::conformance::run($crate::testing::conformance::broadcasts(&$backend)).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn acks() {
                $crate::testing::conformance::run($crate::testing::conformance::acks(&$backend)).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn ack_timeout() {
                $crate::testing::conformance::run($crate::testing::conformance::ack_timeout(&$backend)).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn fetch_and_rooms() {
                $crate::testing::conformance::run($crate::testing::conformance::fetch_and_rooms(&$backend)).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn join_leave_disconnect() {
                $crate::testing::conformance::run($crate::testing::conformance::join_leave_disconnect(&$backend)).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn server_side_emit() {
                $crate::testing::conformance::run($crate::testing::conformance::server_side_emit(&$backend)).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn message_size() {
                $crate::testing::conformance::run($crate::testing::conformance::message_size(&$backend)).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn metacharacters() {
                $crate::testing::conformance::run($crate::testing::conformance::metacharacters(&$backend)).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn membership() {
                $crate::testing::conformance::run($crate::testing::conformance::membership(&$backend)).await
            }
        }
    };
}
