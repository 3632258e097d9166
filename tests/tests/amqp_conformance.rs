//! The conformance suite (every cluster operation across 3 nodes) over a real RabbitMQ, in
//! the static and dynamic subscription modes, plus the AMQP-specific checks: a publish-only
//! transport declares no queue, dropped nodes leave no queue behind, long room names route.
//!
//! Every case uses its own prefix, hence its own exchange.

use std::sync::Arc;
use std::time::Duration;

use socketio_adapter_amqp::{AmqpOptions, AmqpTransport};
use socketio_adapter_core::dialect::{Dialect, EMITTER_UID};
use socketio_adapter_core::{
    Adapter, Body, BroadcastOptions, Channel, ClusterAdapter, EventPacket, Message, Transport, TransportEvent,
};
use socketio_cluster_tests::conformance::{Backend, eventually, prefix, run};
use socketio_cluster_tests::rabbitmq::shared_ctl as rabbitmqctl;
use socketio_cluster_tests::recorder::{Recorder, sid};
use socketio_cluster_tests::{conformance_suite, env};

/// RabbitMQ reached through `AMQP_ADDR` (without prefix: each case adds its own).
struct Amqp {
    name: &'static str,
    query: &'static str,
}

fn url(prefix: &str, query: &str) -> String {
    format!("{}?prefix={prefix}&request_timeout_ms=3000{query}", env("AMQP_ADDR"))
}

impl Backend for Amqp {
    type T = AmqpTransport;

    fn name(&self) -> String {
        self.name.to_owned()
    }

    fn dialect(&self, prefix: &str) -> Arc<dyn Dialect> {
        AmqpOptions::parse(&url(prefix, self.query)).expect("url").dialect()
    }

    async fn connect(&self, prefix: &str) -> AmqpTransport {
        AmqpTransport::connect_url(&url(prefix, self.query)).await.expect("connect to RabbitMQ")
    }
}

conformance_suite!(dynamic, super::Amqp { name: "amqp-dynamic", query: "&subscription_mode=dynamic" });
conformance_suite!(static_mode, super::Amqp { name: "amqp-static", query: "&subscription_mode=static" });
conformance_suite!(
    private_no_confirms,
    super::Amqp { name: "amqp-private", query: "&subscription_mode=dynamic-private&confirms=false&prefetch=8" }
);

/// A user of its own vhost with the permissions SECURITY.md documents (the exchanges of
/// the prefix and the server-named queues), created once per process: the whole suite
/// must pass with them and nothing more.
const LIMITED_USER: &str = "sio-test-limited";
const LIMITED_VHOST: &str = "sio-test-limited";
const LIMITED_PERMISSIONS: &str = r"^(sio-test-.*|amq\.gen-.*)$";

fn limited_url(prefix: &str, query: &str) -> String {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rabbitmqctl(&["add_vhost", LIMITED_VHOST]);
        let _ = rabbitmqctl(&["add_user", LIMITED_USER, "limited-pw"]);
        rabbitmqctl(&["change_password", LIMITED_USER, "limited-pw"]).expect("password");
        rabbitmqctl(&[
            "set_permissions",
            "-p",
            LIMITED_VHOST,
            LIMITED_USER,
            LIMITED_PERMISSIONS,
            LIMITED_PERMISSIONS,
            LIMITED_PERMISSIONS,
        ])
        .expect("set_permissions");
    });
    let host = amqp_host();
    format!("amqp://{LIMITED_USER}:limited-pw@{host}/{LIMITED_VHOST}?prefix={prefix}&request_timeout_ms=3000{query}")
}

/// `host:port` of `AMQP_ADDR`, for URLs with other credentials and vhosts.
fn amqp_host() -> String {
    let url = AmqpOptions::parse(&env("AMQP_ADDR")).expect("AMQP_ADDR");
    format!("{}:{}", url.uri.authority.host, url.uri.authority.port)
}

/// [`Amqp`] as the limited user in its own vhost.
struct Limited(Amqp);

impl Backend for Limited {
    type T = AmqpTransport;

    fn name(&self) -> String {
        format!("{} (limited user)", self.0.name)
    }

    fn dialect(&self, prefix: &str) -> Arc<dyn Dialect> {
        AmqpOptions::parse(&limited_url(prefix, self.0.query)).expect("url").dialect()
    }

    async fn connect(&self, prefix: &str) -> AmqpTransport {
        AmqpTransport::connect_url(&limited_url(prefix, self.0.query)).await.expect("connect as the limited user")
    }
}

conformance_suite!(
    limited_user,
    super::Limited(super::Amqp { name: "amqp-dynamic", query: "&subscription_mode=dynamic" })
);

/// A user without rights on the node's queue gets one clear error at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_queue_rights_gets_a_clear_error() {
    run(async {
        let vhost = format!("sio-test-narrow-{:08x}", fastrand::u32(..));
        rabbitmqctl(&["add_vhost", &vhost]).expect("add_vhost");
        let _ = rabbitmqctl(&["add_user", "sio-test-narrow", "narrow-pw"]);
        rabbitmqctl(&["change_password", "sio-test-narrow", "narrow-pw"]).expect("password");
        let only = r"^sio-test-.*$";
        rabbitmqctl(&["set_permissions", "-p", &vhost, "sio-test-narrow", only, only, only]).expect("set_permissions");
        let host = amqp_host();
        let url = format!("amqp://sio-test-narrow:narrow-pw@{host}/{vhost}?prefix={}", prefix("narrow"));
        let opts = AmqpOptions::parse(&url).expect("url");
        let transport = AmqpTransport::connect(&opts).await.expect("connecting and declaring the exchange is allowed");
        let adapter = ClusterAdapter::new(transport, opts.dialect(), "/", Recorder::new("A"), opts.cluster_config())
            .expect("config");
        let e = socketio_adapter_core::error_chain(&adapter.init().await.expect_err("no rights on its queue"));
        assert!(e.contains("ACCESS_REFUSED") && e.contains("queue"), "{e}");
        assert!(!e.contains("narrow-pw"), "password shown: {e}");
        let _ = rabbitmqctl(&["delete_vhost", &vhost]);
    })
    .await
}

/// The queue names RabbitMQ has right now, from `rabbitmqctl list_queues`.
fn broker_queues() -> Vec<String> {
    let out = rabbitmqctl(&["list_queues", "-q", "--no-table-headers", "name"]).expect("list_queues");
    out.lines().map(|l| l.trim().to_owned()).filter(|l| !l.is_empty()).collect()
}

/// A publish-only transport (an emitter) declares no queue; a node declares one on its
/// first subscribe; dropping nodes deletes their queues.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_are_lazy_and_die_with_their_node() {
    run(async {
        let prefix = prefix("amqp-queues");
        let opts = AmqpOptions::parse(&url(&prefix, "")).expect("url");
        let emitter = AmqpTransport::connect(&opts).await.expect("connect");
        emitter.publish(&format!("{prefix}#/#"), "nobody listens".into()).await.expect("publish without a queue");
        assert_eq!(emitter.queue_name(), None, "publish-only use declared a queue");

        let mut names = Vec::new();
        let mut nodes = Vec::new();
        for name in ["A", "B", "C"] {
            let transport = AmqpTransport::connect(&opts).await.expect("connect");
            let rec = Recorder::new(name);
            let adapter =
                ClusterAdapter::new(transport.clone(), opts.dialect(), "/", rec.clone(), opts.cluster_config())
                    .expect("config");
            adapter.init().await.expect("init");
            names.push(transport.queue_name().expect("a node has a queue"));
            nodes.push((adapter, transport, rec));
        }
        let queues = broker_queues();
        for q in &names {
            assert!(q.starts_with("amq.gen-"), "server-named queue: {q}");
            assert!(queues.contains(q), "{q} not on the broker: {queues:?}");
        }
        // an emitter speaks the same envelope: encode with the dialect and publish raw
        nodes[2].0.add_all(&sid("c1"), &[]);
        let msg = Message::new(
            Some(EMITTER_UID.to_owned()),
            "/",
            Body::Broadcast { packet: EventPacket::new("from-emitter", vec![]), opts: BroadcastOptions::all() },
        );
        let out = opts.dialect().encode(&msg).expect("encode");
        emitter.publish(&out.channel, out.payload).await.expect("publish");
        eventually("the emitter's broadcast reaches c1", Duration::from_secs(5), || {
            nodes[2].2.got("from-emitter") == ["c1"]
        })
        .await;
        assert_eq!(emitter.queue_name(), None, "publish-only use declared a queue");
        drop(nodes);
        eventually("the nodes' queues are deleted", Duration::from_secs(10), || {
            let queues = broker_queues();
            names.iter().all(|q| !queues.contains(q))
        })
        .await;
        assert_eq!(emitter.queue_name(), None);
    })
    .await
}

/// Channel names over 255 bytes (long room names) route through their mapped routing key
/// and arrive under their own name; `resubscribe` rebuilds the queue and its bindings and
/// says so with `Reconnected`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_channels_and_resubscribe() {
    run(async {
        let prefix = prefix("amqp-long");
        let opts = AmqpOptions::parse(&url(&prefix, "")).expect("url");
        let node = AmqpTransport::connect(&opts).await.expect("connect");
        let publisher = AmqpTransport::connect(&opts).await.expect("connect");
        let long = format!("{prefix}#/#{}#", "ä".repeat(300));
        let short = format!("{prefix}#/#");
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        node.subscribe(&[Channel::Exact(long.clone()), Channel::Exact(short.clone())], tx).await.expect("subscribe");
        publisher.publish(&long, "to the long one".into()).await.expect("publish");
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("in time").expect("event");
        assert_eq!(got, TransportEvent::Message { channel: long.clone(), payload: "to the long one".into() });

        let before = node.queue_name().expect("queue");
        node.resubscribe().await.expect("resubscribe");
        let got = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("in time").expect("event");
        assert_eq!(got, TransportEvent::Reconnected);
        let after = node.queue_name().expect("queue");
        assert_ne!(before, after, "a new queue");
        assert_eq!(node.stats().reconnects, 1);
        publisher.publish(&short, "again".into()).await.expect("publish");
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("in time").expect("event");
        assert_eq!(got, TransportEvent::Message { channel: short, payload: "again".into() });
    })
    .await
}

/// A wrong password is a clear error that does not show the password; a pattern
/// subscription is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_errors() {
    run(async {
        let addr = env("AMQP_ADDR").replace("guest:guest@", "guest:wrong-pw@");
        let err = AmqpTransport::connect_url(&addr).await.expect_err("wrong password").to_string();
        assert!(!err.contains("wrong-pw"), "password shown: {err}");
        assert!(err.contains("connect to"), "{err}");

        let t = AmqpTransport::connect_url(&url(&prefix("amqp-pattern"), "")).await.expect("connect");
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        let err = t.subscribe(&[Channel::Pattern("p#*".into())], tx).await.expect_err("pattern").to_string();
        assert!(err.contains("pattern"), "{err}");
        assert_eq!(t.server_count("x").await.expect("count"), None);
    })
    .await
}

/// An operator deletes a node's queue: the broker cancels the consumer, the node
/// re-establishes its queue and bindings and receives again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_deleted_by_an_operator() {
    run(async {
        let prefix = prefix("amqp-deleted");
        let opts = AmqpOptions::parse(&url(&prefix, "")).expect("url");
        let node = AmqpTransport::connect(&opts).await.expect("connect");
        let publisher = AmqpTransport::connect(&opts).await.expect("connect");
        let main = format!("{prefix}#/#");
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        node.subscribe(&[Channel::Exact(main.clone())], tx).await.expect("subscribe");
        let queue = node.queue_name().expect("queue");
        rabbitmqctl(&["delete_queue", &queue]).expect("delete_queue");
        let got = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("in time").expect("event");
        assert_eq!(got, TransportEvent::Reconnected);
        assert_ne!(node.queue_name().expect("queue"), queue);
        publisher.publish(&main, "still here".into()).await.expect("publish");
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("in time").expect("event");
        assert_eq!(got, TransportEvent::Message { channel: main, payload: "still here".into() });
    })
    .await
}

/// A subscriber that does not drain: the process holds at most the prefetch window, the
/// broker at most `max_queue_length` messages (oldest dropped); once it drains, the
/// newest messages arrive and nothing beyond those bounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_node_is_bounded() {
    run(async {
        let prefix = prefix("amqp-bounded");
        let opts = AmqpOptions::parse(&url(&prefix, "&prefetch=5&max_queue_length=20")).expect("url");
        let node = AmqpTransport::connect(&opts).await.expect("connect");
        let publisher = AmqpTransport::connect(&opts).await.expect("connect");
        let main = format!("{prefix}#/#");
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        node.subscribe(&[Channel::Exact(main.clone())], tx).await.expect("subscribe");
        // 0..=199, then 200 as the last one: ordered per publisher, so draining until 200
        // arrives has seen everything that was kept
        for i in 0..=200u32 {
            publisher.publish(&main, i.to_string().into()).await.expect("publish");
        }
        let mut got = Vec::new();
        while got.last() != Some(&200) {
            match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("in time") {
                Some(TransportEvent::Message { payload, .. }) => {
                    got.push(String::from_utf8(payload.to_vec()).expect("utf8").parse::<u32>().expect("number"))
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        // 1 in the sink + 5 unacked in flight + at most 20 kept by the broker
        assert!(got.len() <= 26, "{} delivered: {got:?}", got.len());
        assert!(got.len() >= 20, "{} delivered: {got:?}", got.len());
        assert!(got.windows(2).all(|w| w[0] < w[1]), "in order: {got:?}");
    })
    .await
}

/// Garbage on a node's channels (not the envelope, not UTF-8, empty) is dropped by the
/// dialect with a log line; the node keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_payloads_are_dropped() {
    run(async {
        let prefix = prefix("amqp-garbage");
        let opts = AmqpOptions::parse(&url(&prefix, "")).expect("url");
        let rec = Recorder::new("A");
        let transport = AmqpTransport::connect(&opts).await.expect("connect");
        let adapter =
            ClusterAdapter::new(transport, opts.dialect(), "/", rec.clone(), opts.cluster_config()).expect("config");
        adapter.init().await.expect("init");
        adapter.add_all(&sid("a1"), &[]);
        let other = AmqpTransport::connect(&opts).await.expect("connect");
        let main = format!("{prefix}#/#");
        for garbage in [&b""[..], b"{", b"\xff\xfe\x00", b"{\"type\":3}", b"\x93\x01\x02"] {
            other.publish(&main, garbage.to_vec().into()).await.expect("publish garbage");
        }
        let msg = Message::new(
            Some(EMITTER_UID.to_owned()),
            "/",
            Body::Broadcast { packet: EventPacket::new("fine", vec![]), opts: BroadcastOptions::all() },
        );
        let out = opts.dialect().encode(&msg).expect("encode");
        other.publish(&out.channel, out.payload).await.expect("publish");
        eventually("a valid message after garbage", Duration::from_secs(5), || rec.got("fine") == ["a1"]).await;
    })
    .await
}
