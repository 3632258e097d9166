//! The classic Redis dialect against every message captured from real Node.js peers
//! (socket.io 4.8.4, @socket.io/redis-adapter 8.3.0, @socket.io/redis-emitter 5.1.0):
//! every message decodes, decodes to what Node.js meant, and re-encodes byte for byte.

mod common;

use common::{fixture_docs, unhex};
use socketio_adapter_core::dialect::{Dialect, NodeRedisDialect};
use socketio_adapter_core::{Body, BroadcastOptions, EventPacket, Room, Value, json, msgpack};

struct Captured {
    scenario: String,
    channel: String,
    bytes: Vec<u8>,
    format: String,
    decoded: serde_json::Value,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn fixtures() -> Vec<Captured> {
    let mut out = Vec::new();
    for (scenario, doc) in fixture_docs("node") {
        for m in doc["messages"].as_array().expect("messages") {
            out.push(Captured {
                scenario: scenario.clone(),
                channel: m["channel"].as_str().expect("channel").to_owned(),
                bytes: unhex(m["hex"].as_str().expect("hex")),
                format: m["format"].as_str().expect("format").to_owned(),
                decoded: m["decoded"].clone(),
            });
        }
    }
    out
}

/// Our value in the capture's notation (binary as {"$bin": hex}).
fn to_capture_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::UInt(u) => (*u).into(),
        Value::Float(f) => (*f).into(),
        Value::Str(s) => s.clone().into(),
        Value::Binary(b) => serde_json::json!({ "$bin": hex(b) }),
        Value::Array(a) => a.iter().map(to_capture_json).collect(),
        Value::Map(m) => m.iter().map(|(k, v)| (k.clone(), to_capture_json(v))).collect(),
        other => panic!("unexpected value in capture: {other:?}"),
    }
}

#[test]
fn every_captured_scenario_is_present() {
    let all = fixtures();
    let mut scenarios: Vec<&str> = all.iter().map(|c| c.scenario.as_str()).collect();
    scenarios.dedup();
    assert_eq!(scenarios.len(), 31, "31 Node scenarios expected");
    assert_eq!(all.len(), 38, "38 captured messages expected");
}

#[test]
fn generic_decoders_read_exactly_what_node_sent() {
    for c in fixtures() {
        let v = match c.format.as_str() {
            "msgpack" => msgpack::decode(&c.bytes),
            "json" => json::parse(&c.bytes),
            other => panic!("unknown format {other}"),
        }
        .unwrap_or_else(|e| panic!("{}: {e}", c.scenario));
        assert_eq!(to_capture_json(&v), c.decoded, "{}", c.scenario);
    }
}

#[test]
fn every_message_decodes_and_reencodes_byte_for_byte() {
    let dialect = NodeRedisDialect::default();
    for c in fixtures() {
        let msg = dialect.decode(&c.channel, &c.bytes).unwrap_or_else(|e| panic!("{}: {e}", c.scenario));
        let out = dialect.encode(&msg).unwrap_or_else(|e| panic!("{}: {e}", c.scenario));
        assert_eq!(out.channel, c.channel, "{}: channel", c.scenario);
        assert_eq!(
            hex(&out.payload),
            hex(&c.bytes),
            "{}: bytes differ\n ours: {:?}\n node: {:?}",
            c.scenario,
            String::from_utf8_lossy(&out.payload),
            String::from_utf8_lossy(&c.bytes)
        );
    }
}

fn decode_first(scenario: &str) -> (String, socketio_adapter_core::Message) {
    let c = fixtures().into_iter().find(|c| c.scenario.starts_with(scenario)).expect("scenario");
    let msg = NodeRedisDialect::default().decode(&c.channel, &c.bytes).expect("decodes");
    (c.channel, msg)
}

fn broadcast_of(msg: &socketio_adapter_core::Message) -> (&EventPacket, &BroadcastOptions) {
    match &msg.body {
        Body::Broadcast { packet, opts } => (packet, opts),
        other => panic!("expected a broadcast, got {other:?}"),
    }
}

#[test]
fn emitter_broadcasts_mean_what_node_meant() {
    let (_, m) = decode_first("01_");
    assert_eq!(m.uid, None, "the emitter's uid is the emitter marker");
    assert_eq!(m.nsp, "/");
    let (p, o) = broadcast_of(&m);
    assert_eq!(p.event, "hello");
    assert_eq!(p.args[0].get("msg"), Some(&Value::from("hi")));
    assert!(o.rooms.is_empty() && o.except.is_empty());

    let (_, m) = decode_first("04_");
    let (_, o) = broadcast_of(&m);
    assert_eq!(o.rooms, vec![Room::from("r1")]);
    assert_eq!(o.except, vec![Room::from("r3")]);

    let (_, m) = decode_first("07_");
    assert_eq!(m.nsp, "/admin");

    let (_, m) = decode_first("08_");
    let (_, o) = broadcast_of(&m);
    assert!(o.flags.volatile);
    assert_eq!(o.flags.compress, Some(false));

    let (_, m) = decode_first("09_");
    let (p, _) = broadcast_of(&m);
    assert_eq!(
        p.args,
        vec![
            Value::Int(1),
            "two".into(),
            Value::Array(vec![3.into()]),
            Value::Null,
            true.into(),
            Value::Float(1.5),
            Value::Int(-7),
            Value::Int(1_099_511_627_776)
        ]
    );

    let (_, m) = decode_first("10_");
    let (p, _) = broadcast_of(&m);
    assert_eq!(p.args[0], Value::Binary(bytes::Bytes::from_static(&[1, 2, 3])));
    assert_eq!(p.args[1].get("b"), Some(&Value::Binary(bytes::Bytes::from_static(b"xyz"))));

    let (_, m) = decode_first("11_");
    assert!(broadcast_of(&m).0.args.is_empty());

    let (channel, m) = decode_first("12_");
    let (_, o) = broadcast_of(&m);
    assert_eq!(channel, "socket.io#/#42#");
    assert!(o.rooms[0].is_numeric());
    assert_eq!(o.rooms[0], Room::from("42"));
}

#[test]
fn requests_and_responses_mean_what_node_meant() {
    let (_, m) = decode_first("14_");
    match m.body {
        Body::SocketsJoin { opts, rooms } => {
            assert_eq!(opts.rooms, vec![Room::from("r1")]);
            assert_eq!(opts.except, vec![Room::from("r3")]);
            assert_eq!(rooms, vec![Room::from("r4"), Room::from("r5")]);
        }
        other => panic!("{other:?}"),
    }
    let (_, m) = decode_first("16_");
    assert_eq!(m.uid.as_deref(), Some("emitter"));
    match m.body {
        Body::ServerSideEmit { request_id: None, packet } => {
            assert_eq!(packet.event, "srv_ping");
            assert_eq!(packet.args.len(), 2);
        }
        other => panic!("{other:?}"),
    }
    let (_, m) = decode_first("18_");
    assert_eq!(m.nsp, "/admin");
    assert!(matches!(m.body, Body::DisconnectSockets { close: false, .. }));

    let fetch: Vec<_> = fixtures().into_iter().filter(|c| c.scenario.starts_with("24_")).collect();
    let dialect = NodeRedisDialect::default();
    match dialect.decode(&fetch[0].channel, &fetch[0].bytes).expect("request").body {
        Body::FetchSockets { request_id, opts } => {
            assert_eq!(request_id, "e1sUSH");
            assert!(opts.rooms.is_empty());
        }
        other => panic!("{other:?}"),
    }
    match dialect.decode(&fetch[1].channel, &fetch[1].bytes).expect("response").body {
        Body::FetchSocketsResponse { request_id, sockets } => {
            assert_eq!(request_id, "e1sUSH");
            assert_eq!(sockets.len(), 2);
            assert_eq!(sockets[0].id, "VakY5BjDZXJXuckgAAAA");
            assert_eq!(sockets[0].rooms.len(), 3);
            assert_eq!(sockets[0].data.get("name"), Some(&Value::from("b1")));
            assert_eq!(sockets[0].handshake.get("query").and_then(|q| q.get("name")), Some(&Value::from("b1")));
        }
        other => panic!("{other:?}"),
    }

    let acks: Vec<_> = fixtures().into_iter().filter(|c| c.scenario.starts_with("29_")).collect();
    let bodies: Vec<Body> = acks.iter().map(|c| dialect.decode(&c.channel, &c.bytes).expect("decodes").body).collect();
    match &bodies[0] {
        Body::BroadcastWithAck { request_id, packet, opts } => {
            assert_eq!(request_id, "vcWgIG");
            assert_eq!(packet.event, "q");
            assert_eq!(opts.flags.timeout, Some(std::time::Duration::from_millis(2000)));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&bodies[1], Body::BroadcastClientCount { count: 2, .. }));
    assert!(
        matches!(&bodies[2], Body::BroadcastAck { value, .. } if value.get("ack_from") == Some(&Value::from("b1")))
    );

    let (_, m) = decode_first("26_");
    assert!(matches!(m.body, Body::AllRooms { .. }));
    let rooms: Vec<_> = fixtures().into_iter().filter(|c| c.scenario.starts_with("26_")).collect();
    match dialect.decode(&rooms[1].channel, &rooms[1].bytes).expect("decodes").body {
        Body::AllRoomsResponse { rooms, .. } => assert_eq!(rooms.len(), 5),
        other => panic!("{other:?}"),
    }
    let sse: Vec<_> = fixtures().into_iter().filter(|c| c.scenario.starts_with("28_")).collect();
    match dialect.decode(&sse[1].channel, &sse[1].bytes).expect("decodes").body {
        Body::ServerSideEmitResponse { request_id, value } => {
            assert_eq!(request_id, "GYiXBc");
            assert_eq!(value.get("from"), Some(&Value::Int(3002)));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn room_channels_are_recognised_for_filtering() {
    let dialect = NodeRedisDialect::default();
    assert_eq!(dialect.broadcast_room("/", "socket.io#/#r1#"), Some("r1"));
    assert_eq!(dialect.broadcast_room("/", "socket.io#/#"), None);
    assert_eq!(dialect.broadcast_room("/admin", "socket.io#/admin#r1#"), Some("r1"));
    assert_eq!(dialect.broadcast_room("/", "socket.io#/admin#r1#"), None);
}
