//! Unit tests of [`AckCollector`](super::AckCollector): the accounting, then the driver
//! with paused time.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::time::Instant;

use super::super::pending::{Expect, Pending};
use super::AckCollector;
use crate::adapter::{AckEvent, AckStream};
use crate::local::LocalAckStream;
use crate::message::Body;
use crate::value::Value;

fn nodes(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

fn count(n: u64) -> Body {
    Body::BroadcastClientCount { request_id: "r".into(), count: n }
}

fn ack(v: &str) -> Body {
    Body::BroadcastAck { request_id: "r".into(), value: Value::from(v) }
}

fn expect_of(event: Option<AckEvent>) -> Option<u64> {
    match event {
        Some(AckEvent::Expect(n)) => Some(n),
        _ => None,
    }
}

#[test]
fn local_acks_alone_complete_the_broadcast() {
    let mut c = AckCollector::new(2, Expect::count(0, BTreeSet::new()));
    assert!(!c.is_finished());
    assert!(
        matches!(c.local_ack("s1".into(), Ok(Value::from(1))), AckEvent::Ack(a) if a.socket.as_deref() == Some("s1"))
    );
    assert!(!c.is_finished());
    let _ = c.local_ack("s2".into(), Ok(Value::from(2)));
    assert!(c.is_finished());
    assert!(c.is_lossless());
}

#[test]
fn anonymous_counts_and_acks_are_added_up() {
    // broker-count mode: one peer, anonymous answers (classic protocol)
    let mut c = AckCollector::new(1, Expect::count(1, BTreeSet::new()));
    assert_eq!(expect_of(c.response(None, count(2))), Some(2));
    let _ = c.local_ack("s1".into(), Ok(Value::Null));
    assert!(!c.is_finished(), "2 remote acks announced, none arrived");
    assert!(matches!(c.response(None, ack("a")), Some(AckEvent::Ack(a)) if a.node.is_none() && a.socket.is_none()));
    assert!(!c.is_finished());
    let _ = c.response(None, ack("b"));
    assert!(c.is_finished());
    assert!(c.is_lossless());
}

#[test]
fn a_count_from_a_node_not_waited_for_is_ignored() {
    let mut c = AckCollector::new(0, Expect::nodes(nodes(&["B"])));
    assert_eq!(expect_of(c.response(Some("X".into()), count(5))), None);
    assert!(c.response(Some("B".into()), Body::AllRooms { request_id: "r".into() }).is_none(), "not an ack");
    assert_eq!(expect_of(c.response(Some("B".into()), count(1))), Some(1));
    assert_eq!(expect_of(c.response(Some("B".into()), count(1))), None, "B already answered");
    let _ = c.response(Some("B".into()), ack("b"));
    assert!(c.is_finished());
    assert!(c.is_lossless());
}

#[test]
fn a_node_leaving_before_its_count_is_named() {
    let mut c = AckCollector::new(0, Expect::nodes(nodes(&["B", "C"])));
    let _ = c.response(Some("B".into()), count(1));
    let _ = c.response(Some("B".into()), ack("b"));
    assert!(!c.is_finished(), "C has not announced");
    c.node_gone("C".into());
    assert!(c.is_finished());
    assert!(!c.is_lossless());
    let s = c.shortfall();
    assert_eq!((s.expected, s.received), (1, 1));
    assert_eq!(s.missing_nodes, vec!["C".to_owned()]);
    assert_eq!(s.operation, "broadcast with ack");
}

#[test]
fn a_node_leaving_with_acks_owed_ends_the_wait_and_is_named() {
    let mut c = AckCollector::new(0, Expect::nodes(nodes(&["B"])));
    let _ = c.response(Some("B".into()), count(3));
    let _ = c.response(Some("B".into()), ack("b1"));
    assert!(!c.is_finished());
    c.node_gone("B".into());
    assert!(c.is_finished(), "the 2 acks B owed will never come");
    assert!(!c.is_lossless());
    let s = c.shortfall();
    assert_eq!((s.expected, s.received), (3, 1));
    assert_eq!(s.missing_nodes, vec!["B".to_owned()]);
}

#[test]
fn a_node_leaving_after_delivering_everything_is_no_loss() {
    let mut c = AckCollector::new(0, Expect::nodes(nodes(&["B"])));
    let _ = c.response(Some("B".into()), count(1));
    let _ = c.response(Some("B".into()), ack("b1"));
    c.node_gone("B".into());
    assert!(c.is_finished());
    assert!(c.is_lossless());
}

#[test]
fn an_ended_local_stream_stops_the_wait_for_its_acks() {
    let mut c = AckCollector::new(3, Expect::count(0, BTreeSet::new()));
    let _ = c.local_ack("s1".into(), Ok(Value::Null));
    assert!(!c.is_finished());
    c.local_ended();
    assert!(c.is_finished());
}

#[test]
fn huge_peer_counts_saturate_instead_of_overflowing() {
    let mut c = AckCollector::new(1, Expect::count(3, BTreeSet::new()));
    assert_eq!(expect_of(c.response(None, count(u64::MAX))), Some(u64::MAX - 1), "1 + told fits in a u64");
    assert_eq!(expect_of(c.response(None, count(u64::MAX))), Some(0));
    assert_eq!(expect_of(c.response(Some("B".into()), count(u64::MAX))), Some(0));
    let _ = c.response(Some("B".into()), ack("b"));
    let _ = c.local_ack("s1".into(), Ok(Value::Null));
    assert!(!c.is_finished(), "waits for 'everything' until the timeout");
    let s = c.shortfall();
    assert_eq!((s.expected, s.received), (usize::MAX, 2));
    assert_eq!(s.missing_nodes, vec!["B".to_owned()]);
}

#[test]
fn a_huge_count_from_a_node_that_leaves_saturates_too() {
    let mut c = AckCollector::new(0, Expect::nodes(nodes(&["B", "C"])));
    let _ = c.response(Some("B".into()), count(u64::MAX));
    let _ = c.response(Some("C".into()), count(u64::MAX));
    c.node_gone("B".into());
    c.node_gone("C".into());
    assert!(c.is_finished());
    let s = c.shortfall();
    assert_eq!((s.expected, s.received), (usize::MAX, 0));
    assert_eq!(s.missing_nodes, vec!["B".to_owned(), "C".to_owned()]);
}

fn no_local_acks() -> LocalAckStream {
    Box::pin(futures_util::stream::empty())
}

#[tokio::test(start_paused = true)]
async fn without_answers_the_stream_ends_at_the_deadline_with_a_shortfall() {
    let (tx, stream) = AckStream::channel(16);
    let deadline = Instant::now() + Duration::from_secs(5);
    let collector = AckCollector::new(0, Expect::count(1, BTreeSet::new()));
    let driver = tokio::spawn(collector.run(tx, no_local_acks(), None, deadline));
    let gathered = stream.collect().await;
    assert!(driver.await.expect("driver"), "incomplete");
    assert!(gathered.value.is_empty());
    let s = gathered.shortfall.expect("shortfall");
    assert_eq!((s.expected, s.received), (0, 0));
    assert!(Instant::now() >= deadline);
}

#[tokio::test(start_paused = true)]
async fn responses_routed_to_the_request_reach_the_stream() {
    let pending = Pending::new(10, 10);
    let reg = pending.register(|| "req-1".to_owned()).expect("register");
    assert_eq!(pending.route("req-1", Some("B".into()), count(2)), super::super::pending::RouteResult::Delivered);
    for v in ["x", "y"] {
        let _ = pending.route("req-1", Some("B".into()), ack(v));
    }
    let (tx, mut stream) = AckStream::channel(16);
    let deadline = Instant::now() + Duration::from_secs(5);
    let collector = AckCollector::new(0, Expect::nodes(nodes(&["B"])));
    let incomplete = collector.run(tx, no_local_acks(), Some(reg), deadline).await;
    assert!(!incomplete);
    let mut values = Vec::new();
    while let Some(a) = futures_util::StreamExt::next(&mut stream).await {
        assert_eq!(a.node.as_deref(), Some("B"));
        values.push(a.result.expect("ok"));
    }
    assert_eq!(values, vec![Value::from("x"), Value::from("y")]);
    assert_eq!(stream.expected_clients(), 2);
    assert!(stream.shortfall().is_none());
    assert_eq!(pending.len(), 0, "the registration was dropped");
}
