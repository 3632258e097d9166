//! Flask-SocketIO / python-socketio clusters end to end (issue 15), with real peers:
//! 2 Flask-SocketIO processes (`tests/python/flask_chat.py`, the seed application's shape:
//! a chat with rooms and a background task that emits periodically, `message_queue=` and
//! `channel=` as a Flask app passes them) plus 1 `sio-node --adapter <python URL>`, real
//! `socket.io-client` clients on all three, on Redis and on RabbitMQ; python-socketio's
//! own write-only managers and Flask-SocketIO's external emitter (`tests/python/py_emit.py`),
//! 5.18.1 and (pickle) 5.13.0.
//!
//! Per broker: a. the emitter and `sio` reach all three; b. room messages between Flask
//! and Rust clients; c. the Flask background task; d. joins, leaves, close_room and
//! disconnects from outside; e. python-socketio's own emits; f. pickles; g. cross-host
//! callbacks both ways.
//!
//! Our side is configured by the URL alone: the Flask app's `message_queue` plus
//! `?dialect=python&channel=<channel>`, for `sio-node --adapter`, `Emitter::connect` and
//! `sio --url`.
//!
//! Every check counts deliveries: who received an event, once per delivery, after a
//! barrier (an event to everyone, published after the checked ones) that proves nothing
//! else was on its way.
//!
//! Kafka: python-socketio's `KafkaManager` cannot publish with today's kafka-python (it
//! passes a `str` value; kafka-python 3 raises `TypeError`), which the Kafka tests pin
//! down; a Flask-SocketIO process on Kafka still receives what we publish. Our side is
//! checked against the layout with `tests/python/kafka_layout.py` (topic = channel, no
//! consumer group, JSON bytes) in both directions, and for the publish order a
//! python-socketio reader relies on. Barriers there go into every partition.
//!
//! Needs `sio-node` and `sio` built (`cargo test --workspace --all-features` builds them;
//! alone: `cargo build -p demo -p socketio-emitter --all-features --bins`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value as Json, json};
use socketio_cluster_tests::conformance::prefix;
use socketio_cluster_tests::env;
use socketio_cluster_tests::node::{NodePeer, free_port, wait_for_port};
use socketio_cluster_tests::sio_node::{SioNode, workspace_bin};
use socketio_emitter::Emitter;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

const WAIT: Duration = Duration::from_secs(15);

/// A case with a bound: the Python processes take seconds to start.
async fn run(case: impl Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(150), case).await.expect("case did not finish within 150 s");
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Broker {
    Redis,
    Amqp,
    Kafka,
}

impl Broker {
    /// What a Flask app passes as `message_queue` (and python-socketio's managers as `url`).
    fn queue(self) -> String {
        match self {
            Broker::Redis => env("REDIS_URL"),
            Broker::Amqp => env("AMQP_ADDR"),
            Broker::Kafka => format!("kafka://{}", env("KAFKA_BROKERS")),
        }
    }

    /// Our URL for the same cluster: the queue plus the dialect and the channel.
    fn url(self, channel: &str) -> String {
        format!("{}?dialect=python&channel={channel}", self.queue())
    }
}

fn python_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python").join(name)
}

/// `flask_chat.py` on `broker`'s queue and `channel`, listening on a free port.
async fn flask(broker: Broker, channel: &str, name: &str, tick_ms: u64) -> (Child, u16) {
    let port = free_port();
    let child = Command::new(env("SIO_PYTHON"))
        .arg(python_script("flask_chat.py"))
        .args([&port.to_string(), &broker.queue(), channel, name, &tick_ms.to_string()])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start flask_chat.py");
    wait_for_port(port, Duration::from_secs(30), &format!("Flask-SocketIO {name}")).await;
    (child, port)
}

/// Runs `py_emit.py` (python-socketio's write-only manager) with `python`; (exit success,
/// its stdout).
async fn py_emit(python: &str, broker: Broker, channel: &str, emits: &Json) -> (bool, String) {
    py_emit_via(python, broker, channel, emits, &[]).await
}

/// Runs `py_emit.py ... flask`: Flask-SocketIO's `SocketIO(message_queue=...)` without an
/// app (an external process's emitter) instead of the bare manager.
async fn flask_external_emit(broker: Broker, channel: &str, emits: &Json) -> (bool, String) {
    py_emit_via(&env("SIO_PYTHON"), broker, channel, emits, &["flask"]).await
}

async fn py_emit_via(python: &str, broker: Broker, channel: &str, emits: &Json, extra: &[&str]) -> (bool, String) {
    let out = Command::new(python)
        .arg(python_script("py_emit.py"))
        .args([&broker.queue(), channel, &emits.to_string()])
        .args(extra)
        .stderr(Stdio::inherit())
        .output()
        .await
        .expect("run py_emit.py");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `sio --url URL ARGS...`; panics unless it succeeds.
async fn sio(url: &str, args: &[&str]) {
    let out = Command::new(workspace_bin("sio")).arg("--url").arg(url).args(args).output().await.expect("run sio");
    assert!(
        out.status.success(),
        "sio --url {url} {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn names(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

/// The clients of "/" (in the Flask cluster: all but the /admin ones).
const ROOT: &[&str] = &["f1a", "f1b", "f2a", "f2b", "ra", "rb"];
/// The clients of "/admin".
const ADMIN: &[&str] = &["f1x", "rx"];
/// The members of room `r` in "/".
const ROOM_R: &[&str] = &["f1a", "f2a", "ra"];

/// 2 Flask-SocketIO processes F1, F2 and a sio-node R on one channel, and their clients:
/// F1: f1a [r], f1b, f1x (/admin); F2: f2a [r], f2b; R: ra [r], rb, rx (/admin) [ar].
struct Cluster {
    broker: Broker,
    channel: String,
    url: String,
    _flask: Vec<Child>,
    node: SioNode,
    c: NodePeer,
    ids: Json,
    io: Emitter,
    /// Clients still connected (the barrier waits for these).
    live: Vec<&'static str>,
}

impl Cluster {
    async fn start(broker: Broker, case: &str) -> Cluster {
        let channel = prefix(&format!("flask-{case}"));
        let url = broker.url(&channel);
        let node = SioNode::start_logging(&workspace_bin("sio-node"), "R", &url, &[], "warn").await;
        let (f1, p1) = flask(broker, &channel, "F1", 250).await;
        let (f2, p2) = flask(broker, &channel, "F2", 250).await;
        let mut c = NodePeer::start("clients", json!({"name": "clients", "server": false})).await;
        let ids = c
            .call(
                "clients",
                json!({"clients": [
                    {"name": "f1a", "port": p1}, {"name": "f1b", "port": p1}, {"name": "f1x", "port": p1, "nsp": "/admin"},
                    {"name": "f2a", "port": p2}, {"name": "f2b", "port": p2},
                    {"name": "ra", "port": node.port}, {"name": "rb", "port": node.port},
                    {"name": "rx", "port": node.port, "nsp": "/admin"},
                ]}),
            )
            .await;
        // every server joins through its `join` event (Flask: join_room; sio-node: the contract)
        for (name, rooms) in [("f1a", json!(["r"])), ("f2a", json!(["r"])), ("ra", json!(["r"])), ("rx", json!(["ar"]))]
        {
            let r = c.call("call", json!({"name": name, "event": "join", "data": rooms})).await;
            assert_eq!(r, json!({"ok": true}), "{name} joins {rooms}");
        }
        let io = Emitter::connect(&url).await.unwrap_or_else(|e| panic!("Emitter::connect({url}): {e}"));
        let mut k = Cluster {
            broker,
            channel,
            url,
            _flask: vec![f1, f2],
            node,
            c,
            ids,
            io,
            live: vec!["f1a", "f1b", "f1x", "f2a", "f2b", "ra", "rb", "rx"],
        };
        k.warm_up().await;
        k
    }

    fn id(&self, name: &str) -> String {
        self.ids[name].as_str().unwrap_or_else(|| panic!("no client {name}")).to_owned()
    }

    /// python-socketio starts its manager's listener when the first client connects and
    /// subscribes (Kombu: declares its queue) in the background: emit until every client
    /// has one. (Only `warmup` events; the checks use other events.)
    async fn warm_up(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut i = 0;
        loop {
            i += 1;
            self.io.emit("warmup", i).await.expect("emit warmup");
            self.io.of("/admin").emit("warmup", i).await.expect("emit warmup in /admin");
            tokio::time::sleep(Duration::from_millis(300)).await;
            let mut got = self.c.got("warmup").await;
            got.dedup();
            if got == names(&self.live) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{:?}: warm-up reached only {got:?}", self.broker);
        }
    }

    /// An event to everyone in both namespaces, from the emitter, after the checked ones.
    async fn barrier(&mut self, tag: &str) {
        let event = format!("zz_{tag}");
        self.io.emit(&event, ()).await.expect("barrier");
        self.io.of("/admin").emit(&event, ()).await.expect("barrier in /admin");
        let live = self.live.clone();
        self.c.wait_got(&event, &live, WAIT).await;
    }

    async fn got(&mut self, event: &str) -> Vec<String> {
        self.c.got(event).await
    }

    /// (client, arguments) of every delivery of `event`.
    async fn received(&mut self, event: &str) -> Vec<(String, Vec<Json>)> {
        self.c.received(event).await
    }

    /// A client calls an event on its server and returns the ack.
    async fn call(&mut self, client: &str, event: &str, data: Json) -> Json {
        let args = json!({"name": client, "event": event, "data": data});
        let started = tokio::time::Instant::now();
        match self.c.try_call("call", args).await {
            Ok(ack) => ack,
            Err(e) => {
                panic!("{:?}: {client} calls {event} {data}: no ack after {:?}: {e}", self.broker, started.elapsed())
            }
        }
    }

    async fn stop(self) {
        self.c.stop().await;
    }
}

/// Asserts who received each of `cases` (event, receivers), after a barrier.
async fn check(k: &mut Cluster, tag: &str, cases: &[(&str, &[&str])]) {
    for (event, want) in cases {
        let mut want = want.to_vec();
        want.sort_unstable();
        k.c.wait_got(event, &want, WAIT).await;
    }
    k.barrier(tag).await;
    for (event, want) in cases {
        assert_eq!(k.got(event).await, names(want), "{:?}: {event}", k.broker);
    }
}

/// Asserts that every delivery of `event` carried `args`.
async fn check_args(k: &mut Cluster, event: &str, args: &Json) {
    let got = k.received(event).await;
    assert!(!got.is_empty(), "{event}: no delivery");
    for (client, a) in got {
        assert_eq!(Json::Array(a), *args, "{:?}: {event} arguments at {client}", k.broker);
    }
}

// ---------------------------------------------------------------------------------
// a. The Rust emitter and `sio --url` reach the clients of all three servers.
// ---------------------------------------------------------------------------------

async fn emitter_and_cli_reach_all_three(broker: Broker) {
    let mut k = Cluster::start(broker, "a").await;
    let io = k.io.clone();
    io.emit("a_all", ("text", 42, json!({"k": [true, null]}))).await.unwrap();
    io.to("r").emit("a_room", ("r",)).await.unwrap();
    io.to("r").to(k.id("rb")).to(k.id("f2b")).emit("a_rooms", ()).await.unwrap();
    io.except(k.id("ra")).except(k.id("f1a")).emit("a_skip", ()).await.unwrap();
    io.of("/admin").emit("a_nsp", "adm").await.unwrap();
    io.of("/admin").to("ar").emit("a_nsp_room", ()).await.unwrap();
    let url = k.url.clone();
    sio(&url, &["emit", "a_cli_all", "1", "=two"]).await;
    sio(&url, &["emit", "--to", "r", "a_cli_room", r#"{"t":"é ✓"}"#]).await;
    sio(&url, &["--nsp", "/admin", "emit", "a_cli_nsp"]).await;
    // `--to=SID`: a sid may start with '-'
    let (to_f2b, to_rb) = (format!("--to={}", k.id("f2b")), format!("--to={}", k.id("rb")));
    sio(&url, &["emit", &to_f2b, &to_rb, "a_cli_sids"]).await;
    check(
        &mut k,
        "a",
        &[
            ("a_all", ROOT),
            ("a_room", ROOM_R),
            ("a_rooms", &["f1a", "f2a", "ra", "rb", "f2b"]),
            ("a_skip", &["f1b", "f2a", "f2b", "rb"]),
            ("a_nsp", ADMIN),
            ("a_nsp_room", &["rx"]),
            ("a_cli_all", ROOT),
            ("a_cli_room", ROOM_R),
            ("a_cli_nsp", ADMIN),
            ("a_cli_sids", &["f2b", "rb"]),
        ],
    )
    .await;
    check_args(&mut k, "a_all", &json!(["text", 42, {"k": [true, null]}])).await;
    check_args(&mut k, "a_cli_all", &json!([1, "two"])).await;
    check_args(&mut k, "a_cli_room", &json!([{"t": "é ✓"}])).await;
    check_args(&mut k, "a_nsp", &json!(["adm"])).await;
    k.stop().await;
}

// ---------------------------------------------------------------------------------
// b. A Flask client's message to a room reaches the members on the Rust node and on the
//    other Flask process, once each; and the reverse.
// ---------------------------------------------------------------------------------

async fn flask_room_message_reaches_rust_members(broker: Broker) {
    let mut k = Cluster::start(broker, "b").await;
    let ok = json!({"ok": true});
    let r = k.call("f1a", "send_to_room", json!({"room": "r", "text": "héllo ✓ 日本", "event": "b_f1"})).await;
    assert_eq!(r, ok, "send_to_room from f1a");
    // a client outside the room
    let r = k.call("f2b", "send_to_room", json!({"room": "r", "text": "from outside", "event": "b_f2"})).await;
    assert_eq!(r, ok, "send_to_room from f2b");
    // to one client of the Rust node (its sid is a room)
    let rb = k.id("rb");
    let r = k.call("f1b", "send_to_room", json!({"room": rb, "text": "direct", "event": "b_direct"})).await;
    assert_eq!(r, ok, "send_to_room from f1b to rb");
    // the reverse: a client of the Rust node broadcasts to the room through sio-node
    let r = k.call("rb", "emit", json!({"event": "b_rust", "to": "r", "args": ["from R"]})).await;
    assert_eq!(r, ok, "emit from rb");
    check(&mut k, "b", &[("b_f1", ROOM_R), ("b_f2", ROOM_R), ("b_direct", &["rb"]), ("b_rust", ROOM_R)]).await;
    check_args(&mut k, "b_f1", &json!([{"from": "F1", "text": "héllo ✓ 日本"}])).await;
    check_args(&mut k, "b_f2", &json!([{"from": "F2", "text": "from outside"}])).await;
    check_args(&mut k, "b_direct", &json!([{"from": "F1", "text": "direct"}])).await;
    check_args(&mut k, "b_rust", &json!(["from R"])).await;
    k.stop().await;
}

// ---------------------------------------------------------------------------------
// c. The Flask background task's periodic emit reaches the Rust node's clients.
// ---------------------------------------------------------------------------------

/// The tick numbers `client` got from each Flask process, in arrival order.
fn ticks_by_source(got: &[(String, Vec<Json>)], client: &str) -> BTreeMap<String, Vec<u64>> {
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (c, args) in got.iter().filter(|(c, _)| c == client) {
        assert_eq!(args.len(), 1, "{c}: tick arguments {args:?}");
        let from = args[0]["from"].as_str().unwrap_or_else(|| panic!("{c}: tick {args:?}")).to_owned();
        let n = args[0]["n"].as_u64().unwrap_or_else(|| panic!("{c}: tick {args:?}"));
        out.entry(from).or_default().push(n);
    }
    out
}

async fn flask_background_task_reaches_rust_clients(broker: Broker) {
    let mut k = Cluster::start(broker, "c").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = k.received("tick").await;
        let enough = ["ra", "rb", "f1b", "f2b"].iter().all(|c| {
            let t = ticks_by_source(&got, c);
            ["F1", "F2"].iter().all(|f| t.get(*f).is_some_and(|n| n.len() >= 4))
        });
        if enough {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            let seen: BTreeMap<&str, BTreeMap<String, Vec<u64>>> =
                ROOT.iter().map(|c| (*c, ticks_by_source(&got, c))).collect();
            panic!("{broker:?}: ticks (client -> Flask process -> n) after {WAIT:?}: {seen:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = k.received("tick").await;
    for client in ROOT {
        let t = ticks_by_source(&got, client);
        assert_eq!(t.keys().cloned().collect::<Vec<_>>(), ["F1", "F2"], "{broker:?}: {client} got ticks from {t:?}");
        for (from, ns) in &t {
            // once each, none lost: n, n+1, n+2, ... from the first one the client got
            let contiguous = ns.windows(2).all(|w| w[1] == w[0] + 1);
            assert!(contiguous, "{broker:?}: {client}: ticks of {from} not each exactly once: {ns:?}");
        }
    }
    assert!(got.iter().all(|(c, _)| !ADMIN.contains(&c.as_str())), "{broker:?}: ticks are for \"/\" only");
    k.stop().await;
}

// ---------------------------------------------------------------------------------
// d. Room changes and disconnects from outside, on both kinds of server.
// ---------------------------------------------------------------------------------

async fn outside_room_changes_and_disconnects(broker: Broker) {
    let mut k = Cluster::start(broker, "d").await;
    let (url, io) = (k.url.clone(), k.io.clone());
    let (f1b, f2b, rb, ra) = (k.id("f1b"), k.id("f2b"), k.id("rb"), k.id("ra"));
    // `--to=SID`: a sid may start with '-'
    let to = |sid: &str| format!("--to={sid}");
    sio(&url, &["join", &to(&f1b), "jd"]).await;
    sio(&url, &["join", &to(&rb), "jd"]).await;
    io.to("jd").emit("d_jd1", ()).await.unwrap();
    io.to(f2b.as_str()).sockets_join(["jd"]).await.unwrap();
    io.to("jd").emit("d_jd2", ()).await.unwrap();
    sio(&url, &["leave", &to(&f1b), "jd"]).await;
    io.to(rb.as_str()).sockets_leave(["jd"]).await.unwrap();
    io.to("jd").emit("d_jd3", ()).await.unwrap();
    check(&mut k, "d1", &[("d_jd1", &["f1b", "rb"]), ("d_jd2", &["f1b", "f2b", "rb"]), ("d_jd3", &["f2b"])]).await;

    // a Flask process closes room r: its members everywhere leave it, the Rust node's too
    let r = k.call("f2b", "close_room", json!("r")).await;
    assert_eq!(r, json!({"ok": true}), "close_room from f2b");
    io.to("r").emit("d_closed", ()).await.unwrap();
    check(&mut k, "d_close", &[("d_closed", &[])]).await;

    // disconnects: the CLI on one client of each kind, the emitter on another of each
    sio(&url, &["disconnect", &to(&f2b)]).await;
    sio(&url, &["disconnect", &to(&rb)]).await;
    io.to(f1b.as_str()).disconnect_sockets(false).await.unwrap();
    io.to(ra.as_str()).disconnect_sockets(false).await.unwrap();
    let gone = ["f1b", "f2b", "ra", "rb"];
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let d = k.c.call("disconnected", json!({})).await;
        if gone.iter().all(|c| d[*c] == json!(true)) {
            for c in ["f1a", "f1x", "f2a", "rx"] {
                assert_eq!(d[c], json!(false), "{broker:?}: {c} disconnected too: {d}");
            }
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{broker:?}: disconnects: {d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    k.live = vec!["f1a", "f1x", "f2a", "rx"];
    io.emit("d_after", ()).await.unwrap();
    check(&mut k, "d2", &[("d_after", &["f1a", "f2a"])]).await;
    k.stop().await;
}

// ---------------------------------------------------------------------------------
// e. python-socketio's own write-only manager (RedisManager / KombuManager) emits; the
//    Rust node delivers to exactly the right clients, as the Flask processes do.
// ---------------------------------------------------------------------------------

async fn python_manager_emits_delivered_exactly(broker: Broker) {
    let mut k = Cluster::start(broker, "e").await;
    let (ra, rb, f1b) = (k.id("ra"), k.id("rb"), k.id("f1b"));
    let text = "héllo wörld ✓ 日本語 😀 \"q\" \\ \n\t";
    let emits = json!([
        {"event": "e_all", "args": ["x"]},
        {"event": "e_room", "args": [1, "two", {"k": [true, null]}], "room": "r"},
        {"event": "e_list", "args": ["l"], "room": ["r", rb]},
        {"event": "e_skip", "args": ["s"], "room": "r", "skip_sid": ra},
        {"event": "e_skip_list", "args": ["s"], "skip_sid": [ra, f1b]},
        {"event": "e_bin", "args": [{"$bin": "AQL/"}, "after", {"nested": {"$bin": "aGk="}}], "room": rb},
        {"event": "e_bin_all", "args": [{"$bin": "AAEC/w=="}]},
        {"event": "e_text", "args": [text]},
        {"event": "e_nsp", "args": ["adm"], "namespace": "/admin"},
        {"event": "e_nsp_room", "args": [], "namespace": "/admin", "room": "ar"},
        {"event": "e_none", "args": [null]},
    ]);
    let (ok, out) = py_emit(&env("SIO_PYTHON"), broker, &k.channel.clone(), &emits).await;
    assert!(ok && out == "ok", "{broker:?}: py_emit: {out}");
    // the same through Flask-SocketIO's external emitter (SocketIO(message_queue=...), no app)
    let flask_emits = json!([
        {"event": "e_flask_room", "args": ["via Flask-SocketIO"], "room": "r"},
        {"event": "e_flask_skip", "args": [1, 2], "skip_sid": [ra, f1b]},
        {"event": "e_flask_nsp", "args": [{"$bin": "AQL/"}], "namespace": "/admin"},
    ]);
    let (ok, out) = flask_external_emit(broker, &k.channel.clone(), &flask_emits).await;
    assert!(ok && out == "ok", "{broker:?}: Flask-SocketIO external emit: {out}");
    check(
        &mut k,
        "e",
        &[
            ("e_all", ROOT),
            ("e_room", ROOM_R),
            ("e_list", &["f1a", "f2a", "ra", "rb"]),
            ("e_skip", &["f1a", "f2a"]),
            ("e_skip_list", &["f1a", "f2a", "f2b", "rb"]),
            ("e_bin", &["rb"]),
            ("e_bin_all", ROOT),
            ("e_text", ROOT),
            ("e_nsp", ADMIN),
            ("e_nsp_room", &["rx"]),
            ("e_none", ROOT),
            ("e_flask_room", ROOM_R),
            ("e_flask_skip", &["f1a", "f2a", "f2b", "rb"]),
            ("e_flask_nsp", ADMIN),
        ],
    )
    .await;
    check_args(&mut k, "e_flask_room", &json!(["via Flask-SocketIO"])).await;
    check_args(&mut k, "e_flask_skip", &json!([1, 2])).await;
    check_args(&mut k, "e_flask_nsp", &json!([{"$bin": "AQL/"}])).await;
    check_args(&mut k, "e_all", &json!(["x"])).await;
    check_args(&mut k, "e_room", &json!([1, "two", {"k": [true, null]}])).await;
    check_args(&mut k, "e_bin", &json!([{"$bin": "AQL/"}, "after", {"nested": {"$bin": "aGk="}}])).await;
    check_args(&mut k, "e_bin_all", &json!([{"$bin": "AAEC/w=="}])).await;
    check_args(&mut k, "e_text", &json!([text])).await;
    check_args(&mut k, "e_nsp", &json!(["adm"])).await;
    // python-socketio sends no arguments as [] (a tuple) and None as [null], which its
    // servers deliver as "no argument": the Rust node does as the Flask processes do
    check_args(&mut k, "e_nsp_room", &json!([])).await;
    check_args(&mut k, "e_none", &json!([])).await;
    k.stop().await;
}

// ---------------------------------------------------------------------------------
// f. Pickle (python-socketio 5.13.0): never delivered by the Rust node, one warning.
// ---------------------------------------------------------------------------------

async fn pickled_emits_dropped_with_one_warning(broker: Broker) {
    let mut k = Cluster::start(broker, "f").await;
    let emits = json!([
        {"event": "f_pickled", "args": ["p"]},
        {"event": "f_pickled_room", "args": ["p", 2], "room": "r"},
    ]);
    let (ok, out) = py_emit(&env("SIO_PYTHON_513"), broker, &k.channel.clone(), &emits).await;
    assert!(ok && out == "ok", "{broker:?}: py_emit 5.13.0: {out}");
    // then a JSON emit from 5.18.1: the node still reads the channel after the pickles
    let (ok, out) = py_emit(&env("SIO_PYTHON"), broker, &k.channel.clone(), &json!([{"event": "f_json"}])).await;
    assert!(ok && out == "ok", "{broker:?}: py_emit 5.18.1: {out}");
    check(&mut k, "f", &[("f_json", ROOT), ("f_pickled", &[]), ("f_pickled_room", &[])]).await;
    let log = k.node.log_lines();
    let warnings: Vec<&String> = log.iter().filter(|l| l.to_lowercase().contains("pickle")).collect();
    assert_eq!(warnings.len(), 1, "{broker:?}: one warning for the one sender of pickles; sio-node's stderr: {log:#?}");
    assert!(warnings[0].contains("WARN"), "{broker:?}: a warning: {}", warnings[0]);
    assert!(warnings[0].contains("5.14"), "{broker:?}: the warning names the version problem: {}", warnings[0]);
    // and counted: both pickles, in every namespace (each hears the one channel)
    let stats = k.node.get_json("/stats").await;
    for nsp in ["/", "/admin"] {
        assert_eq!(stats["namespaces"][nsp]["pickled"], json!(2), "{broker:?}: pickled count of {nsp}: {stats}");
    }
    k.stop().await;
}

// ---------------------------------------------------------------------------------
// g. Cross-host callbacks both ways: a Flask server's emit with a callback to a client
//    of the Rust node gets its answer, and the Rust node's emit with ack to a client of
//    a Flask process.
// ---------------------------------------------------------------------------------

async fn cross_host_callbacks_both_ways(broker: Broker) {
    let mut k = Cluster::start(broker, "g").await;
    // F1 asks (socketio.call: an emit with a callback to one sid, through the queue); the
    // first one, to F2's client, is python-socketio with itself: the control
    for target in ["f2b", "ra", "rb"] {
        let sid = k.id(target);
        let r = k.call("f1a", "ask", json!({"sid": sid, "event": "g_flask_asks", "args": ["q?"]})).await;
        assert_eq!(r, json!({"answer": format!("ack:{target}")}), "{broker:?}: F1 asks {target}");
    }
    // the Rust node asks a client of each Flask process (sio-node's emit_with_ack)
    for target in ["f1a", "f2b"] {
        let sid = k.id(target);
        let ask = json!({"event": "g_rust_asks", "to": sid, "args": ["q!"], "timeout_ms": 5000});
        let r = k.call("rb", "emit_with_ack", ask).await;
        assert_eq!(r, json!({"responses": [format!("ack:{target}")]}), "{broker:?}: R asks {target}");
    }
    // each question reached the asked client once, and nobody else
    check(&mut k, "g", &[("g_flask_asks", &["f2b", "ra", "rb"]), ("g_rust_asks", &["f1a", "f2b"])]).await;
    check_args(&mut k, "g_flask_asks", &json!(["q?"])).await;
    check_args(&mut k, "g_rust_asks", &json!(["q!"])).await;
    k.stop().await;
}

macro_rules! per_broker {
    ($($broker:ident: $module:ident),*) => {$(
        mod $module {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_emitter_and_cli_reach_all_three() {
                run(emitter_and_cli_reach_all_three(Broker::$broker)).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn b_flask_room_message_reaches_rust_members() {
                run(flask_room_message_reaches_rust_members(Broker::$broker)).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn c_flask_background_task_reaches_rust_clients() {
                run(flask_background_task_reaches_rust_clients(Broker::$broker)).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn d_outside_room_changes_and_disconnects() {
                run(outside_room_changes_and_disconnects(Broker::$broker)).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn e_python_manager_emits_delivered_exactly() {
                run(python_manager_emits_delivered_exactly(Broker::$broker)).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn f_pickled_emits_dropped_with_one_warning() {
                run(pickled_emits_dropped_with_one_warning(Broker::$broker)).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn g_cross_host_callbacks_both_ways() {
                run(cross_host_callbacks_both_ways(Broker::$broker)).await
            }
        }
    )*};
}

per_broker!(Redis: redis, Amqp: amqp);

// ---------------------------------------------------------------------------------
// Kafka
// ---------------------------------------------------------------------------------

/// `kafka_layout.py consume`: a reader of the topic as KafkaManager reads it.
struct LayoutConsumer {
    lines: Arc<Mutex<Vec<String>>>,
    _stdin: ChildStdin,
    _child: Child,
}

impl LayoutConsumer {
    async fn start(topic: &str) -> LayoutConsumer {
        let mut child = Command::new(env("SIO_PYTHON"))
            .arg(python_script("kafka_layout.py"))
            .args(["consume", &env("KAFKA_BROKERS"), topic])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start kafka_layout.py consume");
        let stdin = child.stdin.take().expect("stdin");
        let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), out.next_line()).await;
        let ready = ready.expect("kafka_layout.py consume: ready within 30 s").expect("read");
        assert_eq!(ready.as_deref(), Some("ready"), "kafka_layout.py consume");
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let keep = Arc::clone(&lines);
        tokio::spawn(async move {
            while let Ok(Some(line)) = out.next_line().await {
                let v: Json = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
                keep.lock().unwrap().push(v["value"].as_str().expect("value").to_owned());
            }
        });
        LayoutConsumer { lines, _stdin: stdin, _child: child }
    }

    /// The record values so far, as text.
    fn values(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

/// `kafka_layout.py produce`: records as KafkaManager would write them (keyless, so
/// kafka-python spreads them over the topic's partitions), or all into `partition`.
async fn layout_produce(topic: &str, messages: &Json, partition: Option<u32>) {
    let partition = partition.map(|p| p.to_string());
    let out = Command::new(env("SIO_PYTHON"))
        .arg(python_script("kafka_layout.py"))
        .args(["produce", &env("KAFKA_BROKERS"), topic, &messages.to_string()])
        .args(partition.as_deref())
        .stderr(Stdio::inherit())
        .output()
        .await
        .expect("run kafka_layout.py produce");
    assert!(out.status.success() && out.stdout.starts_with(b"ok"), "kafka_layout.py produce: {out:?}");
}

/// A barrier on a Kafka topic of several partitions, where records of one partition are
/// read in order and of different ones in none: `event` to everyone of "/", as a
/// python-socketio emit, into every partition; waits until each of `clients` got it once
/// per partition (then every record published before is in).
async fn kafka_barrier(c: &mut NodePeer, topic: &str, event: &str, clients: &[&str]) -> usize {
    let host = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    let message = py_emit_message(event, json!([]), "/", Json::Null, Json::Null, &host);
    let partitions = produce_each_partition(topic, &message).await;
    let mut want: Vec<&str> = clients.iter().flat_map(|c| std::iter::repeat_n(*c, partitions)).collect();
    want.sort_unstable();
    c.wait_got(event, &want, WAIT).await;
    partitions
}

/// `kafka_layout.py produce-each-partition`: `message` into every partition of `topic`;
/// the number of partitions.
async fn produce_each_partition(topic: &str, message: &Json) -> usize {
    let out = Command::new(env("SIO_PYTHON"))
        .arg(python_script("kafka_layout.py"))
        .args(["produce-each-partition", &env("KAFKA_BROKERS"), topic, &message.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .await
        .expect("run kafka_layout.py produce-each-partition");
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .trim()
        .strip_prefix("ok ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("kafka_layout.py produce-each-partition: {out:?}"))
}

/// The message python-socketio ≥ 5.15.1 writes for an emit (key order as its dict).
fn py_emit_message(event: &str, data: Json, namespace: &str, room: Json, skip_sid: Json, host_id: &str) -> Json {
    json!({"method": "emit", "event": event, "data": data, "binary": false, "namespace": namespace,
           "room": room, "skip_sid": skip_sid, "callback": null, "host_id": host_id})
}

const KAFKA_MANAGER_ERROR: &str = "TypeError: Unsupported type for serialized value: <class 'str'>";

/// python-socketio 5.18.1's `KafkaManager.emit` with the kafka-python pip installs today
/// (3.0.x): `producer.send(channel, value=json.dumps(data))` gives kafka-python a `str`
/// with no value serializer, and kafka-python raises before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_manager_cannot_publish_with_todays_kafka_python() {
    run(async {
        let topic = prefix("flask-kafka-manager");
        let reader = LayoutConsumer::start(&topic).await;
        let (ok, out) =
            py_emit(&env("SIO_PYTHON"), Broker::Kafka, &topic, &json!([{"event": "k", "args": ["x"]}])).await;
        assert!(!ok, "KafkaManager.emit succeeded: {out}");
        assert_eq!(out, format!("error {KAFKA_MANAGER_ERROR}"), "how KafkaManager.emit fails");
        // nothing reached the topic: once the reader has a barrier from every partition,
        // it has read nothing else
        let partitions = produce_each_partition(&topic, &json!({"barrier": 1})).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        while reader.values().len() < partitions {
            assert!(tokio::time::Instant::now() < deadline, "the reader's barriers: {:?}", reader.values());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(reader.values(), vec![r#"{"barrier": 1}"#; partitions], "records on the topic");
    })
    .await
}

/// A Flask-SocketIO process on Kafka next to a sio-node: what we publish reaches its
/// clients (its consumer decodes our JSON bytes), while what it broadcasts stops at its
/// own clients: KafkaManager delivers locally, then raises on publishing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flask_socketio_on_kafka_receives_but_cannot_publish() {
    run(async {
        let channel = prefix("flask-kafka");
        let url = Broker::Kafka.url(&channel);
        let node = SioNode::start_logging(&workspace_bin("sio-node"), "R", &url, &[], "warn").await;
        let (_f1, p1) = flask(Broker::Kafka, &channel, "F1", 500).await;
        let mut c = NodePeer::start("clients", json!({"name": "clients", "server": false})).await;
        c.call(
            "clients",
            json!({"clients": [
                {"name": "f1a", "port": p1}, {"name": "f1b", "port": p1},
                {"name": "ra", "port": node.port}, {"name": "rb", "port": node.port},
            ]}),
        )
        .await;
        for name in ["f1a", "ra"] {
            let r = c.call("call", json!({"name": name, "event": "join", "data": "r"})).await;
            assert_eq!(r, json!({"ok": true}), "{name} joins r");
        }
        let io = Emitter::connect(&url).await.unwrap_or_else(|e| panic!("Emitter::connect({url}): {e}"));
        let all = ["f1a", "f1b", "ra", "rb"];
        // KafkaManager's consumer starts reading (from the latest offset) once a client connected
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        for i in 0.. {
            io.emit("warmup", i).await.expect("emit warmup");
            tokio::time::sleep(Duration::from_millis(300)).await;
            let mut got = c.got("warmup").await;
            got.dedup();
            if got == all {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "warm-up reached only {got:?}");
        }
        // into Python: the emitter, the CLI and the Rust node's own broadcast
        io.to("r").emit("k_room", ("x", 1)).await.unwrap();
        io.emit("k_all", ()).await.unwrap();
        sio(&url, &["emit", "--to", "r", "k_cli", "=é"]).await;
        let r = c.call("call", json!({"name": "rb", "event": "emit", "data": {"event": "k_rust", "args": [7]}})).await;
        assert_eq!(r, json!({"ok": true}));
        // out of Python: a Flask client's room message and the background task
        let r = c
            .call("call", json!({"name": "f1b", "event": "send_to_room", "data": {"room": "r", "event": "k_flask"}}))
            .await;
        assert_eq!(r, json!({"error": KAFKA_MANAGER_ERROR}), "Flask's emit on Kafka");
        kafka_barrier(&mut c, &channel, "zz", &all).await;
        let cases: [(&str, &[&str]); 5] = [
            ("k_room", &["f1a", "ra"]),
            ("k_all", &all),
            ("k_cli", &["f1a", "ra"]),
            ("k_rust", &all),
            // delivered by F1 to its own member of r before the publish raised
            ("k_flask", &["f1a"]),
        ];
        for (event, want) in cases {
            assert_eq!(c.got(event).await, names(want), "{event}");
        }
        // the background task: F1's own clients get ticks, the Rust node's never do
        let deadline = tokio::time::Instant::now() + WAIT;
        while c.got("tick").await.iter().filter(|n| *n == "f1a").count() < 3 {
            assert!(tokio::time::Instant::now() < deadline, "F1's ticks never reached its own clients");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        kafka_barrier(&mut c, &channel, "zz2", &all).await;
        let ticks = c.got("tick").await;
        assert!(!ticks.iter().any(|n| n.starts_with('r')), "ticks reached the Rust node's clients: {ticks:?}");
        drop(node);
        c.stop().await;
    })
    .await
}

/// Our side against the KafkaManager layout, both ways: records written as KafkaManager
/// writes them (topic = channel, JSON bytes) reach the Rust node's clients and apply
/// room changes and disconnects; what the emitter and the node publish is read by a
/// group-less consumer as python-socketio's messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_layout_both_directions() {
    run(async {
        let channel = prefix("flask-kafka-layout");
        let url = Broker::Kafka.url(&channel);
        let node = SioNode::start_logging(&workspace_bin("sio-node"), "R", &url, &[], "warn").await;
        let mut c = NodePeer::start("clients", json!({"name": "clients", "server": false})).await;
        let ids = c
            .call(
                "clients",
                json!({"clients": [
                    {"name": "ra", "port": node.port}, {"name": "rb", "port": node.port},
                    {"name": "rx", "port": node.port, "nsp": "/admin"},
                ]}),
            )
            .await;
        let r = c.call("call", json!({"name": "ra", "event": "join", "data": "r"})).await;
        assert_eq!(r, json!({"ok": true}));
        let (ra, rb) = (ids["ra"].as_str().unwrap().to_owned(), ids["rb"].as_str().unwrap().to_owned());
        let host = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let msg = |event: &str, data: Json, nsp: &str, room: Json, skip: Json| {
            py_emit_message(event, data, nsp, room, skip, &host)
        };

        // ---- into the Rust node ----
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        for i in 0.. {
            layout_produce(&channel, &json!([msg("warmup", json!([i]), "/", Json::Null, Json::Null)]), None).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            if !c.got("warmup").await.is_empty() {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "the Rust node never delivered a record of the topic");
        }
        // KafkaManager's records carry no key, so on a topic of several partitions (this
        // broker creates 4) python-socketio itself has no order between two messages: the
        // sequence below (enter_room, then an emit to that room, ...) goes into one
        // partition, where the order is the broker's
        layout_produce(
            &channel,
            &json!([
                msg("l_room", json!(["x", 1]), "/", json!("r"), Json::Null),
                msg("l_skip", json!([{"k": "é"}]), "/", Json::Null, json!(ra)),
                msg("l_nsp", json!(["a"]), "/admin", Json::Null, Json::Null),
                {"method": "enter_room", "sid": rb, "room": "lj", "namespace": "/", "host_id": host},
                msg("l_lj", json!([]), "/", json!("lj"), Json::Null),
                {"method": "leave_room", "sid": rb, "room": "lj", "namespace": "/", "host_id": host},
                msg("l_lj2", json!([]), "/", json!("lj"), Json::Null),
                msg("l_zz", json!([]), "/", Json::Null, Json::Null),
                msg("l_zz", json!([]), "/admin", Json::Null, Json::Null),
            ]),
            Some(0),
        )
        .await;
        c.wait_got("l_zz", &["ra", "rb", "rx"], WAIT).await;
        let cases: [(&str, &[&str]); 5] =
            [("l_room", &["ra"]), ("l_skip", &["rb"]), ("l_nsp", &["rx"]), ("l_lj", &["rb"]), ("l_lj2", &[])];
        for (event, want) in cases {
            assert_eq!(c.got(event).await, names(want), "{event}");
        }
        assert_eq!(c.received("l_room").await[0].1, [json!("x"), json!(1)]);
        assert_eq!(c.received("l_skip").await[0].1, [json!({"k": "é"})]);
        layout_produce(
            &channel,
            &json!([{"method": "disconnect", "sid": rb, "namespace": "/", "host_id": host}]),
            None,
        )
        .await;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let d = c.call("disconnected", json!({})).await;
            if d["rb"] == json!(true) {
                assert_eq!((d["ra"].clone(), d["rx"].clone()), (json!(false), json!(false)), "{d}");
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "disconnect record: {d}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // ---- out of our side, read as KafkaManager reads ----
        let reader = LayoutConsumer::start(&channel).await;
        let io = Emitter::connect(&url).await.unwrap_or_else(|e| panic!("Emitter::connect({url}): {e}"));
        io.to("r").emit("o_emitter", ("y", 2)).await.unwrap();
        let r =
            c.call("call", json!({"name": "ra", "event": "emit", "data": {"event": "o_node", "args": ["z"]}})).await;
        assert_eq!(r, json!({"ok": true}));
        // the barrier: the node delivered everything before it, and once the reader has
        // it from every partition, the reader has every record before it too
        let partitions = kafka_barrier(&mut c, &channel, "o_zz", &["ra"]).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        let values = loop {
            let values = reader.values();
            if values.iter().filter(|v| v.contains(r#""event": "o_zz""#)).count() == partitions {
                break values;
            }
            assert!(tokio::time::Instant::now() < deadline, "the reader's barrier records: {values:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mine = |event: &str| -> Vec<String> {
            values
                .iter()
                .filter(|v| serde_json::from_str::<Json>(v).is_ok_and(|j| j["event"] == json!(event)))
                .cloned()
                .collect()
        };
        for (event, data, room) in [("o_emitter", json!(["y", 2]), json!("r")), ("o_node", json!(["z"]), Json::Null)] {
            let recs = mine(event);
            assert_eq!(recs.len(), 1, "{event}: one record: {values:#?}");
            let j: Json = serde_json::from_str(&recs[0]).unwrap();
            let host_id = j["host_id"].as_str().unwrap_or_default().to_owned();
            assert!(
                host_id.len() == 32 && host_id.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
                "{event}: host_id as uuid4().hex: {}",
                recs[0]
            );
            assert_eq!(j, py_emit_message(event, data, "/", room, Json::Null, &host_id), "{event}: {}", recs[0]);
            // the fields in python-socketio's order
            let keys = ["method", "event", "data", "binary", "namespace", "room", "skip_sid", "callback", "host_id"];
            let at: Vec<usize> = keys.iter().map(|k| recs[0].find(&format!("\"{k}\"")).expect("key")).collect();
            assert!(at.windows(2).all(|w| w[0] < w[1]), "{event}: key order: {}", recs[0]);
        }
        // and were delivered once each by the node (ra is its one client left in "/")
        assert_eq!(c.got("o_node").await, ["ra"]);
        assert_eq!(c.got("o_emitter").await, ["ra"]);
        c.stop().await;
    })
    .await
}

/// python-socketio's servers apply a channel's messages in their publish order (a join,
/// then an emit to the room; Redis and Kombu keep it, see d). On Kafka only a partition
/// has an order, and this broker makes topics of 4: what one sender of ours publishes on
/// the python layout must still reach a KafkaManager reader in publish order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_layout_keeps_publish_order() {
    run(async {
        let channel = prefix("flask-kafka-order");
        let url = Broker::Kafka.url(&channel);
        // sio-node first, so that it is the one that creates the topic
        let _node = SioNode::start_logging(&workspace_bin("sio-node"), "R", &url, &[], "warn").await;
        let reader = LayoutConsumer::start(&channel).await;
        let io = Emitter::connect(&url).await.unwrap_or_else(|e| panic!("Emitter::connect({url}): {e}"));
        const N: u64 = 20;
        for i in 0..N {
            io.emit("seq", i).await.unwrap();
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        let order: Vec<u64> = loop {
            let order: Vec<u64> = reader
                .values()
                .iter()
                .filter_map(|v| serde_json::from_str::<Json>(v).ok())
                .filter(|j| j["event"] == json!("seq"))
                .map(|j| j["data"][0].as_u64().expect("seq number"))
                .collect();
            if order.len() as u64 >= N {
                break order;
            }
            assert!(tokio::time::Instant::now() < deadline, "the reader got {order:?} of {N} records");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(order, (0..N).collect::<Vec<_>>(), "the order a KafkaManager reader sees our records in");
    })
    .await
}
