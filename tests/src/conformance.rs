//! The conformance suite: it lives in adapter-core
//! ([`socketio_adapter_core::testing::conformance`]), where the in-process suite over the
//! memory transport runs the same cases; re-exported for the broker suites.
pub use socketio_adapter_core::testing::conformance::*;
