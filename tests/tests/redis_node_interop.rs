//! Interop with real Node.js peers over real Redis: socket.io 4.8 servers with
//! `@socket.io/redis-adapter` 8.3, `socket.io-client` 4.8 clients and
//! `@socket.io/redis-emitter` 5.1 (see `tests/node/peer.js`), against Rust nodes built on
//! `ClusterAdapter<RedisTransport>` whose sockets are [`Recorder`]s.
//!
//! Every scenario runs in classic mode (`createAdapter`; also with
//! `publishOnSpecificResponseChannel` on both sides) and in sharded mode
//! (`createShardedAdapter`, subscription mode `dynamic`) on standalone Redis, and in
//! sharded mode on the 3-master Redis Cluster; and in streams mode against
//! `@socket.io/redis-streams-adapter` 0.3.1 (standalone, and on the cluster with 3 streams
//! and sharded pub/sub). `@socket.io/redis-emitter` only speaks the classic protocol; in
//! the ClusterAdapter modes the events come from a Node.js server instead (the same calls
//! on `io`).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value as Json, json};
use socketio_adapter_core::{Adapter, BroadcastOptions, ClusterAdapter, ClusterConfig, EventPacket, Room, Value};
use socketio_adapter_redis::{RedisOptions, RedisTransport};
use socketio_cluster_tests::conformance::{eventually, prefix, run};
use socketio_cluster_tests::node::{NodePeer, free_port};
use socketio_cluster_tests::recorder::{Recorder, lock, sid};
use socketio_cluster_tests::wire::from_json;
use socketio_cluster_tests::{env, redis_cluster_url};

const WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Classic,
    /// classic with `publishOnSpecificResponseChannel` on both sides
    ClassicSpecific,
    Sharded,
    ClusterSharded,
    /// `@socket.io/redis-streams-adapter`
    Streams,
    /// the same with 3 streams and sharded pub/sub on the Redis Cluster
    ClusterStreams,
}

impl Mode {
    /// A `ClusterAdapter` protocol (sharded or streams): no emitter, no `allRooms` on
    /// Node.js, server-side emits in MessagePack.
    fn sharded(self) -> bool {
        matches!(self, Mode::Sharded | Mode::ClusterSharded | Mode::Streams | Mode::ClusterStreams)
    }

    fn on_cluster(self) -> bool {
        matches!(self, Mode::ClusterSharded | Mode::ClusterStreams)
    }

    fn rust_url(self, prefix: &str) -> String {
        let base = if self.on_cluster() { redis_cluster_url() } else { env("REDIS_URL") };
        let mode = match self {
            Mode::Classic => String::new(),
            Mode::ClassicSpecific => "&specific_response_channel=true".into(),
            Mode::Sharded | Mode::ClusterSharded => "&mode=sharded&subscription_mode=dynamic".into(),
            Mode::Streams => format!("&mode=streams&stream={prefix}"),
            Mode::ClusterStreams => format!("&mode=streams&stream={prefix}&stream_count=3&sharded_pubsub=true"),
        };
        format!("{base}?prefix={prefix}&request_timeout_ms=3000{mode}")
    }

    fn peer_config(self, name: &str, prefix: &str, server: bool) -> (Json, u16) {
        let port = free_port();
        let mut cfg = json!({
            "name": name, "port": port, "prefix": prefix, "requestsTimeout": 3000, "server": server,
            "mode": match self {
                Mode::Streams | Mode::ClusterStreams => "streams",
                Mode::Sharded | Mode::ClusterSharded => "sharded",
                _ => "classic",
            },
            "subscriptionMode": "dynamic", "stream": prefix,
            "streamCount": if self == Mode::ClusterStreams { 3 } else { 1 },
            "shardedPubSub": self == Mode::ClusterStreams,
            "redis": env("REDIS_URL"), "specificResponse": self == Mode::ClassicSpecific,
        });
        if self.on_cluster() {
            cfg["cluster"] = env("REDIS_CLUSTER_URLS").split(',').collect::<Vec<_>>().into();
        }
        (cfg, port)
    }

    async fn peer(self, name: &str, prefix: &str, server: bool) -> NodePeer {
        NodePeer::start(name, self.peer_config(name, prefix, server).0).await
    }
}

/// A Rust node: namespaces `/` and `/admin` on one transport.
struct RustNode {
    root: ClusterAdapter<RedisTransport>,
    admin: ClusterAdapter<RedisTransport>,
    rec: Arc<Recorder>,
    admin_rec: Arc<Recorder>,
}

impl RustNode {
    async fn start(mode: Mode, prefix: &str, name: &str) -> RustNode {
        let url = mode.rust_url(prefix);
        let opts = RedisOptions::parse(&url).expect("url");
        let transport = RedisTransport::connect(&opts).await.expect("connect to Redis");
        let config = ClusterConfig::default().with_request_timeout(Duration::from_secs(3));
        let rec = Recorder::new(name);
        let admin_rec = Recorder::new(name);
        let root =
            ClusterAdapter::new(transport.clone(), opts.dialect(), "/", rec.clone(), config.clone()).expect("config");
        let admin =
            ClusterAdapter::new(transport, opts.dialect(), "/admin", admin_rec.clone(), config).expect("config");
        root.init().await.expect("init /");
        admin.init().await.expect("init /admin");
        RustNode { root, admin, rec, admin_rec }
    }

    /// Waits until this node sees `n` servers and has its room channels.
    async fn converge(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let count = self.root.server_count().await.expect("server count");
            let pending = self.root.stats().room_channels_pending + self.admin.stats().room_channels_pending;
            if count == n && pending == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "Rust node sees {count} servers (want {n}), {pending} pending"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn rooms_of(&self, short_name: &str) -> BTreeSet<String> {
        self.root
            .socket_rooms(&sid(short_name))
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.as_str().to_owned())
            .collect()
    }
}

fn rooms(names: &[&str]) -> Vec<Room> {
    names.iter().map(|r| Room::from(*r)).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Names of the Node.js clients (of all `peers`) that received `event`, sorted.
async fn node_got(peers: &mut [&mut NodePeer], event: &str) -> Vec<String> {
    let mut names = Vec::new();
    for p in peers.iter_mut() {
        names.extend(p.got(event).await);
    }
    names.sort();
    names
}

fn binary_args() -> Json {
    json!(["text", 42, -7, 1.5, true, null, {"$bin": "AAEC/w=="}, {"nested": {"deep": [1, {"$bin": "aGk="}]}}, [1, "two"]])
}

fn check_binary_args(args: &[Value]) {
    let want: Vec<Value> = binary_args().as_array().expect("array").iter().map(from_json).collect();
    assert_eq!(args, want.as_slice(), "decoded arguments");
    assert_eq!(args[6], Value::Binary(vec![0u8, 1, 2, 255].into()), "binary attachment");
}

// --------------------------------------------------------------------------------------
// 1. Events and operations from Node.js (the emitter, or a sharded Node.js server) into
//    a Rust node: what the Rust node delivers locally.
// --------------------------------------------------------------------------------------

/// Who publishes: `@socket.io/redis-emitter` (classic) or a Node.js server (sharded).
struct Source {
    peer: NodePeer,
    emitter: bool,
}

impl Source {
    async fn act(&mut self, action: &str, mut args: Json) {
        if self.emitter {
            args["action"] = json!(action);
            self.peer.call("emitter", args).await;
        } else {
            let op = if action == "emit" { "broadcast" } else { action };
            self.peer.call(op, args).await;
        }
    }
}

async fn node_into_rust(mode: Mode) {
    let prefix = prefix("into");
    let rust = RustNode::start(mode, &prefix, "R").await;
    rust.root.add_all(&sid("r1"), &rooms(&["room1"]));
    rust.root.add_all(&sid("r2"), &rooms(&["room1", "room2"]));
    rust.root.add_all(&sid("r3"), &rooms(&["room3"]));
    rust.root.add_all(&sid("r4"), &[]);
    rust.admin.add_all(&sid("x1"), &rooms(&["room1"]));
    let emitter = !mode.sharded();
    let mut src = Source { peer: mode.peer("SRC", &prefix, !emitter).await, emitter };
    rust.converge(if emitter { 1 } else { 2 }).await;

    // (event, emit arguments, receivers in `/`, receivers in `/admin`)
    let cases: Vec<(&str, Json, &[&str], &[&str])> = vec![
        ("e_all", json!({}), &["r1", "r2", "r3", "r4"], &[]),
        ("e_room", json!({"to": ["room1"]}), &["r1", "r2"], &[]),
        ("e_rooms", json!({"to": ["room2", "room3"]}), &["r2", "r3"], &[]),
        ("e_except", json!({"to": ["room1"], "except": ["room2"]}), &["r1"], &[]),
        ("e_all_except", json!({"except": ["room1"]}), &["r3", "r4"], &[]),
        ("e_admin", json!({"nsp": "/admin"}), &[], &["x1"]),
        ("e_admin_room", json!({"nsp": "/admin", "to": ["room2"]}), &[], &[]),
        ("e_binary", json!({"to": ["room3"], "args": binary_args()}), &["r3"], &[]),
        ("e_volatile", json!({"to": ["room2"], "volatile": true}), &["r2"], &[]),
    ];
    for (event, args, _, _) in &cases {
        let mut args = args.clone();
        args["event"] = json!(event);
        if args.get("args").is_none() {
            args["args"] = json!(["x", 1]);
        }
        src.act("emit", args).await;
    }
    for (event, _, root, admin) in &cases {
        eventually(event, WAIT, || {
            rust.rec.got(event).len() >= root.len() && rust.admin_rec.got(event).len() >= admin.len()
        })
        .await;
    }
    // a barrier in each namespace: anything misdirected would have arrived by then
    src.act("emit", json!({"event": "zz_barrier", "args": []})).await;
    src.act("emit", json!({"event": "zz_barrier", "args": [], "nsp": "/admin"})).await;
    eventually("barrier", WAIT, || {
        rust.rec.got("zz_barrier").len() == 4 && rust.admin_rec.got("zz_barrier").len() == 1
    })
    .await;
    for (event, _, root, admin) in &cases {
        assert_eq!(rust.rec.got(event), *root, "{mode:?}: {event} in /");
        assert_eq!(rust.admin_rec.got(event), *admin, "{mode:?}: {event} in /admin");
    }
    for p in rust.rec.packets("e_all") {
        assert_eq!(p.args, vec![Value::from("x"), Value::Int(1)]);
    }
    check_binary_args(&rust.rec.packets("e_binary")[0].args);
    let volatile: Vec<bool> = rust.rec.deliveries("e_volatile").iter().map(|d| d.2).collect();
    assert_eq!(volatile, [true], "{mode:?}: volatile flag");
    assert!(rust.rec.deliveries("e_all").iter().all(|d| !d.2), "not volatile");

    // operations
    src.act("socketsJoin", json!({"to": ["room1"], "rooms": ["joined"]})).await;
    eventually("socketsJoin", WAIT, || rust.rooms_of("r2").contains("joined")).await;
    assert!(rust.rooms_of("r1").contains("joined"), "{mode:?}: r1 joined");
    assert!(!rust.rooms_of("r3").contains("joined") && !rust.rooms_of("r4").contains("joined"));

    src.act("socketsLeave", json!({"except": ["room3"], "rooms": ["room1"]})).await;
    eventually("socketsLeave", WAIT, || {
        !rust.rooms_of("r1").contains("room1") && !rust.rooms_of("r2").contains("room1")
    })
    .await;
    assert!(rust.rooms_of("r2").contains("room2"), "other rooms kept");

    src.act("disconnectSockets", json!({"to": ["room3"], "close": true})).await;
    eventually("disconnectSockets", WAIT, || !lock(&rust.rec.disconnected).is_empty()).await;
    src.act("disconnectSockets", json!({"nsp": "/admin", "close": false})).await;
    eventually("disconnectSockets /admin", WAIT, || !lock(&rust.admin_rec.disconnected).is_empty()).await;
    assert_eq!(*lock(&rust.rec.disconnected), [("r3".to_owned(), true)]);
    assert_eq!(*lock(&rust.admin_rec.disconnected), [("x1".to_owned(), false)]);

    src.act("serverSideEmit", json!({"event": "hello", "args": [1, "two", {"$bin": "AAE="}]})).await;
    eventually("serverSideEmit", WAIT, || !lock(&rust.rec.server_events).is_empty()).await;
    let events = lock(&rust.rec.server_events).clone();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event, "hello");
    // the emitter sends server-side events as JSON, where a Buffer is {"type":"Buffer","data":[..]}
    // (a Node.js server of the classic adapter receives the same); the sharded adapter
    // sends msgpack and keeps the binary
    let bin = if emitter {
        let mut m = socketio_adapter_core::Map::new();
        m.insert("type", "Buffer");
        m.insert("data", Value::Array(vec![Value::Int(0), Value::Int(1)]));
        Value::Map(m)
    } else {
        Value::Binary(vec![0u8, 1].into())
    };
    assert_eq!(events[0].args, vec![Value::Int(1), Value::from("two"), bin]);
    assert!(lock(&rust.admin_rec.server_events).is_empty(), "namespaced");
    src.peer.stop().await;
}

// --------------------------------------------------------------------------------------
// 2. A Rust node emits; Node.js servers deliver to exactly the right real clients.
// --------------------------------------------------------------------------------------

/// Two Node.js servers with clients, and a Rust node with one socket `r1` in `room1`.
///
/// N1: n1a [room1], n1b [room2]; N2: n2a [room1, room2], n2b [], n2x on /admin [room1].
async fn two_node_servers(mode: Mode, prefix: &str) -> (NodePeer, NodePeer, Json, Json) {
    let mut n1 = mode.peer("N1", prefix, true).await;
    let mut n2 = mode.peer("N2", prefix, true).await;
    let ids1 = n1
        .call("clients", json!({"clients": [{"name": "n1a", "rooms": ["room1"]}, {"name": "n1b", "rooms": ["room2"]}]}))
        .await;
    let ids2 = n2
        .call(
            "clients",
            json!({"clients": [
                {"name": "n2a", "rooms": ["room1", "room2"]}, {"name": "n2b", "rooms": []},
                {"name": "n2x", "nsp": "/admin", "rooms": ["room1"]}
            ]}),
        )
        .await;
    (n1, n2, ids1, ids2)
}

/// Broadcasts `event` from `rust` to `to` until every Node.js client in `expect` got it
/// (the sharded adapter subscribes to a room's channel asynchronously after a join).
async fn warm_up(rust: &RustNode, peers: &mut [&mut NodePeer], to: &[&str], expect: &[&str]) {
    let deadline = tokio::time::Instant::now() + WAIT;
    let event = format!("warmup-{}", to.join("-"));
    loop {
        let mut opts = BroadcastOptions::all();
        for r in to {
            opts = opts.to(*r);
        }
        rust.root.broadcast(EventPacket::new(&event, vec![]), opts).await.expect("broadcast");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let got: BTreeSet<String> = node_got(peers, &event).await.into_iter().collect();
        if expect.iter().all(|e| got.contains(*e)) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "warm-up to {to:?}: only {got:?} of {expect:?}");
    }
}

async fn rust_into_node(mode: Mode) {
    let prefix = prefix("out");
    let rust = RustNode::start(mode, &prefix, "R").await;
    rust.root.add_all(&sid("r1"), &rooms(&["room1"]));
    let (mut n1, mut n2, _, _) = two_node_servers(mode, &prefix).await;
    rust.converge(3).await;
    warm_up(&rust, &mut [&mut n1, &mut n2], &["room1"], &["n1a", "n2a"]).await;
    warm_up(&rust, &mut [&mut n1, &mut n2], &["room2"], &["n1b", "n2a"]).await;

    let args = vec![Value::from("x"), Value::Int(1)];
    let cases: Vec<(&str, BroadcastOptions, bool, &[&str], bool)> = vec![
        // (event, options, to /admin, Node.js receivers, r1 receives)
        ("e_all", BroadcastOptions::all(), false, &["n1a", "n1b", "n2a", "n2b"], true),
        ("e_room", BroadcastOptions::all().to("room1"), false, &["n1a", "n2a"], true),
        ("e_rooms", BroadcastOptions::all().to("room1").to("room2"), false, &["n1a", "n1b", "n2a"], true),
        ("e_except", BroadcastOptions::all().except("room2"), false, &["n1a", "n2b"], true),
        ("e_room_except", BroadcastOptions::all().to("room1").except("room2"), false, &["n1a"], true),
        ("e_admin", BroadcastOptions::all(), true, &["n2x"], false),
        ("e_admin_room", BroadcastOptions::all().to("room2"), true, &[], false),
    ];
    for (event, opts, admin, _, _) in &cases {
        let adapter = if *admin { &rust.admin } else { &rust.root };
        adapter.broadcast(EventPacket::new(*event, args.clone()), opts.clone()).await.expect("broadcast");
    }
    let bin: Vec<Value> = binary_args().as_array().expect("array").iter().map(from_json).collect();
    rust.root.broadcast(EventPacket::new("e_binary", bin), BroadcastOptions::all().to("room2")).await.expect("binary");

    for (event, _, _, want, _) in &cases {
        let want = want.to_vec();
        let deadline = tokio::time::Instant::now() + WAIT;
        while node_got(&mut [&mut n1, &mut n2], event).await.len() < want.len() {
            assert!(tokio::time::Instant::now() < deadline, "{mode:?}: {event} did not reach {want:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    rust.root.broadcast(EventPacket::new("zz_barrier", vec![]), BroadcastOptions::all()).await.expect("barrier");
    rust.admin.broadcast(EventPacket::new("zz_barrier", vec![]), BroadcastOptions::all()).await.expect("barrier");
    let deadline = tokio::time::Instant::now() + WAIT;
    while node_got(&mut [&mut n1, &mut n2], "zz_barrier").await.len() < 5 {
        assert!(tokio::time::Instant::now() < deadline, "{mode:?}: barrier");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (event, _, _, want, local) in &cases {
        assert_eq!(node_got(&mut [&mut n1, &mut n2], event).await, *want, "{mode:?}: {event}");
        assert_eq!(rust.rec.got(event), if *local { vec!["r1".to_owned()] } else { vec![] }, "{mode:?}: {event} local");
    }
    // volatile: Node.js drops a volatile packet while the client's transport is busy, so
    // send it until both members of room2 have had one; nobody else may ever get it
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let opts = BroadcastOptions::all().to("room2").volatile();
        rust.root.broadcast(EventPacket::new("e_volatile", args.clone()), opts).await.expect("volatile");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let got: BTreeSet<String> = node_got(&mut [&mut n1, &mut n2], "e_volatile").await.into_iter().collect();
        assert!(got.is_subset(&set(&["n1b", "n2a"])), "{mode:?}: volatile reached {got:?}");
        if got.len() == 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{mode:?}: volatile never reached room2: {got:?}");
    }
    assert!(rust.rec.got("e_volatile").is_empty());
    for (client, got) in n1.received("e_all").await {
        assert_eq!(got, [json!("x"), json!(1)], "{client}");
    }
    let mut binary = n1.received("e_binary").await;
    binary.extend(n2.received("e_binary").await);
    binary.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(binary.len(), 2, "{binary:?}");
    for (client, got) in &binary {
        assert_eq!(Json::Array(got.clone()), binary_args(), "{client}: decoded arguments");
    }
    n1.stop().await;
    n2.stop().await;
}

// --------------------------------------------------------------------------------------
// 3. A mixed cluster: 2 Node.js servers + 1 Rust node, operations in both directions.
// --------------------------------------------------------------------------------------

fn strings(j: &Json) -> BTreeSet<String> {
    j.as_array().expect("array").iter().map(|v| v.as_str().expect("string").to_owned()).collect()
}

async fn mixed_cluster(mode: Mode) {
    let prefix = prefix("mixed");
    let rust = RustNode::start(mode, &prefix, "R").await;
    rust.root.add_all(&sid("r1"), &rooms(&["room1"]));
    rust.root.add_all(&sid("r2"), &rooms(&["room3"]));
    let (mut n1, mut n2, ids1, ids2) = two_node_servers(mode, &prefix).await;
    rust.converge(3).await;
    warm_up(&rust, &mut [&mut n1, &mut n2], &["room1"], &["n1a", "n2a"]).await;
    warm_up(&rust, &mut [&mut n1, &mut n2], &["room2"], &["n1b", "n2a"]).await;
    let id = |name: &str| -> String {
        ids1.get(name).or_else(|| ids2.get(name)).and_then(Json::as_str).map(str::to_owned).unwrap_or_else(|| sid(name))
    };

    // ---- started on Node.js (each call fails on the adapter's timeout) ----
    assert_eq!(n1.call("serverCount", json!({})).await, json!(3), "{mode:?}: Node.js serverCount");
    let sockets = n1.call("fetchSockets", json!({})).await;
    let got: BTreeSet<String> =
        sockets.as_array().expect("array").iter().map(|s| s["id"].as_str().expect("id").to_owned()).collect();
    let want: BTreeSet<String> = ["n1a", "n1b", "n2a", "n2b", "r1", "r2"].iter().map(|n| id(n)).collect();
    assert_eq!(got, want, "{mode:?}: Node.js fetchSockets");
    let r1 = sockets.as_array().expect("array").iter().find(|s| s["id"] == json!(sid("r1"))).expect("r1");
    assert!(strings(&r1["rooms"]).contains("room1"), "{r1}");
    assert_eq!(r1["data"]["node"], json!("R"), "socket data from the Rust node");
    let in_room1 = n1.call("fetchSockets", json!({"to": ["room1"]})).await;
    let got: BTreeSet<String> =
        in_room1.as_array().expect("array").iter().map(|s| s["id"].as_str().expect("id").to_owned()).collect();
    assert_eq!(got, ["n1a", "n2a", "r1"].iter().map(|n| id(n)).collect(), "{mode:?}: fetchSockets to room1");

    if !mode.sharded() {
        // (the sharded adapter of Node.js has no allRooms)
        let all_rooms = strings(&n2.call("allRooms", json!({})).await);
        for r in ["room1", "room2", "room3"] {
            assert!(all_rooms.contains(r), "{mode:?}: allRooms lacks {r}: {all_rooms:?}");
        }
    }
    let ssea = n1.call("serverSideEmitWithAck", json!({"event": "ping", "args": []})).await;
    assert!(ssea.get("error").is_none(), "{mode:?}: serverSideEmitWithAck: {ssea}");
    assert_eq!(strings(&ssea["responses"]), set(&["pong from N2", "pong from R"]));

    let acks = n2.call("emitWithAck", json!({"event": "ask", "args": [1], "timeout": 3000})).await;
    assert!(acks.get("error").is_none(), "{mode:?}: emitWithAck: {acks}");
    assert_eq!(strings(&acks["responses"]), set(&["ack:n1a", "ack:n1b", "ack:n2a", "ack:n2b", "ack:r1", "ack:r2"]));

    // the Rust node has no socket in room2: it must still answer with a count of 0, or
    // Node.js would wait for it until the timeout
    let acks = n1.call("emitWithAck", json!({"event": "ask", "to": ["room2"], "timeout": 3000})).await;
    assert!(acks.get("error").is_none(), "{mode:?}: emitWithAck to room2: {acks}");
    assert_eq!(strings(&acks["responses"]), set(&["ack:n1b", "ack:n2a"]));

    n1.call("socketsJoin", json!({"to": ["room1"], "rooms": ["j1"]})).await;
    eventually("Node.js socketsJoin on the Rust node", WAIT, || rust.rooms_of("r1").contains("j1")).await;
    let n2a = n2.call("rooms", json!({"name": "n2a"})).await;
    assert!(strings(&n2a).contains("j1"), "{mode:?}: n2a joined j1: {n2a}");
    assert!(!rust.rooms_of("r2").contains("j1"));
    n1.call("socketsLeave", json!({"to": ["j1"], "rooms": ["j1"]})).await;
    eventually("Node.js socketsLeave on the Rust node", WAIT, || !rust.rooms_of("r1").contains("j1")).await;

    // ---- started on the Rust node ----
    assert_eq!(rust.root.server_count().await.expect("count"), 3);
    let fetched = rust.root.fetch_sockets(BroadcastOptions::all()).await.expect("fetch");
    assert!(fetched.is_complete(), "{mode:?}: Rust fetch_sockets: {:?}", fetched.shortfall);
    let got: BTreeSet<String> = fetched.value.iter().map(|s| s.id.clone()).collect();
    assert_eq!(got, want, "{mode:?}: Rust fetch_sockets");
    let n2x_rooms = fetched.value.iter().find(|s| s.id == id("n2a")).expect("n2a").rooms.clone();
    assert!(n2x_rooms.iter().any(|r| r.as_str() == "room2"), "rooms of a Node.js socket: {n2x_rooms:?}");
    let rooms_all = rust.root.all_rooms().await.expect("rooms");
    assert!(rooms_all.is_complete());
    let rooms_all: BTreeSet<String> = rooms_all.value.iter().map(|r| r.as_str().to_owned()).collect();
    for r in ["room1", "room2", "room3"] {
        assert!(rooms_all.contains(r), "{mode:?}: all_rooms lacks {r}");
    }
    let pongs = rust.root.server_side_emit_with_ack(EventPacket::new("ping", vec![]), None).await.expect("ssea");
    assert!(pongs.is_complete(), "{mode:?}: {:?}", pongs.shortfall);
    let pongs: BTreeSet<String> = pongs.value.iter().map(|v| v.as_str().expect("str").to_owned()).collect();
    assert_eq!(pongs, set(&["pong from N1", "pong from N2"]));
    let acks = rust
        .root
        .broadcast_with_ack(EventPacket::new("ask2", vec![]), BroadcastOptions::all().timeout(Duration::from_secs(3)))
        .await
        .expect("acks")
        .collect()
        .await;
    assert!(acks.is_complete(), "{mode:?}: broadcast_with_ack: {:?}", acks.shortfall);
    let acks: BTreeSet<String> =
        acks.value.iter().map(|a| a.result.as_ref().expect("ack").as_str().expect("str").to_owned()).collect();
    assert_eq!(acks, set(&["ack:n1a", "ack:n1b", "ack:n2a", "ack:n2b", "ack:r1", "ack:r2"]));

    rust.root.add_sockets(BroadcastOptions::all().to("room2"), rooms(&["j2"])).await.expect("join");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (a, b) = (n1.call("rooms", json!({"name": "n1b"})).await, n2.call("rooms", json!({"name": "n2a"})).await);
        if strings(&a).contains("j2") && strings(&b).contains("j2") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{mode:?}: Rust add_sockets: {a} {b}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!strings(&n1.call("rooms", json!({"name": "n1a"})).await).contains("j2"));
    rust.root.del_sockets(BroadcastOptions::all().to("j2"), rooms(&["j2"])).await.expect("leave");
    let deadline = tokio::time::Instant::now() + WAIT;
    while strings(&n2.call("rooms", json!({"name": "n2a"})).await).contains("j2") {
        assert!(tokio::time::Instant::now() < deadline, "{mode:?}: Rust del_sockets");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    rust.root.disconnect_sockets(BroadcastOptions::all().to("room1").except("room2"), true).await.expect("disconnect");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let d = n1.call("disconnected", json!({})).await;
        if d["n1a"] == json!(true) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{mode:?}: Rust disconnect_sockets: {d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eventually("local disconnect", WAIT, || !lock(&rust.rec.disconnected).is_empty()).await;
    assert_eq!(*lock(&rust.rec.disconnected), [("r1".to_owned(), true)]);
    let d2 = n2.call("disconnected", json!({})).await;
    assert_eq!(d2["n2a"], json!(false), "{mode:?}: n2a is in room2: {d2}");
    assert_eq!(n1.call("disconnected", json!({})).await["n1b"], json!(false));

    // a Node.js-started disconnect reaches the Rust node too
    n2.call("disconnectSockets", json!({"to": ["room3"]})).await;
    eventually("Node.js disconnectSockets on the Rust node", WAIT, || lock(&rust.rec.disconnected).len() == 2).await;
    assert_eq!(lock(&rust.rec.disconnected)[1], ("r2".to_owned(), false));
    n1.stop().await;
    n2.stop().await;
}

/// Classic requests of type 0 (`SOCKETS`, which Node.js servers still answer) and 1
/// (`ALL_ROOMS`) published by a plain Redis client: the Rust node answers with the same
/// JSON shape as the two Node.js servers, and the answers together are the cluster's.
async fn raw_requests_answered_like_nodejs() {
    use futures_util::StreamExt;
    let prefix = prefix("raw");
    let rust = RustNode::start(Mode::Classic, &prefix, "R").await;
    rust.root.add_all(&sid("r1"), &rooms(&["room1"]));
    rust.root.add_all(&sid("r2"), &rooms(&["room3"]));
    let (n1, n2, ids1, ids2) = two_node_servers(Mode::Classic, &prefix).await;
    rust.converge(3).await;
    let client = redis::Client::open(env("REDIS_URL")).expect("client");
    let mut sub = client.get_async_pubsub().await.expect("pubsub");
    sub.subscribe(format!("{prefix}-response#/#")).await.expect("subscribe");
    let mut publisher = client.get_multiplexed_async_connection().await.expect("connect");
    let requests = [
        ("raw-sockets", json!({"uid": "raw", "requestId": "raw-sockets", "type": 0, "rooms": ["room1"]})),
        ("raw-rooms", json!({"uid": "raw", "requestId": "raw-rooms", "type": 1})),
    ];
    for (_, r) in &requests {
        let _: i64 = redis::cmd("PUBLISH")
            .arg(format!("{prefix}-request#/#"))
            .arg(r.to_string())
            .query_async(&mut publisher)
            .await
            .expect("publish");
    }
    let mut answers: Vec<Json> = Vec::new();
    let mut stream = sub.on_message();
    while answers.len() < 6 {
        let msg = tokio::time::timeout(WAIT, stream.next()).await.expect("6 answers").expect("message");
        let payload: Vec<u8> = msg.get_payload().expect("payload");
        answers.push(serde_json::from_slice(&payload).expect("JSON answer"));
    }
    for (id, _) in &requests {
        let mine: Vec<&Json> = answers.iter().filter(|a| a["requestId"] == json!(id)).collect();
        assert_eq!(mine.len(), 3, "{id}: one answer per server: {answers:?}");
        let shapes: BTreeSet<Vec<String>> =
            mine.iter().map(|a| a.as_object().expect("object").keys().cloned().collect()).collect();
        assert_eq!(shapes.len(), 1, "{id}: the Rust node answers in the Node.js shape: {mine:?}");
    }
    let sockets: BTreeSet<String> = answers
        .iter()
        .filter(|a| a["requestId"] == json!("raw-sockets"))
        .flat_map(|a| strings(&a["sockets"]))
        .collect();
    let want: BTreeSet<String> =
        [&ids1["n1a"], &ids2["n2a"]].iter().map(|v| v.as_str().expect("id").to_owned()).chain([sid("r1")]).collect();
    assert_eq!(sockets, want, "SOCKETS of room1 across the cluster");
    let all_rooms: BTreeSet<String> =
        answers.iter().filter(|a| a["requestId"] == json!("raw-rooms")).flat_map(|a| strings(&a["rooms"])).collect();
    for r in ["room1", "room2", "room3"] {
        assert!(all_rooms.contains(r), "ALL_ROOMS lacks {r}: {all_rooms:?}");
    }
    n1.stop().await;
    n2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_raw_requests_answered_like_nodejs() {
    run(raw_requests_answered_like_nodejs()).await
}

macro_rules! per_mode {
    ($($mode:ident: $module:ident),*) => {$(
        mod $module {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn node_emits_into_rust() {
                run(node_into_rust(Mode::$mode)).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn rust_emits_to_node_clients() {
                run(rust_into_node(Mode::$mode)).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mixed_cluster_operations() {
                run(mixed_cluster(Mode::$mode)).await
            }
        }
    )*};
}

per_mode!(
    Classic: classic,
    ClassicSpecific: classic_specific_response_channel,
    Sharded: sharded,
    ClusterSharded: cluster_sharded,
    Streams: streams,
    ClusterStreams: cluster_streams
);
