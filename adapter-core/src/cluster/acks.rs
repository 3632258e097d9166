//! Merging a broadcast's acks: the local sockets' acks and the remote nodes' client
//! counts and acks become one [`AckStream`](crate::AckStream).
//!
//! [`AckCollector`] holds the accounting and decides (synchronously, so it can be tested
//! without a cluster); [`AckCollector::run`] feeds it from the local ack stream and the
//! request's responses until it is complete, the deadline passes or the engine closes.

use std::collections::BTreeMap;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::pending::{Expect, Incoming, Registration};
use crate::adapter::{AckEvent, AckResponse};
use crate::error::Shortfall;
use crate::local::{AckError, LocalAckStream};
use crate::message::Body;
use crate::types::{NodeId, SocketId};
use crate::value::Value;

/// What one remote node announced (its client count) and delivered (acks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct NodeAcks {
    announced: u64,
    received: u64,
}

/// The accounting of one broadcast with ack.
///
/// Every number that comes from a peer (a client count) is added with saturation: a
/// count of `u64::MAX` makes the broadcast wait for "everything" until its timeout, it
/// never overflows.
#[derive(Debug)]
pub(super) struct AckCollector {
    /// The nodes (or the number of nodes) that must still announce their client count.
    expect: Expect,
    /// Local clients asked.
    local_count: u64,
    /// Local acks received.
    local_received: u64,
    /// The local stream is over (every local ack arrived, or the server ended it).
    local_done: bool,
    /// Acks still to be counted as expected: every count announced, minus what will
    /// never come (local acks of an ended stream, acks owed by nodes that left).
    expected: u64,
    /// The sum of the counts told to the stream ([`AckEvent::Expect`]), which adds them
    /// up too: never more than `u64::MAX` in total.
    announced: u64,
    /// Acks received, local and remote.
    received: u64,
    /// Per remote node (known by id), what it announced and delivered.
    per_node: BTreeMap<NodeId, NodeAcks>,
    /// Nodes that left with acks still owed, and how many.
    lost: Vec<NodeId>,
    lost_owed: u64,
}

impl AckCollector {
    /// A broadcast that asked `local_count` local clients and waits for `expect`.
    pub(super) fn new(local_count: u64, expect: Expect) -> Self {
        AckCollector {
            expect,
            local_count,
            local_received: 0,
            local_done: local_count == 0,
            expected: local_count,
            announced: local_count,
            received: 0,
            per_node: BTreeMap::new(),
            lost: Vec::new(),
            lost_owed: 0,
        }
    }

    /// A broadcast with one ack expected from whichever node holds the target (a
    /// dialect without client counts, [`Capabilities::client_counts`]) and no local
    /// client asked.
    ///
    /// [`Capabilities::client_counts`]: crate::dialect::Capabilities::client_counts
    pub(super) fn one_remote_ack() -> Self {
        let mut collector = AckCollector::new(0, Expect::count(0, std::collections::BTreeSet::new()));
        collector.expected = 1;
        collector.announced = 1;
        collector
    }

    /// `true` if something is expected from other nodes (a count or an ack).
    pub(super) fn waits_for_remote(&self) -> bool {
        !self.expect.done() || self.expected > self.local_count
    }

    /// `true` once every node announced its count (or left) and every announced ack
    /// that can still come arrived.
    pub(super) fn is_finished(&mut self) -> bool {
        if self.local_received >= self.local_count {
            self.local_done = true;
        }
        self.local_done && self.expect.done() && self.received >= self.expected
    }

    /// `true` if no node left before delivering what it owed.
    pub(super) fn is_lossless(&self) -> bool {
        self.lost.is_empty() && !self.expect.has_losses()
    }

    /// A local client answered.
    pub(super) fn local_ack(&mut self, socket: SocketId, result: Result<Value, AckError>) -> AckEvent {
        self.received += 1;
        self.local_received += 1;
        AckEvent::Ack(AckResponse { socket: Some(socket), node: None, result })
    }

    /// The server ended the local stream: the local acks not received will never come.
    pub(super) fn local_ended(&mut self) {
        self.local_done = true;
        self.expected = self.expected.saturating_sub(self.local_count.saturating_sub(self.local_received));
    }

    /// A response to the request; returns what to tell the stream, if anything. A
    /// client count from a node the request does not wait for (heartbeat mode) is
    /// ignored.
    pub(super) fn response(&mut self, from: Option<NodeId>, body: Body) -> Option<AckEvent> {
        match body {
            Body::BroadcastClientCount { count, .. }
                if from.as_deref().is_none_or(|uid| self.expect.is_waiting_for(uid)) =>
            {
                self.expect.answered(from.as_deref());
                self.expected = self.expected.saturating_add(count);
                if let Some(uid) = from {
                    let node = self.per_node.entry(uid).or_default();
                    node.announced = node.announced.saturating_add(count);
                }
                // the stream adds up what it is told: tell it no more than fits
                let total = self.announced.saturating_add(count);
                let told = total - self.announced;
                self.announced = total;
                Some(AckEvent::Expect(told))
            }
            Body::BroadcastAck { value, .. } => {
                self.received += 1;
                if let Some(uid) = &from {
                    self.per_node.entry(uid.clone()).or_default().received += 1;
                }
                Some(AckEvent::Ack(AckResponse { socket: None, node: from, result: Ok(value) }))
            }
            _ => None,
        }
    }

    /// A node left (or was evicted): stop waiting for its count, or for the acks it
    /// announced and did not deliver.
    pub(super) fn node_gone(&mut self, uid: NodeId) {
        if self.expect.is_waiting_for(&uid) {
            self.expect.gone(&uid);
        } else if let Some(node) = self.per_node.get(&uid) {
            let owed = node.announced.saturating_sub(node.received);
            if owed > 0 {
                self.expected = self.expected.saturating_sub(owed);
                self.lost_owed = self.lost_owed.saturating_add(owed);
                self.lost.push(uid);
            }
        }
    }

    /// What is missing: the counts not announced, the acks not received and the nodes
    /// that owe them.
    pub(super) fn shortfall(self) -> Shortfall {
        let mut shortfall = self.expect.shortfall("broadcast with ack");
        shortfall.expected = usize::try_from(self.expected.saturating_add(self.lost_owed)).unwrap_or(usize::MAX);
        shortfall.received = usize::try_from(self.received).unwrap_or(usize::MAX);
        for (uid, node) in self.per_node {
            if node.received < node.announced && !shortfall.missing_nodes.contains(&uid) {
                shortfall.missing_nodes.push(uid);
            }
        }
        for uid in self.lost {
            if !shortfall.missing_nodes.contains(&uid) {
                shortfall.missing_nodes.push(uid);
            }
        }
        shortfall
    }

    /// Feeds the collector from the local acks and the request's responses (`reg`,
    /// `None` when nothing was asked of other nodes) and writes the stream to `tx`: the
    /// local count (or what is expected at once) first, then counts and acks as they arrive, then the end. Returns
    /// `true` if the stream ended incomplete (timeout, closed engine or lost nodes);
    /// `false` if it completed or its reader went away.
    pub(super) async fn run(
        mut self,
        tx: mpsc::Sender<AckEvent>,
        mut local: LocalAckStream,
        mut reg: Option<Registration>,
        deadline: Instant,
    ) -> bool {
        if tx.send(AckEvent::Expect(self.announced)).await.is_err() {
            return false;
        }
        loop {
            if self.is_finished() {
                if self.is_lossless() {
                    let _ = tx.send(AckEvent::Done(None)).await;
                    return false;
                }
                break;
            }
            let event = tokio::select! {
                item = local.next(), if !self.local_done => Either::Local(item),
                inc = next_incoming(&mut reg, deadline) => Either::Remote(inc),
            };
            let tell = match event {
                Either::Local(Some((sid, result))) => Some(self.local_ack(sid, result)),
                Either::Local(None) => {
                    self.local_ended();
                    None
                }
                Either::Remote(Ok(Some(Incoming::Response { from, body }))) => self.response(from, body),
                Either::Remote(Ok(Some(Incoming::NodeGone(uid)))) => {
                    self.node_gone(uid);
                    None
                }
                Either::Remote(Ok(None) | Err(())) => break,
            };
            if let Some(event) = tell
                && tx.send(event).await.is_err()
            {
                return false;
            }
        }
        let _ = tx.send(AckEvent::Done(Some(self.shortfall()))).await;
        true
    }
}

enum Either<L, R> {
    Local(L),
    Remote(R),
}

/// The next response or node event of `reg`; without a request, the deadline.
async fn next_incoming(reg: &mut Option<Registration>, deadline: Instant) -> Result<Option<Incoming>, ()> {
    match reg {
        Some(r) => r.next(deadline).await,
        None => {
            tokio::time::sleep_until(deadline).await;
            Err(())
        }
    }
}

#[cfg(test)]
#[path = "tests/acks.rs"]
mod tests;
