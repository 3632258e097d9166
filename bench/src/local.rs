//! The adapter without websockets: ingest through the real engine (decode, room lookup,
//! hand-off to the server's sockets) and the room index's memory and broadcast cost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};
use socketio_adapter_core::dialect::{Dialect, NodeRedisDialect};
use socketio_adapter_core::memory::MemoryHub;
use socketio_adapter_core::rooms::RoomIndex;
use socketio_adapter_core::{
    AckError, Body, BroadcastFlags, BroadcastOptions, ClusterConfig, ClusterCore, EventPacket, IndexedNode,
    LocalAckStream, LocalNode, LocalSockets, Message, Room, SocketDetails, SocketId, Transport, Value,
};

/// Server sockets that only count what they are handed.
#[derive(Debug, Default)]
struct Counting {
    delivered: AtomicU64,
}

impl LocalSockets for Counting {
    fn send(&self, sids: &[SocketId], _packet: &EventPacket, _flags: &BroadcastFlags) {
        self.delivered.fetch_add(sids.len() as u64, Ordering::Relaxed);
    }
    fn send_volatile(&self, sids: &[SocketId], packet: &EventPacket, flags: &BroadcastFlags) {
        self.send(sids, packet, flags);
    }
    fn send_with_ack(&self, _: &[SocketId], _: &EventPacket, _: &BroadcastFlags, _: Duration) -> LocalAckStream {
        Box::pin(futures_util::stream::empty::<(SocketId, Result<Value, AckError>)>())
    }
    fn disconnect(&self, _: &[SocketId], _: bool) {}
    fn describe(&self, _: &str) -> Option<SocketDetails> {
        None
    }
}

fn sid(i: usize) -> String {
    format!("s{i:015}")
}

/// `n` broadcasts (one room each, round robin over `rooms`) published raw into the
/// in-process transport in the node-redis dialect; times the node until it handed every
/// delivery to its sockets (`sockets` sockets, socket i in room `r{i % rooms}`).
pub async fn ingest(sockets: usize, rooms: usize, n: u64) -> Result<Json, String> {
    let counting = Arc::new(Counting::default());
    let local = Arc::new(IndexedNode::new(Arc::clone(&counting) as Arc<dyn LocalSockets>));
    {
        let mut index = local.write();
        for i in 0..sockets {
            index.add_all(&sid(i), &[Room::new(format!("r{}", i % rooms))]);
        }
    }
    // a hub that counts subscribers, as Redis does for the node-redis dialect
    let hub = MemoryHub::counting();
    let prefix = "ingest";
    let dialect = Arc::new(NodeRedisDialect::new(prefix));
    let node = ClusterCore::node(
        hub.transport(),
        dialect.clone(),
        "/",
        Arc::clone(&local) as Arc<dyn LocalNode>,
        ClusterConfig::default(),
    )
    .map_err(|e| e.to_string())?;
    node.start().await.map_err(|e| e.to_string())?;
    let pad = "x".repeat(40);
    let messages: Vec<_> = (0..rooms)
        .map(|r| {
            let args = vec![Value::from(0u64), Value::from(0.0f64), Value::from(pad.as_str())];
            let opts = BroadcastOptions::default().to(format!("r{r}"));
            let body = Body::Broadcast { packet: EventPacket::new("m", args), opts };
            dialect.encode(&Message::new(None, "/".to_owned(), body)).map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    let publisher = hub.transport();
    let want = n * (sockets / rooms) as u64;
    let started = Instant::now();
    for i in 0..n {
        let out = &messages[i as usize % rooms];
        publisher.publish(&out.channel, out.payload.clone()).await.map_err(|e| e.to_string())?;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while counting.delivered.load(Ordering::Relaxed) < want && Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
    let secs = started.elapsed().as_secs_f64();
    let delivered = counting.delivered.load(Ordering::Relaxed);
    Ok(json!({"n": n, "secs": secs, "msgs_per_s": n as f64 / secs, "deliveries": delivered, "expected": want}))
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// Memory of the index with `sockets` sockets, each in `per_socket` of `rooms` rooms
/// (socket i in `r{(i + j*7919) % rooms}`) and in the room of its own id, as servers do.
pub fn rooms_memory(sockets: usize, per_socket: usize, rooms: usize) -> Json {
    let names: Vec<Room> = (0..rooms).map(|r| Room::new(format!("r{r}"))).collect();
    let sids: Vec<String> = (0..sockets).map(sid).collect();
    let before = rss_bytes();
    let mut index = RoomIndex::new();
    for (i, s) in sids.iter().enumerate() {
        let joined: Vec<Room> = (0..per_socket).map(|j| names[(i + j * 7919) % rooms].clone()).collect();
        index.add_all(s, &joined);
    }
    let after = rss_bytes();
    let memberships = sockets * (per_socket + 1);
    let bytes = after.saturating_sub(before);
    let out = json!({"memberships": memberships, "rss_bytes": bytes, "bytes_per_membership": bytes as f64 / memberships as f64});
    drop(index);
    out
}

/// Time of a broadcast to a room of `hot` sockets in an index of `rooms` other rooms
/// (one socket each), through the indexed node to counting sockets.
pub fn rooms_broadcast(rooms: usize, hot: usize, iterations: u64) -> Json {
    let counting = Arc::new(Counting::default());
    let local = IndexedNode::new(Arc::clone(&counting) as Arc<dyn LocalSockets>);
    {
        let mut index = local.write();
        for i in 0..rooms {
            index.add_all(&sid(i), &[Room::new(format!("r{i}"))]);
        }
        for i in 0..hot {
            index.add_all(&sid(rooms + i), &[Room::new("hot")]);
        }
    }
    let packet = EventPacket::new("m", vec![Value::from(1u64)]);
    let opts = BroadcastOptions::default().to("hot");
    let started = Instant::now();
    for _ in 0..iterations {
        let _ = local.broadcast(&packet, &opts);
    }
    let ns = started.elapsed().as_nanos() as f64 / iterations as f64;
    json!({"rooms": rooms, "hot": hot, "ns_per_broadcast": ns, "delivered": counting.delivered.load(Ordering::Relaxed)})
}
