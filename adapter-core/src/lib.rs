//! # socketio-adapter-core
//!
//! The cluster layer for Socket.IO servers, independent of the broker and of the
//! server crate. It is what lets a broadcast made on node A reach the clients held by
//! nodes B and C, makes room membership queryable across the cluster, and speaks the
//! wire protocols of the Node.js adapters so that Rust and Node.js servers (and the
//! official Node.js emitter) can share one cluster.
//!
//! ```text
//!  Socket.IO server                       worker / CLI (socketio-emitter)
//!       |  Adapter (one per namespace)        |
//!       v                                     v
//!  ClusterAdapter<T> / ClusterCore<T>  -- ids, response accounting, timeouts,
//!       |                                  heartbeats, eviction, ack streams
//!       |  Dialect: Message <-> (channel, bytes)
//!       |     node-redis   : @socket.io/redis-adapter 8.x classic
//!       |     node-cluster : socket.io-adapter ClusterAdapter envelope
//!       v
//!  Transport: publish / subscribe / count subscribers   (Redis, Kafka, AMQP, memory)
//! ```
//!
//! - [`Adapter`]: the trait a server calls, object-safe.
//! - [`LocalSockets`]: what the server implements so the adapter reaches its sockets.
//! - [`ClusterAdapter`]: the one implementation of [`Adapter`] for every transport.
//! - [`dialect`]: the pure wire dialects, tested byte for byte against captures of the
//!   Node.js peers.
//! - [`Transport`]: the seam transports implement (`socketio-adapter-redis`, ...).
//! - [`options`]: the URL grammar and the options every transport's URL shares
//!   (credentials, hosts, query, prefix, timeouts), parsed once for all of them.
//!
//! ## Example
//!
//! A node on any transport, delivering through a server's [`LocalSockets`]:
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use socketio_adapter_core::dialect::NodeClusterDialect;
//! use socketio_adapter_core::{
//!     Adapter, BroadcastOptions, ClusterAdapter, ClusterConfig, EventPacket, LocalSockets, Transport,
//! };
//!
//! async fn run<T: Transport>(transport: T, sockets: Arc<dyn LocalSockets>) -> Result<(), Box<dyn std::error::Error>> {
//!     let config = ClusterConfig::default().with_request_timeout(Duration::from_secs(2));
//!     let adapter = ClusterAdapter::new(transport, Arc::new(NodeClusterDialect::default()), "/", sockets, config)?;
//!     adapter.init().await?;
//!     // the server reports membership as sockets connect and join rooms
//!     adapter.add_all("sid-1", &["room1".into()]);
//!     // io.to("room1").except("room2").emit("hello", "world")
//!     let opts = BroadcastOptions::all().to("room1").except("room2");
//!     adapter.broadcast(EventPacket::new("hello", vec!["world".into()]), opts).await?;
//!     // every socket of the cluster, and who did not answer in time
//!     let sockets = adapter.fetch_sockets(BroadcastOptions::all()).await?;
//!     if let Some(missing) = &sockets.shortfall {
//!         eprintln!("incomplete: {missing}");
//!     }
//!     adapter.close().await?;
//!     Ok(())
//! }
//! ```
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod adapter;
pub mod cluster;
pub mod dialect;
mod error;
pub mod json;
mod local;
pub mod message;
pub mod msgpack;
pub mod options;
pub mod rooms;
pub mod throttle;
pub mod transport;
mod types;
mod value;

#[cfg(feature = "memory")]
pub mod memory;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "test-util")]
pub mod testing;

#[cfg(feature = "socketioxide")]
pub mod socketioxide;

pub use adapter::{AckResponse, AckStream, Adapter, Gathered};
pub use cluster::{
    ClusterAdapter, ClusterConfig, ClusterCore, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_ROOM_CHANNELS, Membership,
    NotReady, RoundTrips, Stats,
};
pub use dialect::Dialect;
pub use error::{AdapterError, DecodeError, DialectError, Shortfall, error_chain};
pub use local::{
    AckError, IndexedNode, LocalAck, LocalAckStream, LocalNode, LocalSockets, PendingDelivery, ServerSideAck,
    SocketDetails,
};
pub use message::{Body, Message};
pub use transport::{
    Backoff, Channel, Counters, EventSender, Reconnect, Stat, Subscribers, Supervisor, Transport, TransportEvent,
    TransportStats,
};
pub use types::{BroadcastFlags, BroadcastOptions, EventPacket, Handshake, NodeId, Room, SocketId, SocketInfo};
pub use value::{Args, Map, Timestamp, Value, ValueError};

/// The README example, compiled by `cargo test --doc`.
#[doc = include_str!("../README.md")]
#[cfg(all(doctest, feature = "socketioxide", feature = "memory"))]
pub struct ReadmeDoctests;
