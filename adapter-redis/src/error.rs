//! Errors of the Redis transport.

/// What went wrong talking to Redis.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisTransportError {
    /// The URL or an option in it is invalid (the message names which and why).
    #[error("invalid Redis URL {0}")]
    Url(String),
    /// A Redis command failed.
    #[error("redis {op} failed: {source}")]
    Command {
        /// What was attempted (`PUBLISH socket.io#/#`, `SSUBSCRIBE ...`).
        op: String,
        /// The cause.
        #[source]
        source: redis::RedisError,
    },
    /// The subscriber connection is down and being re-established.
    #[error("not connected to Redis (reconnecting)")]
    NotConnected,
    /// A reply had an unexpected shape.
    #[error("unexpected reply to {op}: {reply}")]
    Reply {
        /// The command.
        op: String,
        /// The reply, abbreviated.
        reply: String,
    },
    /// The transport was shut down.
    #[error("the Redis transport is shut down")]
    Closed,
}

impl RedisTransportError {
    pub(crate) fn command(op: impl Into<String>, source: redis::RedisError) -> Self {
        RedisTransportError::Command { op: op.into(), source }
    }
}
