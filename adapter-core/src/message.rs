//! Semantic cluster messages: what nodes tell each other, independent of the wire format.
//!
//! A [`Dialect`](crate::dialect::Dialect) turns a [`Message`] into `(channel, bytes)` pairs and
//! back. The cluster adapter only ever deals with these types.

use crate::types::{BroadcastOptions, EventPacket, NodeId, Room, SocketId, SocketInfo};
use crate::value::Value;

/// A request id (6 characters in the classic Redis protocol, 16 hex digits in the
/// ClusterAdapter protocol; any string is accepted).
pub type RequestId = String;

/// One message between nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// The sender; `None` for an emitter that does not identify itself.
    pub uid: Option<NodeId>,
    /// The namespace.
    pub nsp: String,
    /// For responses: the node that sent the request (selects a node-specific channel).
    pub reply_to: Option<NodeId>,
    /// What the message says.
    pub body: Body,
}

impl Message {
    /// A message from `uid` in namespace `nsp`.
    pub fn new(uid: Option<NodeId>, nsp: impl Into<String>, body: Body) -> Self {
        Message { uid, nsp: nsp.into(), reply_to: None, body }
    }

    /// Addresses a response to the requesting node.
    pub fn reply_to(mut self, requester: Option<NodeId>) -> Self {
        self.reply_to = requester;
        self
    }
}

/// The content of a cluster message.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Body {
    /// A node joined and asks every node to announce itself.
    InitialHeartbeat,
    /// A node is alive.
    Heartbeat,
    /// A node is leaving.
    AdapterClose,
    /// Deliver an event to the matching sockets.
    Broadcast {
        /// The event.
        packet: EventPacket,
        /// The target.
        opts: BroadcastOptions,
    },
    /// Deliver an event and send back the client count and each client's ack.
    BroadcastWithAck {
        /// Correlates the responses.
        request_id: RequestId,
        /// The event.
        packet: EventPacket,
        /// The target.
        opts: BroadcastOptions,
    },
    /// Make the matching sockets join rooms.
    SocketsJoin {
        /// The target.
        opts: BroadcastOptions,
        /// Rooms to join.
        rooms: Vec<Room>,
    },
    /// Make the matching sockets leave rooms.
    SocketsLeave {
        /// The target.
        opts: BroadcastOptions,
        /// Rooms to leave.
        rooms: Vec<Room>,
    },
    /// Disconnect the matching sockets.
    DisconnectSockets {
        /// The target.
        opts: BroadcastOptions,
        /// Also close the underlying connection.
        close: bool,
    },
    /// Describe the matching sockets.
    FetchSockets {
        /// Correlates the responses.
        request_id: RequestId,
        /// The target.
        opts: BroadcastOptions,
    },
    /// List every room.
    AllRooms {
        /// Correlates the responses.
        request_id: RequestId,
    },
    /// An event for the servers themselves (`io.serverSideEmit`).
    ServerSideEmit {
        /// Present when the sender waits for acknowledgements.
        request_id: Option<RequestId>,
        /// The event.
        packet: EventPacket,
    },
    /// Classic Redis protocol, legacy (adapter ≤ 7): list socket ids in rooms.
    LegacySockets {
        /// Correlates the responses.
        request_id: RequestId,
        /// Rooms (empty = all).
        rooms: Vec<Room>,
    },
    /// Classic Redis protocol, legacy: one socket joins, leaves or is disconnected.
    LegacySocketOp {
        /// Correlates the response.
        request_id: RequestId,
        /// The socket.
        sid: SocketId,
        /// What to do.
        op: LegacyOp,
    },
    /// Answer to [`Body::FetchSockets`].
    FetchSocketsResponse {
        /// The request.
        request_id: RequestId,
        /// The responder's matching sockets.
        sockets: Vec<SocketInfo>,
    },
    /// Answer to [`Body::AllRooms`].
    AllRoomsResponse {
        /// The request.
        request_id: RequestId,
        /// The responder's rooms.
        rooms: Vec<Room>,
    },
    /// Answer to [`Body::ServerSideEmit`] with a request id.
    ServerSideEmitResponse {
        /// The request.
        request_id: RequestId,
        /// The first argument of the responder's acknowledgement.
        value: Value,
    },
    /// First answer to [`Body::BroadcastWithAck`]: how many clients will ack.
    BroadcastClientCount {
        /// The request.
        request_id: RequestId,
        /// Number of matching clients on the responder.
        count: u64,
    },
    /// One client's ack to [`Body::BroadcastWithAck`].
    BroadcastAck {
        /// The request.
        request_id: RequestId,
        /// The first argument of the client's ack.
        value: Value,
    },
    /// Answer to [`Body::LegacySockets`].
    LegacySocketsResponse {
        /// The request.
        request_id: RequestId,
        /// Socket ids.
        sockets: Vec<SocketId>,
    },
    /// Answer to [`Body::LegacySocketOp`].
    LegacyAck {
        /// The request.
        request_id: RequestId,
    },
}

/// What a legacy single-socket request does.
#[derive(Clone, Debug, PartialEq)]
pub enum LegacyOp {
    /// Join a room.
    Join(Room),
    /// Leave a room.
    Leave(Room),
    /// Disconnect.
    Disconnect {
        /// Also close the connection.
        close: bool,
    },
}

impl Body {
    /// The request id a response answers, if this is a response.
    pub fn response_to(&self) -> Option<&str> {
        match self {
            Body::FetchSocketsResponse { request_id, .. }
            | Body::AllRoomsResponse { request_id, .. }
            | Body::ServerSideEmitResponse { request_id, .. }
            | Body::BroadcastClientCount { request_id, .. }
            | Body::BroadcastAck { request_id, .. }
            | Body::LegacySocketsResponse { request_id, .. }
            | Body::LegacyAck { request_id } => Some(request_id),
            _ => None,
        }
    }

    /// A short name, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Body::InitialHeartbeat => "initial heartbeat",
            Body::Heartbeat => "heartbeat",
            Body::AdapterClose => "adapter close",
            Body::Broadcast { .. } => "broadcast",
            Body::BroadcastWithAck { .. } => "broadcast with ack",
            Body::SocketsJoin { .. } => "sockets join",
            Body::SocketsLeave { .. } => "sockets leave",
            Body::DisconnectSockets { .. } => "disconnect sockets",
            Body::FetchSockets { .. } => "fetch sockets",
            Body::AllRooms { .. } => "all rooms",
            Body::ServerSideEmit { .. } => "server-side emit",
            Body::LegacySockets { .. } => "legacy sockets",
            Body::LegacySocketOp { .. } => "legacy socket operation",
            Body::FetchSocketsResponse { .. } => "fetch sockets response",
            Body::AllRoomsResponse { .. } => "all rooms response",
            Body::ServerSideEmitResponse { .. } => "server-side emit response",
            Body::BroadcastClientCount { .. } => "broadcast client count",
            Body::BroadcastAck { .. } => "broadcast ack",
            Body::LegacySocketsResponse { .. } => "legacy sockets response",
            Body::LegacyAck { .. } => "legacy ack",
        }
    }
}
