//! The value decoders every dialect builds on: MessagePack and JSON.
#![no_main]
use libfuzzer_sys::fuzz_target;
use socketio_adapter_core::{json, msgpack};

fuzz_target!(|data: &[u8]| {
    let _ = msgpack::decode(data);
    let _ = json::parse(data);
});
