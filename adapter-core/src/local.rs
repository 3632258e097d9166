//! The local side of a node.
//!
//! - [`LocalSockets`] is what a Socket.IO server implements so that the adapter can
//!   deliver to the sockets it holds.
//! - [`LocalNode`] is the local half of every cluster operation, what the cluster
//!   engine calls when a request arrives from another node.
//! - [`IndexedNode`] implements [`LocalNode`] with a [`RoomIndex`] over any
//!   [`LocalSockets`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use tokio::sync::oneshot;

use crate::rooms::{RoomChanges, RoomIndex};
use crate::types::{BroadcastFlags, BroadcastOptions, EventPacket, Room, SocketId, SocketInfo};
use crate::value::Value;

/// Why a client did not acknowledge.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// The client did not answer in time.
    #[error("the client did not acknowledge in time")]
    Timeout,
    /// The socket disconnected (or was gone) before answering.
    #[error("the socket disconnected before acknowledging")]
    Disconnected,
    /// Anything else the server reports.
    #[error("acknowledgement failed: {0}")]
    Other(String),
}

/// One local client's answer to an event sent with an ack request. The value is the
/// first argument the client passed to its callback (what travels between nodes).
pub type LocalAck = (SocketId, Result<Value, AckError>);

/// The acks of local clients, as the server produces them.
pub type LocalAckStream = Pin<Box<dyn Stream<Item = LocalAck> + Send>>;

/// The handle with which a server-side event listener answers an acknowledgement
/// request from another node (`io.serverSideEmitWithAck`). Dropping it unanswered
/// means no answer from this node (as in Node.js).
#[derive(Debug)]
pub struct ServerSideAck(oneshot::Sender<Value>);

impl ServerSideAck {
    pub(crate) fn new() -> (Self, oneshot::Receiver<Value>) {
        let (tx, rx) = oneshot::channel();
        (ServerSideAck(tx), rx)
    }

    /// Sends the answer (the first argument of the Node.js callback).
    pub fn send(self, value: impl Into<Value>) {
        let _ = self.0.send(value.into());
    }
}

/// The rest of a broadcast that some local sockets could not take at once (their send
/// buffers were full). The engine awaits it before it handles the next message from the
/// cluster, so that a burst slows the node down (back-pressure) instead of being dropped.
/// It resolves to the number of deliveries finally dropped under the server's
/// slow-socket policy, which the engine counts ([`Stats::dropped_deliveries`](crate::Stats)).
pub struct PendingDelivery(Pin<Box<dyn Future<Output = u64> + Send>>);

impl PendingDelivery {
    /// The rest of a delivery, resolving to how many deliveries it dropped.
    pub fn new(fut: impl Future<Output = u64> + Send + 'static) -> Self {
        PendingDelivery(Box::pin(fut))
    }

    /// A delivery that is over, having dropped `dropped` deliveries.
    pub fn dropped(dropped: u64) -> Self {
        PendingDelivery::new(std::future::ready(dropped))
    }
}

impl fmt::Debug for PendingDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PendingDelivery")
    }
}

impl Future for PendingDelivery {
    type Output = u64;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        self.0.as_mut().poll(cx)
    }
}

/// A socket's details for `fetch_sockets`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SocketDetails {
    /// The handshake (see [`Handshake`](crate::types::Handshake)).
    pub handshake: Value,
    /// The socket's application data.
    pub data: Value,
}

/// Implemented by the Socket.IO server: how the adapter reaches local sockets.
///
/// Calls are synchronous and must not block: queue the packets and return.
pub trait LocalSockets: Send + Sync + 'static {
    /// Sends an event to these sockets.
    fn send(&self, sids: &[SocketId], packet: &EventPacket, flags: &BroadcastFlags);

    /// Sends an event to these sockets, dropping it for sockets not ready to receive.
    fn send_volatile(&self, sids: &[SocketId], packet: &EventPacket, flags: &BroadcastFlags);

    /// Sends an event that asks each socket for an acknowledgement; the stream yields
    /// one item per socket (an ack, or why there is none) and ends after `timeout`.
    fn send_with_ack(
        &self,
        sids: &[SocketId],
        packet: &EventPacket,
        flags: &BroadcastFlags,
        timeout: Duration,
    ) -> LocalAckStream;

    /// Disconnects these sockets (`close`: also close the underlying connection).
    /// The server then calls [`Adapter::del_all`](crate::Adapter::del_all) for each.
    fn disconnect(&self, sids: &[SocketId], close: bool);

    /// Describes a socket for `fetch_sockets`, `None` if it is gone.
    fn describe(&self, sid: &str) -> Option<SocketDetails>;

    /// Delivers an event sent with `serverSideEmit` by another node. With `ack`, the
    /// sender waits for an answer. The default ignores the event (and never answers).
    fn server_side_emit(&self, packet: EventPacket, ack: Option<ServerSideAck>) {
        let _ = (packet, ack);
    }
}

/// The local half of every cluster operation, called when a request arrives from
/// another node. Membership changes report the rooms they created or deleted, for
/// transports that subscribe per room.
pub trait LocalNode: Send + Sync + 'static {
    /// Delivers a broadcast to the matching local sockets. Returns the rest of the
    /// delivery when some sockets could not take it at once (see [`PendingDelivery`]).
    fn broadcast(&self, packet: &EventPacket, opts: &BroadcastOptions) -> Option<PendingDelivery>;

    /// Delivers a broadcast that asks for acks; returns the acks and how many
    /// clients were asked.
    fn broadcast_with_ack(
        &self,
        packet: &EventPacket,
        opts: &BroadcastOptions,
        timeout: Duration,
    ) -> (LocalAckStream, u64);

    /// Makes the matching local sockets join `rooms`.
    fn add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) -> RoomChanges;

    /// Makes the matching local sockets leave `rooms`.
    fn del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) -> RoomChanges;

    /// Disconnects the matching local sockets.
    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool);

    /// Describes the matching local sockets.
    fn fetch_sockets(&self, opts: &BroadcastOptions) -> Vec<SocketInfo>;

    /// Every local room (socket ids included).
    fn rooms(&self) -> Vec<Room>;

    /// `true` if a room has local members.
    fn has_room(&self, room: &str) -> bool;

    /// Ids of the local sockets in any of `rooms` (all when empty).
    fn socket_ids(&self, rooms: &[Room]) -> Vec<SocketId> {
        self.fetch_sockets(&BroadcastOptions { rooms: rooms.to_vec(), ..Default::default() })
            .into_iter()
            .map(|s| s.id)
            .collect()
    }

    /// Delivers a server-side event.
    fn server_side_emit(&self, packet: EventPacket, ack: Option<ServerSideAck>);

    /// How many local sockets and local rooms (socket ids included) there are now, for
    /// [`Stats`](crate::Stats). The default enumerates them; override it when the
    /// server can count them directly.
    fn counts(&self) -> (usize, usize) {
        (self.socket_ids(&[]).len(), self.rooms().len())
    }
}

/// [`LocalNode`] over a [`RoomIndex`] and a server's [`LocalSockets`].
pub struct IndexedNode {
    index: RwLock<RoomIndex>,
    sockets: Arc<dyn LocalSockets>,
}

impl fmt::Debug for IndexedNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IndexedNode").field("sockets", &self.read().socket_count()).finish()
    }
}

impl IndexedNode {
    /// An indexed node delivering through `sockets`.
    pub fn new(sockets: Arc<dyn LocalSockets>) -> Self {
        IndexedNode { index: RwLock::new(RoomIndex::new()), sockets }
    }

    /// Read access to the room index.
    pub fn read(&self) -> RwLockReadGuard<'_, RoomIndex> {
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Write access to the room index.
    pub fn write(&self) -> RwLockWriteGuard<'_, RoomIndex> {
        self.index.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The server's delivery handle.
    pub fn sockets(&self) -> &Arc<dyn LocalSockets> {
        &self.sockets
    }
}

impl LocalNode for IndexedNode {
    fn counts(&self) -> (usize, usize) {
        let index = self.read();
        (index.socket_count(), index.room_count())
    }

    fn broadcast(&self, packet: &EventPacket, opts: &BroadcastOptions) -> Option<PendingDelivery> {
        let sids = self.read().matching(opts);
        if sids.is_empty() {
            return None;
        }
        if opts.flags.volatile {
            self.sockets.send_volatile(&sids, packet, &opts.flags);
        } else {
            self.sockets.send(&sids, packet, &opts.flags);
        }
        None
    }

    fn broadcast_with_ack(
        &self,
        packet: &EventPacket,
        opts: &BroadcastOptions,
        timeout: Duration,
    ) -> (LocalAckStream, u64) {
        let sids = self.read().matching(opts);
        let count = sids.len() as u64;
        if sids.is_empty() {
            return (Box::pin(futures_util::stream::empty()), 0);
        }
        (self.sockets.send_with_ack(&sids, packet, &opts.flags, timeout), count)
    }

    fn add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) -> RoomChanges {
        let mut index = self.write();
        let mut changes = RoomChanges::default();
        for sid in index.matching(opts) {
            let c = index.add_all(&sid, rooms);
            changes.created.extend(c.created);
        }
        changes
    }

    fn del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) -> RoomChanges {
        let mut index = self.write();
        let mut changes = RoomChanges::default();
        for sid in index.matching(opts) {
            for room in rooms {
                changes.deleted.extend(index.del(&sid, room).deleted);
            }
        }
        changes
    }

    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        let sids = self.read().matching(opts);
        if !sids.is_empty() {
            self.sockets.disconnect(&sids, close);
        }
    }

    fn fetch_sockets(&self, opts: &BroadcastOptions) -> Vec<SocketInfo> {
        let (sids, rooms): (Vec<SocketId>, Vec<Vec<Room>>) = {
            let index = self.read();
            index
                .matching(opts)
                .into_iter()
                .map(|sid| {
                    let rooms = index.socket_rooms(&sid).unwrap_or_default();
                    (sid, rooms)
                })
                .unzip()
        };
        sids.into_iter()
            .zip(rooms)
            .map(|(id, mut rooms)| {
                rooms.sort();
                let details = self.sockets.describe(&id).unwrap_or_default();
                SocketInfo { id, rooms, handshake: details.handshake, data: details.data }
            })
            .collect()
    }

    fn rooms(&self) -> Vec<Room> {
        self.read().rooms()
    }

    fn has_room(&self, room: &str) -> bool {
        self.read().has_room(room)
    }

    fn socket_ids(&self, rooms: &[Room]) -> Vec<SocketId> {
        self.read().matching_parts(rooms, &[])
    }

    fn server_side_emit(&self, packet: EventPacket, ack: Option<ServerSideAck>) {
        self.sockets.server_side_emit(packet, ack);
    }
}
