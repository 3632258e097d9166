//! # socketio-adapter-amqp
//!
//! (docs follow)
#![warn(missing_docs)]

mod error;
mod options;
mod transport;

pub use error::AmqpTransportError;
pub use options::{AmqpOptions, MAX_ROUTING_KEY, routing_key};
pub use transport::{AmqpStats, AmqpTransport};
