//! What the emitter publishes is byte for byte what `@socket.io/redis-emitter` 5.1 sent
//! in the captured scenarios 01-18 (fixtures of adapter-core, captured from Node.js).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::PathBuf;

use bytes::Bytes;
use serde::Serialize;
use socketio_adapter_core::dialect::NodeRedisDialect;
use socketio_adapter_core::memory::{MemoryHub, MemoryTransport};
use socketio_adapter_core::{Channel, Room, Transport, TransportEvent};
use socketio_emitter::{Emitter, EmitterConfig};
use tokio::sync::mpsc;

fn fixtures() -> HashMap<String, Vec<(String, String)>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../adapter-core/tests/fixtures/node");
    let mut out = HashMap::new();
    for entry in std::fs::read_dir(dir).expect("fixtures") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".json") || !name.contains("_emitter_") {
            continue;
        }
        let j: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let msgs = j["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["channel"].as_str().unwrap().to_owned(), m["hex"].as_str().unwrap().to_owned()))
            .collect();
        out.insert(name[..2].to_owned(), msgs);
    }
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[derive(Serialize)]
struct Hello {
    msg: &'static str,
    n: i32,
}

const HELLO: Hello = Hello { msg: "hi", n: 1 };

#[derive(Serialize)]
struct B {
    b: Bytes,
}

#[derive(Serialize)]
struct A {
    a: i32,
}

async fn published(
    sink: &mut mpsc::Receiver<TransportEvent>,
    op: impl std::future::Future<Output = Result<(), socketio_emitter::EmitterError>>,
) -> Vec<(String, String)> {
    op.await.expect("emit");
    let mut out = Vec::new();
    while let Ok(ev) = sink.try_recv() {
        if let TransportEvent::Message { channel, payload } = ev {
            out.push((channel, hex(&payload)));
        }
    }
    out
}

#[tokio::test]
async fn emits_are_byte_identical_to_the_node_emitter() {
    let hub = MemoryHub::new();
    let spy: MemoryTransport = hub.transport();
    let (tx, mut rx) = mpsc::channel(64);
    spy.subscribe(&[Channel::Pattern("*".into())], tx).await.unwrap();
    let io = Emitter::new(hub.transport(), EmitterConfig::new(std::sync::Arc::new(NodeRedisDialect::new("socket.io"))));
    let want = fixtures();
    assert_eq!(want.len(), 18, "18 emitter scenarios");
    let r = &mut rx;
    let got: Vec<(&str, Vec<(String, String)>)> = vec![
        ("01", published(r, io.emit("hello", HELLO)).await),
        ("02", published(r, io.to("r1").emit("hello", HELLO)).await),
        ("03", published(r, io.except("r1").emit("hello", HELLO)).await),
        ("04", published(r, io.to("r1").except("r3").emit("hello", HELLO)).await),
        ("05", published(r, io.to("r1").to("r3").emit("hello", HELLO)).await),
        ("06", published(r, io.of("/admin").emit("hello", HELLO)).await),
        ("07", published(r, io.of("/admin").to("r1").emit("hello", HELLO)).await),
        ("08", published(r, io.volatile().compress(false).to("r1").emit("hello", HELLO)).await),
        ("09", published(r, io.emit("hello", (1, "two", [3], (), true, 1.5, -7, 2i64.pow(40)))).await),
        (
            "10",
            published(r, io.emit("bin", (Bytes::from_static(&[1, 2, 3]), B { b: Bytes::from_static(b"xyz") }))).await,
        ),
        ("11", published(r, io.emit("hello", ())).await),
        ("12", published(r, io.to(Room::numeric(42)).emit("hello", "x")).await),
        ("13", published(r, io.to("r1").sockets_join(["r2"])).await),
        ("14", published(r, io.to("r1").except("r3").sockets_join(["r4", "r5"])).await),
        ("15", published(r, io.to("r1").sockets_leave(["r2"])).await),
        ("16", published(r, io.server_side_emit("srv_ping", (A { a: 1 }, "b"))).await),
        ("17", published(r, io.to("r_nobody").disconnect_sockets(true)).await),
        ("18", published(r, io.of("/admin").to("r_nobody").disconnect_sockets(false)).await),
    ];
    for (n, got) in got {
        assert_eq!(got, want[n], "scenario {n}");
    }
}

#[tokio::test]
async fn reserved_events_and_bad_namespaces_are_errors() {
    let hub = MemoryHub::new();
    let io = Emitter::new(hub.transport(), EmitterConfig::new(std::sync::Arc::new(NodeRedisDialect::new("socket.io"))));
    for ev in socketio_emitter::RESERVED_EVENTS {
        let e = io.emit(ev, ()).await.unwrap_err();
        assert!(matches!(e, socketio_emitter::EmitterError::ReservedEvent(_)), "{ev}: {e}");
        assert!(e.to_string().contains("reserved"), "{e}");
    }
    let e = io.of("/a#b").emit("x", ()).await.unwrap_err();
    assert!(e.to_string().contains("namespace"), "{e}");
    assert!(!e.is_broker_failure());
}
