//! Every message type survives encode -> decode in both dialects (JSON and MessagePack
//! forms), and the ClusterAdapter envelope matches the bytes Node.js produces.

use std::time::Duration;

use bytes::Bytes;
use socketio_adapter_core::dialect::{Dialect, NodeClusterDialect, NodeRedisDialect, SubscriptionMode};
use socketio_adapter_core::{Body, BroadcastOptions, EventPacket, Map, Message, Room, SocketInfo, Value, json};

fn socket() -> SocketInfo {
    let mut hs = Map::new();
    hs.insert("url", "/socket.io/?EIO=4");
    SocketInfo {
        id: "s1".into(),
        rooms: vec!["s1".into(), Room::from(7)],
        handshake: Value::Map(hs),
        data: Value::Null,
    }
}

fn bodies(binary: bool) -> Vec<Body> {
    let arg = if binary { Value::Binary(Bytes::from_static(&[1, 2, 3])) } else { Value::from("plain") };
    let packet = EventPacket::new("ev", vec![arg.clone(), Value::Float(2.5), Value::Int(-3)]);
    let mut opts = BroadcastOptions::all().to("r1").to("r2").except("x").volatile().compress(false);
    opts.flags.timeout = Some(Duration::from_millis(1500));
    let id = || "abcdef0123456789".to_owned();
    vec![
        Body::Broadcast { packet: packet.clone(), opts: opts.clone() },
        Body::BroadcastWithAck { request_id: id(), packet: packet.clone(), opts: opts.clone() },
        Body::SocketsJoin { opts: BroadcastOptions::all().to("r1"), rooms: vec!["a".into(), Room::from(5)] },
        Body::SocketsLeave { opts: BroadcastOptions::all().except("r1"), rooms: vec!["a".into()] },
        Body::DisconnectSockets { opts: BroadcastOptions::all().to("r1"), close: true },
        Body::FetchSockets { request_id: id(), opts: BroadcastOptions::all().to("r1") },
        Body::ServerSideEmit { request_id: Some(id()), packet: packet.clone() },
        Body::ServerSideEmit { request_id: None, packet },
        Body::FetchSocketsResponse { request_id: id(), sockets: vec![socket()] },
        Body::ServerSideEmitResponse { request_id: id(), value: arg.clone() },
        Body::BroadcastClientCount { request_id: id(), count: 12 },
        Body::BroadcastAck { request_id: id(), value: arg },
    ]
}

/// What survives each dialect: the classic one has no flags on join/leave/disconnect/fetch
/// requests, and responses carry no sender.
fn roundtrip(dialect: &dyn Dialect, body: Body) {
    let mut msg = Message::new(Some("0123456789abcdef".into()), "/chat", body);
    msg.reply_to = Some("fedcba9876543210".into());
    let out = dialect.encode(&msg).unwrap_or_else(|e| panic!("{} {}: {e}", dialect.name(), msg.body.name()));
    let back = dialect.decode(&out.channel, &out.payload).unwrap_or_else(|e| panic!("{}: {e}", msg.body.name()));
    assert_eq!(back.nsp, "/chat", "{}", msg.body.name());
    assert_eq!(back.body, msg.body, "{} {}", dialect.name(), msg.body.name());
    if dialect.capabilities().identified_responses || msg.body.response_to().is_none() {
        assert_eq!(back.uid, msg.uid, "{}", msg.body.name());
    }
}

#[test]
fn every_cluster_message_roundtrips_in_json_and_msgpack() {
    let dialect = NodeClusterDialect::default();
    for binary in [false, true] {
        for body in bodies(binary) {
            roundtrip(&dialect, body);
        }
    }
    for body in [socketio_adapter_core::Body::InitialHeartbeat, Body::Heartbeat, Body::AdapterClose] {
        roundtrip(&dialect, body);
    }
}

#[test]
fn every_classic_message_roundtrips() {
    let dialect = NodeRedisDialect::default();
    for binary in [false, true] {
        for body in bodies(binary) {
            let body = match body {
                // requests of types 2-5 carry rooms and except only
                Body::SocketsJoin { mut opts, rooms } => {
                    opts.flags = Default::default();
                    Body::SocketsJoin { opts, rooms }
                }
                Body::FetchSockets { request_id, mut opts } => {
                    opts.flags = Default::default();
                    Body::FetchSockets { request_id, opts }
                }
                // JSON carries binary as a Node.js Buffer object
                Body::ServerSideEmitResponse { .. } | Body::ServerSideEmit { .. } if binary => continue,
                other => other,
            };
            roundtrip(&dialect, body);
        }
    }
    roundtrip(&dialect, Body::AllRooms { request_id: "abc".into() });
    roundtrip(&dialect, Body::AllRoomsResponse { request_id: "abc".into(), rooms: vec!["r1".into(), Room::from(3)] });
}

#[test]
fn cluster_envelope_matches_node_bytes() {
    // PROTOCOLS.md §5, produced by @socket.io/redis-adapter 8.3 sharded, dynamic mode:
    // io.to("room1").emit("hello", "world") from node 0123456789abcdef
    let dialect = NodeClusterDialect::default();
    let msg = Message::new(
        Some("0123456789abcdef".into()),
        "/",
        Body::Broadcast {
            packet: EventPacket::new("hello", vec!["world".into()]),
            opts: BroadcastOptions::all().to("room1"),
        },
    );
    let out = dialect.encode(&msg).expect("encodes");
    assert_eq!(out.channel, "socket.io#/#room1#");
    assert_eq!(
        std::str::from_utf8(&out.payload).expect("json"),
        r#"{"type":3,"data":{"packet":{"type":2,"data":["hello","world"]},"opts":{"rooms":["room1"],"except":[],"flags":{}}},"uid":"0123456789abcdef","nsp":"/"}"#
    );
    // static mode and broadcasts with ack stay on the main channel
    let static_dialect = NodeClusterDialect::default().with_subscription_mode(SubscriptionMode::Static);
    assert_eq!(static_dialect.encode(&msg).expect("encodes").channel, "socket.io#/#");
    // a Node.js socket id (20 characters) is private in dynamic mode
    let sid = Message::new(
        None,
        "/",
        Body::Broadcast {
            packet: EventPacket::new("x", vec![]),
            opts: BroadcastOptions::all().to("VakY5BjDZXJXuckgAAAA"),
        },
    );
    assert_eq!(dialect.encode(&sid).expect("encodes").channel, "socket.io#/#");
    let private = NodeClusterDialect::default().with_subscription_mode(SubscriptionMode::DynamicPrivate);
    assert_eq!(private.encode(&sid).expect("encodes").channel, "socket.io#/#VakY5BjDZXJXuckgAAAA#");
    // the capability that tells servers whether room changes move subscriptions
    assert!(dialect.capabilities().room_channels && private.capabilities().room_channels);
    assert!(!static_dialect.capabilities().room_channels);
    assert!(!NodeRedisDialect::default().capabilities().room_channels);
    // binary switches the whole envelope to msgpack, with the emitter uid
    let bin = Message::new(
        None,
        "/",
        Body::Broadcast {
            packet: EventPacket::new("img", vec![Value::Binary(Bytes::from_static(&[1]))]),
            opts: BroadcastOptions::all(),
        },
    );
    let out = dialect.encode(&bin).expect("encodes");
    assert_eq!(out.payload[0], 0x84, "a 4-key msgpack map");
    let v = socketio_adapter_core::msgpack::decode(&out.payload).expect("msgpack");
    assert_eq!(v.get("uid"), Some(&Value::from("emitter")));
    // responses go to the requester's channel
    let resp = Message::new(Some("a".into()), "/", Body::BroadcastClientCount { request_id: "r".into(), count: 0 })
        .reply_to(Some("0123456789abcdef".into()));
    let out = dialect.encode(&resp).expect("encodes");
    assert_eq!(out.channel, "socket.io#/#0123456789abcdef#");
    assert_eq!(
        json::to_string(&json::parse(&out.payload).expect("json")),
        r#"{"type":11,"data":{"requestId":"r","clientCount":0},"uid":"a","nsp":"/"}"#
    );
}

#[test]
fn classic_publish_on_specific_response_channel() {
    let resp =
        Message::new(Some("me".into()), "/", Body::FetchSocketsResponse { request_id: "r".into(), sockets: vec![] })
            .reply_to(Some("Ab3xY9".into()));
    let shared = NodeRedisDialect::default();
    assert_eq!(shared.encode(&resp).expect("encodes").channel, "socket.io-response#/#");
    let specific = NodeRedisDialect::default().with_specific_response_channel(true);
    assert_eq!(specific.encode(&resp).expect("encodes").channel, "socket.io-response#/#Ab3xY9#");
    // server-side emit answers always use the shared channel, as in Node.js
    let sse = Message::new(None, "/", Body::ServerSideEmitResponse { request_id: "r".into(), value: Value::Null })
        .reply_to(Some("Ab3xY9".into()));
    assert_eq!(specific.encode(&sse).expect("encodes").channel, "socket.io-response#/#");
    // responses arriving on either channel decode
    assert!(shared.decode("socket.io-response#/#Ab3xY9#", br#"{"requestId":"r","sockets":[]}"#).is_ok());
}

#[test]
fn names_the_protocol_cannot_carry_are_errors() {
    let msg = Message::new(None, "/a#b", Body::Heartbeat);
    assert!(NodeClusterDialect::default().encode(&msg).is_err());
    let msg = Message::new(None, "/", Body::AllRooms { request_id: "x".into() });
    let err = NodeClusterDialect::default().encode(&msg).expect_err("no all-rooms type");
    assert!(err.to_string().contains("cannot carry"), "{err}");
    let msg = Message::new(None, "/", Body::Heartbeat);
    assert!(NodeRedisDialect::default().encode(&msg).is_err());
}
