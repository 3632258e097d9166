//! Wire dialects: pure functions from [`Message`] to `(channel, bytes)` and back.
//!
//! | dialect | spoken by | module |
//! |---|---|---|
//! | `node-redis` | `@socket.io/redis-adapter` 8.x `createAdapter`, `@socket.io/redis-emitter` 5.x | [`node_redis`] |
//! | `node-cluster` | `socket.io-adapter` `ClusterAdapter` (sharded Redis adapter, our Kafka and AMQP transports) | [`node_cluster`] |
//! | `node-streams` | `@socket.io/redis-streams-adapter` 0.3.x (stream entries plus pub/sub), its emitter | [`node_streams`] |
//! | `python` | python-socketio / Flask-SocketIO message queues (emits, joins, disconnects) | [`python`] |
//!
//! A dialect does no I/O and never panics on input: every decoder returns a
//! [`DialectError`] for bytes it does not understand.

pub mod node_cluster;
pub mod node_redis;
pub mod node_streams;
pub mod python;

use std::fmt::Debug;

use bytes::Bytes;

use crate::error::{DecodeError, DialectError};
use crate::message::Message;
use crate::transport::Channel;
use crate::types::{BroadcastFlags, BroadcastOptions, EventPacket, NodeId, Room, SocketInfo};
use crate::value::{Map, Value};
use crate::{json, msgpack};

pub use node_cluster::{NodeClusterDialect, SubscriptionMode};
pub use node_redis::NodeRedisDialect;
pub use node_streams::{NodeStreamsDialect, StreamLayout};
pub use python::PythonDialect;

/// A dialect by name: what `dialect=` in a URL, `--dialect` on the CLI and the emitter's
/// builder select.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DialectKind {
    /// `@socket.io/redis-adapter` classic (`createAdapter`), as `@socket.io/redis-emitter`.
    NodeRedis,
    /// The socket.io-adapter `ClusterAdapter` envelope: `createShardedAdapter`, Kafka, AMQP.
    NodeCluster,
    /// `@socket.io/redis-streams-adapter` 0.3 (Redis `mode=streams`): ClusterAdapter
    /// messages as stream entries and MessagePack pub/sub.
    NodeStreams,
    /// python-socketio / Flask-SocketIO message queues.
    Python,
}

impl std::str::FromStr for DialectKind {
    type Err = String;

    /// `node-redis` (or `node`), `node-cluster` (or `cluster`), `node-streams` (or
    /// `streams`), `python`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "node" | "node-redis" => Ok(DialectKind::NodeRedis),
            "cluster" | "node-cluster" => Ok(DialectKind::NodeCluster),
            "streams" | "node-streams" => Ok(DialectKind::NodeStreams),
            "python" => Ok(DialectKind::Python),
            other => {
                Err(format!("unknown dialect {other:?} (expected node-redis, node-cluster, node-streams or python)"))
            }
        }
    }
}

impl std::fmt::Display for DialectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DialectKind::NodeRedis => "node-redis",
            DialectKind::NodeCluster => "node-cluster",
            DialectKind::NodeStreams => "node-streams",
            DialectKind::Python => "python",
        })
    }
}

impl DialectKind {
    /// This dialect, built for `name`: the channel prefix of the Node.js dialects (the
    /// streams one with the default stream `socket.io`), the manager channel of the
    /// python one.
    pub fn dialect(self, name: &str) -> std::sync::Arc<dyn Dialect> {
        match self {
            DialectKind::NodeRedis => std::sync::Arc::new(NodeRedisDialect::new(name)),
            DialectKind::NodeCluster => std::sync::Arc::new(NodeClusterDialect::new(name)),
            DialectKind::NodeStreams => std::sync::Arc::new(NodeStreamsDialect::new(name, StreamLayout::default())),
            DialectKind::Python => std::sync::Arc::new(PythonDialect::new(name)),
        }
    }
}

/// The uid emitters use in the Node.js protocols. Messages from it are processed but
/// its sender is never counted as a server.
pub const EMITTER_UID: &str = "emitter";

/// An encoded message ready to publish.
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    /// Where to publish.
    pub channel: String,
    /// What to publish.
    pub payload: Bytes,
}

/// What a dialect can express beyond broadcasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Heartbeat messages exist (server count without broker support).
    pub heartbeats: bool,
    /// A dedicated "all rooms" request exists (otherwise it is derived from fetch sockets).
    pub all_rooms: bool,
    /// Responses name the node that sent them.
    pub identified_responses: bool,
    /// Room broadcasts travel on per-room channels ([`Dialect::room_channel`]), so local
    /// room creations and deletions change the subscriptions.
    pub room_channels: bool,
    /// One sockets-join or sockets-leave message carries several rooms (otherwise send
    /// one message per room).
    pub multi_room_joins: bool,
    /// Requests and their answers exist: fetch sockets, all rooms, server-side events
    /// with acks, and so a server count (otherwise each is refused with
    /// [`DialectError::Unsupported`] naming the dialect).
    pub requests: bool,
    /// A node answering a broadcast with acks first announces how many clients it asked.
    /// Otherwise (python-socketio's callbacks, addressed to one socket) a requester waits
    /// for one ack, unless the socket is its own.
    pub client_counts: bool,
    /// Each namespace has channels of its own (a message of another namespace on them is
    /// foreign); python-socketio carries every namespace on one channel.
    pub namespace_channels: bool,
    /// What is published to a node's main channel and to its response path reaches it
    /// in publish order (one queue, connection or partition), or over paths without a
    /// backlog of their own (pub/sub). Then the health check takes one ping of a round
    /// back and another missing for a lost channel, not a late one. Not Redis Streams:
    /// the stream is read apart from the pub/sub responses, and may lag behind them.
    pub ordered_paths: bool,
}

/// A wire dialect.
pub trait Dialect: Send + Sync + Debug + 'static {
    /// The dialect's name (`node-redis`, `node-cluster`, ...).
    fn name(&self) -> &'static str;

    /// What the dialect can express.
    fn capabilities(&self) -> Capabilities;

    /// A fresh node id in the form peers of this dialect use.
    fn new_node_id(&self) -> NodeId;

    /// Channels a server node of namespace `nsp` subscribes to.
    fn node_channels(&self, nsp: &str, uid: &str) -> Vec<Channel>;

    /// Channels a requester that is not a server (an emitter waiting for answers)
    /// subscribes to. Never a channel that peers count as a server.
    fn requester_channels(&self, nsp: &str, uid: &str) -> Vec<Channel>;

    /// Channels on which an observer that is not a server (`sio tail`) sees the
    /// broadcasts of namespace `nsp`: never a request channel. In dialects whose
    /// broadcasts share the count channel (see [`Dialect::count_channel`]) a listener there
    /// would be counted as a server where the broker counts subscribers; callers check.
    /// Per-room channels of dynamic modes are not included.
    fn listener_channels(&self, nsp: &str) -> Vec<Channel>;

    /// The channel to subscribe to while room `room` has local members, in modes
    /// that route room broadcasts to per-room channels.
    fn room_channel(&self, nsp: &str, room: &Room) -> Option<String> {
        let _ = (nsp, room);
        None
    }

    /// The channel whose subscriber count is the number of servers (when the broker
    /// can count subscribers).
    fn count_channel(&self, nsp: &str) -> String;

    /// In dialects with per-room channels, the channel every server of `nsp` listens
    /// on, where a room broadcast may also go (peers handle it there as in `static`
    /// mode); the engine sends a room's broadcasts there while servers may still be
    /// subscribing its channel. `None` for dialects without per-room channels.
    fn all_servers_channel(&self, nsp: &str) -> Option<String> {
        let _ = nsp;
        None
    }

    /// For a broadcast arriving on a per-room channel, the room: nodes without local
    /// members of that room may drop it without decoding.
    fn broadcast_room<'c>(&self, nsp: &str, channel: &'c str) -> Option<&'c str> {
        let _ = (nsp, channel);
        None
    }

    /// Encodes a message.
    fn encode(&self, msg: &Message) -> Result<Outgoing, DialectError>;

    /// Decodes a message that arrived on `channel`.
    fn decode(&self, channel: &str, payload: &[u8]) -> Result<Message, DialectError>;
}

/// Validates a namespace name for channel-based dialects.
pub(crate) fn check_nsp(nsp: &str) -> Result<(), DialectError> {
    if !nsp.starts_with('/') {
        return Err(DialectError::InvalidName {
            what: "namespace",
            value: nsp.to_owned(),
            reason: "a namespace starts with '/'",
        });
    }
    if nsp.contains('#') {
        return Err(DialectError::InvalidName {
            what: "namespace",
            value: nsp.to_owned(),
            reason: "'#' separates the parts of channel names",
        });
    }
    Ok(())
}

/// Parses a payload as JSON when it starts with `{`, else as MessagePack (what every
/// Node.js receiver does).
pub(crate) fn parse_payload(payload: &[u8]) -> Result<Value, DecodeError> {
    if payload.first() == Some(&b'{') { json::parse(payload) } else { msgpack::decode(payload) }
}

/// Output format of [`Enc`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fmt {
    Json,
    Msgpack,
}

/// A streaming writer for maps and arrays in JSON or MessagePack, so that hot-path
/// messages are encoded without building intermediate values.
pub(crate) struct Enc {
    fmt: Fmt,
    out: Vec<u8>,
    // per open container: (is_map, first element still to come)
    stack: Vec<(bool, bool)>,
}

impl Enc {
    pub(crate) fn new(fmt: Fmt) -> Self {
        Enc { fmt, out: Vec::with_capacity(128), stack: Vec::with_capacity(4) }
    }

    fn sep(&mut self) {
        if self.fmt == Fmt::Json
            && let Some(top) = self.stack.last_mut()
        {
            if top.1 {
                top.1 = false;
            } else {
                self.out.push(b',');
            }
        }
    }

    /// Before a value: a separator inside arrays (in maps, `key` wrote it).
    fn before_value(&mut self) {
        if let Some(&(is_map, _)) = self.stack.last()
            && !is_map
        {
            self.sep();
        }
    }

    pub(crate) fn map(&mut self, len: usize) -> &mut Self {
        self.before_value();
        match self.fmt {
            Fmt::Json => self.out.push(b'{'),
            Fmt::Msgpack => msgpack::write_map_len(len, &mut self.out),
        }
        self.stack.push((true, true));
        self
    }

    pub(crate) fn array(&mut self, len: usize) -> &mut Self {
        self.before_value();
        match self.fmt {
            Fmt::Json => self.out.push(b'['),
            Fmt::Msgpack => msgpack::write_array_len(len, &mut self.out),
        }
        self.stack.push((false, true));
        self
    }

    pub(crate) fn end(&mut self) -> &mut Self {
        if let Some((is_map, _)) = self.stack.pop()
            && self.fmt == Fmt::Json
        {
            self.out.push(if is_map { b'}' } else { b']' });
        }
        self
    }

    pub(crate) fn key(&mut self, k: &str) -> &mut Self {
        self.sep();
        match self.fmt {
            Fmt::Json => {
                json::write(&Value::Str(k.to_owned()), &mut self.out);
                self.out.push(b':');
            }
            Fmt::Msgpack => msgpack::write_str(k, &mut self.out),
        }
        self
    }

    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        self.before_value();
        match self.fmt {
            Fmt::Json => json::write(&Value::Str(s.to_owned()), &mut self.out),
            Fmt::Msgpack => msgpack::write_str(s, &mut self.out),
        }
        self
    }

    pub(crate) fn uint(&mut self, n: u64) -> &mut Self {
        self.before_value();
        match self.fmt {
            Fmt::Json => self.out.extend_from_slice(n.to_string().as_bytes()),
            Fmt::Msgpack => msgpack::write_uint(n, &mut self.out),
        }
        self
    }

    pub(crate) fn bool(&mut self, b: bool) -> &mut Self {
        self.value(&Value::Bool(b))
    }

    pub(crate) fn value(&mut self, v: &Value) -> &mut Self {
        self.before_value();
        match self.fmt {
            Fmt::Json => json::write(v, &mut self.out),
            Fmt::Msgpack => msgpack::encode(v, &mut self.out),
        }
        self
    }

    pub(crate) fn rooms(&mut self, rooms: &[Room]) -> &mut Self {
        self.array(rooms.len());
        for r in rooms {
            if r.is_numeric() {
                self.value(&r.to_value());
            } else {
                self.str(r.as_str());
            }
        }
        self.end()
    }

    /// `[event, ...args]`
    pub(crate) fn event_data(&mut self, packet: &EventPacket) -> &mut Self {
        self.array(packet.args.len() + 1);
        self.str(&packet.event);
        for a in &packet.args {
            self.value(a);
        }
        self.end()
    }

    pub(crate) fn flags(&mut self, flags: &BroadcastFlags) -> &mut Self {
        let n = usize::from(flags.volatile)
            + usize::from(flags.compress.is_some())
            + usize::from(flags.timeout.is_some())
            + flags.extra.len();
        self.map(n);
        if flags.volatile {
            self.key("volatile").bool(true);
        }
        if let Some(c) = flags.compress {
            self.key("compress").bool(c);
        }
        if let Some(t) = flags.timeout {
            self.key("timeout").uint(u64::try_from(t.as_millis()).unwrap_or(u64::MAX));
        }
        for (k, v) in flags.extra.iter() {
            self.key(k).value(v);
        }
        self.end()
    }

    pub(crate) fn finish(self) -> Bytes {
        Bytes::from(self.out)
    }
}

/// Typed access to the fields of a decoded map, with errors that name the field.
pub(crate) struct Fields(Map);

impl Fields {
    pub(crate) fn from_value(v: Value) -> Result<Self, DecodeError> {
        match v {
            Value::Map(m) => Ok(Fields(m)),
            other => Err(DecodeError::WrongType { field: "message", expected: "a map", found: other.kind() }),
        }
    }

    pub(crate) fn has(&self, k: &str) -> bool {
        self.0.get(k).is_some_and(|v| !v.is_null())
    }

    pub(crate) fn take(&mut self, k: &'static str) -> Option<Value> {
        self.0.remove(k).filter(|v| !v.is_null())
    }

    pub(crate) fn req(&mut self, k: &'static str) -> Result<Value, DecodeError> {
        self.take(k).ok_or(DecodeError::MissingField(k))
    }

    /// A non-negative integer field (a client count).
    pub(crate) fn count(&mut self, k: &'static str) -> Result<u64, DecodeError> {
        let v = self.req(k)?;
        v.as_u64().ok_or(DecodeError::WrongType { field: k, expected: "a non-negative integer", found: v.kind() })
    }

    pub(crate) fn int(&self, k: &'static str) -> Result<i64, DecodeError> {
        let v = self.0.get(k).ok_or(DecodeError::MissingField(k))?;
        v.as_i64().ok_or(DecodeError::WrongType { field: k, expected: "an integer", found: v.kind() })
    }

    /// A string field; numbers are accepted and converted (ids sent by lenient peers).
    pub(crate) fn string(&mut self, k: &'static str) -> Result<String, DecodeError> {
        match self.req(k)? {
            Value::Str(s) => Ok(s),
            Value::Int(i) => Ok(i.to_string()),
            Value::UInt(u) => Ok(u.to_string()),
            other => Err(DecodeError::WrongType { field: k, expected: "a string", found: other.kind() }),
        }
    }

    pub(crate) fn opt_string(&mut self, k: &'static str) -> Result<Option<String>, DecodeError> {
        if self.has(k) { self.string(k).map(Some) } else { Ok(None) }
    }

    pub(crate) fn bool_or(&mut self, k: &'static str, default: bool) -> Result<bool, DecodeError> {
        match self.take(k) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(b),
            Some(other) => Err(DecodeError::WrongType { field: k, expected: "a boolean", found: other.kind() }),
        }
    }

    pub(crate) fn rooms(&mut self, k: &'static str) -> Result<Vec<Room>, DecodeError> {
        match self.take(k) {
            None => Ok(Vec::new()),
            Some(v) => rooms_of(v, k),
        }
    }

    pub(crate) fn array(&mut self, k: &'static str) -> Result<Vec<Value>, DecodeError> {
        match self.req(k)? {
            Value::Array(a) => Ok(a),
            other => Err(DecodeError::WrongType { field: k, expected: "an array", found: other.kind() }),
        }
    }

    pub(crate) fn map(&mut self, k: &'static str) -> Result<Fields, DecodeError> {
        match self.req(k)? {
            Value::Map(m) => Ok(Fields(m)),
            other => Err(DecodeError::WrongType { field: k, expected: "a map", found: other.kind() }),
        }
    }

    /// Broadcast options; a missing `opts` means "every socket".
    pub(crate) fn opts(&mut self, k: &'static str) -> Result<BroadcastOptions, DecodeError> {
        if !self.has(k) {
            return Ok(BroadcastOptions::default());
        }
        let mut o = self.map(k)?;
        let rooms = o.rooms("rooms")?;
        let except = o.rooms("except")?;
        let flags = match o.take("flags") {
            Some(Value::Map(m)) => flags_of(m)?,
            None => BroadcastFlags::default(),
            Some(other) => {
                return Err(DecodeError::WrongType { field: "flags", expected: "a map", found: other.kind() });
            }
        };
        Ok(BroadcastOptions { rooms, except, flags })
    }

    /// A Socket.IO packet `{type, data, nsp?, id?}`; returns the packet and its `nsp`.
    pub(crate) fn packet(&mut self, k: &'static str) -> Result<(EventPacket, Option<String>), DecodeError> {
        let mut p = self.map(k)?;
        let ty = p.int("type")?;
        if ty != 2 && ty != 5 {
            return Err(DecodeError::Invalid(format!("packet type {ty} is not an event")));
        }
        let data = p.array("data")?;
        let id = p.take("id").and_then(|v| v.as_u64());
        let nsp = p.opt_string("nsp")?;
        let mut packet = event_of(data, "data")?;
        packet.id = id;
        Ok((packet, nsp))
    }

    pub(crate) fn sockets(&mut self, k: &'static str) -> Result<Vec<SocketInfo>, DecodeError> {
        let list = match self.take(k) {
            None => return Ok(Vec::new()),
            Some(Value::Array(a)) => a,
            Some(other) => {
                return Err(DecodeError::WrongType { field: k, expected: "an array", found: other.kind() });
            }
        };
        let mut out = Vec::with_capacity(list.len());
        for item in list {
            let mut s = Fields::from_value(item)?;
            out.push(SocketInfo {
                id: s.string("id")?,
                rooms: s.rooms("rooms")?,
                handshake: s.take("handshake").unwrap_or_default(),
                data: s.take("data").unwrap_or_default(),
            });
        }
        Ok(out)
    }
}

pub(crate) fn rooms_of(v: Value, field: &'static str) -> Result<Vec<Room>, DecodeError> {
    match v {
        Value::Array(a) => a
            .iter()
            .map(|r| {
                Room::from_value(r).ok_or(DecodeError::WrongType {
                    field,
                    expected: "strings or numbers",
                    found: r.kind(),
                })
            })
            .collect(),
        other => Err(DecodeError::WrongType { field, expected: "an array", found: other.kind() }),
    }
}

pub(crate) fn event_of(data: Vec<Value>, field: &'static str) -> Result<EventPacket, DecodeError> {
    let found = data.first().map_or("nothing", Value::kind);
    EventPacket::from_data(data).ok_or(DecodeError::WrongType { field, expected: "[event name, ...args]", found })
}

fn flags_of(m: Map) -> Result<BroadcastFlags, DecodeError> {
    let mut flags = BroadcastFlags::default();
    for (k, v) in m {
        match k.as_str() {
            "volatile" => flags.volatile = v.as_bool().unwrap_or(false),
            "compress" => flags.compress = v.as_bool(),
            "local" => flags.local = v.as_bool().unwrap_or(false),
            "timeout" => flags.timeout = v.as_u64().map(std::time::Duration::from_millis),
            _ => {
                flags.extra.insert(k, v);
            }
        }
    }
    Ok(flags)
}

/// Encodes socket descriptions as Node.js does: `{id, handshake, rooms, data}`.
pub(crate) fn write_sockets(e: &mut Enc, sockets: &[SocketInfo]) {
    e.array(sockets.len());
    for s in sockets {
        e.map(4);
        e.key("id").str(&s.id);
        e.key("handshake").value(&s.handshake);
        e.key("rooms").rooms(&s.rooms);
        e.key("data").value(&s.data);
        e.end();
    }
    e.end();
}

/// Random characters from uid2's alphabet (`A-Za-z0-9-_`).
pub(crate) fn uid2(len: usize) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..len).map(|_| char::from(ALPHABET[fastrand::usize(..64)])).collect()
}

/// 16 lowercase hex digits (`randomBytes(8).toString("hex")`).
pub(crate) fn hex16() -> String {
    format!("{:016x}", fastrand::u64(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enc_writes_the_same_structure_in_both_formats() {
        for fmt in [Fmt::Json, Fmt::Msgpack] {
            let mut e = Enc::new(fmt);
            e.map(3);
            e.key("a").array(2).uint(1).str("x").end();
            e.key("b").map(0).end();
            e.key("c").value(&Value::Null);
            e.end();
            let bytes = e.finish();
            let v = parse_payload(&bytes).expect("parses");
            assert_eq!(v.get("a"), Some(&Value::Array(vec![1.into(), "x".into()])), "{fmt:?}");
            assert_eq!(v.get("b"), Some(&Value::Map(Map::new())));
            if fmt == Fmt::Json {
                assert_eq!(&bytes[..], br#"{"a":[1,"x"],"b":{},"c":null}"#);
            }
        }
    }

    #[test]
    fn ids_have_the_node_shapes() {
        let u = uid2(6);
        assert_eq!(u.len(), 6);
        assert!(u.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let h = hex16();
        assert_eq!(h.len(), 16);
        assert!(h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }
}
