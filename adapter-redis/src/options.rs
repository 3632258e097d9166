//! Configuration: the URL grammar and the options it carries. Parsing does no I/O.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, ProtocolVersion};
use socketio_adapter_core::dialect::{
    Dialect, DialectKind, NodeRedisDialect, NodeStreamsDialect, StreamLayout, SubscriptionMode,
};
use socketio_adapter_core::options::{HostPort, ParsedUrl, SharedOptions, parse_bool, parse_ms, parse_positive};

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
    /// `@socket.io/redis-streams-adapter` 0.3.x: broadcasts, joins, leaves and disconnects
    /// appended to a Redis stream (XADD, read with XREAD from the last id processed, so
    /// they survive a lost connection), requests and responses over pub/sub (or sharded
    /// pub/sub with `sharded_pubsub`). See [`StreamOptions`].
    Streams,
}

impl Mode {
    /// The mode that speaks `dialect` on Redis (python-socketio's `RedisManager` uses
    /// plain pub/sub, as classic mode does); `None` for a dialect Redis does not carry.
    pub fn of(dialect: DialectKind) -> Option<Mode> {
        match dialect {
            DialectKind::NodeRedis | DialectKind::Python => Some(Mode::Classic),
            DialectKind::NodeCluster => Some(Mode::Sharded),
            DialectKind::NodeStreams => Some(Mode::Streams),
            _ => None,
        }
    }
}

/// The stream options of [`Mode::Streams`] (the Node.js adapter's option in brackets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamOptions {
    /// Stream name(s) and count (`streamName` `socket.io`, `streamCount` 1): URL keys
    /// `stream` and `stream_count`.
    pub layout: StreamLayout,
    /// `MAXLEN ~` of every XADD (`maxLen` 10000): URL key `maxlen`.
    pub maxlen: u64,
    /// `COUNT` of every XREAD (`readCount` 100): URL key `read_count`.
    pub read_count: u64,
    /// `BLOCK` of every XREAD (`blockTimeInMs` 5000): URL key `block_ms`.
    pub block: Duration,
    /// Requests and responses over sharded pub/sub (`useShardedPubSub` false): URL key
    /// `sharded_pubsub`.
    pub sharded_pubsub: bool,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            layout: StreamLayout::new("socket.io", 1).unwrap_or_else(|_| unreachable!("a valid name")),
            maxlen: 10_000,
            read_count: 100,
            block: Duration::from_secs(5),
            sharded_pubsub: false,
        }
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "classic" => Ok(Mode::Classic),
            "sharded" => Ok(Mode::Sharded),
            "streams" => Ok(Mode::Streams),
            other => Err(format!("unknown mode {other:?} (expected classic, sharded or streams)")),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Classic => "classic",
            Mode::Sharded => "sharded",
            Mode::Streams => "streams",
        })
    }
}

/// Everything needed to connect and to build the matching dialect, parsed from a URL.
///
/// ```text
/// redis[s]://[[user]:password@]host[:port][,host[:port]...][/db][?option=value&...]
///
///   mode=classic|sharded|streams           protocol (default classic)
///   cluster=true|false                     Redis Cluster (default: true when several hosts are given)
///   specific_response_channel=true|false   classic: publishOnSpecificResponseChannel (default false)
///   command_timeout_ms=2000                timeout of one Redis command
///   tls_ca_file=/path/ca.pem               rediss://: trust this CA instead of the web roots
///
/// mode=streams only (@socket.io/redis-streams-adapter; see StreamOptions):
///   stream=socket.io                       stream name (streamName)
///   stream_count=1                         streams per cluster, namespaces hashed over them (streamCount)
///   maxlen=10000                           MAXLEN ~ of every XADD (maxLen)
///   read_count=100                         COUNT of every XREAD (readCount)
///   block_ms=5000                          BLOCK of every XREAD (blockTimeInMs)
///   sharded_pubsub=false                   requests and responses over sharded pub/sub (useShardedPubSub)
///
/// and the options every transport shares (socketio_adapter_core::options):
///   prefix=socket.io                       channel prefix (`key` / `channelPrefix` in Node.js)
///   request_timeout_ms=5000                cluster request timeout
///   connect_timeout_ms=2000                timeout of one connection attempt
///   subscription_mode=static|dynamic|dynamic-private   sharded: room channels (default dynamic)
///   heartbeat_interval_ms, heartbeat_timeout_ms        cluster heartbeats
///   dialect=node-redis|node-cluster|python             node-redis is mode=classic,
///                                                      node-cluster mode=sharded
///   channel=socketio                                   python: the manager channel
/// ```
///
/// `?dialect=python&channel=flask-socketio` speaks to python-socketio's `RedisManager`
/// (Flask-SocketIO's `message_queue`): PUBLISH and SUBSCRIBE on that one channel.
///
/// User and password are percent-decoded only (`+` and `&` are themselves; write `@` as
/// `%40`), and given to Redis as they are (`AUTH user password`).
///
/// Examples: `redis://127.0.0.1:6379`, `redis://:secret@redis.internal/2?prefix=chat`,
/// `rediss://app:pw@cache.example.com:6380`,
/// `redis://10.0.0.1:7000,10.0.0.2:7000?mode=sharded`,
/// `redis://127.0.0.1:6379?mode=streams&stream=chat&maxlen=100000`.
///
/// The shared options are in [`RedisOptions::shared`]; the type dereferences to them, so
/// `opts.prefix`, `opts.request_timeout` and `opts.cluster_config()` work directly.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// Seed nodes (one for standalone Redis).
    pub nodes: Vec<ConnectionInfo>,
    /// Connect as a Redis Cluster client.
    pub cluster: bool,
    /// Protocol.
    pub mode: Mode,
    /// Prefix, timeouts, subscription mode (sharded mode), heartbeats.
    pub shared: SharedOptions,
    /// Classic mode: answer on (and ask for answers on) the requester's own response channel.
    pub specific_response_channel: bool,
    /// Timeout of one Redis command (publish, subscribe, count).
    pub command_timeout: Duration,
    /// Bound of the queue between the connection and the subscribers; messages beyond it
    /// are dropped and counted (Redis itself disconnects subscribers that fall far behind).
    pub push_queue_capacity: usize,
    /// `rediss://`: a PEM file of the CA(s) that signed the server certificate, instead of
    /// the public web roots (read when connecting, not when parsing).
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// [`Mode::Streams`]: the streams and how they are read and trimmed.
    pub streams: StreamOptions,
}

/// The Redis commands the pub/sub modes send (classic and sharded, standalone and
/// Redis Cluster), as an ACL rule: nothing else is needed.
pub const ACL_COMMANDS: &str = "-@all +ping +hello +client|setname +publish +subscribe +psubscribe +unsubscribe \
+punsubscribe +spublish +ssubscribe +sunsubscribe +pubsub|numsub +pubsub|shardnumsub +cluster|slots +cluster|shards";

/// The least-privilege ACL rule of a user of these options serving `namespaces`: the
/// commands of [`ACL_COMMANDS`] on the channels of the prefix only (`&<prefix>*`, glob
/// metacharacters escaped; with `dialect=python`, the manager channel only); in streams
/// mode also [`STREAM_ACL_COMMANDS`] on the stream keys only (`~<stream>`, or
/// `~<stream>-*` with several streams). In classic
/// mode each namespace's broadcast pattern is listed too (`&<prefix>#<nsp>#*`): Redis
/// allows a `PSUBSCRIBE` pattern only if the rule lists that very pattern. For
/// `ACL SETUSER <name> on ><password> <rule>` (as separate arguments: split at spaces).
pub fn acl_rule(opts: &RedisOptions, namespaces: &[&str]) -> String {
    use socketio_adapter_core::transport::glob_escape;
    let mut channels = match opts.shared.python_channel() {
        Some(channel) => vec![format!("&{}", glob_escape(channel))],
        None => vec![format!("&{}*", glob_escape(&opts.prefix))],
    };
    if opts.mode == Mode::Classic && opts.shared.python_channel().is_none() {
        let dialect = NodeRedisDialect::new(opts.prefix.clone());
        channels.extend(namespaces.iter().map(|nsp| format!("&{}", dialect.broadcast_pattern(nsp))));
    }
    let mut rule = format!("resetchannels {} {ACL_COMMANDS}", channels.join(" "));
    if opts.mode == Mode::Streams && opts.shared.python_channel().is_none() {
        // the streams themselves: append, read, inspect (for the gap count after a reconnect)
        let layout = &opts.streams.layout;
        let keys =
            if layout.count() == 1 { glob_escape(layout.name()) } else { format!("{}-*", glob_escape(layout.name())) };
        rule.push_str(&format!(" resetkeys ~{keys} {STREAM_ACL_COMMANDS}"));
    }
    rule
}

/// The commands mode streams adds to [`ACL_COMMANDS`], on the stream keys only.
pub const STREAM_ACL_COMMANDS: &str = "+xadd +xread +xinfo|stream";

impl Deref for RedisOptions {
    type Target = SharedOptions;
    fn deref(&self) -> &SharedOptions {
        &self.shared
    }
}

impl DerefMut for RedisOptions {
    fn deref_mut(&mut self) -> &mut SharedOptions {
        &mut self.shared
    }
}

impl RedisOptions {
    /// Options for one standalone node with every default.
    pub fn new(node: impl IntoConnectionInfo) -> Result<Self, RedisTransportError> {
        let info = node.into_connection_info().map_err(|e| RedisTransportError::Url(e.to_string()))?;
        Ok(RedisOptions::with_nodes(vec![info]))
    }

    fn with_nodes(nodes: Vec<ConnectionInfo>) -> Self {
        RedisOptions {
            nodes,
            cluster: false,
            mode: Mode::Classic,
            shared: SharedOptions { connect_timeout: Duration::from_secs(2), ..SharedOptions::default() },
            specific_response_channel: false,
            command_timeout: Duration::from_secs(2),
            push_queue_capacity: 65_536,
            tls_ca_file: None,
            streams: StreamOptions::default(),
        }
    }

    /// Parses the URL grammar above.
    pub fn parse(input: &str) -> Result<Self, RedisTransportError> {
        let url = ParsedUrl::parse(input, &["redis", "rediss"]).map_err(RedisTransportError::Url)?;
        let bad = |why: String| RedisTransportError::Url(url.error(why));
        let tls = url.scheme == "rediss";
        if tls && !cfg!(feature = "tls") {
            return Err(bad("rediss:// needs the `tls` feature of socketio-adapter-redis".into()));
        }
        let hosts = url.hosts(6379, "host").map_err(RedisTransportError::Url)?;
        let db: i64 = match url.path.trim_start_matches('/') {
            "" => 0,
            p => p.parse().map_err(|_| bad(format!("database {p:?} is not a number")))?,
        };
        let mut opts = RedisOptions::with_nodes(Vec::new());
        let mut cluster = None;
        let mut mode = None;
        let (mut stream_name, mut stream_count) = (None, 1);
        let mut stream_keys = Vec::new();
        for (k, v) in &url.query {
            if opts.shared.set(k, v).map_err(bad)? {
                continue;
            }
            match k.as_str() {
                "mode" => mode = Some(v.parse().map_err(bad)?),
                "cluster" => cluster = Some(parse_bool(k, v).map_err(bad)?),
                "command_timeout_ms" => opts.command_timeout = parse_ms(k, v).map_err(bad)?,
                "specific_response_channel" => opts.specific_response_channel = parse_bool(k, v).map_err(bad)?,
                "tls_ca_file" if !tls => return Err(bad("tls_ca_file needs a rediss:// URL".into())),
                "tls_ca_file" => opts.tls_ca_file = Some(v.into()),
                "stream" | "stream_count" | "maxlen" | "read_count" | "block_ms" | "sharded_pubsub" => {
                    stream_keys.push(k.as_str());
                    let st = &mut opts.streams;
                    match k.as_str() {
                        "stream" => stream_name = Some(v.clone()),
                        "stream_count" => {
                            stream_count = parse_positive(k, v)
                                .ok()
                                .and_then(|n| u32::try_from(n).ok())
                                .ok_or_else(|| bad(format!("stream_count={v:?} is not a positive 32-bit number")))?;
                        }
                        "maxlen" => st.maxlen = parse_positive(k, v).map_err(bad)?,
                        "read_count" => st.read_count = parse_positive(k, v).map_err(bad)?,
                        "block_ms" => st.block = parse_ms(k, v).map_err(bad)?,
                        _ => st.sharded_pubsub = parse_bool(k, v).map_err(bad)?,
                    }
                }
                other => return Err(bad(format!("unknown option {other:?}"))),
            }
        }
        opts.shared.check("Redis").map_err(bad)?;
        opts.mode = match (opts.shared.dialect, mode) {
            (None, mode) => mode.unwrap_or_default(),
            (Some(dialect), mode) => match (Mode::of(dialect), mode) {
                (Some(wanted), None) => wanted,
                (Some(wanted), Some(given)) if given == wanted => wanted,
                _ => {
                    let mode = mode.map_or_else(|| "its default mode".to_owned(), |m| format!("mode={m}"));
                    return Err(bad(format!("dialect={dialect} does not go with {mode}")));
                }
            },
        };
        if let Some(key) = stream_keys.first()
            && opts.mode != Mode::Streams
        {
            return Err(bad(format!("{key} needs mode=streams")));
        }
        opts.streams.layout =
            StreamLayout::new(stream_name.unwrap_or_else(|| "socket.io".into()), stream_count).map_err(&bad)?;
        opts.cluster = cluster.unwrap_or(hosts.len() > 1);
        if !opts.cluster && hosts.len() > 1 {
            return Err(bad("several hosts need cluster=true".into()));
        }
        if opts.cluster && db != 0 {
            return Err(bad("Redis Cluster has only database 0".into()));
        }
        // the credentials as decoded above: redis-rs's own URL parsing is not used
        let mut settings = redis::RedisConnectionInfo::default().set_db(db);
        if let Some(u) = &url.username {
            settings = settings.set_username(u);
        }
        if let Some(p) = &url.password {
            settings = settings.set_password(&p.0);
        }
        for HostPort { host, port } in hosts {
            let addr = if tls {
                ConnectionAddr::TcpTls { host, port, insecure: false, tls_params: None }
            } else {
                ConnectionAddr::Tcp(host, port)
            };
            let info = addr.into_connection_info().map_err(|e| bad(e.to_string()))?;
            opts.nodes.push(info.set_redis_settings(settings.clone()));
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

    /// The dialect that speaks this configuration's protocol.
    pub fn dialect(&self) -> Arc<dyn Dialect> {
        if let Some(channel) = self.shared.python_channel() {
            return DialectKind::Python.dialect(channel);
        }
        match self.mode {
            Mode::Classic => Arc::new(
                NodeRedisDialect::new(self.prefix.clone())
                    .with_specific_response_channel(self.specific_response_channel),
            ),
            Mode::Sharded => self.shared.node_cluster_dialect(),
            Mode::Streams => Arc::new(NodeStreamsDialect::new(self.prefix.clone(), self.streams.layout.clone())),
        }
    }

    pub(crate) fn resp3(info: &ConnectionInfo) -> ConnectionInfo {
        let settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
        info.clone().set_redis_settings(settings)
    }

    /// The nodes' addresses, for logs (never the password).
    pub fn describe(&self) -> String {
        let hosts: Vec<String> = self.nodes.iter().map(|n| n.addr().to_string()).collect();
        let detail = match self.mode {
            Mode::Streams => format!("streams {} x{}", self.streams.layout.name(), self.streams.layout.count()),
            mode => mode.to_string(),
        };
        self.shared.describe(if self.cluster { "cluster" } else { "redis" }, &hosts.join(","), &detail)
    }
}

impl FromStr for RedisOptions {
    type Err = RedisTransportError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RedisOptions::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_streams_options() {
        let o = RedisOptions::parse("redis://h?mode=streams").unwrap();
        assert_eq!((o.mode, o.streams.clone()), (Mode::Streams, StreamOptions::default()));
        assert_eq!(o.dialect().name(), "node-streams");
        let o = RedisOptions::parse(
            "redis://h?stream=chat&stream_count=3&maxlen=500&read_count=10&block_ms=250&sharded_pubsub=true&mode=streams",
        )
        .unwrap();
        let s = &o.streams;
        assert_eq!((s.layout.name(), s.layout.count(), s.maxlen, s.read_count), ("chat", 3, 500, 10));
        assert_eq!((s.block, s.sharded_pubsub), (Duration::from_millis(250), true));
        let err = |url: &str| RedisOptions::parse(url).unwrap_err().to_string();
        assert!(err("redis://h?stream=chat").contains("stream needs mode=streams"));
        assert!(err("redis://h?mode=streams&stream_count=0").contains("stream_count=\"0\""));
        assert!(err("redis://h?mode=streams&stream=a%23b").contains("without '#'"));
        assert!(err("redis://h?mode=streams&maxlen=-1").contains("maxlen"));
        assert!(err("redis://h?mode=stream").contains("expected classic, sharded or streams"));
    }

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

    /// Issue 19: user and password are URL user-info, percent-decoded only.
    #[test]
    fn credentials_are_percent_decoded_user_info() {
        let creds = |url: &str| {
            let o = RedisOptions::parse(url).unwrap();
            let s = o.nodes[0].redis_settings();
            (s.username().map(str::to_owned), s.password().map(str::to_owned))
        };
        let some = |u: &str, p: &str| (Some(u.to_owned()), Some(p.to_owned()));
        assert_eq!(creds("redis://u:a+b&c@127.0.0.1:6379"), some("u", "a+b&c"));
        assert_eq!(creds("redis://u:a+b&c@127.0.0.1:6379?prefix=x&mode=sharded"), some("u", "a+b&c"));
        assert_eq!(creds("redis://u:p%40ss@h"), some("u", "p@ss"));
        assert_eq!(creds("redis://u:a:b@h"), some("u", "a:b"));
        assert_eq!(creds("redis://%C3%A9l%C3%A8ve:%E2%82%AC%2B@h"), some("élève", "€+"));
        let o = RedisOptions::parse("redis://u:a+b&c@h1:7000,h2:7001?prefix=p").unwrap();
        assert!(o.nodes.iter().all(|n| n.redis_settings().password() == Some("a+b&c")));
        assert_eq!(o.prefix, "p", "the query is still a query");
    }

    #[test]
    fn shared_options_reach_the_cluster_config() {
        let o = RedisOptions::parse(
            "redis://h?request_timeout_ms=250&connect_timeout_ms=70&heartbeat_interval_ms=100&specific_response_channel=ON",
        )
        .unwrap();
        assert_eq!(o.cluster_config().request_timeout(), Duration::from_millis(250));
        assert_eq!(
            (o.connect_timeout, o.heartbeat_interval),
            (Duration::from_millis(70), Some(Duration::from_millis(100)))
        );
        assert!(o.specific_response_channel);
        assert_eq!(RedisOptions::parse("redis://h").unwrap().connect_timeout, Duration::from_secs(2));
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
