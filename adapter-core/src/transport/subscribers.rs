//! Which local sinks get which channel: the subscriber routing of every transport.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;

use super::{Channel, EventSender, TransportEvent, glob_match};

/// The subscriber bookkeeping every transport needs: which sinks want which channels.
/// A transport keeps its broker subscriptions in step with it (subscribe a channel when
/// [`Subscribers::add`] says it is new, drop it when [`Subscribers::remove`] says it has
/// no subscriber left, re-issue [`Subscribers::channels`] after a reconnect) and hands
/// what arrives to [`Subscribers::deliver`]. Sinks whose receiver is gone are forgotten.
#[derive(Debug, Default)]
pub struct Subscribers {
    map: Mutex<HashMap<Channel, Vec<EventSender>>>,
}

impl Subscribers {
    /// No subscriber.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Channel, Vec<EventSender>>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `sink` for `channel`; `true` when the channel had no subscriber yet.
    pub fn add(&self, channel: &Channel, sink: &EventSender) -> bool {
        let mut map = self.lock();
        let list = map.entry(channel.clone()).or_default();
        let fresh = list.is_empty();
        if !list.iter().any(|s| s.same_channel(sink)) {
            list.push(sink.clone());
        }
        fresh
    }

    /// Unregisters `sink` from `channel`; `true` when that left the channel without
    /// subscribers (and it was registered).
    pub fn remove(&self, channel: &Channel, sink: &EventSender) -> bool {
        let mut map = self.lock();
        let Some(list) = map.get_mut(channel) else { return false };
        list.retain(|s| !s.same_channel(sink));
        if list.is_empty() {
            map.remove(channel);
            true
        } else {
            false
        }
    }

    /// `true` when `channel` has a subscriber.
    pub fn contains(&self, channel: &Channel) -> bool {
        self.lock().contains_key(channel)
    }

    /// Every channel with a subscriber.
    pub fn channels(&self) -> Vec<Channel> {
        self.lock().keys().cloned().collect()
    }

    /// How many channels have subscribers.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// `true` when nothing is subscribed.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Every sink, once.
    pub fn sinks(&self) -> Vec<EventSender> {
        let map = self.lock();
        let mut sinks: Vec<EventSender> = Vec::new();
        for sink in map.values().flatten() {
            if !sinks.iter().any(|s| s.same_channel(sink)) {
                sinks.push(sink.clone());
            }
        }
        sinks
    }

    /// The sinks a message published on `channel` is for: subscribers of the channel
    /// and of every matching pattern, each once.
    pub fn matching(&self, channel: &str) -> Vec<EventSender> {
        let map = self.lock();
        let mut sinks: Vec<EventSender> = Vec::new();
        for (key, list) in map.iter() {
            let hit = match key {
                Channel::Exact(c) => c == channel,
                Channel::Pattern(p) => glob_match(p, channel),
            };
            for sink in list.iter().filter(|_| hit) {
                if !sinks.iter().any(|s| s.same_channel(sink)) {
                    sinks.push(sink.clone());
                }
            }
        }
        sinks
    }

    /// Sends a message published on `channel` to `sinks` (waiting while a queue is full);
    /// forgets sinks whose receiver is gone. Returns how many received it.
    pub async fn send(&self, sinks: Vec<EventSender>, channel: &str, payload: &Bytes) -> u64 {
        let mut delivered = 0;
        for sink in sinks {
            let event = TransportEvent::Message { channel: channel.to_owned(), payload: payload.clone() };
            if sink.send(event).await.is_ok() {
                delivered += 1;
            } else {
                self.forget(&sink);
            }
        }
        delivered
    }

    /// [`Subscribers::send`] to the subscribers of exactly `key` (a channel, or the
    /// pattern a broker matched, as Redis tells with `pmessage`).
    pub async fn deliver_to(&self, key: &Channel, channel: &str, payload: &Bytes) -> u64 {
        let sinks = self.lock().get(key).cloned().unwrap_or_default();
        self.send(sinks, channel, payload).await
    }

    /// [`Subscribers::send`] to [`Subscribers::matching`] sinks.
    pub async fn deliver(&self, channel: &str, payload: &Bytes) -> u64 {
        let sinks = self.matching(channel);
        self.send(sinks, channel, payload).await
    }

    /// Tells every sink that the subscriptions were restored.
    pub async fn reconnected(&self) {
        for sink in self.sinks() {
            if sink.send(TransportEvent::Reconnected).await.is_err() {
                self.forget(&sink);
            }
        }
    }

    /// Forgets every sink whose receiver is gone (a broker forgets a closed
    /// connection's subscriptions); returns the channels that lost their last subscriber.
    pub fn forget_closed(&self) -> Vec<Channel> {
        let mut map = self.lock();
        let mut emptied = Vec::new();
        map.retain(|channel, list| {
            list.retain(|s| !s.is_closed());
            if list.is_empty() {
                emptied.push(channel.clone());
            }
            !list.is_empty()
        });
        emptied
    }

    /// Forgets every subscription.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Drops `sink` from every channel (its receiver is gone).
    fn forget(&self, sink: &EventSender) {
        let mut map = self.lock();
        for list in map.values_mut() {
            list.retain(|s| !s.same_channel(sink));
        }
        map.retain(|_, list| !list.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::{Channel, Subscribers, TransportEvent};

    #[tokio::test]
    async fn subscribers_track_channels_and_forget_gone_sinks() {
        let subs = Subscribers::new();
        let (a, mut ra) = tokio::sync::mpsc::channel(8);
        let (b, rb) = tokio::sync::mpsc::channel(8);
        let room = Channel::Exact("p#/#r#".into());
        let all = Channel::Pattern("p#/#*".into());
        assert!(subs.add(&room, &a), "first subscriber");
        assert!(!subs.add(&room, &b), "second subscriber");
        assert!(subs.add(&all, &a));
        assert_eq!(subs.matching("p#/#r#").len(), 2, "a once, b once");
        drop(rb);
        assert_eq!(subs.deliver("p#/#r#", &bytes::Bytes::from_static(b"x")).await, 1);
        assert!(matches!(ra.recv().await, Some(TransportEvent::Message { .. })));
        assert_eq!(subs.sinks().len(), 1, "b forgotten");
        assert!(!subs.remove(&room, &a) || !subs.contains(&room));
        assert!(subs.remove(&all, &a));
        assert!(subs.is_empty());
    }

    #[tokio::test]
    async fn routing_reaches_exact_and_pattern_subscribers_once() {
        let subs = Subscribers::new();
        let (a, mut ra) = tokio::sync::mpsc::channel(8);
        let (b, mut rb) = tokio::sync::mpsc::channel(8);
        let exact = Channel::Exact("p#/#r#".into());
        let pattern = Channel::Pattern("p#/#*".into());
        subs.add(&exact, &a);
        subs.add(&pattern, &a);
        subs.add(&pattern, &b);
        assert!(!subs.add(&pattern, &b), "adding twice changes nothing");
        let payload = bytes::Bytes::from_static(b"x");
        // a subscribed both ways gets one copy, b through the pattern
        assert_eq!(subs.deliver("p#/#r#", &payload).await, 2);
        assert_eq!(ra.try_recv().ok(), Some(TransportEvent::Message { channel: "p#/#r#".into(), payload }));
        assert!(ra.try_recv().is_err());
        assert!(rb.try_recv().is_ok());
        // what a broker matched itself (Redis pmessage) goes to that key's subscribers only
        assert_eq!(subs.deliver_to(&exact, "p#/#r#", &bytes::Bytes::new()).await, 1);
        assert!(ra.try_recv().is_ok() && rb.try_recv().is_err());
        assert_eq!(subs.deliver("other", &bytes::Bytes::new()).await, 0);
        subs.reconnected().await;
        assert_eq!(ra.try_recv().ok(), Some(TransportEvent::Reconnected));
        assert_eq!(rb.try_recv().ok(), Some(TransportEvent::Reconnected));
        assert!(ra.try_recv().is_err(), "one Reconnected per sink");
        drop(rb);
        assert_eq!(subs.forget_closed(), Vec::<Channel>::new(), "a still wants the pattern");
        assert_eq!(subs.sinks().len(), 1);
        drop(ra);
        let mut emptied = subs.forget_closed();
        emptied.sort_by(|x, y| x.as_str().cmp(y.as_str()));
        assert_eq!(emptied, vec![pattern, exact]);
        assert!(subs.is_empty());
    }
}
