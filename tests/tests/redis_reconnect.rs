//! Reconnection and subscription repair of the Redis transport, against real Redis:
//! a killed subscriber connection, subscriptions lost without a disconnect (repaired by the
//! health check, or on Redis Cluster by the unrequested-unsubscribe push), and a Redis
//! server restarted under a running cluster. Also `rediss://` against a TLS-only server
//! whose certificate a private CA signed.
//!
//! Its own test binary: it kills connections and restarts a private `redis-server`, which
//! must not disturb the other suites.

use std::time::Duration;

use socketio_adapter_core::{Adapter, BroadcastOptions, ClusterAdapter, ClusterConfig, EventPacket, Room, Transport};
use socketio_adapter_redis::{RedisOptions, RedisTransport};
use socketio_cluster_tests::conformance::{eventually, run};
use socketio_cluster_tests::node::free_port;
use socketio_cluster_tests::private_redis::PrivateRedis;
use socketio_cluster_tests::recorder::{Recorder, sid};
use socketio_cluster_tests::redis_cluster::{assign_slot, cluster_nodes, keyslot, live_masters};
use socketio_cluster_tests::tls::PrivateCa;
use socketio_cluster_tests::{env, redis_cluster_url};
use std::sync::Arc;

const WAIT: Duration = Duration::from_secs(15);

struct Node {
    adapter: ClusterAdapter<RedisTransport>,
    transport: RedisTransport,
    rec: Arc<Recorder>,
}

async fn node(url: &str, name: &str) -> Node {
    let opts = RedisOptions::parse(url).expect("url");
    let transport = RedisTransport::connect(&opts).await.expect("connect");
    let config = ClusterConfig::default()
        .with_request_timeout(Duration::from_secs(2))
        .with_heartbeat_interval(Duration::from_millis(200))
        .with_health_check_interval(Some(Duration::from_millis(300)));
    let rec = Recorder::new(name);
    let adapter = ClusterAdapter::new(transport.clone(), opts.dialect(), "/", rec.clone(), config).expect("config");
    adapter.init().await.expect("init");
    Node { adapter, transport, rec }
}

/// Two nodes; A has socket a1 in room1.
async fn pair(url: &str) -> (Node, Node) {
    let a = node(url, "A").await;
    let b = node(url, "B").await;
    a.adapter.add_all(&sid("a1"), &[Room::from("room1")]);
    eventually("room subscription", WAIT, || a.adapter.stats().room_channels_pending == 0).await;
    (a, b)
}

/// Broadcasts from `from` to room1 until `to` delivers it (messages published while a
/// connection is down are lost, as with any pub/sub): proves the path works again.
async fn flows(from: &Node, to: &Node, what: &str) {
    let event = format!("after-{what}");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        // errors while Redis is down are expected: keep trying
        let _ = from.adapter.broadcast(EventPacket::new(&event, vec![]), BroadcastOptions::all().to("room1")).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        if !to.rec.got(&event).is_empty() {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: broadcasts never flowed again");
    }
}

/// Requests and responses work: B fetches A's socket, both count 2 servers.
async fn requests_work(a: &Node, b: &Node, what: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let fetched = b.adapter.fetch_sockets(BroadcastOptions::all()).await;
        if let Ok(f) = &fetched
            && f.is_complete()
            && f.value.iter().any(|s| s.id == sid("a1"))
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: fetch_sockets never completed: {fetched:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // every channel is re-issued one by one after a reconnect: the count may lag the
    // first completed request by a moment
    loop {
        let counts = (a.adapter.server_count().await.expect("count"), b.adapter.server_count().await.expect("count"));
        if counts == (2, 2) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: server counts {counts:?}, want (2, 2)");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn url(base: &str, prefix: &str, query: &str) -> String {
    format!("{base}?prefix={prefix}&request_timeout_ms=2000{query}")
}

fn prefix() -> String {
    socketio_cluster_tests::conformance::prefix("reconnect")
}

async fn subscriber_killed(query: &str) {
    let (a, b) = pair(&url(&env("REDIS_URL"), &prefix(), query)).await;
    flows(&b, &a, "start").await;
    let id = a.transport.subscriber_client_id().await.expect("client id").expect("standalone");
    let client = redis::Client::open(env("REDIS_URL")).expect("client");
    let mut conn = client.get_multiplexed_async_connection().await.expect("connect");
    let killed: i64 =
        redis::cmd("CLIENT").arg("KILL").arg("ID").arg(id).query_async(&mut conn).await.expect("CLIENT KILL");
    assert_eq!(killed, 1);
    flows(&b, &a, "kill").await;
    requests_work(&a, &b, "kill").await;
    assert!(a.transport.stats().reconnects >= 1, "{:?}", a.transport.stats());
    let new_id = a.transport.subscriber_client_id().await.expect("client id").expect("standalone");
    assert_ne!(new_id, id, "a new subscriber connection");
}

async fn subscriptions_lost(base: &str, query: &str) {
    let (a, b) = pair(&url(base, &prefix(), query)).await;
    flows(&b, &a, "start").await;
    a.transport.lose_subscriptions_for_testing().await.expect("unsubscribe");
    flows(&b, &a, "lost subscriptions").await;
    requests_work(&a, &b, "lost subscriptions").await;
    let repaired = a.transport.stats().reconnects;
    assert!(repaired >= 1, "the transport restored its subscriptions: {:?}", a.transport.stats());
}

async fn server_restarted(query: &str) {
    let mut redis = PrivateRedis::start(free_port()).await;
    let base = format!("redis://127.0.0.1:{}", redis.port);
    let (a, b) = pair(&url(&base, &prefix(), query)).await;
    flows(&b, &a, "start").await;
    redis.stop().await;
    // down for a while: publishes fail with an error, nothing panics
    tokio::time::sleep(Duration::from_millis(500)).await;
    let down = b.adapter.broadcast(EventPacket::new("lost", vec![]), BroadcastOptions::all()).await;
    assert!(down.is_err(), "publishing while Redis is down is an error");
    let redis = PrivateRedis::start(redis.port).await;
    flows(&b, &a, "restart").await;
    requests_work(&a, &b, "restart").await;
    assert!(a.transport.stats().reconnects >= 1);
    assert!(b.transport.stats().reconnects >= 1);
    drop(redis);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_subscriber_killed() {
    run(subscriber_killed("")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_subscriber_killed() {
    run(subscriber_killed("&mode=sharded&subscription_mode=dynamic")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_subscriptions_lost_are_repaired_by_the_health_check() {
    run(subscriptions_lost(&env("REDIS_URL"), "")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_subscriptions_lost_are_repaired_by_the_health_check() {
    run(subscriptions_lost(&env("REDIS_URL"), "&mode=sharded&subscription_mode=dynamic")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_sharded_subscriptions_lost_are_repaired() {
    run(subscriptions_lost(&redis_cluster_url(), "&mode=sharded&subscription_mode=dynamic")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_server_restarted() {
    run(server_restarted("")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_server_restarted() {
    run(server_restarted("&mode=sharded&subscription_mode=dynamic")).await
}

/// `rediss://` with `tls_ca_file`: a cluster over a TLS-only redis-server, and the same
/// URL without the private CA fails with a certificate error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_private_ca() {
    run(async {
        let tls = PrivateCa::generate();
        let port = free_port();
        let (crt, key, ca) = (tls.server_cert(), tls.server_key(), tls.ca());
        let redis = PrivateRedis::start_with(
            port,
            &[
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--tls-cert-file",
                crt.to_str().expect("path"),
                "--tls-key-file",
                key.to_str().expect("path"),
                "--tls-ca-cert-file",
                ca.to_str().expect("path"),
                "--tls-auth-clients",
                "no",
            ],
        )
        .await;
        let base = format!("rediss://127.0.0.1:{port}");
        let with_ca = format!("&tls_ca_file={}", ca.display());
        for query in ["", "&mode=sharded"] {
            let (a, b) = pair(&url(&base, &prefix(), &format!("{with_ca}{query}"))).await;
            flows(&b, &a, "tls").await;
            requests_work(&a, &b, "tls").await;
        }
        let err = RedisTransport::connect_url(&url(&base, &prefix(), "&connect_timeout_ms=1000"))
            .await
            .expect_err("the server certificate is not signed by a web root");
        assert!(err.to_string().to_lowercase().contains("certificate"), "{err}");
        drop(redis);
    })
    .await
}

/// A room channel's slot moves to another master (as in resharding): the old owner
/// drops the shard subscription, the transport resubscribes where the slot now lives, and
/// broadcasts to the room flow again. The slot is moved back afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_sharded_slot_moved() {
    run(async {
        let first = env("REDIS_CLUSTER_URLS")
            .split(',')
            .next()
            .expect("a cluster node")
            .trim_start_matches("redis://")
            .to_owned();
        let prefix = prefix();
        let (a, b) = pair(&url(&redis_cluster_url(), &prefix, "&mode=sharded&subscription_mode=dynamic")).await;
        flows(&b, &a, "start").await;

        let channel = format!("{prefix}#/#room1#");
        let slot = keyslot(&first, &channel).await;
        let nodes = cluster_nodes(&first).await.expect("CLUSTER NODES");
        let masters = live_masters(&nodes);
        let owner = nodes.iter().find(|n| n.master && n.owns(slot)).expect("slot owner").id.clone();
        let target = masters.iter().find(|(id, _)| *id != owner).expect("another master").0.clone();
        let before = a.transport.stats().reconnects;
        assign_slot(&masters, slot, &target).await;
        let moved = async {
            flows(&b, &a, "slot moved").await;
            assert!(a.transport.stats().reconnects > before, "{:?}", a.transport.stats());
        };
        let result = tokio::time::timeout(WAIT, moved).await;
        assign_slot(&masters, slot, &owner).await;
        result.expect("repaired after the slot moved");
        flows(&b, &a, "slot moved back").await;
    })
    .await
}
