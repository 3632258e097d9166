//! # socketio-adapter-amqp
//!
//! The AMQP 0-9-1 (RabbitMQ) transport of `socketio-adapter-core`. Nodes speak the
//! `socket.io-adapter` ClusterAdapter envelope (the node-cluster dialect, as the sharded
//! Redis adapter does); this crate only moves its bytes. Requests, responses, heartbeats
//! and dead-node eviction are the cluster engine's ([`ClusterAdapter`]), the same one
//! every transport uses.
//!
//! [`ClusterAdapter`]: socketio_adapter_core::ClusterAdapter
//!
//! ## URL
//!
//! ```text
//! amqp[s]://[user[:password]@]host[:port][/vhost][?option=value&...]
//! ```
//!
//! | option | default | meaning |
//! |---|---|---|
//! | `prefix` | `socket.io` | channel prefix of the node-cluster dialect (`channelPrefix` in Node.js) |
//! | `exchange` | the prefix | name of the direct exchange (at most 255 bytes) |
//! | `subscription_mode` | `dynamic` | `static`, `dynamic` or `dynamic-private`: which rooms get their own routing key |
//! | `request_timeout_ms` | `5000` | how long a cluster request waits for answers |
//! | `prefetch` | `256` | unacknowledged deliveries the broker may push to a node (`basic.qos`) |
//! | `confirms` | `true` | publisher confirms: `publish` resolves once the broker has taken the message |
//! | `max_queue_length` | `65536` | `x-max-length` of a node's queue, oldest dropped beyond it (`0` = unbounded) |
//! | `heartbeat` | `10` | AMQP heartbeat in seconds (`0` = off): how fast a silent dead peer is noticed |
//! | `connect_timeout_ms` | `5000` | one connection attempt |
//! | `operation_timeout_ms` | `5000` | one broker operation (declare, bind, publish and its confirm) |
//! | `tls_ca_file` | (web roots) | `amqps://`: PEM file of a private CA to trust instead |
//! | `heartbeat_interval_ms`, `heartbeat_timeout_ms` | `5000`, `10000` | cluster heartbeats (period; silence before a node is evicted) |
//!
//! `user:password` default to `guest:guest`, the port to 5672 (5671 for `amqps://`), the
//! vhost to `/` (`%2f`; an empty path is `/` too); user, password and vhost are
//! percent-decoded only (`+` and `&` in a password are themselves, `@` is `%40`).
//! `amqps://` needs the cargo feature `tls` (rustls, ring, webpki
//! roots). [`AmqpOptions::parse`] does no I/O; [`AmqpTransport::connect`] connects.
//! Errors show the URL with its password replaced by `***`.
//!
//! ## Exchange, queues and bindings (namespace `/`, prefix `socket.io`)
//!
//! ```text
//!  publish(channel, bytes)            exchange "socket.io"  (direct, non-durable)
//!  = basic.publish(routing key =  --> routes by exact routing key = channel name
//!        channel name)                  |              |                  |
//!                      binding "socket.io#/#"   "socket.io#/#<uid>#"   "socket.io#/#room#"
//!                                       v              v                  v
//!                 per node: one queue "amq.gen-..." (server-named, exclusive, auto-delete,
//!                 non-durable, x-max-length), one consumer, one binding per subscribed channel
//! ```
//!
//! | routing key | bound by | carries |
//! |---|---|---|
//! | `socket.io#/#` | every node | broadcasts, requests, heartbeats of the namespace |
//! | `socket.io#/#<uid>#` | node `<uid>` only | responses to that node's requests (no other node sees them) |
//! | `socket.io#/#<room>#` | nodes with local members in `<room>` (`dynamic` modes) | broadcasts to exactly that room |
//!
//! - The exchange is a **direct** exchange named after the prefix, declared (idempotently)
//!   by every transport when it connects, publish-only ones included, and again after
//!   every reconnect. It is non-durable: a broker restart removes it and the first
//!   transport to reconnect declares it again. `#` and `.` in channel names are plain
//!   characters in a direct exchange (they are wildcards only in topic exchanges).
//! - A **node's queue** is created lazily, on the first `subscribe`: a publish-only user
//!   (an emitter) never declares a queue and never consumes. The queue is server-named,
//!   `exclusive` and `auto-delete`: RabbitMQ deletes it with its connection, so a node
//!   that dies (or is dropped) leaves no queue behind.
//! - **One binding per subscribed channel**: `subscribe` binds, `unsubscribe` unbinds when
//!   the last local subscriber of that channel leaves. A message reaches each bound queue
//!   once, so response routing and per-room routing need no filtering on the receiving
//!   node.
//! - **Routing keys are at most 255 bytes.** A longer channel name (a long room name) is
//!   mapped by [`routing_key`]: its first 200 bytes (cut at a character boundary), `~`,
//!   and the 16 hex digits of the 64-bit FNV-1a hash of the whole name. Publisher and
//!   subscribers apply the same mapping, and deliveries are handed to subscribers under
//!   the original channel name.
//! - Glob pattern subscriptions (`Channel::Pattern`, only the classic Redis dialect uses
//!   them) are refused with [`AmqpTransportError::Unsupported`].
//! - [`Transport::server_count`](socketio_adapter_core::Transport::server_count) returns
//!   `Ok(None)`: the engine counts servers by heartbeats.
//!
//! ## Guarantees
//!
//! - `publish` resolves once the broker confirmed the message (`confirms=true`), or once
//!   it was written to the connection (`confirms=false`); a `basic.nack` is
//!   [`AmqpTransportError::Nacked`]. Messages are transient (delivery mode 1) and are not
//!   `mandatory`: with no node bound to a routing key they are dropped, like pub/sub.
//! - `subscribe` resolves after the broker confirmed the binding (`queue.bind-ok`):
//!   messages published afterwards reach the node.
//! - Order is preserved per publisher and routing key (one channel per publisher).
//! - Memory is bounded: the broker pushes at most `prefetch` unacknowledged deliveries; a
//!   delivery is acknowledged only after it was handed to the subscriber's bounded queue
//!   (so a slow node pushes back to the broker), and the broker keeps at most
//!   `max_queue_length` messages per node queue, dropping the oldest beyond it.
//! - Malformed payloads are not this crate's business: they are handed on as bytes and
//!   the dialect logs and drops them. A delivery whose routing key no subscriber wants is
//!   acknowledged and dropped.
//!
//! ## Restarts and reconnection
//!
//! A supervisor task watches the connection, both channels and the consumer (every
//! 250 ms, and at once when a publish fails or the consumer ends). When any of them is
//! lost (broker restart, network failure, missed AMQP heartbeats, a channel closed by a
//! broker error, the queue deleted by an operator) it drops the connection and
//! reconnects with exponential backoff (core's [`Backoff`](socketio_adapter_core::Backoff):
//! 100 ms doubling to 2 s, with random jitter so that nodes restarted together do not
//! reconnect in lockstep; [`AmqpTransport::set_backoff`] changes it), re-declares the
//! exchange, declares a new queue, re-binds every subscribed channel, resumes consuming
//! and then sends [`TransportEvent::Reconnected`](socketio_adapter_core::TransportEvent)
//! to every subscriber (the engine answers with a fresh heartbeat, so membership
//! recovers). [`Transport::resubscribe`](socketio_adapter_core::Transport::resubscribe)
//! (called by the engine's health check when the node stops hearing itself) does the
//! same on purpose: new connection, new queue, every binding again.
//!
//! **During an outage, `publish` fails at once with [`AmqpTransportError::NotConnected`]
//! ("not connected to the AMQP broker (reconnecting)"); nothing is buffered or retried
//! by the transport**, so a caller never waits on a dead broker and memory stays bounded.
//! Messages published while a node was disconnected, and those still in its old queue,
//! are lost (the queue is transient by design), as with Redis pub/sub. `subscribe`
//! during an outage fails with `NotConnected` too (the engine retries room
//! subscriptions); subscriptions made before the outage are restored.
//!
//! The first connection in [`AmqpTransport::connect`] is one attempt bounded by
//! `connect_timeout_ms`; its error says why (refused, authentication, vhost). Dropping
//! the last clone of a transport closes its connection, which deletes its queue.
//!
//! ## Example
//!
//! ```no_run
//! # async fn run(sockets: std::sync::Arc<dyn socketio_adapter_core::LocalSockets>) -> Result<(), Box<dyn std::error::Error>> {
//! use socketio_adapter_core::{Adapter, ClusterAdapter};
//! use socketio_adapter_amqp::{AmqpOptions, AmqpTransport};
//!
//! let opts = AmqpOptions::parse("amqp://guest:guest@127.0.0.1:5672/%2f?prefix=socket.io")?;
//! let transport = AmqpTransport::connect(&opts).await?;
//! let adapter = ClusterAdapter::new(transport, opts.dialect(), "/", sockets, opts.cluster_config())?;
//! adapter.init().await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod error;
mod options;
mod session;
mod transport;

pub use error::AmqpTransportError;
pub use options::{AmqpOptions, Layout, MAX_ROUTING_KEY, routing_key};
pub use transport::AmqpTransport;

/// The README example, compiled by `cargo test --doc`.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
