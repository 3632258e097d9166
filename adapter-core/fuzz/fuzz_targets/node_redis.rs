//! The node-redis dialect's decoder on every kind of channel it listens to (the first
//! byte picks the channel).
#![no_main]
use libfuzzer_sys::fuzz_target;
use socketio_adapter_core::dialect::{Dialect, NodeRedisDialect};

const CHANNELS: [&str; 5] = ["socket.io#/#", "socket.io#/#r1#", "socket.io-request#/#", "socket.io-response#/#", "x"];

fuzz_target!(|data: &[u8]| {
    if let Some((&pick, payload)) = data.split_first() {
        let _ = NodeRedisDialect::default().decode(CHANNELS[usize::from(pick) % CHANNELS.len()], payload);
    }
});
