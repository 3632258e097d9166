//! The python dialect's decoder (python-socketio's JSON messages; pickles are refused
//! without being unpickled).
#![no_main]
use libfuzzer_sys::fuzz_target;
use socketio_adapter_core::dialect::{Dialect, PythonDialect};

fuzz_target!(|data: &[u8]| {
    let _ = PythonDialect::default().decode("socketio", data);
});
