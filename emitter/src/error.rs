//! Errors of the emitter.

use socketio_adapter_core::{AdapterError, ValueError};

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong. Every failure is a value; the emitter never panics on bad input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitterError {
    /// The URL could not be used (bad syntax, unknown scheme, a backend not compiled in).
    #[error("invalid URL {url:?}: {reason}")]
    Url {
        /// The URL, without its password.
        url: String,
        /// Why.
        reason: String,
    },
    /// The broker could not be reached.
    #[error("cannot connect to {target}")]
    Connect {
        /// Where (without password).
        target: String,
        /// The transport's error.
        #[source]
        source: BoxError,
    },
    /// Socket.IO reserves this event name for its own use.
    #[error("{0:?} is a reserved event name")]
    ReservedEvent(String),
    /// The arguments could not be converted to Socket.IO values.
    #[error("invalid arguments")]
    Args(#[source] ValueError),
    /// The dialect cannot be used with this broker or is not available.
    #[error("{0}")]
    Dialect(String),
    /// The cluster operation failed (publish error, invalid namespace or room, timeout
    /// of a request that had to be complete).
    #[error(transparent)]
    Cluster(#[from] AdapterError),
}

impl EmitterError {
    /// `true` for failures of the broker or the cluster (unreachable, publish failed,
    /// timed out) as opposed to bad input.
    pub fn is_broker_failure(&self) -> bool {
        match self {
            EmitterError::Connect { .. } => true,
            EmitterError::Cluster(e) => e.is_transport() || e.is_timeout() || matches!(e, AdapterError::Closed),
            _ => false,
        }
    }
}
