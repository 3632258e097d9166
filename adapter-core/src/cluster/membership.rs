//! Membership: the other nodes this engine knows, heartbeats, and the eviction of
//! silent nodes.
//!
//! Every message carrying a node id refreshes that node ([`Inner::touch`]); an
//! adapter-close message removes it. In heartbeat mode the known nodes are the cluster
//! (a request waits for them) and a node silent for `heartbeat_timeout` is evicted:
//! counted in [`Stats::evicted_nodes`](super::Stats::evicted_nodes), and pending
//! requests stop waiting for it. In broker-count mode they only serve to name missing
//! nodes and are forgotten quietly after [`KNOWN_NODE_TTL`].
//!
//! **Silent, or late?** A node behind a backlog (a RabbitMQ queue or a Kafka partition
//! holding seconds of traffic) hears every heartbeat late: by arrival time its peers look
//! silent while they are alive. So a server node with the health check on evicts a peer
//! only once one of its own health check rounds, sent more than `heartbeat_timeout` after
//! the peer was last heard, has come back through the broker with nothing from the peer
//! before it: what the peer sent in time would have been queued, and received, ahead of
//! the round. When a peer first looks silent the node sends a round at once (it does not
//! wait for the health check's interval), so a dead peer is evicted one maintenance tick
//! (at most a second) after the timeout. A connected node whose own rounds do not come
//! back (a stalled broker, a deaf subscription) evicts nobody until they do. While the
//! transport is disconnected (nothing is late: nothing arrives), without the health
//! check, or for a node that is not a server, the timeout alone decides.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::stats::Counters;
use super::{Inner, Mode, lock};
use crate::message::Body;
use crate::transport::Transport;
use crate::types::NodeId;

/// How long known node ids are kept without traffic in broker-count mode (they only
/// serve to name missing nodes).
pub(super) const KNOWN_NODE_TTL: Duration = Duration::from_secs(300);

/// The other nodes seen, and when each was last heard from.
#[derive(Debug, Default)]
pub(super) struct KnownNodes {
    seen: HashMap<NodeId, Instant>,
}

impl KnownNodes {
    /// `uid` was heard from at `now`; `true` if it was not known.
    pub(super) fn touch(&mut self, uid: &str, now: Instant) -> bool {
        self.seen.insert(uid.to_owned(), now).is_none()
    }

    /// `uid` left; `true` if it was known.
    pub(super) fn remove(&mut self, uid: &str) -> bool {
        self.seen.remove(uid).is_some()
    }

    /// Removes and returns (sorted) the nodes silent for more than `ttl` at `now`.
    pub(super) fn expire(&mut self, now: Instant, ttl: Duration) -> Vec<NodeId> {
        let mut gone: Vec<NodeId> = self
            .seen
            .iter()
            .filter(|(_, seen)| now.saturating_duration_since(**seen) > ttl)
            .map(|(uid, _)| uid.clone())
            .collect();
        gone.sort();
        for uid in &gone {
            self.seen.remove(uid);
        }
        gone
    }

    /// Whether a node has been silent for more than `ttl` at `now`.
    pub(super) fn any_silent(&self, now: Instant, ttl: Duration) -> bool {
        self.seen.values().any(|seen| now.saturating_duration_since(*seen) > ttl)
    }

    /// The known node ids.
    pub(super) fn ids(&self) -> BTreeSet<NodeId> {
        self.seen.keys().cloned().collect()
    }

    /// The known node ids, sorted, with how long ago each was heard from at `now`.
    pub(super) fn ages(&self, now: Instant) -> Vec<(NodeId, Duration)> {
        let mut ages: Vec<(NodeId, Duration)> =
            self.seen.iter().map(|(uid, seen)| (uid.clone(), now.saturating_duration_since(*seen))).collect();
        ages.sort();
        ages
    }

    /// How many nodes are known.
    pub(super) fn len(&self) -> usize {
        self.seen.len()
    }
}

impl<T: Transport> Inner<T> {
    /// A message from `uid` arrived; `leaving` if it announced its departure.
    pub(super) fn touch(&self, uid: &str, leaving: bool) {
        if leaving {
            let removed = lock(&self.nodes).remove(uid);
            if removed {
                info!(node = %self.uid, nsp = %self.nsp, broker = %self.transport.describe(), peer = %uid,
                      "node left the cluster");
                self.pending.node_gone(uid);
            }
            return;
        }
        let new = lock(&self.nodes).touch(uid, Instant::now());
        if new {
            debug!(node = %self.uid, nsp = %self.nsp, peer = %uid, "node seen");
        }
    }

    /// The other nodes known now.
    pub(super) fn live_nodes(&self) -> BTreeSet<NodeId> {
        lock(&self.nodes).ids()
    }

    /// One maintenance tick: a heartbeat if due, the eviction of silent nodes and the
    /// subscription health check.
    pub(super) async fn maintain(self: &Arc<Self>, now: Instant) {
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
        let fenced = mode == Mode::Heartbeat
            && self.config.health_check_interval.is_some()
            && self.is_node()
            && self.transport.is_connected();
        let gone = if fenced {
            // silent by the last round of our own pings that came back (see the module docs)
            let fence = lock(&self.health).fence();
            let (gone, suspects) = {
                let mut nodes = lock(&self.nodes);
                (fence.map(|sent| nodes.expire(sent, ttl)).unwrap_or_default(), nodes.any_silent(now, ttl))
            };
            if suspects {
                lock(&self.health).want_round();
            }
            gone
        } else {
            lock(&self.nodes).expire(now, ttl)
        };
        if mode == Mode::Heartbeat {
            for uid in gone {
                Counters::bump(&self.counters.evicted_nodes);
                warn!(node = %self.uid, nsp = %self.nsp, broker = %self.transport.describe(), peer = %uid,
                      timeout = ?ttl, "evicting a silent node");
                self.pending.node_gone(&uid);
            }
        }
        if let (Some(interval), true) = (self.config.health_check_interval, self.is_node()) {
            self.health_check(now, interval).await;
        }
    }
}

#[cfg(test)]
#[path = "tests/membership.rs"]
mod tests;
