//! The data model: rooms, sockets, broadcast options, event packets.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use crate::value::{Map, Value};

/// A socket id (Node.js: 20 characters, socketioxide: 16; any string is accepted).
pub type SocketId = String;

/// A node (adapter instance) id, unique per namespace and process.
pub type NodeId = String;

/// A room name.
///
/// Rooms are strings. Node.js applications may also use numbers as rooms (`socket.join(42)`);
/// such rooms arrive as numbers on the wire, compare equal to their decimal text here
/// (`Room::from(42) == Room::from("42")`), and are sent back as numbers so that Node.js
/// servers find them. Each socket id is also a room holding just that socket.
#[derive(Clone)]
pub struct Room {
    name: String,
    numeric: bool,
}

impl Room {
    /// A room named by a string.
    pub fn new(name: impl Into<String>) -> Self {
        Room { name: name.into(), numeric: false }
    }

    /// A room named by a JavaScript number (sent as a number on the wire).
    pub fn numeric(n: i64) -> Self {
        Room { name: n.to_string(), numeric: true }
    }

    /// A room named by a non-integral JavaScript number.
    pub fn numeric_float(f: f64) -> Self {
        Room { name: crate::json::js_number(f), numeric: true }
    }

    /// The room's name.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// `true` when the room is a JavaScript number on the wire.
    pub fn is_numeric(&self) -> bool {
        self.numeric
    }

    /// The room as a wire value (a number for numeric rooms).
    pub fn to_value(&self) -> Value {
        if self.numeric {
            if let Ok(i) = self.name.parse::<i64>() {
                return Value::Int(i);
            }
            if let Ok(f) = self.name.parse::<f64>() {
                return Value::Float(f);
            }
        }
        Value::Str(self.name.clone())
    }

    /// Reads a room from a wire value (string or number).
    pub fn from_value(v: &Value) -> Option<Room> {
        match v {
            Value::Str(s) => Some(Room::new(s.clone())),
            Value::Int(i) => Some(Room::numeric(*i)),
            Value::UInt(u) => Some(Room { name: u.to_string(), numeric: true }),
            Value::Float(f) if f.is_finite() => Some(Room::numeric_float(*f)),
            _ => None,
        }
    }

    /// Consumes the room into its name.
    pub fn into_string(self) -> String {
        self.name
    }
}

impl PartialEq for Room {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for Room {}

impl Hash for Room {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl PartialOrd for Room {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Room {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name.cmp(&other.name)
    }
}

impl Borrow<str> for Room {
    fn borrow(&self) -> &str {
        &self.name
    }
}

impl AsRef<str> for Room {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.numeric { write!(f, "{}", self.name) } else { write!(f, "{:?}", self.name) }
    }
}

impl fmt::Display for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl From<&str> for Room {
    fn from(s: &str) -> Self {
        Room::new(s)
    }
}
impl From<String> for Room {
    fn from(s: String) -> Self {
        Room::new(s)
    }
}
impl From<&String> for Room {
    fn from(s: &String) -> Self {
        Room::new(s.clone())
    }
}
impl From<&Room> for Room {
    fn from(r: &Room) -> Self {
        r.clone()
    }
}
impl From<i64> for Room {
    fn from(n: i64) -> Self {
        Room::numeric(n)
    }
}
impl From<i32> for Room {
    fn from(n: i32) -> Self {
        Room::numeric(i64::from(n))
    }
}
impl From<u32> for Room {
    fn from(n: u32) -> Self {
        Room::numeric(i64::from(n))
    }
}

impl serde::Serialize for Room {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

impl<'de> serde::Deserialize<'de> for Room {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Room::from_value(&v).ok_or_else(|| serde::de::Error::custom("a room is a string or a number"))
    }
}

/// Flags of a broadcast. Only set flags travel on the wire, in this order: `volatile`,
/// `compress`, `timeout`, then any unknown flags received from peers (kept as is).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BroadcastFlags {
    /// Drop the packet for clients that are not ready to receive it.
    pub volatile: bool,
    /// `Some(false)` asks the server not to compress (permessage-deflate) the packet.
    pub compress: Option<bool>,
    /// Deliver on this node only (never published).
    pub local: bool,
    /// How long to wait for client acknowledgements (Node.js `flags.timeout`, ms).
    pub timeout: Option<Duration>,
    /// Flags this library does not interpret, kept to be forwarded unchanged.
    pub extra: Map,
}

/// Who a cluster operation targets.
///
/// Node.js semantics: non-empty `rooms` means the union of their members (each socket
/// once), empty `rooms` means every socket of the namespace; then every socket that is
/// in any `except` room is removed. A socket id is a room.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BroadcastOptions {
    /// Target rooms (empty = all sockets).
    pub rooms: Vec<Room>,
    /// Rooms whose members are excluded.
    pub except: Vec<Room>,
    /// Flags.
    pub flags: BroadcastFlags,
}

impl BroadcastOptions {
    /// Every socket of the namespace.
    pub fn all() -> Self {
        Self::default()
    }

    /// Targets a room (may be called several times).
    pub fn to(mut self, room: impl Into<Room>) -> Self {
        self.rooms.push(room.into());
        self
    }

    /// Excludes a room (may be called several times).
    pub fn except(mut self, room: impl Into<Room>) -> Self {
        self.except.push(room.into());
        self
    }

    /// Marks the broadcast volatile.
    pub fn volatile(mut self) -> Self {
        self.flags.volatile = true;
        self
    }

    /// Sets the compress flag.
    pub fn compress(mut self, compress: bool) -> Self {
        self.flags.compress = Some(compress);
        self
    }

    /// Restricts the operation to this node.
    pub fn local(mut self) -> Self {
        self.flags.local = true;
        self
    }

    /// Sets the acknowledgement timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.flags.timeout = Some(timeout);
        self
    }
}

/// An event as broadcast through the cluster: the name, the arguments and, in rare
/// cases (connection state recovery in Node.js), a packet id.
#[derive(Clone, Debug, PartialEq)]
pub struct EventPacket {
    /// The event name.
    pub event: String,
    /// The arguments, in order.
    pub args: Vec<Value>,
    /// A packet id, when the sender set one.
    pub id: Option<u64>,
}

impl EventPacket {
    /// A new event.
    pub fn new(event: impl Into<String>, args: Vec<Value>) -> Self {
        EventPacket { event: event.into(), args, id: None }
    }

    /// The Socket.IO `data` array: `[event, ...args]`.
    pub fn data(&self) -> Vec<Value> {
        let mut data = Vec::with_capacity(self.args.len() + 1);
        data.push(Value::Str(self.event.clone()));
        data.extend(self.args.iter().cloned());
        data
    }

    /// Reads `[event, ...args]`.
    pub fn from_data(data: Vec<Value>) -> Option<Self> {
        let mut it = data.into_iter();
        let event = match it.next()? {
            Value::Str(s) => s,
            _ => return None,
        };
        Some(EventPacket { event, args: it.collect(), id: None })
    }
}

/// A socket as described to `fetch_sockets` callers.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SocketInfo {
    /// The socket id.
    pub id: SocketId,
    /// The rooms the socket is in (including its own id).
    pub rooms: Vec<Room>,
    /// The handshake, in the shape Node.js uses (`headers`, `time`, `address`, `xdomain`,
    /// `secure`, `issued`, `url`, `query`, `auth`); see [`Handshake`].
    pub handshake: Value,
    /// The application data attached to the socket (`socket.data`).
    pub data: Value,
}

/// Builder of a Node.js-shaped handshake object, so that Node.js peers can read
/// `socket.handshake.query` and friends from sockets held by a Rust node.
#[derive(Clone, Debug, Default)]
pub struct Handshake {
    /// HTTP request headers (lowercase names).
    pub headers: Map,
    /// Connection time, milliseconds since the epoch.
    pub issued_ms: i64,
    /// Remote address.
    pub address: String,
    /// Whether the connection used TLS.
    pub secure: bool,
    /// Request URL (path and query).
    pub url: String,
    /// Parsed query parameters.
    pub query: Map,
    /// The client's `auth` payload.
    pub auth: Value,
}

impl Handshake {
    /// The handshake as the wire value Node.js expects.
    pub fn to_value(&self) -> Value {
        let mut m = Map::with_capacity(9);
        m.insert("headers", Value::Map(self.headers.clone()));
        m.insert("time", crate::value::Timestamp::from_millis(self.issued_ms).to_iso8601());
        m.insert("address", self.address.clone());
        m.insert("xdomain", self.headers.get("origin").is_some());
        m.insert("secure", self.secure);
        m.insert("issued", self.issued_ms);
        m.insert("url", self.url.clone());
        m.insert("query", Value::Map(self.query.clone()));
        m.insert("auth", if self.auth.is_null() { Value::Map(Map::new()) } else { self.auth.clone() });
        Value::Map(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_rooms_equal_their_text_and_keep_their_wire_type() {
        let n = Room::from(42);
        assert_eq!(n, Room::from("42"));
        assert_eq!(n.to_value(), Value::Int(42));
        assert_eq!(Room::from("42").to_value(), Value::from("42"));
        let mut set = std::collections::HashSet::new();
        set.insert(Room::from("42"));
        assert!(set.contains("42"));
        assert!(set.contains(&n));
        assert_eq!(Room::from_value(&Value::Float(1.5)).map(|r| r.into_string()), Some("1.5".into()));
    }

    #[test]
    fn event_packet_data_roundtrip() {
        let p = EventPacket::new("hello", vec![1.into(), "x".into()]);
        assert_eq!(EventPacket::from_data(p.data()), Some(p));
        assert_eq!(EventPacket::from_data(vec![Value::Int(1)]), None);
    }
}
