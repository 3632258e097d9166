//! Cluster engine configuration.

use std::time::Duration;

/// How the engine learns how many servers must answer a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Membership {
    /// Ask the transport; if the broker cannot count subscribers, use heartbeats.
    #[default]
    Auto,
    /// The broker counts subscribers (Redis `PUBSUB NUMSUB` / `SHARDNUMSUB`).
    BrokerCount,
    /// Nodes announce themselves with heartbeats (ClusterAdapterWithHeartbeat).
    Heartbeat,
}

/// Settings of the cluster engine. Every setter documents its default.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub(crate) request_timeout: Duration,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) heartbeat_timeout: Duration,
    pub(crate) max_pending_requests: usize,
    pub(crate) inbound_capacity: usize,
    pub(crate) response_capacity: usize,
    pub(crate) membership: Membership,
    pub(crate) health_check_interval: Option<Duration>,
    pub(crate) discovery_window: Duration,
    pub(crate) max_message_size: usize,
    pub(crate) max_room_channels: usize,
}

/// The default of [`ClusterConfig::with_max_message_size`]: 10 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 10 * 1024 * 1024;

/// The default of [`ClusterConfig::with_max_room_channels`]: 100 000 rooms.
pub const DEFAULT_MAX_ROOM_CHANNELS: usize = 100_000;

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            request_timeout: Duration::from_secs(5),
            heartbeat_interval: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(10),
            max_pending_requests: 10_000,
            inbound_capacity: 4096,
            response_capacity: 1024,
            membership: Membership::Auto,
            health_check_interval: Some(Duration::from_secs(10)),
            discovery_window: Duration::from_millis(300),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_room_channels: DEFAULT_MAX_ROOM_CHANNELS,
        }
    }
}

impl ClusterConfig {
    /// How long a request waits for answers (fetch sockets, all rooms, server-side
    /// emit with ack, and broadcasts with ack that set no timeout). Default 5 s.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Heartbeat period in heartbeat mode (a heartbeat is sent after this long without
    /// publishing anything). Default 5 s.
    pub fn with_heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// A node silent for this long is considered dead and evicted. Default 10 s. With
    /// the health check on, a server node confirms the silence first: it evicts a peer
    /// once one of its own pings, sent at least this long after the peer was last heard,
    /// has come back through the broker (a node behind a backlog hears its peers late,
    /// and evicts none of them for it); a dead peer goes about a tick later.
    pub fn with_heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.heartbeat_timeout = timeout;
        self
    }

    /// Requests waiting for answers at once; more fail with
    /// [`AdapterError::TooManyRequests`](crate::AdapterError::TooManyRequests).
    /// Default 10 000.
    pub fn with_max_pending_requests(mut self, max: usize) -> Self {
        self.max_pending_requests = max.max(1);
        self
    }

    /// Capacity of the queue between the transport and the engine, per namespace
    /// (full = back-pressure on the transport). Default 4096 messages.
    pub fn with_inbound_capacity(mut self, capacity: usize) -> Self {
        self.inbound_capacity = capacity.max(1);
        self
    }

    /// Responses buffered per pending request (more are dropped and counted).
    /// Default 1024.
    pub fn with_response_capacity(mut self, capacity: usize) -> Self {
        self.response_capacity = capacity.max(1);
        self
    }

    /// How servers are counted. Default [`Membership::Auto`].
    pub fn with_membership(mut self, membership: Membership) -> Self {
        self.membership = membership;
        self
    }

    /// Period of the self-addressed ping that detects a subscription that stopped
    /// receiving (then the transport is asked to resubscribe); `None` disables it.
    /// Default 10 s.
    pub fn with_health_check_interval(mut self, interval: Option<Duration>) -> Self {
        self.health_check_interval = interval;
        self
    }

    /// In heartbeat mode, how long a requester that is not a server (an emitter) waits
    /// for nodes to announce themselves before its first request. Default 300 ms.
    pub fn with_discovery_window(mut self, window: Duration) -> Self {
        self.discovery_window = window;
        self
    }

    /// The largest encoded message, in bytes, published or accepted. A larger publish
    /// fails with [`AdapterError::MessageTooLarge`](crate::AdapterError::MessageTooLarge)
    /// before it reaches the broker; a larger message received is dropped unread,
    /// counted ([`Stats::oversized`](crate::Stats::oversized)) and logged (one line per
    /// 10 s). Default 10 MiB ([`DEFAULT_MAX_MESSAGE_SIZE`]).
    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes.max(1);
        self
    }

    /// In the dynamic subscription modes, the most per-room channels a namespace of this
    /// node subscribes to. The set of wanted channels is coalesced (a room that comes and
    /// goes while the broker is unreachable is one entry, never a queue), so this also
    /// bounds the backlog of (un)subscriptions waiting for the broker. A room created
    /// beyond it gets no channel: its members on this node miss the broadcasts that
    /// dynamic-mode peers send to that room alone; each such room is counted
    /// ([`Stats::room_channels_refused`](crate::Stats::room_channels_refused)) and
    /// logged (one line per 10 s). Default 100 000 ([`DEFAULT_MAX_ROOM_CHANNELS`]).
    pub fn with_max_room_channels(mut self, max: usize) -> Self {
        self.max_room_channels = max;
        self
    }

    /// The largest message published or accepted.
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// The request timeout.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The heartbeat period.
    pub fn heartbeat_interval(&self) -> Duration {
        self.heartbeat_interval
    }

    /// The eviction delay of a silent node.
    pub fn heartbeat_timeout(&self) -> Duration {
        self.heartbeat_timeout
    }

    /// The health check period (`None`: off).
    pub fn health_check_interval(&self) -> Option<Duration> {
        self.health_check_interval
    }
}
