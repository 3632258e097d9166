//! [`ClusterAdapter`]: the [`Adapter`] face of the engine, with a local room index.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{ClusterConfig, ClusterCore, Stats};
use crate::adapter::{AckStream, Adapter, Gathered};
use crate::dialect::Dialect;
use crate::error::AdapterError;
use crate::local::{IndexedNode, LocalSockets};
use crate::transport::Transport;
use crate::types::{BroadcastOptions, EventPacket, Room, SocketId, SocketInfo};
use crate::value::Value;

/// A complete [`Adapter`]: a local room index delivering through the server's
/// [`LocalSockets`], and the [`ClusterCore`] for everything cluster-wide.
///
/// ```no_run
/// use std::sync::Arc;
/// use socketio_adapter_core::{Adapter, BroadcastOptions, ClusterAdapter, ClusterConfig, EventPacket};
/// use socketio_adapter_core::dialect::NodeRedisDialect;
/// # use socketio_adapter_core::{LocalSockets, Transport};
/// # async fn demo<T: Transport>(transport: T, sockets: Arc<dyn LocalSockets>) -> Result<(), Box<dyn std::error::Error>> {
/// let adapter = ClusterAdapter::new(transport, Arc::new(NodeRedisDialect::default()), "/", sockets, ClusterConfig::default())?;
/// adapter.init().await?;
/// adapter.add_all("socket-1", &["room1".into()]);
/// adapter.broadcast(EventPacket::new("hello", vec!["world".into()]), BroadcastOptions::all().to("room1")).await?;
/// # Ok(()) }
/// ```
pub struct ClusterAdapter<T: Transport> {
    core: ClusterCore<T>,
    local: Arc<IndexedNode>,
}

impl<T: Transport> fmt::Debug for ClusterAdapter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterAdapter").field("core", &self.core).field("local", &self.local).finish()
    }
}

impl<T: Transport> ClusterAdapter<T> {
    /// An adapter for namespace `nsp` delivering to local sockets through `sockets`.
    pub fn new(
        transport: T,
        dialect: Arc<dyn Dialect>,
        nsp: impl Into<String>,
        sockets: Arc<dyn LocalSockets>,
        config: ClusterConfig,
    ) -> Result<Self, AdapterError> {
        let local = Arc::new(IndexedNode::new(sockets));
        let core = ClusterCore::node(transport, dialect, nsp, local.clone(), config)?;
        Ok(ClusterAdapter { core, local })
    }

    /// The cluster engine.
    pub fn core(&self) -> &ClusterCore<T> {
        &self.core
    }

    /// The local half (room index and delivery).
    pub fn local(&self) -> &Arc<IndexedNode> {
        &self.local
    }

    /// A snapshot of the engine's counters.
    pub fn stats(&self) -> Stats {
        self.core.stats()
    }
}

#[async_trait]
impl<T: Transport> Adapter for ClusterAdapter<T> {
    fn namespace(&self) -> &str {
        self.core.namespace()
    }

    fn node_id(&self) -> &str {
        self.core.node_id()
    }

    async fn init(&self) -> Result<(), AdapterError> {
        self.core.start().await
    }

    async fn close(&self) -> Result<(), AdapterError> {
        self.core.close().await
    }

    fn add_all(&self, sid: &str, rooms: &[Room]) {
        let changes = self.local.write().add_all(sid, rooms);
        self.core.rooms_changed(changes);
    }

    fn del(&self, sid: &str, room: &Room) {
        let changes = self.local.write().del(sid, room);
        self.core.rooms_changed(changes);
    }

    fn del_all(&self, sid: &str) {
        let changes = self.local.write().del_all(sid);
        self.core.rooms_changed(changes);
    }

    fn local_sockets(&self, rooms: &[Room]) -> Vec<SocketId> {
        self.local.read().matching_parts(rooms, &[])
    }

    fn socket_rooms(&self, sid: &str) -> Option<Vec<Room>> {
        self.local.read().socket_rooms(sid)
    }

    async fn broadcast(&self, packet: EventPacket, opts: BroadcastOptions) -> Result<(), AdapterError> {
        self.core.broadcast(packet, opts).await
    }

    async fn broadcast_with_ack(&self, packet: EventPacket, opts: BroadcastOptions) -> Result<AckStream, AdapterError> {
        self.core.broadcast_with_ack(packet, opts).await
    }

    async fn fetch_sockets(&self, opts: BroadcastOptions) -> Result<Gathered<Vec<SocketInfo>>, AdapterError> {
        self.core.fetch_sockets(opts).await
    }

    async fn add_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError> {
        self.core.add_sockets(opts, rooms).await
    }

    async fn del_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError> {
        self.core.del_sockets(opts, rooms).await
    }

    async fn disconnect_sockets(&self, opts: BroadcastOptions, close: bool) -> Result<(), AdapterError> {
        self.core.disconnect_sockets(opts, close).await
    }

    async fn server_side_emit(&self, packet: EventPacket) -> Result<(), AdapterError> {
        self.core.server_side_emit(packet).await
    }

    async fn server_side_emit_with_ack(
        &self,
        packet: EventPacket,
        timeout: Option<Duration>,
    ) -> Result<Gathered<Vec<Value>>, AdapterError> {
        self.core.server_side_emit_with_ack(packet, timeout).await
    }

    async fn all_rooms(&self) -> Result<Gathered<Vec<Room>>, AdapterError> {
        self.core.all_rooms().await
    }

    async fn server_count(&self) -> Result<usize, AdapterError> {
        self.core.server_count().await
    }
}
