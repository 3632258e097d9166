//! The transport seam: a transport moves bytes between nodes and knows its broker;
//! everything else (ids, accounting, timeouts, heartbeats) lives above it, in
//! [`ClusterAdapter`](crate::cluster::ClusterAdapter).

use std::error::Error as StdError;
use std::future::Future;

use bytes::Bytes;
use tokio::sync::mpsc;

mod backoff;
pub mod entry;
mod stats;
mod subscribers;
mod supervisor;

pub use backoff::Backoff;
pub use stats::{Counters, Stat, TransportStats};
pub use subscribers::Subscribers;
pub use supervisor::{Reconnect, Supervisor};

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
///
/// # Writing a transport
///
/// A transport is a byte mover: it knows its broker, nothing of Socket.IO. What every
/// transport needs besides is here, once:
///
/// - [`Supervisor`]: the state a transport shares with its tasks, made at connect with
///   [`Supervisor::new`]. It holds the [`Subscribers`] (which local sinks get which
///   channel, patterns included), the [`Counters`] behind the transport's `stats()`
///   ([`TransportStats`], one name per event whatever the broker), and runs the one
///   reconnect loop ([`Supervisor::spawn`]) with the one [`Backoff`] policy.
/// - [`Subscribers::deliver`] / [`Supervisor::deliver`]: hand what arrives to the right
///   sinks (back-pressure included; closed sinks are forgotten).
///
/// So a transport implements only its broker's side:
///
/// 1. **connect**: open the connection(s), make a [`Supervisor`], start reading (a task
///    that passes each message to [`Supervisor::deliver`]) and
///    [`Supervisor::spawn`] the supervisor over a [`Reconnect`] implementation;
/// 2. **publish** ([`Transport::publish`]): one message, resolved when the broker took it
///    (count failures as [`Stat::PublishErrors`]);
/// 3. **subscribe / unsubscribe at the broker**: [`Transport::subscribe`] issues the
///    broker subscription for each channel [`Subscribers::contains`] does not have yet,
///    then [`Subscribers::add`]s the sink; [`Transport::unsubscribe`] drops the broker
///    subscription when [`Subscribers::remove`] says the channel has no subscriber left;
/// 4. **count subscribers** ([`Transport::server_count`]) if the broker can, else `None`;
/// 5. **report connection loss**: from the client library's callbacks or its reading
///    task, call [`Supervisor::connection_lost`]; forward [`Transport::resubscribe`] to
///    [`Supervisor::resubscribe`]; implement [`Reconnect::reconnect`] as "connect again
///    and re-issue every channel of [`Subscribers::channels`]" (plus, if useful,
///    [`Reconnect::disconnect`], [`Reconnect::close`] and a periodic
///    [`Reconnect::needs_reconnect`] check). The supervisor retries with backoff, counts
///    [`TransportStats::reconnects`] and sends [`TransportEvent::Reconnected`].
///
/// The in-memory transport (`memory` feature) is the smallest example of 2-4; the Redis,
/// Kafka and AMQP crates are the examples of 1 and 5 (each `transport.rs` a few hundred
/// lines). The conformance suite (`testing::conformance`, feature `test-util`) checks a
/// transport against the cluster engine.
pub trait Transport: Clone + Send + Sync + 'static {
    /// The transport's error type.
    type Error: StdError + Send + Sync + 'static;

    /// A short name for logs (`redis`, `kafka`, ...).
    fn name(&self) -> &'static str;

    /// The broker this transport talks to, for logs and errors, never with a password
    /// (`redis 127.0.0.1:6379 (classic, prefix socket.io)`); [`Transport::name`] by
    /// default. A transport with a [`Supervisor`] returns [`Supervisor::target`].
    fn describe(&self) -> String {
        self.name().to_owned()
    }

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

    /// The transport's counters (see [`TransportStats`]); all zero by default. A
    /// transport with a [`Supervisor`] returns [`Supervisor::stats`].
    fn stats(&self) -> TransportStats {
        TransportStats::default()
    }

    /// Whether the connection to the broker is up as far as the transport knows (readiness
    /// probes, metrics); `true` by default. A transport with a [`Supervisor`] returns
    /// [`Supervisor::is_connected`].
    fn is_connected(&self) -> bool {
        true
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

/// `s` with every glob metacharacter (`*`, `?`, `[`, `]`, `\`) escaped, so that a
/// pattern built from a prefix or a namespace matches that name only.
pub fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
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
                    // an escaped character matches itself only (a trailing `\` is literal)
                    b'\\' if pi + 1 < p.len() && p[pi + 1] == s[si] => {
                        pi += 2;
                        si += 1;
                        continue;
                    }
                    b'\\' if pi + 1 < p.len() => {}
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
    use super::{glob_escape, glob_match, redact_url};

    #[test]
    fn escaped_names_match_themselves_only() {
        for name in ["p*#/a?[b]#", "x\\y*", "plain#/#"] {
            let pattern = format!("{}*", glob_escape(name));
            assert!(glob_match(&pattern, name), "{pattern}");
            assert!(glob_match(&pattern, &format!("{name}room#")), "{pattern}");
        }
        assert!(!glob_match(&format!("{}*", glob_escape("p#/a*#")), "p#/abc#"));
        assert!(!glob_match(&format!("{}*", glob_escape("p?#/#")), "px#/#"));
        assert!(!glob_match(&format!("{}*", glob_escape("p[ab]#/#")), "pa#/#"));
        // an escaped metacharacter is never a wildcard, whatever it faces
        assert!(!glob_match("p#/n\\*#*", "p#/n\\x#"));
        assert!(!glob_match("a\\?", "a\\b"));
        assert!(glob_match("a\\", "a\\"));
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
