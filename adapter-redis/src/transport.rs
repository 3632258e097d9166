//! The [`Transport`] over Redis pub/sub (classic) or sharded pub/sub, on standalone Redis
//! or Redis Cluster.
//!
//! Two connections per transport: a publisher (a [`ConnectionManager`] that reconnects on
//! its own, or the cluster connection) and a RESP3 subscriber whose pushes feed one
//! dispatcher task. The subscriber's channels are kept in a registry owned here, not in
//! the client library: after a disconnect, a server-side unsubscribe (slot migration on
//! Redis Cluster) or a health-check request, a supervisor task reconnects with backoff
//! and re-issues every subscription from that registry (one channel per SSUBSCRIBE), then
//! tells each subscriber with [`TransportEvent::Reconnected`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Client, ProtocolVersion, PushInfo, PushKind, Value};
use socketio_adapter_core::{Channel, EventSender, Subscribers, Transport};
use tokio::sync::{Notify, mpsc, watch};
use tracing::{debug, info, warn};

use crate::batch::Batcher;
use crate::error::RedisTransportError;
use crate::options::{Mode, RedisOptions};

/// Counters of one transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RedisStats {
    /// Messages dropped because the subscriber queue was full.
    pub dropped: u64,
    /// Times the subscriptions were restored (reconnects and repairs).
    pub resubscriptions: u64,
    /// Messages handed to subscribers.
    pub delivered: u64,
}

/// A Redis transport. Clones share the connections.
///
/// Each cluster node (each server process) needs its own transport: Redis counts servers
/// by subscriber connections (`PUBSUB NUMSUB`), so two nodes sharing one transport
/// would be counted as one.
#[derive(Clone)]
pub struct RedisTransport {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTransport").field("target", &self.inner.target).field("mode", &self.inner.mode).finish()
    }
}

struct Inner {
    target: String,
    mode: Mode,
    publisher: Publisher,
    /// Pipelines concurrent publishes (standalone Redis).
    batcher: Option<Batcher>,
    sub: Arc<SubState>,
    /// Opens the standalone subscriber connection (lazily, then on every repair).
    connector: Arc<Connector>,
    command_timeout: Duration,
    shutdown: watch::Sender<bool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

#[derive(Clone)]
enum Publisher {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

#[derive(Clone)]
enum SubConn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// How to open a subscriber connection again.
enum Connector {
    Single { client: Box<Client>, config: Box<dyn Fn(u64) -> AsyncConnectionConfig + Send + Sync> },
    Cluster,
}

impl Connector {
    /// A fresh standalone subscriber connection (`None` on Redis Cluster, whose client
    /// connection is kept); pushes of older connections are ignored from here on.
    async fn open_single(
        &self,
        state: &SubState,
        op: impl FnOnce() -> String,
    ) -> Result<Option<SubConn>, RedisTransportError> {
        let Connector::Single { client, config } = self else { return Ok(None) };
        let generation = state.generation.fetch_add(1, Ordering::AcqRel) + 1;
        let conn = client
            .get_multiplexed_async_connection_with_config(&config(generation))
            .await
            .map_err(|e| RedisTransportError::command(op(), e))?;
        Ok(Some(SubConn::Single(conn)))
    }
}

struct SubState {
    mode: Mode,
    cluster: bool,
    subscribers: Subscribers,
    conn: tokio::sync::Mutex<Option<SubConn>>,
    /// Generation of the standalone subscriber connection: pushes of older ones are ignored.
    generation: AtomicU64,
    kick: Notify,
    /// The next repair must drop and re-create the subscriptions (not just re-issue them).
    force: AtomicBool,
    dropped: AtomicU64,
    resubscriptions: AtomicU64,
    delivered: AtomicU64,
}

#[derive(Clone, Copy, Debug)]
enum Verb {
    Sub,
    Unsub,
}

impl SubState {
    fn command_name(&self, channel: &Channel, verb: Verb) -> &'static str {
        match (channel, self.mode, verb) {
            (Channel::Pattern(_), _, Verb::Sub) => "PSUBSCRIBE",
            (Channel::Pattern(_), _, Verb::Unsub) => "PUNSUBSCRIBE",
            (Channel::Exact(_), Mode::Classic, Verb::Sub) => "SUBSCRIBE",
            (Channel::Exact(_), Mode::Classic, Verb::Unsub) => "UNSUBSCRIBE",
            (Channel::Exact(_), Mode::Sharded, Verb::Sub) => "SSUBSCRIBE",
            (Channel::Exact(_), Mode::Sharded, Verb::Unsub) => "SUNSUBSCRIBE",
        }
    }

    /// Issues one subscribe-like command for one channel (one channel per command: on
    /// Redis Cluster, channels of different slots cannot share an SSUBSCRIBE).
    async fn issue(&self, conn: &mut SubConn, channel: &Channel, verb: Verb) -> Result<(), RedisTransportError> {
        let name = self.command_name(channel, verb);
        let ch = channel.as_str();
        let result = match conn {
            SubConn::Single(c) => match (name, verb) {
                ("SUBSCRIBE", _) => c.subscribe(ch).await,
                ("UNSUBSCRIBE", _) => c.unsubscribe(ch).await,
                ("PSUBSCRIBE", _) => c.psubscribe(ch).await,
                ("PUNSUBSCRIBE", _) => c.punsubscribe(ch).await,
                // the multiplexed connection has no typed SSUBSCRIBE; RESP3 confirms it with a push
                _ => redis::cmd(name).arg(ch).exec_async(c).await,
            },
            SubConn::Cluster(c) => match name {
                "SUBSCRIBE" => c.subscribe(ch).await,
                "UNSUBSCRIBE" => c.unsubscribe(ch).await,
                "PSUBSCRIBE" => c.psubscribe(ch).await,
                "PUNSUBSCRIBE" => c.punsubscribe(ch).await,
                "SSUBSCRIBE" => c.ssubscribe(ch).await,
                _ => c.sunsubscribe(ch).await,
            },
        };
        result.map_err(|e| RedisTransportError::command(format!("{name} {ch}"), e))
    }

    /// Re-issues every registered subscription on `conn`.
    async fn restore(&self, conn: &mut SubConn, force: bool) -> Result<(), RedisTransportError> {
        for channel in &self.subscribers.channels() {
            if force {
                let _ = self.issue(conn, channel, Verb::Unsub).await;
            }
            self.issue(conn, channel, Verb::Sub).await?;
        }
        Ok(())
    }

    async fn deliver(&self, key: &Channel, channel: String, payload: Bytes) {
        let n = self.subscribers.deliver_to(key, &channel, &payload).await;
        self.delivered.fetch_add(n, Ordering::Relaxed);
    }

    /// Handles one push from the connection.
    async fn on_push(&self, info: PushInfo) {
        let PushInfo { kind, data } = info;
        match kind {
            PushKind::Message | PushKind::SMessage => {
                let mut it = data.into_iter();
                if let (Some(ch), Some(payload)) = (it.next().and_then(text), it.next().and_then(bytes)) {
                    self.deliver(&Channel::Exact(ch.clone()), ch, payload).await;
                }
            }
            PushKind::PMessage => {
                let mut it = data.into_iter();
                if let (Some(pattern), Some(ch), Some(payload)) =
                    (it.next().and_then(text), it.next().and_then(text), it.next().and_then(bytes))
                {
                    self.deliver(&Channel::Pattern(pattern), ch, payload).await;
                }
            }
            PushKind::SUnsubscribe if self.cluster => {
                // the server dropped a shard channel we still want (its slot moved): repair
                if let Some(ch) = data.into_iter().next().and_then(text)
                    && self.subscribers.contains(&Channel::Exact(ch.clone()))
                {
                    warn!(channel = %ch, "Redis unsubscribed a shard channel (slot moved?); resubscribing");
                    self.kick.notify_one();
                }
            }
            _ => {}
        }
    }
}

fn text(v: Value) -> Option<String> {
    match v {
        Value::BulkString(b) => {
            Some(String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into()))
        }
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

fn bytes(v: Value) -> Option<Bytes> {
    match v {
        Value::BulkString(b) => Some(Bytes::from(b)),
        Value::SimpleString(s) => Some(Bytes::from(s.into_bytes())),
        _ => None,
    }
}

/// The push sender handed to the client library: never blocks, never grows without
/// bound. A disconnection of the current connection wakes the supervisor directly.
fn push_sender(
    state: &Arc<SubState>,
    tx: mpsc::Sender<PushInfo>,
    generation: Option<u64>,
) -> impl Fn(PushInfo) -> Result<(), std::convert::Infallible> + Send + Sync + 'static {
    let state = Arc::downgrade(state);
    move |info: PushInfo| {
        let Some(state) = state.upgrade() else { return Ok(()) };
        if info.kind == PushKind::Disconnection {
            let current = generation.is_none_or(|g| g == state.generation.load(Ordering::Acquire));
            if current {
                state.kick.notify_one();
            }
            return Ok(());
        }
        if tx.try_send(info).is_err() {
            let n = state.dropped.fetch_add(1, Ordering::Relaxed);
            if n.is_power_of_two() {
                warn!(dropped = n + 1, "Redis subscriber queue full: messages dropped");
            }
        }
        Ok(())
    }
}

/// The private CA of `opts`, read from its file.
#[cfg(feature = "tls")]
fn tls_certificates(opts: &RedisOptions) -> Result<Option<redis::TlsCertificates>, RedisTransportError> {
    let Some(path) = &opts.tls_ca_file else { return Ok(None) };
    let pem =
        std::fs::read(path).map_err(|e| RedisTransportError::Url(format!("tls_ca_file {}: {e}", path.display())))?;
    Ok(Some(redis::TlsCertificates { client_tls: None, root_cert: Some(pem) }))
}

/// A client for one node, with the private CA of `opts` when there is one.
fn client(info: redis::ConnectionInfo, opts: &RedisOptions) -> Result<Client, RedisTransportError> {
    #[cfg(feature = "tls")]
    if let Some(certs) = tls_certificates(opts)? {
        return Client::build_with_tls(info, certs).map_err(|e| RedisTransportError::command("TLS client", e));
    }
    let _ = opts;
    Client::open(info).map_err(|e| RedisTransportError::command("client", e))
}

impl RedisTransport {
    /// Parses `url` (see [`RedisOptions`]) and connects.
    pub async fn connect_url(url: &str) -> Result<Self, RedisTransportError> {
        Self::connect(&RedisOptions::parse(url)?).await
    }

    /// Connects to the server of an application's existing standalone `redis::Client`
    /// (its address, database, credentials and TLS settings) with the protocol options of
    /// `opts` (whose own hosts are ignored). The transport opens its own two connections:
    /// a subscriber cannot share a connection with ordinary commands.
    pub async fn from_client(client: &Client, opts: RedisOptions) -> Result<Self, RedisTransportError> {
        let opts = RedisOptions { nodes: vec![client.get_connection_info().clone()], cluster: false, ..opts };
        Self::connect(&opts).await
    }

    /// Connects the publisher and the subscriber. Fails if Redis does not answer.
    pub async fn connect(opts: &RedisOptions) -> Result<Self, RedisTransportError> {
        #[cfg(feature = "tls")]
        {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let first = opts.nodes.first().ok_or_else(|| RedisTransportError::Url("no node".into()))?;
        let (push_tx, push_rx) = mpsc::channel(opts.push_queue_capacity.max(16));
        let sub = Arc::new(SubState {
            mode: opts.mode,
            cluster: opts.cluster,
            subscribers: Subscribers::new(),
            conn: tokio::sync::Mutex::new(None),
            generation: AtomicU64::new(0),
            kick: Notify::new(),
            force: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            resubscriptions: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
        });
        let target = opts.describe();
        let (publisher, sub_conn, connector) = if opts.cluster {
            let nodes: Vec<_> = opts.nodes.iter().map(RedisOptions::resp3).collect();
            let mut builder = ClusterClientBuilder::new(nodes)
                .use_protocol(ProtocolVersion::RESP3)
                .push_sender(push_sender(&sub, push_tx.clone(), None))
                .connection_timeout(opts.connect_timeout)
                .response_timeout(opts.command_timeout);
            if let Some(u) = first.redis_settings().username() {
                builder = builder.username(u);
            }
            if let Some(p) = first.redis_settings().password() {
                builder = builder.password(p);
            }
            #[cfg(feature = "tls")]
            if let Some(certs) = tls_certificates(opts)? {
                builder = builder.certs(certs);
            }
            let client = builder.build().map_err(|e| RedisTransportError::command("cluster client", e))?;
            let conn = client
                .get_async_connection()
                .await
                .map_err(|e| RedisTransportError::command(format!("connect to {target}"), e))?;
            (Publisher::Cluster(conn.clone()), Some(SubConn::Cluster(conn)), Connector::Cluster)
        } else {
            let pub_client = client(first.clone(), opts)?;
            let manager = pub_client
                .get_connection_manager_with_config(
                    ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(opts.connect_timeout))
                        .set_response_timeout(Some(opts.command_timeout))
                        .set_number_of_retries(3)
                        .set_max_delay(Duration::from_secs(2))
                        // room for many pipelined publishes before callers queue
                        .set_pipeline_buffer_size(1024),
                )
                .await
                .map_err(|e| RedisTransportError::command(format!("connect to {target}"), e))?;
            let sub_client = client(RedisOptions::resp3(first), opts)?;
            let (connect_timeout, command_timeout) = (opts.connect_timeout, opts.command_timeout);
            let sub_for_config = Arc::clone(&sub);
            let tx = push_tx.clone();
            let config = move |generation: u64| {
                AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(connect_timeout))
                    .set_response_timeout(Some(command_timeout))
                    .set_push_sender(push_sender(&sub_for_config, tx.clone(), Some(generation)))
            };
            // the subscriber connection opens on the first subscribe: a publish-only user
            // (an emitter) holds one connection
            let connector = Connector::Single { client: Box::new(sub_client), config: Box::new(config) };
            (Publisher::Single(manager), None, connector)
        };
        drop(push_tx);
        *sub.conn.lock().await = sub_conn;
        let connector = Arc::new(connector);
        let (shutdown, shutdown_rx) = watch::channel(false);
        tokio::spawn(dispatch(Arc::clone(&sub), push_rx, shutdown_rx.clone()));
        tokio::spawn(supervise(Arc::clone(&sub), Arc::clone(&connector), shutdown_rx, target.clone()));
        info!(target = %target, "Redis transport connected");
        Ok(RedisTransport {
            inner: Arc::new(Inner {
                target,
                mode: opts.mode,
                batcher: match &publisher {
                    Publisher::Single(manager) => Some(Batcher::start(manager.clone(), opts.command_timeout * 2)),
                    Publisher::Cluster(_) => None,
                },
                publisher,
                sub,
                connector,
                command_timeout: opts.command_timeout,
                shutdown,
            }),
        })
    }

    /// The protocol this transport speaks (PUBLISH or SPUBLISH, NUMSUB or SHARDNUMSUB).
    pub fn mode(&self) -> Mode {
        self.inner.mode
    }

    /// Counters.
    pub fn stats(&self) -> RedisStats {
        let s = &self.inner.sub;
        RedisStats {
            dropped: s.dropped.load(Ordering::Relaxed),
            resubscriptions: s.resubscriptions.load(Ordering::Relaxed),
            delivered: s.delivered.load(Ordering::Relaxed),
        }
    }

    /// The `CLIENT ID` of the subscriber connection on standalone Redis (`None` on Redis
    /// Cluster, where the subscriber is one connection per master): finds this node's
    /// subscriber in `CLIENT LIST`.
    pub async fn subscriber_client_id(&self) -> Result<Option<i64>, RedisTransportError> {
        let mut guard = self.inner.sub.conn.lock().await;
        match guard.as_mut() {
            Some(SubConn::Single(c)) => redis::cmd("CLIENT")
                .arg("ID")
                .query_async::<i64>(c)
                .await
                .map(Some)
                .map_err(|e| RedisTransportError::command("CLIENT ID", e)),
            Some(SubConn::Cluster(_)) => Ok(None),
            None => Err(RedisTransportError::NotConnected),
        }
    }

    /// Unsubscribes every channel at the broker while keeping them registered, as if the
    /// broker had silently lost them: for testing the repair paths (the health check,
    /// and on Redis Cluster the unrequested-unsubscribe detection).
    #[doc(hidden)]
    pub async fn lose_subscriptions_for_testing(&self) -> Result<(), RedisTransportError> {
        let state = &self.inner.sub;
        let mut guard = state.conn.lock().await;
        let conn = guard.as_mut().ok_or(RedisTransportError::NotConnected)?;
        for channel in &state.subscribers.channels() {
            state.issue(conn, channel, Verb::Unsub).await?;
        }
        Ok(())
    }

    /// Runs a command on the publisher connection.
    async fn query(&self, cmd: &redis::Cmd, op: impl FnOnce() -> String) -> Result<Value, RedisTransportError> {
        let fut = async {
            match self.inner.publisher.clone() {
                Publisher::Single(mut c) => cmd.query_async::<Value>(&mut c).await,
                Publisher::Cluster(mut c) => cmd.query_async::<Value>(&mut c).await,
            }
        };
        // Unconstrained by tokio's cooperative budget: a publish first polled after another
        // must reach the connection's queue after it. With the budget, a caller driving
        // many publishes in one task (`buffered(n)`) sees some of them yield before they
        // are queued and be overtaken by later ones (measured: 414 of 20,000 reordered).
        match tokio::task::unconstrained(tokio::time::timeout(self.inner.command_timeout * 2, fut)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(RedisTransportError::command(op(), e)),
            Err(_) => Err(RedisTransportError::command(
                op(),
                redis::RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, "no reply in time")),
            )),
        }
    }
}

async fn dispatch(state: Arc<SubState>, mut rx: mpsc::Receiver<PushInfo>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            push = rx.recv() => match push {
                Some(info) => state.on_push(info).await,
                None => return,
            },
            _ = shutdown.changed() => return,
        }
    }
}

/// Waits for a reason to repair (disconnect, lost shard channel, health check), then
/// restores the subscriptions with backoff until it works.
async fn supervise(
    state: Arc<SubState>,
    connector: Arc<Connector>,
    mut shutdown: watch::Receiver<bool>,
    target: String,
) {
    loop {
        tokio::select! {
            _ = state.kick.notified() => {}
            _ = shutdown.changed() => {
                *state.conn.lock().await = None;
                return;
            }
        }
        let mut delay = Duration::from_millis(50);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let force = state.force.swap(false, Ordering::AcqRel);
            let result = repair(&state, &connector, force).await;
            match result {
                Ok(()) => break,
                Err(e) => {
                    if force {
                        state.force.store(true, Ordering::Release);
                    }
                    warn!(target = %target, attempt, error = %e, retry_in = ?delay, "Redis subscriber not restored");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(delay + Duration::from_millis(fastrand_ms(delay))) => {}
                _ = shutdown.changed() => return,
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        state.resubscriptions.fetch_add(1, Ordering::Relaxed);
        info!(target = %target, channels = state.subscribers.len(), "Redis subscriptions restored");
        state.subscribers.reconnected().await;
    }
}

fn fastrand_ms(delay: Duration) -> u64 {
    // up to 25% jitter so that nodes restarted together do not reconnect in lockstep
    fastrand::u64(0..(delay.as_millis() as u64 / 4).max(1))
}

async fn repair(state: &SubState, connector: &Connector, force: bool) -> Result<(), RedisTransportError> {
    let mut guard = state.conn.lock().await;
    match connector {
        Connector::Single { .. } => {
            *guard = None;
            let mut conn = connector
                .open_single(state, || "reconnect subscriber".to_owned())
                .await?
                .ok_or(RedisTransportError::Closed)?;
            state.restore(&mut conn, false).await?;
            *guard = Some(conn);
        }
        Connector::Cluster => {
            let conn = guard.as_mut().ok_or(RedisTransportError::Closed)?;
            state.restore(conn, force).await?;
        }
    }
    debug!("subscriber repaired");
    Ok(())
}

/// `PUBSUB NUMSUB ch` / `PUBSUB SHARDNUMSUB ch`: a flat `[ch, n]` array (RESP2), a map
/// (RESP3, or summed over a cluster).
fn subscriber_count(reply: &Value) -> Option<usize> {
    let as_count = |v: &Value| match v {
        Value::Int(n) => usize::try_from(*n).ok(),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    };
    match reply {
        Value::Array(items) if items.len() % 2 == 0 => {
            Some(items.chunks(2).filter_map(|pair| as_count(&pair[1])).sum())
        }
        Value::Map(pairs) => Some(pairs.iter().filter_map(|(_, n)| as_count(n)).sum()),
        _ => None,
    }
}

impl Transport for RedisTransport {
    type Error = RedisTransportError;

    fn name(&self) -> &'static str {
        "redis"
    }

    async fn publish(&self, channel: &str, payload: Bytes) -> Result<(), RedisTransportError> {
        let verb = match self.inner.mode {
            Mode::Classic => "PUBLISH",
            Mode::Sharded => "SPUBLISH",
        };
        if let Some(batcher) = &self.inner.batcher {
            return batcher
                .publish(verb, channel, payload)
                .await
                .map_err(|e| RedisTransportError::command(format!("{verb} {channel}"), e));
        }
        let mut cmd = redis::cmd(verb);
        cmd.arg(channel).arg(payload.as_ref());
        self.query(&cmd, || format!("{verb} {channel}")).await.map(drop)
    }

    async fn subscribe(&self, channels: &[Channel], sink: EventSender) -> Result<(), RedisTransportError> {
        let state = &self.inner.sub;
        let mut guard = state.conn.lock().await;
        if guard.is_none() && state.subscribers.is_empty() {
            // the first subscription: connect now (with channels registered, a missing
            // connection is the supervisor's to restore)
            let target = &self.inner.target;
            *guard = self.inner.connector.open_single(state, || format!("connect subscriber to {target}")).await?;
        }
        let conn = guard.as_mut().ok_or(RedisTransportError::NotConnected)?;
        for channel in channels {
            // registered only once the broker confirmed it, so a failure is retried whole
            if !state.subscribers.contains(channel) {
                state.issue(conn, channel, Verb::Sub).await?;
            }
            state.subscribers.add(channel, &sink);
        }
        Ok(())
    }

    async fn unsubscribe(&self, channels: &[Channel], sink: &EventSender) -> Result<(), RedisTransportError> {
        let state = &self.inner.sub;
        let mut guard = state.conn.lock().await;
        let mut first_error = None;
        for channel in channels {
            let now_empty = state.subscribers.remove(channel, sink);
            if now_empty && let Some(conn) = guard.as_mut() {
                // forgotten either way: a failed unsubscribe only costs unwanted messages
                // until the next reconnect, which does not restore it
                if let Err(e) = state.issue(conn, channel, Verb::Unsub).await {
                    warn!(channel = channel.as_str(), error = %e, "unsubscribe failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn server_count(&self, channel: &str) -> Result<Option<usize>, RedisTransportError> {
        let sub = match self.inner.mode {
            Mode::Classic => "NUMSUB",
            Mode::Sharded => "SHARDNUMSUB",
        };
        let mut cmd = redis::cmd("PUBSUB");
        cmd.arg(sub).arg(channel);
        let reply = self.query(&cmd, || format!("PUBSUB {sub} {channel}")).await?;
        match subscriber_count(&reply) {
            Some(n) => Ok(Some(n)),
            None => Err(RedisTransportError::Reply {
                op: format!("PUBSUB {sub} {channel}"),
                reply: format!("{reply:?}").chars().take(200).collect(),
            }),
        }
    }

    async fn resubscribe(&self) -> Result<(), RedisTransportError> {
        self.inner.sub.force.store(true, Ordering::Release);
        self.inner.sub.kick.notify_one();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_subscribers_in_every_reply_shape() {
        let flat = Value::Array(vec![Value::BulkString(b"ch".to_vec()), Value::Int(3)]);
        assert_eq!(subscriber_count(&flat), Some(3));
        let map = Value::Map(vec![(Value::BulkString(b"ch".to_vec()), Value::Int(2))]);
        assert_eq!(subscriber_count(&map), Some(2));
        assert_eq!(subscriber_count(&Value::Nil), None);
    }
}
