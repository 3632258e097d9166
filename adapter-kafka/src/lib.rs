//! # socketio-adapter-kafka
//!
//! The Kafka transport of `socketio-adapter-core`: Socket.IO nodes (and publish-only
//! emitters) form a cluster over one Kafka topic, speaking the `socket.io-adapter`
//! `ClusterAdapter` envelope (the node-cluster dialect) with heartbeat membership. Built on
//! `rdkafka` (bundled librdkafka); tested against the tansu Kafka-protocol broker.
//!
//! ## URL
//!
//! ```text
//! kafka://[user:password@]host[:port][,host[:port]...][?option=value&...]
//! ```
//!
//! Hosts are bootstrap brokers (port 9092 by default, IPv6 as `[::1]:9092`).
//! `user:password@` authenticates with SASL (`PLAIN` unless `sasl_mechanism` says
//! otherwise, over `sasl_plaintext` unless `security_protocol` says otherwise); user and
//! password are URL user-info: percent-decoded only (`+` and `&` are themselves, `@` is `%40`).
//! [`KafkaOptions::parse`] does no I/O; [`KafkaTransport::connect`] connects.
//!
//! | option | default | meaning |
//! |---|---|---|
//! | `prefix` | `socket.io` | channel prefix of the dialect (`channelPrefix` in Node.js) |
//! | `topic` | the prefix | the topic every message travels on |
//! | `partitions` | `4` | partitions when this transport creates the topic |
//! | `replication_factor` | `-1` | replication when creating it (`-1`: the broker's default) |
//! | `create_topic` | `true` | create the topic when it is missing (else: an error naming it) |
//! | `client_id` | `socketio-cluster` | Kafka `client.id` |
//! | `linger_ms` | `1` | producer linger: latency bound when idle, batching under load |
//! | `batch_size` | librdkafka's (1 MB) | producer batch size in bytes |
//! | `batch_num_messages` | librdkafka's (10 000) | producer batch size in messages |
//! | `compression` | `none` | `none`, `gzip`, `snappy` or `lz4` |
//! | `idempotence` | `true` | idempotent producer (no duplicates on retries, order kept) |
//! | `request_timeout_ms` | `5000` | cluster request timeout (fetch sockets, acks) |
//! | `message_timeout_ms` | `10000` | how long one publish may wait for the broker |
//! | `connect_timeout_ms` | `5000` | metadata requests, topic creation, connection set-up |
//! | `fetch_wait_max_ms` | `20` | consumer long poll (`fetch.wait.max.ms`), see below |
//! | `subscription_mode` | `static` | dialect: `static`, `dynamic` or `dynamic-private` |
//! | `security_protocol` | `plaintext` | `plaintext`, `sasl_plaintext`; `ssl`, `sasl_ssl` with feature `ssl` |
//! | `sasl_mechanism` | `PLAIN` | `PLAIN`; `SCRAM-SHA-256`, `SCRAM-SHA-512` with feature `sasl` |
//! | `ssl_ca_location` | system roots | CA bundle (PEM) for `ssl` / `sasl_ssl` |
//! | `librdkafka.<property>` | | any other librdkafka property, passed through unchanged |
//! | `heartbeat_interval_ms`, `heartbeat_timeout_ms` | `5000`, `10000` | cluster heartbeats (period; silence before a node is evicted) |
//!
//! Latency: the producer waits at most `linger_ms` (1 ms) before sending, so an idle
//! cluster sends each message at once and a busy one batches. Apache Kafka answers a
//! consumer's long poll as soon as a record arrives; tansu answers only when
//! `fetch_wait_max_ms` is over, so there a message waits half of it on average (about
//! 12 ms measured with the default 20 ms, 52 ms with 100 ms). On brokers that answer
//! early, raise it (e.g. 500) to save idle fetch requests at no latency cost.
//!
//! `subscription_mode` only changes which channel names the dialect uses: every node reads
//! the whole topic anyway, and per-room channels become a filter in the node (records of
//! rooms without local members are dropped before decoding). `static` is the default
//! because it needs no subscription changes when rooms come and go.
//!
//! ## Topic, partitions, records
//!
//! One topic per prefix (per cluster), named like the prefix unless `topic` is given,
//! created on first connect with `partitions` partitions (default
//! [`DEFAULT_PARTITIONS`] = 4) if missing. An existing topic is used with whatever
//! partition count it has. Each record carries:
//!
//! - key: the namespace (`/`, `/admin`), so every message of a namespace lands in one
//!   partition and keeps its order (broadcasts, requests and responses alike);
//! - header [`CHANNEL_HEADER`] (`sio-channel`): the channel, e.g. `socket.io#/#` or
//!   `socket.io#/#<node uid>#`; subscribing to a channel is a filter in the consumer;
//! - value: the dialect's bytes (JSON, or MessagePack when the message holds binary).
//!
//! Records without the header, or with a non-UTF-8 one, are logged (rate-limited) and
//! dropped; payloads the dialect cannot decode are logged and dropped by the cluster engine.
//! Neither ever panics. Set a retention on the topic that suits you (cluster messages are
//! only useful for seconds); this transport never reads old records.
//!
//! ## Consumers, and what a node receives
//!
//! No consumer groups: every node must see every message, and group joins are slow
//! (seconds to tens of seconds). A node's consumer is assigned every partition by hand.
//! It is started by the first `subscribe`, so a publish-only process (an emitter without
//! acknowledgements) never reads the topic.
//!
//! To join, the transport produces a *marker* record (header [`MARKER_HEADER`]) to every
//! partition, learns each marker's offset from the delivery report, and reads each
//! partition from just after its marker. `subscribe` resolves only then, so:
//!
//! - everything published after `subscribe` resolved is received;
//! - nothing published before the node joined is ever delivered, whatever the broker
//!   answers to "latest offset" requests (none are made: tansu answers them wrongly after
//!   multi-record batches);
//! - nothing is delivered twice: per partition the transport keeps the next offset it may
//!   deliver and drops anything below it (re-fetches after a re-assignment, replays).
//!
//! Subscriptions after the first are a filter change only, effective at once. The
//! consumer reads until the transport is dropped, even when nothing is subscribed.
//!
//! Deliveries go to the subscribers' bounded queues; a full queue makes the consumer wait
//! (back-pressure), and librdkafka's prefetch is bounded (16 MB per consumer), so memory
//! stays bounded. The producer queue is bounded too: a full one makes `publish` wait.
//!
//! ## Broker restarts and outages
//!
//! librdkafka reconnects on its own, and the node keeps its cluster membership (it keeps
//! its id; its heartbeats resume). When every broker is down (or the consumer's position
//! is lost, or the cluster engine's health check calls `resubscribe`), a supervisor:
//!
//! 1. stops fetching at once and retires the consumer;
//! 2. after an outage, replaces the producer by a fresh one (a broker that lost its state
//!    fences the old idempotent producer; publishes still queued in the old one fail);
//! 3. once a broker answers: re-creates the topic if it vanished (a broker without
//!    persistence), produces fresh markers, and assigns a fresh consumer from each
//!    partition's next deliverable offset — or from just after the new marker if the
//!    partition's log was reset below it;
//! 4. sends [`TransportEvent::Reconnected`](socketio_adapter_core::TransportEvent) to
//!    every subscriber (the cluster engine then announces itself again).
//!
//! Retries back off as core's [`Backoff`](socketio_adapter_core::Backoff) says (100 ms doubling to 2 s,
//! jittered; [`KafkaTransport::set_backoff`] changes it). Messages published while the broker was down
//! fail (`publish` returns an error after `message_timeout_ms`); messages other nodes
//! published between the restart and this node's re-placement may be lost on a broker
//! without persistence, never delivered twice. With a persistent broker, records
//! published during a network partition of this node are delivered after it returns.
//!
//! A fresh consumer rather than the old one reconnected: on a restarted tansu that lost
//! the topic, librdkafka 2.12 crashes the process (a NULL topic name in its Fetch
//! leader-discovery path) on the answers to fetches of the vanished topic; the old
//! consumer therefore stops fetching as soon as the outage is reported, and its
//! reconnect backoff (500 ms) leaves room for that.
//!
//! ## Example
//!
//! ```no_run
//! # async fn run(sockets: std::sync::Arc<dyn socketio_adapter_core::LocalSockets>) -> Result<(), Box<dyn std::error::Error>> {
//! use socketio_adapter_core::{Adapter, ClusterAdapter};
//! use socketio_adapter_kafka::{KafkaOptions, KafkaTransport};
//!
//! let opts = KafkaOptions::parse("kafka://127.0.0.1:9092?prefix=socket.io")?;
//! let transport = KafkaTransport::connect(&opts).await?;
//! let adapter = ClusterAdapter::new(transport, opts.dialect(), "/", sockets, opts.cluster_config())?;
//! adapter.init().await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod consumer;
mod error;
mod options;
mod transport;

pub use error::KafkaTransportError;
pub use options::{DEFAULT_PARTITIONS, KafkaOptions, Password};
pub use transport::{CHANNEL_HEADER, KafkaTransport, MARKER_HEADER};

/// The README example, compiled by `cargo test --doc`.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
