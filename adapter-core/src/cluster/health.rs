//! The subscription health check: does this node still receive what is published?
//!
//! **What it proves.** A subscription can go deaf without any error (a broker that
//! dropped the subscription, a half-open connection, a consumer stuck after a
//! rebalance): the node keeps publishing and looks alive, but no longer receives. The
//! check proves the whole round trip through the broker: every
//! `health_check_interval` a node publishes a ping addressed to itself and must receive
//! it back before the next interval ends.
//!
//! **How often, and the bound.** It runs on the maintenance tick (every
//! `heartbeat_interval`, at most every second): a ping goes out once per
//! `health_check_interval` (default 10 s, `None` disables the check). A ping not echoed
//! within one interval means deaf: a deaf subscription is detected at most about two
//! intervals (plus a tick) after it stopped receiving. While a received message waits
//! for the local sockets (inbound back-pressure) the verdict is postponed: the echo may
//! be queued behind that delivery, which is slowness, not deafness. So it is while the
//! transport keeps delivering (one message at least since the previous tick, to any
//! namespace of the process: they share the connection and, on RabbitMQ, the queue): a
//! node behind a backlog (a RabbitMQ queue or a Redis push queue holding many seconds of
//! traffic) receives its echo after the backlog, and resubscribing would throw the
//! backlog away (on RabbitMQ a new queue replaces the old one with its messages). While
//! the echo is overdue, such a delivery also proves the subscription for readiness. A
//! subscription deaf to the
//! ping's channel only while other channels deliver is still found once they pause for a
//! tick (heartbeats arrive once per heartbeat interval, the tick is at most a second).
//!
//! **On failure.** The node asks its transport to resubscribe
//! ([`Transport::resubscribe`]), counts it in
//! [`Stats::resubscriptions`](super::Stats::resubscriptions) and logs a warning; the
//! transport then reports [`TransportEvent::Reconnected`](crate::TransportEvent), so
//! that a heartbeat node announces itself again. The next ping starts the cycle anew.
//!
//! **Readiness.** [`ClusterCore::readiness`] says, from local state only (it never
//! waits for the broker), whether the node can serve: started, not closed, the
//! transport connected ([`Transport::is_connected`]) and the subscription proven within
//! one and a half intervals (the last echo, or the start). A broker that stalls without
//! closing the connection fails nothing (a ping that cannot be published is not held
//! against the subscription), but it proves nothing either: the node turns not ready
//! within one and a half intervals (plus the ping's publish timeout at most) of the last
//! proof. While a received message waits for the local sockets the proof may be late:
//! that is slowness, and the node stays ready.
//!
//! **Why a self-addressed request.** The ping is a [`Body::BroadcastClientCount`] (a
//! response every dialect already has) with client count 0, a request id starting with
//! [`HEALTH_CHECK_ID_PREFIX`] and `reply_to` this node, so it travels the response path
//! to this node: its own response channel (ClusterAdapter dialect, classic dialect with
//! specific response channels) or the shared response channel (classic dialect). No new
//! message type goes on the wire, so every peer (Node.js adapters included) stays
//! compatible: a peer that receives it routes it by request id, knows no such request
//! and drops it, and this engine drops any health check id before it counts the sender
//! as a live node. Only server nodes run the check (a requester has no subscription
//! whose deafness would go unnoticed: its requests time out).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, warn};

use super::stats::Counters;
use super::{ClusterCore, Inner, lock};
use crate::message::{Body, Message, RequestId};
use crate::transport::Transport;

/// The request id of every health check ping starts with this, followed by the node id
/// and a sequence number: `healthcheck-<uid>-<n>`. Any node drops a client count whose
/// request id starts with it. Part of the wire format: do not change it.
pub(super) const HEALTH_CHECK_ID_PREFIX: &str = "healthcheck-";

/// The state of one node's health check.
#[derive(Debug, Default)]
pub(super) struct Health {
    /// The ping waiting for its echo, and when it was sent.
    outstanding: Option<(RequestId, Instant)>,
    /// When the last ping was sent.
    last_sent: Option<Instant>,
    /// Pings sent so far (the last one's sequence number).
    seq: u64,
    /// When the subscription last proved to work (a ping came back), or the engine
    /// started; `None` before the start.
    proven: Option<Instant>,
    /// The transport's delivered count at the previous tick.
    delivered: u64,
}

/// What a maintenance tick decides.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Nothing to do.
    Wait,
    /// Publish a ping with this request id.
    Ping(RequestId),
    /// The last ping went unanswered for a whole interval: resubscribe.
    Deaf,
}

impl Health {
    /// One maintenance tick at `now`; `delivering` says a received message is waiting
    /// for the local sockets; `delivered` is the transport's count of deliveries so far.
    pub(super) fn tick(
        &mut self,
        now: Instant,
        interval: Duration,
        delivering: bool,
        delivered: u64,
        uid: &str,
    ) -> Step {
        let receiving = std::mem::replace(&mut self.delivered, delivered) != delivered;
        let overdue =
            self.outstanding.as_ref().is_some_and(|(_, sent)| now.saturating_duration_since(*sent) >= interval);
        if receiving && overdue && self.proven.is_some() {
            // the echo is late but messages still arrive: behind, and receiving (only then:
            // otherwise the echoes alone prove it, and a deaf node turns not ready on time)
            self.proven = Some(now);
        }
        match &self.outstanding {
            // a delivery holding the inbound queue, or a backlog still being received,
            // delays the echo: not deafness
            Some(_) if delivering || receiving => Step::Wait,
            Some((_, sent)) if now.saturating_duration_since(*sent) >= interval => {
                self.outstanding = None;
                Step::Deaf
            }
            Some(_) => Step::Wait,
            None => {
                let due = self.last_sent.is_none_or(|t| now.saturating_duration_since(t) >= interval);
                if !due {
                    return Step::Wait;
                }
                self.seq += 1;
                let id = format!("{HEALTH_CHECK_ID_PREFIX}{uid}-{}", self.seq);
                self.outstanding = Some((id.clone(), now));
                self.last_sent = Some(now);
                Step::Ping(id)
            }
        }
    }

    /// A ping came back at `now`.
    pub(super) fn echoed(&mut self, request_id: &str, now: Instant) {
        if self.outstanding.as_ref().is_some_and(|(id, _)| id == request_id) {
            self.outstanding = None;
            self.proven = Some(now);
        }
    }

    /// The engine started at `now`: the subscription counts as proven from here.
    pub(super) fn started(&mut self, now: Instant) {
        self.proven = Some(now);
    }

    /// How long the subscription has gone without proof at `now`, if that is longer
    /// than one and a half `interval`s (the readiness bound; `None` before the start).
    pub(super) fn unproven(&self, now: Instant, interval: Duration) -> Option<Duration> {
        let silent = now.saturating_duration_since(self.proven?);
        (silent > interval + interval / 2).then_some(silent)
    }

    /// The ping could not be published: do not hold it against the subscription.
    pub(super) fn unsent(&mut self) {
        self.outstanding = None;
    }
}

impl<T: Transport> Inner<T> {
    /// Runs one tick of the health check (see the module docs).
    pub(super) async fn health_check(self: &Arc<Self>, now: Instant, interval: Duration) {
        let delivering = self.delivering.load(Ordering::Relaxed);
        let delivered = self.transport.stats().delivered;
        let step = lock(&self.health).tick(now, interval, delivering, delivered, &self.uid);
        match step {
            Step::Wait => {}
            Step::Deaf => {
                Counters::bump(&self.counters.resubscriptions);
                warn!(node = %self.uid, nsp = %self.nsp, broker = %self.transport.describe(),
                      "subscription stopped receiving (health check unanswered), resubscribing");
                if let Err(e) = self.transport.resubscribe().await {
                    warn!(node = %self.uid, nsp = %self.nsp, broker = %self.transport.describe(), error = %e,
                          "resubscribe failed");
                }
            }
            Step::Ping(request_id) => {
                let ping = self.ping(request_id);
                if let Err(e) = self.publish(&ping).await {
                    debug!(nsp = %self.nsp, error = %e, "health check ping not published");
                    lock(&self.health).unsent();
                }
            }
        }
    }

    /// The ping: a client count of 0 answering a request of this node.
    fn ping(&self, request_id: RequestId) -> Message {
        self.message(Body::BroadcastClientCount { request_id, count: 0 }).reply_to(Some(self.uid.clone()))
    }

    /// Takes a received message if it is a health check ping (ours: the subscription
    /// works); `false` for any other message.
    pub(super) fn take_ping(&self, msg: &Message) -> bool {
        match &msg.body {
            Body::BroadcastClientCount { request_id, .. } if request_id.starts_with(HEALTH_CHECK_ID_PREFIX) => {
                lock(&self.health).echoed(request_id, Instant::now());
                true
            }
            _ => false,
        }
    }
}

/// Why an engine is not ready to serve (see [`ClusterCore::readiness`]); its `Display`
/// is one line for a readiness probe's answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotReady {
    /// Not started yet (socketioxide has not created the namespace's adapter).
    #[error("not started")]
    NotStarted,
    /// Closed (shutting down).
    #[error("closed")]
    Closed,
    /// The transport lost its connection and has not restored it yet.
    #[error("the {transport} transport is disconnected from its broker (reconnecting)")]
    Disconnected {
        /// The transport's name.
        transport: &'static str,
    },
    /// No health check ping came back through the broker for this long: the broker
    /// stalled, or the subscription went deaf.
    #[error("deaf: no health check ping came back through the {transport} broker for {} s", .silent.as_secs())]
    Deaf {
        /// The transport's name.
        transport: &'static str,
        /// Since the last proof (echo or start).
        silent: Duration,
    },
}

impl<T: Transport> ClusterCore<T> {
    /// Whether this node can serve, from local state only (never waits for the broker):
    /// started, not closed, its transport connected, and (with the health check on, for a
    /// server node) a health check ping echoed through the broker within the last one and
    /// a half `health_check_interval`s (default 10 s: a broker that stalls turns the node
    /// not ready within about 15 s of the last echo), or deliveries that kept arriving
    /// while the echo was overdue (a node behind a backlog receives its echo late). While
    /// a received message waits for slow local sockets the echo may be late: the node
    /// stays ready. For readiness probes: `GET /ready` of `sio-node` answers 503 with the
    /// error's text.
    pub fn readiness(&self) -> Result<(), NotReady> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(NotReady::Closed);
        }
        if inner.sink.get().is_none() {
            return Err(NotReady::NotStarted);
        }
        let transport = inner.transport.name();
        if !inner.transport.is_connected() {
            return Err(NotReady::Disconnected { transport });
        }
        if let (Some(interval), true) = (inner.config.health_check_interval, inner.is_node())
            && !inner.delivering.load(Ordering::Relaxed)
            && let Some(silent) = lock(&inner.health).unproven(Instant::now(), interval)
        {
            return Err(NotReady::Deaf { transport, silent });
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "tests/health.rs"]
mod tests;
