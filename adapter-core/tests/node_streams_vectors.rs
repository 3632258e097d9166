//! The Redis Streams dialect against what `@socket.io/redis-streams-adapter` 0.3.1 really
//! wrote to Redis (stream entries read back with XRANGE, pub/sub messages with
//! PSUBSCRIBE; captured by `tests/node/capture_streams.js` into
//! `tests/fixtures/node-streams/`), and against the entries of
//! `@socket.io/redis-streams-emitter` 0.1.1 as its source builds them: everything
//! decodes, and everything the adapter wrote re-encodes byte for byte.

mod common;

use common::{fixture_docs, fixtures_dir, unhex};
use socketio_adapter_core::dialect::{Dialect, NodeStreamsDialect, StreamLayout};
use socketio_adapter_core::transport::entry;
use socketio_adapter_core::{Body, Room, Value};

enum Captured {
    Entry { scenario: String, stream: String, fields: Vec<(String, String)>, decoded_data: serde_json::Value },
    PubSub { scenario: String, channel: String, bytes: Vec<u8> },
}

fn fixtures(prefix: &str) -> Vec<Captured> {
    let mut out = Vec::new();
    for (scenario, doc) in fixture_docs("node-streams").into_iter().filter(|(s, _)| s.starts_with(prefix)) {
        // hash_codes.json and index.json hold no messages
        let Some(messages) = doc.get("messages").and_then(|m| m.as_array()) else { continue };
        for m in messages {
            if m["kind"] == "stream" {
                let fields = m["fields"]
                    .as_array()
                    .expect("fields")
                    .iter()
                    .map(|p| (p[0].as_str().expect("field").to_owned(), p[1].as_str().expect("value").to_owned()))
                    .collect();
                out.push(Captured::Entry {
                    scenario: scenario.clone(),
                    stream: m["stream"].as_str().expect("stream").to_owned(),
                    fields,
                    decoded_data: m["decoded_data"].clone(),
                });
            } else {
                out.push(Captured::PubSub {
                    scenario: scenario.clone(),
                    channel: m["channel"].as_str().expect("channel").to_owned(),
                    bytes: unhex(m["hex"].as_str().expect("hex")),
                });
            }
        }
    }
    out
}

fn frame(fields: &[(String, String)]) -> bytes::Bytes {
    entry::encode(fields.iter().map(|(f, v)| (f.as_bytes(), v.as_bytes())))
}

/// The dialect the capture ran with (`streamName: "cap-stream"`, `channelPrefix: "cap"`).
fn captured_dialect() -> NodeStreamsDialect {
    NodeStreamsDialect::new("cap", StreamLayout::new("cap-stream", 1).expect("layout"))
}

#[test]
fn every_scenario_was_captured() {
    let all = fixtures("");
    let entries = all.iter().filter(|c| matches!(c, Captured::Entry { .. })).count();
    let pubsub = all.len() - entries;
    // 8 adapter entries + 6 emitter entries; fetch sockets 2, server-side emit 1, with ack
    // 2, broadcasts with acks 3 + 3
    assert_eq!((entries, pubsub), (14, 11));
}

#[test]
fn adapter_entries_decode_and_re_encode_byte_for_byte() {
    let dialect = captured_dialect();
    for c in fixtures("") {
        let Captured::Entry { scenario, stream, fields, .. } = c else { continue };
        if scenario.starts_with("emitter") {
            continue;
        }
        let bytes = frame(&fields);
        let msg = dialect.decode(&stream, &bytes).unwrap_or_else(|e| panic!("{scenario}: {e}"));
        assert!(msg.uid.as_deref().is_some_and(|u| u.len() == 16), "{scenario}: a node's uid");
        let out = dialect.encode(&msg).unwrap_or_else(|e| panic!("{scenario}: {e}"));
        assert_eq!(out.channel, stream, "{scenario}");
        assert_eq!(entry::decode(&out.payload), entry::decode(&bytes), "{scenario}: fields");
        assert_eq!(out.payload, bytes, "{scenario}: bytes");
    }
}

#[test]
fn pubsub_messages_decode_and_re_encode_byte_for_byte() {
    let dialect = captured_dialect();
    let mut n = 0;
    for c in fixtures("") {
        let Captured::PubSub { scenario, channel, bytes } = c else { continue };
        let mut msg = dialect.decode(&channel, &bytes).unwrap_or_else(|e| panic!("{scenario}: {e}"));
        if msg.body.response_to().is_some() {
            // answers travel on the requester's channel `cap#/#<uid>#`
            let requester = channel.trim_end_matches('#').rsplit('#').next().expect("uid").to_owned();
            msg = msg.reply_to(Some(requester));
        }
        let out = dialect.encode(&msg).unwrap_or_else(|e| panic!("{scenario}: {e}"));
        assert_eq!(out.channel, channel, "{scenario}");
        assert_eq!(out.payload.as_ref(), bytes.as_slice(), "{scenario}: bytes");
        n += 1;
    }
    assert_eq!(n, 11);
}

#[test]
fn decoded_messages_mean_what_node_meant() {
    let dialect = captured_dialect();
    let all = fixtures("");
    let entry_of = |name: &str| {
        all.iter()
            .find_map(|c| match c {
                Captured::Entry { scenario, stream, fields, decoded_data } if scenario.ends_with(name) => {
                    Some((dialect.decode(stream, &frame(fields)).expect("decodes"), decoded_data.clone()))
                }
                _ => None,
            })
            .expect("scenario")
    };
    let (msg, _) = entry_of("server_to_r1_except_r3");
    let Body::Broadcast { packet, opts } = msg.body else { panic!("a broadcast") };
    assert_eq!(packet.event, "hello");
    assert_eq!(opts.rooms, vec![Room::from("r1")]);
    assert_eq!(opts.except, vec![Room::from("r3")]);

    let (msg, data) = entry_of("server_binary");
    let Body::Broadcast { packet, .. } = msg.body else { panic!("a broadcast") };
    assert_eq!(packet.args[0], Value::Binary(vec![1, 2, 3].into()));
    assert_eq!(data["packet"]["data"][1]["$bin"], "010203");

    let (msg, _) = entry_of("server_nsp_admin");
    assert_eq!(msg.nsp, "/admin");
    let (msg, _) = entry_of("server_sockets_join");
    let Body::SocketsJoin { rooms, .. } = msg.body else { panic!("a join") };
    assert_eq!(rooms, vec![Room::from("r7"), Room::from("r8")]);
    let (msg, _) = entry_of("server_disconnect_sockets_room");
    assert!(matches!(msg.body, Body::DisconnectSockets { close: true, .. }));
}

#[test]
fn emitter_entries_decode() {
    let dialect = NodeStreamsDialect::new("socket.io", StreamLayout::new("socket.io", 1).expect("layout"));
    let mut kinds = Vec::new();
    for c in fixtures("emitter") {
        let Captured::Entry { stream, fields, .. } = c else { panic!("the emitter only appends entries") };
        let msg = dialect.decode(&stream, &frame(&fields)).expect("decodes");
        assert_eq!(msg.uid.as_deref(), Some("emitter"));
        kinds.push(msg.body.name());
        if let Body::Broadcast { packet, opts } = &msg.body
            && msg.nsp == "/admin"
        {
            assert_eq!(packet.args, vec![Value::Binary(vec![1, 2, 3].into())]);
            assert!(opts.flags.volatile);
            assert_eq!(opts.except, vec![Room::from("r2")]);
        }
    }
    assert_eq!(kinds.len(), 6, "{kinds:?}");
}

#[test]
fn stream_names_follow_node_hash_codes() {
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures_dir("node-streams").join("hash_codes.json")).expect("read"))
            .expect("json");
    for count in [2u32, 3, 5, 7] {
        let layout = StreamLayout::new("s", count).expect("layout");
        for item in doc.as_array().expect("list") {
            let (name, hash) = (item["name"].as_str().expect("name"), item["hashCode"].as_i64().expect("hash"));
            let expected = format!("s-{}", hash % i64::from(count));
            assert_eq!(layout.key_for(name), expected, "{name} over {count} streams");
            assert!(layout.contains(&expected));
        }
    }
}

#[test]
fn garbage_never_panics() {
    let dialect = captured_dialect();
    for bytes in [&b""[..], b"\x00\x00\x00\x03uid", b"\xff\xff\xff\xff", b"\x00\x00\x00\x04data\x00\x00\x00\x02!!"] {
        assert!(dialect.decode("cap-stream", bytes).is_err());
        assert!(dialect.decode("cap#/#", bytes).is_err());
    }
}
