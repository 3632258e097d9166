//! Unit tests of the inbound dispatch: messages handed straight to `on_message` of an
//! engine (not started), then answering end to end over the memory transport.

use std::sync::Arc;
use std::time::Duration;

use super::super::ClusterCore;
use super::super::test_support::ev;
use crate::dialect::{Dialect, EMITTER_UID, NodeClusterDialect};
use crate::memory::{MemoryHub, MemoryTransport};
use crate::message::{Body, Message};
use crate::testing::Recorder;
use crate::{BroadcastOptions, ClusterConfig, IndexedNode};

struct Fixture {
    core: ClusterCore<MemoryTransport>,
    sockets: Arc<Recorder>,
    dialect: Arc<dyn Dialect>,
}

/// A node of `/` with one socket, `a1`, in room `r1`.
fn fixture() -> Fixture {
    let sockets = Recorder::new("A");
    let local = Arc::new(IndexedNode::new(sockets.clone()));
    let _ = local.write().add_all("a1", &["r1".into()]);
    let dialect: Arc<dyn Dialect> = Arc::new(NodeClusterDialect::default());
    let core = ClusterCore::node(MemoryHub::new().transport(), dialect.clone(), "/", local, ClusterConfig::default())
        .expect("core");
    Fixture { core, sockets, dialect }
}

impl Fixture {
    /// Encodes `body` from `uid` in `nsp` and hands it to the engine as received.
    fn receive(&self, uid: Option<&str>, nsp: &str, body: Body) {
        self.receive_msg(Message::new(uid.map(str::to_owned), nsp, body));
    }

    /// A response of `uid` to a request of this node.
    fn receive_response(&self, uid: &str, body: Body) {
        let to = Some(self.core.node_id().to_owned());
        self.receive_msg(Message::new(Some(uid.to_owned()), "/", body).reply_to(to));
    }

    fn receive_msg(&self, msg: Message) {
        let out = self.dialect.encode(&msg).expect("encode");
        self.receive_raw(&out.channel, &out.payload);
    }

    fn receive_raw(&self, channel: &str, payload: &[u8]) {
        let _ = self.core.inner.on_message(channel, payload);
    }
}

fn broadcast(name: &str) -> Body {
    Body::Broadcast { packet: ev(name), opts: BroadcastOptions::all() }
}

#[tokio::test]
async fn a_peer_broadcast_reaches_local_sockets_and_makes_the_peer_known() {
    let f = fixture();
    f.receive(Some("B"), "/", broadcast("hi"));
    assert_eq!(f.sockets.got("hi"), ["a1"]);
    let stats = f.core.stats();
    assert_eq!((stats.received, stats.undecodable, stats.known_nodes), (1, 0, 1));
}

#[tokio::test]
async fn own_messages_are_ignored() {
    let f = fixture();
    let me = f.core.node_id().to_owned();
    f.receive(Some(&me), "/", broadcast("echo"));
    f.receive(Some(&me), "/", Body::Heartbeat);
    assert!(f.sockets.got("echo").is_empty());
    let stats = f.core.stats();
    assert_eq!((stats.received, stats.known_nodes), (2, 0), "counted as received, not as a node");
}

#[tokio::test]
async fn other_namespaces_are_ignored() {
    let f = fixture();
    f.receive(Some("B"), "/admin", broadcast("elsewhere"));
    assert!(f.sockets.got("elsewhere").is_empty());
    assert_eq!(f.core.stats().known_nodes, 0);
}

#[tokio::test]
async fn emitters_are_obeyed_but_never_counted_as_nodes() {
    let f = fixture();
    f.receive(Some(EMITTER_UID), "/", broadcast("from-emitter"));
    assert_eq!(f.sockets.got("from-emitter"), ["a1"]);
    assert_eq!(f.core.stats().known_nodes, 0);
}

#[tokio::test]
async fn a_closing_peer_is_forgotten() {
    let f = fixture();
    f.receive(Some("B"), "/", Body::Heartbeat);
    assert_eq!(f.core.stats().known_nodes, 1);
    f.receive(Some("B"), "/", Body::AdapterClose);
    assert_eq!(f.core.stats().known_nodes, 0);
}

#[tokio::test]
async fn responses_to_unknown_requests_and_health_pings_are_dropped_quietly() {
    let f = fixture();
    f.receive_response("B", Body::BroadcastClientCount { request_id: "nobody-asked".into(), count: 3 });
    assert_eq!(f.core.stats().known_nodes, 1, "a response still proves its sender alive");
    f.receive_response("C", Body::BroadcastClientCount { request_id: "healthcheck-C-1".into(), count: 0 });
    let stats = f.core.stats();
    assert_eq!(stats.known_nodes, 1, "a health ping does not make C known");
    assert_eq!((stats.dropped_responses, stats.undecodable, stats.pending_requests), (0, 0, 0));
}

#[tokio::test]
async fn malformed_payloads_are_counted_and_dropped_without_panicking() {
    let f = fixture();
    let main = "socket.io#/#";
    let valid = f.dialect.encode(&Message::new(Some("B".into()), "/", broadcast("ok"))).expect("encode").payload;
    let mut junk: Vec<Vec<u8>> =
        vec![b"{not json".to_vec(), vec![0x93, 0xc1], vec![], br#"{"type":99,"uid":"x","nsp":"/"}"#.to_vec()];
    // every strict prefix of a valid message
    junk.extend((0..valid.len()).map(|n| valid[..n].to_vec()));
    let mut rng = fastrand::Rng::with_seed(14);
    junk.extend((0..200).map(|_| (0..rng.usize(0..64)).map(|_| rng.u8(..)).collect::<Vec<u8>>()));
    for payload in &junk {
        f.receive_raw(main, payload);
    }
    let stats = f.core.stats();
    assert_eq!(stats.received, junk.len() as u64);
    assert_eq!(stats.undecodable, junk.len() as u64, "none of them decodes");
    assert!(f.sockets.got("ok").is_empty());
    f.receive_raw(main, &valid);
    assert_eq!(f.sockets.got("ok"), ["a1"], "still working");
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn a_huge_ack_timeout_from_the_wire_is_answered_not_a_panic() {
    use crate::Adapter;
    let hub = MemoryHub::new();
    let dialect: Arc<dyn Dialect> = Arc::new(NodeClusterDialect::default());
    let a = super::super::test_support::node(&hub, dialect.clone(), "A", ClusterConfig::default()).await;
    a.adapter.add_all("a1", &[]);
    let requester = ClusterCore::requester(hub.transport(), dialect, "/", EMITTER_UID.into(), ClusterConfig::default())
        .expect("req");
    // Duration::MAX goes on the wire as u64::MAX ms; the node must still answer
    let opts = BroadcastOptions::all().timeout(Duration::MAX);
    let acks = requester.broadcast_with_ack(ev("q"), opts).await.expect("acks").collect().await;
    assert!(acks.is_complete());
    assert_eq!(acks.value.len(), 1);
    assert_eq!(acks.value[0].result, Ok(crate::Value::from("ack:a1")));
}
