//! The subscriber side of the Redis transport: the RESP3 subscriber connection, the
//! subscribe-like commands, the pushes it receives, and its [`Reconnect`] for the
//! supervisor of `socketio-adapter-core`.
//!
//! The channels live in the supervisor's [`Subscribers`](socketio_adapter_core::Subscribers),
//! not in the client library: after a disconnect, a server-side unsubscribe (slot
//! migration on Redis Cluster) or a health-check request, the supervisor reconnects and
//! re-issues every channel from there (one channel per SSUBSCRIBE).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Client, PushInfo, PushKind, Value};
use socketio_adapter_core::{Channel, Reconnect, Stat, Supervisor};
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use crate::error::RedisTransportError;
use crate::options::Mode;

#[derive(Clone)]
pub(crate) enum SubConn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// How to open a subscriber connection again.
pub(crate) enum Connector {
    Single { client: Box<Client>, config: Box<dyn Fn(u64) -> AsyncConnectionConfig + Send + Sync> },
    Cluster,
}

impl Connector {
    /// A fresh standalone subscriber connection (`None` on Redis Cluster, whose client
    /// connection is kept); pushes of older connections are ignored from here on.
    pub(crate) async fn open_single(
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

pub(crate) struct SubState {
    /// The pub/sub flavour (classic or sharded).
    pub(crate) mode: Mode,
    pub(crate) cluster: bool,
    /// Subscribers, counters and reconnect wake-ups.
    pub(crate) sup: Arc<Supervisor>,
    pub(crate) conn: tokio::sync::Mutex<Option<SubConn>>,
    /// Generation of the standalone subscriber connection: pushes of older ones are ignored.
    pub(crate) generation: AtomicU64,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Verb {
    Sub,
    Unsub,
}

impl SubState {
    fn command_name(&self, channel: &Channel, verb: Verb) -> &'static str {
        match (channel, self.mode, verb) {
            (Channel::Pattern(_), _, Verb::Sub) => "PSUBSCRIBE",
            (Channel::Pattern(_), _, Verb::Unsub) => "PUNSUBSCRIBE",
            (Channel::Exact(_), Mode::Sharded, Verb::Sub) => "SSUBSCRIBE",
            (Channel::Exact(_), Mode::Sharded, Verb::Unsub) => "SUNSUBSCRIBE",
            // classic, and the pub/sub half of streams unless it is sharded
            (Channel::Exact(_), _, Verb::Sub) => "SUBSCRIBE",
            (Channel::Exact(_), _, Verb::Unsub) => "UNSUBSCRIBE",
        }
    }

    /// Issues one subscribe-like command for one channel (one channel per command: on
    /// Redis Cluster, channels of different slots cannot share an SSUBSCRIBE).
    pub(crate) async fn issue(
        &self,
        conn: &mut SubConn,
        channel: &Channel,
        verb: Verb,
    ) -> Result<(), RedisTransportError> {
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
        for channel in &self.sup.subscribers().channels() {
            if force {
                let _ = self.issue(conn, channel, Verb::Unsub).await;
            }
            self.issue(conn, channel, Verb::Sub).await?;
        }
        Ok(())
    }

    /// Handles one push from the connection.
    async fn on_push(&self, info: PushInfo) {
        let PushInfo { kind, data } = info;
        match kind {
            PushKind::Message | PushKind::SMessage => {
                let mut it = data.into_iter();
                if let (Some(ch), Some(payload)) = (it.next().and_then(text), it.next().and_then(bytes)) {
                    self.sup.deliver_to(&Channel::Exact(ch.clone()), &ch, &payload).await;
                }
            }
            PushKind::PMessage => {
                let mut it = data.into_iter();
                if let (Some(pattern), Some(ch), Some(payload)) =
                    (it.next().and_then(text), it.next().and_then(text), it.next().and_then(bytes))
                {
                    self.sup.deliver_to(&Channel::Pattern(pattern), &ch, &payload).await;
                }
            }
            PushKind::SUnsubscribe if self.cluster => {
                // the server dropped a shard channel we still want (its slot moved): repair
                if let Some(ch) = data.into_iter().next().and_then(text)
                    && self.sup.subscribers().contains(&Channel::Exact(ch.clone()))
                {
                    warn!(transport = "Redis", broker = %self.sup.target(), channel = %ch,
                          "Redis unsubscribed a shard channel (slot moved?); resubscribing");
                    self.sup.connection_lost();
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
pub(crate) fn push_sender(
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
                state.sup.connection_lost();
            }
            return Ok(());
        }
        if tx.try_send(info).is_err() {
            let n = state.sup.counters().bump(Stat::Dropped);
            if n.is_power_of_two() {
                warn!(dropped = n + 1, "Redis subscriber queue full: messages dropped");
            }
        }
        Ok(())
    }
}

/// Hands the pushes of the subscriber connection to the subscribers, in order.
pub(crate) async fn dispatch(
    state: Arc<SubState>,
    mut rx: mpsc::Receiver<PushInfo>,
    mut shutdown: watch::Receiver<bool>,
) {
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

/// What the supervisor runs: a fresh connection with every channel (standalone), or
/// every channel re-issued on the cluster connection (dropped first when forced).
pub(crate) struct Repair {
    pub(crate) state: Arc<SubState>,
    pub(crate) connector: Arc<Connector>,
}

impl Reconnect for Repair {
    type Error = RedisTransportError;

    async fn reconnect(&self, forced: bool) -> Result<(), RedisTransportError> {
        let state = &self.state;
        let mut guard = state.conn.lock().await;
        match &*self.connector {
            Connector::Single { .. } => {
                *guard = None;
                let mut conn = self
                    .connector
                    .open_single(state, || "reconnect subscriber".to_owned())
                    .await?
                    .ok_or(RedisTransportError::Closed)?;
                state.restore(&mut conn, false).await?;
                *guard = Some(conn);
            }
            Connector::Cluster => {
                let conn = guard.as_mut().ok_or(RedisTransportError::Closed)?;
                state.restore(conn, forced).await?;
            }
        }
        debug!("subscriber repaired");
        Ok(())
    }

    async fn close(&self) {
        *self.state.conn.lock().await = None;
    }
}
