//! Unit tests of the room channel bookkeeping, then a dynamic-mode node over the memory
//! transport.

use super::{JOIN_SETTLE, MAX_RECENT_JOINS, RecentJoins, RoomSubs};
use crate::types::Room;

const MAX: usize = usize::MAX;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn the_diff_is_what_the_broker_lacks_and_what_it_has_too_much() {
    let mut subs = RoomSubs::default();
    assert!(subs.is_settled());
    assert!(subs.want(strings(&["b", "a"]), [], MAX).0);
    assert_eq!(subs.diff(), (strings(&["a", "b"]), vec![]));
    assert_eq!((subs.applied_len(), subs.pending_len()), (0, 2));
    subs.subscribed(strings(&["a", "b"]));
    assert!(subs.is_settled());
    assert_eq!((subs.applied_len(), subs.pending_len()), (2, 0));
    assert!(subs.want(strings(&["c"]), strings(&["a"]), MAX).0);
    assert_eq!(subs.diff(), (strings(&["c"]), strings(&["a"])));
    assert_eq!(subs.pending_len(), 2);
    subs.unsubscribed(&strings(&["a"]));
    assert_eq!(subs.diff(), (strings(&["c"]), vec![]), "a subscription failed: still to do");
    assert!(!subs.is_settled());
}

#[test]
fn unchanged_wishes_do_not_wake_the_subscription_task() {
    let mut subs = RoomSubs::default();
    assert!(subs.want(strings(&["a"]), [], MAX).0);
    assert!(!subs.want(strings(&["a"]), [], MAX).0, "already wanted");
    assert!(!subs.want([], strings(&["z"]), MAX).0, "never wanted");
    assert!(subs.want(strings(&["x"]), strings(&["x"]), MAX).0, "created and deleted at once: a change, to nothing");
    assert_eq!(subs.diff(), (strings(&["a"]), vec![]));
}

#[test]
fn a_room_created_and_deleted_before_the_broker_saw_it_is_never_subscribed() {
    let mut subs = RoomSubs::default();
    subs.want(strings(&["a"]), [], MAX);
    subs.want([], strings(&["a"]), MAX);
    assert_eq!(subs.diff(), (vec![], vec![]));
    assert!(subs.is_settled());
}

#[test]
fn rooms_beyond_the_limit_get_no_channel_and_are_counted() {
    let mut subs = RoomSubs::default();
    assert_eq!(subs.want(strings(&["a", "b", "c"]), [], 2), (true, 1));
    assert_eq!(subs.diff(), (strings(&["a", "b"]), vec![]));
    assert_eq!(subs.want(strings(&["a"]), [], 2), (false, 0), "already wanted: not refused");
    // a room deleted in the same change frees its place
    assert_eq!(subs.want(strings(&["d"]), strings(&["a"]), 2), (true, 0));
    assert_eq!(subs.diff(), (strings(&["b", "d"]), vec![]));
    assert_eq!(subs.want(strings(&["e"]), [], 2), (false, 1));
}

#[test]
fn the_health_check_probes_the_applied_channels_in_turn() {
    let mut subs = RoomSubs::default();
    assert_eq!(subs.next_probe(), None, "no room channel, no room ping");
    subs.want(strings(&["b", "a", "c"]), [], MAX);
    assert_eq!(subs.next_probe(), None, "not applied yet");
    subs.subscribed(strings(&["b", "a", "c"]));
    let turns: Vec<Option<String>> = (0..4).map(|_| subs.next_probe()).collect();
    assert_eq!(turns, [Some("a"), Some("b"), Some("c"), Some("a")].map(|c| c.map(str::to_owned)));
    // the last probed went away: the turn goes on from its place
    subs.want([], strings(&["a"]), MAX);
    subs.unsubscribed(&strings(&["a"]));
    assert_eq!(subs.next_probe().as_deref(), Some("b"));
}

#[test]
fn closing_takes_every_applied_channel() {
    let mut subs = RoomSubs::default();
    subs.want(strings(&["a", "b"]), [], MAX);
    subs.subscribed(strings(&["a", "b"]));
    let mut taken: Vec<String> = subs.take_applied().collect();
    taken.sort();
    assert_eq!(taken, strings(&["a", "b"]));
    assert_eq!(subs.applied_len(), 0);
}

#[test]
fn a_joined_room_is_remembered_for_the_settle_time_from_its_latest_join() {
    let t0 = tokio::time::Instant::now();
    let mut joins = RecentJoins::default();
    let news = Room::from("news");
    assert!(!joins.contains(&news, t0));
    joins.joined(&[news.clone(), Room::from("sport")], t0);
    assert!(joins.contains(&news, t0 + JOIN_SETTLE / 2));
    assert!(!joins.contains(&Room::from("other"), t0));
    // joined again later: remembered from then
    joins.joined(std::slice::from_ref(&news), t0 + JOIN_SETTLE / 2);
    assert!(joins.contains(&news, t0 + JOIN_SETTLE));
    assert!(!joins.contains(&Room::from("sport"), t0 + JOIN_SETTLE), "sport expired");
    assert!(!joins.contains(&news, t0 + JOIN_SETTLE * 3 / 2));
    assert_eq!(joins.len(), 0);
}

#[test]
fn joins_beyond_the_limit_are_not_remembered() {
    let t0 = tokio::time::Instant::now();
    let mut joins = RecentJoins::default();
    let rooms: Vec<Room> = (0..MAX_RECENT_JOINS + 10).map(|i| Room::from(format!("r{i}"))).collect();
    joins.joined(&rooms, t0);
    assert_eq!(joins.len(), MAX_RECENT_JOINS);
    assert!(joins.contains(&rooms[MAX_RECENT_JOINS - 1], t0));
    assert!(!joins.contains(&rooms[MAX_RECENT_JOINS], t0));
    // once they expired, joins are remembered again
    joins.joined(&rooms[..1], t0 + JOIN_SETTLE);
    assert_eq!(joins.len(), 1);
    assert!(joins.contains(&rooms[0], t0 + JOIN_SETTLE));
}

#[cfg(feature = "test-util")]
mod over_memory {
    use std::sync::Arc;

    use crate::cluster::test_support::node;
    use crate::dialect::{Dialect, NodeClusterDialect, SubscriptionMode};
    use crate::memory::MemoryHub;
    use crate::testing::sid;
    use crate::{Adapter, ClusterConfig, Transport};

    #[tokio::test(start_paused = true)]
    async fn rooms_with_members_get_a_channel_that_the_broker_counts() {
        let hub = MemoryHub::new();
        let dialect: Arc<dyn Dialect> =
            Arc::new(NodeClusterDialect::default().with_subscription_mode(SubscriptionMode::Dynamic));
        let a = node(&hub, dialect, "A", ClusterConfig::default()).await;
        a.adapter.add_all(&sid("s1"), &["news".into()]);
        let stats = a.adapter.stats();
        assert_eq!((stats.room_channels, stats.room_channels_pending), (0, 1), "a private room has no channel");
        assert!(a.adapter.core().room_subscriptions_applied().await);
        let stats = a.adapter.stats();
        assert_eq!((stats.room_channels, stats.room_channels_pending), (1, 0));
        a.adapter.add_all(&sid("s2"), &["news".into()]);
        assert_eq!(a.adapter.stats().room_channels_pending, 0, "the room already had a member");
        a.adapter.del_all(&sid("s1"));
        a.adapter.del_all(&sid("s2"));
        assert_eq!(a.adapter.stats().room_channels_pending, 1);
        assert!(a.adapter.core().room_subscriptions_applied().await);
        assert_eq!(a.adapter.stats().room_channels, 0);
        // published on the room channel: nobody listens any more
        let before = a.adapter.stats().received;
        a.transport.publish("socket.io#/#news#", bytes::Bytes::from_static(b"{}")).await.expect("publish");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(a.adapter.stats().received, before);
    }

    #[tokio::test(start_paused = true)]
    async fn closing_leaves_the_room_channels() {
        let hub = MemoryHub::new();
        let dialect: Arc<dyn Dialect> =
            Arc::new(NodeClusterDialect::default().with_subscription_mode(SubscriptionMode::DynamicPrivate));
        let a = node(&hub, dialect, "A", ClusterConfig::default()).await;
        a.adapter.add_all(&sid("s1"), &["news".into()]);
        assert!(a.adapter.core().room_subscriptions_applied().await);
        assert_eq!(a.adapter.stats().room_channels, 2, "dynamic-private: the socket's own room too");
        let before = a.adapter.stats().received;
        a.transport.publish("socket.io#/#news#", bytes::Bytes::from_static(b"{}")).await.expect("publish");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(a.adapter.stats().received, before + 1, "subscribed");
        a.adapter.close().await.expect("close");
        assert_eq!(a.adapter.stats().room_channels, 0);
        a.transport.publish("socket.io#/#news#", bytes::Bytes::from_static(b"{}")).await.expect("publish");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(a.adapter.stats().received, before + 1, "unsubscribed");
    }

    #[tokio::test(start_paused = true)]
    async fn a_namespace_at_its_room_channel_limit_refuses_new_rooms_and_counts_them() {
        let hub = MemoryHub::new();
        let dialect: Arc<dyn Dialect> =
            Arc::new(NodeClusterDialect::default().with_subscription_mode(SubscriptionMode::Dynamic));
        let a = node(&hub, dialect, "A", ClusterConfig::default().with_max_room_channels(2)).await;
        for (s, room) in [("s1", "r1"), ("s2", "r2"), ("s3", "r3"), ("s4", "r2")] {
            a.adapter.add_all(&sid(s), &[room.into()]);
        }
        assert!(a.adapter.core().room_subscriptions_applied().await);
        let stats = a.adapter.stats();
        assert_eq!((stats.room_channels, stats.room_channels_refused), (2, 1), "r3 is refused, r2 twice is one");
        // a room that goes away makes room for the next one
        a.adapter.del_all(&sid("s1"));
        a.adapter.add_all(&sid("s5"), &["r5".into()]);
        assert!(a.adapter.core().room_subscriptions_applied().await);
        let stats = a.adapter.stats();
        assert_eq!((stats.room_channels, stats.room_channels_refused), (2, 1));
    }

    /// The broadcasts and joins the spy saw, in order: (channel, event or "(join)"),
    /// health check pings left out.
    fn broadcasts(rx: &mut tokio::sync::mpsc::Receiver<crate::TransportEvent>) -> Vec<(String, String)> {
        let dialect = NodeClusterDialect::default();
        let mut got = Vec::new();
        while let Ok(crate::TransportEvent::Message { channel, payload }) = rx.try_recv() {
            let msg = dialect.decode(&channel, &payload).expect("decodes");
            match msg.body {
                crate::message::Body::Broadcast { packet, .. } if packet.event != "healthcheck" => {
                    got.push((channel, packet.event))
                }
                crate::message::Body::SocketsJoin { .. } => got.push((channel, "(join)".to_owned())),
                _ => {}
            }
        }
        got
    }

    #[tokio::test(start_paused = true)]
    async fn a_room_this_engine_just_made_the_cluster_join_is_broadcast_on_the_main_channel_for_a_while() {
        use crate::cluster::room_channels::JOIN_SETTLE;
        use crate::cluster::test_support::{ev, settle};
        use crate::{BroadcastOptions, Channel};

        let hub = MemoryHub::new();
        let spy = hub.transport();
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let channels = ["socket.io#/#", "socket.io#/#news#", "socket.io#/#sport#"].map(|c| Channel::Exact(c.into()));
        spy.subscribe(&channels, tx).await.expect("spy");
        let dialect: Arc<dyn Dialect> =
            Arc::new(NodeClusterDialect::default().with_subscription_mode(SubscriptionMode::Dynamic));
        let a = node(&hub, dialect, "A", ClusterConfig::default()).await;
        let core = a.adapter.core();
        let to = |room: &str| BroadcastOptions::all().to(room);
        core.broadcast(ev("before"), to("news")).await.expect("broadcast");
        core.add_sockets(BroadcastOptions::all(), vec!["news".into()]).await.expect("join");
        core.broadcast(ev("first"), to("news")).await.expect("broadcast");
        core.broadcast(ev("elsewhere"), to("sport")).await.expect("broadcast");
        settle().await;
        let main = "socket.io#/#".to_owned();
        let news = "socket.io#/#news#".to_owned();
        assert_eq!(
            broadcasts(&mut rx),
            [
                (news.clone(), "before".to_owned()),
                (main.clone(), "(join)".to_owned()),
                (main.clone(), "first".to_owned()),
                ("socket.io#/#sport#".to_owned(), "elsewhere".to_owned()),
            ]
        );
        // a local-only join tells nobody, so changes nothing
        core.add_sockets(BroadcastOptions::all().local(), vec!["sport".into()]).await.expect("join");
        core.broadcast(ev("local join"), to("sport")).await.expect("broadcast");
        tokio::time::sleep(JOIN_SETTLE).await;
        core.broadcast(ev("settled"), to("news")).await.expect("broadcast");
        settle().await;
        assert_eq!(
            broadcasts(&mut rx),
            [("socket.io#/#sport#".to_owned(), "local join".to_owned()), (news, "settled".to_owned())]
        );
    }
}
