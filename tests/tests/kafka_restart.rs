//! A broker restart under a running cluster: a private tansu (memory storage, so the
//! restart also loses every topic and offset) on a free port, two nodes, tansu killed
//! and started again on the same port; broadcasts flow again both ways, the nodes count
//! each other again, and nothing is delivered twice.
#![allow(clippy::print_stderr)] // progress lines for the test log

use std::sync::Arc;
use std::time::Duration;

use socketio_adapter_core::dialect::Dialect;
use socketio_adapter_core::{Adapter, BroadcastOptions, Channel, EventPacket, Transport, TransportEvent};
use socketio_adapter_kafka::{KafkaOptions, KafkaTransport};
use socketio_cluster_tests::conformance::{Backend, converge, eventually, node, prefix, run};
use socketio_cluster_tests::node::free_port;
use socketio_cluster_tests::recorder::sid;
use socketio_cluster_tests::tansu::PrivateTansu;

/// The private broker; short timeouts so that an outage is noticed and bridged quickly.
struct Private {
    port: u16,
}

impl Private {
    fn url(&self, prefix: &str) -> String {
        format!(
            "kafka://127.0.0.1:{}?prefix={prefix}&request_timeout_ms=2000&message_timeout_ms=5000&connect_timeout_ms=2000",
            self.port
        )
    }
}

impl Backend for Private {
    type T = KafkaTransport;

    fn name(&self) -> String {
        "kafka-private".into()
    }

    fn dialect(&self, prefix: &str) -> Arc<dyn Dialect> {
        KafkaOptions::parse(&self.url(prefix)).expect("url").dialect()
    }

    async fn connect(&self, prefix: &str) -> KafkaTransport {
        KafkaTransport::connect_url(&self.url(prefix)).await.expect("connect to the private tansu")
    }
}

/// Killed and at once started again (the new broker listens ~20 ms later).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_flow_again_after_a_quick_broker_restart() {
    restart(Duration::ZERO).await
}

/// Down for a second: publishes fail meanwhile, then the cluster recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_flow_again_after_a_broker_outage() {
    restart(Duration::from_secs(1)).await
}

async fn restart(downtime: Duration) {
    run(async {
        let backend = Private { port: free_port() };
        let mut broker = PrivateTansu::start(backend.port).await;
        let prefix = prefix("restart");
        let nodes = [node(&backend, &prefix, "/", "A").await, node(&backend, &prefix, "/", "B").await];
        nodes[0].adapter.add_all(&sid("a1"), &[]);
        nodes[1].adapter.add_all(&sid("b1"), &[]);
        converge(&nodes, 2).await;
        nodes[0]
            .adapter
            .broadcast(EventPacket::new("before", vec![]), BroadcastOptions::all())
            .await
            .expect("broadcast");
        eventually("broadcast before the restart", Duration::from_secs(5), || nodes[1].sockets.got("before") == ["b1"])
            .await;

        // a publish-only emitter, heard through an extra subscription on A's transport
        let emitter = backend.connect(&prefix).await;
        let probe = format!("{prefix}#/probe#");
        let (tx, mut heard) = tokio::sync::mpsc::channel(64);
        nodes[0].adapter.core().transport().subscribe(&[Channel::Exact(probe.clone())], tx).await.expect("subscribe");
        emitter.publish(&probe, b"e-0".to_vec().into()).await.expect("publish");
        assert_eq!(next_message(&mut heard).await, "e-0");

        broker.stop().await;
        let down = tokio::time::Instant::now();
        // the outage itself (not a wait for a result)
        tokio::time::sleep(downtime).await;
        broker.restart().await;
        eprintln!("tansu restarted after {:?}", down.elapsed());

        // publish from both sides until each side receives the other's broadcast
        let started = tokio::time::Instant::now();
        let mut round = 0;
        loop {
            assert!(started.elapsed() < Duration::from_secs(40), "broadcasts did not flow again within 40 s");
            round += 1;
            let (ea, eb) = (format!("from-a-{round}"), format!("from-b-{round}"));
            for (n, ev) in [(&nodes[0], &ea), (&nodes[1], &eb)] {
                // a publish waits for the broker up to message_timeout_ms (5 s)
                let sent = tokio::time::timeout(
                    Duration::from_secs(6),
                    n.adapter.broadcast(EventPacket::new(ev, vec![]), BroadcastOptions::all()),
                )
                .await;
                if !matches!(sent, Ok(Ok(()))) {
                    eprintln!("round {round}: broadcast from {} not accepted yet: {sent:?}", n.sockets.name);
                }
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
            while tokio::time::Instant::now() < deadline {
                if nodes[1].sockets.got(&ea) == ["b1"] && nodes[0].sockets.got(&eb) == ["a1"] {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if nodes[1].sockets.got(&ea) == ["b1"] && nodes[0].sockets.got(&eb) == ["a1"] {
                break;
            }
        }
        eprintln!("broadcasts flow again {:?} after the restart (round {round})", down.elapsed());
        for n in &nodes {
            let stats = n.adapter.core().transport().stats();
            eprintln!("{}: {stats:?}", n.sockets.name);
            assert!(stats.reconnects >= 1, "{}: the consumer was never re-placed", n.sockets.name);
        }
        converge(&nodes, 2).await;

        // steady again: one more broadcast each way arrives, once. Each node also publishes
        // a barrier behind its broadcast (same partition, so in order): when a node got the
        // other's barrier, it got the other's broadcast too (its own barrier it delivers
        // locally, so that one would prove nothing)
        for (n, event) in
            [(&nodes[0], "after-a"), (&nodes[1], "after-b"), (&nodes[0], "barrier-a"), (&nodes[1], "barrier-b")]
        {
            n.adapter.broadcast(EventPacket::new(event, vec![]), BroadcastOptions::all()).await.expect("broadcast");
        }
        eventually("broadcasts after recovery", Duration::from_secs(5), || {
            nodes[0].sockets.got("barrier-b").len() == 1 && nodes[1].sockets.got("barrier-a").len() == 1
        })
        .await;
        for event in ["after-a", "after-b"] {
            assert_eq!(nodes[0].sockets.got(event), ["a1"], "{event}");
            assert_eq!(nodes[1].sockets.got(event), ["b1"], "{event}");
        }
        for r in 1..=round {
            assert!(nodes[1].sockets.got(&format!("from-a-{r}")).len() <= 1, "from-a-{r} delivered twice");
            assert!(nodes[0].sockets.got(&format!("from-b-{r}")).len() <= 1, "from-b-{r} delivered twice");
        }

        // the emitter recovers too (its fenced producer is replaced after a timed-out publish)
        let mut i = 0;
        loop {
            assert!(started.elapsed() < Duration::from_secs(50), "the emitter did not recover");
            i += 1;
            let text = format!("e-{i}");
            let sent =
                tokio::time::timeout(Duration::from_secs(6), emitter.publish(&probe, text.clone().into_bytes().into()))
                    .await;
            if matches!(sent, Ok(Ok(()))) && next_message(&mut heard).await == text {
                break;
            }
            eprintln!("emitter publish {i}: {sent:?}");
        }
        eprintln!("the emitter publishes again {:?} after the restart", down.elapsed());
        assert!(!emitter.is_consuming().await, "a publish-only transport started a consumer");
        drop(nodes);
        broker.stop().await;
    })
    .await
}

/// The next message on `rx` (skipping `Reconnected`), as text.
async fn next_message(rx: &mut tokio::sync::mpsc::Receiver<TransportEvent>) -> String {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("in time").expect("open");
        if let TransportEvent::Message { payload, .. } = event {
            return String::from_utf8_lossy(&payload).into_owned();
        }
    }
}
