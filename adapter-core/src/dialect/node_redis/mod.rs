//! The classic `@socket.io/redis-adapter` 8.x protocol (`createAdapter`), also spoken by
//! `@socket.io/redis-emitter` 5.x.
//!
//! Channels for namespace `nsp` and prefix `key` (default `socket.io`):
//!
//! | purpose | channel |
//! |---|---|
//! | broadcast to all or several rooms | `key#nsp#` |
//! | broadcast to exactly one room `R` | `key#nsp#R#` |
//! | receive broadcasts | pattern `key#nsp#*` |
//! | requests (subscribers = servers) | `key-request#nsp#` |
//! | responses, shared | `key-response#nsp#` |
//! | responses for node `uid` | `key-response#nsp#uid#` |
//!
//! Broadcasts are a MessagePack array `[uid, packet, opts]`; broadcast-with-ack requests
//! (type 7) and ack responses (type 9) are MessagePack maps; every other request and
//! response is JSON. Responses do not say who sent them: requesters count them against
//! the number of subscribers of the request channel (`PUBSUB NUMSUB`).

mod decode;

use crate::dialect::{Capabilities, Dialect, EMITTER_UID, Enc, Fmt, Outgoing, check_nsp, uid2, write_sockets};
use crate::error::{DecodeError, DialectError};
use crate::message::{Body, LegacyOp, Message};
use crate::transport::Channel;
use crate::types::{BroadcastOptions, EventPacket};

/// Request type codes of the classic protocol.
mod req {
    pub const SOCKETS: i64 = 0;
    pub const ALL_ROOMS: i64 = 1;
    pub const REMOTE_JOIN: i64 = 2;
    pub const REMOTE_LEAVE: i64 = 3;
    pub const REMOTE_DISCONNECT: i64 = 4;
    pub const REMOTE_FETCH: i64 = 5;
    pub const SERVER_SIDE_EMIT: i64 = 6;
    pub const BROADCAST: i64 = 7;
    pub const BROADCAST_CLIENT_COUNT: i64 = 8;
    pub const BROADCAST_ACK: i64 = 9;
}

/// The classic Node.js Redis adapter dialect.
#[derive(Clone, Debug)]
pub struct NodeRedisDialect {
    prefix: String,
    specific_response_channel: bool,
}

impl Default for NodeRedisDialect {
    fn default() -> Self {
        Self::new("socket.io")
    }
}

impl NodeRedisDialect {
    /// A dialect for channel prefix `prefix` (Node.js option `key`, default `socket.io`).
    pub fn new(prefix: impl Into<String>) -> Self {
        NodeRedisDialect { prefix: prefix.into(), specific_response_channel: false }
    }

    /// Publish responses on the requester's own channel `key-response#nsp#uid#` instead of
    /// the shared one (Node.js option `publishOnSpecificResponseChannel`, default
    /// `false`). Responses to server-side emits always use the shared channel, as in
    /// Node.js. Responses arriving on either channel are always accepted.
    pub fn with_specific_response_channel(mut self, enabled: bool) -> Self {
        self.specific_response_channel = enabled;
        self
    }

    /// The channel prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `key#nsp#`
    pub fn broadcast_channel(&self, nsp: &str) -> String {
        format!("{}#{}#", self.prefix, nsp)
    }

    /// The pattern of every broadcast of `nsp` (`key#nsp#*`), with the glob
    /// metacharacters of the prefix and namespace escaped: a namespace `/a*` or a prefix
    /// `p?` never subscribes a node to `/abc`'s or `px`'s traffic (the Node.js adapter
    /// does not escape; its pattern then matches more, which changes nothing on the wire).
    pub fn broadcast_pattern(&self, nsp: &str) -> String {
        format!("{}*", crate::transport::glob_escape(&self.broadcast_channel(nsp)))
    }

    /// `key-request#nsp#`
    pub fn request_channel(&self, nsp: &str) -> String {
        format!("{}-request#{}#", self.prefix, nsp)
    }

    /// `key-response#nsp#`
    pub fn response_channel(&self, nsp: &str) -> String {
        format!("{}-response#{}#", self.prefix, nsp)
    }

    /// `key-response#nsp#uid#`
    pub fn specific_response_channel(&self, nsp: &str, uid: &str) -> String {
        format!("{}-response#{}#{}#", self.prefix, nsp, uid)
    }

    fn response_target(&self, msg: &Message) -> String {
        match (&msg.reply_to, self.specific_response_channel) {
            (Some(uid), true) => self.specific_response_channel(&msg.nsp, uid),
            _ => self.response_channel(&msg.nsp),
        }
    }

    fn encode_broadcast(&self, msg: &Message, packet: &EventPacket, opts: &BroadcastOptions) -> Outgoing {
        let emitter = msg.uid.is_none();
        let mut e = Enc::new(Fmt::Msgpack);
        e.array(3);
        e.str(msg.uid.as_deref().unwrap_or(EMITTER_UID));
        write_packet(&mut e, packet, &msg.nsp);
        e.map(3);
        e.key("rooms").rooms(&opts.rooms);
        if emitter {
            // @socket.io/redis-emitter builds {rooms, flags, except}
            e.key("flags").flags(&opts.flags);
            e.key("except").rooms(&opts.except);
        } else {
            e.key("except").rooms(&opts.except);
            e.key("flags").flags(&opts.flags);
        }
        e.end();
        e.end();
        let channel = match opts.rooms.as_slice() {
            [room] => format!("{}#{}#{}#", self.prefix, msg.nsp, room),
            _ => self.broadcast_channel(&msg.nsp),
        };
        Outgoing { channel, payload: e.finish() }
    }
}

/// `{type: 2, data: [event, ...args], (id,) nsp}`
fn write_packet(e: &mut Enc, packet: &EventPacket, nsp: &str) {
    e.map(if packet.id.is_some() { 4 } else { 3 });
    e.key("type").uint(2);
    e.key("data").event_data(packet);
    if let Some(id) = packet.id {
        e.key("id").uint(id);
    }
    e.key("nsp").str(nsp);
    e.end();
}

/// `{rooms, except}` (requests of types 2-5 carry no flags)
fn write_opts_no_flags(e: &mut Enc, opts: &BroadcastOptions) {
    e.map(2);
    e.key("rooms").rooms(&opts.rooms);
    e.key("except").rooms(&opts.except);
    e.end();
}

/// Extracts `nsp` from `{prefix}{marker}{nsp}#...`.
fn nsp_after<'c>(channel: &'c str, head: &str) -> Option<&'c str> {
    let rest = channel.strip_prefix(head)?;
    let end = rest.find('#')?;
    Some(&rest[..end])
}

impl Dialect for NodeRedisDialect {
    fn name(&self) -> &'static str {
        "node-redis"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            heartbeats: false,
            all_rooms: true,
            identified_responses: false,
            room_channels: false,
            multi_room_joins: true,
            requests: true,
            client_counts: true,
            namespace_channels: true,
            ordered_paths: true,
        }
    }

    fn new_node_id(&self) -> String {
        uid2(6)
    }

    fn node_channels(&self, nsp: &str, uid: &str) -> Vec<Channel> {
        vec![
            Channel::Pattern(self.broadcast_pattern(nsp)),
            Channel::Exact(self.request_channel(nsp)),
            Channel::Exact(self.response_channel(nsp)),
            Channel::Exact(self.specific_response_channel(nsp, uid)),
        ]
    }

    fn requester_channels(&self, nsp: &str, uid: &str) -> Vec<Channel> {
        vec![Channel::Exact(self.response_channel(nsp)), Channel::Exact(self.specific_response_channel(nsp, uid))]
    }

    fn listener_channels(&self, nsp: &str) -> Vec<Channel> {
        vec![Channel::Pattern(self.broadcast_pattern(nsp))]
    }

    fn count_channel(&self, nsp: &str) -> String {
        self.request_channel(nsp)
    }

    fn broadcast_room<'c>(&self, nsp: &str, channel: &'c str) -> Option<&'c str> {
        let rest = channel.strip_prefix(self.prefix.as_str())?.strip_prefix('#')?.strip_prefix(nsp)?;
        let room = rest.strip_prefix('#')?;
        // Node.js: room = channel.slice(prefix.length, -1)
        room.strip_suffix('#').filter(|r| !r.is_empty())
    }

    fn encode(&self, msg: &Message) -> Result<Outgoing, DialectError> {
        check_nsp(&msg.nsp)?;
        let json = |build: &dyn Fn(&mut Enc)| {
            let mut e = Enc::new(Fmt::Json);
            build(&mut e);
            e.finish()
        };
        let uid = msg.uid.as_deref();
        let request = |payload| Outgoing { channel: self.request_channel(&msg.nsp), payload };
        let response = |payload| Outgoing { channel: self.response_target(msg), payload };
        Ok(match &msg.body {
            Body::Broadcast { packet, opts } => self.encode_broadcast(msg, packet, opts),
            Body::BroadcastWithAck { request_id, packet, opts } => {
                let mut e = Enc::new(Fmt::Msgpack);
                e.map(5);
                e.key("uid").str(uid.unwrap_or(EMITTER_UID));
                e.key("requestId").str(request_id);
                e.key("type").uint(req::BROADCAST as u64);
                e.key("packet");
                write_packet(&mut e, packet, &msg.nsp);
                e.key("opts").map(3);
                e.key("rooms").rooms(&opts.rooms);
                e.key("except").rooms(&opts.except);
                e.key("flags").flags(&opts.flags);
                e.end();
                e.end();
                request(e.finish())
            }
            Body::SocketsJoin { opts, rooms } | Body::SocketsLeave { opts, rooms } => {
                let ty =
                    if matches!(msg.body, Body::SocketsJoin { .. }) { req::REMOTE_JOIN } else { req::REMOTE_LEAVE };
                request(json(&|e| {
                    e.map(0);
                    if let Some(uid) = uid {
                        e.key("uid").str(uid);
                    }
                    e.key("type").uint(ty as u64);
                    e.key("opts");
                    write_opts_no_flags(e, opts);
                    e.key("rooms").rooms(rooms);
                    e.end();
                }))
            }
            Body::DisconnectSockets { opts, close } => request(json(&|e| {
                e.map(0);
                if let Some(uid) = uid {
                    e.key("uid").str(uid);
                }
                e.key("type").uint(req::REMOTE_DISCONNECT as u64);
                e.key("opts");
                write_opts_no_flags(e, opts);
                e.key("close").bool(*close);
                e.end();
            })),
            Body::FetchSockets { request_id, opts } => request(json(&|e| {
                e.map(0);
                e.key("uid").str(uid.unwrap_or(EMITTER_UID));
                e.key("requestId").str(request_id);
                e.key("type").uint(req::REMOTE_FETCH as u64);
                e.key("opts");
                write_opts_no_flags(e, opts);
                e.end();
            })),
            Body::AllRooms { request_id } => request(json(&|e| {
                e.map(0);
                e.key("uid").str(uid.unwrap_or(EMITTER_UID));
                e.key("requestId").str(request_id);
                e.key("type").uint(req::ALL_ROOMS as u64);
                e.end();
            })),
            Body::ServerSideEmit { request_id, packet } => request(json(&|e| {
                e.map(0);
                e.key("uid").str(uid.unwrap_or(EMITTER_UID));
                if let Some(id) = request_id {
                    e.key("requestId").str(id);
                }
                e.key("type").uint(req::SERVER_SIDE_EMIT as u64);
                e.key("data").event_data(packet);
                e.end();
            })),
            Body::LegacySockets { request_id, rooms } => request(json(&|e| {
                e.map(0);
                e.key("uid").str(uid.unwrap_or(EMITTER_UID));
                e.key("requestId").str(request_id);
                e.key("type").uint(req::SOCKETS as u64);
                e.key("rooms").rooms(rooms);
                e.end();
            })),
            Body::LegacySocketOp { request_id, sid, op } => request(json(&|e| {
                e.map(0);
                e.key("uid").str(uid.unwrap_or(EMITTER_UID));
                e.key("requestId").str(request_id);
                match op {
                    LegacyOp::Join(room) => {
                        e.key("type").uint(req::REMOTE_JOIN as u64);
                        e.key("sid").str(sid);
                        e.key("room").value(&room.to_value());
                    }
                    LegacyOp::Leave(room) => {
                        e.key("type").uint(req::REMOTE_LEAVE as u64);
                        e.key("sid").str(sid);
                        e.key("room").value(&room.to_value());
                    }
                    LegacyOp::Disconnect { close } => {
                        e.key("type").uint(req::REMOTE_DISCONNECT as u64);
                        e.key("sid").str(sid);
                        e.key("close").bool(*close);
                    }
                }
                e.end();
            })),
            Body::FetchSocketsResponse { request_id, sockets } => response(json(&|e| {
                e.map(0);
                e.key("requestId").str(request_id);
                e.key("sockets");
                write_sockets(e, sockets);
                e.end();
            })),
            Body::AllRoomsResponse { request_id, rooms } => response(json(&|e| {
                e.map(0);
                e.key("requestId").str(request_id);
                e.key("rooms").rooms(rooms);
                e.end();
            })),
            Body::ServerSideEmitResponse { request_id, value } => Outgoing {
                // always the shared channel, whatever publishOnSpecificResponseChannel says
                channel: self.response_channel(&msg.nsp),
                payload: json(&|e| {
                    e.map(0);
                    e.key("type").uint(req::SERVER_SIDE_EMIT as u64);
                    e.key("requestId").str(request_id);
                    e.key("data").value(value);
                    e.end();
                }),
            },
            Body::BroadcastClientCount { request_id, count } => response(json(&|e| {
                e.map(0);
                e.key("type").uint(req::BROADCAST_CLIENT_COUNT as u64);
                e.key("requestId").str(request_id);
                e.key("clientCount").uint(*count);
                e.end();
            })),
            Body::BroadcastAck { request_id, value } => {
                let mut e = Enc::new(Fmt::Msgpack);
                e.map(3);
                e.key("type").uint(req::BROADCAST_ACK as u64);
                e.key("requestId").str(request_id);
                e.key("packet").value(value);
                e.end();
                response(e.finish())
            }
            Body::LegacySocketsResponse { request_id, sockets } => response(json(&|e| {
                e.map(0);
                e.key("requestId").str(request_id);
                e.key("sockets").array(sockets.len());
                for s in sockets {
                    e.str(s);
                }
                e.end();
                e.end();
            })),
            Body::LegacyAck { request_id } => response(json(&|e| {
                e.map(0);
                e.key("requestId").str(request_id);
                e.end();
            })),
            Body::InitialHeartbeat | Body::Heartbeat | Body::AdapterClose => {
                return Err(DialectError::Unsupported { dialect: self.name(), operation: "heartbeats" });
            }
        })
    }

    fn decode(&self, channel: &str, payload: &[u8]) -> Result<Message, DialectError> {
        let err = |source| DialectError::Decode { channel: channel.to_owned(), source };
        let request_head = format!("{}-request#", self.prefix);
        let response_head = format!("{}-response#", self.prefix);
        if let Some(nsp) = nsp_after(channel, &request_head) {
            return self.decode_request(nsp.to_owned(), payload).map_err(err);
        }
        if let Some(nsp) = nsp_after(channel, &response_head) {
            return self.decode_response(nsp.to_owned(), payload).map_err(err);
        }
        if channel.starts_with(self.prefix.as_str()) && channel[self.prefix.len()..].starts_with('#') {
            return self.decode_broadcast(channel, payload).map_err(err);
        }
        Err(err(DecodeError::Invalid(format!("channel is not part of the {} protocol", self.name()))))
    }
}
