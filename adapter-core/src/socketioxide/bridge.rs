//! [`LocalBridge`]: the local half of the cluster engine over socketioxide's local
//! adapter, with delivery to local sockets and the slow-socket policy.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use socketioxide_core::Sid;
use socketioxide_core::adapter::errors::SocketError;
use socketioxide_core::adapter::{
    BroadcastFlags as SioFlags, BroadcastOptions as SioOpts, CoreLocalAdapter, Room as SioRoom, SocketEmitter,
};
use socketioxide_core::packet::Packet;
use tracing::{debug, warn};

use super::convert::{all_sockets, decode_ack, from_event, sio_rooms, to_sio_opts};
use super::{Hooks, RoomDiff, SlowSocketPolicy, SlowSockets};
use crate::local::{AckError, LocalAckStream, LocalNode, PendingDelivery, ServerSideAck};
use crate::rooms::RoomChanges;
use crate::throttle::Throttle;
use crate::types::{BroadcastOptions, EventPacket, Room, SocketInfo};

/// How often a broadcast waiting for full socket buffers tries again.
const FULL_BUFFER_RETRY: Duration = Duration::from_millis(1);

/// The local half for the cluster engine, over socketioxide's local adapter.
pub(super) struct LocalBridge<E: SocketEmitter> {
    pub(super) local: CoreLocalAdapter<E>,
    pub(super) nsp: String,
    /// The engine's node id and its broker, for log lines (set once the engine exists).
    pub(super) node: std::sync::OnceLock<String>,
    pub(super) broker: String,
    pub(super) hooks: Hooks,
    /// Itself, for streams that outlive a call.
    pub(super) me: std::sync::Weak<LocalBridge<E>>,
    /// Rooms already reported to the engine (dialects with per-room channels only).
    pub(super) known_rooms: Mutex<Option<HashSet<String>>>,
    pub(super) slow: SlowSockets,
    /// Sockets given up on under [`SlowSocketPolicy::Drop`]: not waited for again until
    /// their buffer takes a packet.
    pub(super) stalled: Mutex<HashSet<Sid>>,
    pub(super) slow_warning: Throttle,
}

/// What one socket did with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sent {
    Taken,
    Full,
    Gone,
}

impl<E: SocketEmitter> LocalBridge<E> {
    /// Rooms created and deleted since the last call, when rooms are tracked (the
    /// dialect has per-room channels). socketioxide changes rooms without telling the
    /// adapter, so the poller calls this, and so does every join/leave that goes through
    /// the engine (then the room channel is subscribed at once, not at the next poll).
    pub(super) fn room_diff(&self) -> RoomChanges {
        let mut guard = self.known_rooms.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(known) = guard.as_mut() else { return RoomChanges::default() };
        let now: HashSet<String> = LocalNode::rooms(self).into_iter().map(Room::into_string).collect();
        let created: Vec<Room> = now.difference(known).map(|r| Room::new(r.clone())).collect();
        let deleted: Vec<Room> = known.difference(&now).map(|r| Room::new(r.clone())).collect();
        *known = now;
        RoomChanges { created, deleted }
    }

    /// Delivers `packet` to the local sockets `opts` selects: the one path of every
    /// broadcast, from the cluster and from this server. Sockets whose buffer is full are
    /// waited for (the returned [`PendingDelivery`]) up to the slow-socket timeout.
    pub(super) fn deliver(&self, packet: Packet, opts: SioOpts) -> Option<PendingDelivery> {
        if opts.has_flag(SioFlags::Volatile) {
            // volatile: socketioxide drops it for sockets that are not ready, by design
            let _ = self.local.broadcast(packet, opts);
            return None;
        }
        let sids = self.local.sockets(opts);
        let mut blocked = Vec::new();
        let mut dropped = 0;
        {
            let mut stalled = self.stalled.lock().unwrap_or_else(PoisonError::into_inner);
            for sid in sids {
                if !stalled.is_empty() && stalled.contains(&sid) {
                    // given up on: not waited for again
                    match self.slow.policy {
                        SlowSocketPolicy::Drop => match self.send_to(&packet, sid) {
                            Sent::Full => dropped += 1,
                            Sent::Taken | Sent::Gone => {
                                stalled.remove(&sid);
                            }
                        },
                        SlowSocketPolicy::Disconnect => {
                            dropped += 1;
                            if self.disconnect(sid) {
                                stalled.remove(&sid);
                            }
                        }
                    }
                    continue;
                }
                if self.send_to(&packet, sid) == Sent::Full {
                    blocked.push(sid);
                }
            }
        }
        if dropped > 0 {
            self.warn_slow(dropped, "dropping deliveries to sockets that stopped reading");
        }
        if blocked.is_empty() {
            return (dropped > 0).then(|| PendingDelivery::dropped(dropped));
        }
        let me = self.me.clone();
        let deadline = tokio::time::Instant::now() + self.slow.timeout;
        Some(PendingDelivery::new(async move {
            while !blocked.is_empty() {
                tokio::time::sleep(FULL_BUFFER_RETRY).await;
                let Some(me) = me.upgrade() else { return dropped };
                blocked.retain(|sid| me.send_to(&packet, *sid) == Sent::Full);
                if !blocked.is_empty() && tokio::time::Instant::now() >= deadline {
                    dropped += me.give_up(&blocked);
                    break;
                }
            }
            dropped
        }))
    }

    fn send_to(&self, packet: &Packet, sid: Sid) -> Sent {
        match self.local.broadcast(packet.clone(), SioOpts::new(sid)) {
            Ok(()) => Sent::Taken,
            Err(errors) if errors.iter().any(|e| matches!(e, SocketError::InternalChannelFull)) => Sent::Full,
            Err(_) => Sent::Gone,
        }
    }

    /// Applies the slow-socket policy to sockets that stayed full; returns the deliveries
    /// dropped. Sockets not disconnected at once are remembered as stalled.
    fn give_up(&self, sids: &[Sid]) -> u64 {
        let what = match self.slow.policy {
            SlowSocketPolicy::Drop => "sockets stopped reading: dropping their deliveries (policy drop)",
            SlowSocketPolicy::Disconnect => "sockets stopped reading: disconnecting them (policy disconnect)",
        };
        self.warn_slow(sids.len() as u64, what);
        let mut stalled = self.stalled.lock().unwrap_or_else(PoisonError::into_inner);
        for sid in sids {
            if self.slow.policy == SlowSocketPolicy::Drop || !self.disconnect(*sid) {
                stalled.insert(*sid);
            }
        }
        sids.len() as u64
    }

    /// Disconnects a socket; `false` when socketioxide could not (its DISCONNECT packet
    /// needs room in the full buffer: tried again at the next delivery, and engine.io's
    /// heartbeat timeout closes a connection that stopped reading at the latest).
    fn disconnect(&self, sid: Sid) -> bool {
        self.local.disconnect_socket(SioOpts::new(sid)).is_ok()
    }

    fn warn_slow(&self, dropped: u64, what: &str) {
        if let Some(held_back) = self.slow_warning.check() {
            let node = self.node.get().map_or("", String::as_str);
            warn!(node, nsp = %self.nsp, broker = %self.broker, dropped, held_back, timeout = ?self.slow.timeout,
                  "{what} (one line per 10 s; held_back: lines since the last)");
        }
    }

    /// socketioxide's local ack stream as the core's (acks decoded with the server's parser).
    pub(super) fn our_acks<X: std::fmt::Display>(
        &self,
        stream: impl Stream<Item = (Sid, Result<socketioxide_core::Value, X>)> + Send + 'static,
    ) -> LocalAckStream {
        let me = self.me.clone();
        Box::pin(stream.map(move |(sid, result)| {
            let result = match (result, me.upgrade()) {
                (Ok(mut v), Some(me)) => decode_ack(me.local.parser(), &mut v).map_err(AckError::Other),
                (Ok(_), None) => Err(AckError::Disconnected),
                (Err(e), _) => Err(AckError::Other(e.to_string())),
            };
            (sid.to_string(), result)
        }))
    }

    fn packet(&self, packet: &EventPacket) -> Option<Packet> {
        match from_event(self.local.parser(), packet) {
            Ok(v) => Some(Packet::event(self.local.path().clone(), v)),
            Err(e) => {
                warn!(nsp = %self.nsp, event = %packet.event, error = %e, "cannot encode an event for local sockets");
                None
            }
        }
    }
}

impl<E: SocketEmitter> RoomDiff for LocalBridge<E> {
    fn room_diff(&self) -> RoomChanges {
        LocalBridge::room_diff(self)
    }
}

impl<E: SocketEmitter> LocalNode for LocalBridge<E> {
    fn broadcast(&self, packet: &EventPacket, opts: &BroadcastOptions) -> Option<PendingDelivery> {
        self.deliver(self.packet(packet)?, to_sio_opts(opts))
    }

    fn broadcast_with_ack(
        &self,
        packet: &EventPacket,
        opts: &BroadcastOptions,
        timeout: Duration,
    ) -> (LocalAckStream, u64) {
        let Some(p) = self.packet(packet) else { return (Box::pin(futures_util::stream::empty()), 0) };
        let (stream, count) = self.local.broadcast_with_ack(p, to_sio_opts(opts), Some(timeout));
        (self.our_acks(stream), u64::from(count))
    }

    fn add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) -> RoomChanges {
        self.local.add_sockets(to_sio_opts(opts), sio_rooms(rooms));
        self.room_diff()
    }

    fn del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) -> RoomChanges {
        self.local.del_sockets(to_sio_opts(opts), sio_rooms(rooms));
        self.room_diff()
    }

    fn disconnect_sockets(&self, opts: &BroadcastOptions, _close: bool) {
        if let Err(e) = self.local.disconnect_socket(to_sio_opts(opts)) {
            debug!(nsp = %self.nsp, errors = e.len(), "some local sockets failed to disconnect");
        }
    }

    fn fetch_sockets(&self, opts: &BroadcastOptions) -> Vec<SocketInfo> {
        self.local
            .sockets(to_sio_opts(opts))
            .into_iter()
            .map(|sid| {
                let id = sid.to_string();
                let mut rooms: Vec<Room> =
                    self.local.socket_rooms(sid).into_iter().map(|r| Room::new(r.into_owned())).collect();
                if !rooms.iter().any(|r| r.as_str() == id) {
                    rooms.insert(0, Room::new(id.clone()));
                }
                let details = self.hooks.describe.as_ref().and_then(|d| d(&self.nsp, &id)).unwrap_or_default();
                SocketInfo { id, rooms, handshake: details.handshake, data: details.data }
            })
            .collect()
    }

    fn rooms(&self) -> Vec<Room> {
        self.local.rooms(all_sockets()).into_iter().map(|r| Room::new(r.into_owned())).collect()
    }

    fn counts(&self) -> (usize, usize) {
        (self.local.sockets(all_sockets()).len(), self.local.rooms(all_sockets()).len())
    }

    fn has_room(&self, room: &str) -> bool {
        let mut opts = all_sockets();
        opts.rooms.push(SioRoom::Owned(room.to_owned()));
        !self.local.sockets(opts).is_empty()
    }

    fn server_side_emit(&self, packet: EventPacket, ack: Option<ServerSideAck>) {
        match &self.hooks.server_side {
            Some(h) => h(&self.nsp, packet, ack),
            None => debug!(nsp = %self.nsp, event = %packet.event, "server-side event without a handler"),
        }
    }
}
