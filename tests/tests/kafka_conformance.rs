//! The conformance suite (every cluster operation across 3 nodes) over the real tansu
//! Kafka-protocol broker, in the static (default) and dynamic subscription modes, plus
//! the join guarantees of the Kafka transport: a node never delivers a record published
//! before it joined, never one twice, and a publish-only transport never consumes.
#![allow(clippy::print_stderr)] // progress lines for the test log

use std::sync::Arc;
use std::time::Duration;

use socketio_adapter_core::dialect::Dialect;
use socketio_adapter_core::{Channel, Transport, TransportEvent};
use socketio_adapter_kafka::{KafkaOptions, KafkaTransport};
use socketio_cluster_tests::conformance::{Backend, eventually, prefix, run};
use socketio_cluster_tests::{conformance_suite, env};
use tokio::sync::mpsc;

/// The tansu broker of `scripts/services.sh` (each case uses its own prefix, so its own topic).
struct Kafka {
    query: &'static str,
}

impl Kafka {
    fn url(&self, prefix: &str) -> String {
        format!("kafka://{}?prefix={prefix}&request_timeout_ms=3000{}", env("KAFKA_BROKERS"), self.query)
    }
}

impl Backend for Kafka {
    type T = KafkaTransport;

    fn name(&self) -> String {
        format!("kafka{}", self.query)
    }

    fn dialect(&self, prefix: &str) -> Arc<dyn Dialect> {
        KafkaOptions::parse(&self.url(prefix)).expect("url").dialect()
    }

    async fn connect(&self, prefix: &str) -> KafkaTransport {
        KafkaTransport::connect_url(&self.url(prefix)).await.expect("connect to Kafka")
    }
}

conformance_suite!(static_mode, super::Kafka { query: "" });
conformance_suite!(dynamic_mode, super::Kafka { query: "&subscription_mode=dynamic" });

fn url(prefix: &str, query: &str) -> String {
    format!("kafka://{}?prefix={prefix}{query}", env("KAFKA_BROKERS"))
}

/// Publishes `names` concurrently, so that the producer batches them (several records
/// per produce request: what makes tansu report a stale end offset).
async fn publish_batch(t: &KafkaTransport, channel: &str, names: impl Iterator<Item = String>) {
    let sends: Vec<_> = names.map(|n| t.publish(channel, n.into())).collect();
    for r in futures_util::future::join_all(sends).await {
        r.expect("publish");
    }
}

fn texts(got: &[TransportEvent]) -> Vec<String> {
    got.iter()
        .filter_map(|e| match e {
            TransportEvent::Message { payload, .. } => Some(String::from_utf8_lossy(payload).into_owned()),
            TransportEvent::Reconnected => None,
        })
        .collect()
}

/// A node that joins after batches were published delivers none of them, and every
/// later record exactly once; an emitter (publish only) never starts a consumer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_after_batches_deliver_only_new_records_once() {
    run(async {
        let prefix = prefix("join");
        let channel = format!("{prefix}#/#");
        // linger 20 ms: the concurrent publishes below travel as multi-record batches
        let emitter = KafkaTransport::connect_url(&url(&prefix, "&linger_ms=20")).await.expect("connect");
        for round in 0..3 {
            publish_batch(&emitter, &channel, (0..200).map(|i| format!("before-{round}-{i}"))).await;

            let node = KafkaTransport::connect_url(&url(&prefix, "")).await.expect("connect");
            let (tx, mut rx) = mpsc::channel(1024);
            node.subscribe(&[Channel::Exact(channel.clone())], tx).await.expect("subscribe");

            publish_batch(&emitter, &channel, (0..50).map(|i| format!("after-{round}-{i}"))).await;
            // a barrier published after everything else: once it is in, all is in
            let barrier = format!("barrier-{round}");
            emitter.publish(&channel, barrier.clone().into()).await.expect("publish");
            let mut got = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while !texts(&got).contains(&barrier) {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let event = tokio::time::timeout(left, rx.recv()).await.expect("barrier in time").expect("open");
                got.push(event);
            }
            let got = texts(&got);
            let before: Vec<&String> = got.iter().filter(|t| t.starts_with("before-")).collect();
            assert!(
                before.is_empty(),
                "round {round}: delivered {} records from before joining: {before:?}",
                before.len()
            );
            let mut after: Vec<&String> = got.iter().filter(|t| t.starts_with("after-")).collect();
            assert_eq!(after.len(), 50, "round {round}: {got:?}");
            after.sort();
            after.dedup();
            assert_eq!(after.len(), 50, "round {round}: duplicates");
            // nothing else trickles in (a replay would arrive right behind the barrier)
            emitter.publish(&channel, b"final".to_vec().into()).await.expect("publish");
            let next = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("final").expect("open");
            assert_eq!(texts(&[next]), ["final"], "round {round}");
            eprintln!("round {round}: {:?}", node.stats());
        }
        assert!(!emitter.is_consuming().await, "a publish-only transport started a consumer");
    })
    .await
}

/// Messages of one namespace keep their order (one partition per namespace), across
/// channels of that namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_namespace_keeps_its_order() {
    run(async {
        let prefix = prefix("order");
        let main = format!("{prefix}#/#");
        let room = format!("{prefix}#/#room-1#");
        let node = KafkaTransport::connect_url(&url(&prefix, "")).await.expect("connect");
        let (tx, mut rx) = mpsc::channel(1024);
        node.subscribe(&[Channel::Exact(main.clone()), Channel::Exact(room.clone())], tx).await.expect("subscribe");
        let emitter = KafkaTransport::connect_url(&url(&prefix, "&linger_ms=5")).await.expect("connect");
        for i in 0..200 {
            let ch = if i % 3 == 0 { &room } else { &main };
            emitter.publish(ch, i.to_string().into()).await.expect("publish");
        }
        let mut got = Vec::new();
        eventually("200 messages", Duration::from_secs(10), || {
            while let Ok(e) = rx.try_recv() {
                got.push(e);
            }
            got.len() >= 200
        })
        .await;
        let numbers: Vec<u32> = texts(&got).iter().map(|t| t.parse().expect("number")).collect();
        assert_eq!(numbers, (0..200).collect::<Vec<_>>());
    })
    .await
}

/// A missing topic is created with the configured partition count; with
/// `create_topic=false` the error names the topic and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_topics_are_created_or_named() {
    run(async {
        let prefix = prefix("topic");
        let err = KafkaTransport::connect_url(&url(&prefix, "&create_topic=false")).await.expect_err("no topic");
        let msg = err.to_string();
        assert!(msg.contains(&prefix) && msg.contains("create_topic=false"), "{msg}");
        let t = KafkaTransport::connect_url(&url(&prefix, "&partitions=3")).await.expect("created");
        assert_eq!(t.topic(), prefix);
        let (tx, _rx) = mpsc::channel(8);
        t.subscribe(&[Channel::Exact(format!("{prefix}#/#"))], tx).await.expect("subscribe");
        assert_eq!(t.assigned_partitions(), 3);
        KafkaTransport::connect_url(&url(&prefix, "&create_topic=false")).await.expect("exists now");
    })
    .await
}

/// `resubscribe` re-places the consumer: the subscriber hears `Reconnected`, and the
/// stream goes on with nothing lost and nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubscribe_replaces_the_consumer_without_gaps_or_duplicates() {
    run(async {
        let prefix = prefix("resub");
        let channel = format!("{prefix}#/#");
        let node = KafkaTransport::connect_url(&url(&prefix, "")).await.expect("connect");
        let (tx, mut rx) = mpsc::channel(1024);
        node.subscribe(&[Channel::Exact(channel.clone())], tx).await.expect("subscribe");
        let emitter = KafkaTransport::connect_url(&url(&prefix, "&linger_ms=5")).await.expect("connect");
        publish_batch(&emitter, &channel, (0..50).map(|i| format!("m-{i:03}"))).await;
        node.resubscribe().await.expect("resubscribe");
        publish_batch(&emitter, &channel, (50..100).map(|i| format!("m-{i:03}"))).await;
        let mut got = Vec::new();
        let mut reconnected = false;
        eventually("100 messages and Reconnected", Duration::from_secs(10), || {
            while let Ok(e) = rx.try_recv() {
                reconnected |= e == TransportEvent::Reconnected;
                got.push(e);
            }
            reconnected && texts(&got).len() >= 100
        })
        .await;
        emitter.publish(&channel, b"final".to_vec().into()).await.expect("publish");
        let next = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("final").expect("open");
        got.push(next);
        let mut texts = texts(&got);
        assert_eq!(texts.pop().as_deref(), Some("final"));
        texts.sort();
        assert_eq!(texts, (0..100).map(|i| format!("m-{i:03}")).collect::<Vec<_>>());
        assert_eq!(node.stats().reconnects, 1);
    })
    .await
}

/// One message at a time on an idle cluster arrives quickly (linger 1 ms; tansu answers
/// the consumer's long poll only after `fetch_wait_max_ms`, 20 ms); prints the median.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_latency_is_low() {
    run(async {
        let prefix = prefix("latency");
        let channel = format!("{prefix}#/#");
        let node = KafkaTransport::connect_url(&url(&prefix, "")).await.expect("connect");
        let (tx, mut rx) = mpsc::channel(64);
        node.subscribe(&[Channel::Exact(channel.clone())], tx).await.expect("subscribe");
        let emitter = KafkaTransport::connect_url(&url(&prefix, "")).await.expect("connect");
        let mut times = Vec::new();
        for i in 0..20 {
            let started = tokio::time::Instant::now();
            emitter.publish(&channel, i.to_string().into_bytes().into()).await.expect("publish");
            let e = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("in time").expect("open");
            assert_eq!(texts(&[e]), [i.to_string()]);
            times.push(started.elapsed());
        }
        times.sort();
        eprintln!("publish-to-delivery: median {:?}, max {:?}", times[10], times[19]);
        assert!(times[10] < Duration::from_millis(200), "median {:?}", times[10]);
    })
    .await
}
