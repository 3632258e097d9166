//! The AMQP connection of a transport: its session (connection, publisher channel, the
//! node's queue and its consumer), the reading task, and the [`Reconnect`] that core's
//! supervisor runs to re-establish it.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::tcp::OwnedTLSConfig;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Acker, Connection, ConnectionProperties, Consumer, ExchangeKind};
use socketio_adapter_core::{Channel, Reconnect, Supervisor};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::error::AmqpTransportError;
use crate::options::{AmqpOptions, Layout, routing_key};

/// `x-expires` of a node's queue in the fanout layout, as python-socketio's managers
/// declare theirs: a queue left behind by a node that died goes away after 5 minutes, and
/// one whose node reconnects within them keeps what was published meanwhile.
pub(crate) const FANOUT_QUEUE_EXPIRES_MS: i32 = 300_000;

/// How often the supervisor looks at the connection and channel states, besides being
/// woken by a failed publish or a consumer that ended.
pub(crate) const CHECK_PERIOD: Duration = Duration::from_millis(250);

/// One connection and its channels. Dropping the last clone stops its consumer task.
#[derive(Clone)]
pub(crate) struct Session {
    pub(crate) generation: u64,
    pub(crate) conn: Arc<Connection>,
    pub(crate) publisher: lapin::Channel,
    pub(crate) queue: Option<QueueSide>,
    /// Fanout layout: the exchanges declared on this connection (by a publish or a bind).
    pub(crate) declared: Arc<Mutex<std::collections::HashSet<String>>>,
    /// Never sent to: its receivers (the consumer task) see it close when the session
    /// is dropped.
    pub(crate) alive: Arc<watch::Sender<()>>,
}

#[derive(Clone)]
pub(crate) struct QueueSide {
    pub(crate) channel: lapin::Channel,
    pub(crate) name: String,
}

pub(crate) struct Shared {
    pub(crate) opts: AmqpOptions,
    pub(crate) target: String,
    pub(crate) session: Mutex<Option<Session>>,
    /// Serializes subscribe, unsubscribe and re-establishing (subscribers and bindings
    /// agree).
    pub(crate) ops: tokio::sync::Mutex<()>,
    /// Subscribers (by channel name), counters and reconnect wake-ups.
    pub(crate) sup: Arc<Supervisor>,
    /// Somebody subscribed: a reconnect must declare a queue even with no channel left.
    pub(crate) wants_queue: AtomicBool,
    pub(crate) generations: AtomicU64,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Fanout layout: the node's queue name, the same across reconnects (the queue
    /// outlives a short outage, see [`FANOUT_QUEUE_EXPIRES_MS`]).
    pub(crate) queue_name: String,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Runs one broker operation with the operation timeout.
    pub(crate) async fn op<T>(
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

    pub(crate) fn current(&self) -> Option<Session> {
        lock(&self.session).clone()
    }

    pub(crate) fn current_generation(&self) -> Option<u64> {
        lock(&self.session).as_ref().map(|s| s.generation)
    }

    pub(crate) fn healthy(&self) -> bool {
        match &*lock(&self.session) {
            None => false,
            Some(s) => {
                s.conn.status().connected()
                    && s.publisher.status().connected()
                    && s.queue.as_ref().is_none_or(|q| q.channel.status().connected())
            }
        }
    }

    pub(crate) fn tls_config(&self) -> Result<OwnedTLSConfig, AmqpTransportError> {
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
    pub(crate) async fn establish(self: &Arc<Self>) -> Result<Session, AmqpTransportError> {
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
        if self.opts.layout() == Layout::Direct {
            self.declare_exchange(&publisher, self.opts.exchange(), ExchangeKind::Direct).await?;
        }
        if self.opts.confirms {
            self.op(|| "enable publisher confirms".into(), publisher.confirm_select(ConfirmSelectOptions::default()))
                .await?;
        }
        let (alive, _) = watch::channel(());
        let mut session =
            Session { generation, conn, publisher, queue: None, declared: Arc::default(), alive: Arc::new(alive) };
        if self.wants_queue.load(Ordering::Acquire) {
            let queue = self.open_queue(&session).await?;
            for channel in self.sup.subscribers().channels() {
                self.bind(&session, &queue, channel.as_str()).await?;
            }
            session.queue = Some(queue);
        }
        Ok(session)
    }

    /// Declares a non-durable exchange (auto-delete off, as python-socketio's managers
    /// declare theirs).
    async fn declare_exchange(
        &self,
        channel: &lapin::Channel,
        name: &str,
        kind: ExchangeKind,
    ) -> Result<(), AmqpTransportError> {
        let what = format!("{kind:?}").to_lowercase();
        self.op(
            || format!("declare exchange {name:?} ({what}, non-durable)"),
            channel.exchange_declare(
                name.into(),
                kind,
                ExchangeDeclareOptions { durable: false, auto_delete: false, ..ExchangeDeclareOptions::default() },
                FieldTable::default(),
            ),
        )
        .await
    }

    /// Fanout layout: declares the exchange of `channel` once per connection.
    pub(crate) async fn ensure_fanout(
        &self,
        session: &Session,
        on: &lapin::Channel,
        exchange: &str,
    ) -> Result<(), AmqpTransportError> {
        if self.opts.layout() != Layout::Fanout || lock(&session.declared).contains(exchange) {
            return Ok(());
        }
        self.declare_exchange(on, exchange, ExchangeKind::Fanout).await?;
        lock(&session.declared).insert(exchange.to_owned());
        Ok(())
    }

    /// Declares the node's queue and consumes it: exclusive, auto-delete and
    /// server-named in the direct layout; named, non-exclusive, with `x-expires`, in the
    /// fanout layout.
    pub(crate) async fn open_queue(self: &Arc<Self>, session: &Session) -> Result<QueueSide, AmqpTransportError> {
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
        let (name, declare) = match self.opts.layout() {
            Layout::Direct => {
                ("", QueueDeclareOptions { exclusive: true, auto_delete: true, durable: false, ..Default::default() })
            }
            Layout::Fanout => {
                args.insert("x-expires".into(), AMQPValue::LongInt(FANOUT_QUEUE_EXPIRES_MS));
                (self.queue_name.as_str(), QueueDeclareOptions { durable: false, ..Default::default() })
            }
        };
        let queue =
            self.op(|| "declare the node's queue".into(), channel.queue_declare(name.into(), declare, args)).await?;
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

    /// Binds `channel` to the node's queue (its routing key, or its fanout exchange).
    pub(crate) async fn bind(
        &self,
        session: &Session,
        queue: &QueueSide,
        channel: &str,
    ) -> Result<(), AmqpTransportError> {
        let (exchange, key) = self.opts.route(channel);
        self.ensure_fanout(session, &queue.channel, exchange).await?;
        self.op(
            || format!("bind {channel:?} to queue {}", queue.name),
            queue.channel.queue_bind(
                queue.name.as_str().into(),
                exchange.into(),
                key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            ),
        )
        .await
    }

    pub(crate) async fn unbind(&self, queue: &QueueSide, channel: &str) -> Result<(), AmqpTransportError> {
        let (exchange, key) = self.opts.route(channel);
        self.op(
            || format!("unbind {channel:?} from queue {}", queue.name),
            queue.channel.queue_unbind(
                queue.name.as_str().into(),
                exchange.into(),
                key.as_str().into(),
                FieldTable::default(),
            ),
        )
        .await
    }

    /// The subscribed channel a delivery belongs to: in the direct layout its routing
    /// key, or a channel over 255 bytes whose mapped key it is; in the fanout layout its
    /// exchange.
    pub(crate) fn channel_of(&self, delivery: &Delivery) -> Option<String> {
        let subscribers = self.sup.subscribers();
        if self.opts.layout() == Layout::Fanout {
            let exchange = delivery.exchange.as_str();
            return subscribers.contains(&Channel::Exact(exchange.to_owned())).then(|| exchange.to_owned());
        }
        let key = delivery.routing_key.as_str();
        if subscribers.contains(&Channel::Exact(key.to_owned())) {
            return Some(key.to_owned());
        }
        subscribers.channels().into_iter().map(|c| c.as_str().to_owned()).find(|c| routing_key(c) == key)
    }

    /// Hands one delivery to the subscribers of its routing key; returns its acker, for
    /// the consume loop to acknowledge it (with those before it) once handed on, so that
    /// the prefetch window, not this process, bounds what is in flight.
    pub(crate) async fn deliver(self: &Arc<Self>, delivery: Delivery) -> Acker {
        match self.channel_of(&delivery) {
            Some(channel) => {
                let exact = Channel::Exact(channel);
                self.sup.deliver_to(&exact, exact.as_str(), &Bytes::from(delivery.data)).await;
                if !self.sup.subscribers().contains(&exact) {
                    // its last subscriber closed its queue
                    self.unbind_unwanted(exact);
                }
            }
            None => debug!(
                exchange = %delivery.exchange,
                routing_key = %delivery.routing_key,
                "delivery without a subscriber dropped"
            ),
        }
        delivery.acker
    }

    /// Unbinds `channel` unless somebody subscribed to it again meanwhile.
    pub(crate) fn unbind_unwanted(self: &Arc<Self>, channel: Channel) {
        let shared = Arc::clone(self);
        tokio::spawn(async move {
            let _ops = shared.ops.lock().await;
            if !shared.sup.subscribers().contains(&channel)
                && let Some(queue) = shared.current().and_then(|s| s.queue)
            {
                let _ = shared.unbind(&queue, channel.as_str()).await;
            }
        });
    }
}

/// Deliveries acknowledged at once (`multiple`) while more are ready; below the
/// prefetch window's default (256), and everything handed on is acknowledged as soon as
/// nothing more is ready. One acknowledgement per delivery went through lapin's internal
/// RPC each time and capped a node at about a thousand deliveries a second (debug build).
const ACK_BATCH: usize = 64;

/// Acknowledges `last` and every delivery of its channel before it.
async fn ack_through(last: Option<Acker>) {
    if let Some(acker) = last
        && let Err(e) = acker.ack(BasicAckOptions { multiple: true }).await
    {
        debug!(error = %e, "ack failed (the consumer is being replaced)");
    }
}

/// Reads the node's queue until its session ends.
pub(crate) async fn consume(
    shared: Arc<Shared>,
    generation: u64,
    mut consumer: Consumer,
    mut alive: watch::Receiver<()>,
    queue: String,
) {
    let mut shutdown = shared.shutdown.clone();
    // the last delivery handed on but not acknowledged yet, and how many are
    let mut unacked: Option<Acker> = None;
    let mut count = 0usize;
    loop {
        let item = match consumer.next().now_or_never() {
            Some(item) => item,
            None => {
                // nothing ready: acknowledge what was handed on before waiting
                ack_through(unacked.take()).await;
                count = 0;
                tokio::select! {
                    item = consumer.next() => item,
                    _ = alive.changed() => return,
                    _ = shutdown.changed() => return,
                }
            }
        };
        match item {
            Some(Ok(delivery)) => {
                tokio::select! {
                    acker = shared.deliver(delivery) => {
                        unacked = Some(acker);
                        count += 1;
                        if count >= ACK_BATCH {
                            ack_through(unacked.take()).await;
                            count = 0;
                        }
                    }
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
        shared.sup.resubscribe();
    }
}

pub(crate) async fn close_quietly(session: Session) {
    let _ = tokio::time::timeout(Duration::from_secs(1), session.conn.close(200, "OK".into())).await;
}

/// What core's supervisor runs: watches the session (every 250 ms, and when a publish
/// failed or the consumer ended) and re-establishes it when it broke or a resubscribe was
/// asked for; closes it on shutdown.
pub(crate) struct Link(pub(crate) Arc<Shared>);

impl Reconnect for Link {
    type Error = AmqpTransportError;

    fn check_every(&self) -> Option<Duration> {
        Some(CHECK_PERIOD)
    }

    fn needs_reconnect(&self) -> bool {
        !self.0.healthy()
    }

    async fn disconnect(&self, forced: bool) {
        let old = lock(&self.0.session).take();
        if let Some(old) = old {
            if forced {
                info!(target = %self.0.target, "re-establishing the AMQP connection and its bindings");
            } else {
                warn!(target = %self.0.target, "AMQP connection lost; reconnecting");
            }
            close_quietly(old).await;
        }
    }

    async fn reconnect(&self, _forced: bool) -> Result<(), AmqpTransportError> {
        let _ops = self.0.ops.lock().await;
        let session = self.0.establish().await?;
        *lock(&self.0.session) = Some(session);
        Ok(())
    }

    async fn close(&self) {
        let old = lock(&self.0.session).take();
        if let Some(old) = old {
            close_quietly(old).await;
        }
        debug!(target = %self.0.target, "AMQP transport shut down");
    }
}
