//! A broker that stalls under traffic (SIGSTOP 5 s, then SIGCONT) under 3 `sio-node`, on
//! private brokers only (never the shared ones: Redis, one master of a Redis Cluster,
//! RabbitMQ, the Kafka broker): the shared scenario is
//! `socketio_cluster_tests::stall` (nodes keep serving clients and `GET /health`, a
//! request made during the stall completes by its timeout with an error, publishes are
//! bounded, every node receives again within a bound after SIGCONT); each test here says
//! how to stall its broker and its bounds. The figures are printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::Duration;

use socketio_cluster_tests::conformance::prefix;
use socketio_cluster_tests::node::free_port;
use socketio_cluster_tests::private_redis::PrivateRedis;
use socketio_cluster_tests::rabbitmq::PrivateRabbitMq;
use socketio_cluster_tests::redis_cluster::PrivateCluster;
use socketio_cluster_tests::stall::{STALL, StallCase, stalled_broker_under_traffic};
use socketio_cluster_tests::tansu::PrivateTansu;

const REQUEST_TIMEOUT: Duration = Duration::from_millis(2000);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_redis_under_traffic() {
    let redis = PrivateRedis::start(free_port()).await;
    let case = StallCase {
        broker: "Redis".into(),
        url: format!("{}?mode=sharded", redis.url()),
        request_timeout: REQUEST_TIMEOUT,
        // the command timeout (2 s) and a margin
        publish_bound: Duration::from_millis(3500),
        recovery_bound: Duration::from_secs(10),
    };
    stalled_broker_under_traffic(&case, async || redis.signal("STOP").await, async || redis.signal("CONT").await).await;
}

/// One master of a private 6-node Redis Cluster stalls: the one serving the nodes' main
/// channel (`<prefix>#/#`, where broadcasts and requests go). Its `cluster-node-timeout`
/// (15 s) is longer than the stall, so no failover happens (asserted): the same master
/// serves the slot after SIGCONT, and the nodes recover on their own connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_redis_cluster_master_under_traffic() {
    let cluster = PrivateCluster::start(Duration::from_secs(15)).await;
    assert!(cluster.node_timeout > STALL * 2, "no failover during the stall");
    let prefix = prefix("stall");
    let master = cluster.owner_of(&format!("{prefix}#/#")).await;
    println!("Redis Cluster: stalling master {} (serves the main channel {prefix}#/#)", master.addr);
    let case = StallCase {
        broker: "Redis Cluster".into(),
        url: format!("{}?mode=sharded&prefix={prefix}", cluster.url()),
        request_timeout: REQUEST_TIMEOUT,
        // a command's timeout (2 s), then the transport's own bound on it (twice that)
        publish_bound: Duration::from_millis(4500),
        recovery_bound: Duration::from_secs(10),
    };
    stalled_broker_under_traffic(
        &case,
        async || cluster.signal(master.port, "STOP").await,
        async || cluster.signal(master.port, "CONT").await,
    )
    .await;
    let after = cluster.owner_of(&format!("{prefix}#/#")).await;
    assert_eq!(after.id, master.id, "no failover happened: the stalled master still serves the slot");
}

/// A private RabbitMQ node's Erlang VM (`beam.smp`, from the node's pid file) stalls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_rabbitmq_under_traffic() {
    let rabbit = tokio::task::block_in_place(|| PrivateRabbitMq::start_plain("stall"));
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", rabbit.vm_pid())).unwrap_or_default();
    assert_eq!(comm.trim(), "beam.smp", "the pid file names the Erlang VM");
    let case = StallCase {
        broker: "RabbitMQ".into(),
        url: format!("{}?operation_timeout_ms=2000", rabbit.url()),
        request_timeout: REQUEST_TIMEOUT,
        // a publish waits for its confirm at most operation_timeout_ms (2 s), and a margin
        publish_bound: Duration::from_millis(3500),
        recovery_bound: Duration::from_secs(15),
    };
    stalled_broker_under_traffic(&case, async || rabbit.signal("STOP"), async || rabbit.signal("CONT")).await;
}

/// The Kafka broker (a private tansu) stalls. A publish waits for the broker up to
/// `message_timeout_ms` (3 s here), then the transport checks the topic (a metadata
/// request, up to `connect_timeout_ms`, 2 s); a cluster request's timeout bounds its own
/// publish, so a request ends at its timeout (asserted more tightly than the shared bound).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_kafka_broker_under_traffic() {
    const MESSAGE_TIMEOUT_MS: u64 = 3000;
    const CONNECT_TIMEOUT_MS: u64 = 2000;
    let broker = PrivateTansu::start(free_port()).await;
    let case = StallCase {
        broker: "Kafka".into(),
        url: format!(
            "kafka://{}?prefix={}&message_timeout_ms={MESSAGE_TIMEOUT_MS}&connect_timeout_ms={CONNECT_TIMEOUT_MS}\
             &heartbeat_interval_ms=1000",
            broker.brokers(),
            prefix("stall")
        ),
        request_timeout: REQUEST_TIMEOUT,
        // the message timeout, the topic check after it, and a margin
        publish_bound: Duration::from_millis(MESSAGE_TIMEOUT_MS + CONNECT_TIMEOUT_MS + 2000),
        recovery_bound: Duration::from_secs(15),
    };
    let figures =
        stalled_broker_under_traffic(&case, async || broker.signal("STOP").await, async || broker.signal("CONT").await)
            .await;
    let bound = REQUEST_TIMEOUT + Duration::from_secs(1);
    assert!(
        figures.request < bound,
        "Kafka: the request took {:?}, over its timeout and a margin ({bound:?})",
        figures.request
    );
}
