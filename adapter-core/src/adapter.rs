//! The [`Adapter`] trait a Socket.IO server calls, one instance per namespace.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use futures_core::Stream;
use tokio::sync::mpsc;

use crate::error::{AdapterError, Shortfall};
use crate::local::AckError;
use crate::types::{BroadcastOptions, EventPacket, NodeId, Room, SocketId, SocketInfo};
use crate::value::Value;

/// The result of a cluster request: what arrived, and whether anything is missing.
#[derive(Clone, Debug, PartialEq)]
pub struct Gathered<T> {
    /// Everything that arrived (the local part included).
    pub value: T,
    /// Set when the request timed out or nodes vanished before answering.
    pub shortfall: Option<Shortfall>,
}

impl<T> Gathered<T> {
    /// A complete result.
    pub fn complete(value: T) -> Self {
        Gathered { value, shortfall: None }
    }

    /// `true` when every expected answer arrived.
    pub fn is_complete(&self) -> bool {
        self.shortfall.is_none()
    }

    /// The value if complete, else [`AdapterError::Incomplete`] (the partial value is
    /// dropped; read [`Gathered::value`] to keep it).
    pub fn into_result(self) -> Result<T, AdapterError> {
        match self.shortfall {
            None => Ok(self.value),
            Some(s) => Err(AdapterError::Incomplete(s)),
        }
    }
}

/// One client's answer to a broadcast with acknowledgement.
#[derive(Clone, Debug, PartialEq)]
pub struct AckResponse {
    /// The socket, when known (local sockets; remote protocols do not carry it).
    pub socket: Option<SocketId>,
    /// The node holding the socket, when the protocol says (`None` for local ones and
    /// for the classic Redis protocol).
    pub node: Option<NodeId>,
    /// The first argument of the client's ack, or why there is none.
    pub result: Result<Value, AckError>,
}

pub(crate) enum AckEvent {
    /// More clients are expected to answer (client counts, local one first).
    Expect(u64),
    Ack(AckResponse),
    Done(Option<Shortfall>),
}

/// The acks of a broadcast, as they arrive from every node.
///
/// Each node first announces how many of its clients were asked
/// ([`AckStream::expected_clients`] grows as counts arrive), then each ack follows. The
/// stream ends when every announced ack arrived, or at the timeout; then
/// [`AckStream::shortfall`] says what is missing.
#[derive(Debug)]
pub struct AckStream {
    rx: mpsc::Receiver<AckEvent>,
    expected: u64,
    received: u64,
    shortfall: Option<Shortfall>,
    done: bool,
}

impl std::fmt::Debug for AckEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AckEvent::Expect(n) => write!(f, "Expect({n})"),
            AckEvent::Ack(a) => write!(f, "Ack({a:?})"),
            AckEvent::Done(s) => write!(f, "Done({s:?})"),
        }
    }
}

impl AckStream {
    pub(crate) fn channel(capacity: usize) -> (mpsc::Sender<AckEvent>, AckStream) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (tx, AckStream { rx, expected: 0, received: 0, shortfall: None, done: false })
    }

    /// Clients announced so far, across the cluster.
    pub fn expected_clients(&self) -> u64 {
        self.expected
    }

    /// Acks yielded so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// After the stream ended: what was missing, if anything.
    pub fn shortfall(&self) -> Option<&Shortfall> {
        self.shortfall.as_ref()
    }

    /// Waits for every ack (or the timeout).
    pub async fn collect(mut self) -> Gathered<Vec<AckResponse>> {
        let mut out = Vec::new();
        while let Some(a) = futures_util::StreamExt::next(&mut self).await {
            out.push(a);
        }
        Gathered { value: out, shortfall: self.shortfall }
    }
}

impl Stream for AckStream {
    type Item = AckResponse;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<AckResponse>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            match self.rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    self.done = true;
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(AckEvent::Expect(n))) => self.expected = self.expected.saturating_add(n),
                Poll::Ready(Some(AckEvent::Ack(a))) => {
                    self.received += 1;
                    return Poll::Ready(Some(a));
                }
                Poll::Ready(Some(AckEvent::Done(s))) => {
                    self.shortfall = s;
                    self.done = true;
                    return Poll::Ready(None);
                }
            }
        }
    }
}

/// A namespace's adapter: local room membership plus every cluster-wide operation.
///
/// One instance per namespace. The server calls the local membership methods as
/// sockets connect, join, leave and disconnect, and the cluster methods for
/// `io.to(...).emit(...)` and friends. Object-safe: `Box<dyn Adapter>` works.
#[async_trait]
pub trait Adapter: Send + Sync + 'static {
    /// The namespace (`/`, `/admin`, ...).
    fn namespace(&self) -> &str;

    /// This node's id for the namespace.
    fn node_id(&self) -> &str;

    /// Subscribes and starts background work (heartbeats). Call once before use.
    async fn init(&self) -> Result<(), AdapterError>;

    /// Announces the departure (where the protocol can), unsubscribes and stops.
    async fn close(&self) -> Result<(), AdapterError>;

    /// Adds a local socket to rooms (and to the room of its own id).
    fn add_all(&self, sid: &str, rooms: &[Room]);

    /// Removes a local socket from a room.
    fn del(&self, sid: &str, room: &Room);

    /// Removes a local socket from every room (on disconnect).
    fn del_all(&self, sid: &str);

    /// Local sockets in any of `rooms` (every local socket when empty).
    fn local_sockets(&self, rooms: &[Room]) -> Vec<SocketId>;

    /// The rooms of a local socket.
    fn socket_rooms(&self, sid: &str) -> Option<Vec<Room>>;

    /// Sends an event to every matching socket of the cluster.
    async fn broadcast(&self, packet: EventPacket, opts: BroadcastOptions) -> Result<(), AdapterError>;

    /// Sends an event that asks every matching client of the cluster for an ack.
    /// The timeout is `opts.flags.timeout` (default: the request timeout).
    async fn broadcast_with_ack(&self, packet: EventPacket, opts: BroadcastOptions) -> Result<AckStream, AdapterError>;

    /// Describes every matching socket of the cluster.
    async fn fetch_sockets(&self, opts: BroadcastOptions) -> Result<Gathered<Vec<SocketInfo>>, AdapterError>;

    /// Makes every matching socket of the cluster join `rooms`.
    async fn add_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError>;

    /// Makes every matching socket of the cluster leave `rooms`.
    async fn del_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError>;

    /// Disconnects every matching socket of the cluster.
    async fn disconnect_sockets(&self, opts: BroadcastOptions, close: bool) -> Result<(), AdapterError>;

    /// Sends an event to the other servers of the cluster (not to clients).
    async fn server_side_emit(&self, packet: EventPacket) -> Result<(), AdapterError>;

    /// Sends an event to the other servers and collects one answer from each.
    async fn server_side_emit_with_ack(
        &self,
        packet: EventPacket,
        timeout: Option<Duration>,
    ) -> Result<Gathered<Vec<Value>>, AdapterError>;

    /// Every room with members anywhere in the cluster (socket ids included).
    async fn all_rooms(&self) -> Result<Gathered<Vec<Room>>, AdapterError>;

    /// The number of servers in the cluster, this one included.
    async fn server_count(&self) -> Result<usize, AdapterError>;
}

// The trait must stay object-safe.
const _: Option<&dyn Adapter> = None;
