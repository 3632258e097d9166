//! The transport seam: a transport moves bytes between nodes and knows its broker;
//! everything else (ids, accounting, timeouts, heartbeats) lives above it, in
//! [`ClusterAdapter`](crate::cluster::ClusterAdapter).

use std::error::Error as StdError;
use std::future::Future;

use bytes::Bytes;
use tokio::sync::mpsc;

/// A subscription target.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Exactly this channel.
    Exact(String),
    /// A glob pattern (Redis `PSUBSCRIBE` syntax: `*`, `?`, `[...]`, `\`). Only the
    /// classic Redis protocol uses one.
    Pattern(String),
}

impl Channel {
    /// The channel name or the pattern.
    pub fn as_str(&self) -> &str {
        match self {
            Channel::Exact(s) | Channel::Pattern(s) => s,
        }
    }
}

/// What a transport hands to a subscriber.
#[derive(Clone, Debug, PartialEq)]
pub enum TransportEvent {
    /// A message arrived on `channel`.
    Message {
        /// The channel it was published on.
        channel: String,
        /// The bytes.
        payload: Bytes,
    },
    /// The connection was re-established and every subscription restored. Messages
    /// published while it was down may have been lost.
    Reconnected,
}

/// Where a transport delivers the events of one subscriber. Bounded: a full queue
/// makes the transport wait (back-pressure), it never grows without limit.
pub type EventSender = mpsc::Sender<TransportEvent>;

/// Moves bytes between the nodes of a cluster.
///
/// Clones share one connection. Implementations reconnect on their own, restore every
/// subscription after a reconnect and then send [`TransportEvent::Reconnected`] to
/// each subscriber.
pub trait Transport: Clone + Send + Sync + 'static {
    /// The transport's error type.
    type Error: StdError + Send + Sync + 'static;

    /// A short name for logs (`redis`, `kafka`, ...).
    fn name(&self) -> &'static str;

    /// Publishes `payload` on `channel`; resolves when the broker accepted it.
    fn publish(&self, channel: &str, payload: Bytes) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Delivers every message of `channels` to `sink` until [`Transport::unsubscribe`]
    /// (or until `sink` is closed). Resolves once the broker confirmed the subscription,
    /// so that messages published afterwards are received.
    fn subscribe(
        &self,
        channels: &[Channel],
        sink: EventSender,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Stops delivering `channels` to `sink`.
    fn unsubscribe(
        &self,
        channels: &[Channel],
        sink: &EventSender,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The number of subscribers of `channel` as the broker counts them (Redis
    /// `PUBSUB NUMSUB`), or `None` when the broker cannot count them; then the cluster
    /// counts servers by heartbeats.
    fn server_count(&self, channel: &str) -> impl Future<Output = Result<Option<usize>, Self::Error>> + Send;

    /// Drops and restores every subscription. The engine calls it when its health
    /// check finds that messages stopped arriving although the connection looks up.
    fn resubscribe(&self) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// The subscriber bookkeeping every transport needs: which sinks want which channels.
/// A transport keeps its broker subscriptions in step with it (subscribe a channel when
/// [`Subscribers::add`] says it is new, drop it when [`Subscribers::remove`] says it has
/// no subscriber left, re-issue [`Subscribers::channels`] after a reconnect) and hands
/// what arrives to [`Subscribers::deliver`]. Sinks whose receiver is gone are forgotten.
#[derive(Debug, Default)]
pub struct Subscribers {
    map: std::sync::Mutex<std::collections::HashMap<Channel, Vec<EventSender>>>,
}

impl Subscribers {
    /// No subscriber.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<Channel, Vec<EventSender>>> {
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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

    /// Drops `sink` from every channel (its receiver is gone).
    fn forget(&self, sink: &EventSender) {
        let mut map = self.lock();
        for list in map.values_mut() {
            list.retain(|s| !s.same_channel(sink));
        }
        map.retain(|_, list| !list.is_empty());
    }
}

/// `url` with the password of its user info replaced by `***` (the user name kept), for
/// error messages and logs. An `@` after the query start is not user info.
pub fn redact_url(url: &str) -> String {
    let authority_end = url.find('?').unwrap_or(url.len());
    match (url.find("://"), url[..authority_end].rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split_once(':').map(|(u, _)| u).unwrap_or(userinfo);
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Matches a Redis glob pattern (`*`, `?`, `[abc]`, `[a-z]`, `[^a]`, `\x`) against `s`.
pub fn glob_match(pattern: &str, s: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        let (mut pi, mut si) = (0, 0);
        let (mut star_p, mut star_s) = (None, 0);
        while si < s.len() {
            if pi < p.len() {
                match p[pi] {
                    b'*' => {
                        star_p = Some(pi);
                        star_s = si;
                        pi += 1;
                        continue;
                    }
                    b'?' => {
                        pi += 1;
                        si += 1;
                        continue;
                    }
                    b'[' => {
                        if let Some((matched, next)) = class(p, pi, s[si]) {
                            if matched {
                                pi = next;
                                si += 1;
                                continue;
                            }
                        } else if s[si] == b'[' {
                            pi += 1;
                            si += 1;
                            continue;
                        }
                    }
                    b'\\' if pi + 1 < p.len() && p[pi + 1] == s[si] => {
                        pi += 2;
                        si += 1;
                        continue;
                    }
                    c if c == s[si] => {
                        pi += 1;
                        si += 1;
                        continue;
                    }
                    _ => {}
                }
            }
            match star_p {
                Some(sp) => {
                    star_s += 1;
                    si = star_s;
                    pi = sp + 1;
                }
                None => return false,
            }
        }
        p[pi..].iter().all(|&c| c == b'*')
    }
    // [..] class at p[start]; returns (matched, index after ']') or None if unterminated
    fn class(p: &[u8], start: usize, c: u8) -> Option<(bool, usize)> {
        let mut i = start + 1;
        let negate = p.get(i) == Some(&b'^');
        if negate {
            i += 1;
        }
        let mut matched = false;
        while i < p.len() && p[i] != b']' {
            if p[i] == b'\\' && i + 1 < p.len() {
                matched |= p[i + 1] == c;
                i += 2;
            } else if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
                let (lo, hi) = if p[i] <= p[i + 2] { (p[i], p[i + 2]) } else { (p[i + 2], p[i]) };
                matched |= lo <= c && c <= hi;
                i += 3;
            } else {
                matched |= p[i] == c;
                i += 1;
            }
        }
        if i >= p.len() {
            return None;
        }
        Some((matched != negate, i + 1))
    }
    go(pattern.as_bytes(), s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::{Channel, Subscribers, TransportEvent, glob_match, redact_url};

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

    #[test]
    fn passwords_never_show() {
        assert_eq!(redact_url("redis://:s3cret@h:6379/2"), "redis://:***@h:6379/2");
        assert_eq!(redact_url("amqp://guest:guest@h/%2f"), "amqp://guest:***@h/%2f");
        assert_eq!(redact_url("kafka://h:9092?x=a@b"), "kafka://h:9092?x=a@b");
        assert_eq!(redact_url("redis://h"), "redis://h");
    }

    #[test]
    fn globs_match_like_redis() {
        assert!(glob_match("socket.io#/#*", "socket.io#/#"));
        assert!(glob_match("socket.io#/#*", "socket.io#/#room1#"));
        assert!(!glob_match("socket.io#/#*", "socket.io#/admin#"));
        assert!(glob_match("h?llo", "hello"));
        assert!(glob_match("h[ae]llo", "hallo"));
        assert!(!glob_match("h[^e]llo", "hello"));
        assert!(glob_match("h[a-c]llo", "hbllo"));
        assert!(glob_match("a\\*b", "a*b"));
        assert!(!glob_match("a\\*b", "axb"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("a", ""));
    }
}
