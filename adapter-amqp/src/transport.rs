//! The [`Transport`] over AMQP 0-9-1 (RabbitMQ).
//!
//! One connection per transport with up to two channels: a publisher (declares the
//! exchange, publishes, publisher confirms) and, from the first `subscribe` on, a
//! consumer channel that owns the node's exclusive queue. The subscribed channels live in
//! core's [`Supervisor`], not in the client library: after the connection (or a channel,
//! or the consumer) is lost, or when the cluster engine asks for a `resubscribe`, the
//! supervisor reconnects with jittered exponential backoff (`session.rs` declares the
//! exchange and a new queue, binds every channel again and resumes consuming) and tells
//! each subscriber with [`TransportEvent::Reconnected`](socketio_adapter_core::TransportEvent).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Confirmation};
use socketio_adapter_core::{Backoff, Channel, EventSender, Stat, Supervisor, Transport, TransportStats};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::error::AmqpTransportError;
use crate::options::{AmqpOptions, Layout};
use crate::session::{Link, Shared, lock};

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
    /// Dropped with the last clone: the supervisor closes the connection, which deletes
    /// the exclusive queue.
    _shutdown: watch::Sender<bool>,
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
            sup: Supervisor::new("AMQP", opts.describe()),
            wants_queue: AtomicBool::new(false),
            generations: AtomicU64::new(0),
            shutdown: shutdown_rx.clone(),
            queue_name: format!("socketio-cluster.{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
        });
        let session = shared.establish().await?;
        *lock(&shared.session) = Some(session);
        shared.sup.spawn(Link(Arc::clone(&shared)), shutdown_rx);
        info!(broker = %shared.target, "AMQP transport connected");
        Ok(AmqpTransport { inner: Arc::new(Inner { shared, _shutdown: shutdown }) })
    }

    /// Parses `url` ([`AmqpOptions::parse`]) and connects.
    pub async fn connect_url(url: &str) -> Result<Self, AmqpTransportError> {
        Self::connect(&AmqpOptions::parse(url)?).await
    }

    /// The options this transport was made with.
    pub fn options(&self) -> &AmqpOptions {
        &self.inner.shared.opts
    }

    /// Changes the reconnect policy (default [`Backoff::default`]).
    pub fn set_backoff(&self, backoff: Backoff) {
        self.inner.shared.sup.set_backoff(backoff);
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

    fn describe(&self) -> String {
        self.inner.shared.sup.target().to_owned()
    }

    /// Counters (`reconnects`: the connection was re-established and every binding
    /// restored, after a loss or on `resubscribe`; `publish_errors`: not connected,
    /// refused, no confirm in time).
    fn stats(&self) -> TransportStats {
        self.inner.shared.sup.stats()
    }

    /// Whether the connection (and its channels) are up right now.
    fn is_connected(&self) -> bool {
        self.inner.shared.healthy()
    }

    async fn publish(&self, channel: &str, payload: Bytes) -> Result<(), AmqpTransportError> {
        let shared = &self.inner.shared;
        let Some(session) = shared.current() else {
            shared.sup.counters().bump(Stat::PublishErrors);
            return Err(AmqpTransportError::NotConnected);
        };
        let (exchange, key) = shared.opts.route(channel);
        let properties = match shared.opts.layout() {
            Layout::Direct => BasicProperties::default().with_delivery_mode(1),
            // what Kombu sends for a str body
            Layout::Fanout => BasicProperties::default()
                .with_content_type("text/plain".into())
                .with_content_encoding("utf-8".into())
                .with_delivery_mode(2),
        };
        let result = match shared.ensure_fanout(&session, &session.publisher, exchange).await {
            Err(e) => Err(e),
            Ok(()) => {
                shared
                    .op(|| format!("publish on {channel}"), async {
                        let confirm = session
                            .publisher
                            .basic_publish(
                                exchange.into(),
                                key.as_str().into(),
                                BasicPublishOptions::default(),
                                &payload,
                                properties,
                            )
                            .await?;
                        confirm.await
                    })
                    .await
            }
        };
        match result {
            Ok(Confirmation::Nack(_)) => {
                shared.sup.counters().bump(Stat::PublishErrors);
                Err(AmqpTransportError::Nacked { channel: channel.to_owned() })
            }
            Ok(_) => Ok(()),
            Err(e) => {
                shared.sup.counters().bump(Stat::PublishErrors);
                // let the supervisor look at the connection now rather than at its next tick
                shared.sup.connection_lost();
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
        let subscribers = shared.sup.subscribers();
        for channel in channels {
            // registered before the binding: what arrives right after it finds its sink
            if subscribers.add(channel, &sink)
                && let Err(e) = shared.bind(&session, &queue, channel.as_str()).await
            {
                subscribers.remove(channel, &sink);
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
            if shared.sup.subscribers().remove(channel, sink)
                && let Some(queue) = &queue
            {
                // forgotten either way: a failed unbind only costs unwanted deliveries
                // (dropped here) until the next reconnect, which does not restore it
                if let Err(e) = shared.unbind(queue, channel.as_str()).await {
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
        self.inner.shared.sup.resubscribe();
        Ok(())
    }
}
