//! Looking at the cluster from outside (`sio doctor`): timed round trips through every
//! server (a request every adapter answers by itself, and a server-side emit with an ack
//! the application answers), and the nodes this engine heard from with the age of their
//! last message.

use std::time::Duration;

use tokio::time::Instant;

use super::{ClusterCore, Mode, lock};
use crate::error::{AdapterError, Shortfall};
use crate::transport::Transport;
use crate::types::{BroadcastOptions, EventPacket, NodeId};
use crate::value::Value;

/// The result of [`ClusterCore::probe`] and [`ClusterCore::probe_event`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Probe {
    /// The answers in arrival order.
    pub answers: Vec<ProbeAnswer>,
    /// How many servers were expected to answer.
    pub expected: usize,
    /// Set when some did not answer within the timeout (naming them where known).
    pub shortfall: Option<Shortfall>,
}

/// One server's answer to a probe.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ProbeAnswer {
    /// The answering node: its id when the protocol names it (the `node-redis` protocol
    /// does not); else, for [`ClusterCore::probe_event`], the `node` field of its ack when
    /// the ack is a map with one (as `sio-node` answers `ping`).
    pub node: Option<NodeId>,
    /// How long the answer took.
    pub took: Duration,
    /// What the server acknowledged with ([`ClusterCore::probe_event`] only).
    pub value: Option<Value>,
}

impl<T: Transport> ClusterCore<T> {
    /// A round trip through every server: a `fetch_sockets` request for a room nobody is
    /// in (every adapter answers it by itself, Node.js and Python ones included, with no
    /// application handler), timing each answer. Servers are counted as for any request
    /// (the broker's count, or the nodes alive by heartbeats).
    pub async fn probe(&self, timeout: Duration) -> Result<Probe, AdapterError> {
        let room = format!("sio-doctor-{:016x}", fastrand::u64(..));
        let opts = BroadcastOptions::all().to(room);
        let started = Instant::now();
        let mut answers = Vec::new();
        let shortfall = self
            .inner
            .fetch_round(opts, timeout, "probe", |uid, _| {
                answers.push(ProbeAnswer { node: uid.map(str::to_owned), took: started.elapsed(), value: None })
            })
            .await?;
        let expected = shortfall.as_ref().map_or(answers.len(), |s| s.expected);
        Ok(Probe { answers, expected, shortfall })
    }

    /// A round trip through every server's application: a server-side emit of `event`
    /// (no arguments) with an ack, timing each answer. Only servers whose application
    /// handles `event` and calls the ack answer (`sio-node` answers `ping`; in Node.js,
    /// `io.on("ping", (ack) => ack())`); compare with [`probe`](Self::probe) to tell a
    /// stalled server from one without a handler.
    pub async fn probe_event(&self, event: &str, timeout: Duration) -> Result<Probe, AdapterError> {
        let packet = EventPacket::new(event, Vec::new());
        let started = Instant::now();
        let mut answers = Vec::new();
        let shortfall = self
            .inner
            .emit_round(packet, timeout, "probe", |uid, value| {
                let named = || value.get("node").and_then(Value::as_str).map(str::to_owned);
                let node = uid.map(str::to_owned).or_else(named);
                answers.push(ProbeAnswer { node, took: started.elapsed(), value: Some(value) });
            })
            .await?;
        let expected = shortfall.as_ref().map_or(answers.len(), |s| s.expected);
        Ok(Probe { answers, expected, shortfall })
    }

    /// The other nodes this engine heard from, sorted, with how long ago it last heard
    /// from each (a heartbeat, or any message naming its sender).
    pub fn known_nodes(&self) -> Vec<(NodeId, Duration)> {
        lock(&self.inner.nodes).ages(Instant::now())
    }

    /// `true` when servers are counted by heartbeats, `false` when the broker counts
    /// them (decided on start; `false` before).
    pub fn counts_by_heartbeats(&self) -> bool {
        self.inner.mode() == Mode::Heartbeat
    }
}
