//! Records this transport did not write (no channel header, a non-UTF-8 one, a payload
//! the dialect cannot read) are dropped and counted, and the node keeps working. Needs the
//! broker of `scripts/services.sh` (`KAFKA_BROKERS`); skipped without it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use socketio_adapter_core::{Channel, Transport, TransportEvent};
use socketio_adapter_kafka::{CHANNEL_HEADER, KafkaTransport};
use tokio::sync::mpsc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_records_are_dropped() {
    let Ok(brokers) = std::env::var("KAFKA_BROKERS") else {
        eprintln!("KAFKA_BROKERS is not set: skipped (run scripts/services.sh up kafka)");
        return;
    };
    let prefix = format!("sio-test-foreign-{:08x}", fastrand::u32(..));
    let channel = format!("{prefix}#/#");
    let node = KafkaTransport::connect_url(&format!("kafka://{brokers}?prefix={prefix}")).await.expect("connect");
    let (tx, mut rx) = mpsc::channel(64);
    node.subscribe(&[Channel::Exact(channel.clone())], tx).await.expect("subscribe");

    let raw: FutureProducer = ClientConfig::new().set("bootstrap.servers", &brokers).create().expect("producer");
    let send = |headers: Option<OwnedHeaders>, payload: &'static [u8]| {
        let raw = raw.clone();
        let topic = prefix.clone();
        async move {
            let mut record = FutureRecord::<str, [u8]>::to(&topic).key("/").payload(payload);
            if let Some(h) = headers {
                record = record.headers(h);
            }
            raw.send(record, Duration::from_secs(5)).await.expect("produce");
        }
    };
    send(None, b"no header at all").await;
    send(Some(OwnedHeaders::new().insert(Header { key: CHANNEL_HEADER, value: Some(&[0xff_u8, 0xfe][..]) })), b"x")
        .await;
    send(Some(OwnedHeaders::new().insert(Header { key: "other", value: Some("v") })), b"other header").await;
    // a well-formed record on our channel with garbage inside: delivered (the dialect
    // drops it, see the engine), not a transport concern
    send(Some(OwnedHeaders::new().insert(Header { key: CHANNEL_HEADER, value: Some(channel.as_str()) })), b"\xc1")
        .await;
    node.publish(&channel, b"ours".to_vec().into()).await.expect("publish");

    let mut got = Vec::new();
    while got.len() < 2 {
        let e = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("in time").expect("open");
        if let TransportEvent::Message { payload, .. } = e {
            got.push(payload.to_vec());
        }
    }
    assert_eq!(got, [b"\xc1".to_vec(), b"ours".to_vec()]);
    assert_eq!(node.stats().foreign_dropped, 3);
}
