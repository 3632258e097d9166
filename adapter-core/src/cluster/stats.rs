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
