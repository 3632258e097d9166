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
//! A supervisor re-places the consumer (topic re-created if needed, fresh markers,
//! re-assignment) after librdkafka reports every broker down, after an out-of-range or
//! unknown-partition error, and on [`Transport::resubscribe`]; then it sends
//! [`TransportEvent::Reconnected`] to every subscriber.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use socketio_adapter_core::{Channel, EventSender, Subscribers, Transport};
use tokio::sync::{Notify, watch};
use tracing::{debug, info, warn};

use crate::error::KafkaTransportError;
use crate::options::KafkaOptions;

/// Record header carrying the channel name.
pub const CHANNEL_HEADER: &str = "sio-channel";
/// Record header of a transport's join marker (value: the transport's id).
pub const MARKER_HEADER: &str = "sio-marker";

/// Counters of one transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KafkaStats {
    /// Messages handed to subscribers.
    pub delivered: u64,
    /// Records dropped because they were at or below an offset already handled
    /// (re-fetched after a re-assignment, or replayed by the broker).
    pub replays_dropped: u64,
    /// Records without a channel header or with a malformed one, dropped.
    pub foreign_dropped: u64,
    /// Times the consumer was re-placed (after outages and on `resubscribe`).
    pub recoveries: u64,
}

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
    shutdown: watch::Sender<bool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// What the background tasks share (never the [`Inner`], whose drop stops them).
struct Core {
    opts: KafkaOptions,
    id: String,
    /// Replaced by a fresh one after an outage (a broker that lost its state fences the
    /// old idempotent producer) and after publishes that timed out.
    producer: RwLock<(FutureProducer<Ctx>, Arc<AtomicBool>)>,
    /// When the producer was last replaced.
    producer_since: Mutex<Instant>,
    sub: Arc<SubState>,
    /// Whether the first subscription started the consumer; the lock serializes the start.
    consuming: tokio::sync::Mutex<bool>,
    shutdown: watch::Receiver<bool>,
}

struct SubState {
    subscribers: Subscribers,
    /// Per partition, the lowest offset that may still be delivered.
    next: Mutex<Vec<i64>>,
    /// Wakes the supervisor: the consumer must be re-placed.
    kick: Notify,
    /// Reasons to re-place seen so far (the supervisor skips wake-ups it already handled).
    kicks: AtomicU64,
    /// Every broker was reported down since the last re-placement.
    outage: AtomicBool,
    /// When "every broker down" was last logged at warn level.
    last_outage_log: Mutex<Option<Instant>>,
    delivered: AtomicU64,
    replays_dropped: AtomicU64,
    foreign_dropped: AtomicU64,
    recoveries: AtomicU64,
    consumer_errors: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// librdkafka callbacks: logs go to `tracing`; "all brokers down" wakes the supervisor.
#[derive(Clone)]
struct Ctx {
    role: &'static str,
    state: Weak<SubState>,
    /// Cleared when the client is retired: its last words must not wake the supervisor.
    active: Arc<AtomicBool>,
}

impl Ctx {
    fn new(role: &'static str, state: Weak<SubState>) -> Self {
        Ctx { role, state, active: Arc::new(AtomicBool::new(true)) }
    }
}

impl ClientContext for Ctx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
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
            state.wake();
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
    /// Asks the supervisor to re-place the consumer.
    fn wake(&self) {
        self.kicks.fetch_add(1, Ordering::AcqRel);
        self.kick.notify_one();
    }

    /// Delivers one record unless it is a replay, a marker or foreign.
    async fn handle(&self, record: Record) {
        {
            let mut next = lock(&self.next);
            let Some(next) = usize::try_from(record.partition).ok().and_then(|p| next.get_mut(p)) else {
                debug!(partition = record.partition, "record of an unassigned partition dropped");
                return;
            };
            if record.offset < *next {
                self.replays_dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            *next = record.offset + 1;
        }
        if record.marker {
            return;
        }
        let channel = match record.channel {
            Ok(c) => c,
            Err(why) => {
                let n = self.foreign_dropped.fetch_add(1, Ordering::Relaxed);
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
        let n = self.subscribers.deliver(&channel, &record.payload).await;
        self.delivered.fetch_add(n, Ordering::Relaxed);
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
            self.wake();
        } else if n.is_power_of_two() || n == 0 {
            warn!(error = %error, errors = n + 1, "Kafka consumer error");
        }
    }
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
    fn ctx(&self, role: &'static str) -> Ctx {
        Ctx::new(role, Arc::downgrade(&self.sub))
    }

    fn producer(&self) -> FutureProducer<Ctx> {
        self.producer.read().unwrap_or_else(PoisonError::into_inner).0.clone()
    }

    /// Replaces the producer by a fresh one (new producer id). The old one is dropped
    /// off the runtime: dropping purges and joins its thread.
    fn renew_producer(&self) -> Result<(), KafkaTransportError> {
        let fresh = new_producer(&self.opts, &self.sub)?;
        let (old, active) =
            std::mem::replace(&mut *self.producer.write().unwrap_or_else(PoisonError::into_inner), fresh);
        active.store(false, Ordering::Release);
        *lock(&self.producer_since) = Instant::now();
        tokio::task::spawn_blocking(move || drop(old));
        Ok(())
    }

    fn new_consumer(&self) -> Result<Arc<StreamConsumer<Ctx>>, KafkaTransportError> {
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
    async fn ensure_topic(&self) -> Result<i32, KafkaTransportError> {
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
    async fn place(&self, consumer: &StreamConsumer<Ctx>, first: bool) -> Result<(), KafkaTransportError> {
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

    async fn publish(&self, channel: &str, payload: &[u8]) -> Result<(), KafkaTransportError> {
        let topic = &self.opts.topic;
        let key = routing_key(&self.opts.prefix, channel);
        let mut retried = false;
        loop {
            let headers = OwnedHeaders::new().insert(Header { key: CHANNEL_HEADER, value: Some(channel) });
            let record = FutureRecord::to(topic).key(key).payload(payload).headers(headers);
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
            subscribers: Subscribers::new(),
            next: Mutex::new(Vec::new()),
            kick: Notify::new(),
            kicks: AtomicU64::new(0),
            outage: AtomicBool::new(false),
            last_outage_log: Mutex::new(None),
            delivered: AtomicU64::new(0),
            replays_dropped: AtomicU64::new(0),
            foreign_dropped: AtomicU64::new(0),
            recoveries: AtomicU64::new(0),
            consumer_errors: AtomicU64::new(0),
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
        let partitions = core.ensure_topic().await?;
        info!(target = %opts.describe(), partitions, "Kafka transport connected");
        Ok(KafkaTransport { inner: Arc::new(Inner { core, shutdown }) })
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

    /// Counters.
    pub fn stats(&self) -> KafkaStats {
        let s = &self.inner.core.sub;
        KafkaStats {
            delivered: s.delivered.load(Ordering::Relaxed),
            replays_dropped: s.replays_dropped.load(Ordering::Relaxed),
            foreign_dropped: s.foreign_dropped.load(Ordering::Relaxed),
            recoveries: s.recoveries.load(Ordering::Relaxed),
        }
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
        tokio::spawn(supervise(Arc::clone(core), consumer, core.shutdown.clone()));
        info!(topic = %core.opts.topic, id = %core.id, partitions = lock(&core.sub.next).len(),
              "Kafka consumer assigned");
        Ok(())
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
struct Reader {
    task: tokio::task::JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl Reader {
    fn spawn(core: &Arc<Core>, consumer: &Arc<StreamConsumer<Ctx>>) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(consume(Arc::clone(core), Arc::clone(consumer), core.shutdown.clone(), stop_rx));
        Reader { task, stop }
    }
}

/// Runs the reading task of the current consumer; when woken (every broker down, a lost
/// position, `resubscribe`) retires it and places a fresh producer and consumer, with
/// backoff until that works, then tells every subscriber.
///
/// Fresh clients, not the old ones reconnected: after a broker restart without
/// persistence the old consumer's metadata points at a vanished topic, and librdkafka
/// 2.12 crashes (NULL topic name in its Fetch leader-discovery path) on the answers
/// tansu gives to such fetches; the old idempotent producer is fenced for good.
async fn supervise(core: Arc<Core>, consumer: Arc<StreamConsumer<Ctx>>, mut shutdown: watch::Receiver<bool>) {
    let mut consumer = consumer;
    let mut reader = Reader::spawn(&core, &consumer);
    let mut handled = 0;
    loop {
        tokio::select! {
            _ = core.sub.kick.notified() => {}
            _ = shutdown.changed() => {
                retire(consumer, reader).await;
                return;
            }
        }
        if core.sub.kicks.load(Ordering::Acquire) == handled {
            // raised while the last re-placement ran, which covered it
            continue;
        }
        // stop fetching at once, before librdkafka reconnects to a restarted broker
        let _ = consumer.unassign();
        retire(consumer, reader).await;
        if core.sub.outage.swap(false, Ordering::AcqRel)
            && let Err(e) = core.renew_producer()
        {
            warn!(error = %e, "Kafka producer not replaced");
        }
        let mut delay = Duration::from_millis(100);
        let mut attempt = 0u32;
        let fresh = loop {
            attempt += 1;
            let placed = match core.new_consumer() {
                Ok(fresh) => {
                    let placed = tokio::select! {
                        r = core.place(&fresh, false) => r,
                        _ = shutdown.changed() => return,
                    };
                    match placed {
                        Ok(()) => Ok(fresh),
                        Err(e) => {
                            tokio::task::spawn_blocking(move || drop(fresh));
                            Err(e)
                        }
                    }
                }
                Err(e) => Err(e),
            };
            match placed {
                Ok(fresh) => break fresh,
                Err(e) => warn!(topic = %core.opts.topic, attempt, error = %e, retry_in = ?delay,
                                "Kafka consumer not re-placed yet"),
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.changed() => return,
            }
            delay = (delay * 2).min(Duration::from_secs(2));
        };
        handled = core.sub.kicks.load(Ordering::Acquire);
        consumer = fresh;
        reader = Reader::spawn(&core, &consumer);
        core.sub.recoveries.fetch_add(1, Ordering::Relaxed);
        info!(topic = %core.opts.topic, attempts = attempt, "Kafka consumer re-placed");
        core.sub.subscribers.reconnected().await;
    }
}

impl Transport for KafkaTransport {
    type Error = KafkaTransportError;

    fn name(&self) -> &'static str {
        "kafka"
    }

    async fn publish(&self, channel: &str, payload: Bytes) -> Result<(), KafkaTransportError> {
        self.inner.core.publish(channel, &payload).await
    }

    async fn subscribe(&self, channels: &[Channel], sink: EventSender) -> Result<(), KafkaTransportError> {
        self.ensure_consumer().await?;
        for channel in channels {
            self.inner.core.sub.subscribers.add(channel, &sink);
        }
        Ok(())
    }

    async fn unsubscribe(&self, channels: &[Channel], sink: &EventSender) -> Result<(), KafkaTransportError> {
        for channel in channels {
            self.inner.core.sub.subscribers.remove(channel, sink);
        }
        Ok(())
    }

    async fn server_count(&self, _channel: &str) -> Result<Option<usize>, KafkaTransportError> {
        Ok(None)
    }

    async fn resubscribe(&self) -> Result<(), KafkaTransportError> {
        if *self.inner.core.consuming.lock().await {
            self.inner.core.sub.wake();
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
