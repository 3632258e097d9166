//! The cluster engine, written once for every transport and dialect.
//!
//! [`ClusterCore`] owns request ids, response accounting, timeouts, heartbeats,
//! dead-node eviction, ack streams, per-room subscriptions and the subscription health
//! check. [`ClusterAdapter`] is a full [`Adapter`](crate::Adapter) built on it with a
//! local room index; the emitter uses a `ClusterCore` without local sockets (a
//! "requester").
//!
//! How many answers a request waits for:
//! - *broker count*: the broker counts the subscribers of the dialect's count channel
//!   (Redis `PUBSUB NUMSUB`); a server waits for that number minus itself.
//! - *heartbeat*: every node announces itself (initial heartbeat on start, a heartbeat
//!   after each `heartbeat_interval` without publishing, adapter close on shutdown);
//!   a request waits for the nodes alive when it started, and a node silent for
//!   `heartbeat_timeout` is evicted (pending requests stop waiting for it).
//!
//! Every wait is bounded by a timeout; an incomplete request completes with what
//! arrived plus a [`Shortfall`](crate::Shortfall) naming the missing nodes where the
//! protocol tells.
//!
//! The engine by concern, one file each:
//! - `lifecycle`: start (mode detection, subscriptions, background tasks) and close;
//! - `ops`: the public cluster operations of [`ClusterCore`];
//! - `outbound`: publishing, answering and the request/answer round trip;
//! - `acks`: merging local acks and remote answers into an [`AckStream`](crate::AckStream);
//! - `inbound`: the inbound loop and the dispatch of each received message;
//! - `answer`: applying another node's request to the local sockets and answering it;
//! - `membership`: heartbeats, known nodes and the eviction of silent ones;
//! - `health`: the subscription health check (see its docs);
//! - `room_channels`: per-room channel subscriptions (dynamic subscription modes);
//! - `probe`: a timed round trip through every server, the known nodes' ages (`sio doctor`);
//! - `stats`: the counters and their snapshot, [`Stats`];
//! - `listen`: [`Listener`], hearing a namespace's broadcasts without being a node (`sio tail`);
//! - `adapter`: [`ClusterAdapter`], the [`Adapter`](crate::Adapter) face.

mod acks;
mod adapter;
mod answer;
mod config;
mod health;
mod inbound;
mod lifecycle;
mod listen;
mod membership;
mod ops;
mod outbound;
mod pending;
mod probe;
mod room_channels;
mod stats;
#[cfg(all(test, feature = "test-util"))]
mod test_support;

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio::time::Instant;

pub use adapter::ClusterAdapter;
pub use config::{ClusterConfig, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_ROOM_CHANNELS, Membership};
pub use health::NotReady;
pub use listen::{Heard, Listener, Undecodable};
pub use probe::{Probe, ProbeAnswer};
pub use stats::{ROUND_TRIP_BUCKETS, RoundTrips, Stats};

use crate::dialect::{Dialect, check_nsp};
use crate::error::AdapterError;
use crate::local::LocalNode;
use crate::throttle::Throttle;
use crate::transport::{EventSender, Transport};
use crate::types::NodeId;
use health::Health;
use membership::KnownNodes;
use pending::Pending;
use room_channels::{RecentJoins, RoomSubs};
use stats::Counters;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `now + timeout`, or about 30 years from now when that overflows: a timeout may come
/// from a peer (the `timeout` flag of a broadcast with ack) and must not panic.
fn deadline_after(timeout: Duration) -> Instant {
    const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);
    let now = Instant::now();
    now.checked_add(timeout).or_else(|| now.checked_add(FAR_FUTURE)).unwrap_or(now)
}

/// How the engine counts the servers that must answer (decided once, on start).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// The broker counts the subscribers of the count channel.
    Broker,
    /// Nodes announce themselves with heartbeats.
    Heartbeat,
}

/// The state shared by a [`ClusterCore`] and its clones. Background tasks hold it
/// weakly, so that dropping the last `ClusterCore` stops them.
struct Inner<T: Transport> {
    transport: T,
    dialect: Arc<dyn Dialect>,
    nsp: String,
    uid: NodeId,
    config: ClusterConfig,
    local: Option<Arc<dyn LocalNode>>,
    pending: Arc<Pending>,
    nodes: Mutex<KnownNodes>,
    mode: OnceLock<Mode>,
    sink: OnceLock<EventSender>,
    start_lock: tokio::sync::Mutex<()>,
    tasks: Mutex<Vec<AbortHandle>>,
    closed: AtomicBool,
    last_publish: Mutex<Instant>,
    room_subs: Mutex<RoomSubs>,
    /// Rooms this engine made the cluster join lately (their broadcasts take the main channel).
    recent_joins: Mutex<RecentJoins>,
    /// Shared with the room subscription task, which must not keep `Inner` alive.
    room_notify: Arc<Notify>,
    health: Mutex<Health>,
    /// A local delivery is waiting for sockets (inbound back-pressure).
    delivering: AtomicBool,
    undecodable_warning: Throttle,
    oversized_warning: Throttle,
    other_namespace_warning: Throttle,
    response_warning: Throttle,
    room_channel_warning: Throttle,
    counters: Counters,
}

impl<T: Transport> Drop for Inner<T> {
    fn drop(&mut self) {
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
    }
}

/// The cluster engine of one namespace over a transport and a dialect.
///
/// Clones share the engine. A server node has local sockets ([`LocalNode`]); a
/// requester (an emitter) has none, subscribes only to response channels, is never
/// counted as a server and starts lazily on its first request.
pub struct ClusterCore<T: Transport> {
    inner: Arc<Inner<T>>,
}

impl<T: Transport> Clone for ClusterCore<T> {
    fn clone(&self) -> Self {
        ClusterCore { inner: Arc::clone(&self.inner) }
    }
}

impl<T: Transport> fmt::Debug for ClusterCore<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterCore")
            .field("transport", &self.inner.transport.name())
            .field("dialect", &self.inner.dialect.name())
            .field("nsp", &self.inner.nsp)
            .field("uid", &self.inner.uid)
            .finish()
    }
}

impl<T: Transport> ClusterCore<T> {
    /// An engine for a server node whose local half is `local`.
    pub fn node(
        transport: T,
        dialect: Arc<dyn Dialect>,
        nsp: impl Into<String>,
        local: Arc<dyn LocalNode>,
        config: ClusterConfig,
    ) -> Result<Self, AdapterError> {
        let uid = dialect.new_node_id();
        Self::build(transport, dialect, nsp.into(), uid, Some(local), config)
    }

    /// An engine for a requester without sockets (an emitter). `uid` identifies it in
    /// requests so that answers reach it (use
    /// [`EMITTER_UID`](crate::dialect::EMITTER_UID) where peers must not count it as a
    /// node, as in the ClusterAdapter protocol).
    pub fn requester(
        transport: T,
        dialect: Arc<dyn Dialect>,
        nsp: impl Into<String>,
        uid: NodeId,
        config: ClusterConfig,
    ) -> Result<Self, AdapterError> {
        Self::build(transport, dialect, nsp.into(), uid, None, config)
    }

    fn build(
        transport: T,
        dialect: Arc<dyn Dialect>,
        nsp: String,
        uid: NodeId,
        local: Option<Arc<dyn LocalNode>>,
        config: ClusterConfig,
    ) -> Result<Self, AdapterError> {
        check_nsp(&nsp)?;
        if config.membership == Membership::Heartbeat && !dialect.capabilities().heartbeats {
            return Err(AdapterError::Config(format!(
                "the {} dialect has no heartbeats; use a broker that counts subscribers",
                dialect.name()
            )));
        }
        let pending = Pending::new(config.max_pending_requests, config.response_capacity);
        Ok(ClusterCore {
            inner: Arc::new(Inner {
                transport,
                dialect,
                nsp,
                uid,
                config,
                local,
                pending,
                nodes: Mutex::new(KnownNodes::default()),
                mode: OnceLock::new(),
                sink: OnceLock::new(),
                start_lock: tokio::sync::Mutex::new(()),
                tasks: Mutex::new(Vec::new()),
                closed: AtomicBool::new(false),
                last_publish: Mutex::new(Instant::now()),
                room_subs: Mutex::new(RoomSubs::default()),
                recent_joins: Mutex::new(RecentJoins::default()),
                room_notify: Arc::new(Notify::new()),
                health: Mutex::new(Health::default()),
                delivering: AtomicBool::new(false),
                undecodable_warning: Throttle::default(),
                oversized_warning: Throttle::default(),
                other_namespace_warning: Throttle::default(),
                response_warning: Throttle::default(),
                room_channel_warning: Throttle::default(),
                counters: Counters::default(),
            }),
        })
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.inner.nsp
    }

    /// This engine's node id.
    pub fn node_id(&self) -> &str {
        &self.inner.uid
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.inner.transport
    }

    /// The dialect.
    pub fn dialect(&self) -> &Arc<dyn Dialect> {
        &self.inner.dialect
    }

    /// The configuration.
    pub fn config(&self) -> &ClusterConfig {
        &self.inner.config
    }

    /// Subscribes, decides how servers are counted and starts the background tasks.
    /// Idempotent.
    pub async fn start(&self) -> Result<(), AdapterError> {
        Inner::start(&self.inner).await
    }

    /// Announces the departure (heartbeat mode), unsubscribes and stops every task.
    /// Pending requests complete with what arrived.
    pub async fn close(&self) -> Result<(), AdapterError> {
        Inner::close(&self.inner).await
    }
}
