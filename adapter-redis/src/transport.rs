//! The [`Transport`] over Redis pub/sub (classic) or sharded pub/sub, on standalone Redis
//! or Redis Cluster.
//!
//! Two connections per transport: a publisher (a [`ConnectionManager`] that reconnects on
//! its own, or the cluster connection) and a RESP3 subscriber whose pushes feed one
//! dispatcher task ([`crate::subscriber`]). Subscribers, counters and reconnection are
//! core's [`Supervisor`]: after a disconnect, a server-side unsubscribe (slot migration on
//! Redis Cluster) or a health-check request it reconnects with backoff and re-issues
//! every subscription (one channel per SSUBSCRIBE), then tells each subscriber with
//! [`TransportEvent::Reconnected`](socketio_adapter_core::TransportEvent::Reconnected).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Client, ProtocolVersion, Value};
use socketio_adapter_core::{Backoff, Channel, EventSender, Stat, Supervisor, Transport, TransportStats};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::batch::Batcher;
use crate::error::RedisTransportError;
use crate::options::{Mode, RedisOptions};
use crate::streams::{ReaderConnector, Streams};
use crate::subscriber::{Connector, Repair, SubConn, SubState, Verb, dispatch, push_sender};

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
    /// The pub/sub flavour: PUBLISH/SUBSCRIBE/NUMSUB (classic) or the sharded ones.
    pubsub: Mode,
    /// Mode streams: the streams' writer and readers.
    streams: Option<Arc<Streams>>,
    publisher: Publisher,
    /// Pipelines concurrent publishes (standalone Redis).
    batcher: Option<Batcher>,
    sub: Arc<SubState>,
    /// Opens the standalone subscriber connection (lazily, then on every repair).
    connector: Arc<Connector>,
    command_timeout: Duration,
    /// Dropped with the last clone: stops the dispatcher and the supervisor.
    _shutdown: watch::Sender<bool>,
}

#[derive(Clone)]
enum Publisher {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// The private CA of `opts`, read from its file.
#[cfg(feature = "tls")]
fn tls_certificates(opts: &RedisOptions) -> Result<Option<redis::TlsCertificates>, RedisTransportError> {
    let Some(path) = &opts.tls_ca_file else { return Ok(None) };
    let pem =
        std::fs::read(path).map_err(|e| RedisTransportError::Url(format!("tls_ca_file {}: {e}", path.display())))?;
    Ok(Some(redis::TlsCertificates { client_tls: None, root_cert: Some(pem) }))
}

/// A cluster client builder for `nodes` with the credentials, CA and connect timeout of `opts`.
fn cluster_builder(
    nodes: Vec<redis::ConnectionInfo>,
    opts: &RedisOptions,
) -> Result<ClusterClientBuilder, RedisTransportError> {
    let first = opts.nodes.first().ok_or_else(|| RedisTransportError::Url("no node".into()))?;
    let mut builder = ClusterClientBuilder::new(nodes).connection_timeout(opts.connect_timeout);
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
    Ok(builder)
}

/// How a stream reader connects: its own connection, whose replies may take a whole
/// `block_ms` plus the command timeout.
fn reader_connector(opts: &RedisOptions) -> Result<ReaderConnector, RedisTransportError> {
    let patience = opts.streams.block + opts.command_timeout;
    if opts.cluster {
        let client = cluster_builder(opts.nodes.clone(), opts)?
            .response_timeout(patience)
            .build()
            .map_err(|e| RedisTransportError::command("cluster client", e))?;
        return Ok(ReaderConnector::Cluster(Box::new(client)));
    }
    let first = opts.nodes.first().ok_or_else(|| RedisTransportError::Url("no node".into()))?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(opts.connect_timeout))
        .set_response_timeout(Some(patience));
    Ok(ReaderConnector::Single { client: Box::new(client(first.clone(), opts)?), config })
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

/// One connection attempt before the connection manager's: the manager retries its first
/// connection (3 times, with backoff) whatever the error, and a refused login (wrong user
/// name or password, a user without the right to connect) is not worth retrying: it fails
/// here, once, with Redis's answer. Other errors (Redis not up yet) are left to the
/// manager's retries.
async fn refused_login(client: &Client, opts: &RedisOptions, target: &str) -> Result<(), RedisTransportError> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(opts.connect_timeout))
        .set_response_timeout(Some(opts.command_timeout));
    match client.get_multiplexed_async_connection_with_config(&config).await {
        Err(e)
            if matches!(
                e.kind(),
                redis::ErrorKind::AuthenticationFailed | redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm)
            ) =>
        {
            Err(RedisTransportError::command(format!("connect to {target}"), e))
        }
        _ => Ok(()),
    }
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
        let target = opts.describe();
        let pubsub = match opts.mode {
            Mode::Streams if opts.streams.sharded_pubsub => Mode::Sharded,
            Mode::Streams => Mode::Classic,
            mode => mode,
        };
        let sub = Arc::new(SubState {
            mode: pubsub,
            cluster: opts.cluster,
            sup: Supervisor::new("Redis", target.clone()),
            conn: tokio::sync::Mutex::new(None),
            generation: AtomicU64::new(0),
        });
        let (publisher, sub_conn, connector) = if opts.cluster {
            let nodes: Vec<_> = opts.nodes.iter().map(RedisOptions::resp3).collect();
            let builder = cluster_builder(nodes, opts)?
                .use_protocol(ProtocolVersion::RESP3)
                .push_sender(push_sender(&sub, push_tx.clone(), None))
                .response_timeout(opts.command_timeout);
            let client = builder.build().map_err(|e| RedisTransportError::command("cluster client", e))?;
            let conn = client
                .get_async_connection()
                .await
                .map_err(|e| RedisTransportError::command(format!("connect to {target}"), e))?;
            (Publisher::Cluster(conn.clone()), Some(SubConn::Cluster(conn)), Connector::Cluster)
        } else {
            let pub_client = client(first.clone(), opts)?;
            refused_login(&pub_client, opts, &target).await?;
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
        let streams = match opts.mode {
            Mode::Streams => Some(Streams::new(
                opts.streams.clone(),
                reader_connector(opts)?,
                Arc::clone(&sub.sup),
                shutdown_rx.clone(),
            )),
            _ => None,
        };
        sub.sup.spawn(Repair { state: Arc::clone(&sub), connector: Arc::clone(&connector) }, shutdown_rx);
        info!(broker = %target, "Redis transport connected");
        Ok(RedisTransport {
            inner: Arc::new(Inner {
                target,
                mode: opts.mode,
                pubsub,
                streams,
                batcher: match &publisher {
                    Publisher::Single(manager) => Some(Batcher::start(manager.clone(), opts.command_timeout * 2)),
                    Publisher::Cluster(_) => None,
                },
                publisher,
                sub,
                connector,
                command_timeout: opts.command_timeout,
                _shutdown: shutdown,
            }),
        })
    }

    /// The protocol this transport speaks (PUBLISH or SPUBLISH, NUMSUB or SHARDNUMSUB).
    pub fn mode(&self) -> Mode {
        self.inner.mode
    }

    /// Changes the reconnect policy of the subscriber (default [`Backoff::default`]).
    pub fn set_backoff(&self, backoff: Backoff) {
        self.inner.sub.sup.set_backoff(backoff);
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
        for channel in &state.sup.subscribers().channels() {
            state.issue(conn, channel, Verb::Unsub).await?;
        }
        Ok(())
    }

    /// The `CLIENT ID`s of this transport's stream reader connections (mode streams,
    /// standalone Redis): for tests that kill them.
    #[doc(hidden)]
    pub async fn stream_reader_client_ids(&self) -> Vec<i64> {
        match &self.inner.streams {
            Some(s) => s.reader_client_ids().await,
            None => Vec::new(),
        }
    }

    /// Splits `channels` into stream names (mode streams) and pub/sub channels.
    fn split<'c>(&self, channels: &'c [Channel]) -> (Vec<&'c str>, Vec<Channel>) {
        let mut streams = Vec::new();
        let mut pubsub = Vec::new();
        for c in channels {
            match (&self.inner.streams, c) {
                (Some(s), Channel::Exact(name)) if s.is_stream(name) => streams.push(name.as_str()),
                _ => pubsub.push(c.clone()),
            }
        }
        (streams, pubsub)
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

    fn describe(&self) -> String {
        self.inner.sub.sup.target().to_owned()
    }

    /// Counters (`reconnects`: subscriptions restored after a disconnect, a lost shard
    /// channel or a resubscribe; `dropped`: the subscriber queue was full).
    fn stats(&self) -> TransportStats {
        self.inner.sub.sup.stats()
    }

    /// `false` from a lost subscriber connection (or a lost shard channel, or a
    /// resubscribe request) until every subscription was restored.
    fn is_connected(&self) -> bool {
        self.inner.sub.sup.is_connected()
    }

    async fn publish(&self, channel: &str, payload: Bytes) -> Result<(), RedisTransportError> {
        if let Some(streams) = self.inner.streams.as_ref().filter(|s| s.is_stream(channel)) {
            let result = match (streams.xadd(channel, &payload), &self.inner.batcher) {
                (Err(e), _) => Err(e),
                (Ok(cmd), Some(batcher)) => {
                    batcher.command(cmd).await.map_err(|e| RedisTransportError::command(format!("XADD {channel}"), e))
                }
                (Ok(cmd), None) => self.query(&cmd, || format!("XADD {channel}")).await.map(drop),
            };
            if result.is_err() {
                self.inner.sub.sup.counters().bump(Stat::PublishErrors);
            }
            return result;
        }
        let verb = match self.inner.pubsub {
            Mode::Sharded => "SPUBLISH",
            _ => "PUBLISH",
        };
        let result = if let Some(batcher) = &self.inner.batcher {
            batcher
                .publish(verb, channel, payload)
                .await
                .map_err(|e| RedisTransportError::command(format!("{verb} {channel}"), e))
        } else {
            let mut cmd = redis::cmd(verb);
            cmd.arg(channel).arg(payload.as_ref());
            self.query(&cmd, || format!("{verb} {channel}")).await.map(drop)
        };
        if result.is_err() {
            self.inner.sub.sup.counters().bump(Stat::PublishErrors);
        }
        result
    }

    async fn subscribe(&self, channels: &[Channel], sink: EventSender) -> Result<(), RedisTransportError> {
        let (streams, channels) = self.split(channels);
        if let Some(s) = &self.inner.streams {
            for key in streams {
                s.subscribe(key, &sink).await?;
            }
        }
        if channels.is_empty() {
            return Ok(());
        }
        let state = &self.inner.sub;
        let mut guard = state.conn.lock().await;
        if guard.is_none() && state.sup.subscribers().is_empty() {
            // the first subscription: connect now (with channels registered, a missing
            // connection is the supervisor's to restore)
            let target = &self.inner.target;
            *guard = self.inner.connector.open_single(state, || format!("connect subscriber to {target}")).await?;
        }
        let conn = guard.as_mut().ok_or(RedisTransportError::NotConnected)?;
        for channel in &channels {
            // registered only once the broker confirmed it, so a failure is retried whole
            if !state.sup.subscribers().contains(channel) {
                state.issue(conn, channel, Verb::Sub).await?;
            }
            state.sup.subscribers().add(channel, &sink);
        }
        Ok(())
    }

    async fn unsubscribe(&self, channels: &[Channel], sink: &EventSender) -> Result<(), RedisTransportError> {
        let (streams, channels) = self.split(channels);
        if let Some(s) = &self.inner.streams {
            for key in streams {
                s.unsubscribe(key, sink).await;
            }
        }
        let state = &self.inner.sub;
        let mut guard = state.conn.lock().await;
        let mut first_error = None;
        for channel in &channels {
            let now_empty = state.sup.subscribers().remove(channel, sink);
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
        let sub = match self.inner.pubsub {
            Mode::Sharded => "SHARDNUMSUB",
            _ => "NUMSUB",
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
        self.inner.sub.sup.resubscribe();
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
