//! The conformance suite (the cases every broker suite runs) over the in-process memory
//! transport, in both ways of counting servers: broker count with the classic dialect,
//! heartbeats with the ClusterAdapter dialect. A case that fails here is a cluster-logic
//! bug, not a transport one.

use std::sync::Arc;

use socketio_adapter_core::conformance_suite;
use socketio_adapter_core::dialect::{Dialect, NodeClusterDialect, NodeRedisDialect};
use socketio_adapter_core::memory::{MemoryHub, MemoryTransport};
use socketio_adapter_core::testing::conformance::Backend;

struct Memory {
    hub: MemoryHub,
    counting: bool,
}

impl Memory {
    fn new(counting: bool) -> Self {
        Memory { hub: if counting { MemoryHub::counting() } else { MemoryHub::new() }, counting }
    }
}

impl Backend for Memory {
    type T = MemoryTransport;

    fn name(&self) -> String {
        if self.counting { "memory-broker-count" } else { "memory-heartbeats" }.to_owned()
    }

    fn dialect(&self, prefix: &str) -> Arc<dyn Dialect> {
        if self.counting { Arc::new(NodeRedisDialect::new(prefix)) } else { Arc::new(NodeClusterDialect::new(prefix)) }
    }

    async fn connect(&self, _prefix: &str) -> MemoryTransport {
        self.hub.transport()
    }
}

conformance_suite!(broker_count, super::Memory::new(true));
conformance_suite!(heartbeats, super::Memory::new(false));
