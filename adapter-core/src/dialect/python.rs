//! The `python` dialect: python-socketio / Flask-SocketIO message queues (client managers:
//! `RedisManager`, `KombuManager`, ...), python-socketio ≥ 5.14 (JSON; pickled messages
//! of older versions are refused with a clear error).
//!
//! One channel carries every namespace (the manager's `channel`, default `socketio`;
//! Flask-SocketIO uses `flask-socketio`). Messages are JSON objects written as Python's
//! `json.dumps` writes them:
//!
//! | body | message |
//! |---|---|
//! | broadcast | `{"method": "emit", "event", "data": [args], "binary", "namespace", "room", "skip_sid", "callback": null, "host_id"}` |
//! | sockets join / leave (one socket id, one room) | `{"method": "enter_room"/"leave_room", "sid", "room", "namespace", "host_id"}` |
//! | disconnect sockets (one socket id) | `{"method": "disconnect", "sid", "namespace", "host_id"}` |
//! | broadcast with ack (one room, normally a socket id) | `emit` with `"callback": [room, namespace, request id]` |
//! | one client's ack | `{"method": "callback", "host_id": requester, "sid": room, "namespace", "id", "args": [value]}` |
//!
//! Read only: `close_room` (`{"method", "room", "namespace", "host_id"}`), which becomes
//! a sockets-leave of every socket in the room; a JSON text wrapped in a JSON string
//! (what a Kombu `application/json` publisher of a `str` sends) is read as the text.
//!
//! Acks follow python-socketio's callbacks: an emit with a `callback` addressed to one
//! room (normally a socket id) is answered by the server holding it with one `callback`
//! message per client ack, addressed to the requester's `host_id`; no client count is
//! announced ([`Capabilities::client_counts`]). The callback triple travels as the
//! request id of [`Body::BroadcastWithAck`] (its JSON text) so that the answers can name
//! it again.
//!
//! The protocol has no other requests, no responses and no heartbeats: fetching sockets,
//! rooms, counting servers and server-side events are refused with
//! [`DialectError::Unsupported`]. Its `skip_sid` names socket ids, not rooms, so `except`
//! entries are sent as socket ids; `volatile` and `compress` have no equivalent and are
//! dropped. Binary arguments use python-socketio's placeholders
//! (`{"_placeholder": true, "num": i}` plus base64 attachments, `"binary": true`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;

use super::{Capabilities, Dialect, Fields, Outgoing};
use crate::error::{DecodeError, DialectError};
use crate::message::{Body, Message, RequestId};
use crate::transport::Channel;
use crate::types::{BroadcastOptions, EventPacket, NodeId, Room};
use crate::value::{Map, Value};

/// The default channel of python-socketio's managers.
pub const DEFAULT_CHANNEL: &str = "socketio";

/// The python-socketio message-queue dialect on one channel.
#[derive(Clone, Debug)]
pub struct PythonDialect {
    channel: String,
}

impl Default for PythonDialect {
    fn default() -> Self {
        PythonDialect::new(DEFAULT_CHANNEL)
    }
}

impl PythonDialect {
    /// A dialect for the manager channel `channel`.
    pub fn new(channel: impl Into<String>) -> Self {
        PythonDialect { channel: channel.into() }
    }

    /// The channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    fn unsupported(operation: &'static str) -> DialectError {
        DialectError::Unsupported { dialect: "python", operation }
    }

    /// The one socket id a join, leave or disconnect targets.
    fn single_sid(opts: &BroadcastOptions, operation: &'static str) -> Result<String, DialectError> {
        match (opts.rooms.as_slice(), opts.except.is_empty()) {
            ([sid], true) => Ok(sid.as_str().to_owned()),
            _ => Err(DialectError::InvalidName {
                what: "target",
                value: format!("to {:?} except {:?}", opts.rooms, opts.except),
                reason: match operation {
                    "disconnect" => "python-socketio disconnects one socket id at a time",
                    _ => "python-socketio moves one socket id into or out of one room at a time",
                },
            }),
        }
    }
}

fn rooms_value(rooms: &[Room]) -> Value {
    match rooms {
        [] => Value::Null,
        [one] => one.to_value(),
        many => Value::Array(many.iter().map(Room::to_value).collect()),
    }
}

/// Replaces binary values by placeholders, collecting the attachments (base64).
fn deconstruct(v: &Value, attachments: &mut Vec<Value>) -> Value {
    match v {
        Value::Binary(b) | Value::Ext(_, b) => {
            let mut m = Map::with_capacity(2);
            m.insert("_placeholder", true);
            m.insert("num", attachments.len() as u64);
            attachments.push(Value::Str(B64.encode(b)));
            Value::Map(m)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| deconstruct(x, attachments)).collect()),
        Value::Map(m) => {
            let mut out = Map::with_capacity(m.len());
            for (k, x) in m.iter() {
                out.insert(k.clone(), deconstruct(x, attachments));
            }
            Value::Map(out)
        }
        other => other.clone(),
    }
}

/// Puts the attachments back in place of their placeholders.
fn reconstruct(v: Value, attachments: &[Bytes]) -> Result<Value, DecodeError> {
    Ok(match v {
        Value::Map(m) if m.get("_placeholder") == Some(&Value::Bool(true)) => {
            let num = m.get("num").and_then(Value::as_u64).ok_or(DecodeError::WrongType {
                field: "num",
                expected: "an attachment number",
                found: m.get("num").map_or("nothing", Value::kind),
            })?;
            let b = usize::try_from(num)
                .ok()
                .and_then(|i| attachments.get(i))
                .ok_or_else(|| DecodeError::Invalid(format!("attachment {num} is missing")))?;
            Value::Binary(b.clone())
        }
        Value::Map(m) => {
            let mut out = Map::with_capacity(m.len());
            for (k, x) in m {
                out.insert(k, reconstruct(x, attachments)?);
            }
            Value::Map(out)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(|x| reconstruct(x, attachments)).collect::<Result<_, _>>()?),
        other => other,
    })
}

/// The fields of an `emit`, in python-socketio's order.
fn emit_fields(
    m: &mut Map,
    msg: &Message,
    packet: &EventPacket,
    opts: &BroadcastOptions,
    callback: Value,
    host_id: Value,
) {
    let mut attachments = Vec::new();
    let args: Vec<Value> = packet.args.iter().map(|a| deconstruct(a, &mut attachments)).collect();
    let binary = !attachments.is_empty();
    let data = if binary {
        let mut d = vec![Value::Array(args)];
        d.extend(attachments);
        d
    } else {
        args
    };
    m.insert("method", "emit");
    m.insert("event", packet.event.clone());
    m.insert("data", Value::Array(data));
    m.insert("binary", binary);
    m.insert("namespace", msg.nsp.clone());
    m.insert("room", rooms_value(&opts.rooms));
    m.insert("skip_sid", rooms_value(&opts.except));
    m.insert("callback", callback);
    m.insert("host_id", host_id);
}

/// The request id that carries an emit's callback triple `[room, namespace, id]`.
fn callback_request_id(callback: Value) -> RequestId {
    let mut out = Vec::with_capacity(64);
    crate::json::write_python(&callback, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// The callback triple back from a request id made by [`callback_request_id`].
fn callback_triple(request_id: &str) -> Result<(Value, Value, Value), DialectError> {
    let bad = || DialectError::InvalidName {
        what: "request id",
        value: request_id.to_owned(),
        reason: "a python-socketio callback answers an emit that carried [room, namespace, id]",
    };
    match crate::json::parse(request_id.as_bytes()) {
        Ok(Value::Array(a)) if a.len() == 3 => {
            let mut it = a.into_iter();
            match (it.next(), it.next(), it.next()) {
                (Some(sid), Some(nsp), Some(id)) => Ok((sid, nsp, id)),
                _ => Err(bad()),
            }
        }
        _ => Err(bad()),
    }
}

/// The `host_id` of a pickled message (python-socketio < 5.14), found without unpickling:
/// pickle protocol 4 and 5 write the key as a short string followed (after an optional
/// MEMOIZE) by its value as a short string.
fn pickled_host_id(payload: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\x8c\x07host_id";
    let at = payload.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let rest = payload.get(at..)?;
    let rest = rest.strip_prefix(&[0x94]).unwrap_or(rest);
    let (&0x8c, rest) = rest.split_first()? else { return None };
    let (&len, rest) = rest.split_first()?;
    let id = std::str::from_utf8(rest.get(..usize::from(len))?).ok()?;
    id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_').then(|| id.to_owned())
}

impl Dialect for PythonDialect {
    fn name(&self) -> &'static str {
        "python"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            heartbeats: false,
            all_rooms: false,
            identified_responses: false,
            room_channels: false,
            multi_room_joins: false,
            requests: false,
            client_counts: false,
            namespace_channels: false,
            ordered_paths: true,
        }
    }

    fn new_node_id(&self) -> NodeId {
        // uuid4().hex: 32 lowercase hex digits
        format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
    }

    fn node_channels(&self, _nsp: &str, _uid: &str) -> Vec<Channel> {
        vec![Channel::Exact(self.channel.clone())]
    }

    fn requester_channels(&self, _nsp: &str, _uid: &str) -> Vec<Channel> {
        // nothing answers requests in this protocol
        Vec::new()
    }

    fn listener_channels(&self, _nsp: &str) -> Vec<Channel> {
        vec![Channel::Exact(self.channel.clone())]
    }

    fn count_channel(&self, _nsp: &str) -> String {
        // every python-socketio server subscribes to the manager channel
        self.channel.clone()
    }

    fn encode(&self, msg: &Message) -> Result<Outgoing, DialectError> {
        let host_id = Value::Str(msg.uid.clone().unwrap_or_else(|| self.new_node_id()));
        let mut m = Map::with_capacity(9);
        match &msg.body {
            Body::Broadcast { packet, opts } => emit_fields(&mut m, msg, packet, opts, Value::Null, host_id),
            Body::SocketsJoin { opts, rooms } | Body::SocketsLeave { opts, rooms } => {
                let method = if matches!(msg.body, Body::SocketsJoin { .. }) { "enter_room" } else { "leave_room" };
                let sid = Self::single_sid(opts, method)?;
                let [room] = rooms.as_slice() else {
                    return Err(DialectError::InvalidName {
                        what: "rooms",
                        value: format!("{rooms:?}"),
                        reason: "python-socketio moves one socket id into or out of one room at a time",
                    });
                };
                m.insert("method", method);
                m.insert("sid", sid);
                m.insert("room", room.to_value());
                m.insert("namespace", msg.nsp.clone());
                m.insert("host_id", host_id);
            }
            Body::DisconnectSockets { opts, .. } => {
                m.insert("method", "disconnect");
                m.insert("sid", Self::single_sid(opts, "disconnect")?);
                m.insert("namespace", msg.nsp.clone());
                m.insert("host_id", host_id);
            }
            Body::BroadcastWithAck { request_id, packet, opts } => {
                let [room] = opts.rooms.as_slice() else {
                    return Err(DialectError::InvalidName {
                        what: "target",
                        value: format!("to {:?}", opts.rooms),
                        reason: "python-socketio callbacks target one room (normally a socket id)",
                    });
                };
                let callback =
                    Value::Array(vec![room.to_value(), Value::Str(msg.nsp.clone()), Value::Str(request_id.clone())]);
                emit_fields(&mut m, msg, packet, opts, callback, host_id);
            }
            Body::BroadcastAck { request_id, value } => {
                let (sid, nsp, id) = callback_triple(request_id)?;
                m.insert("method", "callback");
                m.insert("host_id", Value::Str(msg.reply_to.clone().unwrap_or_default()));
                m.insert("sid", sid);
                m.insert("namespace", nsp);
                m.insert("id", id);
                m.insert("args", Value::Array(vec![value.clone()]));
            }
            Body::BroadcastClientCount { .. } => return Err(Self::unsupported("client counts")),
            Body::ServerSideEmit { .. } => return Err(Self::unsupported("server-side events")),
            Body::InitialHeartbeat | Body::Heartbeat | Body::AdapterClose => {
                return Err(Self::unsupported("heartbeats"));
            }
            _ => return Err(Self::unsupported("requests and responses")),
        }
        let mut out = Vec::with_capacity(192);
        crate::json::write_python(&Value::Map(m), &mut out);
        Ok(Outgoing { channel: self.channel.clone(), payload: Bytes::from(out) })
    }

    fn decode(&self, channel: &str, payload: &[u8]) -> Result<Message, DialectError> {
        let err = |source| DialectError::Decode { channel: channel.to_owned(), source };
        if payload.first() == Some(&0x80) {
            return Err(err(DecodeError::Pickled { sender: pickled_host_id(payload) }));
        }
        let value = match crate::json::parse(payload).map_err(err)? {
            // a Kombu publisher of a str with the json serializer wraps the text once more
            Value::Str(text) => crate::json::parse(text.as_bytes()).map_err(err)?,
            value => value,
        };
        let mut f = Fields::from_value(value).map_err(err)?;
        let method = f.string("method").map_err(err)?;
        // python-socketio delivers nothing for a message without a namespace
        let nsp = f.string("namespace").map_err(err)?;
        let host_id = f.opt_string("host_id").map_err(err)?;
        if method == "callback" {
            // addressed to the requester, whose host_id it carries; the sender is unnamed
            let id = f.take("id").ok_or_else(|| err(DecodeError::MissingField("id")))?;
            let value = match f.take("args") {
                Some(Value::Array(a)) => a.into_iter().next().unwrap_or(Value::Null),
                Some(other) => other,
                None => Value::Null,
            };
            let request_id = match id {
                Value::Str(s) => s,
                other => other.to_string(),
            };
            return Ok(Message::new(None, nsp, Body::BroadcastAck { request_id, value }).reply_to(host_id));
        }
        let uid = host_id;
        let rooms_field = |v: Option<Value>| -> Result<Vec<Room>, DecodeError> {
            match v {
                None => Ok(Vec::new()),
                Some(Value::Array(a)) => super::rooms_of(Value::Array(a), "room"),
                Some(one) => Room::from_value(&one).map(|r| vec![r]).ok_or(DecodeError::WrongType {
                    field: "room",
                    expected: "a string or a list",
                    found: one.kind(),
                }),
            }
        };
        let body = match method.as_str() {
            "emit" => {
                let event = f.string("event").map_err(err)?;
                let binary = f.bool_or("binary", false).map_err(err)?;
                // as python-socketio 5.18 reads it: a list is the argument list, anything
                // else (senders before 5.15.1) the one argument
                let data = f.take("data");
                let args = match data {
                    Some(Value::Array(mut d)) if binary => {
                        if d.is_empty() {
                            return Err(err(DecodeError::Invalid("binary emit without data".into())));
                        }
                        let args = d.remove(0);
                        let attachments: Vec<Bytes> = d
                            .iter()
                            .map(|a| match a {
                                Value::Str(s) => B64
                                    .decode(s)
                                    .map(Bytes::from)
                                    .map_err(|e| DecodeError::Invalid(format!("attachment is not base64: {e}"))),
                                other => Err(DecodeError::WrongType {
                                    field: "data",
                                    expected: "base64 attachments",
                                    found: other.kind(),
                                }),
                            })
                            .collect::<Result<_, _>>()
                            .map_err(err)?;
                        match reconstruct(args, &attachments).map_err(err)? {
                            Value::Array(a) => a,
                            other => vec![other],
                        }
                    }
                    // python-socketio sends no argument (`data=None`) as [null], and its
                    // servers deliver that as no argument
                    Some(Value::Array(d)) if d == [Value::Null] => Vec::new(),
                    Some(Value::Array(d)) => d,
                    Some(Value::Null) | None => Vec::new(),
                    Some(v) => vec![v],
                };
                let opts = BroadcastOptions {
                    rooms: rooms_field(f.take("room")).map_err(err)?,
                    except: rooms_field(f.take("skip_sid")).map_err(err)?,
                    ..BroadcastOptions::default()
                };
                let packet = EventPacket::new(event, args);
                match f.take("callback") {
                    Some(callback @ Value::Array(_)) if matches!(&callback, Value::Array(a) if a.len() == 3) => {
                        Body::BroadcastWithAck { request_id: callback_request_id(callback), packet, opts }
                    }
                    _ => Body::Broadcast { packet, opts },
                }
            }
            "close_room" => {
                let room = rooms_field(f.take("room")).map_err(err)?;
                let [one] = room.as_slice() else {
                    return Err(err(DecodeError::WrongType { field: "room", expected: "one room", found: "a list" }));
                };
                Body::SocketsLeave { opts: BroadcastOptions::all().to(one.clone()), rooms: room }
            }
            "enter_room" | "leave_room" => {
                let sid = f.string("sid").map_err(err)?;
                let room = rooms_field(f.take("room")).map_err(err)?;
                let opts = BroadcastOptions::all().to(sid);
                if method == "enter_room" {
                    Body::SocketsJoin { opts, rooms: room }
                } else {
                    Body::SocketsLeave { opts, rooms: room }
                }
            }
            "disconnect" => {
                let sid = f.string("sid").map_err(err)?;
                Body::DisconnectSockets { opts: BroadcastOptions::all().to(sid), close: false }
            }
            other => {
                return Err(err(DecodeError::Invalid(format!("python-socketio method {other:?} is not read here"))));
            }
        };
        Ok(Message::new(uid, nsp, body))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn emit(opts: BroadcastOptions, args: Vec<Value>) -> Message {
        Message::new(
            Some("3f2a9c0e5b6d4e7f8a9b0c1d2e3f4a5b".into()),
            "/",
            Body::Broadcast { packet: EventPacket::new("my event", args), opts },
        )
    }

    #[test]
    fn emits_look_like_python_socketio() {
        let dialect = PythonDialect::default();
        let mut foo = Map::new();
        foo.insert("foo", "bar");
        let out = dialect.encode(&emit(BroadcastOptions::all().to("my room"), vec![Value::Map(foo)])).unwrap();
        assert_eq!(out.channel, "socketio");
        // PROTOCOLS.md 9.7, byte for byte
        assert_eq!(
            std::str::from_utf8(&out.payload).unwrap(),
            r#"{"method": "emit", "event": "my event", "data": [{"foo": "bar"}], "binary": false, "namespace": "/", "room": "my room", "skip_sid": null, "callback": null, "host_id": "3f2a9c0e5b6d4e7f8a9b0c1d2e3f4a5b"}"#
        );
        let bin = dialect
            .encode(&emit(BroadcastOptions::all(), vec![Value::Binary(Bytes::from_static(&[1, 2, 3]))]))
            .unwrap();
        let text = std::str::from_utf8(&bin.payload).unwrap();
        assert!(text.contains(r#""data": [[{"_placeholder": true, "num": 0}], "AQID"], "binary": true"#), "{text}");
        // and back
        let back = dialect.decode("socketio", &bin.payload).unwrap();
        match back.body {
            Body::Broadcast { packet, .. } => {
                assert_eq!(packet.args, vec![Value::Binary(Bytes::from_static(&[1, 2, 3]))])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn what_the_protocol_cannot_carry_is_an_error() {
        let dialect = PythonDialect::default();
        let join = |opts, rooms| Message::new(None, "/", Body::SocketsJoin { opts, rooms });
        assert!(dialect.encode(&join(BroadcastOptions::all().to("sid1"), vec![Room::from("r")])).is_ok());
        assert!(dialect.encode(&join(BroadcastOptions::all(), vec![Room::from("r")])).is_err());
        assert!(dialect.encode(&join(BroadcastOptions::all().to("a").to("b"), vec![Room::from("r")])).is_err());
        let e = dialect
            .encode(&Message::new(
                None,
                "/",
                Body::ServerSideEmit { request_id: None, packet: EventPacket::new("x", vec![]) },
            ))
            .unwrap_err();
        assert!(e.to_string().contains("python"), "{e}");
        assert!(dialect.decode("socketio", b"\x80\x04garbage").unwrap_err().to_string().contains("decode"));
    }

    #[test]
    fn callbacks_travel_as_python_socketio_sends_them() {
        let dialect = PythonDialect::new("flask-socketio");
        // a Python server's emit with a callback to a socket held here
        let inbound = br#"{"method": "emit", "event": "q", "data": ["hi"], "binary": false, "namespace": "/", "room": "SIDx", "skip_sid": null, "callback": ["SIDx", "/", 7], "host_id": "origin"}"#;
        let msg = dialect.decode("flask-socketio", inbound).unwrap();
        assert_eq!(msg.uid.as_deref(), Some("origin"));
        let Body::BroadcastWithAck { request_id, opts, .. } = msg.body else { panic!("{msg:?}") };
        assert_eq!(opts.rooms, vec![Room::from("SIDx")]);
        // the answer: a callback message addressed to the origin host
        let ack = Message::new(Some("me".into()), "/", Body::BroadcastAck { request_id, value: Value::from("ok") })
            .reply_to(Some("origin".into()));
        let out = dialect.encode(&ack).unwrap();
        assert_eq!(
            std::str::from_utf8(&out.payload).unwrap(),
            r#"{"method": "callback", "host_id": "origin", "sid": "SIDx", "namespace": "/", "id": 7, "args": ["ok"]}"#
        );
        // which the origin reads as the ack of its request 7
        let back = dialect.decode("flask-socketio", &out.payload).unwrap();
        assert_eq!(back.uid, None);
        assert_eq!(back.reply_to.as_deref(), Some("origin"));
        assert_eq!(back.body, Body::BroadcastAck { request_id: "7".into(), value: Value::from("ok") });
        // no client counts in this protocol
        let count = Message::new(None, "/", Body::BroadcastClientCount { request_id: "x".into(), count: 1 });
        assert!(dialect.encode(&count).is_err());
        // our own request: the callback names our request id
        let ours = Message::new(
            Some("me".into()),
            "/",
            Body::BroadcastWithAck {
                request_id: "abc".into(),
                packet: EventPacket::new("q", vec![]),
                opts: BroadcastOptions::all().to("SIDy"),
            },
        );
        let text = String::from_utf8(dialect.encode(&ours).unwrap().payload.to_vec()).unwrap();
        assert!(
            text.contains(r#""room": "SIDy", "skip_sid": null, "callback": ["SIDy", "/", "abc"], "host_id": "me""#),
            "{text}"
        );
        let many = Message::new(
            None,
            "/",
            Body::BroadcastWithAck {
                request_id: "abc".into(),
                packet: EventPacket::new("q", vec![]),
                opts: BroadcastOptions::all(),
            },
        );
        assert!(dialect.encode(&many).unwrap_err().to_string().contains("one room"));
    }

    #[test]
    fn close_room_and_double_encoded_text_are_read() {
        let dialect = PythonDialect::default();
        let close = br#"{"method": "close_room", "room": "r1", "namespace": "/", "host_id": "h"}"#;
        let msg = dialect.decode("socketio", close).unwrap();
        assert_eq!(
            msg.body,
            Body::SocketsLeave { opts: BroadcastOptions::all().to("r1"), rooms: vec![Room::from("r1")] }
        );
        let wrapped = br#""{\"method\": \"emit\", \"event\": \"hello\", \"data\": [1], \"namespace\": \"/\"}""#;
        let msg = dialect.decode("socketio", wrapped).unwrap();
        assert!(matches!(msg.body, Body::Broadcast { ref packet, .. } if packet.event == "hello"), "{msg:?}");
    }

    #[test]
    fn pickled_messages_name_their_sender_without_unpickling() {
        // python-socketio 5.13.0's RedisManager, captured
        let hex = "80049595000000000000007d94288c066d6574686f64948c04656d6974948c056576656e74948c0568656c6c6f948c0464617461947d948c0174948c02503294738c096e616d657370616365948c012f948c04726f6f6d944e8c08736b69705f736964944e8c0863616c6c6261636b944e8c07686f73745f6964948c20323563386439356664333833343264313965663534386232653539666364383394752e";
        let bytes: Vec<u8> =
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        let e = PythonDialect::default().decode("socketio", &bytes).unwrap_err();
        let DialectError::Decode { source: DecodeError::Pickled { sender }, .. } = &e else { panic!("{e:?}") };
        assert_eq!(sender.as_deref(), Some("25c8d95fd38342d19ef548b2e59fcd83"));
        let chain = format!("{e}: {}", std::error::Error::source(&e).unwrap());
        assert!(chain.contains("5.14"), "{chain}");
        // truncated or foreign bytes: no sender, no panic
        for cut in 0..bytes.len() {
            let _ = PythonDialect::default().decode("socketio", &bytes[..cut]);
        }
        assert_eq!(pickled_host_id(b"\x80\x04\x8c\x07host_id\x94\x8c\xffab"), None);
    }
}
