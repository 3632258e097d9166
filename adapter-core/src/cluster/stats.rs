//! The engine's counters and their snapshot, [`Stats`].

use std::sync::atomic::{AtomicU64, Ordering};

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
        }
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
    fn stats_serialize_with_their_field_names() {
        let stats = Stats { published: 3, known_nodes: 2, ..Stats::default() };
        let json = serde_json::to_value(&stats).expect("json");
        assert_eq!(json["published"], 3);
        assert_eq!(json["known_nodes"], 2);
        assert_eq!(json["resubscriptions"], 0);
    }
}
