//! Unit tests of the room channel bookkeeping, then a dynamic-mode node over the memory
//! transport.

use super::RoomSubs;

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
fn closing_takes_every_applied_channel() {
    let mut subs = RoomSubs::default();
    subs.want(strings(&["a", "b"]), [], MAX);
    subs.subscribed(strings(&["a", "b"]));
    let mut taken: Vec<String> = subs.take_applied().collect();
    taken.sort();
    assert_eq!(taken, strings(&["a", "b"]));
    assert_eq!(subs.applied_len(), 0);
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
}
