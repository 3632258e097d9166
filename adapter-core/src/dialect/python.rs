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
//!
//! The protocol has no requests, responses or heartbeats: fetching sockets, rooms,
//! server-side events and acks across nodes are refused with
//! [`DialectError::Unsupported`]. Its `skip_sid` names socket ids, not rooms, so `except`
//! entries are sent as socket ids; `volatile` and `compress` have no equivalent and are
//! dropped. Binary arguments use python-socketio's placeholders
//! (`{"_placeholder": true, "num": i}` plus base64 attachments, `"binary": true`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;

use super::{Capabilities, Dialect, Fields, Outgoing};
use crate::error::{DecodeError, DialectError};
use crate::message::{Body, Message};
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
            Body::Broadcast { packet, opts } => {
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
                m.insert("callback", Value::Null);
                m.insert("host_id", host_id);
            }
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
            Body::BroadcastWithAck { .. } => return Err(Self::unsupported("broadcasts with acks across servers")),
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
            return Err(err(DecodeError::Invalid(
                "a pickled message (python-socketio < 5.14); only JSON messages are read".into(),
            )));
        }
        let mut f = Fields::from_value(crate::json::parse(payload).map_err(err)?).map_err(err)?;
        let method = f.string("method").map_err(err)?;
        // python-socketio delivers nothing for a message without a namespace
        let nsp = f.string("namespace").map_err(err)?;
        let uid = f.opt_string("host_id").map_err(err)?;
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
                    Some(Value::Array(d)) => d,
                    Some(v) => vec![v],
                    None => Vec::new(),
                };
                let opts = BroadcastOptions {
                    rooms: rooms_field(f.take("room")).map_err(err)?,
                    except: rooms_field(f.take("skip_sid")).map_err(err)?,
                    ..BroadcastOptions::default()
                };
                Body::Broadcast { packet: EventPacket::new(event, args), opts }
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
}
