//! # socketio-adapter-kafka
//!
//! The Kafka transport of `socketio-adapter-core` (TODO docs).
#![warn(missing_docs)]

mod error;
mod options;
mod transport;

pub use error::KafkaTransportError;
pub use options::{DEFAULT_PARTITIONS, KafkaOptions, Password};
pub use transport::{CHANNEL_HEADER, KafkaStats, KafkaTransport, MARKER_HEADER};
