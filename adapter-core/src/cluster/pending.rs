//! Pending requests: a bounded map from request id to the waiter's queue, cleaned by
//! the waiter's guard on completion, timeout or cancellation.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::{AdapterError, Shortfall};
use crate::message::{Body, RequestId};
use crate::types::NodeId;

/// What a waiting request receives.
#[derive(Debug)]
pub(crate) enum Incoming {
    Response { from: Option<NodeId>, body: Body },
    NodeGone(NodeId),
}

#[derive(Debug)]
pub(crate) struct Pending {
    map: Mutex<HashMap<RequestId, mpsc::Sender<Incoming>>>,
    limit: usize,
    capacity: usize,
}

impl Pending {
    pub(crate) fn new(limit: usize, capacity: usize) -> Arc<Self> {
        Arc::new(Pending { map: Mutex::new(HashMap::new()), limit, capacity })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RequestId, mpsc::Sender<Incoming>>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a new request with a fresh id.
    pub(crate) fn register(self: &Arc<Self>, new_id: impl Fn() -> String) -> Result<Registration, AdapterError> {
        let (tx, rx) = mpsc::channel(self.capacity);
        let mut map = self.lock();
        if map.len() >= self.limit {
            return Err(AdapterError::TooManyRequests { limit: self.limit });
        }
        let id = loop {
            let id = new_id();
            if !map.contains_key(&id) {
                break id;
            }
        };
        map.insert(id.clone(), tx);
        Ok(Registration { id, rx, pending: Arc::clone(self) })
    }

    /// Hands a response to its waiter. Returns `false` if nobody waits for it (a
    /// response to another node's request) or the waiter's queue is full.
    pub(crate) fn route(&self, request_id: &str, from: Option<NodeId>, body: Body) -> RouteResult {
        let tx = match self.lock().get(request_id) {
            Some(tx) => tx.clone(),
            None => return RouteResult::Unknown,
        };
        match tx.try_send(Incoming::Response { from, body }) {
            Ok(()) => RouteResult::Delivered,
            Err(_) => RouteResult::Full,
        }
    }

    /// Tells every waiter that a node is gone.
    pub(crate) fn node_gone(&self, uid: &str) {
        for tx in self.lock().values() {
            let _ = tx.try_send(Incoming::NodeGone(uid.to_owned()));
        }
    }

    /// Number of requests waiting.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Drops every waiter's queue (on close): their requests complete with what arrived.
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RouteResult {
    Delivered,
    Unknown,
    Full,
}

/// A registered request; dropping it removes the entry from the map.
#[derive(Debug)]
pub(crate) struct Registration {
    pub(crate) id: RequestId,
    rx: mpsc::Receiver<Incoming>,
    pending: Arc<Pending>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.pending.lock().remove(&self.id);
    }
}

impl Registration {
    /// The next response or node event before `deadline`; `Err(())` on timeout,
    /// `Ok(None)` if the adapter closed.
    pub(crate) async fn next(&mut self, deadline: Instant) -> Result<Option<Incoming>, ()> {
        tokio::time::timeout_at(deadline, self.rx.recv()).await.map_err(|_| ())
    }

    /// Collects answers until every expected node answered (or left), the deadline
    /// passes or the adapter closes. `accept` consumes a response body and says
    /// whether it answers the request.
    pub(crate) async fn collect(
        &mut self,
        mut expect: Expect,
        deadline: Instant,
        operation: &'static str,
        mut accept: impl FnMut(Option<&str>, Body) -> bool,
    ) -> Option<Shortfall> {
        while !expect.done() {
            match self.next(deadline).await {
                Ok(Some(Incoming::Response { from, body })) => {
                    if accept(from.as_deref(), body) {
                        expect.answered(from.as_deref());
                    }
                }
                Ok(Some(Incoming::NodeGone(uid))) => expect.gone(&uid),
                Ok(None) | Err(()) => return Some(expect.shortfall(operation)),
            }
        }
        // every node answered or left: nodes that left are still missing answers
        expect.has_losses().then(|| expect.shortfall(operation))
    }
}

/// Who still has to answer.
#[derive(Clone, Debug)]
pub(crate) enum Expect {
    /// The broker counted `total` peers; answers carry no reliable identity.
    Count { total: usize, received: usize, known: BTreeSet<NodeId>, answered: BTreeSet<NodeId> },
    /// These known nodes must answer (heartbeat membership); `lost` left before answering.
    Nodes { total: usize, received: usize, waiting: BTreeSet<NodeId>, lost: BTreeSet<NodeId> },
}

impl Expect {
    pub(crate) fn count(total: usize, known: BTreeSet<NodeId>) -> Self {
        Expect::Count { total, received: 0, known, answered: BTreeSet::new() }
    }

    pub(crate) fn nodes(waiting: BTreeSet<NodeId>) -> Self {
        Expect::Nodes { total: waiting.len(), received: 0, waiting, lost: BTreeSet::new() }
    }

    pub(crate) fn total(&self) -> usize {
        match self {
            Expect::Count { total, .. } | Expect::Nodes { total, .. } => *total,
        }
    }

    pub(crate) fn answered(&mut self, from: Option<&str>) {
        match self {
            Expect::Count { received, answered, .. } => {
                *received += 1;
                if let Some(uid) = from {
                    answered.insert(uid.to_owned());
                }
            }
            Expect::Nodes { received, waiting, .. } => {
                if let Some(uid) = from
                    && waiting.remove(uid)
                {
                    *received += 1;
                }
            }
        }
    }

    pub(crate) fn gone(&mut self, uid: &str) {
        if let Expect::Nodes { waiting, lost, .. } = self
            && waiting.remove(uid)
        {
            lost.insert(uid.to_owned());
        }
    }

    /// `true` if a node left before answering.
    pub(crate) fn has_losses(&self) -> bool {
        matches!(self, Expect::Nodes { lost, .. } if !lost.is_empty())
    }

    pub(crate) fn is_waiting_for(&self, uid: &str) -> bool {
        match self {
            Expect::Nodes { waiting, .. } => waiting.contains(uid),
            Expect::Count { .. } => true,
        }
    }

    pub(crate) fn done(&self) -> bool {
        match self {
            Expect::Count { total, received, .. } => received >= total,
            Expect::Nodes { waiting, .. } => waiting.is_empty(),
        }
    }

    pub(crate) fn shortfall(&self, operation: &'static str) -> Shortfall {
        match self {
            Expect::Count { total, received, known, answered } => Shortfall {
                operation,
                expected: *total,
                received: *received,
                missing_nodes: known.difference(answered).cloned().collect(),
            },
            Expect::Nodes { total, received, waiting, lost } => Shortfall {
                operation,
                expected: *total,
                received: *received,
                missing_nodes: waiting.union(lost).cloned().collect(),
            },
        }
    }
}
