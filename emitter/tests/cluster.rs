//! The emitter library and the `sio` CLI against real clusters: 2 Node.js socket.io
//! servers with `@socket.io/redis-adapter` (classic and sharded) or
//! `@socket.io/redis-streams-adapter` 0.3.1, and 2 `sio-node` servers, with real `socket.io-client` clients. One scenario, driven once through the
//! library and once through the CLI, checks who received what (and who did not).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value as Json, json};
use socketio_cluster_tests::conformance::{prefix, run};
use socketio_cluster_tests::node::{NodePeer, free_port};
use socketio_cluster_tests::sio_node::{SioNode, workspace_bin};
use socketio_cluster_tests::wire::{from_json, to_json};
use socketio_cluster_tests::{env, redis_cluster_url};
use socketio_emitter::{Args, Emitter, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq, Debug)]
enum Servers {
    NodeClassic,
    NodeSharded,
    NodeClusterSharded,
    NodeStreams,
    SioClassic,
    SioStreams,
    SioKafka,
    SioAmqp,
}

impl Servers {
    fn sio(self) -> bool {
        matches!(self, Servers::SioClassic | Servers::SioStreams | Servers::SioKafka | Servers::SioAmqp)
    }
}

/// The servers, their clients and the URL an emitter uses.
struct Cluster {
    kind: Servers,
    url: String,
    prefix: String,
    node_servers: Vec<NodePeer>,
    sio: Vec<SioNode>,
    clients: NodePeer,
    ids: Json,
}

impl Cluster {
    async fn start(kind: Servers) -> Cluster {
        let prefix = prefix("emitter");
        let sharded = matches!(kind, Servers::NodeSharded | Servers::NodeClusterSharded);
        let url = match kind {
            Servers::NodeClusterSharded => format!("{}?prefix={prefix}&mode=sharded", redis_cluster_url()),
            Servers::SioKafka => format!("kafka://{}?prefix={prefix}", env("KAFKA_BROKERS")),
            Servers::SioAmqp => format!("{}?prefix={prefix}", env("AMQP_ADDR")),
            Servers::NodeStreams | Servers::SioStreams => {
                format!("{}?prefix={prefix}&mode=streams&stream={prefix}", env("REDIS_URL"))
            }
            _ => format!("{}?prefix={prefix}{}", env("REDIS_URL"), if sharded { "&mode=sharded" } else { "" }),
        };
        let mut node_servers = Vec::new();
        let mut sio = Vec::new();
        let mut ports = Vec::new();
        match kind {
            Servers::SioClassic | Servers::SioStreams | Servers::SioKafka | Servers::SioAmqp => {
                let bin = workspace_bin("sio-node");
                for name in ["S0", "S1"] {
                    let n = SioNode::start(&bin, name, &url).await;
                    ports.push(n.port);
                    sio.push(n);
                }
            }
            _ => {
                for name in ["S0", "S1"] {
                    let port = free_port();
                    let mut cfg = json!({
                        "name": name, "port": port, "prefix": prefix, "requestsTimeout": 3000,
                        "mode": match kind {
                            Servers::NodeStreams => "streams",
                            _ if sharded => "sharded",
                            _ => "classic",
                        },
                        "subscriptionMode": "dynamic", "stream": prefix, "redis": env("REDIS_URL"),
                    });
                    if kind == Servers::NodeClusterSharded {
                        cfg["cluster"] = env("REDIS_CLUSTER_URLS").split(',').collect::<Vec<_>>().into();
                    }
                    node_servers.push(NodePeer::start(name, cfg).await);
                    ports.push(port);
                }
            }
        }
        let mut clients = NodePeer::start("clients", json!({"name": "clients", "server": false})).await;
        let ids = clients
            .call(
                "clients",
                json!({"clients": [
                    {"name": "a", "port": ports[0], "rooms": ["red"]},
                    {"name": "b", "port": ports[0], "rooms": ["red", "blue"]},
                    {"name": "c", "port": ports[1], "rooms": ["blue"]},
                    {"name": "d", "port": ports[1], "rooms": []},
                    {"name": "x", "port": ports[1], "nsp": "/admin", "rooms": []},
                ]}),
            )
            .await;
        if kind.sio() {
            // sio-node clients join through the contract
            for (name, rooms) in [("a", json!(["red"])), ("b", json!(["red", "blue"])), ("c", json!(["blue"]))] {
                let r = clients.call("call", json!({"name": name, "event": "join", "data": rooms})).await;
                assert_eq!(r, json!({"ok": true}));
            }
        }
        Cluster { kind, url, prefix, node_servers, sio, clients, ids }
    }

    /// Waits until `room`'s channel is subscribed: for Node.js servers of the sharded
    /// modes, until Redis counts a subscriber to it; for sio-node, until none has a room
    /// subscription pending. Node.js servers do not wait for their `SSUBSCRIBE`, ours
    /// apply room subscriptions in the background: a separate `sio` process that joins
    /// sockets to a room, then emits to it, must wait for this in between.
    async fn wait_room_channels(&self, room: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        let redis = match self.kind {
            Servers::NodeSharded => vec![env("REDIS_URL")],
            Servers::NodeClusterSharded => env("REDIS_CLUSTER_URLS").split(',').map(str::to_owned).collect(),
            _ => vec![],
        };
        let channel = format!("{}#/#{room}#", self.prefix);
        let mut conns = Vec::new();
        for url in &redis {
            conns.push(redis::Client::open(url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap());
        }
        loop {
            // a shard channel is counted on the Redis node that owns its slot, 0 elsewhere
            let mut subscribed = 0;
            for conn in &mut conns {
                let counts: std::collections::HashMap<String, i64> =
                    redis::cmd("PUBSUB").arg("SHARDNUMSUB").arg(&channel).query_async(conn).await.unwrap();
                subscribed += counts.get(&channel).copied().unwrap_or(0);
            }
            let mut pending = 0.0;
            for node in &self.sio {
                pending += node.metric(r#"socketio_cluster_room_channels_pending{namespace="/"}"#).await;
            }
            if (conns.is_empty() || subscribed > 0) && pending == 0.0 {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{channel}: {subscribed} subscribers, {pending} pending");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn id(&self, name: &str) -> String {
        self.ids[name].as_str().unwrap().to_owned()
    }

    /// Waits until exactly `want` clients received `event` (then checks nothing else did).
    async fn wait_got(&mut self, event: &str, want: &[&str]) {
        self.clients.wait_got(event, want, WAIT).await
    }

    async fn args_of(&mut self, event: &str, client: &str) -> Json {
        let r = self.clients.call("received", json!({"event": event})).await;
        r[client][0]["args"].clone()
    }

    /// The server-side events server `i` received: (event, args).
    async fn server_events(&mut self, i: usize) -> Vec<(String, Json)> {
        let events = if self.kind.sio() {
            let client = ["a", "c"][i];
            let r = self.clients.call("call", json!({"name": client, "event": "server_events", "data": {}})).await;
            r["events"].clone()
        } else {
            self.node_servers[i].call("serverEvents", json!({})).await
        };
        events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["event"].as_str().unwrap().to_owned(), e["args"].clone()))
            .collect()
    }

    async fn disconnected(&mut self) -> Json {
        self.clients.call("disconnected", json!({})).await
    }

    async fn stop(self) {
        self.clients.stop().await;
        for p in self.node_servers {
            p.stop().await;
        }
    }
}

/// One way to drive the cluster: the library or the CLI.
enum Via {
    Lib(Emitter),
    Cli { url: String, dir: std::path::PathBuf },
}

/// What a broadcast targets.
#[derive(Default, Clone)]
struct To {
    nsp: Option<&'static str>,
    to: Vec<&'static str>,
    except: Vec<&'static str>,
    volatile: bool,
}

fn to(rooms: &[&'static str]) -> To {
    To { to: rooms.to_vec(), ..To::default() }
}

impl Via {
    fn view(e: &Emitter, t: &To) -> Emitter {
        let mut e = match t.nsp {
            Some(nsp) => e.of(nsp),
            None => e.clone(),
        };
        for r in &t.to {
            e = e.to(*r);
        }
        for r in &t.except {
            e = e.except(*r);
        }
        if t.volatile {
            e = e.volatile();
        }
        e
    }

    fn cli_target(t: &To) -> Vec<String> {
        let mut a = Vec::new();
        if let Some(nsp) = t.nsp {
            a.extend(["--nsp".to_owned(), nsp.to_owned()]);
        }
        for r in &t.to {
            a.extend(["--to".to_owned(), (*r).to_owned()]);
        }
        for r in &t.except {
            a.extend(["--except".to_owned(), (*r).to_owned()]);
        }
        a
    }

    /// Command-line forms of JSON test arguments: binary goes through a file.
    fn cli_args(&self, args: &Json) -> Vec<String> {
        let Via::Cli { dir, .. } = self else { unreachable!() };
        args.as_array()
            .unwrap()
            .iter()
            .map(|a| match a.get("$bin").and_then(Json::as_str) {
                Some(b64) => {
                    let path = dir.join(format!("arg-{:08x}.bin", fastrand::u32(..)));
                    std::fs::write(&path, base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap();
                    format!("@{}", path.display())
                }
                None => a.to_string(),
            })
            .collect()
    }

    async fn sio(&self, args: &[String]) -> Vec<String> {
        let Via::Cli { url, .. } = self else { unreachable!() };
        let out = Command::new(env!("CARGO_BIN_EXE_sio"))
            .args(["--url", url, "--timeout", "3000"])
            .args(args)
            .output()
            .await
            .expect("run sio");
        assert!(out.status.success(), "sio {args:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect()
    }

    async fn emit(&self, t: To, event: &str, args: Json) {
        match self {
            Via::Lib(e) => {
                let values: Vec<Value> = args.as_array().unwrap().iter().map(from_json).collect();
                Via::view(e, &t).emit(event, Args(values)).await.expect("emit");
            }
            Via::Cli { .. } => {
                let mut a = vec!["emit".to_owned()];
                a.extend(Via::cli_target(&t));
                if t.volatile {
                    a.push("--volatile".into());
                }
                a.push(event.to_owned());
                a.extend(self.cli_args(&args));
                self.sio(&a).await;
            }
        }
    }

    async fn emit_with_ack(&self, t: To, event: &str) -> BTreeSet<String> {
        let acks: Vec<Json> = match self {
            Via::Lib(e) => {
                let got = Via::view(e, &t).timeout(Duration::from_secs(3)).emit_with_ack(event, ()).await.unwrap();
                assert!(got.is_complete(), "{:?}", got.shortfall);
                got.value.iter().map(to_json).collect()
            }
            Via::Cli { .. } => {
                let mut a = vec!["emit".to_owned(), "--ack".to_owned()];
                a.extend(Via::cli_target(&t));
                a.push(event.to_owned());
                self.sio(&a).await.iter().map(|l| serde_json::from_str(l).unwrap()).collect()
            }
        };
        acks.iter().map(|j| j.as_str().unwrap().to_owned()).collect()
    }

    async fn rooms_op(&self, op: &str, t: To, rooms: &[&str]) {
        match self {
            Via::Lib(e) => {
                let v = Via::view(e, &t);
                match op {
                    "join" => v.sockets_join(rooms.iter().copied()).await.unwrap(),
                    _ => v.sockets_leave(rooms.iter().copied()).await.unwrap(),
                }
            }
            Via::Cli { .. } => {
                let mut a = vec![op.to_owned()];
                a.extend(rooms.iter().map(|r| (*r).to_owned()));
                a.extend(Via::cli_target(&t));
                self.sio(&a).await;
            }
        }
    }

    async fn disconnect(&self, t: To) {
        match self {
            Via::Lib(e) => Via::view(e, &t).disconnect_sockets(false).await.unwrap(),
            Via::Cli { .. } => {
                let mut a = vec!["disconnect".to_owned()];
                a.extend(Via::cli_target(&t));
                self.sio(&a).await;
            }
        }
    }

    async fn server_emit(&self, event: &str, args: Json) {
        match self {
            Via::Lib(e) => {
                let values: Vec<Value> = args.as_array().unwrap().iter().map(from_json).collect();
                e.server_side_emit(event, Args(values)).await.unwrap()
            }
            Via::Cli { .. } => {
                let mut a = vec!["server-emit".to_owned(), event.to_owned()];
                a.extend(self.cli_args(&args));
                self.sio(&a).await;
            }
        }
    }

    async fn server_emit_ack(&self, event: &str) -> Vec<Json> {
        match self {
            Via::Lib(e) => {
                let got = e.server_side_emit_with_ack(event, ()).await.unwrap();
                assert!(got.is_complete(), "{:?}", got.shortfall);
                got.value.iter().map(to_json).collect()
            }
            Via::Cli { .. } => self
                .sio(&["server-emit".into(), "--ack".into(), event.into()])
                .await
                .iter()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
        }
    }

    /// (id, rooms) of the targeted sockets.
    async fn sockets(&self, t: To) -> Vec<(String, BTreeSet<String>)> {
        match self {
            Via::Lib(e) => {
                let got = Via::view(e, &t).fetch_sockets().await.unwrap();
                assert!(got.is_complete(), "{:?}", got.shortfall);
                got.value
                    .iter()
                    .map(|s| (s.id.clone(), s.rooms.iter().map(|r| r.as_str().to_owned()).collect()))
                    .collect()
            }
            Via::Cli { .. } => {
                let mut a = vec!["sockets".to_owned()];
                a.extend(Via::cli_target(&t));
                self.sio(&a)
                    .await
                    .iter()
                    .map(|l| {
                        let j: Json = serde_json::from_str(l).unwrap();
                        let rooms = j["rooms"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned());
                        (j["id"].as_str().unwrap().to_owned(), rooms.collect())
                    })
                    .collect()
            }
        }
    }

    async fn count(&self, t: To) -> usize {
        match self {
            Via::Lib(e) => Via::view(e, &t).fetch_sockets().await.unwrap().value.len(),
            Via::Cli { .. } => {
                let mut a = vec!["count".to_owned()];
                a.extend(Via::cli_target(&t));
                self.sio(&a).await[0].parse().unwrap()
            }
        }
    }

    /// Waits until `count` is `n`.
    async fn wait_count(&self, t: To, n: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let got = self.count(t.clone()).await;
            if got == n {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{got} sockets, not {n}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn all_rooms(&self) -> BTreeSet<String> {
        match self {
            Via::Lib(e) => e.all_rooms().await.unwrap().value.iter().map(|r| r.as_str().to_owned()).collect(),
            Via::Cli { .. } => self.sio(&["rooms".into()]).await.into_iter().collect(),
        }
    }

    async fn servers(&self) -> usize {
        match self {
            Via::Lib(e) => e.server_count().await.unwrap(),
            Via::Cli { .. } => self.sio(&["servers".into()]).await[0].parse().unwrap(),
        }
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

async fn scenario(kind: Servers, cli: bool) {
    let mut c = Cluster::start(kind).await;
    let tmp = std::env::temp_dir().join(format!("sio-cli-{:08x}", fastrand::u32(..)));
    std::fs::create_dir_all(&tmp).unwrap();
    let via = if cli {
        Via::Cli { url: c.url.clone(), dir: tmp.clone() }
    } else {
        Via::Lib(Emitter::connect(&c.url).await.expect("connect"))
    };

    // the servers, not the emitter, are counted
    let deadline = tokio::time::Instant::now() + WAIT;
    while via.servers().await != 2 {
        assert!(tokio::time::Instant::now() < deadline, "server count never 2");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // broadcasts: all, binary, rooms, except, namespace, volatile
    let args = json!(["text", 42, {"k": [true, null]}, 1.5, 12345678901234i64]);
    via.emit(To::default(), "e_all", args.clone()).await;
    c.wait_got("e_all", &["a", "b", "c", "d"]).await;
    assert_eq!(c.args_of("e_all", "c").await, args, "arguments");
    let bin = json!([{"$bin": "AQID/w=="}, "after"]);
    via.emit(to(&["blue"]), "e_bin", bin.clone()).await;
    c.wait_got("e_bin", &["b", "c"]).await;
    assert_eq!(c.args_of("e_bin", "c").await, bin, "binary argument");
    via.emit(To { to: vec!["red"], except: vec!["blue"], ..To::default() }, "e_except", json!([])).await;
    via.emit(to(&["red", "blue"]), "e_two", json!([])).await;
    via.emit(To { nsp: Some("/admin"), ..To::default() }, "e_admin", json!(["adm"])).await;
    via.emit(To { to: vec!["blue"], volatile: true, ..To::default() }, "e_vol", json!([])).await;
    c.wait_got("e_except", &["a"]).await;
    c.wait_got("e_two", &["a", "b", "c"]).await;
    c.wait_got("e_admin", &["x"]).await;
    via.emit(To::default(), "zz", json!([])).await;
    c.wait_got("zz", &["a", "b", "c", "d"]).await;
    assert_eq!(c.clients.got("e_except").await, ["a"]);
    assert_eq!(c.clients.got("e_two").await, ["a", "b", "c"]);
    assert_eq!(c.clients.got("e_admin").await, ["x"]);
    let vol = c.clients.got("e_vol").await;
    assert!(vol.iter().all(|n| n == "b" || n == "c"), "volatile to blue: {vol:?}");

    // acks from clients on both servers
    assert_eq!(via.emit_with_ack(to(&["blue"]), "ask").await, set(&["ack:b", "ack:c"]));

    // cluster-wide queries
    let red = via.sockets(to(&["red"])).await;
    let ids: BTreeSet<String> = red.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids, [c.id("a"), c.id("b")].into_iter().collect());
    let b_rooms = &red.iter().find(|(id, _)| *id == c.id("b")).unwrap().1;
    assert!(b_rooms.contains("red") && b_rooms.contains("blue"), "{b_rooms:?}");
    assert_eq!(via.count(to(&["blue"])).await, 2);
    assert_eq!(via.count(To::default()).await, 4);
    let rooms = via.all_rooms().await;
    assert!(rooms.contains("red") && rooms.contains("blue"), "{rooms:?}");

    // join / leave, checked by fetching the new room. The library emits to the room right
    // after the join: servers of the dynamic modes subscribe the room's channel only once
    // the join came, so the emitter sends that broadcast on the main channel, behind the
    // join. A `sio emit` in a new process knows nothing of the join: wait in between.
    via.rooms_op("join", to(&["red"]), &["green"]).await;
    if matches!(via, Via::Cli { .. }) {
        via.wait_count(to(&["green"]), 2).await;
        c.wait_room_channels("green").await;
    }
    via.emit(to(&["green"]), "e_green", json!([])).await;
    c.wait_got("e_green", &["a", "b"]).await;
    via.wait_count(to(&["green"]), 2).await;
    via.rooms_op("leave", to(&["green"]), &["green"]).await;
    via.wait_count(to(&["green"]), 0).await;

    // server-side events, without and with acks
    via.server_emit("hello", json!([1, "x"])).await;
    for i in 0..2 {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let events = c.server_events(i).await;
            if let Some((_, args)) = events.iter().find(|(e, _)| e == "hello") {
                assert_eq!(*args, json!([1, "x"]), "server {i}");
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "server {i} never got hello: {events:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let answers = via.server_emit_ack("ping").await;
    assert_eq!(answers.len(), 2, "{answers:?}");
    let text: Vec<String> = answers.iter().map(Json::to_string).collect();
    let (s0, s1) = if kind.sio() { ("\"S0\"", "\"S1\"") } else { ("pong from S0", "pong from S1") };
    assert!(text.iter().any(|t| t.contains(s0)) && text.iter().any(|t| t.contains(s1)), "{text:?}");

    // a Node.js server's own requests still complete while an emitter is connected
    if let Some(n) = c.node_servers.first_mut() {
        let r = n.call("fetchSockets", json!({})).await;
        assert_eq!(r.as_array().unwrap().len(), 4, "Node.js fetchSockets with an emitter connected: {r}");
        assert_eq!(n.call("serverCount", json!({})).await, json!(2));
    }

    // disconnect: blue except red = c
    via.disconnect(To { to: vec!["blue"], except: vec!["red"], ..To::default() }).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let d = c.disconnected().await;
        if d["c"] == json!(true) {
            assert_eq!((d["a"].clone(), d["b"].clone(), d["d"].clone()), (json!(false), json!(false), json!(false)));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "disconnect: {d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if let Via::Lib(e) = &via {
        e.close().await.unwrap();
    }
    let _ = std::fs::remove_dir_all(&tmp);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_node_classic() {
    run(scenario(Servers::NodeClassic, false)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_node_sharded() {
    run(scenario(Servers::NodeSharded, false)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_node_sharded_on_redis_cluster() {
    run(scenario(Servers::NodeClusterSharded, false)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_sio_node() {
    run(scenario(Servers::SioClassic, false)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_sio_node_kafka() {
    run(scenario(Servers::SioKafka, false)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_sio_node_amqp() {
    run(scenario(Servers::SioAmqp, false)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_sio_node_kafka() {
    run(scenario(Servers::SioKafka, true)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_sio_node_amqp() {
    run(scenario(Servers::SioAmqp, true)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_node_streams() {
    run(scenario(Servers::NodeStreams, false)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_node_streams() {
    run(scenario(Servers::NodeStreams, true)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_sio_node_streams() {
    run(scenario(Servers::SioStreams, false)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_node_classic() {
    run(scenario(Servers::NodeClassic, true)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_node_sharded() {
    run(scenario(Servers::NodeSharded, true)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_sio_node() {
    run(scenario(Servers::SioClassic, true)).await
}

/// `sio tail` prints the broadcasts as JSON lines, and Node.js servers' requests keep
/// completing while it listens; in sharded mode it refuses (it would count as a server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_broadcasts_without_disturbing_requests() {
    run(async {
        let mut c = Cluster::start(Servers::NodeClassic).await;
        let mut tail = Command::new(env!("CARGO_BIN_EXE_sio"))
            .args(["--url", &c.url, "tail"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut err = BufReader::new(tail.stderr.take().unwrap()).lines();
        let first = tokio::time::timeout(WAIT, err.next_line()).await.expect("tail starts").unwrap().unwrap();
        assert!(first.contains("listening"), "{first}");
        let mut out = BufReader::new(tail.stdout.take().unwrap()).lines();
        // a Node.js server broadcasts, the emitter broadcasts to a room
        c.node_servers[0].call("broadcast", json!({"to": ["red"], "event": "from_node", "args": [1]})).await;
        let io = Emitter::connect(&c.url).await.unwrap();
        io.to("blue").except("red").emit("from_emitter", ("x", bytes::Bytes::from_static(b"\x01"))).await.unwrap();
        let mut lines = Vec::new();
        while lines.len() < 2 {
            let l = tokio::time::timeout(WAIT, out.next_line()).await.expect("tail prints").unwrap().unwrap();
            lines.push(serde_json::from_str::<Json>(&l).unwrap());
        }
        lines.sort_by_key(|l| l["event"].as_str().unwrap().to_owned());
        assert_eq!(lines[0]["event"], "from_emitter");
        assert_eq!(lines[0]["args"], json!(["x", {"$bin": "AQ=="}]));
        assert_eq!(lines[0]["rooms"], json!(["blue"]));
        assert_eq!(lines[0]["except"], json!(["red"]));
        assert_eq!(lines[1]["event"], "from_node");
        assert_eq!(lines[1]["rooms"], json!(["red"]));
        assert_eq!(lines[1]["args"], json!([1]));
        // Node.js requests complete while tail listens
        let r = c.node_servers[1].call("fetchSockets", json!({})).await;
        assert_eq!(r.as_array().unwrap().len(), 4, "fetchSockets with sio tail running: {r}");
        assert_eq!(c.node_servers[1].call("serverCount", json!({})).await, json!(2));
        drop(tail);
        c.stop().await;

        let sharded = format!("{}?mode=sharded", env("REDIS_URL"));
        let out = Command::new(env!("CARGO_BIN_EXE_sio")).args(["--url", &sharded, "tail"]).output().await.unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("counted"), "{}", String::from_utf8_lossy(&out.stderr));
    })
    .await
}

/// `sio emit --stdin`: many lines pipelined, a bad line reported with its number without
/// stopping the others, a final count line, and an exit status that says it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_stdin_pipelines_and_reports_bad_lines() {
    run(async {
        let mut c = Cluster::start(Servers::NodeClassic).await;
        let mut input = String::new();
        for i in 0..500 {
            input.push_str(&format!("{{\"event\":\"bulk\",\"args\":[{i}],\"to\":\"blue\"}}\n"));
        }
        input.push_str("{\"event\": oops}\n");
        input.push_str("{\"event\":\"bulk_admin\",\"nsp\":\"/admin\",\"args\":[\"last\"]}\n");
        let mut child = Command::new(env!("CARGO_BIN_EXE_sio"))
            .args(["--url", &c.url, "emit", "--stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).await.unwrap();
        drop(stdin);
        let out = child.wait_with_output().await.unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(2), "a bad line makes the exit status 2: {stderr}");
        assert!(stderr.contains("line 501"), "bad line number: {stderr}");
        assert!(stderr.contains("sent 501 events"), "summary on stderr: {stderr}");
        assert!(stdout.is_empty(), "stdout stays data: {stdout}");
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let got = c.clients.received("bulk").await;
            let at = |client: &str| -> Vec<i64> {
                got.iter().filter(|(n, _)| n == client).map(|(_, a)| a[0].as_i64().unwrap()).collect()
            };
            let (at_b, at_c) = (at("b"), at("c"));
            if at_b.len() >= 500 && at_c.len() >= 500 {
                // b and c sit on different servers: each got every line, in order, once
                assert_eq!(at_b, (0..500).collect::<Vec<_>>(), "at b: in order, each once");
                assert_eq!(at_c, (0..500).collect::<Vec<_>>(), "at c: in order, each once");
                assert!(got.iter().all(|(n, _)| n == "b" || n == "c"), "only blue");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} and {} of 500 bulk emits at b and c",
                at_b.len(),
                at_c.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        c.wait_got("bulk_admin", &["x"]).await;

        // on a terminal (a pty from util-linux `script`) a progress line shows on stderr
        let input = std::env::temp_dir().join(format!("sio-progress-{:08x}.ndjson", fastrand::u32(..)));
        std::fs::write(&input, "{\"event\":\"tty\"}\n".repeat(50)).unwrap();
        let cmd = format!("{} --url '{}' emit --stdin < {}", env!("CARGO_BIN_EXE_sio"), c.url, input.display());
        let out = Command::new("script").args(["-qec", &cmd, "/dev/null"]).output().await.expect("script");
        let _ = std::fs::remove_file(&input);
        let tty = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{tty}");
        assert!(tty.contains("\rsio: ") && tty.contains("in flight"), "progress line: {tty:?}");
        assert!(tty.contains("sent 50 events"), "{tty:?}");
        c.stop().await;
    })
    .await
}

/// Bad input is a one-line error with exit status 2 (1 for an unreachable broker), and
/// a 10 MB argument is delivered intact by the library and by the CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_a_10_mb_argument() {
    run(async {
        let sio = |args: &[&str]| {
            let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
            async move { Command::new(env!("CARGO_BIN_EXE_sio")).args(&args).output().await.unwrap() }
        };
        let redis = env("REDIS_URL");
        let small = format!("{redis}?max_message_bytes=1000");
        let long = format!("={}", "x".repeat(2000));
        for (args, code, needle) in [
            (
                vec!["--url", &small, "emit", "ev", &long],
                2,
                "over the maximum message size of 1000 bytes (max_message_bytes",
            ),
            (vec!["--url", &format!("{redis}?max_message_bytes=0"), "emit", "ev"], 2, "positive number"),
            (vec!["--url", &redis, "emit", "ev", "{bad json"], 2, "not JSON"),
            (vec!["--url", "redis://", "emit", "ev"], 2, "invalid URL"),
            (vec!["--url", "ftp://host", "emit", "ev"], 2, "unsupported scheme"),
            (vec!["--url", &redis, "--dialect", "klingon", "servers"], 2, "unknown dialect"),
            (vec!["--url", &redis, "emit", "disconnect"], 2, "reserved"),
            (vec!["--url", &redis, "emit", "ev", "@/nonexistent/file"], 2, "cannot read"),
            (vec!["--url", &redis, "--nsp", "/a#b", "emit", "ev"], 2, "namespace"),
            (vec!["--url", "redis://127.0.0.1:1", "emit", "ev"], 1, "cannot connect"),
            (vec!["--url", &redis, "frobnicate"], 2, "unrecognized subcommand"),
        ] {
            let out = sio(&args).await;
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
            assert!(stderr.contains(needle), "{args:?}: {stderr}");
            if code != 2 || needle != "unrecognized subcommand" {
                assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
            }
        }
        // the library: clear error values
        let e = Emitter::connect("redis://127.0.0.1:1").await.unwrap_err();
        assert!(e.is_broker_failure(), "{e}");
        let e = Emitter::connect("nope").await.unwrap_err();
        assert!(e.to_string().contains("invalid URL"), "{e}");

        // 10 MB through the library and through the CLI (@file), under the default
        // maximum message size (10 MiB)
        let mut c = Cluster::start(Servers::NodeClassic).await;
        let big: Vec<u8> = (0..10_000_000).map(|i| (i % 251) as u8).collect();
        let io = Emitter::connect(&c.url).await.unwrap();
        io.to("blue").emit("big", (bytes::Bytes::from(big.clone()),)).await.unwrap();
        let file = std::env::temp_dir().join(format!("sio-big-{:08x}.bin", fastrand::u32(..)));
        std::fs::write(&file, &big).unwrap();
        let out = sio(&["--url", &c.url, "emit", "--to", "red", "big2", &format!("@{}", file.display())]).await;
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let _ = std::fs::remove_file(&file);
        for (event, who) in [("big", ["b", "c"]), ("big2", ["a", "b"])] {
            c.wait_got(event, &who).await;
            let got = c.clients.received(event).await;
            for (_, args) in got {
                let b64 = args[0]["$bin"].as_str().expect("binary");
                assert_eq!(base64::engine::general_purpose::STANDARD.decode(b64).unwrap(), big, "{event} intact");
            }
        }
        c.stop().await;
    })
    .await
}

/// An ack that never comes: the library returns what arrived plus the shortfall, the CLI
/// prints what arrived and exits 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_that_time_out_return_what_arrived() {
    use socketio_adapter_core::{Adapter, ClusterAdapter};
    use socketio_adapter_redis::{RedisOptions, RedisTransport};
    use socketio_cluster_tests::recorder::{Recorder, lock, sid};
    run(async {
        let url = format!("{}?prefix={}&request_timeout_ms=3000", env("REDIS_URL"), prefix("ack-timeout"));
        let opts = RedisOptions::parse(&url).unwrap();
        let mut nodes = Vec::new();
        for (name, socket) in [("A", "s1"), ("B", "s2")] {
            let rec = Recorder::new(name);
            let transport = RedisTransport::connect(&opts).await.unwrap();
            let adapter =
                ClusterAdapter::new(transport, opts.dialect(), "/", rec.clone(), opts.cluster_config()).unwrap();
            adapter.init().await.unwrap();
            adapter.add_all(&sid(socket), &[]);
            nodes.push((adapter, rec));
        }
        lock(&nodes[1].1.silent).insert(sid("s2"));
        let io = Emitter::connect(&url).await.unwrap();
        let got = io.timeout(Duration::from_millis(500)).emit_with_ack("q", ()).await.unwrap();
        assert_eq!(got.value, vec![Value::from("ack:s1")]);
        let shortfall = got.shortfall.expect("a shortfall");
        assert_eq!((shortfall.expected, shortfall.received), (2, 1), "{shortfall}");

        let out = Command::new(env!("CARGO_BIN_EXE_sio"))
            .args(["--url", &url, "--timeout", "500", "emit", "--ack", "q"])
            .output()
            .await
            .unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(stdout.trim(), "\"ack:s1\"");
        assert!(stderr.contains("1 of 2"), "{stderr}");
        for (a, _) in nodes {
            a.close().await.unwrap();
        }
    })
    .await
}

/// Issue 19: `sio --url 'redis://u:a+b&c@host' servers` authenticates with the password
/// `a+b&c`, as `redis-cli --user u --pass 'a+b&c'` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_takes_a_password_with_plus_and_ampersand() {
    run(async {
        let acl = socketio_cluster_tests::AclUser::create("sio-cli-plus", "a+b&c").await;
        let (user, host) = (acl.name.clone(), socketio_cluster_tests::AclUser::host());
        let url = format!("redis://{user}:a+b&c@{host}?prefix={}", prefix("cli-plus"));
        let out =
            Command::new(env!("CARGO_BIN_EXE_sio")).args(["--url", &url, "--timeout", "500", "servers"]).output().await;
        acl.delete().await;
        let out = out.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(!stderr.contains("a+b&c"), "{stderr}");
    })
    .await
}
