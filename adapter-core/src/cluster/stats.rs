//! The engine's counters and their snapshot, [`Stats`]; the request round-trip times,
//! [`RoundTrips`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{ClusterCore, lock};
use crate::transport::Transport;

/// Counters of one namespace's engine, bumped where the event happens.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) published: AtomicU64,
    pub(super) publish_errors: AtomicU64,
    pub(super) received: AtomicU64,
    pub(super) undecodable: AtomicU64,
    pub(super) pickled: AtomicU64,
    pub(super) oversized: AtomicU64,
    pub(super) other_namespace: AtomicU64,
    pub(super) dropped_responses: AtomicU64,
    pub(super) dropped_deliveries: AtomicU64,
    pub(super) incomplete_requests: AtomicU64,
    pub(super) evicted_nodes: AtomicU64,
    pub(super) resubscriptions: AtomicU64,
    pub(super) room_channels_refused: AtomicU64,
    pub(super) round_trips: RoundTripCounts,
}

/// The upper bounds (seconds) of the [`RoundTrips`] buckets; a last one, +Inf, takes
/// the rest.
pub const ROUND_TRIP_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// The live histogram behind [`RoundTrips`]: one counter per bucket, and the sum.
#[derive(Debug, Default)]
pub(super) struct RoundTripCounts {
    /// Per bucket of [`ROUND_TRIP_BUCKETS`], then +Inf.
    buckets: [AtomicU64; ROUND_TRIP_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl RoundTripCounts {
    /// One request took `took`.
    pub(super) fn record(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let i = ROUND_TRIP_BUCKETS.iter().position(|&le| secs <= le).unwrap_or(ROUND_TRIP_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn snapshot(&self) -> RoundTrips {
        let buckets: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        RoundTrips {
            count: buckets.iter().sum(),
            sum: Duration::from_micros(self.sum_micros.load(Ordering::Relaxed)),
            buckets,
        }
    }
}

/// How long this engine's requests took, from publishing to their last answer (or their
/// timeout): `fetch_sockets`, `all_rooms`, server-side emits and broadcasts with acks.
/// Requests that expected no answer are not counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoundTrips {
    /// Requests per bucket: `buckets[i]` took at most [`ROUND_TRIP_BUCKETS`]`[i]` seconds
    /// and more than the bound before it; the last one counts the longer ones.
    pub buckets: Vec<u64>,
    /// Requests counted.
    pub count: u64,
    /// Their total time.
    pub sum: Duration,
}

impl Counters {
    /// Adds one to `counter`.
    pub(super) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
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
    /// Of those, pickled python-socketio messages (senders before 5.14; never unpickled).
    pub pickled: u64,
    /// Received messages dropped unread because they exceed the maximum message size.
    pub oversized: u64,
    /// Received messages of another namespace on this namespace's channels, dropped (a
    /// publisher that writes one namespace's messages on another's channel; never
    /// counted on python-socketio's one channel for every namespace).
    pub other_namespace: u64,
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
    /// Rooms that got no per-room channel because the namespace had reached
    /// [`ClusterConfig::with_max_room_channels`](crate::ClusterConfig::with_max_room_channels).
    pub room_channels_refused: u64,
    /// Local sockets (0 for a requester).
    pub local_sockets: usize,
    /// Local rooms with members, socket ids included (0 for a requester).
    pub local_rooms: usize,
}

impl<T: Transport> ClusterCore<T> {
    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        // Take each lock in its own statement: a guard made inside the struct literal
        // would live to the end of it and the second `lock` would deadlock.
        let (room_channels, room_channels_pending) = {
            let subs = lock(&self.inner.room_subs);
            (subs.applied_len(), subs.pending_len())
        };
        let known_nodes = lock(&self.inner.nodes).len();
        let (local_sockets, local_rooms) = self.inner.local.as_ref().map_or((0, 0), |l| l.counts());
        Stats {
            published: c.published.load(Ordering::Relaxed),
            publish_errors: c.publish_errors.load(Ordering::Relaxed),
            received: c.received.load(Ordering::Relaxed),
            undecodable: c.undecodable.load(Ordering::Relaxed),
            pickled: c.pickled.load(Ordering::Relaxed),
            oversized: c.oversized.load(Ordering::Relaxed),
            other_namespace: c.other_namespace.load(Ordering::Relaxed),
            dropped_responses: c.dropped_responses.load(Ordering::Relaxed),
            dropped_deliveries: c.dropped_deliveries.load(Ordering::Relaxed),
            incomplete_requests: c.incomplete_requests.load(Ordering::Relaxed),
            evicted_nodes: c.evicted_nodes.load(Ordering::Relaxed),
            resubscriptions: c.resubscriptions.load(Ordering::Relaxed),
            pending_requests: self.inner.pending.len(),
            known_nodes,
            room_channels,
            room_channels_pending,
            room_channels_refused: c.room_channels_refused.load(Ordering::Relaxed),
            local_sockets,
            local_rooms,
        }
    }

    /// The request round-trip times so far.
    pub fn round_trips(&self) -> RoundTrips {
        self.inner.counters.round_trips.snapshot()
    }
}

#[cfg(all(test, feature = "test-util"))]
mod tests {
    use std::time::Duration;

    use super::super::test_support::{ev, heartbeat_pair, settle};
    use crate::{Adapter, BroadcastOptions, Stats};

    #[tokio::test(start_paused = true)]
    async fn a_snapshot_counts_what_was_published_received_and_seen() {
        let (_hub, a, b) = heartbeat_pair(Default::default()).await;
        let (a_before, b_before) = (a.adapter.stats(), b.adapter.stats());
        // after start: each published its initial heartbeat and knows the other
        assert_eq!(a_before.known_nodes, 1);
        assert_eq!(b_before.known_nodes, 1);
        a.adapter.broadcast(ev("x"), BroadcastOptions::all()).await.expect("broadcast");
        a.adapter.broadcast(ev("y"), BroadcastOptions::all()).await.expect("broadcast");
        settle().await;
        let (a_after, b_after) = (a.adapter.stats(), b.adapter.stats());
        assert_eq!(a_after.published - a_before.published, 2);
        assert_eq!(b_after.received - b_before.received, 2);
        assert_eq!(b_after.published, b_before.published, "a broadcast is not answered");
        assert_eq!(a_after.publish_errors + a_after.undecodable + a_after.incomplete_requests, 0);
        assert_eq!(a_after.pending_requests, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn incomplete_requests_are_counted_once_each() {
        let config = crate::ClusterConfig::default().with_request_timeout(Duration::from_secs(1));
        let (_hub, a, b) = heartbeat_pair(config).await;
        b.transport.freeze();
        for _ in 0..2 {
            let got = a.adapter.fetch_sockets(BroadcastOptions::all()).await.expect("fetch");
            assert!(got.shortfall.is_some());
        }
        assert_eq!(a.adapter.stats().incomplete_requests, 2);
    }

    #[test]
    fn round_trips_fall_in_their_buckets() {
        let rt = super::RoundTripCounts::default();
        rt.record(Duration::from_micros(500));
        rt.record(Duration::from_millis(1));
        rt.record(Duration::from_millis(30));
        rt.record(Duration::from_secs(9));
        let got = rt.snapshot();
        assert_eq!(got.count, 4);
        assert_eq!(got.buckets.len(), super::ROUND_TRIP_BUCKETS.len() + 1);
        assert_eq!(got.buckets[0], 2, "at most 1 ms");
        assert_eq!(got.buckets[5], 1, "(25 ms, 50 ms]");
        assert_eq!(got.buckets[super::ROUND_TRIP_BUCKETS.len()], 1, "+Inf");
        assert_eq!(got.sum, Duration::from_micros(9_031_500));
    }

    #[test]
    fn stats_serialize_with_their_field_names() {
        let stats = Stats { published: 3, known_nodes: 2, ..Stats::default() };
        let json = serde_json::to_value(&stats).expect("json");
        assert_eq!(json["published"], 3);
        assert_eq!(json["known_nodes"], 2);
        assert_eq!(json["resubscriptions"], 0);
    }
}
