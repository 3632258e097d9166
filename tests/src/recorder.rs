//! The recording stand-in for a server's sockets, from `socketio-adapter-core`'s
//! `test-util` feature (shared with that crate's own cluster tests).

pub use socketio_adapter_core::testing::{Delivery, Recorder, lock, short, sid};
