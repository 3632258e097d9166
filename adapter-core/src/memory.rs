//! An in-process transport for tests and examples: every [`MemoryTransport`] created
//! from one [`MemoryHub`] is a node of the same "broker".
//!
//! It is never a substitute for a broker test. It exists to test the cluster logic
//! deterministically (with paused time), and offers fault hooks that a real broker
//! cannot: [`MemoryTransport::freeze`] (a node that stays subscribed but neither
//! sends nor receives, like a hung process), [`MemoryTransport::deafen`] (a
//! subscription that silently stopped receiving) and [`MemoryTransport::disconnect`].

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

use crate::transport::{Channel, EventSender, Transport, TransportEvent, glob_match};

#[derive(Debug)]
struct Sub {
    conn: u64,
    channel: Channel,
    sink: EventSender,
}

#[derive(Debug, Default)]
struct Conn {
    frozen: AtomicBool,
    deaf: AtomicBool,
}

#[derive(Debug, Default)]
struct Hub {
    subs: Mutex<Vec<Sub>>,
    conns: Mutex<Vec<(u64, Arc<Conn>)>>,
    next: AtomicU64,
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
        let id = self.hub.next.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn::default());
        self.hub.conns.lock().unwrap_or_else(PoisonError::into_inner).push((id, conn.clone()));
        MemoryTransport { hub: self.hub.clone(), id, conn, count_subscribers: self.count_subscribers }
    }
}

/// One connection to a [`MemoryHub`]. Clones share the connection.
#[derive(Clone, Debug)]
pub struct MemoryTransport {
    hub: Arc<Hub>,
    id: u64,
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

    /// The connection closes: every subscription of this transport disappears.
    pub fn disconnect(&self) {
        self.conn.frozen.store(true, Ordering::SeqCst);
        self.hub.subs.lock().unwrap_or_else(PoisonError::into_inner).retain(|s| s.conn != self.id);
    }

    fn receiving(&self, conn: u64) -> bool {
        let conns = self.hub.conns.lock().unwrap_or_else(PoisonError::into_inner);
        conns
            .iter()
            .find(|(id, _)| *id == conn)
            .is_some_and(|(_, c)| !c.frozen.load(Ordering::SeqCst) && !c.deaf.load(Ordering::SeqCst))
    }
}

impl Transport for MemoryTransport {
    type Error = Infallible;

    fn name(&self) -> &'static str {
        "memory"
    }

    async fn publish(&self, channel: &str, payload: Bytes) -> Result<(), Infallible> {
        if self.conn.frozen.load(Ordering::SeqCst) {
            return Ok(());
        }
        let targets: Vec<(u64, EventSender)> = {
            let subs = self.hub.subs.lock().unwrap_or_else(PoisonError::into_inner);
            let mut seen: Vec<(u64, EventSender)> = Vec::new();
            for s in subs.iter() {
                let hit = match &s.channel {
                    Channel::Exact(c) => c == channel,
                    Channel::Pattern(p) => glob_match(p, channel),
                };
                // one delivery per (connection, subscriber), as Redis does per client
                if hit && !seen.iter().any(|(c, sink)| *c == s.conn && sink.same_channel(&s.sink)) {
                    seen.push((s.conn, s.sink.clone()));
                }
            }
            seen
        };
        for (conn, sink) in targets {
            if self.receiving(conn) {
                let _ =
                    sink.send(TransportEvent::Message { channel: channel.to_owned(), payload: payload.clone() }).await;
            }
        }
        Ok(())
    }

    async fn subscribe(&self, channels: &[Channel], sink: EventSender) -> Result<(), Infallible> {
        let mut subs = self.hub.subs.lock().unwrap_or_else(PoisonError::into_inner);
        for channel in channels {
            let dup = subs.iter().any(|s| s.conn == self.id && &s.channel == channel && s.sink.same_channel(&sink));
            if !dup {
                subs.push(Sub { conn: self.id, channel: channel.clone(), sink: sink.clone() });
            }
        }
        Ok(())
    }

    async fn unsubscribe(&self, channels: &[Channel], sink: &EventSender) -> Result<(), Infallible> {
        self.hub
            .subs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|s| !(s.conn == self.id && channels.contains(&s.channel) && s.sink.same_channel(sink)));
        Ok(())
    }

    async fn server_count(&self, channel: &str) -> Result<Option<usize>, Infallible> {
        if !self.count_subscribers {
            return Ok(None);
        }
        let mut subs = self.hub.subs.lock().unwrap_or_else(PoisonError::into_inner);
        // a subscriber whose receiver is gone is a closed connection: the broker forgets it
        subs.retain(|s| !s.sink.is_closed());
        let mut conns: Vec<u64> =
            subs.iter().filter(|s| matches!(&s.channel, Channel::Exact(c) if c == channel)).map(|s| s.conn).collect();
        conns.sort_unstable();
        conns.dedup();
        Ok(Some(conns.len()))
    }

    async fn resubscribe(&self) -> Result<(), Infallible> {
        self.conn.deaf.store(false, Ordering::SeqCst);
        let sinks: Vec<EventSender> = {
            let subs = self.hub.subs.lock().unwrap_or_else(PoisonError::into_inner);
            let mut sinks: Vec<EventSender> = Vec::new();
            for s in subs.iter().filter(|s| s.conn == self.id) {
                if !sinks.iter().any(|k| k.same_channel(&s.sink)) {
                    sinks.push(s.sink.clone());
                }
            }
            sinks
        };
        for sink in sinks {
            let _ = sink.send(TransportEvent::Reconnected).await;
        }
        Ok(())
    }
}
