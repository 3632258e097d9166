//! # socketio-adapter-redis
//!
//! The Redis transport of `socketio-adapter-core`: Rust Socket.IO nodes join a cluster of
//! `@socket.io/redis-adapter` 8.x servers (and accept `@socket.io/redis-emitter` emits) on
//! standalone Redis or Redis Cluster.
//!
//! ## URL
//!
//! ```text
//! redis[s]://[[user]:password@]host[:port][,host[:port]...][/db][?option=value&...]
//! ```
//!
//! | option | default | meaning |
//! |---|---|---|
//! | `mode` | `classic` | `classic` (`createAdapter`) or `sharded` (`createShardedAdapter`) |
//! | `cluster` | `true` with several hosts | connect as a Redis Cluster client (hosts are seeds) |
//! | `prefix` | `socket.io` | channel prefix (`key` / `channelPrefix` in Node.js) |
//! | `request_timeout_ms` | `5000` | how long a cluster request waits for answers |
//! | `specific_response_channel` | `false` | classic: `publishOnSpecificResponseChannel` |
//! | `subscription_mode` | `dynamic` | sharded: `static`, `dynamic` or `dynamic-private` |
//! | `command_timeout_ms` | `2000` | one Redis command |
//! | `connect_timeout_ms` | `2000` | one connection attempt |
//! | `tls_ca_file` | (web roots) | `rediss://`: PEM file of a private CA to trust instead |
//! | `heartbeat_interval_ms`, `heartbeat_timeout_ms` | `5000`, `10000` | cluster heartbeats (period; silence before a node is evicted) |
//!
//! `user:password@` authenticates with an ACL user (`:password@` with the default user);
//! both are URL user-info: percent-decoded only (`+` and `&` are themselves, `@` is `%40`).
//! `/db` selects a database (standalone only), `rediss://` uses TLS (feature `tls`).
//! [`RedisOptions::parse`] does no I/O; [`RedisTransport::connect`] connects.
//!
//! ## Channels (namespace `/`, prefix `socket.io`)
//!
//! Classic mode, PUBLISH / SUBSCRIBE / PSUBSCRIBE, exactly as `createAdapter`:
//!
//! | channel | use |
//! |---|---|
//! | `socket.io#/#` | broadcasts to everyone or to several rooms |
//! | `socket.io#/#room#` | broadcasts to exactly one room (received through the pattern `socket.io#/#*`) |
//! | `socket.io-request#/#` | requests (types 0-7); `PUBSUB NUMSUB` of it counts the servers |
//! | `socket.io-response#/#` | answers (shared) |
//! | `socket.io-response#/#<uid>#` | answers to one node (`specific_response_channel`) |
//!
//! Sharded mode, SPUBLISH / SSUBSCRIBE, exactly as `createShardedAdapter`:
//!
//! | channel | use |
//! |---|---|
//! | `socket.io#/#` | every message of the namespace; `PUBSUB SHARDNUMSUB` counts the servers |
//! | `socket.io#/#<uid>#` | answers to one node |
//! | `socket.io#/#room#` | `dynamic` modes: broadcasts to one room, subscribed while the room has local members |
//!
//! ## Which mode
//!
//! - **classic** when the cluster has `createAdapter` Node.js servers or uses
//!   `@socket.io/redis-emitter` (or the PHP/Go/Java emitters), and on a single Redis.
//!   Every node receives every broadcast (PSUBSCRIBE).
//! - **sharded** on Redis Cluster at scale: a sharded message only travels within the shard
//!   that owns its channel, and in `dynamic` mode room broadcasts reach only nodes with
//!   members in the room. Needs Redis 7; talks to `createShardedAdapter` servers.
//!
//! ## Connections
//!
//! Standalone Redis: one publisher connection (opened by [`RedisTransport::connect`]) and
//! one RESP3 subscriber connection, opened by the first subscription, so a publish-only
//! user such as an emitter holds a single connection. Redis Cluster: one cluster client
//! for both. Clones share them.
//!
//! ## Reconnection
//!
//! The publisher reconnects on its own. The subscriber's channels live in a registry of
//! `socketio-adapter-core` (its [`Supervisor`](socketio_adapter_core::Supervisor)): after a disconnect (or when Redis drops a shard channel after a slot
//! migration, or when the cluster engine's health check finds the subscription deaf) a
//! supervisor reconnects with exponential backoff (core's [`Backoff`](socketio_adapter_core::Backoff):
//! 100 ms doubling to 2 s, jittered; [`RedisTransport::set_backoff`] changes it), re-issues
//! every channel (one per SSUBSCRIBE) and sends `Reconnected` to the cluster engine.
//! Messages published while the subscriber was down are lost, as with every Redis pub/sub
//! client.
//!
//! ## Example
//!
//! ```no_run
//! # async fn run(sockets: std::sync::Arc<dyn socketio_adapter_core::LocalSockets>) -> Result<(), Box<dyn std::error::Error>> {
//! use socketio_adapter_core::{Adapter, ClusterAdapter};
//! use socketio_adapter_redis::{RedisOptions, RedisTransport};
//!
//! let opts = RedisOptions::parse("redis://127.0.0.1:6379?prefix=socket.io")?;
//! let transport = RedisTransport::connect(&opts).await?;
//! let adapter = ClusterAdapter::new(transport, opts.dialect(), "/", sockets, opts.cluster_config())?;
//! adapter.init().await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod batch;
mod error;
mod options;
mod subscriber;
mod transport;

pub use error::RedisTransportError;
pub use options::{ACL_COMMANDS, Mode, RedisOptions, acl_rule};
pub use transport::RedisTransport;

/// The README example, compiled by `cargo test --doc`.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
