//! The [`Transport`] over one Kafka topic, read by every node with manual partition
//! assignment (no consumer group).
//!
//! Per transport: one idempotent producer (created at connect, replaced after an outage)
//! and, from the first `subscribe` on, one consumer assigned to every partition of the
//! topic (replaced by a fresh one at every re-placement). Before it
//! assigns, the transport produces a *marker* record of its own to each partition and
//! reads the marker's offset from the delivery report; it then reads each partition from
//! just after its marker and keeps, per partition, the next offset it may deliver. So it
//! never delivers a record published before it joined, whatever the broker answers to
//! "latest offset" requests (tansu answers wrongly after multi-record batches), and never
//! the same record twice (re-fetched records below that offset are dropped).
//!
//! Core's [`Supervisor`] re-places the consumer ([`crate::consumer`]: topic re-created if
//! needed, fresh markers, re-assignment) after librdkafka reports every broker down,
//! after an out-of-range or unknown-partition error, and on [`Transport::resubscribe`];
//! then it sends [`TransportEvent::Reconnected`](socketio_adapter_core::TransportEvent)
//! to every subscriber.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Instant;

use bytes::Bytes;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use socketio_adapter_core::{Backoff, Channel, EventSender, Stat, Supervisor, Transport, TransportStats};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::consumer::{Ctx, Placement, Reader, SubState};
use crate::error::KafkaTransportError;
use crate::options::KafkaOptions;

/// Record header carrying the channel name.
pub const CHANNEL_HEADER: &str = "sio-channel";
/// Record header of a transport's join marker (value: the transport's id).
pub const MARKER_HEADER: &str = "sio-marker";

/// A Kafka transport. Clones share the producer and the consumer.
///
/// Each cluster node needs its own transport (its own consumer); several namespaces of
/// one node share one.
#[derive(Clone)]
pub struct KafkaTransport {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KafkaTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaTransport")
            .field("target", &self.inner.core.opts.describe())
            .field("id", &self.inner.core.id)
            .finish()
    }
}

struct Inner {
    core: Arc<Core>,
    /// Dropped with the last clone: stops the reading task and the supervisor.
    _shutdown: watch::Sender<bool>,
}

/// What the background tasks share (never the [`Inner`], whose drop stops them).
pub(crate) struct Core {
    pub(crate) opts: KafkaOptions,
    pub(crate) id: String,
    /// Replaced by a fresh one after an outage (a broker that lost its state fences the
    /// old idempotent producer) and after publishes that timed out.
    producer: RwLock<(FutureProducer<Ctx>, Arc<AtomicBool>)>,
    /// When the producer was last replaced.
    producer_since: Mutex<Instant>,
    pub(crate) sub: Arc<SubState>,
    /// Whether the first subscription started the consumer; the lock serializes the start.
    consuming: tokio::sync::Mutex<bool>,
    pub(crate) shutdown: watch::Receiver<bool>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The namespace part of `prefix#nsp#...`: the record key, so that every message of a
/// namespace lands in one partition and keeps its order.
fn routing_key<'c>(prefix: &str, channel: &'c str) -> &'c str {
    channel
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('#'))
        .map(|rest| rest.split('#').next().unwrap_or(rest))
        .unwrap_or(channel)
}

/// A producer and the switch that silences its callbacks once it is replaced.
fn new_producer(
    opts: &KafkaOptions,
    sub: &Arc<SubState>,
) -> Result<(FutureProducer<Ctx>, Arc<AtomicBool>), KafkaTransportError> {
    let ctx = Ctx::new("producer", Arc::downgrade(sub));
    let active = Arc::clone(&ctx.active);
    let producer: FutureProducer<Ctx> = opts
        .producer_config()
        .create_with_context(ctx)
        .map_err(|e| KafkaTransportError::kafka("create producer", e))?;
    Ok((producer, active))
}

fn is_stuck(e: &KafkaError) -> bool {
    matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::MessageTimedOut | RDKafkaErrorCode::Fatal))
}

fn is_unknown_topic(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::UnknownPartition
        )
    )
}

impl Core {
    pub(crate) fn ctx(&self, role: &'static str) -> Ctx {
        Ctx::new(role, Arc::downgrade(&self.sub))
    }

    pub(crate) fn producer(&self) -> FutureProducer<Ctx> {
        self.producer.read().unwrap_or_else(PoisonError::into_inner).0.clone()
    }

    /// Replaces the producer by a fresh one (new producer id). The old one is dropped
    /// off the runtime: dropping purges and joins its thread.
    pub(crate) fn renew_producer(&self) -> Result<(), KafkaTransportError> {
        let fresh = new_producer(&self.opts, &self.sub)?;
        let (old, active) =
            std::mem::replace(&mut *self.producer.write().unwrap_or_else(PoisonError::into_inner), fresh);
        active.store(false, Ordering::Release);
        *lock(&self.producer_since) = Instant::now();
        tokio::task::spawn_blocking(move || drop(old));
        Ok(())
    }

    /// Why the last broker connection failed, waiting up to a second for librdkafka to say
    /// (its connection timeouts are checked once a second).
    async fn last_broker_error(&self) -> Option<String> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
        loop {
            let reason = lock(&self.sub.last_broker_error).take();
            if reason.is_some() || tokio::time::Instant::now() >= deadline {
                return reason;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    async fn publish(&self, channel: &str, payload: &[u8]) -> Result<(), KafkaTransportError> {
        let topic = &self.opts.topic;
        let key = routing_key(&self.opts.prefix, channel);
        let bare = self.opts.bare_channel().is_some();
        let mut retried = false;
        loop {
            let record = if bare {
                // python-socketio's KafkaManager reads the bare JSON value (no headers); the
                // key (the channel) keeps every record in one partition, so in order
                FutureRecord::to(topic).key(key).payload(payload)
            } else {
                let headers = OwnedHeaders::new().insert(Header { key: CHANNEL_HEADER, value: Some(channel) });
                FutureRecord::to(topic).key(key).payload(payload).headers(headers)
            };
            match self.producer().send(record, Timeout::After(self.opts.message_timeout)).await {
                Ok(_) => return Ok(()),
                Err((e, _)) if is_stuck(&e) => {
                    // a broker that lost its state (restart without persistence) fences the
                    // idempotent producer for good: start over with a fresh one
                    let renew = lock(&self.producer_since).elapsed() >= self.opts.message_timeout;
                    if renew {
                        warn!(topic = %topic, error = %e, "publish timed out; replacing the producer");
                        self.renew_producer()?;
                        // the broker may have lost the topic too (no persistence)
                        if let Err(e) = self.ensure_topic().await {
                            warn!(topic = %topic, error = %e, "topic check after a timed-out publish failed");
                        }
                    }
                    return Err(KafkaTransportError::kafka(format!("publish on {channel} to {topic}"), e));
                }
                Err((e, _)) if !retried && is_unknown_topic(&e) => {
                    // re-created after a broker restart without persistence, or never created
                    warn!(topic = %topic, error = %e, "publish found no topic; creating it");
                    retried = true;
                    self.ensure_topic().await?;
                }
                Err((e, _)) => return Err(KafkaTransportError::kafka(format!("publish on {channel} to {topic}"), e)),
            }
        }
    }
}

impl KafkaTransport {
    /// Parses `url` (see [`KafkaOptions`]) and connects.
    pub async fn connect_url(url: &str) -> Result<Self, KafkaTransportError> {
        Self::connect(&KafkaOptions::parse(url)?).await
    }

    /// Creates the producer and makes sure the topic exists (creating it if allowed).
    /// Fails if no broker answers within `connect_timeout_ms`. No consumer is started
    /// until the first [`Transport::subscribe`]: a publish-only process (an emitter)
    /// never reads the topic.
    pub async fn connect(opts: &KafkaOptions) -> Result<Self, KafkaTransportError> {
        let sub = Arc::new(SubState {
            sup: Supervisor::new("Kafka", opts.describe()),
            next: Mutex::new(Vec::new()),
            outage: AtomicBool::new(false),
            last_outage_log: Mutex::new(None),
            consumer_errors: AtomicU64::new(0),
            bare_channel: opts.bare_channel().map(str::to_owned),
            last_broker_error: Mutex::new(None),
        });
        let producer = new_producer(opts, &sub)?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let core = Arc::new(Core {
            opts: opts.clone(),
            id: format!("{:016x}", fastrand::u64(..)),
            producer: RwLock::new(producer),
            producer_since: Mutex::new(Instant::now()),
            sub,
            consuming: tokio::sync::Mutex::new(false),
            shutdown: shutdown_rx,
        });
        let partitions = match core.ensure_topic().await {
            Ok(n) => n,
            Err(e) => return Err(e.because(core.last_broker_error().await)),
        };
        info!(broker = %opts.describe(), partitions, "Kafka transport connected");
        Ok(KafkaTransport { inner: Arc::new(Inner { core, _shutdown: shutdown }) })
    }

    /// This transport's id (the value of its marker records).
    pub fn id(&self) -> &str {
        &self.inner.core.id
    }

    /// The topic every message travels on.
    pub fn topic(&self) -> &str {
        &self.inner.core.opts.topic
    }

    /// Whether the consumer runs (it starts with the first subscription).
    pub async fn is_consuming(&self) -> bool {
        *self.inner.core.consuming.lock().await
    }

    /// The number of partitions the consumer reads (0 before the first subscription).
    pub fn assigned_partitions(&self) -> usize {
        lock(&self.inner.core.sub.next).len()
    }

    /// Changes the policy of re-placement attempts (default [`Backoff::default`]).
    pub fn set_backoff(&self, backoff: Backoff) {
        self.inner.core.sub.sup.set_backoff(backoff);
    }

    /// Starts the consumer on the first call: markers, assignment, the reading task and
    /// the supervisor.
    async fn ensure_consumer(&self) -> Result<(), KafkaTransportError> {
        let core = &self.inner.core;
        let mut consuming = core.consuming.lock().await;
        if *consuming {
            return Ok(());
        }
        let consumer = core.new_consumer()?;
        if let Err(e) = core.place(&consumer, true).await {
            tokio::task::spawn_blocking(move || drop(consumer));
            return Err(e);
        }
        *consuming = true;
        let reader = Reader::spawn(core, &consumer);
        core.sub.sup.spawn(Placement::new(core, consumer, reader), core.shutdown.clone());
        info!(topic = %core.opts.topic, id = %core.id, partitions = lock(&core.sub.next).len(),
              "Kafka consumer assigned");
        Ok(())
    }
}

impl Transport for KafkaTransport {
    type Error = KafkaTransportError;

    fn name(&self) -> &'static str {
        "kafka"
    }

    fn describe(&self) -> String {
        self.inner.core.sub.sup.target().to_owned()
    }

    /// Counters (`reconnects`: the consumer was re-placed, after an outage or on `resubscribe`;
    /// `replays_dropped`, `foreign_dropped`: records not delivered, see
    /// [`TransportStats`]).
    fn stats(&self) -> TransportStats {
        self.inner.core.sub.sup.stats()
    }

    /// `false` from an outage of every broker (or a lost consumer position) until the
    /// consumer was re-placed.
    fn is_connected(&self) -> bool {
        self.inner.core.sub.sup.is_connected()
    }

    async fn publish(&self, channel: &str, payload: Bytes) -> Result<(), KafkaTransportError> {
        let result = self.inner.core.publish(channel, &payload).await;
        if result.is_err() {
            self.inner.core.sub.sup.counters().bump(Stat::PublishErrors);
        }
        result
    }

    async fn subscribe(&self, channels: &[Channel], sink: EventSender) -> Result<(), KafkaTransportError> {
        self.ensure_consumer().await?;
        for channel in channels {
            self.inner.core.sub.sup.subscribers().add(channel, &sink);
        }
        Ok(())
    }

    async fn unsubscribe(&self, channels: &[Channel], sink: &EventSender) -> Result<(), KafkaTransportError> {
        for channel in channels {
            self.inner.core.sub.sup.subscribers().remove(channel, sink);
        }
        Ok(())
    }

    async fn server_count(&self, _channel: &str) -> Result<Option<usize>, KafkaTransportError> {
        Ok(None)
    }

    async fn resubscribe(&self) -> Result<(), KafkaTransportError> {
        if *self.inner.core.consuming.lock().await {
            self.inner.core.sub.sup.resubscribe();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_keyed_by_namespace() {
        assert_eq!(routing_key("socket.io", "socket.io#/#"), "/");
        assert_eq!(routing_key("socket.io", "socket.io#/admin#0123abcd#"), "/admin");
        assert_eq!(routing_key("socket.io", "socket.io#/chat#room 1#"), "/chat");
        assert_eq!(routing_key("p", "other#/#"), "other#/#");
    }
}
