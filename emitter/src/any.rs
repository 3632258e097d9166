//! The one way from a URL to a connected transport: [`AnyOptions`] picks the transport
//! by the URL's scheme and parses its options; [`AnyOptions::connect`] gives an
//! [`AnyTransport`], the transports compiled in behind one type. Used by
//! [`Emitter::connect`](crate::Emitter::connect), the `sio` CLI and `sio-node`.

// without a transport the types are empty and their methods never run
#![cfg_attr(
    not(any(feature = "redis", feature = "kafka", feature = "amqp")),
    allow(unused_variables, dead_code, unreachable_code)
)]

use std::sync::Arc;

use bytes::Bytes;
use socketio_adapter_core::dialect::{Dialect, DialectKind};
use socketio_adapter_core::options::SharedOptions;
use socketio_adapter_core::transport::redact_url;
use socketio_adapter_core::{Channel, ClusterConfig, EventSender, Transport, TransportStats};

use crate::EmitterError;

/// The schemes this dispatcher knows, for messages.
const SCHEMES: &str = "redis://, rediss://, kafka://, amqp:// or amqps://";

/// A URL's options, for the transport its scheme names (cargo features `redis`, `kafka`,
/// `amqp`): `redis://` / `rediss://`, `kafka://`, `amqp://` / `amqps://`. Parsing does no
/// I/O. Dereferences to the options every transport shares (prefix, timeouts, ...).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum AnyOptions {
    /// Redis or Redis Cluster.
    #[cfg(feature = "redis")]
    Redis(socketio_adapter_redis::RedisOptions),
    /// Kafka.
    #[cfg(feature = "kafka")]
    Kafka(socketio_adapter_kafka::KafkaOptions),
    /// RabbitMQ (AMQP 0-9-1).
    #[cfg(feature = "amqp")]
    Amqp(socketio_adapter_amqp::AmqpOptions),
}

/// `$e` with `$o` bound to the options of whichever transport `$self` holds.
macro_rules! each_options {
    ($self:expr, $o:ident => $e:expr) => {
        match $self {
            #[cfg(feature = "redis")]
            AnyOptions::Redis($o) => $e,
            #[cfg(feature = "kafka")]
            AnyOptions::Kafka($o) => $e,
            #[cfg(feature = "amqp")]
            AnyOptions::Amqp($o) => $e,
            #[allow(unreachable_patterns)]
            _ => unreachable!("no transport compiled in"),
        }
    };
}

impl AnyOptions {
    /// Parses `url` with the grammar of the transport its scheme names.
    pub fn parse(url: &str) -> Result<Self, EmitterError> {
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase()).unwrap_or_default();
        let bad = |reason: String| EmitterError::Url { url: redact_url(url), reason };
        match scheme.as_str() {
            #[cfg(feature = "redis")]
            "redis" | "rediss" => {
                socketio_adapter_redis::RedisOptions::parse(url).map(AnyOptions::Redis).map_err(|e| bad(e.to_string()))
            }
            #[cfg(feature = "kafka")]
            "kafka" => {
                socketio_adapter_kafka::KafkaOptions::parse(url).map(AnyOptions::Kafka).map_err(|e| bad(e.to_string()))
            }
            #[cfg(feature = "amqp")]
            "amqp" | "amqps" => {
                socketio_adapter_amqp::AmqpOptions::parse(url).map(AnyOptions::Amqp).map_err(|e| bad(e.to_string()))
            }
            #[cfg(not(feature = "redis"))]
            "redis" | "rediss" => Err(bad("this build has no Redis support (cargo feature `redis`)".into())),
            #[cfg(not(feature = "kafka"))]
            "kafka" => Err(bad("this build has no Kafka support (cargo feature `kafka`)".into())),
            #[cfg(not(feature = "amqp"))]
            "amqp" | "amqps" => Err(bad("this build has no AMQP support (cargo feature `amqp`)".into())),
            "" => Err(bad(format!("expected scheme://host ({SCHEMES})"))),
            other => Err(bad(format!("unsupported scheme {other}:// (expected {SCHEMES})"))),
        }
    }

    /// The broker's name: `Redis`, `Kafka` or `AMQP`.
    pub fn broker(&self) -> &'static str {
        match self {
            #[cfg(feature = "redis")]
            AnyOptions::Redis(_) => "Redis",
            #[cfg(feature = "kafka")]
            AnyOptions::Kafka(_) => "Kafka",
            #[cfg(feature = "amqp")]
            AnyOptions::Amqp(_) => "AMQP",
            #[allow(unreachable_patterns)]
            _ => "none",
        }
    }

    /// Sets the channel prefix. On Kafka the topic follows unless the URL named it.
    pub fn set_prefix(&mut self, prefix: &str) {
        #[cfg(feature = "kafka")]
        if let AnyOptions::Kafka(o) = self
            && o.topic == o.prefix
        {
            o.topic = prefix.to_owned();
        }
        self.prefix = prefix.to_owned();
    }

    /// Selects the dialect (and with python, its manager channel and python-socketio's
    /// layout on the broker), as `dialect=` and `channel=` in the URL do.
    pub fn set_dialect(&mut self, dialect: Option<DialectKind>, channel: Option<String>) -> Result<(), EmitterError> {
        let broker = self.broker();
        let url = self.describe();
        let shared: &mut SharedOptions = each_options!(self, o => &mut o.shared);
        shared.dialect = dialect;
        shared.channel = channel;
        shared.check(broker).map_err(|reason| EmitterError::Url { url, reason })?;
        match self {
            #[cfg(feature = "redis")]
            AnyOptions::Redis(o) => {
                if let Some(mode) = dialect.and_then(socketio_adapter_redis::Mode::of) {
                    o.mode = mode;
                }
            }
            #[cfg(feature = "kafka")]
            AnyOptions::Kafka(o) => {
                if let Some(topic) = o.python_topic() {
                    o.topic = topic;
                }
            }
            #[allow(unreachable_patterns)]
            _ => {}
        }
        Ok(())
    }

    /// The dialect that speaks the configured protocol.
    pub fn dialect(&self) -> Arc<dyn Dialect> {
        each_options!(self, o => o.dialect())
    }

    /// The cluster configuration (request timeout, heartbeats).
    pub fn cluster_config(&self) -> ClusterConfig {
        self.shared().cluster_config()
    }

    /// Where it connects, for logs (never the password).
    pub fn describe(&self) -> String {
        each_options!(self, o => o.describe())
    }

    /// The options every transport shares.
    pub fn shared(&self) -> &SharedOptions {
        each_options!(self, o => &o.shared)
    }

    /// Connects the transport (no subscription yet).
    pub async fn connect(&self) -> Result<AnyTransport, EmitterError> {
        let failed =
            |e: Box<dyn std::error::Error + Send + Sync>| EmitterError::Connect { target: self.describe(), source: e };
        match self {
            #[cfg(feature = "redis")]
            AnyOptions::Redis(o) => socketio_adapter_redis::RedisTransport::connect(o)
                .await
                .map(AnyTransport::Redis)
                .map_err(|e| failed(Box::new(e))),
            #[cfg(feature = "kafka")]
            AnyOptions::Kafka(o) => socketio_adapter_kafka::KafkaTransport::connect(o)
                .await
                .map(AnyTransport::Kafka)
                .map_err(|e| failed(Box::new(e))),
            #[cfg(feature = "amqp")]
            AnyOptions::Amqp(o) => socketio_adapter_amqp::AmqpTransport::connect(o)
                .await
                .map(AnyTransport::Amqp)
                .map_err(|e| failed(Box::new(e))),
            #[allow(unreachable_patterns)]
            _ => unreachable!("no transport compiled in"),
        }
    }
}

impl std::ops::Deref for AnyOptions {
    type Target = SharedOptions;
    fn deref(&self) -> &SharedOptions {
        self.shared()
    }
}

impl std::ops::DerefMut for AnyOptions {
    fn deref_mut(&mut self) -> &mut SharedOptions {
        each_options!(self, o => &mut o.shared)
    }
}

/// One of the transports compiled into this crate (cargo features `redis`, `kafka`,
/// `amqp`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum AnyTransport {
    /// Redis or Redis Cluster.
    #[cfg(feature = "redis")]
    Redis(socketio_adapter_redis::RedisTransport),
    /// Kafka.
    #[cfg(feature = "kafka")]
    Kafka(socketio_adapter_kafka::KafkaTransport),
    /// RabbitMQ (AMQP 0-9-1).
    #[cfg(feature = "amqp")]
    Amqp(socketio_adapter_amqp::AmqpTransport),
}

/// The error of whichever transport failed.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct AnyTransportError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl AnyTransportError {
    fn new(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        AnyTransportError(Box::new(e))
    }
}

/// `$e` on whichever transport `$self` is, as `$t`; `$none` when no transport is compiled in.
macro_rules! each_plain {
    ($self:ident, $t:ident => $e:expr, $none:expr) => {
        match $self {
            #[cfg(feature = "redis")]
            AnyTransport::Redis($t) => $e,
            #[cfg(feature = "kafka")]
            AnyTransport::Kafka($t) => $e,
            #[cfg(feature = "amqp")]
            AnyTransport::Amqp($t) => $e,
            #[allow(unreachable_patterns)]
            _ => $none,
        }
    };
}

/// `each_plain!` for the fallible methods: the error boxed into an [`AnyTransportError`].
macro_rules! each {
    ($self:ident, $t:ident => $e:expr) => {
        each_plain!($self, $t => $e.map_err(AnyTransportError::new), unreachable!("no transport compiled in"))
    };
}

impl Transport for AnyTransport {
    type Error = AnyTransportError;

    fn name(&self) -> &'static str {
        each_plain!(self, t => t.name(), "none")
    }

    fn describe(&self) -> String {
        each_plain!(self, t => t.describe(), "none".to_owned())
    }

    async fn publish(&self, channel: &str, payload: Bytes) -> Result<(), Self::Error> {
        each!(self, t => t.publish(channel, payload).await)
    }

    async fn subscribe(&self, channels: &[Channel], sink: EventSender) -> Result<(), Self::Error> {
        each!(self, t => t.subscribe(channels, sink).await)
    }

    async fn unsubscribe(&self, channels: &[Channel], sink: &EventSender) -> Result<(), Self::Error> {
        each!(self, t => t.unsubscribe(channels, sink).await)
    }

    async fn server_count(&self, channel: &str) -> Result<Option<usize>, Self::Error> {
        each!(self, t => t.server_count(channel).await)
    }

    async fn resubscribe(&self) -> Result<(), Self::Error> {
        each!(self, t => t.resubscribe().await)
    }

    fn stats(&self) -> TransportStats {
        each_plain!(self, t => t.stats(), TransportStats::default())
    }

    fn is_connected(&self) -> bool {
        each_plain!(self, t => t.is_connected(), false)
    }
}

#[cfg(all(test, feature = "redis", feature = "kafka", feature = "amqp"))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A Flask-SocketIO `message_queue` URL plus `?dialect=python&channel=...` selects the
    /// python dialect, its channel and python-socketio's layout, on every scheme.
    #[test]
    fn the_url_alone_selects_the_python_dialect_and_layout() {
        for url in [
            "redis://127.0.0.1:6379/0?dialect=python&channel=flask-socketio",
            "rediss://127.0.0.1:6380?dialect=python&channel=flask-socketio",
            "amqp://guest:guest@127.0.0.1:5672/%2f?dialect=python&channel=flask-socketio",
            "amqps://guest:guest@127.0.0.1:5671/%2f?dialect=python&channel=flask-socketio",
            "kafka://127.0.0.1:9092?dialect=python&channel=flask-socketio",
        ] {
            let opts = AnyOptions::parse(url).unwrap();
            assert_eq!(opts.dialect().name(), "python", "{url}");
            assert_eq!(opts.shared().python_channel(), Some("flask-socketio"), "{url}");
            assert!(opts.describe().contains("python channel flask-socketio"), "{url}: {}", opts.describe());
            match &opts {
                AnyOptions::Redis(o) => assert_eq!(o.mode, socketio_adapter_redis::Mode::Classic, "{url}"),
                AnyOptions::Amqp(o) => assert_eq!(o.layout(), socketio_adapter_amqp::Layout::Fanout, "{url}"),
                AnyOptions::Kafka(o) => assert_eq!(o.topic, "flask-socketio", "{url}"),
            }
        }
        // the flags override a plain URL the same way
        let mut opts = AnyOptions::parse("kafka://127.0.0.1:9092").unwrap();
        opts.set_dialect(Some(DialectKind::Python), Some("socketio".into())).unwrap();
        assert_eq!(opts.dialect().name(), "python");
        let AnyOptions::Kafka(k) = &opts else { unreachable!() };
        assert_eq!(k.topic, "socketio");
        // a channel is the python dialect's
        let e = AnyOptions::parse("amqp://127.0.0.1?channel=x").unwrap_err().to_string();
        assert!(e.contains("dialect=python"), "{e}");
        let e = AnyOptions::parse("kafka://127.0.0.1?dialect=node-redis").unwrap_err().to_string();
        assert!(e.contains("needs Redis"), "{e}");
    }
}
