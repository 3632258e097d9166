//! The `@socket.io/redis-streams-adapter` 0.3.x protocol: the `ClusterAdapter` messages
//! of [`node_cluster`](super::node_cluster), split between a Redis stream and pub/sub.
//!
//! - **Durable** messages (broadcasts without acks, sockets join and leave, disconnect
//!   sockets) are stream entries `uid <uid> nsp <nsp> type <decimal> [data <data>]`,
//!   appended to the namespace's stream (see [`StreamLayout`]). `data` is the JSON text
//!   of the message's `data`, or, when a type that may carry binary carries some, the
//!   base64 of its MessagePack encoding. The dialect hands an entry to the transport as
//!   an [entry frame](crate::transport::entry) on the stream's name; the transport
//!   appends it (`XADD ... MAXLEN ~ n *`) and reads the stream from the last id it
//!   processed, so these survive a lost connection.
//! - **Ephemeral** messages (requests: broadcasts with acks, server-side emits, fetch
//!   sockets) are the whole envelope `{type, data, uid, nsp}` in MessagePack, published
//!   on `p#nsp#`; responses on `p#nsp#<requester uid>#` (pub/sub, or sharded pub/sub).
//!   `PUBSUB NUMSUB p#nsp#` counts the servers (0.3.x has no heartbeats; ours, when
//!   asked for, travel on `p#nsp#` where Node.js ignores them).
//!
//! The Node.js emitter (`@socket.io/redis-streams-emitter` 0.1) writes every message,
//! server-side emits included, as a stream entry with uid `emitter`, and adds `nsp` to
//! the packet of a broadcast; both decode here. Stream names never contain `#` and every
//! pub/sub channel ends with one, which is how [`Dialect::decode`] tells them apart.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use super::node_cluster::{classify, has_data, message_from_value, write_data, write_envelope};
use crate::dialect::{Capabilities, Dialect, EMITTER_UID, Enc, Fmt, NodeClusterDialect, Outgoing, check_nsp, hex16};
use crate::error::{DecodeError, DialectError};
use crate::message::{Body, Message};
use crate::transport::{Channel, entry};
use crate::value::{Map, Value};
use crate::{json, msgpack};

/// Which stream a namespace's entries go to: `name` with one stream, else
/// `name-<i>` where `i = hashCode(nsp) % count` with Java's string hash over UTF-16 code
/// units in signed 32-bit arithmetic, and JavaScript's remainder (negative for a negative
/// hash: `socket.io--1` is a real stream name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamLayout {
    name: String,
    count: u32,
}

impl Default for StreamLayout {
    /// One stream named `socket.io` (the Node.js defaults).
    fn default() -> Self {
        StreamLayout { name: "socket.io".to_owned(), count: 1 }
    }
}

impl StreamLayout {
    /// `count` streams named after `name` (Node.js `streamName`, `streamCount`). Errors
    /// when `name` is empty or has a `#`, or `count` is 0.
    pub fn new(name: impl Into<String>, count: u32) -> Result<Self, String> {
        let name = name.into();
        if name.is_empty() || name.contains('#') {
            return Err(format!("stream name {name:?} must be non-empty and without '#'"));
        }
        if count == 0 {
            return Err("stream_count must be at least 1".into());
        }
        Ok(StreamLayout { name, count })
    }

    /// The stream name (or the prefix of the names when `count > 1`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The number of streams.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The stream of namespace `nsp`.
    pub fn key_for(&self, nsp: &str) -> String {
        if self.count == 1 {
            return self.name.clone();
        }
        let hash = nsp.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
        // i32 `%` truncates like JavaScript's: the sign of the hash stays
        let count = i32::try_from(self.count).unwrap_or(i32::MAX);
        format!("{}-{}", self.name, hash % count)
    }

    /// Whether `key` is one of this layout's streams.
    pub fn contains(&self, key: &str) -> bool {
        if key == self.name {
            return self.count == 1;
        }
        let Some(index) = key.strip_prefix(self.name.as_str()).and_then(|rest| rest.strip_prefix('-')) else {
            return false;
        };
        // exactly what `key_for` writes: no `+`, no leading zeros, no `-0`
        let canonical = index.parse::<i64>().is_ok_and(|i| i.to_string() == index);
        canonical && index.parse::<i64>().is_ok_and(|i| i.unsigned_abs() < u64::from(self.count))
    }
}

/// The Redis Streams adapter's dialect.
#[derive(Clone, Debug)]
pub struct NodeStreamsDialect {
    channels: NodeClusterDialect,
    layout: StreamLayout,
}

impl NodeStreamsDialect {
    /// Channel prefix `prefix` (`channelPrefix`) and the streams of `layout`.
    pub fn new(prefix: impl Into<String>, layout: StreamLayout) -> Self {
        NodeStreamsDialect { channels: NodeClusterDialect::new(prefix), layout }
    }

    /// The streams.
    pub fn layout(&self) -> &StreamLayout {
        &self.layout
    }

    /// Whether `body` is appended to the stream (else published).
    fn durable(body: &Body) -> bool {
        matches!(
            body,
            Body::Broadcast { .. }
                | Body::SocketsJoin { .. }
                | Body::SocketsLeave { .. }
                | Body::DisconnectSockets { .. }
        )
    }

    fn decode_entry(frame: &[u8]) -> Result<Message, DecodeError> {
        let pairs = entry::decode(frame).ok_or_else(|| DecodeError::Invalid("not a stream entry frame".into()))?;
        let mut envelope = Map::new();
        for (field, value) in pairs {
            let text =
                |what| std::str::from_utf8(value).map_err(|_| DecodeError::Invalid(format!("{what} is not UTF-8")));
            match field {
                b"uid" => {
                    envelope.insert("uid", text("uid")?);
                }
                b"nsp" => {
                    envelope.insert("nsp", text("nsp")?);
                }
                b"type" => {
                    let t = text("type")?;
                    let code =
                        t.parse::<i64>().map_err(|_| DecodeError::Invalid(format!("type {t:?} is not a number")))?;
                    envelope.insert("type", code);
                }
                b"data" if !value.is_empty() => {
                    let data = if value.first() == Some(&b'{') {
                        json::parse(value)?
                    } else {
                        let raw = B64
                            .decode(value)
                            .map_err(|e| DecodeError::Invalid(format!("data is neither JSON nor base64: {e}")))?;
                        msgpack::decode(&raw)?
                    };
                    envelope.insert("data", data);
                }
                _ => {}
            }
        }
        message_from_value(Value::Map(envelope))
    }
}

impl Dialect for NodeStreamsDialect {
    fn name(&self) -> &'static str {
        "node-streams"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            heartbeats: true,
            all_rooms: false,
            identified_responses: true,
            room_channels: false,
            multi_room_joins: true,
            requests: true,
            client_counts: true,
            // a stream carries every namespace hashed to it: another namespace's entry
            // there is normal, not foreign
            namespace_channels: false,
            ordered_paths: false,
        }
    }

    fn new_node_id(&self) -> String {
        hex16()
    }

    fn node_channels(&self, nsp: &str, uid: &str) -> Vec<Channel> {
        vec![
            Channel::Exact(self.layout.key_for(nsp)),
            Channel::Exact(self.channels.main_channel(nsp)),
            Channel::Exact(self.channels.response_channel(nsp, uid)),
        ]
    }

    fn requester_channels(&self, nsp: &str, uid: &str) -> Vec<Channel> {
        vec![Channel::Exact(self.channels.response_channel(nsp, uid))]
    }

    fn listener_channels(&self, nsp: &str) -> Vec<Channel> {
        vec![Channel::Exact(self.layout.key_for(nsp))]
    }

    fn count_channel(&self, nsp: &str) -> String {
        self.channels.main_channel(nsp)
    }

    fn encode(&self, msg: &Message) -> Result<Outgoing, DialectError> {
        check_nsp(&msg.nsp)?;
        let (code, binary) = classify(self.name(), &msg.body)?;
        if Self::durable(&msg.body) {
            let data = has_data(&msg.body).then(|| {
                let mut e = Enc::new(if binary { Fmt::Msgpack } else { Fmt::Json });
                write_data(&mut e, &msg.body);
                let bytes = e.finish();
                if binary { B64.encode(bytes).into_bytes() } else { bytes.to_vec() }
            });
            let code = code.to_string();
            let uid = msg.uid.as_deref().unwrap_or(EMITTER_UID);
            let mut fields: Vec<(&[u8], &[u8])> =
                vec![(b"uid", uid.as_bytes()), (b"nsp", msg.nsp.as_bytes()), (b"type", code.as_bytes())];
            if let Some(data) = &data {
                fields.push((b"data", data));
            }
            return Ok(Outgoing { channel: self.layout.key_for(&msg.nsp), payload: entry::encode(fields) });
        }
        let channel = if msg.body.response_to().is_some() {
            self.channels.response_target(msg)?
        } else {
            self.channels.main_channel(&msg.nsp)
        };
        let mut e = Enc::new(Fmt::Msgpack);
        write_envelope(&mut e, code, msg);
        Ok(Outgoing { channel, payload: e.finish() })
    }

    fn decode(&self, channel: &str, payload: &[u8]) -> Result<Message, DialectError> {
        let decoded = if channel.ends_with('#') {
            super::parse_payload(payload).and_then(message_from_value)
        } else {
            Self::decode_entry(payload)
        };
        decoded.map_err(|source| DialectError::Decode { channel: channel.to_owned(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::StreamLayout;

    #[test]
    fn namespaces_hash_to_streams_like_node() {
        // hashCode values from @socket.io/redis-streams-adapter 0.3.1 (fixtures/node-streams/hash_codes.json)
        let three = StreamLayout::new("s", 3).expect("layout");
        assert_eq!(three.key_for("/"), "s-2"); // 47 % 3
        assert_eq!(three.key_for("/a-much-longer-namespace"), "s--2"); // -1998829316 % 3
        assert_eq!(three.key_for("/é"), "s-1"); // 1690 % 3, one UTF-16 unit
        assert_eq!(StreamLayout::new("s", 1).expect("layout").key_for("/x"), "s");
        assert!(three.contains("s--1") && three.contains("s-2") && three.contains("s-0"));
        assert!(!three.contains("s") && !three.contains("s-3") && !three.contains("s--0") && !three.contains("s-01"));
        assert!(!three.contains("s#/#"));
        assert!(StreamLayout::new("a#b", 1).is_err() && StreamLayout::new("a", 0).is_err());
    }
}
