//! Unit tests of membership: the known-node table, then eviction over the memory
//! transport with paused time.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::time::Instant;

use super::KnownNodes;

const SEC: Duration = Duration::from_secs(1);

#[test]
fn nodes_are_known_from_their_first_message_until_they_leave() {
    let t0 = Instant::now();
    let mut nodes = KnownNodes::default();
    assert!(nodes.touch("b", t0), "new");
    assert!(!nodes.touch("b", t0 + SEC), "known");
    assert!(nodes.touch("a", t0));
    assert_eq!(nodes.ids(), BTreeSet::from(["a".to_owned(), "b".to_owned()]));
    assert!(nodes.remove("b"));
    assert!(!nodes.remove("b"), "already gone");
    assert_eq!(nodes.len(), 1);
}

#[test]
fn only_nodes_silent_for_longer_than_the_ttl_expire() {
    let t0 = Instant::now();
    let mut nodes = KnownNodes::default();
    nodes.touch("c", t0);
    nodes.touch("a", t0);
    nodes.touch("b", t0 + 2 * SEC);
    assert!(nodes.expire(t0 + 3 * SEC, 3 * SEC).is_empty(), "exactly the ttl is not more than the ttl");
    assert_eq!(nodes.expire(t0 + 4 * SEC, 3 * SEC), vec!["a".to_owned(), "c".to_owned()]);
    assert_eq!(nodes.ids(), BTreeSet::from(["b".to_owned()]));
    nodes.touch("b", t0 + 5 * SEC);
    assert!(nodes.expire(t0 + 7 * SEC, 3 * SEC).is_empty(), "refreshed");
}

#[cfg(feature = "test-util")]
mod over_memory {
    use std::time::Duration;

    use super::super::KNOWN_NODE_TTL;
    use crate::cluster::test_support::{broker_pair, ev, heartbeat_pair};
    use crate::{Adapter, BroadcastOptions, ClusterConfig};

    fn config() -> ClusterConfig {
        ClusterConfig::default()
            .with_heartbeat_interval(Duration::from_secs(1))
            .with_heartbeat_timeout(Duration::from_secs(3))
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeating_nodes_stay_known() {
        let (_hub, a, b) = heartbeat_pair(config()).await;
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(a.adapter.stats().known_nodes, 1);
        assert_eq!(b.adapter.stats().known_nodes, 1);
        assert_eq!(a.adapter.stats().evicted_nodes, 0);
        assert_eq!(a.adapter.server_count().await.expect("count"), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_node_is_evicted_after_the_heartbeat_timeout() {
        let (_hub, a, b) = heartbeat_pair(config()).await;
        b.transport.freeze();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(a.adapter.stats().known_nodes, 1, "silent for less than the timeout");
        assert_eq!(a.adapter.stats().evicted_nodes, 0);
        tokio::time::sleep(Duration::from_secs(4)).await;
        let stats = a.adapter.stats();
        assert_eq!((stats.known_nodes, stats.evicted_nodes), (0, 1));
        assert_eq!(a.adapter.server_count().await.expect("count"), 1);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(a.adapter.stats().evicted_nodes, 1, "evicted once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_behind_a_backlog_evicts_no_live_peer() {
        // A hears B's heartbeats late (held, in order, with its own health check pings):
        // by arrival B is silent for 7 s, more than the 3 s timeout; by A's own pings,
        // which come back after them, it never was
        let (_hub, a, b) = heartbeat_pair(config()).await;
        a.transport.hold();
        tokio::time::sleep(Duration::from_secs(7)).await;
        assert_eq!(a.adapter.stats().evicted_nodes, 0, "B is late, not silent");
        a.transport.release().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let stats = a.adapter.stats();
        assert_eq!((stats.known_nodes, stats.evicted_nodes), (1, 0), "{stats:?}");
        assert_eq!(a.adapter.server_count().await.expect("count"), 2);
        // and a peer that does go silent is still evicted
        b.transport.freeze();
        tokio::time::sleep(Duration::from_secs(6)).await;
        let stats = a.adapter.stats();
        assert_eq!((stats.known_nodes, stats.evicted_nodes), (0, 1), "{stats:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_closing_node_leaves_at_once_without_an_eviction() {
        let (_hub, a, b) = heartbeat_pair(config()).await;
        b.adapter.close().await.expect("close");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let stats = a.adapter.stats();
        assert_eq!((stats.known_nodes, stats.evicted_nodes), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn in_broker_mode_known_nodes_are_forgotten_quietly_after_the_ttl() {
        // no health check: its pings on the main channel would keep B known (alive)
        let (_hub, a, b) = broker_pair(ClusterConfig::default().with_health_check_interval(None)).await;
        b.adapter.broadcast(ev("hello"), BroadcastOptions::all()).await.expect("broadcast");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(a.adapter.stats().known_nodes, 1, "A saw B");
        tokio::time::sleep(KNOWN_NODE_TTL - Duration::from_secs(10)).await;
        assert_eq!(a.adapter.stats().known_nodes, 1, "within the ttl");
        tokio::time::sleep(Duration::from_secs(20)).await;
        let stats = a.adapter.stats();
        assert_eq!((stats.known_nodes, stats.evicted_nodes), (0, 0), "forgotten, not evicted");
        assert_eq!(a.adapter.server_count().await.expect("count"), 2, "the broker still counts B");
    }
}
