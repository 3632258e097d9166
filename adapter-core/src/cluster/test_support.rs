//! Helpers of the engine's unit tests: nodes over the in-memory transport.

use std::sync::Arc;
use std::time::Duration;

use crate::dialect::{Dialect, NodeClusterDialect, NodeRedisDialect};
use crate::memory::{MemoryHub, MemoryTransport};
use crate::testing::Recorder;
use crate::{Adapter, ClusterAdapter, ClusterConfig, EventPacket, Value};

/// One node of a test cluster.
pub(super) struct TestNode {
    pub(super) adapter: ClusterAdapter<MemoryTransport>,
    pub(super) sockets: Arc<Recorder>,
    pub(super) transport: MemoryTransport,
}

/// A started node of namespace `/`.
pub(super) async fn node(hub: &MemoryHub, dialect: Arc<dyn Dialect>, name: &str, config: ClusterConfig) -> TestNode {
    let transport = hub.transport();
    let sockets = Recorder::new(name);
    let adapter = ClusterAdapter::new(transport.clone(), dialect, "/", sockets.clone(), config).expect("adapter");
    adapter.init().await.expect("init");
    TestNode { adapter, sockets, transport }
}

/// Two nodes counted by heartbeats (ClusterAdapter dialect, a hub that cannot count).
pub(super) async fn heartbeat_pair(config: ClusterConfig) -> (MemoryHub, TestNode, TestNode) {
    let hub = MemoryHub::new();
    let dialect: Arc<dyn Dialect> = Arc::new(NodeClusterDialect::default());
    let a = node(&hub, dialect.clone(), "A", config.clone()).await;
    let b = node(&hub, dialect, "B", config).await;
    settle().await;
    (hub, a, b)
}

/// Two nodes counted by the broker (classic dialect, a hub that counts subscribers).
pub(super) async fn broker_pair(config: ClusterConfig) -> (MemoryHub, TestNode, TestNode) {
    let hub = MemoryHub::counting();
    let dialect: Arc<dyn Dialect> = Arc::new(NodeRedisDialect::default());
    let a = node(&hub, dialect.clone(), "A", config.clone()).await;
    let b = node(&hub, dialect, "B", config).await;
    settle().await;
    (hub, a, b)
}

/// Lets every in-flight message arrive (with paused time this only advances the clock
/// once every task is idle).
pub(super) async fn settle() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// An event packet named `name`.
pub(super) fn ev(name: &str) -> EventPacket {
    EventPacket::new(name, vec![Value::from("x")])
}
