//! The one vocabulary of transport counters.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one transport, the same names for every broker (a counter a broker
/// cannot have stays 0). Read with the transport's `stats()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TransportStats {
    /// Messages handed to subscribers (one per subscriber a message went to).
    pub delivered: u64,
    /// Messages dropped because the queue between the connection and the subscribers was
    /// full (Redis).
    pub dropped: u64,
    /// Records dropped because they were at or below an offset already handled
    /// (re-fetched after a re-assignment, or replayed by the broker; Kafka).
    pub replays_dropped: u64,
    /// Records that are not this library's (no channel, or a malformed one), dropped.
    pub foreign_dropped: u64,
    /// Times the connection or the subscriptions were re-established and every
    /// subscription restored: after a loss, after the broker dropped a subscription, and
    /// on [`Transport::resubscribe`](crate::Transport::resubscribe). Each one is followed
    /// by [`TransportEvent::Reconnected`](crate::TransportEvent::Reconnected).
    pub reconnects: u64,
    /// Publishes that failed (not connected, refused, no answer in time).
    pub publish_errors: u64,
    /// Entries of a durable log (a Redis stream) the broker trimmed before this node read
    /// them, after a disconnection or while it read too slowly: messages that may be lost
    /// (each time also a warning).
    pub trimmed_unread: u64,
}

/// One event a transport counts; see the [`TransportStats`] field of the same name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Stat {
    Delivered,
    Dropped,
    ReplaysDropped,
    ForeignDropped,
    Reconnects,
    PublishErrors,
    TrimmedUnread,
}

/// The live counters behind [`TransportStats`], shared by a transport and its tasks.
#[derive(Debug, Default)]
pub struct Counters {
    counts: [AtomicU64; 7],
}

impl Counters {
    /// All zero.
    pub fn new() -> Self {
        Self::default()
    }

    fn slot(&self, stat: Stat) -> &AtomicU64 {
        &self.counts[stat as usize]
    }

    /// Adds `n` to `stat`; returns the count before.
    pub fn add(&self, stat: Stat, n: u64) -> u64 {
        self.slot(stat).fetch_add(n, Ordering::Relaxed)
    }

    /// Adds one to `stat`; returns the count before (for "log the first and every
    /// power of two" throttling).
    pub fn bump(&self, stat: Stat) -> u64 {
        self.add(stat, 1)
    }

    /// The current count of `stat`.
    pub fn get(&self, stat: Stat) -> u64 {
        self.slot(stat).load(Ordering::Relaxed)
    }

    /// A snapshot of every counter.
    pub fn snapshot(&self) -> TransportStats {
        TransportStats {
            delivered: self.get(Stat::Delivered),
            dropped: self.get(Stat::Dropped),
            replays_dropped: self.get(Stat::ReplaysDropped),
            foreign_dropped: self.get(Stat::ForeignDropped),
            reconnects: self.get(Stat::Reconnects),
            publish_errors: self.get(Stat::PublishErrors),
            trimmed_unread: self.get(Stat::TrimmedUnread),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Counters, Stat, TransportStats};

    #[test]
    fn each_event_has_its_own_counter() {
        let c = Counters::new();
        assert_eq!(c.bump(Stat::Reconnects), 0);
        assert_eq!(c.bump(Stat::Reconnects), 1);
        c.add(Stat::Delivered, 5);
        c.bump(Stat::Dropped);
        c.bump(Stat::ReplaysDropped);
        c.add(Stat::ForeignDropped, 3);
        c.bump(Stat::PublishErrors);
        c.add(Stat::TrimmedUnread, 7);
        assert_eq!(
            c.snapshot(),
            TransportStats {
                delivered: 5,
                dropped: 1,
                replays_dropped: 1,
                foreign_dropped: 3,
                reconnects: 2,
                publish_errors: 1,
                trimmed_unread: 7
            }
        );
    }
}
