//! Configuration: the URL grammar and the options it carries. Parsing does no I/O.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
use socketio_adapter_core::ClusterConfig;
use socketio_adapter_core::codec::{Codec, NodeClusterCodec, SubscriptionMode};
use socketio_adapter_core::transport::redact_url;
use url::Url;

use crate::error::AmqpTransportError;

/// The longest routing key (and exchange name) AMQP 0-9-1 allows: a `shortstr`.
pub const MAX_ROUTING_KEY: usize = 255;

/// Everything needed to connect and to build the matching codec, parsed from a URL.
///
/// ```text
/// amqp[s]://[user[:password]@]host[:port][/vhost][?option=value&...]
///
///   prefix=socket.io            channel prefix of the node-cluster codec (`channelPrefix`)
///   exchange=<prefix>           exchange name (default: the prefix, so `socket.io`)
///   subscription_mode=static|dynamic|dynamic-private   room routing (default dynamic)
///   request_timeout_ms=5000     cluster request timeout
///   prefetch=256                unacknowledged deliveries in flight to this node
///   confirms=true|false         publisher confirms: publish resolves on the broker's ack
///   max_queue_length=65536      bound of the node's queue at the broker (0 = unbounded)
///   heartbeat=10                AMQP heartbeat in seconds (0 = off)
///   connect_timeout_ms=5000     one connection attempt
///   operation_timeout_ms=5000   one broker operation (declare, bind, publish confirm)
///   tls_ca_file=/path/ca.pem    amqps://: trust this CA instead of the web roots
/// ```
///
/// `user:password` default to `guest:guest`, the port to 5672 (5671 for `amqps`), the
/// vhost to `/` (write `%2f` for `/` explicitly, as RabbitMQ documents; an empty path
/// also means `/`).
///
/// Examples: `amqp://guest:guest@127.0.0.1:5672/%2f`,
/// `amqp://app:secret@rabbit.internal/chat?prefix=chat&subscription_mode=static`,
/// `amqps://app:secret@mq.example.com/prod?confirms=false`.
#[derive(Clone, Debug)]
pub struct AmqpOptions {
    /// Where to connect (host, port, credentials, vhost, heartbeat).
    pub uri: AMQPUri,
    /// Channel prefix of the node-cluster codec.
    pub prefix: String,
    /// Exchange name; `None` uses the prefix.
    pub exchange: Option<String>,
    /// Which rooms get their own channel (and so their own binding).
    pub subscription_mode: SubscriptionMode,
    /// Cluster request timeout.
    pub request_timeout: Duration,
    /// `basic.qos` prefetch count of the node's consumer.
    pub prefetch: u16,
    /// Publisher confirms: a publish resolves once the broker has taken the message.
    pub confirms: bool,
    /// `x-max-length` of the node's queue (oldest dropped beyond it); `None` for none.
    pub max_queue_length: Option<u32>,
    /// Timeout of one connection attempt.
    pub connect_timeout: Duration,
    /// Timeout of one broker operation (declare, bind, unbind, publish and its confirm).
    pub operation_timeout: Duration,
    /// `amqps://`: a PEM file of the CA(s) that signed the server certificate (read when
    /// connecting, not when parsing).
    pub tls_ca_file: Option<std::path::PathBuf>,
}

impl AmqpOptions {
    /// Parses the URL grammar above (no I/O).
    pub fn parse(input: &str) -> Result<Self, AmqpTransportError> {
        let bad = |why: String| AmqpTransportError::Url(format!("{}: {why}", redact_url(input)));
        let (scheme, _) = input.split_once("://").ok_or_else(|| bad("expected amqp:// or amqps://".into()))?;
        let scheme = match scheme {
            "amqp" => AMQPScheme::AMQP,
            "amqps" => AMQPScheme::AMQPS,
            other => return Err(bad(format!("unsupported scheme {other:?} (expected amqp or amqps)"))),
        };
        let tls = scheme == AMQPScheme::AMQPS;
        if tls && !cfg!(feature = "tls") {
            return Err(bad("amqps:// needs the `tls` feature of socketio-adapter-amqp".into()));
        }
        let url = Url::parse(input).map_err(|e| bad(e.to_string()))?;
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| bad("no host".into()))?;
        let host = decode(host.trim_start_matches('[').trim_end_matches(']')).map_err(bad)?;
        let port = url.port().unwrap_or(if tls { 5671 } else { 5672 });
        let username = match url.username() {
            "" => "guest".to_owned(),
            u => decode(u).map_err(bad)?,
        };
        let password = match url.password() {
            None => "guest".to_owned(),
            Some(p) => decode(p).map_err(bad)?,
        };
        let vhost = match url.path().strip_prefix('/').unwrap_or(url.path()) {
            "" => "/".to_owned(),
            v => decode(v).map_err(bad)?,
        };
        let mut query =
            AMQPQueryString { heartbeat: Some(10), connection_timeout: Some(5000), ..AMQPQueryString::default() };

        let mut opts = AmqpOptions::new("unused");
        for (k, v) in url.query_pairs() {
            let v = v.into_owned();
            match k.as_ref() {
                "prefix" => {
                    if v.is_empty() {
                        return Err(bad("prefix is empty".into()));
                    }
                    opts.prefix = v;
                }
                "exchange" => {
                    if v.is_empty() {
                        return Err(bad("exchange is empty (the default exchange cannot route by channel)".into()));
                    }
                    opts.exchange = Some(v);
                }
                "subscription_mode" => opts.subscription_mode = v.parse().map_err(bad)?,
                "request_timeout_ms" => opts.request_timeout = parse_ms(&k, &v).map_err(bad)?,
                "connect_timeout_ms" => {
                    opts.connect_timeout = parse_ms(&k, &v).map_err(bad)?;
                    query.connection_timeout = Some(opts.connect_timeout.as_millis() as u64);
                }
                "operation_timeout_ms" => opts.operation_timeout = parse_ms(&k, &v).map_err(bad)?,
                "prefetch" => {
                    opts.prefetch = match v.parse::<u16>() {
                        Ok(n) if n > 0 => n,
                        _ => return Err(bad(format!("prefetch={v:?} is not a number from 1 to 65535"))),
                    }
                }
                "confirms" => opts.confirms = parse_bool(&k, &v).map_err(bad)?,
                "max_queue_length" => {
                    opts.max_queue_length = match v.parse::<u32>() {
                        Ok(0) => None,
                        Ok(n) if n <= i32::MAX as u32 => Some(n),
                        _ => return Err(bad(format!("max_queue_length={v:?} is not a number from 0 to 2147483647"))),
                    }
                }
                "heartbeat" => {
                    query.heartbeat =
                        Some(v.parse().map_err(|_| bad(format!("heartbeat={v:?} is not a number of seconds")))?)
                }
                "tls_ca_file" => {
                    if !tls {
                        return Err(bad("tls_ca_file needs an amqps:// URL".into()));
                    }
                    opts.tls_ca_file = Some(v.into());
                }
                other => return Err(bad(format!("unknown option {other:?}"))),
            }
        }
        if opts.exchange().len() > MAX_ROUTING_KEY {
            return Err(bad(format!("exchange name longer than {MAX_ROUTING_KEY} bytes")));
        }
        opts.uri = AMQPUri {
            scheme,
            authority: AMQPAuthority { userinfo: AMQPUserInfo { username, password }, host, port },
            vhost,
            query,
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
            prefix: "socket.io".to_owned(),
            exchange: None,
            subscription_mode: SubscriptionMode::Dynamic,
            request_timeout: Duration::from_secs(5),
            prefetch: 256,
            confirms: true,
            max_queue_length: Some(65_536),
            connect_timeout: Duration::from_secs(5),
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

    /// The node-cluster codec with this prefix and subscription mode.
    pub fn codec(&self) -> Arc<dyn Codec> {
        Arc::new(NodeClusterCodec::new(self.prefix.clone()).with_subscription_mode(self.subscription_mode))
    }

    /// The cluster configuration (request timeout) for this transport.
    pub fn cluster_config(&self) -> ClusterConfig {
        ClusterConfig::default().with_request_timeout(self.request_timeout)
    }

    /// The broker and exchange, for logs (never the password).
    pub fn describe(&self) -> String {
        let a = &self.uri.authority;
        format!(
            "{}://{}@{}:{}/{} exchange {:?}",
            self.uri.scheme,
            a.userinfo.username,
            a.host,
            a.port,
            self.uri.vhost,
            self.exchange()
        )
    }
}

impl FromStr for AmqpOptions {
    type Err = AmqpTransportError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AmqpOptions::parse(s)
    }
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

fn parse_bool(k: &str, v: &str) -> Result<bool, String> {
    match v {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("{k}={v:?} is not a boolean")),
    }
}

fn parse_ms(k: &str, v: &str) -> Result<Duration, String> {
    match v.parse::<u64>() {
        Ok(0) | Err(_) => Err(format!("{k}={v:?} is not a positive number of milliseconds")),
        Ok(ms) => Ok(Duration::from_millis(ms)),
    }
}

fn decode(s: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| format!("{s:?} is not UTF-8 once percent-decoded"))
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
    fn the_codec_speaks_node_cluster_with_the_prefix() {
        let o = AmqpOptions::parse("amqp://h?prefix=p&subscription_mode=static").unwrap();
        let codec = o.codec();
        assert_eq!(codec.dialect(), "node-cluster");
        assert!(!codec.capabilities().room_channels);
        let channels = codec.node_channels("/", "u");
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
