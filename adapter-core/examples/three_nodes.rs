//! Three cluster nodes in one process over the in-memory transport: every cluster
//! operation, printed as it happens. Run with
//! `cargo run -p socketio-adapter-core --features test-util --example three_nodes`.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use socketio_adapter_core::dialect::NodeRedisDialect;
use socketio_adapter_core::memory::{MemoryHub, MemoryTransport};
use socketio_adapter_core::{
    Adapter, BroadcastFlags, BroadcastOptions, ClusterAdapter, ClusterConfig, EventPacket, LocalAckStream,
    LocalSockets, ServerSideAck, SocketDetails, Value,
};

/// A stand-in for a Socket.IO server: prints what its sockets receive.
struct PrintingServer {
    name: &'static str,
    log: Mutex<Vec<String>>,
}

impl PrintingServer {
    fn deliver(&self, sids: &[String], packet: &EventPacket) {
        for sid in sids {
            let line = format!("  [{}] {sid} <- {}{:?}", self.name, packet.event, packet.args);
            println!("{line}");
            self.log.lock().unwrap().push(line);
        }
    }
}

impl LocalSockets for PrintingServer {
    fn send(&self, sids: &[String], packet: &EventPacket, _: &BroadcastFlags) {
        self.deliver(sids, packet);
    }
    fn send_volatile(&self, sids: &[String], packet: &EventPacket, _: &BroadcastFlags) {
        self.deliver(sids, packet);
    }
    fn send_with_ack(&self, sids: &[String], packet: &EventPacket, _: &BroadcastFlags, _: Duration) -> LocalAckStream {
        self.deliver(sids, packet);
        let acks: Vec<_> = sids.iter().map(|s| (s.clone(), Ok(Value::from(format!("ok from {s}"))))).collect();
        Box::pin(futures_util::stream::iter(acks))
    }
    fn disconnect(&self, sids: &[String], close: bool) {
        println!("  [{}] disconnect {sids:?} (close: {close})", self.name);
    }
    fn describe(&self, _sid: &str) -> Option<SocketDetails> {
        Some(SocketDetails { handshake: Value::Null, data: Value::from(self.name) })
    }
    fn server_side_emit(&self, packet: EventPacket, ack: Option<ServerSideAck>) {
        println!("  [{}] server-side event {}", self.name, packet.event);
        if let Some(ack) = ack {
            ack.send(format!("{} is alive", self.name));
        }
    }
}

async fn node(hub: &MemoryHub, name: &'static str) -> ClusterAdapter<MemoryTransport> {
    let server = Arc::new(PrintingServer { name, log: Mutex::default() });
    let adapter = ClusterAdapter::new(
        hub.transport(),
        Arc::new(NodeRedisDialect::default()),
        "/",
        server,
        ClusterConfig::default(),
    )
    .unwrap();
    adapter.init().await.unwrap();
    adapter
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hub = MemoryHub::counting();
    let (a, b, c) = (node(&hub, "A").await, node(&hub, "B").await, node(&hub, "C").await);
    a.add_all("alice", &["lobby".into()]);
    b.add_all("bob", &["lobby".into(), "vip".into()]);
    c.add_all("carol", &[]);
    let pause = || tokio::time::sleep(Duration::from_millis(20));
    pause().await;
    println!("servers: {}", a.server_count().await?);

    println!("A: io.to('lobby').emit('hello', 'world')");
    a.broadcast(EventPacket::new("hello", vec!["world".into()]), BroadcastOptions::all().to("lobby")).await?;
    pause().await;
    println!("C: io.except('vip').emit('news', 1)");
    c.broadcast(EventPacket::new("news", vec![1.into()]), BroadcastOptions::all().except("vip")).await?;
    pause().await;

    println!("B: io.timeout(1000).emit('poll')");
    let acks = b
        .broadcast_with_ack(EventPacket::new("poll", vec![]), BroadcastOptions::all().timeout(Duration::from_secs(1)))
        .await?
        .collect()
        .await;
    for ack in &acks.value {
        println!("  ack {:?}", ack.result);
    }

    println!("A: io.in('lobby').socketsJoin('vip')");
    a.add_sockets(BroadcastOptions::all().to("lobby"), vec!["vip".into()]).await?;
    pause().await;
    let sockets = c.fetch_sockets(BroadcastOptions::all()).await?.into_result()?;
    println!("C: fetchSockets()");
    for s in sockets {
        println!("  {} on {} rooms {:?}", s.id, s.data, s.rooms);
    }
    println!("B: allRooms() = {:?}", b.all_rooms().await?.into_result()?);
    println!("A: serverSideEmitWithAck('ping')");
    let answers = a.server_side_emit_with_ack(EventPacket::new("ping", vec![]), None).await?.into_result()?;
    println!("  answers {answers:?}");
    println!("C: disconnectSockets() in 'vip'");
    c.disconnect_sockets(BroadcastOptions::all().to("vip"), false).await?;
    pause().await;
    for n in [&a, &b, &c] {
        n.close().await?;
    }
    Ok(())
}
