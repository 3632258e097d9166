//! Errors of the AMQP transport.

use std::time::Duration;

/// What went wrong talking to the AMQP broker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AmqpTransportError {
    /// The URL or an option in it is invalid (the message names which and why).
    #[error("invalid AMQP URL {0}")]
    Url(String),
    /// An AMQP operation failed (the broker refused it, or the connection broke).
    #[error("AMQP {op} failed: {source}")]
    Amqp {
        /// What was attempted (`connect to ...`, `publish on socket.io#/#`, `bind ...`).
        op: String,
        /// The cause.
        #[source]
        source: lapin::Error,
    },
    /// An AMQP operation got no answer in time.
    #[error("AMQP {op} got no answer within {after:?}")]
    Timeout {
        /// What was attempted.
        op: String,
        /// The timeout that passed.
        after: Duration,
    },
    /// The broker refused a published message (publisher confirms: `basic.nack`).
    #[error("the broker refused (nacked) the message published on {channel}")]
    Nacked {
        /// The channel it was published on.
        channel: String,
    },
    /// The connection is down and being re-established: nothing is buffered, the
    /// caller decides whether to retry.
    #[error("not connected to the AMQP broker (reconnecting)")]
    NotConnected,
    /// The operation is not possible over AMQP (a glob pattern subscription).
    #[error("not supported by the AMQP transport: {0}")]
    Unsupported(String),
    /// `amqps://`: the CA file could not be read.
    #[error("cannot read the TLS CA file {path}: {source}")]
    TlsCaFile {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The transport was shut down.
    #[error("the AMQP transport is shut down")]
    Closed,
}

impl AmqpTransportError {
    pub(crate) fn amqp(op: impl Into<String>, source: lapin::Error) -> Self {
        AmqpTransportError::Amqp { op: op.into(), source }
    }
}
