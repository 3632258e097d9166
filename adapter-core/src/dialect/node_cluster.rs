//! The `socket.io-adapter` `ClusterAdapter` protocol, as spoken by the sharded Redis
//! adapter (`createShardedAdapter`, redis-adapter 8.2+) and by this toolkit's Kafka and
//! AMQP transports.
//!
//! Every message is an envelope `{type, data?, uid, nsp}`, JSON text unless it carries
//! binary (then MessagePack), with these types:
//!
//! | code | message | `data` |
//! |---|---|---|
//! | 1 | initial heartbeat | — |
//! | 2 | heartbeat | — |
//! | 3 | broadcast | `{packet, opts}` or `{packet, requestId, opts}` |
//! | 4 | sockets join | `{opts, rooms}` |
//! | 5 | sockets leave | `{opts, rooms}` |
//! | 6 | disconnect sockets | `{opts, close}` |
//! | 7 | fetch sockets | `{opts, requestId}` |
//! | 8 | fetch sockets response | `{requestId, sockets}` |
//! | 9 | server-side emit | `{packet}` or `{requestId, packet}` |
//! | 10 | server-side emit response | `{requestId, packet}` |
//! | 11 | broadcast client count | `{requestId, clientCount}` |
//! | 12 | broadcast ack | `{requestId, packet}` |
//! | 13 | adapter close | — |
//!
//! Channels for namespace `nsp` and prefix `p`: `p#nsp#` for everything, `p#nsp#uid#`
//! for responses to node `uid`, and in the dynamic subscription modes `p#nsp#room#`
//! for broadcasts to exactly one room.

use crate::dialect::{
    Capabilities, Dialect, EMITTER_UID, Enc, Fields, Fmt, Outgoing, check_nsp, event_of, hex16, parse_payload,
    write_sockets,
};
use crate::error::{DecodeError, DialectError};
use crate::message::{Body, Message};
use crate::transport::Channel;
use crate::types::{BroadcastOptions, EventPacket, Room};
use crate::value::Value;

mod ty {
    pub const INITIAL_HEARTBEAT: u64 = 1;
    pub const HEARTBEAT: u64 = 2;
    pub const BROADCAST: u64 = 3;
    pub const SOCKETS_JOIN: u64 = 4;
    pub const SOCKETS_LEAVE: u64 = 5;
    pub const DISCONNECT_SOCKETS: u64 = 6;
    pub const FETCH_SOCKETS: u64 = 7;
    pub const FETCH_SOCKETS_RESPONSE: u64 = 8;
    pub const SERVER_SIDE_EMIT: u64 = 9;
    pub const SERVER_SIDE_EMIT_RESPONSE: u64 = 10;
    pub const BROADCAST_CLIENT_COUNT: u64 = 11;
    pub const BROADCAST_ACK: u64 = 12;
    pub const ADAPTER_CLOSE: u64 = 13;
}

/// Which channels carry room broadcasts (`subscriptionMode` of the sharded adapter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SubscriptionMode {
    /// Two channels per namespace; every node receives every broadcast.
    Static,
    /// Plus one channel per public room: a broadcast to exactly one room only reaches
    /// the nodes that have members in it (the Node.js default). Rooms named like a
    /// Node.js socket id (20 characters) stay on the main channel.
    #[default]
    Dynamic,
    /// Like `Dynamic`, for every room including socket ids (many 1:1 messages).
    DynamicPrivate,
}

impl std::str::FromStr for SubscriptionMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "static" => Ok(SubscriptionMode::Static),
            "dynamic" => Ok(SubscriptionMode::Dynamic),
            "dynamic-private" => Ok(SubscriptionMode::DynamicPrivate),
            other => Err(format!("unknown subscription mode {other:?} (expected static, dynamic or dynamic-private)")),
        }
    }
}

/// The ClusterAdapter envelope dialect.
#[derive(Clone, Debug)]
pub struct NodeClusterDialect {
    prefix: String,
    mode: SubscriptionMode,
}

impl Default for NodeClusterDialect {
    fn default() -> Self {
        Self::new("socket.io")
    }
}

impl NodeClusterDialect {
    /// A dialect for channel prefix `prefix` (Node.js option `channelPrefix`), in the
    /// default `dynamic` subscription mode.
    pub fn new(prefix: impl Into<String>) -> Self {
        NodeClusterDialect { prefix: prefix.into(), mode: SubscriptionMode::default() }
    }

    /// Sets the subscription mode (default [`SubscriptionMode::Dynamic`]).
    pub fn with_subscription_mode(mut self, mode: SubscriptionMode) -> Self {
        self.mode = mode;
        self
    }

    /// The subscription mode.
    pub fn subscription_mode(&self) -> SubscriptionMode {
        self.mode
    }

    /// The channel prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `p#nsp#`
    pub fn main_channel(&self, nsp: &str) -> String {
        format!("{}#{}#", self.prefix, nsp)
    }

    /// `p#nsp#uid#`
    pub fn response_channel(&self, nsp: &str, uid: &str) -> String {
        format!("{}#{}#{}#", self.prefix, nsp, uid)
    }

    fn uses_room_channel(&self, room: &Room) -> bool {
        match self.mode {
            SubscriptionMode::Static => false,
            // looksLikeASocketId: a string of length 20
            SubscriptionMode::Dynamic => room.is_numeric() || room.as_str().chars().count() != 20,
            SubscriptionMode::DynamicPrivate => true,
        }
    }

    fn decode_inner(&self, payload: &[u8]) -> Result<Message, DecodeError> {
        message_from_value(parse_payload(payload)?)
    }

    /// `p#nsp#<requester>#` for a response.
    pub(crate) fn response_target(&self, msg: &Message) -> Result<String, DialectError> {
        let to = msg.reply_to.as_deref().ok_or(DialectError::InvalidName {
            what: "response target",
            value: String::new(),
            reason: "a response needs the requesting node's uid",
        })?;
        Ok(self.response_channel(&msg.nsp, to))
    }
}

/// A decoded envelope `{type, data?, uid, nsp}` as a [`Message`].
pub(crate) fn message_from_value(v: Value) -> Result<Message, DecodeError> {
    let mut f = Fields::from_value(v)?;
    let code = f.int("type")?;
    let uid = f.opt_string("uid")?;
    let nsp = f.string("nsp")?;
    let mut data = if f.has("data") { Some(f.map("data")?) } else { None };
    let mut data = || data.take().ok_or(DecodeError::MissingField("data"));
    let body = match u64::try_from(code).unwrap_or(0) {
        ty::INITIAL_HEARTBEAT => Body::InitialHeartbeat,
        ty::HEARTBEAT => Body::Heartbeat,
        ty::ADAPTER_CLOSE => Body::AdapterClose,
        ty::BROADCAST => {
            let mut d = data()?;
            let (packet, _) = d.packet("packet")?;
            let opts = d.opts("opts")?;
            match d.opt_string("requestId")? {
                Some(request_id) => Body::BroadcastWithAck { request_id, packet, opts },
                None => Body::Broadcast { packet, opts },
            }
        }
        ty::SOCKETS_JOIN => {
            let mut d = data()?;
            Body::SocketsJoin { opts: d.opts("opts")?, rooms: d.rooms("rooms")? }
        }
        ty::SOCKETS_LEAVE => {
            let mut d = data()?;
            Body::SocketsLeave { opts: d.opts("opts")?, rooms: d.rooms("rooms")? }
        }
        ty::DISCONNECT_SOCKETS => {
            let mut d = data()?;
            Body::DisconnectSockets { opts: d.opts("opts")?, close: d.bool_or("close", false)? }
        }
        ty::FETCH_SOCKETS => {
            let mut d = data()?;
            Body::FetchSockets { request_id: d.string("requestId")?, opts: d.opts("opts")? }
        }
        ty::FETCH_SOCKETS_RESPONSE => {
            let mut d = data()?;
            Body::FetchSocketsResponse { request_id: d.string("requestId")?, sockets: d.sockets("sockets")? }
        }
        ty::SERVER_SIDE_EMIT => {
            let mut d = data()?;
            Body::ServerSideEmit {
                request_id: d.opt_string("requestId")?,
                packet: event_of(d.array("packet")?, "packet")?,
            }
        }
        ty::SERVER_SIDE_EMIT_RESPONSE => {
            let mut d = data()?;
            Body::ServerSideEmitResponse {
                request_id: d.string("requestId")?,
                value: d.take("packet").unwrap_or_default(),
            }
        }
        ty::BROADCAST_CLIENT_COUNT => {
            let mut d = data()?;
            let request_id = d.string("requestId")?;
            let count = d.count("clientCount")?;
            Body::BroadcastClientCount { request_id, count }
        }
        ty::BROADCAST_ACK => {
            let mut d = data()?;
            Body::BroadcastAck { request_id: d.string("requestId")?, value: d.take("packet").unwrap_or_default() }
        }
        _ => return Err(DecodeError::UnknownType(code)),
    };
    Ok(Message::new(uid, nsp, body))
}

/// The type code of `body`, and whether its `data` goes out as MessagePack (a type
/// that may carry binary, carrying some).
pub(crate) fn classify(dialect: &'static str, body: &Body) -> Result<(u64, bool), DialectError> {
    Ok(match body {
        Body::InitialHeartbeat => (ty::INITIAL_HEARTBEAT, false),
        Body::Heartbeat => (ty::HEARTBEAT, false),
        Body::AdapterClose => (ty::ADAPTER_CLOSE, false),
        Body::Broadcast { packet, .. } | Body::BroadcastWithAck { packet, .. } => {
            (ty::BROADCAST, packet.args.iter().any(|a| a.has_binary()))
        }
        Body::SocketsJoin { .. } => (ty::SOCKETS_JOIN, false),
        Body::SocketsLeave { .. } => (ty::SOCKETS_LEAVE, false),
        Body::DisconnectSockets { .. } => (ty::DISCONNECT_SOCKETS, false),
        Body::FetchSockets { .. } => (ty::FETCH_SOCKETS, false),
        Body::FetchSocketsResponse { sockets, .. } => {
            (ty::FETCH_SOCKETS_RESPONSE, sockets.iter().any(|s| s.handshake.has_binary() || s.data.has_binary()))
        }
        Body::ServerSideEmit { packet, .. } => (ty::SERVER_SIDE_EMIT, packet.args.iter().any(|a| a.has_binary())),
        Body::ServerSideEmitResponse { value, .. } => (ty::SERVER_SIDE_EMIT_RESPONSE, value.has_binary()),
        Body::BroadcastClientCount { .. } => (ty::BROADCAST_CLIENT_COUNT, false),
        Body::BroadcastAck { value, .. } => (ty::BROADCAST_ACK, value.has_binary()),
        Body::AllRooms { .. } | Body::AllRoomsResponse { .. } => {
            return Err(DialectError::Unsupported { dialect, operation: "all rooms requests" });
        }
        Body::LegacySockets { .. }
        | Body::LegacySocketOp { .. }
        | Body::LegacySocketsResponse { .. }
        | Body::LegacyAck { .. } => {
            return Err(DialectError::Unsupported { dialect, operation: "legacy single-socket requests" });
        }
    })
}

/// Whether `body` carries `data` (every body but heartbeats and adapter close).
pub(crate) fn has_data(body: &Body) -> bool {
    !matches!(body, Body::InitialHeartbeat | Body::Heartbeat | Body::AdapterClose)
}

/// The whole envelope `{type, data?, uid, nsp}` (key order as Node.js builds it).
pub(crate) fn write_envelope(e: &mut Enc, code: u64, msg: &Message) {
    let has_data = has_data(&msg.body);
    e.map(if has_data { 4 } else { 3 });
    e.key("type").uint(code);
    if has_data {
        e.key("data");
        write_data(e, &msg.body);
    }
    e.key("uid").str(msg.uid.as_deref().unwrap_or(EMITTER_UID));
    e.key("nsp").str(&msg.nsp);
    e.end();
}

/// `{type: 2, data: [event, ...args]}` (the ClusterAdapter never includes `nsp`)
fn write_packet(e: &mut Enc, packet: &EventPacket) {
    e.map(if packet.id.is_some() { 3 } else { 2 });
    e.key("type").uint(2);
    e.key("data").event_data(packet);
    if let Some(id) = packet.id {
        e.key("id").uint(id);
    }
    e.end();
}

fn write_opts(e: &mut Enc, opts: &BroadcastOptions) {
    e.map(3);
    e.key("rooms").rooms(&opts.rooms);
    e.key("except").rooms(&opts.except);
    e.key("flags").flags(&opts.flags);
    e.end();
}

impl Dialect for NodeClusterDialect {
    fn name(&self) -> &'static str {
        "node-cluster"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            heartbeats: true,
            all_rooms: false,
            identified_responses: true,
            room_channels: self.mode != SubscriptionMode::Static,
            multi_room_joins: true,
            requests: true,
            client_counts: true,
            namespace_channels: true,
            ordered_paths: true,
        }
    }

    fn new_node_id(&self) -> String {
        hex16()
    }

    fn node_channels(&self, nsp: &str, uid: &str) -> Vec<Channel> {
        vec![Channel::Exact(self.main_channel(nsp)), Channel::Exact(self.response_channel(nsp, uid))]
    }

    fn requester_channels(&self, nsp: &str, uid: &str) -> Vec<Channel> {
        vec![Channel::Exact(self.response_channel(nsp, uid))]
    }

    fn room_channel(&self, nsp: &str, room: &Room) -> Option<String> {
        self.uses_room_channel(room).then(|| format!("{}#{}#{}#", self.prefix, nsp, room))
    }

    fn listener_channels(&self, nsp: &str) -> Vec<Channel> {
        vec![Channel::Exact(self.main_channel(nsp))]
    }

    fn count_channel(&self, nsp: &str) -> String {
        self.main_channel(nsp)
    }

    fn all_servers_channel(&self, nsp: &str) -> Option<String> {
        (self.mode != SubscriptionMode::Static).then(|| self.main_channel(nsp))
    }

    fn encode(&self, msg: &Message) -> Result<Outgoing, DialectError> {
        check_nsp(&msg.nsp)?;
        let (code, binary) = classify(self.name(), &msg.body)?;
        let channel = if msg.body.response_to().is_some() {
            self.response_target(msg)?
        } else {
            match &msg.body {
                Body::Broadcast { opts, .. } => match opts.rooms.as_slice() {
                    [room] => self.room_channel(&msg.nsp, room).unwrap_or_else(|| self.main_channel(&msg.nsp)),
                    _ => self.main_channel(&msg.nsp),
                },
                _ => self.main_channel(&msg.nsp),
            }
        };
        let mut e = Enc::new(if binary { Fmt::Msgpack } else { Fmt::Json });
        write_envelope(&mut e, code, msg);
        Ok(Outgoing { channel, payload: e.finish() })
    }

    fn decode(&self, channel: &str, payload: &[u8]) -> Result<Message, DialectError> {
        self.decode_inner(payload).map_err(|source| DialectError::Decode { channel: channel.to_owned(), source })
    }
}

/// The `data` of every body that has one.
pub(crate) fn write_data(e: &mut Enc, body: &Body) {
    match body {
        Body::Broadcast { packet, opts } => {
            e.map(2);
            e.key("packet");
            write_packet(e, packet);
            e.key("opts");
            write_opts(e, opts);
            e.end();
        }
        Body::BroadcastWithAck { request_id, packet, opts } => {
            e.map(3);
            e.key("packet");
            write_packet(e, packet);
            e.key("requestId").str(request_id);
            e.key("opts");
            write_opts(e, opts);
            e.end();
        }
        Body::SocketsJoin { opts, rooms } | Body::SocketsLeave { opts, rooms } => {
            e.map(2);
            e.key("opts");
            write_opts(e, opts);
            e.key("rooms").rooms(rooms);
            e.end();
        }
        Body::DisconnectSockets { opts, close } => {
            e.map(2);
            e.key("opts");
            write_opts(e, opts);
            e.key("close").bool(*close);
            e.end();
        }
        Body::FetchSockets { request_id, opts } => {
            e.map(2);
            e.key("opts");
            write_opts(e, opts);
            e.key("requestId").str(request_id);
            e.end();
        }
        Body::FetchSocketsResponse { request_id, sockets } => {
            e.map(2);
            e.key("requestId").str(request_id);
            e.key("sockets");
            write_sockets(e, sockets);
            e.end();
        }
        Body::ServerSideEmit { request_id, packet } => {
            e.map(if request_id.is_some() { 2 } else { 1 });
            if let Some(id) = request_id {
                e.key("requestId").str(id);
            }
            e.key("packet").event_data(packet);
            e.end();
        }
        Body::ServerSideEmitResponse { request_id, value } | Body::BroadcastAck { request_id, value } => {
            e.map(2);
            e.key("requestId").str(request_id);
            e.key("packet").value(value);
            e.end();
        }
        Body::BroadcastClientCount { request_id, count } => {
            e.map(2);
            e.key("requestId").str(request_id);
            e.key("clientCount").uint(*count);
            e.end();
        }
        _ => unreachable_data(e),
    }
}

/// Every body without data was excluded above; keep the output well-formed regardless.
fn unreachable_data(e: &mut Enc) {
    e.map(0);
    e.end();
}
