//! Errors of the Kafka transport.

use rdkafka::error::KafkaError;

/// What went wrong talking to Kafka.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaTransportError {
    /// The URL or an option in it is invalid (the message names which and why).
    #[error("invalid Kafka URL {0}")]
    Url(String),
    /// A librdkafka call failed.
    #[error("kafka {op} failed: {source}")]
    Kafka {
        /// What was attempted (`produce to socket.io`, `create consumer`, ...).
        op: String,
        /// The cause.
        #[source]
        source: KafkaError,
    },
    /// The topic is missing and could not be created, or is unusable.
    #[error("kafka topic {topic:?}: {reason}")]
    Topic {
        /// The topic.
        topic: String,
        /// Why it is unusable (missing and `create_topic=false`, creation refused, ...).
        reason: String,
    },
    /// The broker did not answer in time.
    #[error("kafka {op}: no answer within {timeout_ms} ms")]
    Timeout {
        /// What was attempted.
        op: String,
        /// The timeout.
        timeout_ms: u64,
    },
    /// The transport was shut down.
    #[error("the Kafka transport is shut down")]
    Closed,
}

impl KafkaTransportError {
    pub(crate) fn kafka(op: impl Into<String>, source: KafkaError) -> Self {
        KafkaTransportError::Kafka { op: op.into(), source }
    }
}
