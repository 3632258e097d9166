//! Looking at the cluster from outside (`sio doctor`): a timed round trip through every
//! server, and the nodes this engine heard from with the age of their last message.

use std::time::Duration;

use tokio::time::Instant;

use super::{ClusterCore, Mode, lock};
use crate::error::{AdapterError, Shortfall};
use crate::transport::Transport;
use crate::types::{BroadcastOptions, NodeId};

/// The result of [`ClusterCore::probe`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Probe {
    /// The answers in arrival order: the answering node, when the protocol names it (the
    /// `node-redis` protocol does not), and how long its answer took.
    pub answers: Vec<(Option<NodeId>, Duration)>,
    /// How many servers were expected to answer.
    pub expected: usize,
    /// Set when some did not answer within the timeout (naming them where known).
    pub shortfall: Option<Shortfall>,
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
            .fetch_round(opts, timeout, "probe", |uid, _| answers.push((uid.map(str::to_owned), started.elapsed())))
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
