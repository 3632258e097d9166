//! [`AnyTransport`]: the transports compiled in, behind one type, so that
//! [`Emitter::connect`](crate::Emitter::connect) can pick one from a URL.

use bytes::Bytes;
use socketio_adapter_core::{Channel, EventSender, Transport};

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

macro_rules! each {
    ($self:ident, $t:ident => $e:expr) => {
        match $self {
            #[cfg(feature = "redis")]
            AnyTransport::Redis($t) => $e.map_err(AnyTransportError::new),
            #[cfg(feature = "kafka")]
            AnyTransport::Kafka($t) => $e.map_err(AnyTransportError::new),
            #[cfg(feature = "amqp")]
            AnyTransport::Amqp($t) => $e.map_err(AnyTransportError::new),
            #[allow(unreachable_patterns)]
            _ => unreachable!("no transport compiled in"),
        }
    };
}

impl Transport for AnyTransport {
    type Error = AnyTransportError;

    fn name(&self) -> &'static str {
        match self {
            #[cfg(feature = "redis")]
            AnyTransport::Redis(t) => t.name(),
            #[cfg(feature = "kafka")]
            AnyTransport::Kafka(t) => t.name(),
            #[cfg(feature = "amqp")]
            AnyTransport::Amqp(t) => t.name(),
            #[allow(unreachable_patterns)]
            _ => "none",
        }
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
}
