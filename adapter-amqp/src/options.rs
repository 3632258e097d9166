//! Configuration: the URL grammar and the options it carries. Parsing does no I/O.

use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
use socketio_adapter_core::dialect::{Dialect, SubscriptionMode};
use socketio_adapter_core::options::{ParsedUrl, SharedOptions, decode, parse_bool, parse_ms};

use crate::error::AmqpTransportError;

/// The longest routing key (and exchange name) AMQP 0-9-1 allows: a `shortstr`.
pub const MAX_ROUTING_KEY: usize = 255;

/// Everything needed to connect and to build the matching dialect, parsed from a URL.
///
/// ```text
/// amqp[s]://[user[:password]@]host[:port][/vhost][?option=value&...]
///
///   exchange=<prefix>           exchange name (default: the prefix, so `socket.io`)
///   prefetch=256                unacknowledged deliveries in flight to this node
///   confirms=true|false         publisher confirms: publish resolves on the broker's ack
///   max_queue_length=65536      bound of the node's queue at the broker (0 = unbounded)
///   heartbeat=10                AMQP heartbeat in seconds (0 = off)
///   operation_timeout_ms=5000   one broker operation (declare, bind, publish confirm)
///   tls_ca_file=/path/ca.pem    amqps://: trust this CA instead of the web roots
///
/// and the options every transport shares (socketio_adapter_core::options):
///   prefix=socket.io            channel prefix of the node-cluster dialect (`channelPrefix`)
///   request_timeout_ms=5000     cluster request timeout
///   connect_timeout_ms=5000     one connection attempt
///   subscription_mode=static|dynamic|dynamic-private   room routing (default dynamic)
///   heartbeat_interval_ms, heartbeat_timeout_ms        cluster heartbeats (not AMQP's)
///   dialect=python&channel=socketio   python-socketio's Kombu layout ([`Layout::Fanout`]):
///                               a Flask-SocketIO `message_queue` `amqp://` URL plus these two
/// ```
///
/// `user:password` default to `guest:guest` and are percent-decoded only (`+` and `&` are
/// themselves; write `@` as `%40`); the port defaults to 5672 (5671 for `amqps`), the
/// vhost to `/` (write `%2f` for `/` explicitly, as RabbitMQ documents; an empty path
/// also means `/`).
///
/// Examples: `amqp://guest:guest@127.0.0.1:5672/%2f`,
/// `amqp://app:secret@rabbit.internal/chat?prefix=chat&subscription_mode=static`,
/// `amqps://app:secret@mq.example.com/prod?confirms=false`.
///
/// The shared options are in [`AmqpOptions::shared`]; the type dereferences to them, so
/// `opts.prefix`, `opts.request_timeout` and `opts.cluster_config()` work directly.
#[derive(Clone, Debug)]
pub struct AmqpOptions {
    /// Where to connect (host, port, credentials, vhost, heartbeat).
    pub uri: AMQPUri,
    /// Prefix, timeouts, subscription mode (and so bindings), heartbeats.
    pub shared: SharedOptions,
    /// Exchange name; `None` uses the prefix.
    pub exchange: Option<String>,
    /// `basic.qos` prefetch count of the node's consumer.
    pub prefetch: u16,
    /// Publisher confirms: a publish resolves once the broker has taken the message.
    pub confirms: bool,
    /// `x-max-length` of the node's queue (oldest dropped beyond it); `None` for none.
    pub max_queue_length: Option<u32>,
    /// Timeout of one broker operation (declare, bind, unbind, publish and its confirm).
    pub operation_timeout: Duration,
    /// `amqps://`: a PEM file of the CA(s) that signed the server certificate (read when
    /// connecting, not when parsing).
    pub tls_ca_file: Option<std::path::PathBuf>,
}

impl Deref for AmqpOptions {
    type Target = SharedOptions;
    fn deref(&self) -> &SharedOptions {
        &self.shared
    }
}

impl DerefMut for AmqpOptions {
    fn deref_mut(&mut self) -> &mut SharedOptions {
        &mut self.shared
    }
}

impl AmqpOptions {
    /// Parses the URL grammar above (no I/O).
    pub fn parse(input: &str) -> Result<Self, AmqpTransportError> {
        let url = ParsedUrl::parse(input, &["amqp", "amqps"]).map_err(AmqpTransportError::Url)?;
        let bad = |why: String| AmqpTransportError::Url(url.error(why));
        let (scheme, tls) = if url.scheme == "amqps" { (AMQPScheme::AMQPS, true) } else { (AMQPScheme::AMQP, false) };
        if tls && !cfg!(feature = "tls") {
            return Err(bad("amqps:// needs the `tls` feature of socketio-adapter-amqp".into()));
        }
        let host = url.single_host(if tls { 5671 } else { 5672 }).map_err(AmqpTransportError::Url)?;
        let vhost = match url.path.strip_prefix('/').unwrap_or(&url.path) {
            "" => "/".to_owned(),
            v => decode(v).map_err(|_| bad(format!("vhost {v:?} is not UTF-8 once percent-decoded")))?,
        };
        let mut opts = AmqpOptions::new(String::new());
        let mut heartbeat = 10;
        for (k, v) in &url.query {
            if opts.shared.set(k, v).map_err(bad)? {
                continue;
            }
            match k.as_str() {
                "exchange" if v.is_empty() => {
                    return Err(bad("exchange is empty (the default exchange cannot route by channel)".into()));
                }
                "exchange" => opts.exchange = Some(v.clone()),
                "operation_timeout_ms" => opts.operation_timeout = parse_ms(k, v).map_err(bad)?,
                "prefetch" => {
                    opts.prefetch = match v.parse::<u16>() {
                        Ok(n) if n > 0 => n,
                        _ => return Err(bad(format!("prefetch={v:?} is not a number from 1 to 65535"))),
                    }
                }
                "confirms" => opts.confirms = parse_bool(k, v).map_err(bad)?,
                "max_queue_length" => {
                    opts.max_queue_length = match v.parse::<u32>() {
                        Ok(0) => None,
                        Ok(n) if n <= i32::MAX as u32 => Some(n),
                        _ => return Err(bad(format!("max_queue_length={v:?} is not a number from 0 to 2147483647"))),
                    }
                }
                "heartbeat" => {
                    heartbeat = v.parse().map_err(|_| bad(format!("heartbeat={v:?} is not a number of seconds")))?
                }
                "tls_ca_file" if !tls => return Err(bad("tls_ca_file needs an amqps:// URL".into())),
                "tls_ca_file" => opts.tls_ca_file = Some(v.into()),
                other => return Err(bad(format!("unknown option {other:?}"))),
            }
        }
        opts.shared.check("AMQP").map_err(bad)?;
        if opts.layout() == Layout::Fanout && url.has("exchange") {
            return Err(bad(
                "exchange with dialect=python: python-socketio's exchange is named after its channel".into()
            ));
        }
        if opts.exchange().len() > MAX_ROUTING_KEY {
            return Err(bad(format!("exchange name longer than {MAX_ROUTING_KEY} bytes")));
        }
        let userinfo = AMQPUserInfo {
            username: url.username.clone().unwrap_or_else(|| "guest".to_owned()),
            password: url.password.clone().map_or_else(|| "guest".to_owned(), |p| p.0),
        };
        opts.uri = AMQPUri {
            scheme,
            authority: AMQPAuthority { userinfo, host: host.host, port: host.port },
            vhost,
            query: AMQPQueryString {
                heartbeat: Some(heartbeat),
                connection_timeout: Some(opts.connect_timeout.as_millis() as u64),
                ..AMQPQueryString::default()
            },
        };
        Ok(opts)
    }

    /// Options for `amqp://guest:guest@host:5672/%2f` with every default.
    pub fn new(host: impl Into<String>) -> Self {
        AmqpOptions {
            uri: AMQPUri {
                scheme: AMQPScheme::AMQP,
                authority: AMQPAuthority {
                    userinfo: AMQPUserInfo { username: "guest".into(), password: "guest".into() },
                    host: host.into(),
                    port: 5672,
                },
                vhost: "/".into(),
                query: AMQPQueryString {
                    heartbeat: Some(10),
                    connection_timeout: Some(5000),
                    ..AMQPQueryString::default()
                },
            },
            shared: SharedOptions::default(),
            exchange: None,
            prefetch: 256,
            confirms: true,
            max_queue_length: Some(65_536),
            operation_timeout: Duration::from_secs(5),
            tls_ca_file: None,
        }
    }

    /// Sets the channel prefix (and so the default exchange name).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the exchange name.
    pub fn with_exchange(mut self, exchange: impl Into<String>) -> Self {
        self.exchange = Some(exchange.into());
        self
    }

    /// Sets the subscription mode.
    pub fn with_subscription_mode(mut self, mode: SubscriptionMode) -> Self {
        self.subscription_mode = mode;
        self
    }

    /// Sets the cluster request timeout.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Turns publisher confirms on or off.
    pub fn with_confirms(mut self, confirms: bool) -> Self {
        self.confirms = confirms;
        self
    }

    /// The exchange name: the `exchange` option, else the prefix.
    pub fn exchange(&self) -> &str {
        self.exchange.as_deref().unwrap_or(&self.prefix)
    }

    /// How channels map onto the broker: [`Layout::Fanout`] with `dialect=python`,
    /// else [`Layout::Direct`].
    pub fn layout(&self) -> Layout {
        if self.shared.python_channel().is_some() { Layout::Fanout } else { Layout::Direct }
    }

    /// The exchange and routing key that carry `channel` in this layout.
    pub fn route<'a>(&'a self, channel: &'a str) -> (&'a str, String) {
        match self.layout() {
            Layout::Direct => (self.exchange(), routing_key(channel)),
            Layout::Fanout => (channel, String::new()),
        }
    }

    /// The dialect: node-cluster with this prefix and subscription mode, or python with
    /// `dialect=python`.
    pub fn dialect(&self) -> Arc<dyn Dialect> {
        self.shared.dialect_or_node_cluster()
    }

    /// The broker and exchange, for logs (never the password).
    pub fn describe(&self) -> String {
        let a = &self.uri.authority;
        let endpoint =
            format!("{}://{}@{}:{}/{}", self.uri.scheme, a.userinfo.username, a.host, a.port, self.uri.vhost);
        self.shared.describe("amqp", &endpoint, &format!("exchange {}", self.exchange()))
    }
}

impl FromStr for AmqpOptions {
    type Err = AmqpTransportError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AmqpOptions::parse(s)
    }
}

/// How channels map onto exchanges, queues and routing keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// One direct exchange (the `exchange` option, default the prefix); each channel is a
    /// routing key ([`routing_key`]); each node has an exclusive, server-named queue bound
    /// to the keys it subscribed to.
    Direct,
    /// python-socketio's `KombuManager` layout (and `AsyncAioPikaManager`'s): each channel
    /// is a non-durable fanout exchange of that name; each node has a non-durable queue
    /// with `x-expires` (5 minutes) bound to the exchanges it subscribed to; messages are
    /// published as `text/plain` UTF-8 bodies, persistent, as Kombu sends them.
    Fanout,
}

/// The routing key that carries `channel`: the channel name itself when it fits in
/// [`MAX_ROUTING_KEY`] bytes; else its first 200 bytes (cut at a character boundary),
/// then `~`, then the 16 lowercase hex digits of the 64-bit FNV-1a hash of the whole
/// name. Every node maps a channel the same way, so long room names still route.
pub fn routing_key(channel: &str) -> String {
    if channel.len() <= MAX_ROUTING_KEY {
        return channel.to_owned();
    }
    let mut cut = 200;
    while !channel.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in channel.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{}~{hash:016x}", &channel[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_grammar() {
        let o = AmqpOptions::parse("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
        let a = &o.uri.authority;
        assert_eq!((a.host.as_str(), a.port, o.uri.vhost.as_str()), ("127.0.0.1", 5672, "/"));
        assert_eq!((a.userinfo.username.as_str(), a.userinfo.password.as_str()), ("guest", "guest"));
        assert_eq!((o.prefix.as_str(), o.exchange()), ("socket.io", "socket.io"));
        assert_eq!(o.subscription_mode, SubscriptionMode::Dynamic);
        assert!(o.confirms);
        assert_eq!(o.prefetch, 256);

        let o = AmqpOptions::parse(
            "amqp://app:p%40ss@10.1.2.3:5673/chat%2Fprod?prefix=chat&exchange=x.chat&subscription_mode=static\
             &request_timeout_ms=250&prefetch=10&confirms=false&max_queue_length=0&heartbeat=0",
        )
        .unwrap();
        let a = &o.uri.authority;
        assert_eq!((a.host.as_str(), a.port, o.uri.vhost.as_str()), ("10.1.2.3", 5673, "chat/prod"));
        assert_eq!((a.userinfo.username.as_str(), a.userinfo.password.as_str()), ("app", "p@ss"));
        assert_eq!((o.prefix.as_str(), o.exchange()), ("chat", "x.chat"));
        assert_eq!(o.subscription_mode, SubscriptionMode::Static);
        assert_eq!(o.request_timeout, Duration::from_millis(250));
        assert_eq!(o.cluster_config().request_timeout(), Duration::from_millis(250));
        assert_eq!((o.prefetch, o.confirms, o.max_queue_length, o.uri.query.heartbeat), (10, false, None, Some(0)));

        let o = AmqpOptions::parse("amqp://rabbit").unwrap();
        assert_eq!((o.uri.authority.port, o.uri.vhost.as_str()), (5672, "/"));
        let o = AmqpOptions::parse("amqp://rabbit/").unwrap();
        assert_eq!(o.uri.vhost, "/");
        let o = AmqpOptions::parse("amqp://[::1]:5680/v").unwrap();
        assert_eq!((o.uri.authority.host.as_str(), o.uri.authority.port, o.uri.vhost.as_str()), ("::1", 5680, "v"));
    }

    #[test]
    fn the_dialect_speaks_node_cluster_with_the_prefix() {
        let o = AmqpOptions::parse("amqp://h?prefix=p&subscription_mode=static").unwrap();
        let dialect = o.dialect();
        assert_eq!(dialect.name(), "node-cluster");
        assert!(!dialect.capabilities().room_channels);
        let channels = dialect.node_channels("/", "u");
        assert_eq!(channels[0].as_str(), "p#/#");
    }

    #[test]
    fn bad_urls_say_why_and_hide_the_password() {
        for (url, why) in [
            ("http://x", "unsupported scheme"),
            ("amqp://", "no host"),
            ("amqp://h?subscription_mode=fast", "unknown subscription mode"),
            ("amqp://h?bogus=1", "unknown option"),
            ("amqp://h?prefetch=0", "prefetch"),
            ("amqp://h?confirms=maybe", "not a boolean"),
            ("amqp://h?request_timeout_ms=0", "positive number"),
            ("amqp://h?exchange=", "exchange is empty"),
            ("amqp://h?tls_ca_file=/x", "needs an amqps://"),
            ("localhost:5672", "expected amqp://"),
        ] {
            let err = AmqpOptions::parse(url).unwrap_err().to_string();
            assert!(err.contains(why), "{url}: {err}");
        }
        let long = format!("amqp://h?exchange={}", "x".repeat(256));
        assert!(AmqpOptions::parse(&long).unwrap_err().to_string().contains("longer than 255"));
        let err = AmqpOptions::parse("amqp://u:hunter2@h?x=1").unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    /// Issue 19: user and password are URL user-info, percent-decoded only.
    #[test]
    fn credentials_are_percent_decoded_user_info() {
        let creds = |url: &str| {
            let o = AmqpOptions::parse(url).unwrap();
            let u = o.uri.authority.userinfo;
            (u.username, u.password)
        };
        let pair = |u: &str, p: &str| (u.to_owned(), p.to_owned());
        assert_eq!(creds("amqp://u:a+b&c@127.0.0.1:5672/%2f"), pair("u", "a+b&c"));
        assert_eq!(creds("amqp://u:p%40ss@h"), pair("u", "p@ss"));
        assert_eq!(creds("amqp://u:a:b@h"), pair("u", "a:b"));
        assert_eq!(creds("amqp://%C3%A9l%C3%A8ve:%E2%82%AC%2B@h/v"), pair("élève", "€+"));
        assert_eq!(creds("amqp://u@h"), pair("u", "guest"));
        assert_eq!(creds("amqp://h"), pair("guest", "guest"));
        let err = AmqpOptions::parse("amqp://u:hunter2%FF@h").unwrap_err().to_string();
        assert!(err.contains("not UTF-8") && !err.contains("hunter2"), "{err}");
        assert!(AmqpOptions::parse("amqp://a,b").unwrap_err().to_string().contains("takes one"));
    }

    #[test]
    fn shared_options_and_amqp_heartbeat() {
        let o = AmqpOptions::parse("amqp://h?connect_timeout_ms=700&confirms=OFF&heartbeat=3&heartbeat_interval_ms=40")
            .unwrap();
        assert_eq!((o.connect_timeout, o.uri.query.connection_timeout), (Duration::from_millis(700), Some(700)));
        assert_eq!((o.confirms, o.uri.query.heartbeat), (false, Some(3)));
        assert_eq!(o.heartbeat_interval, Some(Duration::from_millis(40)));
        let o = AmqpOptions::parse("amqp://h").unwrap();
        assert_eq!((o.uri.query.connection_timeout, o.uri.query.heartbeat), (Some(5000), Some(10)));
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_needs_the_feature() {
        let err = AmqpOptions::parse("amqps://h").unwrap_err().to_string();
        assert!(err.contains("`tls` feature"), "{err}");
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_urls_parse() {
        let o = AmqpOptions::parse("amqps://h?tls_ca_file=/etc/ca.pem").unwrap();
        assert_eq!((o.uri.scheme, o.uri.authority.port), (AMQPScheme::AMQPS, 5671));
        assert_eq!(o.tls_ca_file.as_deref(), Some(std::path::Path::new("/etc/ca.pem")));
    }

    #[test]
    fn long_channels_map_to_bounded_distinct_keys() {
        assert_eq!(routing_key("socket.io#/#"), "socket.io#/#");
        let exact = "x".repeat(255);
        assert_eq!(routing_key(&exact), exact);
        let a = format!("p#/#{}#", "é".repeat(200));
        let b = format!("p#/#{}x#", "é".repeat(200));
        let (ka, kb) = (routing_key(&a), routing_key(&b));
        assert!(ka.len() <= MAX_ROUTING_KEY && kb.len() <= MAX_ROUTING_KEY, "{} {}", ka.len(), kb.len());
        assert_ne!(ka, kb);
        assert_eq!(ka, routing_key(&a), "deterministic");
    }
}
