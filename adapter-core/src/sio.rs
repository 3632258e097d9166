//! The bridge into [socketioxide](https://docs.rs/socketioxide): [`SioAdapter`] implements
//! socketioxide's `CoreAdapter` over the one [`ClusterCore`], for every transport.
//!
//! ```no_run
//! use std::convert::Infallible;
//! use std::sync::Arc;
//!
//! use socketio_adapter_core::dialect::NodeClusterDialect;
//! use socketio_adapter_core::memory::{MemoryHub, MemoryTransport};
//! use socketio_adapter_core::sio::{SioAdapter, SioState};
//! use socketio_adapter_core::ClusterConfig;
//! use socketioxide::adapter::Emitter;
//! use socketioxide::extract::{AckSender, Data, SocketRef};
//! use socketioxide::handler::ConnectHandler;
//! use socketioxide::SocketIo;
//!
//! // Any transport: `RedisTransport`, `KafkaTransport`, `AmqpTransport`, ...
//! type Adapter = SioAdapter<Emitter, MemoryTransport>;
//!
//! /// Runs as a connect middleware: before the client is told it is connected.
//! async fn handlers(s: SocketRef<Adapter>) -> Result<(), Infallible> {
//!     s.join(s.id.to_string()); // so that other nodes can address this socket
//!     s.on("join", |s: SocketRef<Adapter>, Data(room): Data<String>, ack: AckSender<Adapter>| async move {
//!         s.join(room);
//!         let _ = ack.send("ok");
//!     });
//!     Ok(())
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let transport = MemoryHub::new().transport();
//! let state = SioState::new(transport, Arc::new(NodeClusterDialect::default()), ClusterConfig::default());
//! let cluster = state.handle();
//! let (layer, io) = SocketIo::builder().max_buffer_size(1024).with_adapter::<Adapter>(state).build_layer();
//! io.ns("/", (async || {}).with(handlers)).await?; // subscribes the namespace's channels
//! let core = cluster.namespace("/").expect("joined"); // server-side emit with acks, rich fetch
//! # let _ = (layer, core);
//! # Ok(())
//! # }
//! ```
//!
//! # Register event handlers in a connect middleware
//!
//! socketioxide (0.18.9) sends CONNECT to the client first and then spawns the connect
//! handler. A client that emits from its `connect` listener (to join a room, authenticate,
//! subscribe: most do) can get its first event to the server before the spawned handler
//! has called `socket.on(..)`; socketioxide finds no handler and drops the event without a
//! word. Measured here: about 1 in 100 connections of `socket.io-client` clients, with or
//! without a cluster. Connect middlewares (`handler.with(middleware)`) are awaited
//! *before* CONNECT is sent, so handlers registered there are always in place: put
//! `socket.on(..)` and the joins every socket needs in a middleware, as above, and keep
//! the connect handler for work that may come late. (Node.js runs its `connection`
//! listener in the same tick as the CONNECT write, so the same code is safe there.) The
//! reproduction and a proposed fix for socketioxide are in the repository under
//! `docs/upstream/socketioxide-connect-race`.
//!
//! # Delivery to local sockets
//!
//! socketioxide gives each socket a bounded send buffer (`max_buffer_size`, 128 packets by
//! default) and fails a send when it is full. The bridge never drops a non-volatile
//! packet silently: a broadcast that finds a socket's buffer full waits for room, which
//! slows the node's inbound queue and, behind it, the broker subscription (back-pressure,
//! the same as a slow network). A socket that stays full for
//! [`SioState::with_slow_socket`]'s timeout (default 5 s) has stopped reading; the
//! [`SlowSocketPolicy`] then drops its deliveries (the default, without waiting for it
//! again until it takes packets again) or disconnects it. Either way the drops are counted
//! per namespace in [`Stats::dropped_deliveries`](crate::cluster::Stats) and logged at
//! warn level, at most once per 10 s. Volatile packets are dropped by socketioxide when a
//! socket is not ready, by design. A larger `max_buffer_size` (1024 in `sio-node`) absorbs
//! bursts without waiting.
//!
//! # Notes
//!
//! - Events cross the bridge exactly: socketioxide's packet value (JSON text with binary
//!   placeholders, or MessagePack) is decoded with the server's own parser into
//!   [`Value`]s and encoded back the same way, so strings, big integers, floats, nested
//!   maps and binary attachments round-trip.
//! - Socket ids: socketioxide's are 16 characters, Node.js's 20. Sockets whose ids
//!   socketioxide cannot represent (those on Node.js servers) are left out of
//!   socketioxide's own `fetch_sockets`; [`ClusterHandle::namespace`] gives the
//!   [`ClusterCore`] whose `fetch_sockets` returns every socket with its rooms,
//!   handshake and data, and `server_side_emit_with_ack`, which socketioxide's trait lacks.
//! - Make each socket join a room named after its id on connect (as Node.js does), so
//!   that peers can address it: `socket.join(socket.id.to_string())`.
//! - socketioxide changes rooms on its local adapter directly, without telling the
//!   adapter; for dialects that subscribe per room (sharded Redis, `dynamic` modes) the
//!   bridge polls the local rooms every [`SioState::with_room_poll`] (default 100 ms).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::stream::{BoxStream, Fuse};
use futures_util::{Stream, StreamExt};
use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use socketioxide_core::adapter::errors::{AdapterError as SioAdapterError, BroadcastError, SocketError};
use socketioxide_core::adapter::{
    AckStreamItem, BroadcastFlags as SioFlags, BroadcastOptions as SioOpts, CoreAdapter, CoreLocalAdapter,
    RemoteSocketData, Room as SioRoom, RoomParam, SocketEmitter, Spawnable,
};
use socketioxide_core::packet::{Packet, PacketData};
use socketioxide_core::parser::Parse;
use socketioxide_core::{Sid, Uid};
use tracing::{debug, warn};

use crate::cluster::{ClusterConfig, ClusterCore};
use crate::dialect::Dialect;
use crate::error::AdapterError;
use crate::local::{AckError, LocalAckStream, LocalNode, PendingDelivery, ServerSideAck, SocketDetails};
use crate::rooms::RoomChanges;
use crate::throttle::Throttle;
use crate::transport::Transport;
use crate::types::{BroadcastFlags, BroadcastOptions, EventPacket, Room, SocketInfo};
use crate::value::{Args, Value};

/// Answers server-side events from other nodes: `(namespace, event, ack)`.
pub type ServerSideHandler = Arc<dyn Fn(&str, EventPacket, Option<ServerSideAck>) + Send + Sync>;
/// Describes a local socket for `fetch_sockets` callers: `(namespace, sid)`.
pub type Describer = Arc<dyn Fn(&str, &str) -> Option<SocketDetails> + Send + Sync>;

#[derive(Clone, Default)]
struct Hooks {
    server_side: Option<ServerSideHandler>,
    describe: Option<Describer>,
}

/// What the bridge does with a socket whose send buffer stayed full for the slow-socket
/// timeout (it stopped reading). Either way the dropped deliveries are counted in
/// [`Stats::dropped_deliveries`](crate::cluster::Stats) and logged (rate-limited).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlowSocketPolicy {
    /// Drop the packets it cannot take; broadcasts stop waiting for it until its buffer
    /// has room again, so one stuck client does not slow the others. The default.
    #[default]
    Drop,
    /// Disconnect it (its client reconnects and can recover the state it missed). Its
    /// DISCONNECT packet needs room in its buffer: until it can be sent, the socket's
    /// deliveries are dropped as with [`SlowSocketPolicy::Drop`], and engine.io's heartbeat
    /// timeout closes a connection that stopped reading at the latest.
    Disconnect,
}

#[derive(Clone, Copy, Debug)]
struct SlowSockets {
    timeout: Duration,
    policy: SlowSocketPolicy,
}

impl Default for SlowSockets {
    fn default() -> Self {
        SlowSockets { timeout: Duration::from_secs(5), policy: SlowSocketPolicy::Drop }
    }
}

/// How often a broadcast waiting for full socket buffers tries again.
const FULL_BUFFER_RETRY: Duration = Duration::from_millis(1);

/// The engine of each namespace, and its local rooms (for [`ClusterHandle::sync_rooms`]).
type Registry<T> = Arc<Mutex<HashMap<String, (ClusterCore<T>, std::sync::Weak<dyn RoomDiff>)>>>;

/// Rooms created and deleted since the last call (see [`LocalBridge::room_diff`]).
trait RoomDiff: Send + Sync {
    fn room_diff(&self) -> RoomChanges;
}

/// The state socketioxide hands to every namespace's adapter: the transport (cloned per
/// namespace, sharing its connections), the dialect and the cluster configuration.
pub struct SioState<T: Transport> {
    transport: T,
    dialect: Arc<dyn Dialect>,
    config: ClusterConfig,
    hooks: Hooks,
    room_poll: Duration,
    slow: SlowSockets,
    registry: Registry<T>,
}

impl<T: Transport> std::fmt::Debug for SioState<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SioState").field("dialect", &self.dialect.name()).finish()
    }
}

impl<T: Transport> SioState<T> {
    /// A state over `transport` speaking `dialect`.
    pub fn new(transport: T, dialect: Arc<dyn Dialect>, config: ClusterConfig) -> Self {
        SioState {
            transport,
            dialect,
            config,
            hooks: Hooks::default(),
            room_poll: Duration::from_millis(100),
            slow: SlowSockets::default(),
            registry: Arc::default(),
        }
    }

    /// Handles server-side events (`serverSideEmit`) from other nodes.
    pub fn on_server_side_emit(
        mut self,
        f: impl Fn(&str, EventPacket, Option<ServerSideAck>) + Send + Sync + 'static,
    ) -> Self {
        self.hooks.server_side = Some(Arc::new(f));
        self
    }

    /// Describes local sockets (handshake, data) to other nodes' `fetchSockets`.
    pub fn describe_sockets_with(
        mut self,
        f: impl Fn(&str, &str) -> Option<SocketDetails> + Send + Sync + 'static,
    ) -> Self {
        self.hooks.describe = Some(Arc::new(f));
        self
    }

    /// How often local rooms are compared for per-room subscriptions.
    pub fn with_room_poll(mut self, every: Duration) -> Self {
        self.room_poll = every.max(Duration::from_millis(10));
        self
    }

    /// How long a broadcast waits for a socket whose send buffer is full (socketioxide's
    /// `max_buffer_size`) before `policy` applies to it. Default 5 s, [`SlowSocketPolicy::Drop`].
    /// While it waits, the node's inbound queue waits too (back-pressure).
    pub fn with_slow_socket(mut self, timeout: Duration, policy: SlowSocketPolicy) -> Self {
        self.slow = SlowSockets { timeout, policy };
        self
    }

    /// The handle to the cluster engines of the namespaces.
    pub fn handle(&self) -> ClusterHandle<T> {
        ClusterHandle { registry: Arc::clone(&self.registry) }
    }
}

/// Reaches the [`ClusterCore`] of each namespace (for what socketioxide's adapter trait
/// lacks: server-side emit with acks, fetch results with rooms and handshakes).
pub struct ClusterHandle<T: Transport> {
    registry: Registry<T>,
}

impl<T: Transport> Clone for ClusterHandle<T> {
    fn clone(&self) -> Self {
        ClusterHandle { registry: Arc::clone(&self.registry) }
    }
}

impl<T: Transport> std::fmt::Debug for ClusterHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterHandle").finish()
    }
}

impl<T: Transport> ClusterHandle<T> {
    /// The engine of namespace `nsp`, once socketioxide created it.
    pub fn namespace(&self, nsp: &str) -> Option<ClusterCore<T>> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner).get(nsp).map(|(core, _)| core.clone())
    }

    /// Call after `socket.join(..)` when a broadcast to the new rooms must reach this node
    /// from now on (before acknowledging the join to the client, say). socketioxide changes
    /// rooms without telling the adapter; for dialects with per-room channels (sharded
    /// Redis, RabbitMQ, `dynamic` modes) this subscribes the new rooms' channels at once
    /// instead of at the next room poll, and waits until the broker confirmed them (at most
    /// the request timeout; `false` then, or for an unknown namespace). Other dialects
    /// receive every room already: it returns `true` at once.
    pub async fn sync_rooms(&self, nsp: &str) -> bool {
        let entry = self.registry.lock().unwrap_or_else(PoisonError::into_inner).get(nsp).cloned();
        let Some((core, rooms)) = entry else { return false };
        if let Some(rooms) = rooms.upgrade() {
            core.rooms_changed(rooms.room_diff());
        }
        core.room_subscriptions_applied().await
    }
}

/// The error of [`SioAdapter`] operations.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SioError(#[from] pub AdapterError);

impl From<SioError> for SioAdapterError {
    fn from(e: SioError) -> Self {
        SioAdapterError(Box::new(e))
    }
}

/// socketioxide's adapter over a [`ClusterCore`]. Use it with
/// `SocketIo::builder().with_adapter::<SioAdapter<_, T>>(SioState::new(..))`.
pub struct SioAdapter<E: SocketEmitter, T: Transport> {
    core: Result<ClusterCore<T>, String>,
    local: Arc<LocalBridge<E>>,
    room_poll: Duration,
}

impl<E: SocketEmitter, T: Transport> socketioxide_core::adapter::DefinedAdapter for SioAdapter<E, T> {}

impl<E: SocketEmitter, T: Transport> std::fmt::Debug for SioAdapter<E, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SioAdapter").field("nsp", &self.local.nsp).finish()
    }
}

/// The future returned by `io.ns(..)`: subscribes the namespace. Await it, or let
/// socketioxide spawn it for dynamic namespaces.
pub struct InitFuture(Pin<Box<dyn Future<Output = Result<(), SioError>> + Send>>);

impl std::fmt::Debug for InitFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InitFuture")
    }
}

impl Future for InitFuture {
    type Output = Result<(), SioError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl Spawnable for InitFuture {
    fn spawn(self) {
        tokio::spawn(async move {
            if let Err(e) = self.await {
                warn!(error = %e, "cluster adapter of a dynamic namespace failed to start");
            }
        });
    }
}

impl<E: SocketEmitter, T: Transport> SioAdapter<E, T> {
    fn core(&self) -> Result<&ClusterCore<T>, SioError> {
        self.core.as_ref().map_err(|e| SioError(AdapterError::Config(e.clone())))
    }

    fn parser(&self) -> impl Parse + '_ {
        self.local.local.parser()
    }
}

impl<E: SocketEmitter, T: Transport> CoreAdapter<E> for SioAdapter<E, T> {
    type Error = SioError;
    type State = SioState<T>;
    type AckStream = Fuse<BoxStream<'static, AckStreamItem<E::AckError>>>;
    type InitRes = InitFuture;

    fn new(state: &Self::State, local: CoreLocalAdapter<E>) -> Self {
        let nsp = local.path().to_string();
        let local = Arc::new_cyclic(|me| LocalBridge {
            local,
            nsp: nsp.clone(),
            hooks: state.hooks.clone(),
            me: me.clone(),
            known_rooms: Mutex::new(None),
            slow: state.slow,
            stalled: Mutex::new(HashSet::new()),
            slow_warning: Throttle::default(),
        });
        let node: Arc<dyn LocalNode> = local.clone();
        let core =
            ClusterCore::node(state.transport.clone(), Arc::clone(&state.dialect), &nsp, node, state.config.clone())
                .map_err(|e| e.to_string());
        match &core {
            Ok(c) => {
                let rooms: std::sync::Weak<dyn RoomDiff> = Arc::downgrade(&local) as std::sync::Weak<LocalBridge<E>>;
                state.registry.lock().unwrap_or_else(PoisonError::into_inner).insert(nsp, (c.clone(), rooms));
            }
            Err(e) => warn!(nsp = %nsp, error = %e, "namespace cannot join the cluster"),
        }
        SioAdapter { core, local, room_poll: state.room_poll }
    }

    fn init(self: Arc<Self>, on_success: impl FnOnce() + Send + 'static) -> Self::InitRes {
        InitFuture(Box::pin(async move {
            let core = self.core()?.clone();
            core.start().await?;
            on_success();
            if !core.dialect().capabilities().room_channels {
                return Ok(());
            }
            // socketioxide changes rooms without telling the adapter: poll for per-room channels
            *self.local.known_rooms.lock().unwrap_or_else(PoisonError::into_inner) = Some(HashSet::new());
            let weak = Arc::downgrade(&self);
            let every = self.room_poll;
            tokio::spawn(async move {
                loop {
                    let Some(me) = weak.upgrade() else { return };
                    let Ok(core) = me.core() else { return };
                    let changes = me.local.room_diff();
                    if !changes.created.is_empty() || !changes.deleted.is_empty() {
                        core.rooms_changed(changes);
                    }
                    drop(me);
                    tokio::time::sleep(every).await;
                }
            });
            Ok(())
        }))
    }

    async fn close(&self) -> Result<(), SioError> {
        self.core()?.close().await?;
        Ok(())
    }

    async fn server_count(&self) -> Result<u16, SioError> {
        let n = self.core()?.server_count().await?;
        Ok(u16::try_from(n).unwrap_or(u16::MAX))
    }

    async fn broadcast(&self, packet: Packet, opts: SioOpts) -> Result<(), BroadcastError> {
        let local_only = opts.is_local(self.local.local.server_id());
        let remote =
            if local_only { None } else { to_event(self.parser(), &packet).map(|p| (p, from_sio_opts(&opts))) };
        let core = self.core().map_err(|e| BroadcastError::Adapter(e.into()))?;
        let pending = self.local.deliver(packet, opts);
        core.broadcast_beside(pending, remote).await.map_err(|e| BroadcastError::Adapter(SioError(e).into()))
    }

    async fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: SioOpts,
        timeout: Option<Duration>,
    ) -> Result<Self::AckStream, SioError> {
        let server_id = self.local.local.server_id();
        let Some(event) = (!opts.is_local(server_id)).then(|| to_event(self.parser(), &packet)).flatten() else {
            let (stream, _) = self.local.local.broadcast_with_ack(packet, opts, timeout);
            return Ok(stream.boxed().fuse());
        };
        // the local half through socketioxide with its own options, as for broadcasts
        // without acks; the core merges the other nodes' acks into it
        let core = self.core()?;
        let timeout = timeout.unwrap_or(self.local.local.ack_timeout());
        let mut ours = from_sio_opts(&opts);
        ours.flags.timeout = Some(timeout);
        let (local, count) = self.local.local.broadcast_with_ack(packet, opts, Some(timeout));
        let local = (self.local.our_acks(local), u64::from(count));
        let acks = core.broadcast_with_ack_beside(local, event, ours).await?;
        // the parser is borrowed per item: socketioxide's is not `Send`
        let bridge = Arc::clone(&self.local);
        let parser = move |v: &Value| encode_ack(bridge.local.parser(), v);
        let stream = acks.filter_map(move |ack| {
            let sid = ack.socket.as_deref().and_then(|s| Sid::from_str(s).ok()).unwrap_or(Sid::ZERO);
            let item = match ack.result {
                Ok(v) => parser(&v).map(|v| (sid, Ok(v))),
                Err(e) => ack_error::<E::AckError>(&e).map(|e| (sid, Err(e))),
            };
            std::future::ready(item)
        });
        Ok(stream.boxed().fuse())
    }

    async fn add_sockets(&self, opts: SioOpts, rooms: impl RoomParam) -> Result<(), SioError> {
        self.core()?.add_sockets(from_sio_opts(&opts), our_rooms(rooms)).await?;
        Ok(())
    }

    async fn del_sockets(&self, opts: SioOpts, rooms: impl RoomParam) -> Result<(), SioError> {
        self.core()?.del_sockets(from_sio_opts(&opts), our_rooms(rooms)).await?;
        Ok(())
    }

    async fn disconnect_socket(&self, opts: SioOpts) -> Result<(), BroadcastError> {
        let core = self.core().map_err(|e| BroadcastError::Adapter(e.into()))?;
        core.disconnect_sockets(from_sio_opts(&opts), false)
            .await
            .map_err(|e| BroadcastError::Adapter(SioError(e).into()))
    }

    async fn rooms(&self, opts: SioOpts) -> Result<Vec<SioRoom>, SioError> {
        let core = self.core()?;
        let rooms: Vec<Room> = if opts.rooms.is_empty() && opts.except.is_empty() {
            core.all_rooms().await?.value
        } else {
            let mut set: Vec<Room> =
                core.fetch_sockets(from_sio_opts(&opts)).await?.value.into_iter().flat_map(|s| s.rooms).collect();
            set.sort();
            set.dedup();
            set
        };
        Ok(rooms.into_iter().map(|r| SioRoom::Owned(r.into_string())).collect())
    }

    async fn fetch_sockets(&self, opts: SioOpts) -> Result<Vec<RemoteSocketData>, SioError> {
        let ns = self.local.local.path().clone();
        let sockets = self.core()?.fetch_sockets(from_sio_opts(&opts)).await?.value;
        let me = self.local.local.server_id();
        Ok(sockets
            .into_iter()
            .filter_map(|s| {
                let id = Sid::from_str(&s.id).ok()?;
                // local sockets keep this server's id; remote ones get none, so that
                // operations on them go through the cluster
                let local = if self.local.local.socket_rooms(id).is_empty() { Uid::ZERO } else { me };
                Some(RemoteSocketData { id, server_id: local, ns: ns.clone() })
            })
            .collect())
    }

    fn get_local(&self) -> &CoreLocalAdapter<E> {
        &self.local.local
    }
}

/// The local half for the cluster engine, over socketioxide's local adapter.
struct LocalBridge<E: SocketEmitter> {
    local: CoreLocalAdapter<E>,
    nsp: String,
    hooks: Hooks,
    /// Itself, for streams that outlive a call.
    me: std::sync::Weak<LocalBridge<E>>,
    /// Rooms already reported to the engine (dialects with per-room channels only).
    known_rooms: Mutex<Option<HashSet<String>>>,
    slow: SlowSockets,
    /// Sockets given up on under [`SlowSocketPolicy::Drop`]: not waited for again until
    /// their buffer takes a packet.
    stalled: Mutex<HashSet<Sid>>,
    slow_warning: Throttle,
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
    fn room_diff(&self) -> RoomChanges {
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
    fn deliver(&self, packet: Packet, opts: SioOpts) -> Option<PendingDelivery> {
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
            warn!(nsp = %self.nsp, dropped, held_back, timeout = ?self.slow.timeout,
                  "{what} (one line per 10 s; held_back: lines since the last)");
        }
    }

    /// socketioxide's local ack stream as the core's (acks decoded with the server's parser).
    fn our_acks<X: std::fmt::Display>(
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

fn our_rooms(rooms: impl RoomParam) -> Vec<Room> {
    rooms.into_room_iter().map(|r| Room::new(r.into_owned())).collect()
}

fn sio_rooms(rooms: &[Room]) -> Vec<SioRoom> {
    rooms.iter().map(|r| SioRoom::Owned(r.as_str().to_owned())).collect()
}

fn all_sockets() -> SioOpts {
    let mut opts = SioOpts::default();
    opts.add_flag(SioFlags::Broadcast);
    opts
}

/// socketioxide's options -> ours. A single-socket target (`sid`, no rooms, no
/// broadcast flag) becomes the socket's own room; `broadcast` excludes the sender.
pub fn from_sio_opts(opts: &SioOpts) -> BroadcastOptions {
    let mut out = BroadcastOptions {
        rooms: opts.rooms.iter().map(|r| Room::new(r.to_string())).collect(),
        except: opts.except.iter().map(|r| Room::new(r.to_string())).collect(),
        flags: BroadcastFlags::default(),
    };
    if let Some(sid) = opts.sid {
        if opts.has_flag(SioFlags::Broadcast) {
            out.except.push(Room::new(sid.to_string()));
        } else if out.rooms.is_empty() {
            out.rooms.push(Room::new(sid.to_string()));
        }
    }
    out.flags.volatile = opts.has_flag(SioFlags::Volatile);
    out.flags.local = opts.has_flag(SioFlags::Local);
    out
}

/// Ours -> socketioxide's, for the local sockets (rooms empty = every socket).
pub fn to_sio_opts(opts: &BroadcastOptions) -> SioOpts {
    let mut out = all_sockets();
    out.rooms = sio_rooms(&opts.rooms).into();
    out.except = sio_rooms(&opts.except).into();
    if opts.flags.volatile {
        out.add_flag(SioFlags::Volatile);
    }
    out
}

/// An event packet of socketioxide as ours (`None` for other packet kinds).
pub fn to_event(parser: impl Parse, packet: &Packet) -> Option<EventPacket> {
    match &packet.inner {
        PacketData::Event(v, _) | PacketData::BinaryEvent(v, _) => {
            let event = match parser.read_event(v) {
                Ok(e) => e.to_owned(),
                Err(e) => {
                    warn!(error = %e, "cannot read the event name of a broadcast");
                    return None;
                }
            };
            let mut v = v.clone();
            match parser.decode_value::<ArgsOwned>(&mut v, true) {
                Ok(args) => Some(EventPacket::new(event, args.0)),
                Err(e) => {
                    warn!(event = %event, error = %e, "cannot decode the arguments of a broadcast");
                    None
                }
            }
        }
        _ => None,
    }
}

/// Our event as socketioxide's packet value, with the server's parser.
pub fn from_event(parser: impl Parse, packet: &EventPacket) -> Result<socketioxide_core::Value, String> {
    parser.encode_value(&Args(packet.args.as_slice()), Some(&packet.event)).map_err(|e| e.to_string())
}

fn encode_ack(parser: impl Parse, v: &Value) -> Option<socketioxide_core::Value> {
    match parser.encode_value(v, None) {
        Ok(v) => Some(v),
        Err(e) => {
            warn!(error = %e, "cannot encode a remote ack");
            None
        }
    }
}

fn decode_ack(parser: impl Parse, v: &mut socketioxide_core::Value) -> Result<Value, String> {
    // an ack carries the client's callback arguments; the first is what travels
    let args = parser.decode_value::<ArgsOwned>(v, false).map_err(|e| e.to_string())?;
    Ok(args.0.into_iter().next().unwrap_or(Value::Null))
}

/// A remote ack error as the server's ack error type (`Timeout` when it has one).
fn ack_error<A: serde::de::DeserializeOwned>(e: &AckError) -> Option<A> {
    let name = match e {
        AckError::Timeout => "Timeout",
        _ => return None,
    };
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

/// Arguments read as a tuple of any length (every element after the event).
struct ArgsOwned(Vec<Value>);

impl<'de> Deserialize<'de> for ArgsOwned {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ArgsOwned;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("event arguments")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ArgsOwned, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(v) = seq.next_element::<Value>()? {
                    out.push(v);
                }
                Ok(ArgsOwned(out))
            }
        }
        d.deserialize_tuple(usize::MAX, V)
    }
}
