//! The reading side of the Kafka transport: librdkafka's callbacks, the topic and the
//! join markers, the consumer's placement and its reading task, and the [`Reconnect`]
//! that core's supervisor runs to re-place it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message as _, OwnedHeaders};
use rdkafka::producer::{FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use socketio_adapter_core::{Reconnect, Stat, Supervisor};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::error::KafkaTransportError;
use crate::transport::{CHANNEL_HEADER, Core, MARKER_HEADER, lock};

/// What the reading side shares with the transport handle and librdkafka's callbacks.
pub(crate) struct SubState {
    /// Subscribers, counters and reconnect wake-ups.
    pub(crate) sup: Arc<Supervisor>,
    /// Per partition, the lowest offset that may still be delivered.
    pub(crate) next: Mutex<Vec<i64>>,
    /// Every broker was reported down since the last re-placement.
    pub(crate) outage: AtomicBool,
    /// When "every broker down" was last logged at warn level.
    pub(crate) last_outage_log: Mutex<Option<Instant>>,
    pub(crate) consumer_errors: AtomicU64,
    /// The channel of records without a channel header (python-socketio's layout).
    pub(crate) bare_channel: Option<String>,
    /// librdkafka's last word on a failed broker connection (TLS handshake, SASL, ...):
    /// a failed connect names it, since the request that failed only says "transport
    /// failure".
    pub(crate) last_broker_error: Mutex<Option<String>>,
}

/// librdkafka callbacks: logs go to `tracing`; "all brokers down" wakes the supervisor.
#[derive(Clone)]
pub(crate) struct Ctx {
    role: &'static str,
    state: Weak<SubState>,
    /// Cleared when the client is retired: its last words must not wake the supervisor.
    pub(crate) active: Arc<AtomicBool>,
}

impl Ctx {
    pub(crate) fn new(role: &'static str, state: Weak<SubState>) -> Self {
        Ctx { role, state, active: Arc::new(AtomicBool::new(true)) }
    }
}

impl ClientContext for Ctx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        if fac == "FAIL"
            && let Some(state) = self.state.upgrade()
        {
            // a broker connection failed, and why (reported by `error` too, but not always
            // before the request waiting on it gives up)
            *lock(&state.last_broker_error) = Some(message.to_owned());
        }
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => warn!(target: "librdkafka", role = self.role, "{fac}: {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                info!(target: "librdkafka", role = self.role, "{fac}: {message}")
            }
            RDKafkaLogLevel::Debug => debug!(target: "librdkafka", role = self.role, "{fac}: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::AllBrokersDown) {
            debug!(role = self.role, error = %error, "librdkafka: {reason}");
            if let Some(state) = self.state.upgrade() {
                *lock(&state.last_broker_error) = Some(reason.to_owned());
            }
            return;
        }
        // reported again on every failed reconnect round: log the first of a burst only
        let Some(state) = self.state.upgrade() else { return };
        let now = Instant::now();
        let quiet = lock(&state.last_outage_log).is_some_and(|t| now.duration_since(t) < Duration::from_secs(10));
        if quiet {
            debug!(role = self.role, "every Kafka broker is still down");
        } else {
            *lock(&state.last_outage_log) = Some(now);
            warn!(role = self.role, "every Kafka broker is down; reconnecting, then re-placing the consumer");
        }
        if self.active.load(Ordering::Acquire) {
            state.outage.store(true, Ordering::Release);
            state.sup.connection_lost();
        }
    }
}

impl ConsumerContext for Ctx {}

/// One record, copied out of librdkafka's buffer.
struct Record {
    partition: i32,
    offset: i64,
    marker: bool,
    channel: Result<String, String>,
    payload: Bytes,
}

impl Record {
    fn of(m: &BorrowedMessage<'_>) -> Self {
        let mut marker = false;
        let mut channel = Err("no sio-channel header".to_owned());
        if let Some(headers) = m.headers() {
            for h in headers.iter() {
                match h.key {
                    MARKER_HEADER => marker = true,
                    CHANNEL_HEADER => {
                        channel = match h.value.map(std::str::from_utf8) {
                            Some(Ok(s)) => Ok(s.to_owned()),
                            Some(Err(_)) => Err("sio-channel header is not UTF-8".to_owned()),
                            None => Err("sio-channel header has no value".to_owned()),
                        }
                    }
                    _ => {}
                }
            }
        }
        Record {
            partition: m.partition(),
            offset: m.offset(),
            marker,
            channel,
            payload: Bytes::copy_from_slice(m.payload().unwrap_or_default()),
        }
    }
}

impl SubState {
    /// Delivers one record unless it is a replay, a marker or foreign.
    async fn handle(&self, record: Record) {
        {
            let mut next = lock(&self.next);
            let Some(next) = usize::try_from(record.partition).ok().and_then(|p| next.get_mut(p)) else {
                debug!(partition = record.partition, "record of an unassigned partition dropped");
                return;
            };
            if record.offset < *next {
                self.sup.counters().bump(Stat::ReplaysDropped);
                return;
            }
            *next = record.offset + 1;
        }
        if record.marker {
            return;
        }
        let channel = match (record.channel, &self.bare_channel) {
            (Ok(c), _) => c,
            (Err(_), Some(bare)) => bare.clone(),
            (Err(why), None) => {
                let n = self.sup.counters().bump(Stat::ForeignDropped);
                if n.is_power_of_two() || n == 0 {
                    warn!(
                        partition = record.partition,
                        offset = record.offset,
                        dropped = n + 1,
                        "foreign Kafka record dropped: {why}"
                    );
                }
                return;
            }
        };
        self.sup.deliver(&channel, &record.payload).await;
    }

    fn on_consumer_error(&self, error: &KafkaError) {
        let n = self.consumer_errors.fetch_add(1, Ordering::Relaxed);
        let replace = matches!(
            error.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::OffsetOutOfRange
                    | RDKafkaErrorCode::AutoOffsetReset
                    | RDKafkaErrorCode::UnknownTopicOrPartition
                    | RDKafkaErrorCode::UnknownPartition
                    | RDKafkaErrorCode::UnknownTopic
            )
        );
        if replace {
            warn!(error = %error, "Kafka consumer position lost; re-placing the consumer");
            self.sup.connection_lost();
        } else if n.is_power_of_two() || n == 0 {
            warn!(error = %error, errors = n + 1, "Kafka consumer error");
        }
    }
}

impl Core {
    pub(crate) fn new_consumer(&self) -> Result<Arc<StreamConsumer<Ctx>>, KafkaTransportError> {
        let consumer: StreamConsumer<Ctx> = self
            .opts
            .consumer_config(&format!("{}-{}", self.opts.client_id, self.id))
            .create_with_context(self.ctx("consumer"))
            .map_err(|e| KafkaTransportError::kafka("create consumer", e))?;
        Ok(Arc::new(consumer))
    }

    /// The topic's partition count from the broker's metadata, `None` if it is missing.
    async fn topic_partitions(&self) -> Result<Option<i32>, KafkaTransportError> {
        let producer = self.producer();
        let topic = self.opts.topic.clone();
        let timeout = self.opts.connect_timeout;
        let result = tokio::task::spawn_blocking(move || {
            let md = producer.client().fetch_metadata(Some(&topic), timeout)?;
            Ok::<_, KafkaError>(md.topics().iter().find(|t| t.name() == topic).and_then(|t| match t.error() {
                Some(_) => None,
                None => i32::try_from(t.partitions().len()).ok().filter(|n| *n > 0),
            }))
        })
        .await
        .map_err(|_| KafkaTransportError::Closed)?;
        result.map_err(|e| KafkaTransportError::kafka(format!("metadata of topic {}", self.opts.topic), e))
    }

    /// The topic's partition count; creates the topic first if it is missing.
    pub(crate) async fn ensure_topic(&self) -> Result<i32, KafkaTransportError> {
        if let Some(n) = self.topic_partitions().await? {
            return Ok(n);
        }
        let topic = &self.opts.topic;
        if !self.opts.create_topic {
            return Err(KafkaTransportError::Topic {
                topic: topic.clone(),
                reason: "does not exist and create_topic=false; create it or allow creation".into(),
            });
        }
        let admin: AdminClient<Ctx> = self
            .opts
            .base_config()
            // a short-lived client: its connection errors are not the node's outage
            .create_with_context(Ctx::new("admin", Weak::new()))
            .map_err(|e| KafkaTransportError::kafka("create admin client", e))?;
        let new = NewTopic::new(topic, self.opts.partitions, TopicReplication::Fixed(self.opts.replication_factor));
        let admin_opts = AdminOptions::new()
            .operation_timeout(Some(self.opts.connect_timeout))
            .request_timeout(Some(self.opts.connect_timeout));
        let results = admin
            .create_topics([&new], &admin_opts)
            .await
            .map_err(|e| KafkaTransportError::kafka(format!("create topic {topic}"), e))?;
        for result in results {
            match result {
                Ok(_) => info!(topic = %topic, partitions = self.opts.partitions, "Kafka topic created"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => {
                    return Err(KafkaTransportError::Topic {
                        topic: topic.clone(),
                        reason: format!("does not exist and creating it failed: {code}"),
                    });
                }
            }
        }
        // wait until the metadata shows it
        let deadline = tokio::time::Instant::now() + self.opts.connect_timeout;
        loop {
            if let Some(n) = self.topic_partitions().await? {
                return Ok(n);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(KafkaTransportError::Topic {
                    topic: topic.clone(),
                    reason: "created, but the broker's metadata does not show it yet".into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Produces a marker to each partition and returns their offsets.
    async fn place_markers(&self, partitions: i32) -> Result<Vec<i64>, KafkaTransportError> {
        let topic = &self.opts.topic;
        let empty: &[u8] = &[];
        let producer = self.producer();
        let mut futures = Vec::new();
        for p in 0..partitions {
            let headers = OwnedHeaders::new().insert(Header { key: MARKER_HEADER, value: Some(self.id.as_bytes()) });
            let record = FutureRecord::<[u8], [u8]>::to(topic).partition(p).payload(empty).headers(headers);
            match producer.send_result(record) {
                Ok(f) => futures.push(f),
                Err((e, _)) => return Err(KafkaTransportError::kafka(format!("produce a marker to {topic}/{p}"), e)),
            }
        }
        let mut offsets = vec![-1; futures.len()];
        let limit = self.opts.message_timeout + Duration::from_secs(1);
        for (p, f) in futures.into_iter().enumerate() {
            let op = || format!("produce a marker to {topic}/{p}");
            match tokio::time::timeout(limit, f).await {
                Ok(Ok(Ok(delivery))) => offsets[p] = delivery.offset,
                Ok(Ok(Err((e, _)))) => return Err(KafkaTransportError::kafka(op(), e)),
                Ok(Err(_)) => return Err(KafkaTransportError::Closed),
                Err(_) => {
                    return Err(KafkaTransportError::Timeout { op: op(), timeout_ms: limit.as_millis() as u64 });
                }
            }
        }
        Ok(offsets)
    }

    /// Places (or re-places) the consumer: fresh markers, then each partition read from
    /// its next deliverable offset (just after the marker on a first placement, or when
    /// the partition's log was reset below the position already handled).
    pub(crate) async fn place(&self, consumer: &StreamConsumer<Ctx>, first: bool) -> Result<(), KafkaTransportError> {
        let partitions = self.ensure_topic().await?;
        let markers = self.place_markers(partitions).await?;
        let mut tpl = TopicPartitionList::new();
        {
            let mut next = lock(&self.sub.next);
            if first {
                next.clear();
            }
            let known = next.len();
            for (p, &marker) in markers.iter().enumerate() {
                if p >= known {
                    next.push(marker + 1);
                } else if marker < next[p] {
                    // the log was re-created (a broker without persistence restarted)
                    next[p] = marker + 1;
                }
                let partition = i32::try_from(p).unwrap_or(i32::MAX);
                tpl.add_partition_offset(&self.opts.topic, partition, Offset::Offset(next[p]))
                    .map_err(|e| KafkaTransportError::kafka("build the assignment", e))?;
            }
            next.truncate(markers.len());
            debug!(topic = %self.opts.topic, next = ?*next, "assigning");
        }
        consumer.assign(&tpl).map_err(|e| KafkaTransportError::kafka(format!("assign {}", self.opts.topic), e))
    }
}

/// Reads the topic and hands records to the subscribers (awaiting full queues).
async fn consume(
    core: Arc<Core>,
    consumer: Arc<StreamConsumer<Ctx>>,
    mut shutdown: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let record = tokio::select! {
            r = consumer.recv() => match r {
                Ok(m) => Record::of(&m),
                Err(e) => {
                    core.sub.on_consumer_error(&e);
                    continue;
                }
            },
            _ = shutdown.changed() => return,
            _ = stop.changed() => return,
        };
        core.sub.handle(record).await;
    }
}

/// Stops a consumer's reading task, then drops the consumer off the runtime (closing a
/// librdkafka consumer blocks).
async fn retire(consumer: Arc<StreamConsumer<Ctx>>, reader: Reader) {
    consumer.context().active.store(false, Ordering::Release);
    let _ = consumer.unassign();
    // let it finish the record in hand (a subscriber may be applying back-pressure)
    let _ = reader.stop.send(true);
    let mut task = reader.task;
    if tokio::time::timeout(Duration::from_secs(1), &mut task).await.is_err() {
        task.abort();
        let _ = task.await;
    }
    tokio::task::spawn_blocking(move || drop(consumer));
}

/// The reading task of one consumer.
pub(crate) struct Reader {
    task: tokio::task::JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl Reader {
    pub(crate) fn spawn(core: &Arc<Core>, consumer: &Arc<StreamConsumer<Ctx>>) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(consume(Arc::clone(core), Arc::clone(consumer), core.shutdown.clone(), stop_rx));
        Reader { task, stop }
    }
}

/// The current consumer and its reading task, re-placed by core's supervisor (woken by
/// every broker down, a lost position or `resubscribe`).
///
/// Fresh clients, not the old ones reconnected: after a broker restart without
/// persistence the old consumer's metadata points at a vanished topic, and librdkafka
/// 2.12 crashes (NULL topic name in its Fetch leader-discovery path) on the answers
/// tansu gives to such fetches; the old idempotent producer is fenced for good.
pub(crate) struct Placement {
    core: Arc<Core>,
    current: Mutex<Option<(Arc<StreamConsumer<Ctx>>, Reader)>>,
}

impl Placement {
    pub(crate) fn new(core: &Arc<Core>, consumer: Arc<StreamConsumer<Ctx>>, reader: Reader) -> Self {
        Placement { core: Arc::clone(core), current: Mutex::new(Some((consumer, reader))) }
    }

    async fn retire_current(&self) {
        let current = lock(&self.current).take();
        if let Some((consumer, reader)) = current {
            // stop fetching at once, before librdkafka reconnects to a restarted broker
            let _ = consumer.unassign();
            retire(consumer, reader).await;
        }
    }
}

impl Reconnect for Placement {
    type Error = KafkaTransportError;

    async fn disconnect(&self, _forced: bool) {
        self.retire_current().await;
        if self.core.sub.outage.swap(false, Ordering::AcqRel)
            && let Err(e) = self.core.renew_producer()
        {
            warn!(error = %e, "Kafka producer not replaced");
        }
    }

    /// A fresh consumer, placed after fresh markers, and its reading task.
    async fn reconnect(&self, _forced: bool) -> Result<(), KafkaTransportError> {
        let core = &self.core;
        let fresh = core.new_consumer()?;
        let mut shutdown = core.shutdown.clone();
        let placed = tokio::select! {
            r = core.place(&fresh, false) => r,
            _ = shutdown.changed() => Err(KafkaTransportError::Closed),
        };
        if let Err(e) = placed {
            tokio::task::spawn_blocking(move || drop(fresh));
            return Err(e);
        }
        let reader = Reader::spawn(core, &fresh);
        *lock(&self.current) = Some((fresh, reader));
        info!(topic = %core.opts.topic, "Kafka consumer re-placed");
        Ok(())
    }

    async fn close(&self) {
        self.retire_current().await;
    }
}
