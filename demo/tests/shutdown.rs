//! Graceful shutdown: on SIGTERM a `sio-node` with a client connected tells the cluster it
//! is leaving (the other node counts one server at once, not after the heartbeat timeout
//! of 30 s set here), closes its clients' connections and exits with status 0 within its
//! bound (5 s). RabbitMQ: a broker that cannot count, so servers are counted by heartbeats.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use socketio_cluster_tests::conformance::prefix;
use socketio_cluster_tests::env;
use socketio_cluster_tests::sio_node::SioNode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The servers `node` knows from heartbeats, itself included.
async fn servers(node: &SioNode) -> u64 {
    node.get_json("/health").await["known_nodes"].as_u64().unwrap() + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_leaves_the_cluster_at_once_and_exits_within_its_bound() {
    let amqp = env("AMQP_ADDR");
    let sep = if amqp.contains('?') { '&' } else { '?' };
    let url = format!("{amqp}{sep}prefix={}&heartbeat_timeout_ms=30000", prefix("bye"));
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_sio-node"));
    let mut a = SioNode::start(bin, "A", &url).await;
    let b = SioNode::start(bin, "B", &url).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while servers(&b).await != 2 {
        assert!(Instant::now() < deadline, "B never saw A");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // a client on A, connected by websocket
    let mut ws = tokio::net::TcpStream::connect(("127.0.0.1", a.port)).await.unwrap();
    ws.write_all(
        b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
          Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = [0u8; 12];
    ws.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 101", "websocket upgrade");

    let signalled = Instant::now();
    a.signal("TERM").await;
    let status = a.exited(Duration::from_secs(8)).await.expect("sio-node exits within its 5 s bound (+3 s)");
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    // the client's connection was closed, not left hanging
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(2), ws.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the client's connection is still open after the node exited");
    // B stopped counting A at once (heartbeat timeout 30 s)
    while servers(&b).await != 1 {
        assert!(signalled.elapsed() < Duration::from_secs(10), "B still counts A: the node left without a word");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
