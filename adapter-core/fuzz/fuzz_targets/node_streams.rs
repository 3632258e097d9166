//! The node-streams dialect's decoder (@socket.io/redis-streams-adapter): a stream
//! entry's frame of fields (the first byte picks the stream key) or a MessagePack
//! pub/sub message (the main or the response channel).
#![no_main]
use libfuzzer_sys::fuzz_target;
use socketio_adapter_core::dialect::{Dialect, NodeStreamsDialect, StreamLayout};

const CHANNELS: [&str; 3] = ["socket.io", "socket.io#/#", "socket.io#/#0123456789abcdef#"];

fuzz_target!(|data: &[u8]| {
    if let Some((&pick, payload)) = data.split_first() {
        let layout = StreamLayout::new("socket.io", 1).expect("layout");
        let _ = NodeStreamsDialect::new("socket.io", layout).decode(CHANNELS[usize::from(pick) % CHANNELS.len()], payload);
    }
});
