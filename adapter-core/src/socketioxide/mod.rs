//! The bridge into [socketioxide](https://docs.rs/socketioxide): [`SioAdapter`] implements
//! socketioxide's `CoreAdapter` over the one [`ClusterCore`], for every transport.
//!
//! ```no_run
//! use std::convert::Infallible;
//! use std::sync::Arc;
//!
//! use socketio_adapter_core::dialect::NodeClusterDialect;
//! use socketio_adapter_core::memory::{MemoryHub, MemoryTransport};
//! use socketio_adapter_core::socketioxide::{SioAdapter, SioState};
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
//!   [`Value`](crate::Value)s and encoded back the same way, so strings, big integers, floats, nested
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

mod adapter;
mod bridge;
mod convert;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::cluster::{ClusterConfig, ClusterCore};
use crate::dialect::Dialect;
use crate::local::{ServerSideAck, SocketDetails};
use crate::rooms::RoomChanges;
use crate::transport::Transport;
use crate::types::EventPacket;

pub use adapter::{InitFuture, SioAdapter, SioError};
pub use convert::{from_event, from_sio_opts, to_event, to_sio_opts};

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

/// The engine of each namespace, and its local rooms (for [`ClusterHandle::sync_rooms`]).
type Registry<T> = Arc<Mutex<HashMap<String, (ClusterCore<T>, std::sync::Weak<dyn RoomDiff>)>>>;

/// Rooms created and deleted since the last call (see `LocalBridge::room_diff`).
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

    /// The engines of every namespace socketioxide created so far, by namespace.
    pub fn namespaces(&self) -> Vec<ClusterCore<T>> {
        let registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        let mut cores: Vec<ClusterCore<T>> = registry.values().map(|(core, _)| core.clone()).collect();
        cores.sort_by(|a, b| a.namespace().cmp(b.namespace()));
        cores
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
