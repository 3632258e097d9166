//! Unit tests of the health check: the state machine, then a node over the memory
//! transport (the ping's bytes, a deaf subscription detected and repaired).

use std::time::Duration;

use tokio::time::Instant;

use super::{HEALTH_CHECK_ID_PREFIX, Health, Probe, Step};

const BOTH: [Probe; 2] = [Probe::Main, Probe::Response];

const SEC: Duration = Duration::from_secs(1);

/// A tick of node `n1`; a round it starts waits for both pings.
fn tick(h: &mut Health, now: Instant, interval: Duration, delivering: bool) -> Step {
    let step = h.tick(now, interval, delivering, 0, "n1");
    if matches!(step, Step::Ping(_)) {
        h.expect(&BOTH, true, None);
    }
    step
}

/// A node started at `t0` whose first round (both pings, `ordered` or not) went out then.
fn first_round_out(t0: Instant, interval: Duration, ordered: bool) -> Health {
    let mut h = Health::default();
    h.started(t0);
    assert!(matches!(h.tick(t0, interval, false, 0, "n1"), Step::Ping(_)));
    h.expect(&BOTH, ordered, None);
    h
}

/// Both pings of the round came back at `t`.
fn echo(h: &mut Health, id: &str, t: Instant) {
    h.echoed(id, Probe::Main, t);
    h.echoed(id, Probe::Response, t);
}

#[test]
fn the_prefix_is_the_wire_value() {
    assert_eq!(HEALTH_CHECK_ID_PREFIX, "healthcheck-");
}

#[test]
fn an_echoed_ping_keeps_the_node_healthy_and_the_next_one_waits_an_interval() {
    let t0 = Instant::now();
    let interval = 10 * SEC;
    let mut h = Health::default();
    assert_eq!(tick(&mut h, t0, interval, false), Step::Ping("healthcheck-n1-1".into()));
    assert_eq!(tick(&mut h, t0 + SEC, interval, false), Step::Wait, "waiting for the echo");
    echo(&mut h, "healthcheck-n1-1", t0);
    assert_eq!(tick(&mut h, t0 + 2 * SEC, interval, false), Step::Wait, "not due yet");
    assert_eq!(tick(&mut h, t0 + 10 * SEC, interval, false), Step::Ping("healthcheck-n1-2".into()));
    echo(&mut h, "healthcheck-n1-2", t0);
    assert_eq!(tick(&mut h, t0 + 30 * SEC, interval, false), Step::Ping("healthcheck-n1-3".into()));
}

#[test]
fn a_ping_unanswered_for_an_interval_means_deaf_then_the_cycle_restarts() {
    let t0 = Instant::now();
    let interval = 2 * SEC;
    let mut h = Health::default();
    assert!(matches!(tick(&mut h, t0, interval, false), Step::Ping(_)));
    assert_eq!(tick(&mut h, t0 + SEC, interval, false), Step::Wait);
    assert_eq!(tick(&mut h, t0 + 2 * SEC, interval, false), Step::Deaf(BOTH.to_vec()));
    assert_eq!(tick(&mut h, t0 + 3 * SEC, interval, false), Step::Ping("healthcheck-n1-2".into()));
}

#[test]
fn only_the_outstanding_ping_counts_as_an_echo() {
    let t0 = Instant::now();
    let mut h = Health::default();
    let _ = tick(&mut h, t0, SEC, false);
    echo(&mut h, "healthcheck-other-1", t0);
    echo(&mut h, "healthcheck-n1-0", t0);
    assert_eq!(tick(&mut h, t0 + SEC, SEC, false), Step::Deaf(BOTH.to_vec()));
}

#[test]
fn a_round_proves_the_subscriptions_only_when_every_ping_came_back() {
    let t0 = Instant::now();
    let interval = 2 * SEC;
    let mut h = Health::default();
    h.started(t0);
    let _ = tick(&mut h, t0, interval, false);
    h.echoed("healthcheck-n1-1", Probe::Response, t0 + SEC);
    assert_eq!(tick(&mut h, t0 + 2 * SEC, interval, false), Step::Deaf(vec![Probe::Main]), "the main channel is deaf");
    assert_eq!(h.unproven(t0 + 4 * SEC, interval), Some(4 * SEC), "half a round proves nothing");
    let _ = tick(&mut h, t0 + 4 * SEC, interval, false);
    h.unsent(Probe::Response);
    h.echoed("healthcheck-n1-2", Probe::Main, t0 + 5 * SEC);
    assert_eq!(h.unproven(t0 + 7 * SEC, interval), None, "what was sent came back");
}

#[test]
fn a_pending_local_delivery_postpones_the_verdict() {
    let t0 = Instant::now();
    let mut h = Health::default();
    let _ = tick(&mut h, t0, SEC, false);
    assert_eq!(tick(&mut h, t0 + 5 * SEC, SEC, true), Step::Wait, "the echo may be queued behind the delivery");
    assert_eq!(tick(&mut h, t0 + 6 * SEC, SEC, false), Step::Deaf(BOTH.to_vec()));
}

#[test]
fn a_ping_that_could_not_be_published_is_not_held_against_the_subscription() {
    let t0 = Instant::now();
    let mut h = Health::default();
    let _ = tick(&mut h, t0, SEC, false);
    h.unsent(Probe::Main);
    h.unsent(Probe::Response);
    assert_eq!(tick(&mut h, t0 + SEC / 2, SEC, false), Step::Wait, "not due yet");
    assert_eq!(tick(&mut h, t0 + SEC, SEC, false), Step::Ping("healthcheck-n1-2".into()));
}

#[test]
fn the_subscription_counts_as_unproven_after_one_and_a_half_intervals_without_an_echo() {
    let t0 = Instant::now();
    let interval = 10 * SEC;
    let mut h = Health::default();
    assert_eq!(h.unproven(t0 + 60 * SEC, interval), None, "not started: nothing to prove");
    h.started(t0);
    assert_eq!(h.unproven(t0 + 15 * SEC, interval), None);
    assert_eq!(h.unproven(t0 + 16 * SEC, interval), Some(16 * SEC));
    let _ = tick(&mut h, t0 + 16 * SEC, interval, false);
    echo(&mut h, "healthcheck-n1-1", t0 + 17 * SEC);
    assert_eq!(h.unproven(t0 + 30 * SEC, interval), None, "the echo proved it again");
    echo(&mut h, "healthcheck-n1-1", t0 + 40 * SEC);
    assert_eq!(h.unproven(t0 + 40 * SEC, interval), Some(23 * SEC), "an echo already taken proves nothing");
}

#[test]
fn deliveries_still_arriving_postpone_the_verdict_and_prove_the_subscription() {
    // a node behind a backlog: its echo is queued after many seconds of traffic
    let t0 = Instant::now();
    let interval = 2 * SEC;
    let mut h = first_round_out(t0, interval, true);
    assert_eq!(h.tick(t0 + SEC, interval, false, 50, "n1"), Step::Wait);
    assert_eq!(h.unproven(t0 + 4 * SEC, interval), Some(4 * SEC), "before the echo is due, only echoes prove");
    for (i, heard) in [100, 200, 300, 400, 500].into_iter().enumerate() {
        let now = t0 + (i as u32 + 1) * 2 * SEC;
        assert_eq!(h.tick(now, interval, false, heard, "n1"), Step::Wait, "still receiving at {i}");
        assert_eq!(h.unproven(now, interval), None, "receiving proves the subscription");
    }
    // the traffic stops and the echo never comes: deaf
    assert_eq!(h.tick(t0 + 12 * SEC, interval, false, 500, "n1"), Step::Deaf(BOTH.to_vec()));
    assert_eq!(h.unproven(t0 + 12 * SEC, interval), None, "last proven at 10 s");
    assert_eq!(h.unproven(t0 + 14 * SEC, interval), Some(4 * SEC));
}

#[test]
fn a_ping_missing_an_interval_after_its_sibling_came_back_is_deaf_even_while_traffic_arrives() {
    // the main channel lost while the response channel works, and another namespace (or
    // a room channel) keeps delivering: the traffic does not hide it
    let t0 = Instant::now();
    let interval = 2 * SEC;
    let mut h = first_round_out(t0, interval, true);
    h.echoed("healthcheck-n1-1", Probe::Response, t0 + SEC / 10);
    assert_eq!(h.tick(t0 + SEC, interval, false, 100, "n1"), Step::Wait);
    assert_eq!(
        h.tick(t0 + 2 * SEC, interval, false, 200, "n1"),
        Step::Wait,
        "the sibling came back under an interval ago"
    );
    assert_eq!(h.tick(t0 + 5 * SEC / 2, interval, true, 300, "n1"), Step::Wait, "a held delivery still postpones it");
    assert_eq!(h.tick(t0 + 3 * SEC, interval, false, 400, "n1"), Step::Deaf(vec![Probe::Main]));

    // Redis Streams: the stream may lag behind the pub/sub responses; traffic still
    // postpones the verdict
    let mut h = first_round_out(t0, interval, false);
    h.echoed("healthcheck-n1-1", Probe::Response, t0 + SEC / 10);
    assert_eq!(h.tick(t0 + 3 * SEC, interval, false, 100, "n1"), Step::Wait, "a stream behind a backlog");
    assert_eq!(h.tick(t0 + 4 * SEC, interval, false, 100, "n1"), Step::Deaf(vec![Probe::Main]), "until it pauses");
}

#[test]
fn a_room_ping_is_told_from_the_main_one_by_its_channel_and_a_room_left_meanwhile_is_not_held_against_it() {
    let t0 = Instant::now();
    let interval = 2 * SEC;
    let three = [Probe::Main, Probe::Response, Probe::Room];
    let news = "socket.io#/#news#".to_owned();
    let mut h = Health::default();
    h.started(t0);
    assert!(matches!(h.tick(t0, interval, false, 0, "n1"), Step::Ping(_)));
    h.expect(&three, true, Some(news.clone()));
    assert_eq!(h.main_ping_probe("socket.io#/#"), Probe::Main);
    assert_eq!(h.main_ping_probe(&news), Probe::Room);
    // the main ping and the response came back, not the one on the room's channel
    echo(&mut h, "healthcheck-n1-1", t0 + SEC / 10);
    assert_eq!(h.tick(t0 + 3 * SEC, interval, false, 0, "n1"), Step::Deaf(vec![Probe::Room]));

    // the next round's room ping is on a channel the node leaves before it came back
    assert!(matches!(h.tick(t0 + 4 * SEC, interval, false, 0, "n1"), Step::Ping(_)));
    h.expect(&three, true, Some(news.clone()));
    h.left_rooms(&["socket.io#/#other#".to_owned()], t0 + 5 * SEC);
    echo(&mut h, "healthcheck-n1-2", t0 + 4 * SEC + SEC / 10);
    assert_eq!(h.tick(t0 + 5 * SEC, interval, false, 0, "n1"), Step::Wait, "the room ping is still awaited");
    h.left_rooms(std::slice::from_ref(&news), t0 + 6 * SEC);
    assert_eq!(h.fence(), Some(t0 + 4 * SEC), "the round is complete without it");
    assert_eq!(h.unproven(t0 + 9 * SEC, interval), None, "proven at 6 s");
    assert!(matches!(h.tick(t0 + 7 * SEC, interval, false, 0, "n1"), Step::Ping(_)), "no verdict: the next round");
}

#[cfg(feature = "test-util")]
mod over_memory {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::mpsc;

    use super::super::super::test_support::ev;
    use super::super::super::test_support::{node, settle};
    use crate::cluster::NotReady;
    use crate::dialect::{Dialect, NodeClusterDialect, NodeRedisDialect, PythonDialect};
    use crate::memory::MemoryHub;
    use crate::{Adapter, BroadcastOptions, Channel, ClusterAdapter, ClusterConfig, Transport, TransportEvent};

    fn config() -> ClusterConfig {
        ClusterConfig::default().with_health_check_interval(Some(Duration::from_secs(2)))
    }

    #[tokio::test(start_paused = true)]
    async fn a_round_is_a_broadcast_to_nobody_on_the_main_channel_and_a_client_count_on_the_response_channel() {
        let hub = MemoryHub::counting();
        let spy = hub.transport();
        let (tx, mut rx) = mpsc::channel(16);
        let channels = [Channel::Exact("socket.io#/#".into()), Channel::Exact("socket.io-response#/#".into())];
        spy.subscribe(&channels, tx).await.expect("spy");
        let dialect: Arc<dyn Dialect> = Arc::new(NodeRedisDialect::default());
        let a = node(&hub, dialect, "A", config()).await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let mut got = Vec::new();
        while let Ok(TransportEvent::Message { channel, payload }) = rx.try_recv() {
            got.push((channel, payload));
        }
        let uid = a.adapter.node_id();
        let [(main, broadcast), (response, count)] = got.as_slice() else { panic!("two pings: {got:?}") };
        assert_eq!(main, "socket.io#/#");
        let decoded = NodeRedisDialect::default().decode(main, broadcast).expect("a classic broadcast");
        assert_eq!(decoded.uid.as_deref(), Some(uid));
        let crate::message::Body::Broadcast { packet, opts } = decoded.body else { panic!("{decoded:?}") };
        assert_eq!(packet.event, "healthcheck");
        let rooms: Vec<&str> = opts.rooms.iter().map(crate::Room::as_str).collect();
        assert_eq!(rooms, [format!("healthcheck-{uid}-1").as_str(), "healthcheck-main"]);
        assert_eq!(response, "socket.io-response#/#");
        let expected = format!(r#"{{"type":8,"requestId":"healthcheck-{uid}-1","clientCount":0}}"#);
        assert_eq!(std::str::from_utf8(count).expect("utf-8"), expected);
        // the node hears its own pings: no resubscription, ever
        tokio::time::sleep(Duration::from_secs(20)).await;
        let stats = a.adapter.stats();
        assert_eq!(stats.resubscriptions, 0);
        assert_eq!(stats.known_nodes, 0, "a ping does not make its sender a known node");
        assert!(stats.published >= 18, "two pings every 2 s: {stats:?}");
        assert_eq!(a.sockets.got("healthcheck"), Vec::<String>::new(), "delivered to nobody");
    }

    /// One subscription of two lost (a Redis Cluster slot moved, a RabbitMQ binding
    /// deleted): the response ping still comes back, the main one does not.
    #[tokio::test(start_paused = true)]
    async fn a_node_deaf_on_its_main_channel_only_resubscribes_and_hears_again() {
        let hub = MemoryHub::counting();
        let dialect: Arc<dyn Dialect> = Arc::new(NodeClusterDialect::default());
        let a = node(&hub, dialect.clone(), "A", config()).await;
        let b = node(&hub, dialect, "B", config()).await;
        b.adapter.add_all("b1", &[]);
        settle().await;
        b.transport.deafen_to("socket.io#/#");
        a.adapter.broadcast(ev("lost"), BroadcastOptions::all()).await.expect("broadcast");
        settle().await;
        assert!(b.sockets.got("lost").is_empty(), "deaf to broadcasts");
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(b.adapter.stats().resubscriptions, 1, "detected once, repaired");
        assert_eq!(a.adapter.stats().resubscriptions, 0, "the healthy node is left alone");
        a.adapter.broadcast(ev("heard"), BroadcastOptions::all()).await.expect("broadcast");
        settle().await;
        assert_eq!(b.sockets.got("heard"), ["b1"]);
    }

    /// One per-room channel lost (its RabbitMQ binding deleted, its Redis Cluster slot
    /// moved): main and response pings come back, the room ping on that channel does not
    /// when its turn comes.
    #[tokio::test(start_paused = true)]
    async fn a_node_deaf_on_one_room_channel_resubscribes_when_its_turn_comes_and_hears_again() {
        let hub = MemoryHub::counting();
        let dialect: Arc<dyn Dialect> = Arc::new(NodeClusterDialect::default());
        let a = node(&hub, dialect.clone(), "A", config()).await;
        let b = node(&hub, dialect, "B", config()).await;
        b.adapter.add_all("b1", &["news".into(), "sport".into(), "weather".into()]);
        assert!(b.adapter.core().room_subscriptions_applied().await);
        settle().await;
        b.transport.deafen_to("socket.io#/#sport#");
        let sport = || BroadcastOptions::all().to("sport");
        a.adapter.broadcast(ev("lost"), sport()).await.expect("broadcast");
        settle().await;
        assert!(b.sockets.got("lost").is_empty(), "deaf to the room");
        // four room channels (b1's own, news, sport, weather) take turns: sport's comes
        // within four rounds of 2 s, and is found missing an interval later
        tokio::time::sleep(Duration::from_secs(12)).await;
        assert_eq!(b.adapter.stats().resubscriptions, 1, "detected once, repaired");
        assert_eq!(a.adapter.stats().resubscriptions, 0, "the healthy node is left alone");
        a.adapter.broadcast(ev("heard"), sport()).await.expect("broadcast");
        settle().await;
        assert_eq!(b.sockets.got("heard"), ["b1"]);
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(b.adapter.stats().resubscriptions, 1, "every room ping comes back since");
    }

    /// python-socketio's one channel has no responses: the main-channel ping alone proves
    /// it, and the node stays ready.
    #[tokio::test(start_paused = true)]
    async fn a_python_dialect_node_proves_its_channel_and_stays_ready() {
        let hub = MemoryHub::new();
        let dialect: Arc<dyn Dialect> = Arc::new(PythonDialect::default());
        let a = node(&hub, dialect, "A", config()).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(a.adapter.core().readiness(), Ok(()));
        a.transport.deafen();
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(a.adapter.stats().resubscriptions, 1, "deafness detected by the main-channel ping");
        assert_eq!(a.adapter.core().readiness(), Ok(()), "heard again after the resubscription");
    }

    #[tokio::test(start_paused = true)]
    async fn a_deaf_node_resubscribes_once_and_hears_again() {
        let hub = MemoryHub::counting();
        let dialect: Arc<dyn Dialect> = Arc::new(NodeRedisDialect::default());
        let a = node(&hub, dialect.clone(), "A", config()).await;
        let b = node(&hub, dialect, "B", config()).await;
        b.adapter.add_all("b1", &[]);
        settle().await;
        b.transport.deafen();
        a.adapter
            .broadcast(super::super::super::test_support::ev("lost"), crate::BroadcastOptions::all())
            .await
            .expect("broadcast");
        settle().await;
        assert!(b.sockets.got("lost").is_empty(), "deaf");
        assert_eq!(b.adapter.stats().resubscriptions, 0, "not yet detected");
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(b.adapter.stats().resubscriptions, 1, "detected once, repaired");
        assert_eq!(a.adapter.stats().resubscriptions, 0, "the healthy node is left alone");
        a.adapter
            .broadcast(super::super::super::test_support::ev("heard"), crate::BroadcastOptions::all())
            .await
            .expect("broadcast");
        settle().await;
        assert_eq!(b.sockets.got("heard"), ["b1"]);
    }

    #[tokio::test(start_paused = true)]
    async fn readiness_follows_the_start_the_echoes_and_the_close() {
        let hub = MemoryHub::counting();
        let dialect: Arc<dyn Dialect> = Arc::new(NodeRedisDialect::default());
        let idle =
            ClusterAdapter::new(hub.transport(), dialect.clone(), "/", crate::testing::Recorder::new("idle"), config())
                .expect("adapter");
        assert_eq!(idle.core().readiness(), Err(NotReady::NotStarted));
        let a = node(&hub, dialect, "A", config()).await;
        assert_eq!(a.adapter.core().readiness(), Ok(()));
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(a.adapter.core().readiness(), Ok(()), "every ping came back");
        // a hung broker: publishes vanish, nothing arrives, nothing fails
        a.transport.freeze();
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(a.adapter.core().readiness(), Ok(()), "within the bound");
        tokio::time::sleep(Duration::from_secs(3)).await;
        let Err(NotReady::Deaf { silent, .. }) = a.adapter.core().readiness() else {
            panic!("a stalled broker went unnoticed: {:?}", a.adapter.core().readiness())
        };
        assert!(silent > Duration::from_secs(3), "{silent:?}");
        let why = a.adapter.core().readiness().expect_err("deaf").to_string();
        assert!(why.starts_with("deaf: no health check ping came back through the memory broker for "), "{why}");
        a.adapter.close().await.expect("close");
        assert_eq!(a.adapter.core().readiness(), Err(NotReady::Closed));
    }
}
