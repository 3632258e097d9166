//! Configuration: the URL grammar and the options it carries. Parsing does no I/O.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, ProtocolVersion};
use socketio_adapter_core::ClusterConfig;
use socketio_adapter_core::codec::{Codec, NodeClusterCodec, NodeRedisCodec, SubscriptionMode};
use socketio_adapter_core::transport::redact_url;
use url::Url;

use crate::error::RedisTransportError;

/// Which protocol of `@socket.io/redis-adapter` to speak.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// `createAdapter`: PUBLISH/PSUBSCRIBE, the classic message format. Talks to
    /// `@socket.io/redis-adapter` `createAdapter` servers and to `@socket.io/redis-emitter`.
    #[default]
    Classic,
    /// `createShardedAdapter`: SPUBLISH/SSUBSCRIBE, the ClusterAdapter envelope. Scales on
    /// Redis Cluster (a message only travels to the shard that owns its channel).
    Sharded,
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "classic" => Ok(Mode::Classic),
            "sharded" => Ok(Mode::Sharded),
            other => Err(format!("unknown mode {other:?} (expected classic or sharded)")),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Classic => "classic",
            Mode::Sharded => "sharded",
        })
    }
}

/// Everything needed to connect and to build the matching codec, parsed from a URL.
///
/// ```text
/// redis[s]://[[user]:password@]host[:port][,host[:port]...][/db][?option=value&...]
///
///   mode=classic|sharded                   protocol (default classic)
///   cluster=true|false                     Redis Cluster (default: true when several hosts are given)
///   prefix=socket.io                       channel prefix (`key` / `channelPrefix` in Node.js)
///   request_timeout_ms=5000                cluster request timeout
///   specific_response_channel=true|false   classic: publishOnSpecificResponseChannel (default false)
///   subscription_mode=static|dynamic|dynamic-private   sharded: room channels (default dynamic)
///   command_timeout_ms=2000                timeout of one Redis command
///   connect_timeout_ms=2000                timeout of one connection attempt
/// ```
///
/// Examples: `redis://127.0.0.1:6379`, `redis://:secret@redis.internal/2?prefix=chat`,
/// `rediss://app:pw@cache.example.com:6380`,
/// `redis://10.0.0.1:7000,10.0.0.2:7000?mode=sharded`.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// Seed nodes (one for standalone Redis).
    pub nodes: Vec<ConnectionInfo>,
    /// Connect as a Redis Cluster client.
    pub cluster: bool,
    /// Protocol.
    pub mode: Mode,
    /// Channel prefix.
    pub prefix: String,
    /// Cluster request timeout.
    pub request_timeout: Duration,
    /// Classic mode: answer on (and ask for answers on) the requester's own response channel.
    pub specific_response_channel: bool,
    /// Sharded mode: which rooms get their own channel.
    pub subscription_mode: SubscriptionMode,
    /// Timeout of one Redis command (publish, subscribe, count).
    pub command_timeout: Duration,
    /// Timeout of one connection attempt.
    pub connect_timeout: Duration,
    /// Bound of the queue between the connection and the subscribers; messages beyond it
    /// are dropped and counted (Redis itself disconnects subscribers that fall far behind).
    pub push_queue_capacity: usize,
    /// `rediss://`: a PEM file of the CA(s) that signed the server certificate, instead of
    /// the public web roots (read when connecting, not when parsing).
    pub tls_ca_file: Option<std::path::PathBuf>,
}

impl RedisOptions {
    /// Options for one standalone node with every default.
    pub fn new(node: impl IntoConnectionInfo) -> Result<Self, RedisTransportError> {
        let info = node.into_connection_info().map_err(|e| RedisTransportError::Url(e.to_string()))?;
        Ok(RedisOptions {
            nodes: vec![info],
            cluster: false,
            mode: Mode::Classic,
            prefix: "socket.io".to_owned(),
            request_timeout: Duration::from_secs(5),
            specific_response_channel: false,
            subscription_mode: SubscriptionMode::Dynamic,
            command_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
            push_queue_capacity: 65_536,
            tls_ca_file: None,
        })
    }

    /// Parses the URL grammar above.
    pub fn parse(input: &str) -> Result<Self, RedisTransportError> {
        let bad = |why: String| RedisTransportError::Url(format!("{}: {why}", redact_url(input)));
        let (scheme, rest) = input.split_once("://").ok_or_else(|| bad("expected redis:// or rediss://".into()))?;
        let tls = match scheme {
            "redis" => false,
            "rediss" => true,
            other => return Err(bad(format!("unsupported scheme {other:?} (expected redis or rediss)"))),
        };
        if tls && !cfg!(feature = "tls") {
            return Err(bad("rediss:// needs the `tls` feature of socketio-adapter-redis".into()));
        }
        // split the authority (which may hold several hosts) from path and query
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (userinfo, hosts) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let hosts: Vec<&str> = hosts.split(',').filter(|h| !h.is_empty()).collect();
        if hosts.is_empty() {
            return Err(bad("no host".into()));
        }
        // parse the first host with the full URL to validate path and query once
        let first = format!("{scheme}://{}{}{tail}", userinfo.map(|u| format!("{u}@")).unwrap_or_default(), hosts[0]);
        let url = Url::parse(&first).map_err(|e| bad(e.to_string()))?;
        let db: i64 = match url.path().trim_start_matches('/') {
            "" => 0,
            p => p.parse().map_err(|_| bad(format!("database {p:?} is not a number")))?,
        };
        let username = (!url.username().is_empty()).then(|| decode(url.username()));
        let password = url.password().map(decode);

        let mut opts = RedisOptions::new("redis://127.0.0.1:6379")?;
        opts.nodes.clear();
        let mut cluster = None;
        for (k, v) in url.query_pairs() {
            let v = v.into_owned();
            match k.as_ref() {
                "mode" => opts.mode = v.parse().map_err(bad)?,
                "cluster" => cluster = Some(parse_bool(&k, &v).map_err(bad)?),
                "prefix" => {
                    if v.is_empty() {
                        return Err(bad("prefix is empty".into()));
                    }
                    opts.prefix = v;
                }
                "request_timeout_ms" => opts.request_timeout = parse_ms(&k, &v).map_err(bad)?,
                "command_timeout_ms" => opts.command_timeout = parse_ms(&k, &v).map_err(bad)?,
                "connect_timeout_ms" => opts.connect_timeout = parse_ms(&k, &v).map_err(bad)?,
                "specific_response_channel" => opts.specific_response_channel = parse_bool(&k, &v).map_err(bad)?,
                "subscription_mode" => {
                    opts.subscription_mode = match v.as_str() {
                        "static" => SubscriptionMode::Static,
                        "dynamic" => SubscriptionMode::Dynamic,
                        "dynamic-private" => SubscriptionMode::DynamicPrivate,
                        other => {
                            return Err(bad(format!(
                                "unknown subscription_mode {other:?} (expected static, dynamic or dynamic-private)"
                            )));
                        }
                    }
                }
                "tls_ca_file" => {
                    if !tls {
                        return Err(bad("tls_ca_file needs a rediss:// URL".into()));
                    }
                    opts.tls_ca_file = Some(v.into());
                }
                other => return Err(bad(format!("unknown option {other:?}"))),
            }
        }
        opts.cluster = cluster.unwrap_or(hosts.len() > 1);
        if !opts.cluster && hosts.len() > 1 {
            return Err(bad("several hosts need cluster=true".into()));
        }
        if opts.cluster && db != 0 {
            return Err(bad("Redis Cluster has only database 0".into()));
        }
        for host in hosts {
            let u = Url::parse(&format!("{scheme}://{host}")).map_err(|e| bad(format!("host {host:?}: {e}")))?;
            let h = u.host_str().ok_or_else(|| bad(format!("host {host:?} has no name")))?;
            let h = h.trim_start_matches('[').trim_end_matches(']').to_owned();
            let port = u.port().unwrap_or(6379);
            let addr = if tls {
                ConnectionAddr::TcpTls { host: h, port, insecure: false, tls_params: None }
            } else {
                ConnectionAddr::Tcp(h, port)
            };
            let mut settings = redis::RedisConnectionInfo::default().set_db(db);
            if let Some(u) = &username {
                settings = settings.set_username(u);
            }
            if let Some(p) = &password {
                settings = settings.set_password(p);
            }
            let info = addr.into_connection_info().map_err(|e| bad(e.to_string()))?.set_redis_settings(settings);
            opts.nodes.push(info);
        }
        Ok(opts)
    }

    /// Sets the protocol.
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets the channel prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the cluster request timeout.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Classic mode: `publishOnSpecificResponseChannel`.
    pub fn with_specific_response_channel(mut self, enabled: bool) -> Self {
        self.specific_response_channel = enabled;
        self
    }

    /// Sharded mode: the subscription mode.
    pub fn with_subscription_mode(mut self, mode: SubscriptionMode) -> Self {
        self.subscription_mode = mode;
        self
    }

    /// The codec that speaks this configuration's protocol.
    pub fn codec(&self) -> Arc<dyn Codec> {
        match self.mode {
            Mode::Classic => Arc::new(
                NodeRedisCodec::new(self.prefix.clone()).with_specific_response_channel(self.specific_response_channel),
            ),
            Mode::Sharded => {
                Arc::new(NodeClusterCodec::new(self.prefix.clone()).with_subscription_mode(self.subscription_mode))
            }
        }
    }

    /// The cluster configuration (request timeout) for this transport.
    pub fn cluster_config(&self) -> ClusterConfig {
        ClusterConfig::default().with_request_timeout(self.request_timeout)
    }

    pub(crate) fn resp3(info: &ConnectionInfo) -> ConnectionInfo {
        let settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
        info.clone().set_redis_settings(settings)
    }

    /// The first node's address, for logs (never the password).
    pub fn describe(&self) -> String {
        let hosts: Vec<String> = self.nodes.iter().map(|n| n.addr().to_string()).collect();
        format!("{} {} ({})", if self.cluster { "cluster" } else { "redis" }, hosts.join(","), self.mode)
    }
}

impl FromStr for RedisOptions {
    type Err = RedisTransportError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RedisOptions::parse(s)
    }
}

fn parse_bool(k: &str, v: &str) -> Result<bool, String> {
    match v {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("{k}={v:?} is not a boolean")),
    }
}

fn parse_ms(k: &str, v: &str) -> Result<Duration, String> {
    match v.parse::<u64>() {
        Ok(0) | Err(_) => Err(format!("{k}={v:?} is not a positive number of milliseconds")),
        Ok(ms) => Ok(Duration::from_millis(ms)),
    }
}

fn decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_grammar() {
        let o = RedisOptions::parse("redis://127.0.0.1:6379").unwrap();
        assert_eq!((o.nodes.len(), o.cluster, o.mode, o.prefix.as_str()), (1, false, Mode::Classic, "socket.io"));
        assert_eq!(o.nodes[0].addr(), &ConnectionAddr::Tcp("127.0.0.1".into(), 6379));

        let o = RedisOptions::parse(
            "redis://app:p%40ss@h1:7000,h2:7001?mode=sharded&prefix=chat&subscription_mode=static&request_timeout_ms=250",
        )
        .unwrap();
        assert!(o.cluster);
        assert_eq!(o.mode, Mode::Sharded);
        assert_eq!(o.prefix, "chat");
        assert_eq!(o.subscription_mode, SubscriptionMode::Static);
        assert_eq!(o.request_timeout, Duration::from_millis(250));
        assert_eq!(o.nodes[1].addr(), &ConnectionAddr::Tcp("h2".into(), 7001));
        assert_eq!(o.nodes[1].redis_settings().username(), Some("app"));
        assert_eq!(o.nodes[1].redis_settings().password(), Some("p@ss"));

        let o = RedisOptions::parse("redis://:secret@localhost/3?specific_response_channel=true").unwrap();
        assert_eq!(o.nodes[0].redis_settings().db(), 3);
        assert_eq!(o.nodes[0].redis_settings().password(), Some("secret"));
        assert!(o.specific_response_channel);
        assert_eq!(o.nodes[0].addr(), &ConnectionAddr::Tcp("localhost".into(), 6379));
    }

    #[test]
    fn bad_urls_say_why_and_hide_the_password() {
        for (url, why) in [
            ("http://x", "unsupported scheme"),
            ("redis://", "no host"),
            ("redis://h/abc", "not a number"),
            ("redis://h?mode=fast", "unknown mode"),
            ("redis://h?bogus=1", "unknown option"),
            ("redis://a,b/2", "only database 0"),
            ("redis://a,b?cluster=false", "need cluster=true"),
            ("redis://h?request_timeout_ms=0", "positive number"),
            ("localhost:6379", "expected redis://"),
        ] {
            let err = RedisOptions::parse(url).unwrap_err().to_string();
            assert!(err.contains(why), "{url}: {err}");
        }
        let err = RedisOptions::parse("redis://u:hunter2@h?x=1").unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_needs_the_feature() {
        let err = RedisOptions::parse("rediss://h").unwrap_err().to_string();
        assert!(err.contains("`tls` feature"), "{err}");
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_urls_parse() {
        let o = RedisOptions::parse("rediss://h:6380").unwrap();
        assert!(matches!(o.nodes[0].addr(), ConnectionAddr::TcpTls { port: 6380, .. }));
    }
}
