//! Error types. Messages are lowercase and say what was being done; causes are kept as
//! sources.

use std::error::Error as StdError;
use std::fmt;

/// Bytes that are not a valid message of the expected format. Decoders return it
/// instead of panicking; the cluster adapter logs and drops such messages.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended in the middle of a value.
    #[error("unexpected end of input")]
    UnexpectedEof,
    /// A reserved MessagePack marker byte.
    #[error("invalid msgpack marker 0x{0:02x}")]
    InvalidMarker(u8),
    /// Bytes left after the top-level value.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    /// Arrays or maps nested deeper than the decoder allows.
    #[error("nesting deeper than {} levels", crate::value::MAX_DEPTH)]
    TooDeep,
    /// A map key that cannot become a string.
    #[error("map key of type {0} cannot be a string")]
    InvalidKey(&'static str),
    /// A malformed timestamp extension.
    #[error("invalid msgpack timestamp")]
    InvalidTimestamp,
    /// Invalid JSON text.
    #[error("invalid json: {0}")]
    Json(String),
    /// A required field is absent.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A field has the wrong type.
    #[error("field `{field}` should be {expected}, found {found}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// What the protocol requires.
        expected: &'static str,
        /// What arrived.
        found: &'static str,
    },
    /// A message type code this dialect does not define.
    #[error("unknown message type {0}")]
    UnknownType(i64),
    /// Anything else structurally wrong.
    #[error("{0}")]
    Invalid(String),
    /// A pickled python-socketio message: versions before 5.14 pickle their messages,
    /// which are never unpickled here (unpickling runs code of the sender's choosing).
    #[error(
        "a pickled message{}: python-socketio before 5.14 pickles its messages; upgrade it to 5.14 or later (JSON)",
        sender.as_deref().map(|s| format!(" from host_id {s}")).unwrap_or_default()
    )]
    Pickled {
        /// The sender's `host_id`, when it could be read without unpickling.
        sender: Option<String>,
    },
}

/// A message could not be encoded or decoded by a dialect.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DialectError {
    /// The bytes are not a valid message.
    #[error("cannot decode a message on channel {channel:?}")]
    Decode {
        /// Where it arrived.
        channel: String,
        /// What is wrong with it.
        #[source]
        source: DecodeError,
    },
    /// The dialect has no way to express this operation.
    #[error("the {dialect} protocol cannot carry {operation}")]
    Unsupported {
        /// The dialect's name.
        dialect: &'static str,
        /// The operation.
        operation: &'static str,
    },
    /// A namespace, room or event name the protocol cannot carry.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        /// "namespace", "room", "event"...
        what: &'static str,
        /// The offending value.
        value: String,
        /// Why.
        reason: &'static str,
    },
}

/// How a cluster request fell short: it completed with the answers that arrived.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Shortfall {
    /// The operation ("fetch sockets", "server-side emit", ...).
    pub operation: &'static str,
    /// Answers expected (nodes, or for acks: clients).
    pub expected: usize,
    /// Answers received.
    pub received: usize,
    /// Nodes known to be missing (empty when the protocol does not say who answered).
    pub missing_nodes: Vec<String>,
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} timed out: {} of {} responses received", self.operation, self.received, self.expected)?;
        if !self.missing_nodes.is_empty() {
            write!(f, "; no answer from {}", self.missing_nodes.join(", "))?;
        }
        Ok(())
    }
}

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Errors of adapter and cluster operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdapterError {
    /// The transport failed to publish, subscribe or count servers.
    #[error("transport failed to {operation}")]
    Transport {
        /// What was being done ("publish on socket.io#/#", ...).
        operation: String,
        /// The transport's error.
        #[source]
        source: BoxError,
    },
    /// A message could not be encoded.
    #[error(transparent)]
    Dialect(#[from] DialectError),
    /// A request completed without every answer.
    #[error("{0}")]
    Incomplete(Shortfall),
    /// The encoded message is larger than the configured maximum (nothing was sent).
    #[error(
        "the message is {size} bytes, over the maximum message size of {limit} bytes (max_message_bytes in the URL, ClusterConfig::with_max_message_size)"
    )]
    MessageTooLarge {
        /// The encoded size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// Too many requests are waiting for answers.
    #[error("too many pending cluster requests (limit {limit})")]
    TooManyRequests {
        /// The configured limit.
        limit: usize,
    },
    /// The adapter was closed.
    #[error("the adapter is closed")]
    Closed,
    /// The adapter was used before `init`.
    #[error("the adapter is not initialized")]
    NotInitialized,
    /// A value could not be converted.
    #[error(transparent)]
    Value(#[from] crate::value::ValueError),
    /// Invalid configuration.
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl AdapterError {
    /// Wraps a transport error with what was being done.
    pub fn transport(operation: impl Into<String>, source: impl Into<BoxError>) -> Self {
        AdapterError::Transport { operation: operation.into(), source: source.into() }
    }

    /// `true` when a request ran out of time before every answer arrived.
    pub fn is_timeout(&self) -> bool {
        matches!(self, AdapterError::Incomplete(_))
    }

    /// `true` when the broker connection failed.
    pub fn is_transport(&self) -> bool {
        matches!(self, AdapterError::Transport { .. })
    }

    /// The shortfall of an incomplete request.
    pub fn shortfall(&self) -> Option<&Shortfall> {
        match self {
            AdapterError::Incomplete(s) => Some(s),
            _ => None,
        }
    }
}

/// An error with its causes on one line (`what failed: why: deeper cause`), each cause
/// once (a message that already contains its source's text does not repeat it), newlines
/// replaced by spaces: what a command-line tool prints.
pub fn error_chain(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = c.source();
    }
    out.replace('\n', " ")
}
