//! End to end: 3 `sio-node` processes on real Redis (classic, sharded and streams), real
//! `socket.io-client` clients (Node.js) on all three, every contract event checked at the
//! receiving clients; and a mixed cluster with 2 Node.js socket.io servers
//! (`@socket.io/redis-adapter`, or `@socket.io/redis-streams-adapter` in streams mode).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value as Json, json};
use socketio_cluster_tests::conformance::{prefix, run};
use socketio_cluster_tests::env;
use socketio_cluster_tests::node::{NodePeer, free_port};
use socketio_cluster_tests::sio_node::SioNode;
use tokio::process::Command;

const WAIT: Duration = Duration::from_secs(10);

async fn sio_node(name: &str, url: &str) -> SioNode {
    SioNode::start(std::path::Path::new(env!("CARGO_BIN_EXE_sio-node")), name, url).await
}

fn strings(j: &Json) -> BTreeSet<String> {
    j.as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

async fn call(clients: &mut NodePeer, name: &str, event: &str, data: Json) -> Json {
    let r = clients.call("call", json!({"name": name, "event": event, "data": data})).await;
    assert!(r.get("error").is_none(), "{name} {event}: {r}");
    r
}

async fn three_nodes(query: &str) {
    let prefix = prefix("e2e");
    let stream = if query.contains("mode=streams") { format!("&stream={prefix}") } else { String::new() };
    let url = format!("{}?prefix={prefix}{query}{stream}", env("REDIS_URL"));
    let nodes = [sio_node("A", &url).await, sio_node("B", &url).await, sio_node("C", &url).await];
    let mut c = NodePeer::start("clients", json!({"name": "clients", "server": false})).await;
    let p = |i: usize| nodes[i].port;
    let ids = c
        .call(
            "clients",
            json!({"clients": [
                {"name": "a1", "port": p(0)}, {"name": "a2", "port": p(0)},
                {"name": "b1", "port": p(1)}, {"name": "c1", "port": p(2)},
                {"name": "x1", "port": p(2), "nsp": "/admin"},
            ]}),
        )
        .await;
    // server count, then rooms
    let deadline = tokio::time::Instant::now() + WAIT;
    while call(&mut c, "a1", "server_count", json!({})).await["count"] != json!(3) {
        assert!(tokio::time::Instant::now() < deadline, "server count never 3");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(call(&mut c, "a1", "join", json!("red")).await, json!({"ok": true}));
    call(&mut c, "b1", "join", json!(["red", "blue"])).await;
    call(&mut c, "c1", "join", json!("blue")).await;
    // wait until per-room subscriptions settle: a probe to red+blue reaches a1, b1, c1
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        call(&mut c, "a2", "emit", json!({"to": ["red", "blue"], "event": "probe", "args": []})).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let g: BTreeSet<String> = c.got("probe").await.into_iter().collect();
        if ["a1", "b1", "c1"].iter().all(|n| g.contains(*n)) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "room probe: {g:?}");
    }

    // emit: all, room, except, across nodes, exact args
    let args = json!(["text", 42, 1.5, {"nested": [true, null]}, 12345678901234i64]);
    call(&mut c, "c1", "emit", json!({"event": "e_all", "args": args})).await;
    call(&mut c, "a1", "emit", json!({"to": ["red"], "event": "e_red", "args": [1]})).await;
    call(&mut c, "a1", "emit", json!({"to": ["red", "blue"], "except": ["blue"], "event": "e_except", "args": []}))
        .await;
    call(&mut c, "b1", "emit", json!({"to": ["blue"], "event": "e_vol", "args": [], "volatile": true})).await;
    call(&mut c, "x1", "emit", json!({"event": "e_admin", "args": ["adm"]})).await;
    c.wait_got("e_all", &["a1", "a2", "b1", "c1"], WAIT).await;
    c.wait_got("e_red", &["a1", "b1"], WAIT).await;
    c.wait_got("e_except", &["a1"], WAIT).await;
    c.wait_got("e_admin", &["x1"], WAIT).await;
    // barrier, then nothing extra arrived
    call(&mut c, "a1", "emit", json!({"event": "zz", "args": []})).await;
    c.wait_got("zz", &["a1", "a2", "b1", "c1"], WAIT).await;
    assert_eq!(c.got("e_all").await, ["a1", "a2", "b1", "c1"]);
    assert_eq!(c.got("e_red").await, ["a1", "b1"]);
    assert_eq!(c.got("e_except").await, ["a1"]);
    assert_eq!(c.got("e_admin").await, ["x1"]);
    let vol = c.got("e_vol").await;
    assert!(vol.iter().all(|n| n == "b1" || n == "c1"), "volatile to blue: {vol:?}");
    let rec = c.call("received", json!({"event": "e_all"})).await;
    assert_eq!(rec["b1"][0]["args"], args, "arguments across nodes");

    // binary attachments (top level and nested) cross nodes as binary
    let bin_args = json!([{"$bin": "AQID"}, {"nested": [{"$bin": "/wA="}, "s"]}, 7]);
    call(&mut c, "b1", "emit", json!({"event": "e_bin", "args": bin_args})).await;
    c.wait_got("e_bin", &["a1", "a2", "b1", "c1"], WAIT).await;
    let rec = c.call("received", json!({"event": "e_bin"})).await;
    for n in ["a1", "c1"] {
        assert_eq!(rec[n][0]["args"], bin_args, "binary arguments at {n}");
    }

    // server_side_emit without ack reaches every other node (checked on each), with its args
    let hello = json!([1, "x", {"$bin": "AQID"}]);
    let r = call(&mut c, "a1", "server_side_emit", json!({"event": "hello", "args": hello, "ack": false})).await;
    // classic requests are JSON: a Buffer travels as Node.js' Buffer.toJSON() shape, as
    // between two Node.js servers; the sharded (msgpack) protocol keeps it binary
    let hello = if query.contains("sharded") || query.contains("streams") {
        hello
    } else {
        json!([1, "x", {"type": "Buffer", "data": [1, 2, 3]}])
    };
    assert_eq!(r, json!({"ok": true}));
    for (client, node) in [("b1", "B"), ("c1", "C")] {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let r = call(&mut c, client, "server_events", json!({})).await;
            let events = r["events"].as_array().unwrap();
            if let Some(e) = events.iter().find(|e| e["event"] == "hello") {
                assert_eq!(e["args"], hello, "server-side event args on {node}");
                assert_eq!(events.iter().filter(|e| e["event"] == "hello").count(), 1, "once on {node}");
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "server-side event never reached {node}: {r}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let r = call(&mut c, "a1", "server_events", json!({})).await;
    assert_eq!(r["events"], json!([]), "the sending node does not receive its own server-side event");
    let r = call(&mut c, "x1", "server_events", json!({})).await;
    assert_eq!(r["events"], json!([]), "namespace /admin did not receive the event of /");

    // emit_with_ack across nodes
    let r = call(
        &mut c,
        "a2",
        "emit_with_ack",
        json!({"to": ["red", "blue"], "event": "ask", "args": [1], "timeout_ms": 3000}),
    )
    .await;
    assert_eq!(strings(&r["responses"]), ["ack:a1", "ack:b1", "ack:c1"].iter().map(|s| s.to_string()).collect());

    // fetch_sockets / all_rooms
    let r = call(&mut c, "c1", "fetch_sockets", json!({"to": ["red"]})).await;
    let fetched: BTreeSet<String> =
        r["sockets"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect();
    let want: BTreeSet<String> = ["a1", "b1"].iter().map(|n| ids[n].as_str().unwrap().to_owned()).collect();
    assert_eq!(fetched, want);
    let b1 = r["sockets"].as_array().unwrap().iter().find(|s| s["id"] == ids["b1"]).unwrap();
    assert!(strings(&b1["rooms"]).contains("blue"), "{b1}");
    let rooms = strings(&call(&mut c, "a1", "all_rooms", json!({})).await["rooms"]);
    assert!(rooms.contains("red") && rooms.contains("blue"), "{rooms:?}");

    // sockets_join / sockets_leave, checked by a broadcast to the new room
    call(&mut c, "a2", "sockets_join", json!({"to": ["blue"], "rooms": ["green"]})).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // per-room subscription of the new room
    call(&mut c, "a2", "emit", json!({"to": ["green"], "event": "e_green", "args": []})).await;
    c.wait_got("e_green", &["b1", "c1"], WAIT).await;
    call(&mut c, "a2", "sockets_leave", json!({"to": ["green"], "rooms": ["green"]})).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = call(&mut c, "a2", "fetch_sockets", json!({"to": ["green"]})).await;
        if r["sockets"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "sockets_leave: {r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // leave: a1 leaves red, a broadcast to red no longer reaches it
    assert_eq!(call(&mut c, "a1", "leave", json!("red")).await, json!({"ok": true}));
    call(&mut c, "c1", "emit", json!({"to": ["red"], "event": "e_after_leave", "args": []})).await;
    c.wait_got("e_after_leave", &["b1"], WAIT).await;
    call(&mut c, "c1", "emit", json!({"event": "zz2", "args": []})).await;
    c.wait_got("zz2", &["a1", "a2", "b1", "c1"], WAIT).await;
    assert_eq!(c.got("e_after_leave").await, ["b1"], "a1 left red");

    // GET /health (local state: the other nodes heard from) and GET /ready on each node
    for (node, name) in nodes.iter().zip(["A", "B", "C"]) {
        let health = node.get_json("/health").await;
        assert_eq!(health["node"], name, "{health}");
        assert!(health["known_nodes"].as_u64().is_some_and(|n| n <= 2), "{health}");
        assert_eq!(node.get("/ready").await, (200, "ready\n".to_owned()));
    }

    // server_side_emit with acks: every other node answers ping
    let r = call(&mut c, "a1", "server_side_emit", json!({"event": "ping", "args": [], "ack": true})).await;
    let nodes_answered: BTreeSet<String> =
        r["responses"].as_array().unwrap().iter().map(|v| v["node"].as_str().unwrap().to_owned()).collect();
    assert_eq!(nodes_answered, ["B", "C"].iter().map(|s| s.to_string()).collect());

    // disconnect_sockets across nodes
    call(&mut c, "a1", "disconnect_sockets", json!({"to": ["blue"], "except": ["red"]})).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let d = c.call("disconnected", json!({})).await;
        if d["c1"] == json!(true) {
            assert_eq!(d["b1"], json!(false));
            assert_eq!(d["a1"], json!(false));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "disconnect: {d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sio_nodes_classic() {
    run(three_nodes("")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sio_nodes_sharded() {
    run(three_nodes("&mode=sharded")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sio_nodes_streams() {
    run(three_nodes("&mode=streams")).await
}

/// 2 sio-node + 2 Node.js socket.io servers (`@socket.io/redis-adapter`) on one Redis,
/// clients on all four: broadcasts, rooms, fetch, acks and server-side emit both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_with_nodejs_servers() {
    run(mixed("classic")).await
}

/// The same with `@socket.io/redis-streams-adapter` 0.3.1 servers and `mode=streams`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_with_nodejs_streams_servers() {
    run(mixed("streams")).await
}

async fn mixed(mode: &str) {
    let prefix = prefix("mixed");
    let query = if mode == "streams" { format!("&mode=streams&stream={prefix}") } else { String::new() };
    let url = format!("{}?prefix={prefix}{query}", env("REDIS_URL"));
    let (a, b) = (sio_node("A", &url).await, sio_node("B", &url).await);
    let cfg = |name: &str| {
        json!({"name": name, "port": free_port(), "prefix": prefix, "mode": mode, "stream": prefix,
               "redis": env("REDIS_URL"), "requestsTimeout": 3000})
    };
    let mut n1 = NodePeer::start("N1", cfg("N1")).await;
    let mut n2 = NodePeer::start("N2", cfg("N2")).await;
    let mut c = NodePeer::start("clients", json!({"name": "clients", "server": false})).await;
    let ids =
        c.call("clients", json!({"clients": [{"name": "a1", "port": a.port}, {"name": "b1", "port": b.port}]})).await;
    let ids1 = n1.call("clients", json!({"clients": [{"name": "n1a", "rooms": ["red"]}]})).await;
    let ids2 = n2.call("clients", json!({"clients": [{"name": "n2a", "rooms": []}]})).await;
    call(&mut c, "a1", "join", json!("red")).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while call(&mut c, "a1", "server_count", json!({})).await["count"] != json!(4) {
        assert!(tokio::time::Instant::now() < deadline, "server count never 4");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(n1.call("serverCount", json!({})).await, json!(4));

    // sio-node -> everyone, and to red
    call(&mut c, "b1", "emit", json!({"event": "m_all", "args": ["hi", 1]})).await;
    call(&mut c, "b1", "emit", json!({"to": ["red"], "event": "m_red", "args": []})).await;
    c.wait_got("m_all", &["a1", "b1"], WAIT).await;
    c.wait_got("m_red", &["a1"], WAIT).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (g1, g2) = (
            n1.call("received", json!({"event": "m_all"})).await,
            n2.call("received", json!({"event": "m_all"})).await,
        );
        if g1["n1a"].as_array().is_some_and(|v| !v.is_empty()) && g2["n2a"].as_array().is_some_and(|v| !v.is_empty()) {
            assert_eq!(g1["n1a"][0]["args"], json!(["hi", 1]));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "sio-node broadcast to Node.js clients: {g1} {g2}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Node.js -> sio-node clients in red
    n2.call("broadcast", json!({"to": ["red"], "event": "n_red", "args": [{"k": "v"}]})).await;
    c.wait_got("n_red", &["a1"], WAIT).await;

    // fetch sockets from sio-node includes Node.js sockets, and the other way round
    let r = call(&mut c, "b1", "fetch_sockets", json!({"to": ["red"]})).await;
    let got: BTreeSet<String> =
        r["sockets"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect();
    let want: BTreeSet<String> =
        [ids["a1"].as_str().unwrap(), ids1["n1a"].as_str().unwrap()].iter().map(|s| s.to_string()).collect();
    assert_eq!(got, want, "sio-node fetch_sockets");
    let r = n2.call("fetchSockets", json!({"to": ["red"]})).await;
    let got: BTreeSet<String> = r.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(got, want, "Node.js fetchSockets");

    // acks across
    let r = call(&mut c, "a1", "emit_with_ack", json!({"event": "ask", "args": [], "timeout_ms": 3000})).await;
    let acks = strings(&r["responses"]);
    for want in ["ack:a1", "ack:b1", "ack:n1a", "ack:n2a"] {
        assert!(acks.contains(want), "sio-node emit_with_ack lacks {want}: {acks:?}");
    }
    let r = n1.call("emitWithAck", json!({"event": "ask2", "timeout": 3000})).await;
    assert!(r.get("error").is_none(), "Node.js emitWithAck: {r}");
    assert_eq!(strings(&r["responses"]).len(), 4, "{r}");

    // server-side emit both ways
    let r = call(&mut c, "a1", "server_side_emit", json!({"event": "ping", "args": [], "ack": true})).await;
    let answers: Vec<String> = r["responses"].as_array().unwrap().iter().map(|v| v.to_string()).collect();
    assert_eq!(answers.len(), 3, "B, N1, N2 answer: {answers:?}");
    assert!(
        answers.iter().any(|a| a.contains("pong from N1")) && answers.iter().any(|a| a.contains("\"B\"")),
        "{answers:?}"
    );
    let r = n1.call("serverSideEmitWithAck", json!({"event": "ping"})).await;
    assert!(r.get("error").is_none(), "Node.js serverSideEmitWithAck: {r}");
    assert_eq!(r["responses"].as_array().unwrap().len(), 3, "{r}");

    // except and binary, both ways: sio-node -> all except red (b1, n2a), with binary
    let bin = json!([{"$bin": "AQID/w=="}, {"nested": [{"$bin": "aGk="}]}]);
    call(&mut c, "a1", "emit", json!({"except": ["red"], "event": "m_bin", "args": bin})).await;
    c.wait_got("m_bin", &["b1"], WAIT).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (g1, g2) = (
            n1.call("received", json!({"event": "m_bin"})).await,
            n2.call("received", json!({"event": "m_bin"})).await,
        );
        if g2["n2a"].as_array().is_some_and(|v| !v.is_empty()) {
            assert_eq!(g2["n2a"][0]["args"], bin, "binary from sio-node at a Node.js client");
            assert_eq!(g1["n1a"], json!([]), "n1a is in red");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "sio-node binary to Node.js: {g2}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Node.js -> all except red (b1 on sio-node, n2a), with binary
    n1.call("broadcast", json!({"except": ["red"], "event": "n_bin", "args": bin})).await;
    c.wait_got("n_bin", &["b1"], WAIT).await;
    let rec = c.call("received", json!({"event": "n_bin"})).await;
    assert_eq!(rec["b1"][0]["args"], bin, "binary from Node.js at a sio-node client");

    // joins, leaves and disconnects both ways
    n1.call("socketsJoin", json!({"except": ["red"], "rooms": ["j1"]})).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = call(&mut c, "b1", "fetch_sockets", json!({"to": ["j1"]})).await;
        let got: BTreeSet<String> =
            r["sockets"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect();
        if got.len() == 2 {
            let want = [ids["b1"].as_str().unwrap(), ids2["n2a"].as_str().unwrap()];
            assert_eq!(got, want.iter().map(|s| s.to_string()).collect(), "Node.js socketsJoin");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "Node.js socketsJoin: {got:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    call(&mut c, "a1", "sockets_leave", json!({"to": ["j1"], "rooms": ["j1"]})).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !n2.call("fetchSockets", json!({"to": ["j1"]})).await.as_array().unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "sio-node sockets_leave");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    call(&mut c, "b1", "disconnect_sockets", json!({"to": ["red"]})).await;
    n2.call("disconnectSockets", json!({"except": ["red"]})).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (d, d1, d2) = (
            c.call("disconnected", json!({})).await,
            n1.call("disconnected", json!({})).await,
            n2.call("disconnected", json!({})).await,
        );
        if [&d["a1"], &d["b1"], &d1["n1a"], &d2["n2a"]].iter().all(|v| **v == json!(true)) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "disconnects both ways: {d} {d1} {d2}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for p in [c, n1, n2] {
        p.stop().await;
    }
}

/// Runs the browser script `script` (in `demo/tests`) in headless Chromium against nodes
/// A and B of a fresh cluster on Redis; it leaves screenshot `shot` in the test target
/// directory (a test artifact).
async fn in_chromium(script: &str, shot: &str) {
    let prefix = prefix("browser");
    let url = format!("{}?prefix={prefix}", env("REDIS_URL"));
    let (a, b) = (sio_node("A", &url).await, sio_node("B", &url).await);
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(shot);
    let _ = std::fs::remove_file(&shot);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(script);
    let out = Command::new("node")
        .arg(&script)
        .args([a.port.to_string(), b.port.to_string(), shot.display().to_string()])
        .env("NODE_PATH", env("SIO_NODE_MODULES"))
        .env("CHROMIUM", std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()))
        .output()
        .await
        .expect("node");
    assert!(
        out.status.success(),
        "{} failed:\n{}\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 1000).unwrap_or(false), "screenshot {}", shot.display());
    eprintln!("screenshot: {}", shot.display());
}

/// Headless Chromium (playwright-core) opens the chat page on two nodes; a message sent
/// on A shows on B. The screenshot is kept in `$CARGO_TARGET_TMPDIR/chat-node-b.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_chat_across_nodes() {
    run(in_chromium("browser.js", "chat-node-b.png")).await
}

/// The live cluster page (`GET /cluster`) in headless Chromium: node A's page lists both
/// servers with their sockets (the cluster page itself on A, a chat page on B), the room
/// the chat page joined with its member, and a message-rate chart; the screenshot is kept
/// as a test artifact (`cluster-page.png` in the test target directory).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_page_in_a_browser() {
    run(in_chromium("cluster_page.js", "cluster-page.png")).await
}
