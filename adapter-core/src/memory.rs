//! An in-process transport for tests and examples: every [`MemoryTransport`] created
//! from one [`MemoryHub`] is a node of the same "broker".
//!
//! It is never a substitute for a broker test. It exists to test the cluster logic
//! deterministically (with paused time), and offers fault hooks that a real broker
//! cannot: [`MemoryTransport::freeze`] (a node that stays subscribed but neither
//! sends nor receives, like a hung process), [`MemoryTransport::deafen`] (a
//! subscription that silently stopped receiving), [`MemoryTransport::deafen_to`] (one
//! channel of several lost), [`MemoryTransport::hold`] (a node behind a backlog) and
//! [`MemoryTransport::disconnect`].

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

use crate::transport::{Channel, Counters, EventSender, Stat, Subscribers, Transport, TransportStats};

/// One connection: its subscribers, as a broker keeps them per client.
#[derive(Debug, Default)]
struct Conn {
    frozen: AtomicBool,
    deaf: AtomicBool,
    /// Channels (as published) that silently stopped reaching this connection.
    deaf_to: Mutex<Vec<String>>,
    /// While held: the messages for this connection, in order (a backlog).
    held: Mutex<Option<VecDeque<(String, Bytes)>>>,
    subscribers: Subscribers,
    counters: Counters,
}

impl Conn {
    fn receiving(&self, channel: &str) -> bool {
        !self.frozen.load(Ordering::SeqCst)
            && !self.deaf.load(Ordering::SeqCst)
            && !self.deaf_to.lock().unwrap_or_else(PoisonError::into_inner).iter().any(|c| c == channel)
    }
}

#[derive(Debug, Default)]
struct Hub {
    conns: Mutex<Vec<Arc<Conn>>>,
}

impl Hub {
    fn conns(&self) -> Vec<Arc<Conn>> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// The shared "broker" of memory transports.
#[derive(Clone, Debug, Default)]
pub struct MemoryHub {
    hub: Arc<Hub>,
    count_subscribers: bool,
}

impl MemoryHub {
    /// A hub whose transports cannot count subscribers (the cluster uses heartbeats,
    /// as with Kafka or AMQP).
    pub fn new() -> Self {
        Self::default()
    }

    /// A hub whose transports count subscribers like Redis `PUBSUB NUMSUB`.
    pub fn counting() -> Self {
        MemoryHub { hub: Arc::default(), count_subscribers: true }
    }

    /// A new connection to this hub.
    pub fn transport(&self) -> MemoryTransport {
        let conn = Arc::new(Conn::default());
        self.hub.conns.lock().unwrap_or_else(PoisonError::into_inner).push(Arc::clone(&conn));
        MemoryTransport { hub: self.hub.clone(), conn, count_subscribers: self.count_subscribers }
    }
}

/// One connection to a [`MemoryHub`]. Clones share the connection.
#[derive(Clone, Debug)]
pub struct MemoryTransport {
    hub: Arc<Hub>,
    conn: Arc<Conn>,
    count_subscribers: bool,
}

impl MemoryTransport {
    /// The node hangs: it stays subscribed (and counted) but publishes and receives
    /// nothing.
    pub fn freeze(&self) {
        self.conn.frozen.store(true, Ordering::SeqCst);
    }

    /// The subscriptions silently stop receiving until [`Transport::resubscribe`].
    pub fn deafen(&self) {
        self.conn.deaf.store(true, Ordering::SeqCst);
    }

    /// Messages published on `channel` silently stop reaching this connection until
    /// [`Transport::resubscribe`] (one subscription of several lost, as when a Redis
    /// Cluster slot moves or an operator deletes one RabbitMQ binding).
    pub fn deafen_to(&self, channel: &str) {
        self.conn.deaf_to.lock().unwrap_or_else(PoisonError::into_inner).push(channel.to_owned());
    }

    /// Messages for this connection queue up, in order, instead of arriving (a node
    /// behind a backlog: a RabbitMQ queue or a Kafka partition it has not read yet) until
    /// [`release`](Self::release). It keeps publishing.
    pub fn hold(&self) {
        self.conn.held.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert_with(VecDeque::new);
    }

    /// Delivers the messages held since [`hold`](Self::hold), in order, and lets the next
    /// ones arrive again.
    pub async fn release(&self) {
        loop {
            let next = {
                let mut held = self.conn.held.lock().unwrap_or_else(PoisonError::into_inner);
                match held.as_mut().map(VecDeque::pop_front) {
                    Some(Some(next)) => next,
                    _ => {
                        *held = None;
                        return;
                    }
                }
            };
            let (channel, payload) = next;
            let sinks = self.conn.subscribers.matching(&channel);
            let n = self.conn.subscribers.send(sinks, &channel, &payload).await;
            self.conn.counters.add(Stat::Delivered, n);
        }
    }

    /// The connection closes: every subscription of this transport disappears.
    pub fn disconnect(&self) {
        self.conn.frozen.store(true, Ordering::SeqCst);
        self.conn.subscribers.clear();
    }
}

impl Transport for MemoryTransport {
    type Error = Infallible;

    fn name(&self) -> &'static str {
        "memory"
    }

    /// Counters (`delivered` to this connection's subscribers, `reconnects` by
    /// [`Transport::resubscribe`]).
    fn stats(&self) -> TransportStats {
        self.conn.counters.snapshot()
    }

    async fn publish(&self, channel: &str, payload: Bytes) -> Result<(), Infallible> {
        if self.conn.frozen.load(Ordering::SeqCst) {
            return Ok(());
        }
        // one delivery per (connection, subscriber), as Redis does per client
        let targets: Vec<(Arc<Conn>, Vec<EventSender>)> =
            self.hub.conns().into_iter().map(|c| (Arc::clone(&c), c.subscribers.matching(channel))).collect();
        for (conn, sinks) in targets {
            if !sinks.is_empty() && conn.receiving(channel) {
                if let Some(backlog) = conn.held.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
                    backlog.push_back((channel.to_owned(), payload.clone()));
                    continue;
                }
                let n = conn.subscribers.send(sinks, channel, &payload).await;
                conn.counters.add(Stat::Delivered, n);
            }
        }
        Ok(())
    }

    async fn subscribe(&self, channels: &[Channel], sink: EventSender) -> Result<(), Infallible> {
        for channel in channels {
            self.conn.subscribers.add(channel, &sink);
        }
        Ok(())
    }

    async fn unsubscribe(&self, channels: &[Channel], sink: &EventSender) -> Result<(), Infallible> {
        for channel in channels {
            self.conn.subscribers.remove(channel, sink);
        }
        Ok(())
    }

    async fn server_count(&self, channel: &str) -> Result<Option<usize>, Infallible> {
        if !self.count_subscribers {
            return Ok(None);
        }
        let channel = Channel::Exact(channel.to_owned());
        let conns = self.hub.conns();
        // a subscriber whose receiver is gone is a closed connection: the broker forgets it
        for conn in &conns {
            conn.subscribers.forget_closed();
        }
        Ok(Some(conns.iter().filter(|c| c.subscribers.contains(&channel)).count()))
    }

    async fn resubscribe(&self) -> Result<(), Infallible> {
        self.conn.deaf.store(false, Ordering::SeqCst);
        self.conn.deaf_to.lock().unwrap_or_else(PoisonError::into_inner).clear();
        self.conn.counters.bump(Stat::Reconnects);
        self.conn.subscribers.reconnected().await;
        Ok(())
    }
}
