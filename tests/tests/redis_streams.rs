//! Redis Streams mode: resume, not loss. A node whose stream reader loses its connection
//! (CLIENT KILL, or Redis restarted with persistence) while a requester keeps publishing
//! gets every broadcast exactly once and in order; when the stream was trimmed past it
//! while it was away, the transport counts exactly the entries it never got.
//!
//! Its own test binary: it kills connections and restarts a private `redis-server`.

use std::sync::Arc;
use std::time::Duration;

use socketio_adapter_core::dialect::EMITTER_UID;
use socketio_adapter_core::{
    Adapter, Backoff, BroadcastOptions, ClusterAdapter, ClusterConfig, ClusterCore, EventPacket, Transport, Value,
};
use socketio_adapter_redis::{RedisOptions, RedisTransport};
use socketio_cluster_tests::conformance::{eventually, prefix, run};
use socketio_cluster_tests::env;
use socketio_cluster_tests::node::free_port;
use socketio_cluster_tests::private_redis::PrivateRedis;
use socketio_cluster_tests::recorder::{Recorder, sid};
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(30);

struct Node {
    _adapter: ClusterAdapter<RedisTransport>,
    transport: RedisTransport,
    rec: Arc<Recorder>,
}

async fn node(url: &str) -> Node {
    let opts = RedisOptions::parse(url).expect("url");
    let transport = RedisTransport::connect(&opts).await.expect("connect");
    let rec = Recorder::new("A");
    let adapter = ClusterAdapter::new(transport.clone(), opts.dialect(), "/", rec.clone(), opts.cluster_config())
        .expect("config");
    adapter.init().await.expect("init");
    adapter.add_all(&sid("a1"), &[]);
    Node { _adapter: adapter, transport, rec }
}

async fn requester(url: &str) -> Arc<ClusterCore<RedisTransport>> {
    let opts = RedisOptions::parse(url).expect("url");
    let transport = RedisTransport::connect(&opts).await.expect("connect");
    let core = ClusterCore::requester(transport, opts.dialect(), "/", EMITTER_UID.into(), ClusterConfig::default())
        .expect("config");
    Arc::new(core)
}

fn seq(n: u64) -> EventPacket {
    EventPacket::new("seq", vec![Value::from(n)])
}

/// The sequence numbers `node` delivered, in delivery order.
fn delivered(node: &Node) -> Vec<u64> {
    node.rec.packets("seq").iter().map(|p| p.args[0].as_u64().expect("a number")).collect()
}

/// Publishes `range` in order, one at a time, retrying a failed publish (Redis down) of
/// the same number; returns how many publishes failed (each may or may not have been
/// appended: a reply lost with the connection).
fn publish(
    emitter: Arc<ClusterCore<RedisTransport>>,
    range: std::ops::Range<u64>,
    pause_every: u64,
) -> JoinHandle<u64> {
    tokio::spawn(async move {
        let mut failed = 0;
        for n in range {
            while emitter.broadcast(seq(n), BroadcastOptions::all()).await.is_err() {
                failed += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if n % pause_every == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        failed
    })
}

async fn admin(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url).expect("client").get_multiplexed_async_connection().await.expect("connect")
}

async fn kill(conn: &mut redis::aio::MultiplexedConnection, id: i64) {
    let killed: i64 = redis::cmd("CLIENT").arg("KILL").arg("ID").arg(id).query_async(conn).await.expect("CLIENT KILL");
    assert_eq!(killed, 1, "client {id} killed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_reader_resumes_exactly_once_in_order() {
    run(async {
        let p = prefix("streams-kill");
        let url = format!("{}?mode=streams&prefix={p}&stream={p}", env("REDIS_URL"));
        let a = node(&url).await;
        let total = 3000;
        let publisher = publish(requester(&url).await, 0..total, 10);
        let mut conn = admin(&env("REDIS_URL")).await;
        let mut killed = Vec::new();
        for round in 1..=3u64 {
            eventually("deliveries before the kill", WAIT, || delivered(&a).len() as u64 >= round * 600).await;
            let ids = a.transport.stream_reader_client_ids().await;
            assert_eq!(ids.len(), 1, "one stream, one reader");
            assert!(!killed.contains(&ids[0]), "a new reader connection after each kill");
            kill(&mut conn, ids[0]).await;
            killed.push(ids[0]);
        }
        // the pub/sub side too: it carries no broadcasts here, and must not disturb them
        let sub = a.transport.subscriber_client_id().await.expect("id").expect("standalone");
        kill(&mut conn, sub).await;
        assert_eq!(publisher.await.expect("publisher"), 0, "Redis stayed up: no publish failed");
        eventually("every delivery", WAIT, || delivered(&a).len() as u64 >= total).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(delivered(&a), (0..total).collect::<Vec<_>>(), "exactly once, in order");
        let stats = a.transport.stats();
        assert!(stats.reconnects >= 4, "{stats:?}");
        assert_eq!(stats.trimmed_unread, 0, "{stats:?}");
        let _: () = redis::cmd("DEL").arg(&p).query_async(&mut conn).await.expect("DEL");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_trimmed_while_away_are_counted_exactly() {
    run(async {
        let p = prefix("streams-gap");
        // MAXLEN ~ 50: Redis trims whole nodes of 100 entries, keeping between 50 and ~150
        let url = format!("{}?mode=streams&prefix={p}&stream={p}&maxlen=50&read_count=40", env("REDIS_URL"));
        let a = node(&url).await;
        // the reader stays away 3 s after its connection dies
        a.transport.set_backoff(Backoff::new(Duration::from_secs(3), Duration::from_secs(3)).with_jitter(0.0));
        let emitter = requester(&url).await;
        assert_eq!(publish(Arc::clone(&emitter), 0..100, 1000).await.expect("publisher"), 0);
        eventually("the first 100", WAIT, || delivered(&a).len() == 100).await;
        let mut conn = admin(&env("REDIS_URL")).await;
        let ids = a.transport.stream_reader_client_ids().await;
        kill(&mut conn, ids[0]).await;
        let started = tokio::time::Instant::now();
        assert_eq!(publish(emitter, 100..2100, 1000).await.expect("publisher"), 0);
        assert!(started.elapsed() < Duration::from_secs(3), "published while the reader was away");
        eventually("caught up", WAIT, || {
            let got = delivered(&a);
            got.last() == Some(&2099) && got.len() as u64 + a.transport.stats().trimmed_unread >= 2100
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let got = delivered(&a);
        let trimmed = a.transport.stats().trimmed_unread;
        assert!(trimmed >= 1800, "most of the 2000 were trimmed: {trimmed}");
        assert_eq!(got.len() as u64 + trimmed, 2100, "every entry delivered or counted as trimmed");
        assert_eq!(&got[..100], &(0..100).collect::<Vec<_>>()[..]);
        assert!(got.windows(2).all(|w| w[0] < w[1]), "in order, no duplicates");
        // what was kept is the newest: a contiguous tail
        assert_eq!(&got[100..], &(2100 - (got.len() as u64 - 100)..2100).collect::<Vec<_>>()[..]);
        let _: () = redis::cmd("DEL").arg(&p).query_async(&mut conn).await.expect("DEL");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_with_persistence_resumes() {
    run(async {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("sio-streams-aof-{port}"));
        std::fs::create_dir_all(&dir).expect("dir");
        let args = |port: u16| {
            let dir = dir.to_string_lossy().into_owned();
            vec!["--port".to_owned(), port.to_string(), "--dir".into(), dir, "--appendonly".into(), "yes".into()]
        };
        let start = |port: u16| {
            let args = args(port);
            async move {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                PrivateRedis::start_with(port, &[&args[..], &["--appendfsync", "always"]].concat()).await
            }
        };
        let mut redis = start(port).await;
        let url = format!("redis://127.0.0.1:{port}?mode=streams&prefix=p&stream=s&connect_timeout_ms=500");
        let a = node(&url).await;
        // the reader stays away 2 s after its connection dies
        a.transport.set_backoff(Backoff::new(Duration::from_secs(2), Duration::from_secs(2)).with_jitter(0.0));
        let emitter = requester(&url).await;
        let total = 1200;
        assert_eq!(publish(Arc::clone(&emitter), 0..300, 10).await.expect("publisher"), 0);
        eventually("deliveries before the restart", WAIT, || delivered(&a).len() == 300).await;
        // the reader goes away; 500 more are appended (and persisted) before Redis dies
        let ids = a.transport.stream_reader_client_ids().await;
        kill(&mut admin(&format!("redis://127.0.0.1:{port}")).await, ids[0]).await;
        assert_eq!(publish(Arc::clone(&emitter), 300..800, 10).await.expect("publisher"), 0);
        redis.stop().await;
        let publisher = publish(emitter, 800..total, 10);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let redis = start(port).await;
        let failed = publisher.await.expect("publisher");
        assert!(failed > 0, "publishes failed while Redis was down");
        eventually("every number", WAIT, || {
            let mut got = delivered(&a);
            got.sort_unstable();
            got.dedup();
            got.len() as u64 >= total
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let got = delivered(&a);
        let mut unique = got.clone();
        unique.dedup();
        assert_eq!(unique, (0..total).collect::<Vec<_>>(), "every number, in order");
        // a publish whose reply was lost with the connection may have been appended and retried
        let duplicates = got.len() - unique.len();
        assert!(duplicates as u64 <= failed, "{duplicates} duplicates for {failed} failed publishes");
        assert_eq!(a.transport.stats().trimmed_unread, 0);
        drop(redis);
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await
}

/// The master (its port) serving each slot range, from `CLUSTER SLOTS`.
async fn slot_owners(conn: &mut redis::aio::MultiplexedConnection) -> Vec<(i64, i64, i64)> {
    let slots: redis::Value = redis::cmd("CLUSTER").arg("SLOTS").query_async(conn).await.expect("CLUSTER SLOTS");
    let redis::Value::Array(ranges) = slots else { panic!("CLUSTER SLOTS: {slots:?}") };
    ranges
        .iter()
        .map(|r| match r {
            redis::Value::Array(r) => match (&r[0], &r[1], &r[2]) {
                (redis::Value::Int(a), redis::Value::Int(b), redis::Value::Array(master)) => match master[1] {
                    redis::Value::Int(port) => (*a, *b, port),
                    ref other => panic!("port: {other:?}"),
                },
                other => panic!("range: {other:?}"),
            },
            other => panic!("range: {other:?}"),
        })
        .collect()
}

/// With `stream_count=3` on the 3-master cluster, namespaces hashed to the three streams
/// (as the Node.js adapter hashes them) are served by three different masters, and each
/// namespace's broadcasts travel through its own stream only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_streams_spread_over_the_cluster() {
    run(async {
        let seed = env("REDIS_CLUSTER_URLS").split(',').next().expect("a node").to_owned();
        let mut conn = admin(&seed).await;
        let owners = slot_owners(&mut conn).await;
        let owner = |slot: i64| owners.iter().find(|(a, b, _)| (*a..=*b).contains(&slot)).expect("owned").2;
        // a stream name whose three streams land on three masters
        let mut name = String::new();
        for _ in 0..200 {
            let candidate = prefix("streams-spread");
            let mut masters = std::collections::BTreeSet::new();
            for i in 0..3 {
                let slot: i64 = redis::cmd("CLUSTER")
                    .arg("KEYSLOT")
                    .arg(format!("{candidate}-{i}"))
                    .query_async(&mut conn)
                    .await
                    .expect("KEYSLOT");
                masters.insert(owner(slot));
            }
            if masters.len() == 3 {
                name = candidate;
                break;
            }
        }
        assert!(!name.is_empty(), "no stream name spread over 3 masters in 200 tries");
        let url = format!(
            "{}?mode=streams&prefix={name}&stream={name}&stream_count=3",
            socketio_cluster_tests::redis_cluster_url()
        );
        let opts = RedisOptions::parse(&url).expect("url");
        // hashCode % 3: "/" = 47 -> 2, "/admin" -> 1, "/a" = 1554 -> 0
        let namespaces = [("/", 2), ("/admin", 1), ("/a", 0)];
        let transport = RedisTransport::connect(&opts).await.expect("connect");
        let mut nodes = Vec::new();
        for (nsp, _) in namespaces {
            let rec = Recorder::new(nsp);
            let adapter =
                ClusterAdapter::new(transport.clone(), opts.dialect(), nsp, rec.clone(), opts.cluster_config())
                    .expect("config");
            adapter.init().await.expect("init");
            adapter.add_all(&sid("s1"), &[]);
            nodes.push((adapter, rec));
        }
        let emitter = RedisTransport::connect(&opts).await.expect("connect");
        for (i, (nsp, _)) in namespaces.iter().enumerate() {
            let core = ClusterCore::requester(
                emitter.clone(),
                opts.dialect(),
                *nsp,
                EMITTER_UID.into(),
                ClusterConfig::default(),
            )
            .expect("config");
            for n in 0..=i as u64 {
                core.broadcast(seq(n), BroadcastOptions::all()).await.expect("broadcast");
            }
        }
        for (i, (_, rec)) in nodes.iter().enumerate() {
            eventually("deliveries", WAIT, || rec.packets("seq").len() == i + 1).await;
        }
        let cluster = redis::cluster::ClusterClient::new(env("REDIS_CLUSTER_URLS").split(',').collect::<Vec<_>>())
            .expect("cluster client");
        let mut cluster = cluster.get_async_connection().await.expect("connect");
        for (i, (nsp, stream)) in namespaces.iter().enumerate() {
            let key = format!("{name}-{stream}");
            let len: usize = redis::cmd("XLEN").arg(&key).query_async(&mut cluster).await.expect("XLEN");
            assert_eq!(len, i + 1, "{nsp} went to {key} only");
            let _: () = redis::cmd("DEL").arg(&key).query_async(&mut cluster).await.expect("DEL");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        for (i, (_, rec)) in nodes.iter().enumerate() {
            assert_eq!(rec.packets("seq").len(), i + 1, "each namespace got its own broadcasts only");
        }
    })
    .await
}
