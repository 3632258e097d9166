//! The URL grammar every transport shares, and the options every transport's URL accepts.
//!
//! ```text
//! scheme://[user[:password]@]host[:port][,host[:port]...][/path][?key=value&...]
//! ```
//!
//! [`ParsedUrl::parse`] splits a URL once, the same way for Redis, Kafka and RabbitMQ:
//!
//! - **User-info** is everything before the last `@` of the authority; the user name ends
//!   at the first `:`, the password is the rest (so `u:a:b@` is user `u`, password `a:b`).
//!   Both are percent-decoded and nothing else (RFC 3986 user-info, as Python's `urllib`
//!   and the WHATWG URL standard read it): `+` stays a plus, `&` is an ordinary
//!   character, `%40` is `@`, `%C3%A9` is `é`.
//! - **Hosts** are a comma-separated list of `host[:port]` (IPv6 in brackets); each is
//!   checked by the `url` crate. Transports that take one host refuse several.
//! - **The query** is an `application/x-www-form-urlencoded` query string (`+` is a
//!   space there, `%XX` a byte); a key given twice keeps its last value.
//! - A `#fragment` is ignored, as URL parsers do.
//!
//! [`SharedOptions`] holds the options every transport accepts, with one grammar for
//! each kind of value (see [`parse_bool`], [`parse_ms`]):
//!
//! ```text
//!   prefix=socket.io                 channel prefix (never empty)
//!   request_timeout_ms=5000          cluster request timeout (fetch sockets, acks)
//!   connect_timeout_ms=...           one connection attempt (default per transport)
//!   subscription_mode=static|dynamic|dynamic-private   which rooms get their own channel
//!   heartbeat_interval_ms=5000       cluster heartbeat period (heartbeat membership)
//!   heartbeat_timeout_ms=10000       a node silent this long is evicted
//!   dialect=node-redis|node-cluster|python   the peers' wire format (default: the transport's)
//!   channel=socketio                 python: the manager channel (Flask-SocketIO: flask-socketio)
//!   max_message_bytes=10485760       largest message published or accepted (bytes)
//!   max_room_channels=100000         most per-room channels per namespace (dynamic modes)
//!   health_check_interval_ms=10000   subscription health check period (0: off); a node
//!                                    is not ready after 1.5 periods without an echo
//! ```
//!
//! `dialect=python` also selects python-socketio's own layout on the broker (Redis: one
//! pub/sub channel; RabbitMQ: Kombu's fanout exchange named after the channel; Kafka: a
//! topic named after the channel), so that a Flask-SocketIO `message_queue` URL plus
//! `?dialect=python&channel=...` reaches the same processes.
//!
//! Every error is one line that names the URL without its password.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use percent_encoding::percent_decode_str;

use crate::ClusterConfig;
use crate::dialect::{Dialect, DialectKind, NodeClusterDialect, SubscriptionMode, python};
use crate::transport::redact_url;

/// A password that never shows in `Debug` output or error messages.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// One `host[:port]` of a URL's authority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    /// The host name or address, percent-decoded, IPv6 without brackets.
    pub host: String,
    /// The port (the transport's default when the URL gives none).
    pub port: u16,
}

impl fmt::Display for HostPort {
    /// `host:port`, IPv6 in brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A URL split by the shared grammar (see the [module docs](self)). Parsing does no I/O.
#[derive(Clone, Debug)]
pub struct ParsedUrl {
    /// The scheme, lower-cased (one of those [`ParsedUrl::parse`] accepted).
    pub scheme: String,
    /// The user name, percent-decoded; `None` when absent or empty.
    pub username: Option<String>,
    /// The password, percent-decoded; `None` when absent or empty.
    pub password: Option<Password>,
    /// The authority's `host[:port]` entries as written (see [`ParsedUrl::hosts`]).
    pub raw_hosts: Vec<String>,
    /// The path as written: empty or starting with `/` (not decoded: `%2f` may matter).
    pub path: String,
    /// The query's key-value pairs, decoded, in order.
    pub query: Vec<(String, String)>,
    /// The input without its password, for messages.
    redacted: String,
    /// An `@` lies outside the authority: maybe a password with an unencoded `/`, `?` or
    /// `#`, so messages do not quote the hosts (they could be part of it).
    ambiguous: bool,
}

impl ParsedUrl {
    /// Splits `input`, whose scheme must be one of `schemes` (lower case).
    ///
    /// The error is one line: the URL without its password, then why.
    pub fn parse(input: &str, schemes: &[&str]) -> Result<Self, String> {
        let after_scheme = input.find("://").map_or(0, |i| i + 3);
        let authority_end = input[after_scheme..].find(['/', '?', '#']).map_or(input.len(), |i| after_scheme + i);
        let ambiguous = !input[after_scheme..authority_end].contains('@') && input[authority_end..].contains('@');
        let redacted = match input.rfind('@') {
            // hide everything up to the last `@`: it may all be user-info
            Some(at) if ambiguous => format!("{}***{}", &input[..after_scheme], &input[at..]),
            _ => redact_url(input),
        };
        let bad = |why: String| format!("{redacted}: {why}");
        let expected = schemes.iter().map(|s| format!("{s}://")).collect::<Vec<_>>().join(" or ");
        let (scheme, rest) = input.split_once("://").ok_or_else(|| bad(format!("expected {expected}")))?;
        let scheme = scheme.to_ascii_lowercase();
        if !schemes.contains(&scheme.as_str()) {
            return Err(bad(format!("unsupported scheme {scheme:?} (expected {})", schemes.join(" or "))));
        }
        let rest = rest.split_once('#').map_or(rest, |(r, _fragment)| r);
        let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (mut username, mut password) = (None, None);
        if let Some(userinfo) = userinfo {
            let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            username = Some(decode(user).map_err(|_| bad("the user name is not UTF-8 once percent-decoded".into()))?)
                .filter(|u| !u.is_empty());
            password = Some(decode(pass).map_err(|_| bad("the password is not UTF-8 once percent-decoded".into()))?)
                .filter(|p| !p.is_empty())
                .map(Password);
        }
        Ok(ParsedUrl {
            scheme,
            username,
            password,
            raw_hosts: hosts.split(',').filter(|h| !h.is_empty()).map(str::to_owned).collect(),
            path: path.to_owned(),
            query: url::form_urlencoded::parse(query.as_bytes()).into_owned().collect(),
            redacted,
            ambiguous,
        })
    }

    /// A one-line error about this URL: the URL without its password, then `why`.
    pub fn error(&self, why: impl fmt::Display) -> String {
        format!("{}: {why}", self.redacted)
    }

    /// The hosts, checked, with `default_port` where none is given. `what` names a host
    /// in messages (`host`, `broker`). At least one, or an error `no {what}`.
    pub fn hosts(&self, default_port: u16, what: &str) -> Result<Vec<HostPort>, String> {
        if self.raw_hosts.is_empty() {
            return Err(self.error(format!("no {what}")));
        }
        self.raw_hosts.iter().map(|h| self.host(h, default_port, what)).collect()
    }

    /// The one host of a transport that takes one.
    pub fn single_host(&self, default_port: u16) -> Result<HostPort, String> {
        let mut hosts = self.hosts(default_port, "host")?;
        if hosts.len() > 1 {
            return Err(self.error(format!("several hosts: {} takes one", self.scheme)));
        }
        Ok(hosts.remove(0))
    }

    fn host(&self, raw: &str, default_port: u16, what: &str) -> Result<HostPort, String> {
        let err = |why: &str| {
            if self.ambiguous {
                // never quote what may be a piece of a password
                self.error(format!(
                    "{what}: {why} (percent-encode '/', '?' and '#' in a user name or password: %2F, %3F, %23)"
                ))
            } else {
                self.error(format!("{what} {raw:?}: {why}"))
            }
        };
        let url = url::Url::parse(&format!("{}://{raw}", self.scheme)).map_err(|e| match e {
            url::ParseError::InvalidPort => err("the port is not a number from 1 to 65535"),
            e => err(&e.to_string()),
        })?;
        let host = match url.host() {
            Some(url::Host::Domain(d)) => decode(d).map_err(|_| err("not UTF-8 once percent-decoded"))?,
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            None => String::new(),
        };
        if host.is_empty() {
            return Err(err("no host name"));
        }
        match url.port().unwrap_or(default_port) {
            0 => Err(err("the port is not a number from 1 to 65535")),
            port => Ok(HostPort { host, port }),
        }
    }

    /// Whether the query sets `key`.
    pub fn has(&self, key: &str) -> bool {
        self.query.iter().any(|(k, _)| k == key)
    }
}

/// Percent-decodes `s` (nothing else: `+` stays a plus).
pub fn decode(s: &str) -> Result<String, std::str::Utf8Error> {
    percent_decode_str(s).decode_utf8().map(|s| s.into_owned())
}

/// The boolean grammar of every option: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`,
/// in any case.
pub fn parse_bool(key: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("{key}={value:?} is not a boolean (true/false, 1/0, yes/no, on/off)")),
    }
}

/// A positive whole number (`0` refused).
pub fn parse_positive(key: &str, value: &str) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(0) | Err(_) => Err(format!("{key}={value:?} is not a positive number")),
        Ok(n) => Ok(n),
    }
}

/// The duration grammar of every `*_ms` option: a positive whole number of milliseconds.
pub fn parse_ms(key: &str, value: &str) -> Result<Duration, String> {
    parse_positive(key, value)
        .map(Duration::from_millis)
        .map_err(|_| format!("{key}={value:?} is not a positive number of milliseconds"))
}

/// Like [`parse_ms`], `0` allowed (for options where zero means "at once").
pub fn parse_ms_or_zero(key: &str, value: &str) -> Result<Duration, String> {
    value
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| format!("{key}={value:?} is not a number of milliseconds"))
}

/// The options every transport's URL accepts (see the [module docs](self)). The
/// transports' option types hold one and dereference to it, so `opts.prefix` reads as
/// before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedOptions {
    /// Channel prefix of the dialect.
    pub prefix: String,
    /// Cluster request timeout.
    pub request_timeout: Duration,
    /// Timeout of one connection attempt.
    pub connect_timeout: Duration,
    /// Which rooms get their own channel (dialects that have room channels).
    pub subscription_mode: SubscriptionMode,
    /// Cluster heartbeat period; `None` keeps [`ClusterConfig`]'s default.
    pub heartbeat_interval: Option<Duration>,
    /// Eviction delay of a silent node; `None` keeps [`ClusterConfig`]'s default.
    pub heartbeat_timeout: Option<Duration>,
    /// The dialect the URL asks for; `None` leaves it to the transport (node-redis on
    /// classic Redis, node-cluster elsewhere).
    pub dialect: Option<DialectKind>,
    /// The python dialect's manager channel; `None` is python-socketio's default,
    /// `socketio`.
    pub channel: Option<String>,
    /// The largest message published or accepted; `None` keeps [`ClusterConfig`]'s
    /// default (10 MiB).
    pub max_message_size: Option<usize>,
    /// The most per-room channels per namespace; `None` keeps [`ClusterConfig`]'s
    /// default (100 000).
    pub max_room_channels: Option<usize>,
    /// Health check period; `None` keeps [`ClusterConfig`]'s default, zero turns it off.
    pub health_check_interval: Option<Duration>,
}

impl Default for SharedOptions {
    /// Prefix `socket.io`, request and connect timeouts 5 s, dynamic subscriptions.
    fn default() -> Self {
        SharedOptions {
            prefix: "socket.io".to_owned(),
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            subscription_mode: SubscriptionMode::Dynamic,
            heartbeat_interval: None,
            heartbeat_timeout: None,
            dialect: None,
            channel: None,
            max_message_size: None,
            max_room_channels: None,
            health_check_interval: None,
        }
    }
}

impl SharedOptions {
    /// Applies `key=value` if `key` is a shared option: `Ok(true)` when it was,
    /// `Ok(false)` when the key is the transport's to handle, `Err(why)` for a bad value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool, String> {
        match key {
            "prefix" => {
                if value.is_empty() {
                    return Err("prefix is empty".into());
                }
                self.prefix = value.to_owned();
            }
            "request_timeout_ms" => self.request_timeout = parse_ms(key, value)?,
            "connect_timeout_ms" => self.connect_timeout = parse_ms(key, value)?,
            "subscription_mode" => self.subscription_mode = value.parse()?,
            "heartbeat_interval_ms" => self.heartbeat_interval = Some(parse_ms(key, value)?),
            "heartbeat_timeout_ms" => self.heartbeat_timeout = Some(parse_ms(key, value)?),
            "dialect" => self.dialect = Some(value.parse()?),
            "max_message_bytes" => {
                self.max_message_size = Some(
                    usize::try_from(parse_positive(key, value)?)
                        .map_err(|_| format!("{key}={value:?} is too large for this machine"))?,
                );
            }
            "max_room_channels" => {
                self.max_room_channels = Some(
                    usize::try_from(parse_positive(key, value)?)
                        .map_err(|_| format!("{key}={value:?} is too large for this machine"))?,
                );
            }
            "channel" => {
                if value.is_empty() {
                    return Err("channel is empty".into());
                }
                self.channel = Some(value.to_owned());
            }
            "health_check_interval_ms" => self.health_check_interval = Some(parse_ms_or_zero(key, value)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks what single keys cannot: `channel` is the python dialect's, and
    /// `dialect=node-redis` and `dialect=node-streams` need Redis (`broker` names the transport's broker).
    pub fn check(&self, broker: &str) -> Result<(), String> {
        if self.channel.is_some() && self.dialect != Some(DialectKind::Python) {
            return Err("channel is the python dialect's manager channel: add dialect=python".into());
        }
        if self.dialect == Some(DialectKind::NodeRedis) && broker != "Redis" {
            return Err(format!("dialect=node-redis needs Redis; {broker} speaks node-cluster or python"));
        }
        if self.dialect == Some(DialectKind::NodeStreams) && broker != "Redis" {
            return Err(format!("dialect=node-streams needs Redis; {broker} speaks node-cluster or python"));
        }
        Ok(())
    }

    /// The python dialect's manager channel, when the options ask for that dialect.
    pub fn python_channel(&self) -> Option<&str> {
        match self.dialect {
            Some(DialectKind::Python) => Some(self.channel.as_deref().unwrap_or(python::DEFAULT_CHANNEL)),
            _ => None,
        }
    }

    /// The dialect of a transport whose own protocol is node-cluster (Kafka, AMQP,
    /// sharded Redis): python when asked for, else node-cluster.
    pub fn dialect_or_node_cluster(&self) -> Arc<dyn Dialect> {
        match self.python_channel() {
            Some(channel) => DialectKind::Python.dialect(channel),
            None => self.node_cluster_dialect(),
        }
    }

    /// The cluster configuration these options ask for (request timeout, heartbeats).
    pub fn cluster_config(&self) -> ClusterConfig {
        let mut c = ClusterConfig::default().with_request_timeout(self.request_timeout);
        if let Some(i) = self.heartbeat_interval {
            c = c.with_heartbeat_interval(i);
        }
        if let Some(t) = self.heartbeat_timeout {
            c = c.with_heartbeat_timeout(t);
        }
        if let Some(n) = self.max_message_size {
            c = c.with_max_message_size(n);
        }
        if let Some(n) = self.max_room_channels {
            c = c.with_max_room_channels(n);
        }
        if let Some(i) = self.health_check_interval {
            c = c.with_health_check_interval((!i.is_zero()).then_some(i));
        }
        c
    }

    /// The node-cluster dialect (socket.io-adapter `ClusterAdapter` envelope) with this
    /// prefix and subscription mode.
    pub fn node_cluster_dialect(&self) -> Arc<dyn Dialect> {
        Arc::new(NodeClusterDialect::new(self.prefix.clone()).with_subscription_mode(self.subscription_mode))
    }

    /// A one-line description for logs and errors, never with a password:
    /// `{transport} {endpoint} ({detail}, prefix {prefix})`.
    pub fn describe(&self, transport: &str, endpoint: &str, detail: &str) -> String {
        let sep = if detail.is_empty() { "" } else { ", " };
        match self.python_channel() {
            Some(channel) => format!("{transport} {endpoint} ({detail}{sep}python channel {channel})"),
            None => format!("{transport} {endpoint} ({detail}{sep}prefix {})", self.prefix),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parts(url: &str) -> ParsedUrl {
        ParsedUrl::parse(url, &["x", "xs"]).unwrap()
    }

    fn creds(url: &str) -> (Option<String>, Option<String>) {
        let p = parts(url);
        (p.username, p.password.map(|p| p.0))
    }

    fn some(u: &str, p: &str) -> (Option<String>, Option<String>) {
        (Some(u.into()), Some(p.into()))
    }

    #[test]
    fn user_info_is_percent_decoded_only() {
        assert_eq!(creds("x://u:a+b&c@h"), some("u", "a+b&c"));
        assert_eq!(creds("x://u:a%2Bb%26c@h"), some("u", "a+b&c"));
        assert_eq!(creds("x://u:p%40ss@h"), some("u", "p@ss"));
        assert_eq!(creds("x://u:p@ss@h"), some("u", "p@ss"), "the last @ ends the user-info");
        assert_eq!(creds("x://u:a:b@h"), some("u", "a:b"));
        assert_eq!(creds("x://%C3%A9l%C3%A8ve:%E2%82%AC%20x@h"), some("élève", "€ x"));
        assert_eq!(creds("x://u%3Av:pw@h"), some("u:v", "pw"));
        assert_eq!(creds("x://:pw@h"), (None, Some("pw".into())));
        assert_eq!(creds("x://u@h"), (Some("u".into()), None));
        assert_eq!(creds("x://h"), (None, None));
        let err = ParsedUrl::parse("x://u:%FF%FEhunter2@h", &["x"]).unwrap_err();
        assert!(err.contains("password is not UTF-8") && !err.contains("hunter2"), "{err}");
        // an unencoded '/', '?' or '#' ends the authority inside the password: no piece of
        // it shows in errors
        for url in ["x://u:hun/ter2@h", "x://u:hun?ter2@h", "x://u:hun#ter2@h?a=1"] {
            let err = ParsedUrl::parse(url, &["x"]).and_then(|p| p.hosts(1, "host").map(|_| ())).unwrap_err();
            assert!(!err.contains("hun") && !err.contains("ter2") && err.contains("percent-encode"), "{url}: {err}");
        }
        let p = parts("x://h?to=a@b&bad=1");
        assert!(p.error("x").starts_with("x://***@b&bad=1"), "over-redacted rather than leaky");
    }

    #[test]
    fn hosts_path_and_query() {
        let p = parts("XS://h1,h2:7001,[::1]:7002/3/x?a=1&b=x+y&c=%26%3D&a=2#frag");
        assert_eq!(p.scheme, "xs");
        let hosts = p.hosts(6379, "host").unwrap();
        assert_eq!(hosts.iter().map(ToString::to_string).collect::<Vec<_>>(), ["h1:6379", "h2:7001", "[::1]:7002"]);
        assert_eq!(hosts[2].host, "::1");
        assert_eq!(p.path, "/3/x");
        let q: Vec<(&str, &str)> = p.query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(q, [("a", "1"), ("b", "x y"), ("c", "&="), ("a", "2")]);
        assert!(p.has("b") && !p.has("d"));
        assert!(parts("x://?a=1").hosts(1, "broker").unwrap_err().contains("no broker"));
        assert!(parts("x://h:x").hosts(1, "host").unwrap_err().contains("not a number"));
        assert!(parts("x://h:0").hosts(1, "host").unwrap_err().contains("not a number"));
        assert!(parts("x://a,b").single_host(1).unwrap_err().contains("takes one"));
        for (url, why) in [("h", "expected x:// or xs://"), ("http://h", "unsupported scheme \"http\"")] {
            let err = ParsedUrl::parse(url, &["x", "xs"]).unwrap_err();
            assert!(err.contains(why), "{url}: {err}");
        }
    }

    #[test]
    fn one_grammar_for_booleans_and_durations() {
        for v in ["true", "TRUE", "1", "yes", "On"] {
            assert_eq!(parse_bool("k", v), Ok(true), "{v}");
        }
        for v in ["false", "0", "No", "off", "OFF"] {
            assert_eq!(parse_bool("k", v), Ok(false), "{v}");
        }
        assert!(parse_bool("k", "maybe").unwrap_err().contains("not a boolean"));
        assert_eq!(parse_ms("k", "250"), Ok(Duration::from_millis(250)));
        for v in ["0", "-1", "1.5", "", "5s"] {
            assert!(parse_ms("k", v).unwrap_err().contains("positive number of milliseconds"), "{v}");
        }
        assert_eq!(parse_ms_or_zero("k", "0"), Ok(Duration::ZERO));
    }

    #[test]
    fn shared_options_take_their_keys_only() {
        let mut s = SharedOptions::default();
        for (k, v) in [
            ("prefix", "chat"),
            ("request_timeout_ms", "250"),
            ("connect_timeout_ms", "100"),
            ("subscription_mode", "static"),
            ("heartbeat_interval_ms", "50"),
            ("heartbeat_timeout_ms", "200"),
            ("health_check_interval_ms", "0"),
            ("max_room_channels", "7"),
        ] {
            assert_eq!(s.set(k, v), Ok(true), "{k}");
        }
        assert_eq!(s.set("mode", "sharded"), Ok(false));
        assert_eq!(s.prefix, "chat");
        assert_eq!((s.request_timeout, s.connect_timeout), (Duration::from_millis(250), Duration::from_millis(100)));
        assert_eq!(s.subscription_mode, SubscriptionMode::Static);
        assert_eq!(s.cluster_config().request_timeout(), Duration::from_millis(250));
        assert_eq!(s.cluster_config().health_check_interval(), None, "0 turns it off");
        assert_eq!(s.cluster_config().max_room_channels, 7);
        assert!(s.set("max_room_channels", "0").unwrap_err().contains("max_room_channels"));
        assert_eq!(s.set("health_check_interval_ms", "2000"), Ok(true));
        assert_eq!(s.cluster_config().health_check_interval(), Some(Duration::from_secs(2)));
        assert_eq!(s.node_cluster_dialect().name(), "node-cluster");
        assert!(s.set("prefix", "").unwrap_err().contains("prefix is empty"));
        assert!(s.set("subscription_mode", "x").unwrap_err().contains("unknown subscription mode"));
        assert_eq!(s.describe("kafka", "h:9092", "topic t"), "kafka h:9092 (topic t, prefix chat)");
    }
}
