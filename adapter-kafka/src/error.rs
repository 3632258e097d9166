//! Errors of the Kafka transport.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

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
    /// A librdkafka call failed after the broker refused or dropped the connection: the
    /// TLS handshake or the SASL authentication failed, or the broker is unreachable.
    #[error("kafka {op} failed: {error} (broker connection: {reason})")]
    Connection {
        /// What was attempted.
        op: String,
        /// The error of the call.
        error: String,
        /// librdkafka's last word on the broker connection.
        reason: String,
    },
    /// The transport was shut down.
    #[error("the Kafka transport is shut down")]
    Closed,
}

impl KafkaTransportError {
    pub(crate) fn kafka(op: impl Into<String>, source: KafkaError) -> Self {
        KafkaTransportError::Kafka { op: op.into(), source }
    }

    /// With librdkafka's last word on the broker connection, when the call failed for
    /// want of a broker (a transport failure or a timeout says nothing of why).
    pub(crate) fn because(self, reason: Option<String>) -> Self {
        match (self, reason) {
            (KafkaTransportError::Kafka { op, source }, Some(reason))
                if source.rdkafka_error_code().is_some_and(|c| {
                    matches!(
                        c,
                        RDKafkaErrorCode::BrokerTransportFailure
                            | RDKafkaErrorCode::AllBrokersDown
                            | RDKafkaErrorCode::OperationTimedOut
                            | RDKafkaErrorCode::Authentication
                            | RDKafkaErrorCode::SaslAuthenticationFailed
                            | RDKafkaErrorCode::SSL
                    )
                }) =>
            {
                KafkaTransportError::Connection { op, error: source.to_string(), reason: reason.trim_end().to_owned() }
            }
            (e, _) => e,
        }
    }
}
