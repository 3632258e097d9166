//! A Rust node (`sio-node` with `?dialect=python&channel=...`) as a full member of a
//! python-socketio cluster, on Redis (`AsyncRedisManager`) and RabbitMQ
//! (`AsyncAioPikaManager`, which shares `KombuManager`'s layout), with real
//! `socket.io-client` clients on both servers: broadcasts both ways, callbacks across
//! hosts both ways, and a Python server moving, closing and disconnecting the Rust
//! node's sockets. Every delivery is counted (`wait_got` asserts exactly who got it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value as Json, json};
use socketio_cluster_tests::conformance::{prefix, run};
use socketio_cluster_tests::env;
use socketio_cluster_tests::node::NodePeer;
use socketio_cluster_tests::python::PythonServer;
use socketio_cluster_tests::sio_node::{SioNode, workspace_bin};

const WAIT: Duration = Duration::from_secs(10);

/// `base` with the python dialect's keys added to its query.
fn python_url(base: &str, channel: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}dialect=python&channel={channel}")
}

async fn member_of_a_python_cluster(base: &str, python_base: &str, tag: &str) {
    let channel = prefix(tag);
    let py = PythonServer::start(python_base, &channel, "P").await;
    let node = SioNode::start(&workspace_bin("sio-node"), "N", &python_url(base, &channel)).await;
    let mut c = NodePeer::start("clients", json!({"name": "clients", "server": false})).await;
    let ids = c
        .call(
            "clients",
            json!({"clients": [
                {"name": "p1", "port": py.port, "rooms": ["red"]},
                {"name": "p2", "port": py.port, "rooms": []},
                {"name": "n1", "port": node.port},
                {"name": "n2", "port": node.port},
            ]}),
        )
        .await;
    let id = |n: &str| ids[n].as_str().unwrap().to_owned();
    let ok = |r: Json| assert_eq!(r, json!({"ok": true}), "{tag}");
    ok(c.call("call", json!({"name": "n1", "event": "join", "data": ["red"]})).await);
    // a marker to all: every message before it on the channel has been handled
    let mut markers = 0;
    let mut settle = async |c: &mut NodePeer| {
        markers += 1;
        let event = format!("marker{markers}");
        ok(c.call("call", json!({"name": "p2", "event": "emit", "data": {"event": event}})).await);
        c.wait_got(&event, &["n1", "n2", "p1", "p2"], WAIT).await;
    };

    // broadcasts made on the Python server reach the Rust node's clients, and back
    let args = json!([1, "é ü", {"k": [true, null]}]);
    ok(c.call("call", json!({"name": "p2", "event": "emit", "data": {"event": "from_py", "args": args, "to": "red"}}))
        .await);
    c.wait_got("from_py", &["n1", "p1"], WAIT).await;
    assert_eq!(c.received("from_py").await[0].1, args.as_array().unwrap().clone(), "{tag}: arguments");
    ok(c.call(
        "call",
        json!({"name": "n2", "event": "emit", "data": {"event": "from_rs", "args": ["x"], "to": "red"}}),
    )
    .await);
    c.wait_got("from_rs", &["n1", "p1"], WAIT).await;
    ok(c.call("call", json!({"name": "n2", "event": "emit", "data": {"event": "from_rs_all", "except": id("p1")}}))
        .await);
    c.wait_got("from_rs_all", &["n1", "n2", "p2"], WAIT).await;

    // a Python server's callback to a socket of the Rust node, answered across hosts
    let answer =
        c.call("call", json!({"name": "p2", "event": "ask_remote", "data": {"sid": id("n1"), "x": "q"}})).await;
    assert_eq!(answer, json!("ack:n1"), "{tag}: sio.call() to a socket of the Rust node");
    // and the Rust node's ack request to a socket of the Python server
    let answer = c
        .call(
            "call",
            json!({"name": "n2", "event": "emit_with_ack", "data": {"event": "ask", "to": id("p1"), "timeout_ms": 5000}}),
        )
        .await;
    assert_eq!(answer, json!({"responses": ["ack:p1"]}), "{tag}: emit_with_ack to a socket of the Python server");

    // the Python server moves, closes and disconnects the Rust node's sockets
    ok(c.call("call", json!({"name": "p2", "event": "enter_room", "data": {"sid": id("n2"), "room": "blue"}})).await);
    ok(c.call("call", json!({"name": "p2", "event": "emit", "data": {"event": "to_blue", "to": "blue"}})).await);
    c.wait_got("to_blue", &["n2"], WAIT).await;
    ok(c.call("call", json!({"name": "p2", "event": "leave_room", "data": {"sid": id("n2"), "room": "blue"}})).await);
    ok(c.call("call", json!({"name": "p2", "event": "emit", "data": {"event": "to_blue2", "to": "blue"}})).await);
    settle(&mut c).await;
    assert!(c.got("to_blue2").await.is_empty(), "{tag}: n2 left blue");
    ok(c.call("call", json!({"name": "p2", "event": "close_room", "data": {"room": "red"}})).await);
    ok(c.call("call", json!({"name": "p2", "event": "emit", "data": {"event": "to_red", "to": "red"}})).await);
    settle(&mut c).await;
    assert!(c.got("to_red").await.is_empty(), "{tag}: close_room emptied red on both servers");
    ok(c.call("call", json!({"name": "p2", "event": "kick", "data": {"sid": id("n2")}})).await);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let d = c.call("disconnected", json!({})).await;
        if d["n2"] == json!(true) {
            assert_eq!((&d["n1"], &d["p1"], &d["p2"]), (&json!(false), &json!(false), &json!(false)), "{tag}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{tag}: n2 not disconnected: {d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_node_is_a_full_member_of_a_python_cluster_on_redis() {
    run(async {
        let url = env("REDIS_URL");
        member_of_a_python_cluster(&url, &url, "pyredis").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_node_is_a_full_member_of_a_python_cluster_on_rabbitmq() {
    run(async {
        let url = env("AMQP_ADDR");
        member_of_a_python_cluster(&url, &url, "pyamqp").await;
    })
    .await;
}
