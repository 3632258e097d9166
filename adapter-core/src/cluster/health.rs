//! The subscription health check: does this node still receive what is published?
//!
//! **What it proves.** A subscription can go deaf without any error (a broker that
//! dropped the subscription, a half-open connection, a consumer stuck after a
//! rebalance, one Redis Cluster slot moved, one RabbitMQ binding deleted): the node keeps
//! publishing and looks alive, but no longer receives, on every channel or on one. The
//! check proves the whole round trip through the broker on each kind of channel the node
//! depends on: every `health_check_interval` a node publishes pings addressed to itself
//! (see "The pings") and must receive each back before the next interval ends.
//!
//! **How often, and the bound.** It runs on the maintenance tick (every
//! `heartbeat_interval`, at most every second): a ping goes out once per
//! `health_check_interval` (default 10 s, `None` disables the check), and at once when
//! membership needs a fresh round to tell a silent peer from a late one (the round's
//! send time is the eviction fence: see `membership.rs`). A ping not echoed
//! within one interval means deaf: a deaf subscription is detected at most about two
//! intervals (plus a tick) after it stopped receiving. While a received message waits
//! for the local sockets (inbound back-pressure) the verdict is postponed: the echo may
//! be queued behind that delivery, which is slowness, not deafness. So it is while the
//! transport keeps delivering (one message at least since the previous tick, to any
//! namespace of the process: they share the connection and, on RabbitMQ, the queue): a
//! node behind a backlog (a RabbitMQ queue or a Redis push queue holding many seconds of
//! traffic) receives its echo after the backlog, and resubscribing would throw the
//! backlog away (on RabbitMQ a new queue replaces the old one with its messages). While
//! the echo is overdue, such a delivery also proves the subscription for readiness. But
//! once one ping of a round came back, an interval later the others are lost, whatever
//! keeps arriving: the pings were published together, the main-channel one first, into
//! the same queue or connection (between connections, as on Redis Cluster, the interval
//! absorbs the skew; not with Redis Streams, whose stream may lag behind its pub/sub
//! responses: `Capabilities::ordered_paths`). So a subscription deaf to its main channel
//! while its response channel works is repaired even while other channels keep
//! delivering; one deaf to both while other channels (a busy room channel, another
//! namespace) keep delivering is found once they pause for a tick (the tick is at most a
//! second).
//!
//! **On failure.** The node asks its transport to resubscribe
//! ([`Transport::resubscribe`]), counts it in
//! [`Stats::resubscriptions`](super::Stats::resubscriptions) and logs a warning naming
//! the kinds of channel whose ping did not come back; the
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
//! **The pings.** A round is published under one request id,
//! `healthcheck-<uid>-<n>` ([`HEALTH_CHECK_ID_PREFIX`]), as:
//! - on the *main channel* (where broadcasts and requests arrive: the classic broadcast
//!   pattern, the ClusterAdapter main channel, python-socketio's manager channel, the
//!   Redis stream), a broadcast of the event [`HEALTH_CHECK_EVENT`] to two rooms no socket
//!   is in, `<request id>` and `healthcheck-main` (two, so that dynamic subscription modes
//!   keep it off the per-room channels). A peer that takes it for a broadcast (Node.js,
//!   python-socketio, another of ours) delivers it to nobody;
//! - on the *response path* to this node, where the dialect has one on another channel:
//!   a [`Body::BroadcastClientCount`] of 0 answering its own request id (its own
//!   response channel in the ClusterAdapter dialects and with specific response
//!   channels, the shared response channel in the classic dialect). A peer routes it by
//!   request id, knows no such request and drops it;
//! - on one of this node's *per-room channels* (the dynamic subscription modes), if it has
//!   any: the main-channel broadcast again, on the next applied room channel in name
//!   order, one per round. A node with `n` room channels proves each every `n` rounds,
//!   so one lost room channel is found within `n + 1` intervals. The peers subscribed
//!   there (those with members in that room) deliver it to nobody, as on the main
//!   channel. A room the node leaves while its ping is on the way is not held against
//!   it.
//!
//! No new message type goes on the wire, so every peer stays compatible. This engine
//! delivers no ping to sockets; another node's main-channel ping counts as a sign of
//! life of its sender (as any message does), a client count never does. `sio tail`
//! does not show pings.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, warn};

use super::stats::Counters;
use super::{ClusterCore, Inner, lock};
use crate::dialect::Outgoing;
use crate::message::{Body, Message, RequestId};
use crate::transport::Transport;
use crate::types::{BroadcastOptions, EventPacket, Room};

/// The request id of every health check ping starts with this, followed by the node id
/// and a sequence number: `healthcheck-<uid>-<n>`. Any node drops a client count whose
/// request id starts with it. Part of the wire format: do not change it.
pub(super) const HEALTH_CHECK_ID_PREFIX: &str = "healthcheck-";

/// The event of the main-channel ping, a broadcast to the rooms `<request id>` and
/// [`HEALTH_CHECK_ROOM`]. Part of the wire format: do not change it.
pub(crate) const HEALTH_CHECK_EVENT: &str = "healthcheck";

/// The second room of the main-channel ping (two rooms keep a broadcast off the
/// per-room channels, on the main channel).
const HEALTH_CHECK_ROOM: &str = "healthcheck-main";

/// Whether `body` is a main-channel health check ping (of any node): the request id it
/// carries.
pub(crate) fn main_ping_id(body: &Body) -> Option<&str> {
    match body {
        Body::Broadcast { packet, opts } if packet.event == HEALTH_CHECK_EVENT => opts
            .rooms
            .first()
            .map(Room::as_str)
            .filter(|r| r.starts_with(HEALTH_CHECK_ID_PREFIX) && opts.rooms.len() == 2),
        _ => None,
    }
}

/// A kind of channel a ping proves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Probe {
    /// The main channel, where broadcasts and requests arrive: a broadcast to two rooms
    /// nobody is in.
    Main,
    /// The response path to this node: a client count of 0 answering its own request.
    Response,
    /// One of this node's per-room channels (dynamic subscription modes), in turn: the
    /// main-channel ping published on that channel.
    Room,
}

impl Probe {
    fn channel_kind(self) -> &'static str {
        match self {
            Probe::Main => "main (broadcasts and requests)",
            Probe::Response => "response",
            Probe::Room => "room",
        }
    }
}

/// One round of pings, sent together under one request id.
#[derive(Debug)]
struct Round {
    id: RequestId,
    sent: Instant,
    /// The probes whose echo has not come back yet.
    waiting: Vec<Probe>,
    /// When the first of its pings came back, while others still wait.
    first_echo: Option<Instant>,
    /// Its pings travel one ordered path (`Capabilities::ordered_paths`).
    ordered: bool,
    /// The per-room channel its [`Probe::Room`] ping went on.
    room: Option<String>,
}

/// The state of one node's health check.
#[derive(Debug, Default)]
pub(super) struct Health {
    /// The round waiting for its echoes.
    outstanding: Option<Round>,
    /// When the last round was sent.
    last_sent: Option<Instant>,
    /// Rounds sent so far (the last one's sequence number).
    seq: u64,
    /// When the subscriptions last proved to work (every ping of a round came back), or
    /// the engine started; `None` before the start.
    proven: Option<Instant>,
    /// The transport's delivered count at the previous tick.
    delivered: u64,
    /// When the last round whose every ping came back was sent: everything published
    /// before then has been received (membership's fence against late heartbeats).
    fence: Option<Instant>,
    /// A round is wanted at the next tick, whatever the interval (membership asks).
    wanted: bool,
}

/// What a maintenance tick decides.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Nothing to do.
    Wait,
    /// Publish a round of pings with this request id.
    Ping(RequestId),
    /// These pings went unanswered for a whole interval: resubscribe.
    Deaf(Vec<Probe>),
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
        let overdue = self.outstanding.as_ref().is_some_and(|r| now.saturating_duration_since(r.sent) >= interval);
        if receiving && overdue && self.proven.is_some() {
            // the echo is late but messages still arrive: behind, and receiving (only then:
            // otherwise the echoes alone prove it, and a deaf node turns not ready on time)
            self.proven = Some(now);
        }
        // a sibling ping of the round came back an interval ago: the others are lost, not
        // late (they were published together, ahead of it, into the same queue or
        // connection; the interval absorbs the skew between connections)
        let sibling_back = self
            .outstanding
            .as_ref()
            .filter(|r| r.ordered)
            .and_then(|r| r.first_echo)
            .is_some_and(|e| now.saturating_duration_since(e) >= interval);
        match &self.outstanding {
            // a delivery holding the inbound queue delays the echo (it may wait behind it)
            Some(_) if delivering => Step::Wait,
            Some(_) if sibling_back => {
                let missing = self.outstanding.take().map(|r| r.waiting).unwrap_or_default();
                Step::Deaf(missing)
            }
            // a backlog still being received delays the echo: not deafness
            Some(_) if receiving => Step::Wait,
            Some(round) if now.saturating_duration_since(round.sent) >= interval => {
                let missing = self.outstanding.take().map(|r| r.waiting).unwrap_or_default();
                Step::Deaf(missing)
            }
            Some(_) => Step::Wait,
            None => {
                let due = self.wanted || self.last_sent.is_none_or(|t| now.saturating_duration_since(t) >= interval);
                if !due {
                    return Step::Wait;
                }
                self.wanted = false;
                self.seq += 1;
                let id = format!("{HEALTH_CHECK_ID_PREFIX}{uid}-{}", self.seq);
                self.outstanding = Some(Round {
                    id: id.clone(),
                    sent: now,
                    waiting: Vec::new(),
                    first_echo: None,
                    ordered: false,
                    room: None,
                });
                self.last_sent = Some(now);
                Step::Ping(id)
            }
        }
    }

    /// The round's pings are about to be published: wait for an echo of each; `ordered`
    /// if they travel one ordered path; `room`: the channel of its [`Probe::Room`] ping.
    pub(super) fn expect(&mut self, probes: &[Probe], ordered: bool, room: Option<String>) {
        if let Some(round) = &mut self.outstanding {
            round.waiting = probes.to_vec();
            round.ordered = ordered;
            round.room = room;
        }
    }

    /// Which ping of the outstanding round a main-channel ping that arrived on `channel`
    /// is: [`Probe::Room`] on the channel the room ping went on, else [`Probe::Main`].
    pub(super) fn main_ping_probe(&self, channel: &str) -> Probe {
        let room = self.outstanding.as_ref().and_then(|r| r.room.as_deref());
        if room == Some(channel) { Probe::Room } else { Probe::Main }
    }

    /// The node left these per-room channels at `now`: a room ping on one of them can no
    /// longer come back, and is not held against the subscription (the round proves it
    /// once its other pings came back).
    pub(super) fn left_rooms(&mut self, channels: &[String], now: Instant) {
        let Some(round) = &mut self.outstanding else { return };
        if !round.room.as_ref().is_some_and(|ch| channels.contains(ch)) {
            return;
        }
        round.room = None;
        round.waiting.retain(|p| *p != Probe::Room);
        if round.waiting.is_empty() {
            if round.first_echo.is_some() {
                self.complete(now);
            } else {
                self.outstanding = None;
            }
        }
    }

    /// The `probe` ping of round `request_id` came back at `now`; the round proves the
    /// subscriptions once all its pings did.
    pub(super) fn echoed(&mut self, request_id: &str, probe: Probe, now: Instant) {
        let Some(round) = &mut self.outstanding else { return };
        if round.id != request_id {
            return;
        }
        let before = round.waiting.len();
        round.waiting.retain(|p| *p != probe);
        if round.waiting.len() < before {
            round.first_echo.get_or_insert(now);
        }
        if round.waiting.is_empty() {
            self.complete(now);
        }
    }

    /// Every ping of the outstanding round came back (by `now`): the subscriptions work.
    fn complete(&mut self, now: Instant) {
        if let Some(round) = self.outstanding.take() {
            self.fence = Some(round.sent);
            self.proven = Some(now);
        }
    }

    /// When the last round whose every ping came back was sent (see `fence`).
    pub(super) fn fence(&self) -> Option<Instant> {
        self.fence
    }

    /// Sends a round at the next tick if none is outstanding, without waiting for the
    /// interval (membership confirming that a peer is silent).
    pub(super) fn want_round(&mut self) {
        self.wanted = true;
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

    /// The `probe` ping could not be published: do not hold it against the subscription.
    pub(super) fn unsent(&mut self, probe: Probe) {
        let Some(round) = &mut self.outstanding else { return };
        round.waiting.retain(|p| *p != probe);
        if round.waiting.is_empty() {
            self.outstanding = None;
        }
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
            Step::Deaf(missing) => {
                Counters::bump(&self.counters.resubscriptions);
                let channels: Vec<&str> = missing.iter().map(|p| p.channel_kind()).collect();
                warn!(node = %self.uid, nsp = %self.nsp, broker = %self.transport.describe(), channels = ?channels,
                      "subscription stopped receiving (health check unanswered), resubscribing");
                if let Err(e) = self.transport.resubscribe().await {
                    warn!(node = %self.uid, nsp = %self.nsp, broker = %self.transport.describe(), error = %e,
                          "resubscribe failed");
                }
            }
            Step::Ping(request_id) => {
                let probes = self.probes(&request_id);
                let ordered = self.dialect.capabilities().ordered_paths;
                let room = probes.iter().find(|(p, _, _)| *p == Probe::Room).map(|(_, _, o)| o.channel.clone());
                lock(&self.health).expect(&probes.iter().map(|(p, _, _)| *p).collect::<Vec<_>>(), ordered, room);
                for (probe, what, ping) in probes {
                    if let Err(e) = self.send(what, ping).await {
                        debug!(nsp = %self.nsp, error = %e, ?probe, "health check ping not published");
                        lock(&self.health).unsent(probe);
                    }
                }
            }
        }
    }

    /// The pings of a round, encoded, one per distinct channel the dialect puts them on: the
    /// main-channel broadcast, the response-path client count where the dialect has
    /// one on another channel (python-socketio's one channel has neither responses nor a
    /// second channel), and the main-channel broadcast again on the next of this node's
    /// per-room channels in turn, if it has any.
    fn probes(&self, request_id: &RequestId) -> Vec<(Probe, &'static str, Outgoing)> {
        let main = self.message(Body::Broadcast {
            packet: EventPacket::new(HEALTH_CHECK_EVENT, vec![]),
            opts: BroadcastOptions::all().to(Room::new(request_id.clone())).to(Room::new(HEALTH_CHECK_ROOM)),
        });
        let response = self
            .message(Body::BroadcastClientCount { request_id: request_id.clone(), count: 0 })
            .reply_to(Some(self.uid.clone()));
        let mut probes: Vec<(Probe, &'static str, Outgoing)> = Vec::new();
        for (probe, msg) in [(Probe::Main, main), (Probe::Response, response)] {
            if let Ok(out) = self.encode(&msg)
                && !probes.iter().any(|(_, _, o)| o.channel == out.channel)
            {
                probes.push((probe, msg.body.name(), out));
            }
        }
        if let Some((_, what, main)) = probes.iter().find(|(p, _, _)| *p == Probe::Main)
            && let Some(channel) = lock(&self.room_subs).next_probe()
        {
            let room = Outgoing { channel, payload: main.payload.clone() };
            probes.push((Probe::Room, what, room));
        }
        probes
    }

    /// Takes a received message if it is a health check ping (ours: that subscription
    /// works; another node's main-channel ping: it is alive, nothing to deliver); `false`
    /// for any other message.
    pub(super) fn take_ping(&self, channel: &str, msg: &Message) -> bool {
        match &msg.body {
            Body::BroadcastClientCount { request_id, .. } if request_id.starts_with(HEALTH_CHECK_ID_PREFIX) => {
                lock(&self.health).echoed(request_id, Probe::Response, Instant::now());
                true
            }
            body => match main_ping_id(body) {
                Some(id) => {
                    match msg.uid.as_deref() {
                        Some(uid) if uid == self.uid => {
                            let mut health = lock(&self.health);
                            let probe = health.main_ping_probe(channel);
                            health.echoed(id, probe, Instant::now());
                        }
                        // another node's ping: a sign of life like any message from it
                        Some(uid) => self.touch(uid, false),
                        None => {}
                    }
                    true
                }
                None => false,
            },
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
