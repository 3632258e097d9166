//! # socketio-emitter
//!
//! Push events into a Socket.IO cluster from any process (a cron job, a task worker, an
//! HTTP handler) without running a Socket.IO server: the Rust counterpart of
//! `@socket.io/redis-emitter`, byte-compatible with it, plus what no other emitter has:
//! waiting for the clients' acknowledgements and asking the cluster who is connected.
//!
//! ```no_run
//! # async fn run() -> Result<(), socketio_emitter::EmitterError> {
//! use socketio_emitter::Emitter;
//!
//! let io = Emitter::connect("redis://127.0.0.1:6379").await?;
//! io.emit("news", ("hello", 42)).await?; // a tuple is several arguments
//! io.of("/admin").to("ops").except("muted").volatile().emit("alert", "disk full").await?;
//! io.to("room1").sockets_join(["room2"]).await?;
//!
//! let acks = io.to("quiz").timeout(std::time::Duration::from_secs(5)).emit_with_ack("q", "2+2?").await?;
//! println!("{} answers, complete: {}", acks.value.len(), acks.is_complete());
//! let sockets = io.fetch_sockets().await?.value;
//! let servers = io.server_count().await?;
//! # let _ = (sockets, servers);
//! # Ok(()) }
//! ```
//!
//! ## URLs and dialects
//!
//! [`Emitter::connect`] takes the URL the servers use: `redis://` / `rediss://` (cargo
//! feature `redis`, on by default; every option of `socketio-adapter-redis`, e.g.
//! `?mode=sharded&prefix=chat`), `kafka://` (feature `kafka`), `amqp://` / `amqps://`
//! (feature `amqp`). The [`DialectKind`] follows from the URL unless
//! [`ConnectOptions::dialect`] says otherwise:
//!
//! | dialect | speaks to | default for |
//! |---|---|---|
//! | [`DialectKind::NodeRedis`] | `@socket.io/redis-adapter` `createAdapter` servers (what `@socket.io/redis-emitter` sends) | `redis://` |
//! | [`DialectKind::NodeCluster`] | `createShardedAdapter` servers and the Kafka / AMQP transports | `redis://..?mode=sharded`, `kafka://`, `amqp://` |
//! | [`DialectKind::NodeStreams`] | `@socket.io/redis-streams-adapter` 0.3 servers (broadcasts appended to the stream, requests over pub/sub) | `redis://..?mode=streams` |
//! | [`DialectKind::Python`] | python-socketio / Flask-SocketIO client managers: `RedisManager` on Redis, `KombuManager` / `AsyncAioPikaManager` on RabbitMQ, `KafkaManager` on Kafka | `?dialect=python&channel=...` on any URL |
//!
//! A Flask-SocketIO `message_queue` URL plus `?dialect=python&channel=flask-socketio`
//! reaches the same processes, with python-socketio's own layout on each broker (see
//! `socketio_adapter_core::options`). The python dialect carries emits (rooms; `except`
//! entries are socket ids, python's `skip_sid`), and joins, leaves and disconnects of one
//! socket id; python-socketio has no requests, so `fetch_sockets`, `all_rooms`,
//! `server_count`, `server_side_emit` and acks from an emitter (callbacks need a server)
//! are refused with an error naming the python protocol.
//!
//! ## Connections and what the emitter subscribes to
//!
//! An emitter holds one transport, shared by its clones (`of`, `to`, ... return cheap
//! views of the same emitter). Plain emits and the cluster operations
//! (`sockets_join`, `disconnect_sockets`, `server_side_emit`) only publish. The first
//! request that waits for answers (`emit_with_ack`, `fetch_sockets`, `all_rooms`,
//! `server_count`, `server_side_emit_with_ack`) subscribes to the namespace's response
//! channels, as a requester: never to a channel that servers count as a server, so Node.js
//! servers' own `fetchSockets` keep completing. Concurrent emits are pipelined on the one
//! connection; each resolves when the broker accepted it.
//!
//! Order: emits awaited one after another arrive in that order. Emits started
//! concurrently from one task (`FuturesUnordered`, `join_all`) are sent in the order they
//! were first polled while fewer than about a thousand wait for the broker (the Redis
//! connection's pipeline buffer); beyond that they may be reordered. `sio emit --stdin`
//! keeps at most 512 in flight and so preserves line order.
#![warn(missing_docs)]

mod any;
mod args;
mod error;
#[cfg(feature = "logs")]
mod logs;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use socketio_adapter_core::dialect::{Dialect, EMITTER_UID};
use socketio_adapter_core::{BroadcastOptions, ClusterConfig, ClusterCore, EventPacket, Room, Transport};

pub use any::{AnyOptions, AnyTransport, AnyTransportError};
pub use error::EmitterError;
#[cfg(feature = "logs")]
pub use logs::{LogFormat, init_logs};
pub use socketio_adapter_core::{Args, Gathered, Shortfall, SocketInfo, Value};

/// Event names Socket.IO reserves (the same list as `@socket.io/redis-emitter`).
pub const RESERVED_EVENTS: [&str; 6] =
    ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];

pub use socketio_adapter_core::dialect::DialectKind;

/// How an emitter talks to the cluster: the dialect (with its channel prefix) and the request settings.
#[derive(Clone, Debug)]
pub struct EmitterConfig {
    /// The wire protocol, with its channel prefix.
    pub dialect: Arc<dyn Dialect>,
    /// Timeouts and limits of requests (`request_timeout` bounds `fetch_sockets` & co.).
    pub cluster: ClusterConfig,
}

impl EmitterConfig {
    /// A configuration for `dialect` with default request settings.
    pub fn new(dialect: Arc<dyn Dialect>) -> Self {
        EmitterConfig { dialect, cluster: ClusterConfig::default() }
    }

    /// Bounds every request (and, unless [`Emitter::timeout`] says otherwise, the wait
    /// for acks).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.cluster = self.cluster.with_request_timeout(timeout);
        self
    }
}

/// Overrides for [`Emitter::connect_with`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// The dialect (default: from the URL).
    pub dialect: Option<DialectKind>,
    /// The channel prefix (default: the URL's `prefix` option, else `socket.io`).
    pub prefix: Option<String>,
    /// The request timeout (default: the URL's `request_timeout_ms`, else 5 s).
    pub request_timeout: Option<Duration>,
    /// The python dialect's manager channel (default `socketio`; Flask-SocketIO uses
    /// `flask-socketio`).
    pub channel: Option<String>,
}

impl ConnectOptions {
    /// Sets the dialect.
    pub fn dialect(mut self, dialect: DialectKind) -> Self {
        self.dialect = Some(dialect);
        self
    }

    /// Sets the channel prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Sets the request timeout.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Sets the python dialect's manager channel.
    pub fn channel(mut self, channel: impl Into<String>) -> Self {
        self.channel = Some(channel.into());
        self
    }
}

struct Shared<T: Transport> {
    transport: T,
    config: EmitterConfig,
    /// One requester engine per namespace, created on first use.
    cores: Mutex<HashMap<String, ClusterCore<T>>>,
}

/// Emits into a Socket.IO cluster. Cheap to clone; clones share the connection.
///
/// `of`, `to`, `except`, `volatile`, `compress` and `timeout` return a new view and
/// leave `self` unchanged, as Socket.IO's broadcast operators do.
pub struct Emitter<T: Transport = AnyTransport> {
    shared: Arc<Shared<T>>,
    nsp: String,
    opts: BroadcastOptions,
}

impl<T: Transport> Clone for Emitter<T> {
    fn clone(&self) -> Self {
        Emitter { shared: Arc::clone(&self.shared), nsp: self.nsp.clone(), opts: self.opts.clone() }
    }
}

impl<T: Transport> std::fmt::Debug for Emitter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("transport", &self.shared.transport.name())
            .field("dialect", &self.shared.config.dialect.name())
            .field("nsp", &self.nsp)
            .field("opts", &self.opts)
            .finish()
    }
}

impl Emitter<AnyTransport> {
    /// Connects to the broker of `url` with the dialect the URL implies.
    pub async fn connect(url: &str) -> Result<Self, EmitterError> {
        Self::connect_with(url, ConnectOptions::default()).await
    }

    /// Connects to the broker of `url` with overrides.
    pub async fn connect_with(url: &str, options: ConnectOptions) -> Result<Self, EmitterError> {
        let (transport, config) = connect_any(url, &options).await?;
        Ok(Emitter::new(transport, config))
    }
}

async fn connect_any(url: &str, options: &ConnectOptions) -> Result<(AnyTransport, EmitterConfig), EmitterError> {
    let mut opts = AnyOptions::parse(url)?;
    if options.dialect.is_some() || options.channel.is_some() {
        let shared = opts.shared();
        let (dialect, channel) =
            (options.dialect.or(shared.dialect), options.channel.clone().or_else(|| shared.channel.clone()));
        opts.set_dialect(dialect, channel)?;
    }
    if let Some(p) = &options.prefix {
        opts.set_prefix(p);
    }
    if let Some(t) = options.request_timeout {
        opts.request_timeout = t;
    }
    let transport = opts.connect().await?;
    Ok((transport, EmitterConfig { dialect: opts.dialect(), cluster: opts.cluster_config() }))
}

impl<T: Transport> Emitter<T> {
    /// An emitter over an existing transport (namespace `/`).
    pub fn new(transport: T, config: EmitterConfig) -> Self {
        Emitter {
            shared: Arc::new(Shared { transport, config, cores: Mutex::new(HashMap::new()) }),
            nsp: "/".to_owned(),
            opts: BroadcastOptions::all(),
        }
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.shared.transport
    }

    /// The dialect (with its channel prefix).
    pub fn dialect(&self) -> &Arc<dyn Dialect> {
        &self.shared.config.dialect
    }

    /// The namespace this view targets.
    pub fn namespace(&self) -> &str {
        &self.nsp
    }

    /// The rooms, exceptions and flags this view carries.
    pub fn options(&self) -> &BroadcastOptions {
        &self.opts
    }

    /// The same emitter for namespace `nsp` (rooms and flags reset). A namespace name
    /// the protocol cannot carry is reported by the next operation.
    pub fn of(&self, nsp: impl Into<String>) -> Self {
        let nsp = nsp.into();
        let nsp = if nsp.starts_with('/') { nsp } else { format!("/{nsp}") };
        Emitter { shared: Arc::clone(&self.shared), nsp, opts: BroadcastOptions::all() }
    }

    /// Targets room `room` too (a socket id is a room).
    pub fn to(&self, room: impl Into<Room>) -> Self {
        self.with(|o| o.to(room))
    }

    /// Alias of [`Emitter::to`].
    pub fn in_(&self, room: impl Into<Room>) -> Self {
        self.to(room)
    }

    /// Leaves out the sockets in room `room`.
    pub fn except(&self, room: impl Into<Room>) -> Self {
        self.with(|o| o.except(room))
    }

    /// Drops the event for clients not ready to receive it.
    pub fn volatile(&self) -> Self {
        self.with(BroadcastOptions::volatile)
    }

    /// `compress(false)` asks the servers not to compress the packet.
    pub fn compress(&self, compress: bool) -> Self {
        self.with(|o| o.compress(compress))
    }

    /// How long [`Emitter::emit_with_ack`] waits (default: the request timeout).
    pub fn timeout(&self, timeout: Duration) -> Self {
        self.with(|o| o.timeout(timeout))
    }

    fn with(&self, f: impl FnOnce(BroadcastOptions) -> BroadcastOptions) -> Self {
        Emitter { shared: Arc::clone(&self.shared), nsp: self.nsp.clone(), opts: f(self.opts.clone()) }
    }

    /// The cluster engine of this view's namespace (a requester, started by its first
    /// request), for what this API does not offer: [`ClusterCore::probe`],
    /// [`ClusterCore::known_nodes`], [`ClusterCore::stats`], ...
    pub fn cluster(&self) -> Result<ClusterCore<T>, EmitterError> {
        self.core()
    }

    fn core(&self) -> Result<ClusterCore<T>, EmitterError> {
        let mut cores = self.shared.cores.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(core) = cores.get(&self.nsp) {
            return Ok(core.clone());
        }
        let s = &self.shared;
        let core = ClusterCore::requester(
            s.transport.clone(),
            Arc::clone(&s.config.dialect),
            self.nsp.clone(),
            EMITTER_UID.to_owned(),
            s.config.cluster.clone(),
        )?;
        cores.insert(self.nsp.clone(), core.clone());
        Ok(core)
    }

    fn packet<A: Serialize + ?Sized>(event: &str, args: &A) -> Result<EventPacket, EmitterError> {
        Self::checked(event)?;
        Ok(EventPacket::new(event, args::to_args(args).map_err(EmitterError::Args)?))
    }

    fn checked(event: &str) -> Result<(), EmitterError> {
        if RESERVED_EVENTS.contains(&event) {
            return Err(EmitterError::ReservedEvent(event.to_owned()));
        }
        Ok(())
    }

    /// Sends `event` with `args` to the targeted clients of every server. `args` is any
    /// `Serialize` value: a tuple is several arguments, `()` none, anything else one;
    /// `bytes::Bytes` and `serde_bytes` values travel as binary. Resolves when the
    /// broker accepted the message.
    pub async fn emit<A: Serialize>(&self, event: &str, args: A) -> Result<(), EmitterError> {
        let packet = Self::packet(event, &args)?;
        self.core()?.broadcast(packet, self.opts.clone()).await?;
        Ok(())
    }

    /// Like [`Emitter::emit`] with arguments that already are [`Value`]s (one per
    /// argument): they are used as they are, without a conversion (the `sio emit --stdin`
    /// path, which parses each line into values).
    pub async fn emit_values(&self, event: &str, args: Vec<Value>) -> Result<(), EmitterError> {
        Self::checked(event)?;
        self.core()?.broadcast(EventPacket::new(event, args), self.opts.clone()).await?;
        Ok(())
    }

    /// Sends `event` and collects every targeted client's acknowledgement (the first
    /// argument of its ack callback) across the cluster. When the timeout passes first,
    /// the result holds what arrived and a [`Shortfall`].
    pub async fn emit_with_ack<A: Serialize>(
        &self,
        event: &str,
        args: A,
    ) -> Result<Gathered<Vec<Value>>, EmitterError> {
        let packet = Self::packet(event, &args)?;
        let stream = self.core()?.broadcast_with_ack(packet, self.opts.clone()).await?;
        let got = stream.collect().await;
        Ok(Gathered { value: got.value.into_iter().filter_map(|a| a.result.ok()).collect(), shortfall: got.shortfall })
    }

    /// Makes the targeted sockets join `rooms`.
    ///
    /// In the dynamic subscription modes the servers subscribe a room's channel only once
    /// the join reached them; for 10 s this emitter's broadcasts to one of `rooms` alone go
    /// on the namespace's main channel instead, behind the join, so an emit right after
    /// the join reaches the new members.
    pub async fn sockets_join<R: Into<Room>>(&self, rooms: impl IntoIterator<Item = R>) -> Result<(), EmitterError> {
        self.core()?.add_sockets(self.opts.clone(), rooms.into_iter().map(Into::into).collect()).await?;
        Ok(())
    }

    /// Makes the targeted sockets leave `rooms`.
    pub async fn sockets_leave<R: Into<Room>>(&self, rooms: impl IntoIterator<Item = R>) -> Result<(), EmitterError> {
        self.core()?.del_sockets(self.opts.clone(), rooms.into_iter().map(Into::into).collect()).await?;
        Ok(())
    }

    /// Disconnects the targeted sockets (`close`: also close the underlying connection).
    pub async fn disconnect_sockets(&self, close: bool) -> Result<(), EmitterError> {
        self.core()?.disconnect_sockets(self.opts.clone(), close).await?;
        Ok(())
    }

    /// Sends an event to the servers of the namespace (their `serverSideEmit` handlers).
    pub async fn server_side_emit<A: Serialize>(&self, event: &str, args: A) -> Result<(), EmitterError> {
        let packet = Self::packet(event, &args)?;
        self.core()?.server_side_emit(packet).await?;
        Ok(())
    }

    /// Sends an event to the servers and collects their acknowledgements.
    pub async fn server_side_emit_with_ack<A: Serialize>(
        &self,
        event: &str,
        args: A,
    ) -> Result<Gathered<Vec<Value>>, EmitterError> {
        let packet = Self::packet(event, &args)?;
        Ok(self.core()?.server_side_emit_with_ack(packet, self.opts.flags.timeout).await?)
    }

    /// The targeted sockets of the whole cluster (id, rooms, and handshake and data where
    /// the servers send them).
    pub async fn fetch_sockets(&self) -> Result<Gathered<Vec<SocketInfo>>, EmitterError> {
        Ok(self.core()?.fetch_sockets(self.opts.clone()).await?)
    }

    /// Every room with at least one member, across the cluster.
    pub async fn all_rooms(&self) -> Result<Gathered<Vec<Room>>, EmitterError> {
        Ok(self.core()?.all_rooms().await?)
    }

    /// The number of servers in the namespace's cluster (the emitter is not one).
    pub async fn server_count(&self) -> Result<usize, EmitterError> {
        Ok(self.core()?.server_count().await?)
    }

    /// Stops the request engines (unsubscribes). Emits made afterwards start them again.
    pub async fn close(&self) -> Result<(), EmitterError> {
        let cores: Vec<_> =
            self.shared.cores.lock().unwrap_or_else(PoisonError::into_inner).drain().map(|(_, c)| c).collect();
        for core in cores {
            core.close().await?;
        }
        Ok(())
    }
}

/// The README example, compiled by `cargo test --doc`.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
