//! The [`Transport`] over AMQP 0-9-1 (RabbitMQ).
//!
//! One connection per transport with up to two channels: a publisher (declares the
//! exchange, publishes, publisher confirms) and, from the first `subscribe` on, a
//! consumer channel that owns the node's exclusive queue. The routes (routing key ->
//! channel name and subscribers) live here, not in the client library: after the
//! connection (or a channel, or the consumer) is lost, or when the cluster engine asks
//! for a `resubscribe`, a supervisor task reconnects with jittered exponential backoff,
//! declares the exchange and a new queue, binds every route again, resumes consuming and
//! tells each subscriber with [`TransportEvent::Reconnected`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::tcp::OwnedTLSConfig;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Confirmation, Connection, ConnectionProperties, Consumer, ExchangeKind};
use socketio_adapter_core::{Channel, EventSender, Transport, TransportEvent};
use tokio::sync::{Notify, watch};
use tracing::{debug, info, warn};

use crate::error::AmqpTransportError;
use crate::options::{AmqpOptions, routing_key};

/// How often the supervisor looks at the connection and channel states, besides being
/// woken by a failed publish or a consumer that ended.
const CHECK_PERIOD: Duration = Duration::from_millis(250);
/// First and longest pause between reconnection attempts (plus up to 25% jitter).
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Counters of one transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AmqpStats {
    /// Messages handed to subscribers.
    pub delivered: u64,
    /// Times the connection was re-established and the routes restored (reconnects and
    /// `resubscribe` requests).
    pub reconnects: u64,
    /// Publishes that failed (not connected, refused, no confirm in time).
    pub publish_errors: u64,
}

/// An AMQP transport. Clones share the connection.
///
/// Each cluster node (each server process) needs its own transport: its queue receives
/// what the node subscribed to, once per message.
#[derive(Clone)]
pub struct AmqpTransport {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AmqpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpTransport").field("target", &self.inner.shared.target).finish()
    }
}

struct Inner {
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // the supervisor closes the connection, which deletes the exclusive queue
        let _ = self.shutdown.send(true);
    }
}

/// Where the messages of one routing key go.
struct Route {
    /// The channel name (differs from the routing key only for names over 255 bytes).
    channel: String,
    sinks: Vec<EventSender>,
}

/// One connection and its channels. Dropping the last clone stops its consumer task.
#[derive(Clone)]
struct Session {
    generation: u64,
    conn: Arc<Connection>,
    publisher: lapin::Channel,
    queue: Option<QueueSide>,
    /// Never sent to: its receivers (the consumer task) see it close when the session
    /// is dropped.
    alive: Arc<watch::Sender<()>>,
}

#[derive(Clone)]
struct QueueSide {
    channel: lapin::Channel,
    name: String,
}

struct Shared {
    opts: AmqpOptions,
    target: String,
    session: Mutex<Option<Session>>,
    /// Serializes subscribe, unsubscribe and re-establishing (routes and bindings agree).
    ops: tokio::sync::Mutex<()>,
    routes: Mutex<HashMap<String, Route>>,
    /// Somebody subscribed: a reconnect must declare a queue even with no route left.
    wants_queue: AtomicBool,
    kick: Notify,
    /// The next check must rebuild the session even if it looks healthy.
    force: AtomicBool,
    generations: AtomicU64,
    shutdown: watch::Receiver<bool>,
    delivered: AtomicU64,
    reconnects: AtomicU64,
    publish_errors: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Runs one broker operation with the operation timeout.
    async fn op<T>(
        &self,
        what: impl FnOnce() -> String,
        fut: impl Future<Output = lapin::Result<T>>,
    ) -> Result<T, AmqpTransportError> {
        let after = self.opts.operation_timeout;
        match tokio::time::timeout(after, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(AmqpTransportError::amqp(what(), e)),
            Err(_) => Err(AmqpTransportError::Timeout { op: what(), after }),
        }
    }

    fn current(&self) -> Option<Session> {
        lock(&self.session).clone()
    }

    fn current_generation(&self) -> Option<u64> {
        lock(&self.session).as_ref().map(|s| s.generation)
    }

    fn healthy(&self) -> bool {
        match &*lock(&self.session) {
            None => false,
            Some(s) => {
                s.conn.status().connected()
                    && s.publisher.status().connected()
                    && s.queue.as_ref().is_none_or(|q| q.channel.status().connected())
            }
        }
    }

    fn tls_config(&self) -> Result<OwnedTLSConfig, AmqpTransportError> {
        let mut config = OwnedTLSConfig::default();
        if let Some(path) = &self.opts.tls_ca_file {
            let pem = std::fs::read_to_string(path)
                .map_err(|source| AmqpTransportError::TlsCaFile { path: path.display().to_string(), source })?;
            config.cert_chain = Some(pem);
        }
        Ok(config)
    }

    /// Connects, declares the exchange and, if anybody subscribed, the queue with every
    /// route bound and a consumer running.
    async fn establish(self: &Arc<Self>) -> Result<Session, AmqpTransportError> {
        let generation = self.generations.fetch_add(1, Ordering::AcqRel) + 1;
        let tls = self.tls_config()?;
        let runtime = lapin::runtime::default_runtime().map_err(|e| AmqpTransportError::amqp("start", e))?;
        let props = ConnectionProperties::default()
            .with_connection_name(format!("socketio-adapter-amqp ({})", self.opts.prefix).into());
        let connect = Connection::connect_uri_with_config(self.opts.uri.clone(), props, tls, runtime);
        let after = self.opts.connect_timeout;
        let conn = match tokio::time::timeout(after, connect).await {
            Ok(Ok(conn)) => Arc::new(conn),
            Ok(Err(e)) => return Err(AmqpTransportError::amqp(format!("connect to {}", self.target), e)),
            Err(_) => return Err(AmqpTransportError::Timeout { op: format!("connect to {}", self.target), after }),
        };
        let publisher = self.op(|| "open the publisher channel".into(), conn.create_channel()).await?;
        let exchange = self.opts.exchange();
        self.op(
            || format!("declare exchange {exchange:?} (direct, non-durable)"),
            publisher.exchange_declare(
                exchange.into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions { durable: false, auto_delete: false, ..ExchangeDeclareOptions::default() },
                FieldTable::default(),
            ),
        )
        .await?;
        if self.opts.confirms {
            self.op(|| "enable publisher confirms".into(), publisher.confirm_select(ConfirmSelectOptions::default()))
                .await?;
        }
        let (alive, _) = watch::channel(());
        let mut session = Session { generation, conn, publisher, queue: None, alive: Arc::new(alive) };
        if self.wants_queue.load(Ordering::Acquire) {
            let queue = self.open_queue(&session).await?;
            let keys: Vec<String> = lock(&self.routes).keys().cloned().collect();
            for key in &keys {
                self.bind(&queue, key).await?;
            }
            session.queue = Some(queue);
        }
        Ok(session)
    }

    /// Declares the node's exclusive, auto-delete, server-named queue and consumes it.
    async fn open_queue(self: &Arc<Self>, session: &Session) -> Result<QueueSide, AmqpTransportError> {
        let channel = self.op(|| "open the consumer channel".into(), session.conn.create_channel()).await?;
        self.op(
            || format!("set prefetch {}", self.opts.prefetch),
            channel.basic_qos(self.opts.prefetch, BasicQosOptions::default()),
        )
        .await?;
        let mut args = FieldTable::default();
        if let Some(max) = self.opts.max_queue_length {
            args.insert("x-max-length".into(), AMQPValue::LongInt(i32::try_from(max).unwrap_or(i32::MAX)));
            args.insert("x-overflow".into(), AMQPValue::LongString("drop-head".into()));
        }
        let queue = self
            .op(
                || "declare the node's queue".into(),
                channel.queue_declare(
                    "".into(),
                    QueueDeclareOptions { exclusive: true, auto_delete: true, durable: false, ..Default::default() },
                    args,
                ),
            )
            .await?;
        let name = queue.name().as_str().to_owned();
        let consumer = self
            .op(
                || format!("consume queue {name}"),
                channel.basic_consume(
                    name.as_str().into(),
                    "".into(),
                    BasicConsumeOptions { no_ack: false, exclusive: true, ..Default::default() },
                    FieldTable::default(),
                ),
            )
            .await?;
        tokio::spawn(consume(Arc::clone(self), session.generation, consumer, session.alive.subscribe(), name.clone()));
        debug!(target = %self.target, queue = %name, "queue declared and consumed");
        Ok(QueueSide { channel, name })
    }

    async fn bind(&self, queue: &QueueSide, key: &str) -> Result<(), AmqpTransportError> {
        self.op(
            || format!("bind {key:?} to queue {}", queue.name),
            queue.channel.queue_bind(
                queue.name.as_str().into(),
                self.opts.exchange().into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            ),
        )
        .await
    }

    async fn unbind(&self, queue: &QueueSide, key: &str) -> Result<(), AmqpTransportError> {
        self.op(
            || format!("unbind {key:?} from queue {}", queue.name),
            queue.channel.queue_unbind(
                queue.name.as_str().into(),
                self.opts.exchange().into(),
                key.into(),
                FieldTable::default(),
            ),
        )
        .await
    }

    fn sinks(&self) -> Vec<EventSender> {
        let routes = lock(&self.routes);
        let mut sinks: Vec<EventSender> = Vec::new();
        for sink in routes.values().flat_map(|r| r.sinks.iter()) {
            if !sinks.iter().any(|s| s.same_channel(sink)) {
                sinks.push(sink.clone());
            }
        }
        sinks
    }

    /// Hands one delivery to the subscribers of its routing key, then acknowledges it
    /// (so the prefetch window, not this process, bounds what is in flight).
    async fn deliver(self: &Arc<Self>, delivery: Delivery) {
        let key = delivery.routing_key.as_str().to_owned();
        let route = lock(&self.routes).get(&key).map(|r| (r.channel.clone(), r.sinks.clone()));
        match route {
            Some((channel, sinks)) => {
                let payload = Bytes::from(delivery.data);
                for sink in sinks {
                    let event = TransportEvent::Message { channel: channel.clone(), payload: payload.clone() };
                    if sink.send(event).await.is_ok() {
                        self.delivered.fetch_add(1, Ordering::Relaxed);
                    } else {
                        self.forget_sink(&key, &sink);
                    }
                }
            }
            None => debug!(routing_key = %key, "delivery without a subscriber dropped"),
        }
        if let Err(e) = delivery.acker.ack(BasicAckOptions::default()).await {
            debug!(error = %e, "ack failed (the consumer is being replaced)");
        }
    }

    /// A subscriber closed its queue: forget it, and unbind its routing key if nobody
    /// else wants it.
    fn forget_sink(self: &Arc<Self>, key: &str, sink: &EventSender) {
        let now_empty = {
            let mut routes = lock(&self.routes);
            match routes.get_mut(key) {
                Some(route) => {
                    route.sinks.retain(|s| !s.same_channel(sink));
                    route.sinks.is_empty()
                }
                None => false,
            }
        };
        if now_empty {
            let shared = Arc::clone(self);
            let key = key.to_owned();
            tokio::spawn(async move {
                let _ops = shared.ops.lock().await;
                let still_empty = {
                    let mut routes = lock(&shared.routes);
                    let empty = routes.get(&key).is_some_and(|r| r.sinks.is_empty());
                    if empty {
                        routes.remove(&key);
                    }
                    empty
                };
                if still_empty && let Some(queue) = shared.current().and_then(|s| s.queue) {
                    let _ = shared.unbind(&queue, &key).await;
                }
            });
        }
    }
}

/// Reads the node's queue until its session ends.
async fn consume(
    shared: Arc<Shared>,
    generation: u64,
    mut consumer: Consumer,
    mut alive: watch::Receiver<()>,
    queue: String,
) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        let item = tokio::select! {
            item = consumer.next() => item,
            _ = alive.changed() => return,
            _ = shutdown.changed() => return,
        };
        match item {
            Some(Ok(delivery)) => {
                tokio::select! {
                    () = shared.deliver(delivery) => {}
                    _ = alive.changed() => return,
                    _ = shutdown.changed() => return,
                }
            }
            Some(Err(e)) => {
                warn!(target = %shared.target, queue = %queue, error = %e, "AMQP consumer failed");
                break;
            }
            None => {
                warn!(target = %shared.target, queue = %queue, "AMQP consumer cancelled by the broker");
                break;
            }
        }
    }
    if shared.current_generation() == Some(generation) {
        shared.force.store(true, Ordering::Release);
        shared.kick.notify_one();
    }
}

async fn close_quietly(session: Session) {
    let _ = tokio::time::timeout(Duration::from_secs(1), session.conn.close(200, "OK".into())).await;
}

/// Watches the session and re-establishes it (with backoff) when it broke or a
/// resubscribe was asked for; closes it on shutdown.
async fn supervise(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    let mut tick = tokio::time::interval(CHECK_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    'outer: loop {
        tokio::select! {
            _ = shared.kick.notified() => {}
            _ = tick.tick() => {}
            _ = shutdown.changed() => break,
        }
        let force = shared.force.swap(false, Ordering::AcqRel);
        if !force && shared.healthy() {
            continue;
        }
        let old = lock(&shared.session).take();
        if let Some(old) = old {
            if force {
                info!(target = %shared.target, "re-establishing the AMQP connection and its bindings");
            } else {
                warn!(target = %shared.target, "AMQP connection lost; reconnecting");
            }
            close_quietly(old).await;
        }
        let mut delay = BACKOFF_MIN;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result = {
                let _ops = shared.ops.lock().await;
                shared.establish().await.map(|session| *lock(&shared.session) = Some(session))
            };
            match result {
                Ok(()) => break,
                Err(e) => {
                    warn!(target = %shared.target, attempt, error = %e, retry_in = ?delay, "AMQP reconnect failed")
                }
            }
            let jitter = Duration::from_millis(fastrand::u64(0..=(delay.as_millis() as u64 / 4).max(1)));
            tokio::select! {
                _ = tokio::time::sleep(delay + jitter) => {}
                _ = shutdown.changed() => break 'outer,
            }
            delay = (delay * 2).min(BACKOFF_MAX);
        }
        shared.reconnects.fetch_add(1, Ordering::Relaxed);
        info!(target = %shared.target, routes = lock(&shared.routes).len(), attempts = attempt, "AMQP connection restored");
        // in a task of its own: a subscriber that is slow to drain must not keep the
        // supervisor from watching the new connection
        let sinks = shared.sinks();
        tokio::spawn(async move {
            for sink in sinks {
                let _ = sink.send(TransportEvent::Reconnected).await;
            }
        });
    }
    let old = lock(&shared.session).take();
    if let Some(old) = old {
        close_quietly(old).await;
    }
    debug!(target = %shared.target, "AMQP transport shut down");
}

impl AmqpTransport {
    /// Connects (one attempt, bounded by the connect timeout) and declares the exchange.
    /// No queue yet: a publish-only user (an emitter) never gets one.
    pub async fn connect(opts: &AmqpOptions) -> Result<Self, AmqpTransportError> {
        let (shutdown, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            opts: opts.clone(),
            target: opts.describe(),
            session: Mutex::new(None),
            ops: tokio::sync::Mutex::new(()),
            routes: Mutex::new(HashMap::new()),
            wants_queue: AtomicBool::new(false),
            kick: Notify::new(),
            force: AtomicBool::new(false),
            generations: AtomicU64::new(0),
            shutdown: shutdown_rx,
            delivered: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            publish_errors: AtomicU64::new(0),
        });
        let session = shared.establish().await?;
        *lock(&shared.session) = Some(session);
        tokio::spawn(supervise(Arc::clone(&shared)));
        info!(target = %shared.target, "AMQP transport connected");
        Ok(AmqpTransport { inner: Arc::new(Inner { shared, shutdown }) })
    }

    /// Parses `url` ([`AmqpOptions::parse`]) and connects.
    pub async fn connect_url(url: &str) -> Result<Self, AmqpTransportError> {
        Self::connect(&AmqpOptions::parse(url)?).await
    }

    /// The options this transport was made with.
    pub fn options(&self) -> &AmqpOptions {
        &self.inner.shared.opts
    }

    /// Counters.
    pub fn stats(&self) -> AmqpStats {
        let s = &self.inner.shared;
        AmqpStats {
            delivered: s.delivered.load(Ordering::Relaxed),
            reconnects: s.reconnects.load(Ordering::Relaxed),
            publish_errors: s.publish_errors.load(Ordering::Relaxed),
        }
    }

    /// Whether the connection (and its channels) are up right now.
    pub fn is_connected(&self) -> bool {
        self.inner.shared.healthy()
    }

    /// The server-generated name of this node's queue (`amq.gen-...`), once something
    /// was subscribed and while connected.
    pub fn queue_name(&self) -> Option<String> {
        self.inner.shared.current().and_then(|s| s.queue).map(|q| q.name)
    }
}

impl Transport for AmqpTransport {
    type Error = AmqpTransportError;

    fn name(&self) -> &'static str {
        "amqp"
    }

    async fn publish(&self, channel: &str, payload: Bytes) -> Result<(), AmqpTransportError> {
        let shared = &self.inner.shared;
        let Some(session) = shared.current() else {
            shared.publish_errors.fetch_add(1, Ordering::Relaxed);
            return Err(AmqpTransportError::NotConnected);
        };
        let key = routing_key(channel);
        let result = shared
            .op(|| format!("publish on {channel}"), async {
                let confirm = session
                    .publisher
                    .basic_publish(
                        shared.opts.exchange().into(),
                        key.as_str().into(),
                        BasicPublishOptions::default(),
                        &payload,
                        BasicProperties::default().with_delivery_mode(1),
                    )
                    .await?;
                confirm.await
            })
            .await;
        match result {
            Ok(Confirmation::Nack(_)) => {
                shared.publish_errors.fetch_add(1, Ordering::Relaxed);
                Err(AmqpTransportError::Nacked { channel: channel.to_owned() })
            }
            Ok(_) => Ok(()),
            Err(e) => {
                shared.publish_errors.fetch_add(1, Ordering::Relaxed);
                // let the supervisor look at the connection now rather than at its next tick
                shared.kick.notify_one();
                Err(e)
            }
        }
    }

    async fn subscribe(&self, channels: &[Channel], sink: EventSender) -> Result<(), AmqpTransportError> {
        if let Some(p) = channels.iter().find(|c| matches!(c, Channel::Pattern(_))) {
            return Err(AmqpTransportError::Unsupported(format!(
                "pattern subscription {:?} (a direct exchange routes exact channel names only)",
                p.as_str()
            )));
        }
        let shared = &self.inner.shared;
        let _ops = shared.ops.lock().await;
        let session = shared.current().ok_or(AmqpTransportError::NotConnected)?;
        let queue = match &session.queue {
            Some(queue) => queue.clone(),
            None => {
                let queue = shared.open_queue(&session).await?;
                shared.wants_queue.store(true, Ordering::Release);
                let mut guard = lock(&shared.session);
                if let Some(current) = guard.as_mut()
                    && current.generation == session.generation
                {
                    current.queue = Some(queue.clone());
                }
                queue
            }
        };
        for channel in channels {
            let key = routing_key(channel.as_str());
            let fresh = {
                let mut routes = lock(&shared.routes);
                let route = routes
                    .entry(key.clone())
                    .or_insert_with(|| Route { channel: channel.as_str().to_owned(), sinks: vec![] });
                let fresh = route.sinks.is_empty();
                if !route.sinks.iter().any(|s| s.same_channel(&sink)) {
                    route.sinks.push(sink.clone());
                }
                fresh
            };
            if fresh && let Err(e) = shared.bind(&queue, &key).await {
                let mut routes = lock(&shared.routes);
                if let Some(route) = routes.get_mut(&key) {
                    route.sinks.retain(|s| !s.same_channel(&sink));
                    if route.sinks.is_empty() {
                        routes.remove(&key);
                    }
                }
                return Err(e);
            }
        }
        Ok(())
    }

    async fn unsubscribe(&self, channels: &[Channel], sink: &EventSender) -> Result<(), AmqpTransportError> {
        let shared = &self.inner.shared;
        let _ops = shared.ops.lock().await;
        let queue = shared.current().and_then(|s| s.queue);
        let mut first_error = None;
        for channel in channels {
            let key = routing_key(channel.as_str());
            let now_empty = {
                let mut routes = lock(&shared.routes);
                match routes.get_mut(&key) {
                    Some(route) => {
                        route.sinks.retain(|s| !s.same_channel(sink));
                        let empty = route.sinks.is_empty();
                        if empty {
                            routes.remove(&key);
                        }
                        empty
                    }
                    None => false,
                }
            };
            if now_empty && let Some(queue) = &queue {
                // forgotten either way: a failed unbind only costs unwanted deliveries
                // (dropped here) until the next reconnect, which does not restore it
                if let Err(e) = shared.unbind(queue, &key).await {
                    warn!(channel = channel.as_str(), error = %e, "unbind failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn server_count(&self, _channel: &str) -> Result<Option<usize>, AmqpTransportError> {
        // RabbitMQ cannot count the queues bound to one routing key through AMQP: the
        // cluster engine counts servers by heartbeats instead
        Ok(None)
    }

    async fn resubscribe(&self) -> Result<(), AmqpTransportError> {
        let shared = &self.inner.shared;
        shared.force.store(true, Ordering::Release);
        shared.kick.notify_one();
        Ok(())
    }
}
