//! The node-cluster dialect's decoder (socket.io-adapter ClusterAdapter: sharded Redis,
//! Kafka, RabbitMQ) on its channel kinds (the first byte picks the channel).
#![no_main]
use libfuzzer_sys::fuzz_target;
use socketio_adapter_core::dialect::{Dialect, NodeClusterDialect};

const CHANNELS: [&str; 3] = ["socket.io#/#", "socket.io#/#0123456789abcdef#", "socket.io#/#room#"];

fuzz_target!(|data: &[u8]| {
    if let Some((&pick, payload)) = data.split_first() {
        let _ = NodeClusterDialect::default().decode(CHANNELS[usize::from(pick) % CHANNELS.len()], payload);
    }
});
