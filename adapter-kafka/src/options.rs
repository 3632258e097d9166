//! Configuration: the URL grammar and the options it carries. Parsing does no I/O.

use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;
use socketio_adapter_core::dialect::{Dialect, SubscriptionMode};
pub use socketio_adapter_core::options::Password;
use socketio_adapter_core::options::{
    ParsedUrl, SharedOptions, parse_bool, parse_ms, parse_ms_or_zero, parse_positive,
};

use crate::error::KafkaTransportError;

/// Default number of partitions of a topic this transport creates.
pub const DEFAULT_PARTITIONS: i32 = 4;

/// Everything needed to connect and to build the matching dialect, parsed from a URL.
///
/// ```text
/// kafka://[user:password@]host[:port][,host[:port]...][?option=value&...]
///
///   topic=<prefix>                 the one topic every message travels on (default: the prefix)
///   partitions=4                   partitions when this transport creates the topic
///   replication_factor=-1          replication when creating it (-1: the broker's default)
///   create_topic=true              create the topic when it is missing
///   client_id=socketio-cluster     Kafka client.id
///   linger_ms=1                    producer linger (latency vs batching), 0 allowed
///   batch_size=1000000             producer batch size in bytes
///   batch_num_messages=10000       producer batch size in messages
///   compression=none               none, gzip, snappy or lz4
///   message_timeout_ms=10000       how long a publish may wait for the broker
///   fetch_wait_max_ms=20           consumer long poll (bounds the latency on brokers that do not answer it early)
///   idempotence=true               idempotent producer (no duplicates on retries, keeps order)
///   security_protocol=plaintext    plaintext, ssl, sasl_plaintext or sasl_ssl
///   sasl_mechanism=PLAIN           PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (user:password@)
///   ssl_ca_location=/path/ca.pem   CA bundle for ssl / sasl_ssl
///   librdkafka.<property>=value    any other librdkafka property, passed through
///
/// and the options every transport shares (socketio_adapter_core::options):
///   prefix=socket.io               channel prefix of the node-cluster dialect
///   request_timeout_ms=5000        cluster request timeout (fetch sockets, acks)
///   connect_timeout_ms=5000        metadata and topic creation at connect (one broker
///                                  connection may take half of it: TCP, TLS, SASL)
///   subscription_mode=static       static, dynamic or dynamic-private (see the dialect)
///   heartbeat_interval_ms, heartbeat_timeout_ms   cluster heartbeats
///   dialect=python&channel=socketio   python-socketio's KafkaManager layout: the topic is the
///                                  channel, records carry bare JSON (no headers; keyed by
///                                  the channel, so one partition keeps them in order)
/// ```
///
/// `user:password@` are the SASL credentials, percent-decoded only (`+` and `&` are
/// themselves; write `@` as `%40`); with them the defaults are `sasl_plaintext` and
/// `PLAIN`.
///
/// Examples: `kafka://127.0.0.1:9092`, `kafka://k1:9092,k2:9092?prefix=chat&partitions=8`,
/// `kafka://app:secret@kafka.internal:9093?security_protocol=sasl_ssl&sasl_mechanism=SCRAM-SHA-512`.
///
/// The shared options are in [`KafkaOptions::shared`]; the type dereferences to them, so
/// `opts.prefix`, `opts.request_timeout` and `opts.cluster_config()` work directly.
#[derive(Clone, Debug)]
pub struct KafkaOptions {
    /// Bootstrap brokers, `host:port`.
    pub brokers: Vec<String>,
    /// Prefix, timeouts, subscription mode (a consumer-side filter here), heartbeats.
    pub shared: SharedOptions,
    /// The topic (default: the prefix).
    pub topic: String,
    /// Partitions of the topic when this transport creates it.
    pub partitions: i32,
    /// Replication factor when creating the topic (`-1`: the broker's default).
    pub replication_factor: i32,
    /// Create the topic when it is missing.
    pub create_topic: bool,
    /// Kafka `client.id`.
    pub client_id: String,
    /// Producer `linger.ms`.
    pub linger: Duration,
    /// Producer `batch.size` (bytes).
    pub batch_size: Option<u64>,
    /// Producer `batch.num.messages`.
    pub batch_num_messages: Option<u64>,
    /// Producer `compression.codec`.
    pub compression: String,
    /// How long one publish may wait for the broker's acknowledgement (`message.timeout.ms`).
    pub message_timeout: Duration,
    /// Consumer `fetch.wait.max.ms`.
    pub fetch_wait_max: Duration,
    /// Producer `enable.idempotence`.
    pub idempotence: bool,
    /// `security.protocol`.
    pub security_protocol: Option<String>,
    /// `sasl.mechanism`.
    pub sasl_mechanism: Option<String>,
    /// SASL user name.
    pub username: Option<String>,
    /// SASL password.
    pub password: Option<Password>,
    /// `ssl.ca.location`.
    pub ssl_ca_location: Option<String>,
    /// Further librdkafka properties, applied last (to the producer and the consumer).
    pub librdkafka: Vec<(String, String)>,
}

impl Deref for KafkaOptions {
    type Target = SharedOptions;
    fn deref(&self) -> &SharedOptions {
        &self.shared
    }
}

impl DerefMut for KafkaOptions {
    fn deref_mut(&mut self) -> &mut SharedOptions {
        &mut self.shared
    }
}

impl KafkaOptions {
    /// Options for these bootstrap brokers (`host:port`) with every default.
    pub fn new<S: Into<String>>(brokers: impl IntoIterator<Item = S>) -> Self {
        KafkaOptions {
            brokers: brokers.into_iter().map(Into::into).collect(),
            shared: SharedOptions { subscription_mode: SubscriptionMode::Static, ..SharedOptions::default() },
            topic: "socket.io".to_owned(),
            partitions: DEFAULT_PARTITIONS,
            replication_factor: -1,
            create_topic: true,
            client_id: "socketio-cluster".to_owned(),
            linger: Duration::from_millis(1),
            batch_size: None,
            batch_num_messages: None,
            compression: "none".to_owned(),
            message_timeout: Duration::from_secs(10),
            fetch_wait_max: Duration::from_millis(20),
            idempotence: true,
            security_protocol: None,
            sasl_mechanism: None,
            username: None,
            password: None,
            ssl_ca_location: None,
            librdkafka: Vec::new(),
        }
    }

    /// Parses the URL grammar above.
    pub fn parse(input: &str) -> Result<Self, KafkaTransportError> {
        let url = ParsedUrl::parse(input, &["kafka"]).map_err(KafkaTransportError::Url)?;
        let bad = |why: String| KafkaTransportError::Url(url.error(why));
        if !url.path.chars().all(|c| c == '/') {
            return Err(bad("a Kafka URL has no path (use ?topic= for the topic)".into()));
        }
        let brokers = url.hosts(9092, "broker").map_err(KafkaTransportError::Url)?;
        let mut opts = KafkaOptions::new(brokers.iter().map(ToString::to_string));
        opts.username = url.username.clone();
        opts.password = url.password.clone();
        let mut topic = None;
        for (k, v) in &url.query {
            if opts.shared.set(k, v).map_err(bad)? {
                continue;
            }
            let v = v.clone();
            match k.as_str() {
                "topic" => topic = Some(v),
                "partitions" => {
                    opts.partitions = match v.parse::<i32>() {
                        Ok(n) if n > 0 => n,
                        _ => return Err(bad(format!("partitions={v:?} is not a positive number"))),
                    }
                }
                "replication_factor" => {
                    opts.replication_factor = match v.parse::<i32>() {
                        Ok(n) if n > 0 || n == -1 => n,
                        _ => return Err(bad(format!("replication_factor={v:?} is not a positive number or -1"))),
                    }
                }
                "create_topic" => opts.create_topic = parse_bool(k, &v).map_err(bad)?,
                "client_id" if v.is_empty() => return Err(bad("client_id is empty".into())),
                "client_id" => opts.client_id = v,
                "linger_ms" => opts.linger = parse_ms_or_zero(k, &v).map_err(bad)?,
                "batch_size" => opts.batch_size = Some(parse_positive(k, &v).map_err(bad)?),
                "batch_num_messages" => opts.batch_num_messages = Some(parse_positive(k, &v).map_err(bad)?),
                "compression" => match v.as_str() {
                    "none" | "gzip" | "snappy" | "lz4" => opts.compression = v,
                    other => {
                        return Err(bad(format!("unknown compression {other:?} (expected none, gzip, snappy or lz4)")));
                    }
                },
                "message_timeout_ms" => opts.message_timeout = parse_ms(k, &v).map_err(bad)?,
                "fetch_wait_max_ms" => opts.fetch_wait_max = parse_ms(k, &v).map_err(bad)?,
                "idempotence" => opts.idempotence = parse_bool(k, &v).map_err(bad)?,
                "security_protocol" => {
                    let tls = match v.as_str() {
                        "plaintext" | "sasl_plaintext" => false,
                        "ssl" | "sasl_ssl" => true,
                        other => {
                            return Err(bad(format!(
                                "unknown security_protocol {other:?} (expected plaintext, ssl, sasl_plaintext or sasl_ssl)"
                            )));
                        }
                    };
                    if tls && !cfg!(feature = "ssl") {
                        return Err(bad(format!(
                            "security_protocol={v} needs the `ssl` feature of socketio-adapter-kafka"
                        )));
                    }
                    opts.security_protocol = Some(v);
                }
                "sasl_mechanism" => match v.as_str() {
                    "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512" => opts.sasl_mechanism = Some(v),
                    other => {
                        return Err(bad(format!(
                            "unknown sasl_mechanism {other:?} (expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"
                        )));
                    }
                },
                "ssl_ca_location" => opts.ssl_ca_location = Some(v),
                other => match other.strip_prefix("librdkafka.") {
                    Some(property) if !property.is_empty() => opts.librdkafka.push((property.to_owned(), v)),
                    _ => return Err(bad(format!("unknown option {other:?}"))),
                },
            }
        }
        if opts.sasl_mechanism.as_deref().is_some_and(|m| m.starts_with("SCRAM")) && !cfg!(feature = "ssl") {
            return Err(bad("SCRAM needs the `sasl` feature of socketio-adapter-kafka".into()));
        }
        opts.shared.check("Kafka").map_err(bad)?;
        opts.topic = match (opts.python_topic(), topic) {
            (Some(channel), None) => channel,
            (Some(channel), Some(topic)) if topic != channel => {
                return Err(bad(format!(
                    "topic={topic:?} with dialect=python: python-socketio's topic is its channel ({channel:?})"
                )));
            }
            (_, topic) => topic.unwrap_or_else(|| opts.prefix.clone()),
        };
        check_topic(&opts.topic).map_err(|why| {
            bad(if url.has("topic") { why } else { format!("{why} (the topic defaults to the prefix; set topic=)") })
        })?;
        Ok(opts)
    }

    /// Sets the channel prefix, and the topic to the same name.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self.topic = self.prefix.clone();
        self
    }

    /// Sets the topic.
    pub fn with_topic(mut self, topic: impl Into<String>) -> Self {
        self.topic = topic.into();
        self
    }

    /// Sets the cluster request timeout.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the subscription mode of the dialect.
    pub fn with_subscription_mode(mut self, mode: SubscriptionMode) -> Self {
        self.subscription_mode = mode;
        self
    }

    /// The dialect: the node-cluster envelope (`socket.io-adapter` `ClusterAdapter`) with
    /// this prefix and subscription mode, or the python one with `dialect=python`.
    pub fn dialect(&self) -> Arc<dyn Dialect> {
        self.shared.dialect_or_node_cluster()
    }

    /// With `dialect=python`, the topic python-socketio's KafkaManager uses: its channel.
    pub fn python_topic(&self) -> Option<String> {
        self.shared.python_channel().map(str::to_owned)
    }

    /// The channel of records that carry no `sio-channel` header, and the one channel of
    /// this layout: python-socketio's (`dialect=python`), where the topic is the channel
    /// and records are bare. `None` in the node-cluster layout (such records are foreign).
    pub fn bare_channel(&self) -> Option<&str> {
        self.shared.python_channel().map(|_| self.topic.as_str())
    }

    /// The brokers and topic, for logs (never the password).
    pub fn describe(&self) -> String {
        self.shared.describe("kafka", &self.brokers.join(","), &format!("topic {}", self.topic))
    }

    /// Properties shared by every client of this transport.
    pub(crate) fn base_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        // at least warnings, whatever the `log` crate's level (none without a logger): the
        // transport keeps the last broker connection failure they report, for its errors
        if (c.log_level as i32) < (RDKafkaLogLevel::Warning as i32) {
            c.set_log_level(RDKafkaLogLevel::Warning);
        }
        c.set("bootstrap.servers", self.brokers.join(","))
            .set("client.id", &self.client_id)
            .set("allow.auto.create.topics", "false")
            .set("socket.keepalive.enable", "true")
            .set("reconnect.backoff.ms", "50")
            .set("reconnect.backoff.max.ms", "1000")
            .set("topic.metadata.refresh.interval.ms", "10000")
            // shorter than the connect timeout, so that a connection attempt that hangs (a TLS
            // handshake with a plaintext listener) fails, with its reason, before connecting
            // gives up (librdkafka's minimum is 1 s, and it checks once a second)
            .set("socket.connection.setup.timeout.ms", self.setup_timeout().as_millis().to_string());
        if let Some(p) = &self.security_protocol {
            c.set("security.protocol", p);
        } else if self.username.is_some() {
            c.set("security.protocol", "sasl_plaintext");
        }
        if let Some(m) = &self.sasl_mechanism {
            c.set("sasl.mechanism", m);
        } else if self.username.is_some() {
            c.set("sasl.mechanism", "PLAIN");
        }
        if let Some(u) = &self.username {
            c.set("sasl.username", u);
        }
        if let Some(p) = &self.password {
            c.set("sasl.password", &p.0);
        }
        if let Some(ca) = &self.ssl_ca_location {
            c.set("ssl.ca.location", ca);
        }
        c
    }

    /// How long one broker connection may take to set up (TCP, TLS, SASL).
    fn setup_timeout(&self) -> Duration {
        (self.connect_timeout / 2).max(Duration::from_secs(1))
    }

    pub(crate) fn producer_config(&self) -> ClientConfig {
        let mut c = self.base_config();
        c.set("linger.ms", self.linger.as_millis().to_string())
            .set("message.timeout.ms", self.message_timeout.as_millis().to_string())
            .set("compression.codec", &self.compression)
            .set("enable.idempotence", if self.idempotence { "true" } else { "false" })
            .set("acks", "all")
            // bounded: a full queue makes publish wait (back-pressure)
            .set("queue.buffering.max.messages", "100000")
            .set("queue.buffering.max.kbytes", "65536");
        if !self.idempotence {
            // without idempotence, one request in flight keeps retries in order
            c.set("max.in.flight.requests.per.connection", "1");
        }
        if let Some(n) = self.batch_size {
            c.set("batch.size", n.to_string());
        }
        if let Some(n) = self.batch_num_messages {
            c.set("batch.num.messages", n.to_string());
        }
        self.extra(&mut c);
        c
    }

    /// `group_id` is never joined (no `subscribe`, no commits): librdkafka only needs
    /// one to accept a manual assignment.
    pub(crate) fn consumer_config(&self, group_id: &str) -> ClientConfig {
        let mut c = self.base_config();
        c.set("group.id", group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            // an out-of-range position is reported to the transport, which re-places it
            .set("auto.offset.reset", "error")
            .set("fetch.wait.max.ms", self.fetch_wait_max.as_millis().to_string())
            .set("fetch.error.backoff.ms", "100")
            // Reconnect the consumer more slowly than the producer: after an outage the
            // transport stops fetching (see the transport module) before the consumer
            // is back, and the producer's markers decide when it fetches again.
            .set("reconnect.backoff.ms", "500")
            .set("reconnect.backoff.max.ms", "2000")
            // bounded prefetch: beyond it the consumer stops fetching (back-pressure)
            .set("queued.max.messages.kbytes", "16384")
            .set("queued.min.messages", "10000");
        self.extra(&mut c);
        c
    }

    fn extra(&self, c: &mut ClientConfig) {
        for (k, v) in &self.librdkafka {
            c.set(k, v);
        }
    }
}

impl FromStr for KafkaOptions {
    type Err = KafkaTransportError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KafkaOptions::parse(s)
    }
}

/// Kafka topic names: 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
fn check_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() || topic.len() > 249 || topic == "." || topic == ".." {
        return Err(format!("topic {topic:?} is not a valid Kafka topic name (1 to 249 characters, not . or ..)"));
    }
    if let Some(c) = topic.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(format!("topic {topic:?} is not a valid Kafka topic name ({c:?}: only a-z A-Z 0-9 . _ -)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_grammar() {
        let o = KafkaOptions::parse("kafka://127.0.0.1:9092").unwrap();
        assert_eq!(o.brokers, ["127.0.0.1:9092"]);
        assert_eq!((o.prefix.as_str(), o.topic.as_str(), o.partitions), ("socket.io", "socket.io", 4));
        assert_eq!(o.linger, Duration::from_millis(1));
        assert_eq!(o.subscription_mode, SubscriptionMode::Static);

        let o = KafkaOptions::parse(
            "kafka://app:p%40ss@k1,k2:9093,[::1]:9094?prefix=chat&partitions=8&linger_ms=0&batch_size=65536\
             &client_id=node-1&request_timeout_ms=250&subscription_mode=dynamic&librdkafka.socket.nagle.disable=true",
        )
        .unwrap();
        assert_eq!(o.brokers, ["k1:9092", "k2:9093", "[::1]:9094"]);
        assert_eq!((o.prefix.as_str(), o.topic.as_str(), o.partitions), ("chat", "chat", 8));
        assert_eq!((o.linger, o.batch_size), (Duration::ZERO, Some(65536)));
        assert_eq!(o.client_id, "node-1");
        assert_eq!(o.request_timeout, Duration::from_millis(250));
        assert_eq!(o.cluster_config().request_timeout(), Duration::from_millis(250));
        assert_eq!(o.subscription_mode, SubscriptionMode::Dynamic);
        assert_eq!(o.username.as_deref(), Some("app"));
        assert_eq!(o.password, Some(Password("p@ss".into())));
        assert_eq!(o.librdkafka, [("socket.nagle.disable".to_owned(), "true".to_owned())]);
        assert!(!format!("{o:?}").contains("p@ss"));
        assert_eq!(o.dialect().name(), "node-cluster");

        let o = KafkaOptions::parse("kafka://h?prefix=a%23b&topic=cluster-events").unwrap();
        assert_eq!((o.prefix.as_str(), o.topic.as_str()), ("a#b", "cluster-events"));
    }

    #[test]
    fn bad_urls_say_why_and_hide_the_password() {
        for (url, why) in [
            ("http://x", "unsupported scheme"),
            ("kafka://", "no broker"),
            ("kafka://h:x", "not a number"),
            ("kafka://h/topic", "no path"),
            ("kafka://h?bogus=1", "unknown option"),
            ("kafka://h?partitions=0", "positive number"),
            ("kafka://h?request_timeout_ms=0", "positive number"),
            ("kafka://h?compression=brotli", "unknown compression"),
            ("kafka://h?prefix=a%23b", "set topic="),
            ("kafka://h?topic=a/b", "not a valid Kafka topic"),
            ("localhost:9092", "expected kafka://"),
        ] {
            let err = KafkaOptions::parse(url).unwrap_err().to_string();
            assert!(err.contains(why), "{url}: {err}");
        }
        let err = KafkaOptions::parse("kafka://u:hunter2@h?x=1").unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    /// Issue 19: the SASL credentials are URL user-info, percent-decoded only, and the
    /// query is a query string.
    #[test]
    fn credentials_are_percent_decoded_user_info() {
        let creds = |url: &str| {
            let o = KafkaOptions::parse(url).unwrap();
            (o.username, o.password.map(|p| p.0))
        };
        let some = |u: &str, p: &str| (Some(u.to_owned()), Some(p.to_owned()));
        assert_eq!(creds("kafka://u:a+b&c@127.0.0.1:9092"), some("u", "a+b&c"));
        assert_eq!(creds("kafka://u:p%40ss@h"), some("u", "p@ss"));
        assert_eq!(creds("kafka://u:a:b@h"), some("u", "a:b"));
        assert_eq!(creds("kafka://%C3%A9l%C3%A8ve:%E2%82%AC%2B@h"), some("élève", "€+"));
        let o = KafkaOptions::parse("kafka://u:a+b&c@h?client_id=a+b%26c&librdkafka.x=1%3D2").unwrap();
        let c = o.base_config();
        assert_eq!((c.get("sasl.username"), c.get("sasl.password")), (Some("u"), Some("a+b&c")));
        assert_eq!((c.get("security.protocol"), c.get("sasl.mechanism")), (Some("sasl_plaintext"), Some("PLAIN")));
        assert_eq!(o.client_id, "a b&c", "+ is a space in the query, as in any query string");
        assert_eq!(o.librdkafka, [("x".to_owned(), "1=2".to_owned())]);
    }

    #[test]
    fn one_boolean_and_duration_grammar() {
        let o = KafkaOptions::parse("kafka://h?idempotence=off&create_topic=No&linger_ms=0&heartbeat_timeout_ms=900")
            .unwrap();
        assert!(!o.idempotence && !o.create_topic);
        assert_eq!((o.linger, o.heartbeat_timeout), (Duration::ZERO, Some(Duration::from_millis(900))));
        assert_eq!(o.connect_timeout, Duration::from_secs(5));
        let err = KafkaOptions::parse("kafka://u:hunter2@h?idempotence=maybe").unwrap_err().to_string();
        assert!(err.contains("not a boolean") && !err.contains("hunter2"), "{err}");
    }

    /// Issue 16: what the URL's TLS and SASL options become in every client's librdkafka
    /// configuration (the test broker, tansu 0.6, has no TLS listener and no SASL user
    /// that can log in, so this is where the rest of the path is checked).
    #[cfg(feature = "ssl")]
    #[test]
    fn tls_and_sasl_reach_every_client_config() {
        let o = KafkaOptions::parse(
            "kafka://app:s%40cret@k1:9093?security_protocol=sasl_ssl&sasl_mechanism=SCRAM-SHA-512\
             &ssl_ca_location=/etc/ca.pem",
        )
        .unwrap();
        for c in [o.base_config(), o.producer_config(), o.consumer_config("g")] {
            assert_eq!(c.get("security.protocol"), Some("sasl_ssl"));
            assert_eq!(c.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
            assert_eq!((c.get("sasl.username"), c.get("sasl.password")), (Some("app"), Some("s@cret")));
            assert_eq!(c.get("ssl.ca.location"), Some("/etc/ca.pem"));
        }
        assert!(!format!("{o:?}").contains("s@cret"));

        // TLS without SASL: no SASL property at all
        let o = KafkaOptions::parse("kafka://k1?security_protocol=ssl&ssl_ca_location=/ca.pem").unwrap();
        let c = o.producer_config();
        assert_eq!((c.get("security.protocol"), c.get("ssl.ca.location")), (Some("ssl"), Some("/ca.pem")));
        assert_eq!((c.get("sasl.mechanism"), c.get("sasl.username"), c.get("sasl.password")), (None, None, None));

        // plaintext by default, and credentials alone mean SASL/PLAIN without TLS
        assert_eq!(KafkaOptions::parse("kafka://k1").unwrap().base_config().get("security.protocol"), None);
        let c = KafkaOptions::parse("kafka://u:p@k1?sasl_mechanism=SCRAM-SHA-256").unwrap().consumer_config("g");
        assert_eq!(
            (c.get("security.protocol"), c.get("sasl.mechanism")),
            (Some("sasl_plaintext"), Some("SCRAM-SHA-256"))
        );
        let err = KafkaOptions::parse("kafka://u:hunter2@k1?security_protocol=tls").unwrap_err().to_string();
        assert!(err.contains("unknown security_protocol") && !err.contains("hunter2"), "{err}");
    }

    #[cfg(not(feature = "ssl"))]
    #[test]
    fn tls_needs_the_feature() {
        let err = KafkaOptions::parse("kafka://h?security_protocol=ssl").unwrap_err().to_string();
        assert!(err.contains("`ssl` feature"), "{err}");
    }
}
