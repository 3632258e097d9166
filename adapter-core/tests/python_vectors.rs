//! The `python` dialect against messages captured from python-socketio's managers
//! (fixtures in `tests/fixtures/python/`): 5.18.1's `RedisManager` and `KombuManager`
//! emits decode to what the clients received and re-encode byte for byte; what other
//! RabbitMQ publishers send (JSON with any content type, JSON wrapped in a JSON string)
//! decodes too; 5.13.0's pickled messages are refused, naming their sender.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{fixture_docs, unhex};
use socketio_adapter_core::dialect::{Dialect, PythonDialect};
use socketio_adapter_core::{Body, BroadcastOptions, Room};
use socketio_adapter_core::{DecodeError, DialectError};

struct Captured {
    label: String,
    format: String,
    bytes: Vec<u8>,
    received: serde_json::Value,
}

fn fixtures() -> Vec<Captured> {
    fixtures_of("redis-5.18.1")
}

fn fixtures_of(capture: &str) -> Vec<Captured> {
    let mut out = Vec::new();
    for (_, j) in fixture_docs(&format!("python/{capture}")) {
        for m in j["messages"].as_array().unwrap() {
            out.push(Captured {
                label: j["label"].as_str().unwrap().to_owned(),
                format: m["format"].as_str().unwrap().to_owned(),
                bytes: unhex(m["hex"].as_str().unwrap()),
                received: j["received"].clone(),
            });
        }
    }
    out
}

#[test]
fn python_emits_decode_to_what_clients_received_and_reencode_exactly() {
    let dialect = PythonDialect::default();
    let all = fixtures();
    assert_eq!(all.len(), 15, "15 captured messages");
    let mut checked = 0;
    for c in &all {
        let decoded = dialect.decode("socketio", &c.bytes);
        if c.format != "json" {
            assert!(decoded.is_err(), "{}: pickled messages are refused", c.label);
            continue;
        }
        if c.label == "emitter_close_room_r1" {
            // every socket leaves the room
            let msg = decoded.unwrap_or_else(|e| panic!("{}: {e}", c.label));
            assert_eq!(
                msg.body,
                Body::SocketsLeave { opts: BroadcastOptions::all().to("r1"), rooms: vec![Room::from("r1")] }
            );
            continue;
        }
        if c.label.contains("no_namespace") {
            assert!(decoded.is_err(), "{}: python delivers nothing without a namespace", c.label);
            continue;
        }
        let msg = decoded.unwrap_or_else(|e| panic!("{}: {e}", c.label));
        let Body::Broadcast { packet, .. } = &msg.body else { panic!("{}: {:?}", c.label, msg.body) };
        // every client that received it got exactly these arguments
        if c.label == "emitter_binary" {
            // the capture shows bytes as Python's repr; check the value itself
            let b = packet.args[0].get("b").and_then(socketio_adapter_core::Value::as_binary).expect("binary");
            assert_eq!(b.as_ref(), [1, 2, 3]);
        } else if let Some(received) = c.received.as_object() {
            for (client, deliveries) in received {
                let got = serde_json::to_value(&packet.args).unwrap();
                assert_eq!(got, deliveries[0], "{}: arguments at {client}", c.label);
            }
        }
        if c.label.starts_with("emitter_") {
            let out = dialect.encode(&msg).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.payload),
                String::from_utf8_lossy(&c.bytes),
                "{}: our encoding differs",
                c.label
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 7, "7 emitter captures (binary included) re-encoded");
}

#[test]
fn rooms_and_skip_sid_mean_what_python_meant() {
    let dialect = PythonDialect::default();
    let by_label = |l: &str| fixtures().into_iter().find(|c| c.label == l).unwrap();
    let m = dialect.decode("socketio", &by_label("emitter_room_list").bytes).unwrap();
    let Body::Broadcast { opts, .. } = m.body else { panic!() };
    assert_eq!(opts.rooms, vec![Room::from("r1"), Room::from("r3")]);
    let m = dialect.decode("socketio", &by_label("emitter_skip_sid").bytes).unwrap();
    let Body::Broadcast { opts, .. } = m.body else { panic!() };
    assert!(opts.rooms.is_empty());
    assert_eq!(opts.except.len(), 1, "skip_sid is one socket id");
    let m = dialect.decode("socketio", &by_label("emitter_nsp_admin_room_r1").bytes).unwrap();
    assert_eq!(m.nsp, "/admin");
}

#[test]
fn kombu_messages_decode_to_what_clients_received_and_emitter_ones_reencode_exactly() {
    let dialect = PythonDialect::default();
    let all = fixtures_of("kombu-5.18.1");
    assert_eq!(all.len(), 10, "10 captured messages");
    let mut reencoded = 0;
    for c in &all {
        let decoded = dialect.decode("socketio", &c.bytes);
        if c.format == "pickle" {
            assert!(decoded.is_err(), "{}: pickled messages are refused", c.label);
            continue;
        }
        let msg = decoded.unwrap_or_else(|e| panic!("{}: {e}", c.label));
        let Body::Broadcast { packet, .. } = &msg.body else { panic!("{}: {:?}", c.label, msg.body) };
        let received = c.received.as_object().expect("received");
        assert!(!received.is_empty(), "{}: some client received it", c.label);
        for (client, deliveries) in received {
            assert_eq!(
                serde_json::to_value(&packet.args).unwrap(),
                deliveries[0],
                "{}: arguments at {client}",
                c.label
            );
        }
        if c.label.starts_with("emitter_") {
            let out = dialect.encode(&msg).unwrap();
            assert_eq!(String::from_utf8_lossy(&out.payload), String::from_utf8_lossy(&c.bytes), "{}", c.label);
            reencoded += 1;
        }
    }
    assert_eq!(reencoded, 3, "KombuManager's 3 emits re-encoded");
}

#[test]
fn pickled_messages_of_python_socketio_5_13_are_refused_naming_the_sender() {
    let dialect = PythonDialect::default();
    let mut pickled = 0;
    for capture in ["redis-5.13.0", "kombu-5.13.0"] {
        for c in fixtures_of(capture).into_iter().filter(|c| c.format == "pickle") {
            let e = dialect.decode("socketio", &c.bytes).unwrap_err();
            let DialectError::Decode { source: DecodeError::Pickled { sender }, .. } = &e else {
                panic!("{capture} {}: {e:?}", c.label)
            };
            if c.label.starts_with("emitter_") {
                // python-socketio's host_id: uuid4().hex
                let sender = sender.as_deref().unwrap_or_else(|| panic!("{}: no sender", c.label));
                assert!(sender.len() == 32 && sender.bytes().all(|b| b.is_ascii_hexdigit()), "{sender}");
            }
            pickled += 1;
        }
    }
    assert_eq!(pickled, 10 + 4, "every pickled capture (redis 10, kombu 4)");
}
