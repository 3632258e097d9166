//! The cluster engine, written once for every transport and dialect.
//!
//! [`ClusterCore`] owns request ids, response accounting, timeouts, heartbeats,
//! dead-node eviction, ack streams, per-room subscriptions and the subscription health
//! check. [`ClusterAdapter`] is a full [`Adapter`] built on it with a local room index;
//! the emitter uses a `ClusterCore` without local sockets (a "requester").
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
//! arrived plus a [`Shortfall`] naming the missing nodes where the protocol tells.

mod config;
mod pending;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use tokio::sync::{Notify, mpsc};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

pub use config::{ClusterConfig, Membership};
use pending::{Expect, Incoming, Pending, Registration, RouteResult};

use crate::adapter::{AckEvent, AckResponse, AckStream, Adapter, Gathered};
use crate::codec::{Codec, EMITTER_UID, check_nsp};
use crate::error::{AdapterError, Shortfall};
use crate::local::{LocalAckStream, LocalAdapter, LocalNode, LocalSockets, PendingDelivery, ServerSideAck};
use crate::message::{Body, LegacyOp, Message, RequestId};
use crate::rooms::RoomChanges;
use crate::throttle::Throttle;
use crate::transport::{Channel, EventSender, Transport, TransportEvent};
use crate::types::{BroadcastOptions, EventPacket, NodeId, Room, SocketId, SocketInfo};
use crate::value::Value;

/// Request ids of health-check pings start with this.
const HEALTH_PREFIX: &str = "healthcheck-";

/// How long known node ids are kept without traffic in broker-count mode (they only
/// serve to name missing nodes).
const KNOWN_NODE_TTL: Duration = Duration::from_secs(300);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Counters of one namespace's engine.
#[derive(Debug, Default)]
struct Counters {
    published: AtomicU64,
    publish_errors: AtomicU64,
    received: AtomicU64,
    undecodable: AtomicU64,
    dropped_responses: AtomicU64,
    dropped_deliveries: AtomicU64,
    incomplete_requests: AtomicU64,
    evicted_nodes: AtomicU64,
    resubscriptions: AtomicU64,
}

/// A snapshot of an engine's counters (serializes as a JSON object of the same names).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Messages published.
    pub published: u64,
    /// Publishes that failed.
    pub publish_errors: u64,
    /// Messages received from the transport.
    pub received: u64,
    /// Received messages dropped because they could not be decoded.
    pub undecodable: u64,
    /// Responses dropped because their request's queue was full.
    pub dropped_responses: u64,
    /// Deliveries to local sockets dropped by the server's slow-socket policy (a socket
    /// whose send buffer stayed full: it stopped reading). Volatile packets are not counted.
    pub dropped_deliveries: u64,
    /// Requests that completed without every answer.
    pub incomplete_requests: u64,
    /// Nodes evicted after going silent.
    pub evicted_nodes: u64,
    /// Times a deaf subscription was detected and the transport asked to resubscribe.
    pub resubscriptions: u64,
    /// Requests currently waiting for answers.
    pub pending_requests: usize,
    /// Other nodes currently known alive (heartbeat mode) or seen recently.
    pub known_nodes: usize,
    /// Per-room channels subscribed (dynamic subscription modes).
    pub room_channels: usize,
    /// Per-room channel (un)subscriptions not yet applied at the broker.
    pub room_channels_pending: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Broker,
    Heartbeat,
}

#[derive(Default)]
struct RoomSubs {
    desired: HashSet<String>,
    applied: HashSet<String>,
}

#[derive(Default)]
struct Health {
    outstanding: Option<(String, Instant)>,
    last_sent: Option<Instant>,
    seq: u64,
}

struct Inner<T: Transport> {
    transport: T,
    codec: Arc<dyn Codec>,
    nsp: String,
    uid: NodeId,
    config: ClusterConfig,
    local: Option<Arc<dyn LocalNode>>,
    pending: Arc<Pending>,
    nodes: Mutex<HashMap<NodeId, Instant>>,
    mode: OnceLock<Mode>,
    sink: OnceLock<EventSender>,
    start_lock: tokio::sync::Mutex<()>,
    tasks: Mutex<Vec<AbortHandle>>,
    closed: AtomicBool,
    last_publish: Mutex<Instant>,
    room_subs: Mutex<RoomSubs>,
    /// Shared with the room subscription task, which must not keep `Inner` alive.
    room_notify: Arc<Notify>,
    health: Mutex<Health>,
    /// A local delivery is waiting for sockets (inbound back-pressure).
    delivering: AtomicBool,
    undecodable_warning: Throttle,
    response_warning: Throttle,
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
            .field("dialect", &self.inner.codec.dialect())
            .field("nsp", &self.inner.nsp)
            .field("uid", &self.inner.uid)
            .finish()
    }
}

impl<T: Transport> ClusterCore<T> {
    /// An engine for a server node whose local half is `local`.
    pub fn node(
        transport: T,
        codec: Arc<dyn Codec>,
        nsp: impl Into<String>,
        local: Arc<dyn LocalNode>,
        config: ClusterConfig,
    ) -> Result<Self, AdapterError> {
        let uid = codec.new_node_id();
        Self::build(transport, codec, nsp.into(), uid, Some(local), config)
    }

    /// An engine for a requester without sockets (an emitter). `uid` identifies it in
    /// requests so that answers reach it (use
    /// [`EMITTER_UID`](crate::codec::EMITTER_UID) where peers must not count it as a
    /// node, as in the ClusterAdapter protocol).
    pub fn requester(
        transport: T,
        codec: Arc<dyn Codec>,
        nsp: impl Into<String>,
        uid: NodeId,
        config: ClusterConfig,
    ) -> Result<Self, AdapterError> {
        Self::build(transport, codec, nsp.into(), uid, None, config)
    }

    fn build(
        transport: T,
        codec: Arc<dyn Codec>,
        nsp: String,
        uid: NodeId,
        local: Option<Arc<dyn LocalNode>>,
        config: ClusterConfig,
    ) -> Result<Self, AdapterError> {
        check_nsp(&nsp)?;
        if config.membership == Membership::Heartbeat && !codec.capabilities().heartbeats {
            return Err(AdapterError::Config(format!(
                "the {} dialect has no heartbeats; use a broker that counts subscribers",
                codec.dialect()
            )));
        }
        let pending = Pending::new(config.max_pending_requests, config.response_capacity);
        Ok(ClusterCore {
            inner: Arc::new(Inner {
                transport,
                codec,
                nsp,
                uid,
                config,
                local,
                pending,
                nodes: Mutex::new(HashMap::new()),
                mode: OnceLock::new(),
                sink: OnceLock::new(),
                start_lock: tokio::sync::Mutex::new(()),
                tasks: Mutex::new(Vec::new()),
                closed: AtomicBool::new(false),
                last_publish: Mutex::new(Instant::now()),
                room_subs: Mutex::new(RoomSubs::default()),
                room_notify: Arc::new(Notify::new()),
                health: Mutex::new(Health::default()),
                delivering: AtomicBool::new(false),
                undecodable_warning: Throttle::default(),
                response_warning: Throttle::default(),
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
    pub fn codec(&self) -> &Arc<dyn Codec> {
        &self.inner.codec
    }

    /// The configuration.
    pub fn config(&self) -> &ClusterConfig {
        &self.inner.config
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        // Take each lock in its own statement: a guard made inside the struct literal
        // would live to the end of it and the second `lock` would deadlock.
        let (room_channels, room_channels_pending) = {
            let subs = lock(&self.inner.room_subs);
            (subs.applied.len(), subs.desired.symmetric_difference(&subs.applied).count())
        };
        let known_nodes = lock(&self.inner.nodes).len();
        Stats {
            published: c.published.load(Ordering::Relaxed),
            publish_errors: c.publish_errors.load(Ordering::Relaxed),
            received: c.received.load(Ordering::Relaxed),
            undecodable: c.undecodable.load(Ordering::Relaxed),
            dropped_responses: c.dropped_responses.load(Ordering::Relaxed),
            dropped_deliveries: c.dropped_deliveries.load(Ordering::Relaxed),
            incomplete_requests: c.incomplete_requests.load(Ordering::Relaxed),
            evicted_nodes: c.evicted_nodes.load(Ordering::Relaxed),
            resubscriptions: c.resubscriptions.load(Ordering::Relaxed),
            pending_requests: self.inner.pending.len(),
            known_nodes,
            room_channels,
            room_channels_pending,
        }
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

    /// Reports local room changes (subscribes to or leaves per-room channels in the
    /// dialects that have them).
    pub fn rooms_changed(&self, changes: RoomChanges) {
        self.inner.rooms_changed(changes);
    }

    /// Waits until the broker applied every per-room subscription wanted so far (see
    /// [`ClusterCore::rooms_changed`]), at most the request timeout; `false` if it did not.
    pub async fn room_subscriptions_applied(&self) -> bool {
        let deadline = Instant::now() + self.inner.config.request_timeout;
        loop {
            {
                let subs = lock(&self.inner.room_subs);
                if subs.desired == subs.applied {
                    return true;
                }
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Publishes a message as this node (no local effect). A requester whose uid is
    /// [`EMITTER_UID`] publishes as an emitter (no uid), in the exact layout of
    /// `@socket.io/redis-emitter`.
    pub async fn publish(&self, body: Body) -> Result<(), AdapterError> {
        let inner = &self.inner;
        let uid = (inner.local.is_some() || inner.uid != EMITTER_UID).then(|| inner.uid.clone());
        let msg = Message::new(uid, inner.nsp.clone(), body);
        self.inner.publish(&msg).await
    }

    /// Sends an event to the matching sockets of the cluster (local ones first; while
    /// local sockets catch up, see [`PendingDelivery`], the message is already on its way
    /// to the other nodes).
    pub async fn broadcast(&self, packet: EventPacket, opts: BroadcastOptions) -> Result<(), AdapterError> {
        let pending = self.inner.local.as_ref().and_then(|local| local.broadcast(&packet, &opts));
        self.beside_local(pending, async {
            if opts.flags.local {
                return Ok(());
            }
            self.publish(Body::Broadcast { packet, opts }).await
        })
        .await
    }

    /// Runs `remote` while local sockets finish `pending` (a broadcast's local half), and
    /// counts the deliveries the slow-socket policy dropped there.
    pub(crate) async fn beside_local<R>(&self, pending: Option<PendingDelivery>, remote: impl Future<Output = R>) -> R {
        match pending {
            Some(pending) => {
                let (dropped, out) = tokio::join!(pending, remote);
                self.inner.counters.dropped_deliveries.fetch_add(dropped, Ordering::Relaxed);
                out
            }
            None => remote.await,
        }
    }

    /// Makes the matching sockets of the cluster join `rooms`.
    pub async fn add_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError> {
        if let Some(local) = &self.inner.local {
            self.inner.rooms_changed(local.add_sockets(&opts, &rooms));
        }
        if opts.flags.local {
            return Ok(());
        }
        self.publish(Body::SocketsJoin { opts, rooms }).await
    }

    /// Makes the matching sockets of the cluster leave `rooms`.
    pub async fn del_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError> {
        if let Some(local) = &self.inner.local {
            self.inner.rooms_changed(local.del_sockets(&opts, &rooms));
        }
        if opts.flags.local {
            return Ok(());
        }
        self.publish(Body::SocketsLeave { opts, rooms }).await
    }

    /// Disconnects the matching sockets of the cluster.
    pub async fn disconnect_sockets(&self, opts: BroadcastOptions, close: bool) -> Result<(), AdapterError> {
        if let Some(local) = &self.inner.local {
            local.disconnect_sockets(&opts, close);
        }
        if opts.flags.local {
            return Ok(());
        }
        self.publish(Body::DisconnectSockets { opts, close }).await
    }

    /// Sends an event to the other servers.
    pub async fn server_side_emit(&self, packet: EventPacket) -> Result<(), AdapterError> {
        self.publish(Body::ServerSideEmit { request_id: None, packet }).await
    }

    /// Sends an event to the other servers and collects one answer from each.
    pub async fn server_side_emit_with_ack(
        &self,
        packet: EventPacket,
        timeout: Option<Duration>,
    ) -> Result<Gathered<Vec<Value>>, AdapterError> {
        let mut values = Vec::new();
        let timeout = timeout.unwrap_or(self.inner.config.request_timeout);
        let shortfall = self
            .inner
            .request(
                |request_id| Body::ServerSideEmit { request_id: Some(request_id), packet },
                timeout,
                "server-side emit",
                |_, body| match body {
                    Body::ServerSideEmitResponse { value, .. } => {
                        values.push(value);
                        true
                    }
                    _ => false,
                },
            )
            .await?;
        Ok(Gathered { value: values, shortfall })
    }

    /// Describes the matching sockets of the cluster.
    pub async fn fetch_sockets(&self, opts: BroadcastOptions) -> Result<Gathered<Vec<SocketInfo>>, AdapterError> {
        let mut sockets = match &self.inner.local {
            Some(local) => local.fetch_sockets(&opts),
            None => Vec::new(),
        };
        if opts.flags.local {
            return Ok(Gathered::complete(sockets));
        }
        let timeout = opts.flags.timeout.unwrap_or(self.inner.config.request_timeout);
        let shortfall = self
            .inner
            .request(
                |request_id| Body::FetchSockets { request_id, opts },
                timeout,
                "fetch sockets",
                |_, body| match body {
                    Body::FetchSocketsResponse { sockets: s, .. } => {
                        sockets.extend(s);
                        true
                    }
                    _ => false,
                },
            )
            .await?;
        Ok(Gathered { value: sockets, shortfall })
    }

    /// Every room with members in the cluster (socket ids included), sorted.
    pub async fn all_rooms(&self) -> Result<Gathered<Vec<Room>>, AdapterError> {
        let mut rooms: HashSet<Room> = match &self.inner.local {
            Some(local) => local.rooms().into_iter().collect(),
            None => HashSet::new(),
        };
        let shortfall = if self.inner.codec.capabilities().all_rooms {
            self.inner
                .request(
                    |request_id| Body::AllRooms { request_id },
                    self.inner.config.request_timeout,
                    "all rooms",
                    |_, body| match body {
                        Body::AllRoomsResponse { rooms: r, .. } => {
                            rooms.extend(r);
                            true
                        }
                        _ => false,
                    },
                )
                .await?
        } else {
            let all = BroadcastOptions::default();
            let timeout = self.inner.config.request_timeout;
            self.inner
                .request(
                    |request_id| Body::FetchSockets { request_id, opts: all },
                    timeout,
                    "all rooms",
                    |_, body| match body {
                        Body::FetchSocketsResponse { sockets, .. } => {
                            rooms.extend(sockets.into_iter().flat_map(|s| s.rooms));
                            true
                        }
                        _ => false,
                    },
                )
                .await?
        };
        let mut value: Vec<Room> = rooms.into_iter().collect();
        value.sort();
        Ok(Gathered { value, shortfall })
    }

    /// The number of servers in the cluster (this one included when it is a server).
    pub async fn server_count(&self) -> Result<usize, AdapterError> {
        self.inner.ready().await?;
        let is_node = usize::from(self.inner.local.is_some());
        match self.inner.mode() {
            Mode::Broker => Ok(self.inner.broker_count().await?.max(is_node)),
            Mode::Heartbeat => Ok(self.inner.live_nodes().len() + is_node),
        }
    }

    /// Sends an event that asks every matching client for an ack; the stream yields
    /// the acks as they arrive from every node (local ones included).
    pub async fn broadcast_with_ack(
        &self,
        packet: EventPacket,
        mut opts: BroadcastOptions,
    ) -> Result<AckStream, AdapterError> {
        let inner = &self.inner;
        let timeout = *opts.flags.timeout.get_or_insert(inner.config.request_timeout);
        let deadline = Instant::now() + timeout;
        let (local_acks, local_count): (LocalAckStream, u64) = match &inner.local {
            Some(local) => local.broadcast_with_ack(&packet, &opts, timeout),
            None => (Box::pin(futures_util::stream::empty()), 0),
        };
        let (tx, stream) = AckStream::channel(256);
        let (reg, expect) = if opts.flags.local {
            (None, Expect::count(0, BTreeSet::new()))
        } else {
            inner.ready().await?;
            let expect = inner.expect().await?;
            if expect.done() {
                (None, expect)
            } else {
                let reg = inner.pending.register(|| inner.codec.new_node_id())?;
                let body = Body::BroadcastWithAck { request_id: reg.id.clone(), packet, opts };
                let msg = Message::new(Some(inner.uid.clone()), inner.nsp.clone(), body);
                inner.publish(&msg).await?;
                (Some(reg), expect)
            }
        };
        let counters = Arc::clone(inner);
        tokio::spawn(async move {
            let incomplete = drive_acks(tx, local_acks, local_count, reg, expect, deadline).await;
            if incomplete {
                counters.counters.incomplete_requests.fetch_add(1, Ordering::Relaxed);
            }
        });
        Ok(stream)
    }
}

/// Merges local acks and remote responses into an ack stream. Returns `true` if the
/// stream ended incomplete.
async fn drive_acks(
    tx: mpsc::Sender<AckEvent>,
    mut local: LocalAckStream,
    local_count: u64,
    mut reg: Option<Registration>,
    mut expect: Expect,
    deadline: Instant,
) -> bool {
    if tx.send(AckEvent::Expect(local_count)).await.is_err() {
        return false;
    }
    let mut expected = local_count;
    let mut received = 0u64;
    let mut local_received = 0u64;
    let mut local_done = local_count == 0;
    // per node: (announced, received)
    let mut per_node: HashMap<NodeId, (u64, u64)> = HashMap::new();
    // nodes that left with acks still owed
    let mut lost: Vec<NodeId> = Vec::new();
    let mut lost_owed = 0u64;
    loop {
        if local_received >= local_count {
            local_done = true;
        }
        if local_done && expect.done() && received >= expected {
            if lost.is_empty() && !expect.has_losses() {
                let _ = tx.send(AckEvent::Done(None)).await;
                return false;
            }
            break;
        }
        let event = tokio::select! {
            item = local.next(), if !local_done => Either::Local(item),
            inc = next_incoming(&mut reg, deadline) => Either::Remote(inc),
        };
        match event {
            Either::Local(Some((sid, result))) => {
                received += 1;
                local_received += 1;
                let ack = AckResponse { socket: Some(sid), node: None, result };
                if tx.send(AckEvent::Ack(ack)).await.is_err() {
                    return false;
                }
            }
            Either::Local(None) => {
                // the server ended the stream: the rest will never come
                local_done = true;
                expected -= local_count.saturating_sub(local_received);
            }
            Either::Remote(Ok(Some(Incoming::Response { from, body }))) => match body {
                Body::BroadcastClientCount { count, .. }
                    if from.as_deref().is_none_or(|uid| expect.is_waiting_for(uid)) =>
                {
                    expect.answered(from.as_deref());
                    expected += count;
                    if let Some(uid) = from {
                        per_node.entry(uid).or_default().0 += count;
                    }
                    if tx.send(AckEvent::Expect(count)).await.is_err() {
                        return false;
                    }
                }
                Body::BroadcastAck { value, .. } => {
                    received += 1;
                    if let Some(uid) = &from {
                        per_node.entry(uid.clone()).or_default().1 += 1;
                    }
                    let ack = AckResponse { socket: None, node: from, result: Ok(value) };
                    if tx.send(AckEvent::Ack(ack)).await.is_err() {
                        return false;
                    }
                }
                _ => {}
            },
            Either::Remote(Ok(Some(Incoming::NodeGone(uid)))) => {
                if expect.is_waiting_for(&uid) {
                    expect.gone(&uid);
                } else if let Some((announced, got)) = per_node.get(&uid) {
                    let owed = announced.saturating_sub(*got);
                    if owed > 0 {
                        expected -= owed;
                        lost_owed += owed;
                        lost.push(uid);
                    }
                }
            }
            Either::Remote(Ok(None)) | Either::Remote(Err(())) => break,
        }
    }
    let mut shortfall = expect.shortfall("broadcast with ack");
    shortfall.expected = (expected + lost_owed) as usize;
    shortfall.received = received as usize;
    for (uid, (announced, got)) in per_node {
        if got < announced && !shortfall.missing_nodes.contains(&uid) {
            shortfall.missing_nodes.push(uid);
        }
    }
    for uid in lost {
        if !shortfall.missing_nodes.contains(&uid) {
            shortfall.missing_nodes.push(uid);
        }
    }
    let _ = tx.send(AckEvent::Done(Some(shortfall))).await;
    true
}

enum Either<L, R> {
    Local(L),
    Remote(R),
}

async fn next_incoming(reg: &mut Option<Registration>, deadline: Instant) -> Result<Option<Incoming>, ()> {
    match reg {
        Some(r) => r.next(deadline).await,
        None => {
            tokio::time::sleep_until(deadline).await;
            Err(())
        }
    }
}

impl<T: Transport> Inner<T> {
    fn is_node(&self) -> bool {
        self.local.is_some()
    }

    fn mode(&self) -> Mode {
        *self.mode.get().unwrap_or(&Mode::Broker)
    }

    async fn ready(self: &Arc<Self>) -> Result<(), AdapterError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(AdapterError::Closed);
        }
        if self.sink.get().is_some() {
            return Ok(());
        }
        if self.is_node() {
            return Err(AdapterError::NotInitialized);
        }
        Inner::start(self).await
    }

    async fn start(self: &Arc<Self>) -> Result<(), AdapterError> {
        let _guard = self.start_lock.lock().await;
        if self.closed.load(Ordering::Acquire) {
            return Err(AdapterError::Closed);
        }
        if self.sink.get().is_some() {
            return Ok(());
        }
        let count_channel = self.codec.count_channel(&self.nsp);
        let mode = match self.config.membership {
            Membership::Heartbeat => Mode::Heartbeat,
            Membership::BrokerCount | Membership::Auto => {
                let counted = self
                    .transport
                    .server_count(&count_channel)
                    .await
                    .map_err(|e| AdapterError::transport(format!("count subscribers of {count_channel}"), e))?;
                match (counted, self.config.membership) {
                    (Some(_), _) => Mode::Broker,
                    (None, Membership::BrokerCount) => {
                        return Err(AdapterError::Config(format!(
                            "the {} transport cannot count subscribers",
                            self.transport.name()
                        )));
                    }
                    (None, _) if self.codec.capabilities().heartbeats => Mode::Heartbeat,
                    (None, _) => {
                        return Err(AdapterError::Config(format!(
                            "the {} transport cannot count subscribers and the {} dialect has no heartbeats",
                            self.transport.name(),
                            self.codec.dialect()
                        )));
                    }
                }
            }
        };
        let _ = self.mode.set(mode);

        let (tx, rx) = mpsc::channel(self.config.inbound_capacity);
        self.spawn(inbound_loop(Arc::downgrade(self), rx));
        let channels = if self.is_node() || mode == Mode::Heartbeat {
            // a requester in heartbeat mode listens to the main channel for heartbeats
            self.codec.node_channels(&self.nsp, &self.uid)
        } else {
            self.codec.requester_channels(&self.nsp, &self.uid)
        };
        self.transport.subscribe(&channels, tx.clone()).await.map_err(|e| {
            AdapterError::transport(
                format!("subscribe to {}", channels.iter().map(Channel::as_str).collect::<Vec<_>>().join(", ")),
                e,
            )
        })?;
        let _ = self.sink.set(tx);
        info!(nsp = %self.nsp, uid = %self.uid, transport = self.transport.name(),
              dialect = self.codec.dialect(), ?mode, server = self.is_node(), "cluster adapter started");

        if mode == Mode::Heartbeat {
            self.publish(&self.message(Body::InitialHeartbeat)).await?;
        }
        if self.is_node() || mode == Mode::Heartbeat {
            self.spawn(maintenance_loop(Arc::downgrade(self)));
        }
        if self.is_node() {
            self.spawn(room_subscription_loop(Arc::downgrade(self)));
        }
        if !self.is_node() && mode == Mode::Heartbeat {
            // give the nodes a moment to answer the initial heartbeat
            tokio::time::sleep(self.config.discovery_window).await;
        }
        Ok(())
    }

    async fn close(self: &Arc<Self>) -> Result<(), AdapterError> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let mut result = Ok(());
        if let Some(sink) = self.sink.get() {
            if self.mode() == Mode::Heartbeat && self.is_node() {
                result = self.publish(&self.message(Body::AdapterClose)).await;
            }
            let mut channels = if self.is_node() || self.mode() == Mode::Heartbeat {
                self.codec.node_channels(&self.nsp, &self.uid)
            } else {
                self.codec.requester_channels(&self.nsp, &self.uid)
            };
            channels.extend(lock(&self.room_subs).applied.drain().map(Channel::Exact));
            if let Err(e) = self.transport.unsubscribe(&channels, sink).await {
                warn!(nsp = %self.nsp, error = %e, "failed to unsubscribe on close");
            }
        }
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
        self.pending.clear();
        info!(nsp = %self.nsp, uid = %self.uid, "cluster adapter closed");
        result
    }

    fn spawn(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(fut);
        lock(&self.tasks).push(handle.abort_handle());
    }

    fn message(&self, body: Body) -> Message {
        Message::new(Some(self.uid.clone()), self.nsp.clone(), body)
    }

    async fn publish(&self, msg: &Message) -> Result<(), AdapterError> {
        let out = self.codec.encode(msg)?;
        match self.transport.publish(&out.channel, out.payload).await {
            Ok(()) => {
                *lock(&self.last_publish) = Instant::now();
                self.counters.published.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.counters.publish_errors.fetch_add(1, Ordering::Relaxed);
                Err(AdapterError::transport(format!("publish {} on {}", msg.body.name(), out.channel), e))
            }
        }
    }

    /// Publishes in the background (answers from the inbound loop must not wait for
    /// the network).
    fn publish_later(self: &Arc<Self>, msg: Message) {
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(e) = inner.publish(&msg).await {
                warn!(nsp = %inner.nsp, error = %e, "failed to publish an answer");
            }
        });
    }

    fn respond(self: &Arc<Self>, to: Option<NodeId>, body: Body) {
        self.publish_later(self.message(body).reply_to(to));
    }

    async fn broker_count(&self) -> Result<usize, AdapterError> {
        let channel = self.codec.count_channel(&self.nsp);
        let counted = self
            .transport
            .server_count(&channel)
            .await
            .map_err(|e| AdapterError::transport(format!("count subscribers of {channel}"), e))?;
        Ok(counted.unwrap_or(0))
    }

    fn live_nodes(&self) -> BTreeSet<NodeId> {
        lock(&self.nodes).keys().cloned().collect()
    }

    async fn expect(&self) -> Result<Expect, AdapterError> {
        match self.mode() {
            Mode::Broker => {
                let n = self.broker_count().await?;
                let peers = if self.is_node() { n.saturating_sub(1) } else { n };
                Ok(Expect::count(peers, self.live_nodes()))
            }
            Mode::Heartbeat => Ok(Expect::nodes(self.live_nodes())),
        }
    }

    async fn request(
        self: &Arc<Self>,
        make: impl FnOnce(RequestId) -> Body,
        timeout: Duration,
        operation: &'static str,
        accept: impl FnMut(Option<&str>, Body) -> bool,
    ) -> Result<Option<Shortfall>, AdapterError> {
        self.ready().await?;
        let expect = self.expect().await?;
        if expect.done() {
            return Ok(None);
        }
        let mut reg = self.pending.register(|| self.codec.new_node_id())?;
        let msg = self.message(make(reg.id.clone()));
        self.publish(&msg).await?;
        let deadline = Instant::now() + timeout;
        let total = expect.total();
        let shortfall = reg.collect(expect, deadline, operation, accept).await;
        if let Some(s) = &shortfall {
            self.counters.incomplete_requests.fetch_add(1, Ordering::Relaxed);
            warn!(nsp = %self.nsp, operation, expected = total, received = s.received,
                  missing = ?s.missing_nodes, "cluster request incomplete");
        }
        Ok(shortfall)
    }

    fn rooms_changed(&self, changes: RoomChanges) {
        if changes.created.is_empty() && changes.deleted.is_empty() {
            return;
        }
        let mut changed = false;
        {
            let mut subs = lock(&self.room_subs);
            for room in &changes.created {
                if let Some(ch) = self.codec.room_channel(&self.nsp, room) {
                    changed |= subs.desired.insert(ch);
                }
            }
            for room in &changes.deleted {
                if let Some(ch) = self.codec.room_channel(&self.nsp, room) {
                    changed |= subs.desired.remove(&ch);
                }
            }
        }
        if changed {
            self.room_notify.notify_one();
        }
    }

    fn touch(&self, uid: &str, leaving: bool) {
        if leaving {
            let removed = lock(&self.nodes).remove(uid).is_some();
            if removed {
                info!(nsp = %self.nsp, node = %uid, "node left the cluster");
                self.pending.node_gone(uid);
            }
            return;
        }
        let new = lock(&self.nodes).insert(uid.to_owned(), Instant::now()).is_none();
        if new {
            debug!(nsp = %self.nsp, node = %uid, "node seen");
        }
    }

    /// Handles one message from the transport; returns the rest of a local delivery that
    /// must finish before the next message (see [`PendingDelivery`]).
    fn on_message(self: &Arc<Self>, channel: &str, payload: &[u8]) -> Option<PendingDelivery> {
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        if let (Some(local), Some(room)) = (&self.local, self.codec.broadcast_room(&self.nsp, channel))
            && !local.has_room(room)
        {
            return None;
        }
        let msg = match self.codec.decode(channel, payload) {
            Ok(msg) => msg,
            Err(e) => {
                self.counters.undecodable.fetch_add(1, Ordering::Relaxed);
                if let Some(held_back) = self.undecodable_warning.check() {
                    warn!(nsp = %self.nsp, channel, bytes = payload.len(), error = %e, held_back,
                          total = self.counters.undecodable.load(Ordering::Relaxed),
                          "dropping undecodable message (one line per 10 s; held_back: since the last)");
                }
                return None;
            }
        };
        if msg.nsp != self.nsp {
            return None;
        }
        if let Body::BroadcastClientCount { request_id, .. } = &msg.body
            && request_id.starts_with(HEALTH_PREFIX)
        {
            let mut health = lock(&self.health);
            if health.outstanding.as_ref().is_some_and(|(id, _)| id == request_id) {
                health.outstanding = None;
            }
            return None;
        }
        if msg.uid.as_deref() == Some(self.uid.as_str()) {
            return None;
        }
        if let Some(uid) = msg.uid.as_deref()
            && uid != EMITTER_UID
        {
            self.touch(uid, matches!(msg.body, Body::AdapterClose));
        }
        if msg.body.response_to().is_some() {
            self.route_response(msg);
            return None;
        }
        if let Body::InitialHeartbeat = msg.body {
            if self.mode() == Mode::Heartbeat && self.is_node() {
                self.publish_later(self.message(Body::Heartbeat));
            }
            return None;
        }
        let local = self.local.clone()?;
        self.answer(local.as_ref(), msg)
    }

    fn route_response(&self, msg: Message) {
        let Some(id) = msg.body.response_to().map(str::to_owned) else { return };
        match self.pending.route(&id, msg.uid, msg.body) {
            RouteResult::Delivered | RouteResult::Unknown => {}
            RouteResult::Full => {
                self.counters.dropped_responses.fetch_add(1, Ordering::Relaxed);
                if let Some(held_back) = self.response_warning.check() {
                    warn!(nsp = %self.nsp, request = %id, held_back,
                          "response queue full, dropping a response (one line per 10 s; held_back: since the last)");
                }
            }
        }
    }

    /// Applies a request from another node to the local sockets and answers it.
    fn answer(self: &Arc<Self>, local: &dyn LocalNode, msg: Message) -> Option<PendingDelivery> {
        let from = msg.uid;
        match msg.body {
            Body::Broadcast { packet, opts } => return local.broadcast(&packet, &opts),
            Body::BroadcastWithAck { request_id, packet, opts } => {
                let timeout = opts.flags.timeout.unwrap_or(self.config.request_timeout);
                let (mut acks, count) = local.broadcast_with_ack(&packet, &opts, timeout);
                let inner = Arc::clone(self);
                tokio::spawn(async move {
                    let reply = |body| inner.message(body).reply_to(from.clone());
                    let counted = reply(Body::BroadcastClientCount { request_id: request_id.clone(), count });
                    if let Err(e) = inner.publish(&counted).await {
                        warn!(nsp = %inner.nsp, error = %e, "failed to publish a client count");
                        return;
                    }
                    let deadline = Instant::now() + timeout;
                    while let Ok(Some((_sid, result))) = tokio::time::timeout_at(deadline, acks.next()).await {
                        if let Ok(value) = result {
                            let ack = reply(Body::BroadcastAck { request_id: request_id.clone(), value });
                            if let Err(e) = inner.publish(&ack).await {
                                warn!(nsp = %inner.nsp, error = %e, "failed to publish an ack");
                            }
                        }
                    }
                });
            }
            Body::SocketsJoin { opts, rooms } => self.rooms_changed(local.add_sockets(&opts, &rooms)),
            Body::SocketsLeave { opts, rooms } => self.rooms_changed(local.del_sockets(&opts, &rooms)),
            Body::DisconnectSockets { opts, close } => local.disconnect_sockets(&opts, close),
            Body::FetchSockets { request_id, opts } => {
                let sockets = local.fetch_sockets(&opts);
                self.respond(from, Body::FetchSocketsResponse { request_id, sockets });
            }
            Body::AllRooms { request_id } => {
                self.respond(from, Body::AllRoomsResponse { request_id, rooms: local.rooms() });
            }
            Body::ServerSideEmit { request_id: None, packet } => local.server_side_emit(packet, None),
            Body::ServerSideEmit { request_id: Some(request_id), packet } => {
                let (ack, rx) = ServerSideAck::new();
                local.server_side_emit(packet, Some(ack));
                let inner = Arc::clone(self);
                let timeout = self.config.request_timeout;
                tokio::spawn(async move {
                    if let Ok(Ok(value)) = tokio::time::timeout(timeout, rx).await {
                        inner.respond(from, Body::ServerSideEmitResponse { request_id, value });
                    }
                });
            }
            Body::LegacySockets { request_id, rooms } => {
                let sockets = local.socket_ids(&rooms);
                self.respond(from, Body::LegacySocketsResponse { request_id, sockets });
            }
            Body::LegacySocketOp { request_id, sid, op } => {
                if !local.has_room(&sid) {
                    return None;
                }
                let target = BroadcastOptions::default().to(sid.as_str());
                match op {
                    LegacyOp::Join(room) => self.rooms_changed(local.add_sockets(&target, &[room])),
                    LegacyOp::Leave(room) => self.rooms_changed(local.del_sockets(&target, &[room])),
                    LegacyOp::Disconnect { close } => local.disconnect_sockets(&target, close),
                }
                self.respond(from, Body::LegacyAck { request_id });
            }
            _ => {}
        }
        None
    }

    /// Heartbeats, eviction of silent nodes and the subscription health check.
    async fn maintain(self: &Arc<Self>, now: Instant) {
        let mode = self.mode();
        if mode == Mode::Heartbeat && self.is_node() {
            let silent = now.saturating_duration_since(*lock(&self.last_publish));
            if silent >= self.config.heartbeat_interval
                && let Err(e) = self.publish(&self.message(Body::Heartbeat)).await
            {
                warn!(nsp = %self.nsp, error = %e, "failed to publish a heartbeat");
            }
        }
        let ttl = if mode == Mode::Heartbeat { self.config.heartbeat_timeout } else { KNOWN_NODE_TTL };
        let gone: Vec<NodeId> = {
            let mut nodes = lock(&self.nodes);
            let gone: Vec<NodeId> = nodes
                .iter()
                .filter(|(_, seen)| now.saturating_duration_since(**seen) > ttl)
                .map(|(uid, _)| uid.clone())
                .collect();
            for uid in &gone {
                nodes.remove(uid);
            }
            gone
        };
        if mode == Mode::Heartbeat {
            for uid in gone {
                self.counters.evicted_nodes.fetch_add(1, Ordering::Relaxed);
                warn!(nsp = %self.nsp, node = %uid, timeout = ?ttl, "evicting a silent node");
                self.pending.node_gone(&uid);
            }
        }
        if let (Some(interval), true) = (self.config.health_check_interval, self.is_node()) {
            self.health_check(now, interval).await;
        }
    }

    async fn health_check(self: &Arc<Self>, now: Instant, interval: Duration) {
        let (deaf, send) = {
            let mut h = lock(&self.health);
            match &h.outstanding {
                // a delivery holding the inbound queue delays the ping: not deafness
                Some(_) if self.delivering.load(Ordering::Relaxed) => (false, false),
                Some((_, sent)) if now.saturating_duration_since(*sent) >= interval => {
                    h.outstanding = None;
                    (true, false)
                }
                Some(_) => (false, false),
                None => {
                    let due = h.last_sent.is_none_or(|t| now.saturating_duration_since(t) >= interval);
                    if due {
                        h.seq += 1;
                        let id = format!("{HEALTH_PREFIX}{}-{}", self.uid, h.seq);
                        h.outstanding = Some((id, now));
                        h.last_sent = Some(now);
                    }
                    (false, due)
                }
            }
        };
        if deaf {
            self.counters.resubscriptions.fetch_add(1, Ordering::Relaxed);
            warn!(nsp = %self.nsp, transport = self.transport.name(),
                  "subscription stopped receiving (health check unanswered), resubscribing");
            if let Err(e) = self.transport.resubscribe().await {
                warn!(nsp = %self.nsp, error = %e, "resubscribe failed");
            }
            return;
        }
        if send {
            let id = lock(&self.health).outstanding.as_ref().map(|(id, _)| id.clone());
            if let Some(request_id) = id {
                let ping =
                    self.message(Body::BroadcastClientCount { request_id, count: 0 }).reply_to(Some(self.uid.clone()));
                if let Err(e) = self.publish(&ping).await {
                    debug!(nsp = %self.nsp, error = %e, "health check ping not published");
                    lock(&self.health).outstanding = None;
                }
            }
        }
    }

    /// Brings the broker's per-room subscriptions to the desired set. Returns `false` if
    /// some (un)subscription failed and must be retried.
    async fn apply_room_subscriptions(&self) -> bool {
        let Some(sink) = self.sink.get() else { return true };
        let mut settled = true;
        let (add, remove): (Vec<String>, Vec<String>) = {
            let subs = lock(&self.room_subs);
            (
                subs.desired.difference(&subs.applied).cloned().collect(),
                subs.applied.difference(&subs.desired).cloned().collect(),
            )
        };
        if !add.is_empty() {
            let channels: Vec<Channel> = add.iter().cloned().map(Channel::Exact).collect();
            match self.transport.subscribe(&channels, sink.clone()).await {
                Ok(()) => lock(&self.room_subs).applied.extend(add),
                Err(e) => {
                    settled = false;
                    warn!(nsp = %self.nsp, channels = ?add, error = %e, "room subscription failed");
                }
            }
        }
        if !remove.is_empty() {
            let channels: Vec<Channel> = remove.iter().cloned().map(Channel::Exact).collect();
            match self.transport.unsubscribe(&channels, sink).await {
                Ok(()) => {
                    let mut subs = lock(&self.room_subs);
                    for ch in &remove {
                        subs.applied.remove(ch);
                    }
                }
                Err(e) => {
                    settled = false;
                    warn!(nsp = %self.nsp, channels = ?remove, error = %e, "room unsubscription failed");
                }
            }
        }
        settled
    }
}

async fn inbound_loop<T: Transport>(weak: Weak<Inner<T>>, mut rx: mpsc::Receiver<TransportEvent>) {
    while let Some(event) = rx.recv().await {
        let Some(inner) = weak.upgrade() else { return };
        match event {
            TransportEvent::Message { channel, payload } => {
                if let Some(pending) = inner.on_message(&channel, &payload) {
                    // Back-pressure: the next message waits until local sockets took this one.
                    // The health check must not take the wait for deafness.
                    inner.delivering.store(true, Ordering::Relaxed);
                    drop(inner);
                    let dropped = pending.await;
                    let Some(inner) = weak.upgrade() else { return };
                    inner.delivering.store(false, Ordering::Relaxed);
                    inner.counters.dropped_deliveries.fetch_add(dropped, Ordering::Relaxed);
                }
            }
            TransportEvent::Reconnected => {
                info!(nsp = %inner.nsp, transport = inner.transport.name(), "transport reconnected");
                if inner.mode() == Mode::Heartbeat && inner.is_node() {
                    inner.publish_later(inner.message(Body::InitialHeartbeat));
                }
            }
        }
    }
}

async fn maintenance_loop<T: Transport>(weak: Weak<Inner<T>>) {
    let period = match weak.upgrade() {
        Some(inner) => inner.config.heartbeat_interval.min(Duration::from_secs(1)).max(Duration::from_millis(10)),
        None => return,
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        let now = tick.tick().await;
        let Some(inner) = weak.upgrade() else { return };
        inner.maintain(now).await;
    }
}

async fn room_subscription_loop<T: Transport>(weak: Weak<Inner<T>>) {
    // Hold only the `Notify` between rounds: a strong `Inner` here would keep the adapter
    // (and its broker connections) alive after its owner dropped it.
    let Some(notify) = weak.upgrade().map(|inner| Arc::clone(&inner.room_notify)) else { return };
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let settled = match weak.upgrade() {
            Some(inner) => inner.apply_room_subscriptions().await,
            None => return,
        };
        if settled {
            notified.await;
        } else {
            // the broker refused or was unreachable: retry soon even without a change
            let _ = tokio::time::timeout(Duration::from_millis(500), notified).await;
        }
    }
}

/// A complete [`Adapter`]: a local room index delivering through the server's
/// [`LocalSockets`], and the [`ClusterCore`] for everything cluster-wide.
///
/// ```no_run
/// use std::sync::Arc;
/// use socketio_adapter_core::{Adapter, BroadcastOptions, ClusterAdapter, ClusterConfig, EventPacket};
/// use socketio_adapter_core::codec::NodeRedisCodec;
/// # use socketio_adapter_core::{LocalSockets, Transport};
/// # async fn demo<T: Transport>(transport: T, sockets: Arc<dyn LocalSockets>) -> Result<(), Box<dyn std::error::Error>> {
/// let adapter = ClusterAdapter::new(transport, Arc::new(NodeRedisCodec::default()), "/", sockets, ClusterConfig::default())?;
/// adapter.init().await?;
/// adapter.add_all("socket-1", &["room1".into()]);
/// adapter.broadcast(EventPacket::new("hello", vec!["world".into()]), BroadcastOptions::all().to("room1")).await?;
/// # Ok(()) }
/// ```
pub struct ClusterAdapter<T: Transport> {
    core: ClusterCore<T>,
    local: Arc<LocalAdapter>,
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
        codec: Arc<dyn Codec>,
        nsp: impl Into<String>,
        sockets: Arc<dyn LocalSockets>,
        config: ClusterConfig,
    ) -> Result<Self, AdapterError> {
        let local = Arc::new(LocalAdapter::new(sockets));
        let core = ClusterCore::node(transport, codec, nsp, local.clone(), config)?;
        Ok(ClusterAdapter { core, local })
    }

    /// The cluster engine.
    pub fn core(&self) -> &ClusterCore<T> {
        &self.core
    }

    /// The local half (room index and delivery).
    pub fn local(&self) -> &Arc<LocalAdapter> {
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
