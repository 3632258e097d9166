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
    /// The broker could not be reached. Its text names the target, unless the
    /// transport's error (its source) already does.
    #[error("cannot connect{}", connect_target(target, source))]
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

/// ` to <target>`, or nothing when the transport's error names the target already (each
/// transport's connect errors do: "redis connect to redis 127.0.0.1:1 (...) failed").
fn connect_target(target: &str, source: &BoxError) -> String {
    if source.to_string().contains(target) { String::new() } else { format!(" to {target}") }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connect_error_names_its_target_once() {
        let target = "redis 127.0.0.1:1 (classic, prefix p)".to_owned();
        let named: BoxError = format!("redis connect to {target} failed: refused").into();
        let e = EmitterError::Connect { target: target.clone(), source: named };
        assert_eq!(e.to_string(), "cannot connect");
        let bare: BoxError = "timed out".into();
        let e = EmitterError::Connect { target, source: bare };
        assert_eq!(e.to_string(), "cannot connect to redis 127.0.0.1:1 (classic, prefix p)");
    }
}
