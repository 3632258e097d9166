//! The public cluster operations of [`ClusterCore`]: each applies the local half (a
//! node's own sockets) and publishes or requests the rest.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::acks::AckCollector;
use super::pending::Expect;
use super::stats::Counters;
use super::{ClusterCore, Mode, deadline_after, lock};
use crate::adapter::{AckStream, Gathered};
use crate::dialect::EMITTER_UID;
use crate::error::{AdapterError, DialectError};
use crate::local::{LocalAckStream, PendingDelivery};
use crate::message::{Body, Message};
use crate::transport::Transport;
use crate::types::{BroadcastOptions, EventPacket, Room, SocketInfo};
use crate::value::Value;

impl<T: Transport> ClusterCore<T> {
    /// Publishes a message as this node (no local effect). A requester whose uid is
    /// [`EMITTER_UID`] publishes as an emitter (no uid), in the exact layout of
    /// `@socket.io/redis-emitter`. Not public: every message has its operation.
    pub(crate) async fn publish(&self, body: Body) -> Result<(), AdapterError> {
        self.inner.publish(&self.own_message(body)).await
    }

    /// A message of this engine: as a node, or as an emitter without a uid.
    fn own_message(&self, body: Body) -> Message {
        let inner = &self.inner;
        let uid = (inner.local.is_some() || inner.uid != EMITTER_UID).then(|| inner.uid.clone());
        Message::new(uid, inner.nsp.clone(), body)
    }

    /// Sends an event to the matching sockets of the cluster (local ones first; while
    /// local sockets catch up, see [`PendingDelivery`], the message is already on its way
    /// to the other nodes). A message over the maximum message size is refused before
    /// anything is delivered.
    pub async fn broadcast(&self, packet: EventPacket, opts: BroadcastOptions) -> Result<(), AdapterError> {
        let msg = self.own_message(Body::Broadcast { packet, opts });
        let Body::Broadcast { packet, opts } = &msg.body else { unreachable!("built above") };
        let out = if opts.flags.local { None } else { Some(self.inner.encode(&msg)?) };
        let pending = self.inner.local.as_ref().and_then(|local| local.broadcast(packet, opts));
        let publish = async {
            match out {
                Some(out) => self.inner.send(msg.body.name(), out).await,
                None => Ok(()),
            }
        };
        self.join_local(pending, publish).await
    }

    /// The cluster half of a broadcast whose local half the caller delivered itself: a
    /// server bridge delivers its own broadcasts to its sockets in the server's own packet
    /// type and options (the socketioxide bridge does), hands the pending local delivery
    /// here, and this publishes `remote` (none: local only) while the local sockets catch up,
    /// counting what the slow-socket policy dropped.
    pub async fn broadcast_beside(
        &self,
        local: Option<PendingDelivery>,
        remote: Option<(EventPacket, BroadcastOptions)>,
    ) -> Result<(), AdapterError> {
        let publish = async {
            match remote {
                Some((packet, opts)) if !opts.flags.local => self.publish(Body::Broadcast { packet, opts }).await,
                _ => Ok(()),
            }
        };
        self.join_local(local, publish).await
    }

    /// Runs `publish` while the local sockets catch up with `local`, counting what the
    /// slow-socket policy dropped.
    async fn join_local(
        &self,
        local: Option<PendingDelivery>,
        publish: impl std::future::Future<Output = Result<(), AdapterError>>,
    ) -> Result<(), AdapterError> {
        match local {
            Some(pending) => {
                let (dropped, out) = tokio::join!(pending, publish);
                self.inner.counters.dropped_deliveries.fetch_add(dropped, Ordering::Relaxed);
                out
            }
            None => publish.await,
        }
    }

    /// Makes the matching sockets of the cluster join `rooms`.
    pub async fn add_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError> {
        if let Some(local) = &self.inner.local {
            self.inner.rooms_changed(local.add_sockets(&opts, &rooms));
        }
        if opts.flags.local {
            return Ok(());
        }
        if self.inner.dialect.capabilities().room_channels {
            lock(&self.inner.recent_joins).joined(&rooms, Instant::now());
        }
        for rooms in self.room_batches(rooms) {
            self.publish(Body::SocketsJoin { opts: opts.clone(), rooms }).await?;
        }
        Ok(())
    }

    /// Makes the matching sockets of the cluster leave `rooms`.
    pub async fn del_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError> {
        if let Some(local) = &self.inner.local {
            self.inner.rooms_changed(local.del_sockets(&opts, &rooms));
        }
        if opts.flags.local {
            return Ok(());
        }
        for rooms in self.room_batches(rooms) {
            self.publish(Body::SocketsLeave { opts: opts.clone(), rooms }).await?;
        }
        Ok(())
    }

    /// All rooms in one message, or one room per message where the dialect carries one
    /// (python-socketio's `enter_room` / `leave_room`): the same for server nodes and
    /// emitters.
    fn room_batches(&self, rooms: Vec<Room>) -> Vec<Vec<Room>> {
        if self.inner.dialect.capabilities().multi_room_joins {
            vec![rooms]
        } else {
            rooms.into_iter().map(|r| vec![r]).collect()
        }
    }

    /// Disconnects the matching sockets of the cluster.
    pub async fn disconnect_sockets(&self, opts: BroadcastOptions, close: bool) -> Result<(), AdapterError> {
        if let Some(local) = &self.inner.local {
            local.disconnect_sockets(&opts, close);
        }
        if opts.flags.local {
            return Ok(());
        }
        self.publish(Body::DisconnectSockets { opts, close }).await
    }

    /// Sends an event to the other servers.
    pub async fn server_side_emit(&self, packet: EventPacket) -> Result<(), AdapterError> {
        self.publish(Body::ServerSideEmit { request_id: None, packet }).await
    }

    /// Sends an event to the other servers and collects one answer from each.
    pub async fn server_side_emit_with_ack(
        &self,
        packet: EventPacket,
        timeout: Option<Duration>,
    ) -> Result<Gathered<Vec<Value>>, AdapterError> {
        let mut values = Vec::new();
        let timeout = timeout.unwrap_or(self.inner.config.request_timeout);
        let shortfall =
            self.inner.emit_round(packet, timeout, "server-side emit", |_, value| values.push(value)).await?;
        Ok(Gathered { value: values, shortfall })
    }

    /// Describes the matching sockets of the cluster.
    pub async fn fetch_sockets(&self, opts: BroadcastOptions) -> Result<Gathered<Vec<SocketInfo>>, AdapterError> {
        let mut sockets = match &self.inner.local {
            Some(local) => local.fetch_sockets(&opts),
            None => Vec::new(),
        };
        if opts.flags.local {
            return Ok(Gathered::complete(sockets));
        }
        let timeout = opts.flags.timeout.unwrap_or(self.inner.config.request_timeout);
        let shortfall = self.inner.fetch_round(opts, timeout, "fetch sockets", |_, s| sockets.extend(s)).await?;
        Ok(Gathered { value: sockets, shortfall })
    }

    /// Every room with members in the cluster (socket ids included), sorted.
    pub async fn all_rooms(&self) -> Result<Gathered<Vec<Room>>, AdapterError> {
        let mut rooms: HashSet<Room> = match &self.inner.local {
            Some(local) => local.rooms().into_iter().collect(),
            None => HashSet::new(),
        };
        let shortfall = if self.inner.dialect.capabilities().all_rooms {
            self.inner
                .request(
                    |request_id| Body::AllRooms { request_id },
                    self.inner.config.request_timeout,
                    "all rooms",
                    |_, body| match body {
                        Body::AllRoomsResponse { rooms: r, .. } => {
                            rooms.extend(r);
                            true
                        }
                        _ => false,
                    },
                )
                .await?
        } else {
            let (all, timeout) = (BroadcastOptions::default(), self.inner.config.request_timeout);
            self.inner
                .fetch_round(all, timeout, "all rooms", |_, sockets| {
                    rooms.extend(sockets.into_iter().flat_map(|s| s.rooms))
                })
                .await?
        };
        let mut value: Vec<Room> = rooms.into_iter().collect();
        value.sort();
        Ok(Gathered { value, shortfall })
    }

    /// The number of servers in the cluster (this one included when it is a server).
    pub async fn server_count(&self) -> Result<usize, AdapterError> {
        self.inner.supports_requests("a server count")?;
        self.inner.ready().await?;
        let is_node = usize::from(self.inner.local.is_some());
        match self.inner.mode() {
            Mode::Broker => Ok(self.inner.broker_count().await?.max(is_node)),
            Mode::Heartbeat => Ok(self.inner.live_nodes().len() + is_node),
        }
    }

    /// Sends an event that asks every matching client for an ack; the stream yields
    /// the acks as they arrive from every node (local ones included).
    pub async fn broadcast_with_ack(
        &self,
        packet: EventPacket,
        mut opts: BroadcastOptions,
    ) -> Result<AckStream, AdapterError> {
        let timeout = *opts.flags.timeout.get_or_insert(self.inner.config.request_timeout);
        let local = match &self.inner.local {
            Some(local) => local.broadcast_with_ack(&packet, &opts, timeout),
            None => (Box::pin(futures_util::stream::empty()) as LocalAckStream, 0),
        };
        self.broadcast_with_ack_beside(local, packet, opts).await
    }

    /// The cluster half of a broadcast with acks whose local half the caller delivered
    /// itself (see [`ClusterCore::broadcast_beside`]): `local` is the local sockets' ack
    /// stream and how many acks it will yield. The stream returned merges them with the
    /// other nodes' acks. `opts.flags.timeout` (default: the request timeout) bounds both.
    pub async fn broadcast_with_ack_beside(
        &self,
        local: (LocalAckStream, u64),
        packet: EventPacket,
        mut opts: BroadcastOptions,
    ) -> Result<AckStream, AdapterError> {
        let inner = &self.inner;
        let timeout = *opts.flags.timeout.get_or_insert(inner.config.request_timeout);
        let deadline = deadline_after(timeout);
        let (local_acks, local_count) = local;
        let (tx, stream) = AckStream::channel(256);
        let counts = inner.dialect.capabilities().client_counts;
        let (reg, collector) = if opts.flags.local || (!counts && local_count > 0) {
            // nothing to ask of other nodes (without client counts, python-socketio's
            // callbacks target one socket: here, a local one)
            (None, AckCollector::new(local_count, Expect::count(0, BTreeSet::new())))
        } else {
            if !counts && !inner.is_node() {
                // the answers are addressed to a server's host id: a requester never hears them
                return Err(AdapterError::Dialect(DialectError::Unsupported {
                    dialect: inner.dialect.name(),
                    operation: "acks to a requester that is not a server",
                }));
            }
            inner.ready().await?;
            let collector = if counts {
                AckCollector::new(local_count, inner.expect().await?)
            } else {
                AckCollector::one_remote_ack()
            };
            if collector.waits_for_remote() {
                let reg = inner.pending.register(|| inner.dialect.new_node_id())?;
                let body = Body::BroadcastWithAck { request_id: reg.id.clone(), packet, opts };
                let msg = Message::new(Some(inner.uid.clone()), inner.nsp.clone(), body);
                // bounded by the timeout too (see `Inner::request`): a stalled broker ends
                // the stream at its timeout with the local acks
                match tokio::time::timeout_at(deadline, inner.publish(&msg)).await {
                    Ok(published) => published?,
                    Err(_) => tracing::warn!(node = %inner.uid, nsp = %inner.nsp,
                        broker = %inner.transport.describe(), ?timeout,
                        "the broker did not take the broadcast with acks within its timeout"),
                }
                (Some(reg), collector)
            } else {
                (None, collector)
            }
        };
        let counters = Arc::clone(inner);
        let started = tokio::time::Instant::now();
        tokio::spawn(async move {
            let remote = reg.is_some();
            let incomplete = collector.run(tx, local_acks, reg, deadline).await;
            if remote {
                counters.counters.round_trips.record(started.elapsed());
            }
            if incomplete {
                Counters::bump(&counters.counters.incomplete_requests);
            }
        });
        Ok(stream)
    }
}

#[cfg(all(test, feature = "memory"))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use crate::dialect::{Dialect, NodeClusterDialect, PythonDialect};
    use crate::memory::MemoryHub;
    use crate::message::Body;
    use crate::transport::{Channel, Transport, TransportEvent};
    use crate::types::{BroadcastOptions, Room};
    use crate::{ClusterConfig, ClusterCore};

    /// What a requester on `dialect` publishes for one `add_sockets` to rooms a and b.
    async fn joins(dialect: Arc<dyn Dialect>, channel: &str) -> Vec<Vec<Room>> {
        let hub = MemoryHub::new();
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let listener = hub.transport();
        listener.subscribe(&[Channel::Exact(channel.to_owned())], tx).await.unwrap();
        let core = ClusterCore::requester(
            hub.transport(),
            Arc::clone(&dialect),
            "/",
            "emitter".into(),
            ClusterConfig::default(),
        )
        .unwrap();
        core.add_sockets(BroadcastOptions::all().to("s1"), vec!["a".into(), "b".into()]).await.unwrap();
        let mut got = Vec::new();
        let wait = std::time::Duration::from_millis(200);
        while let Ok(Some(TransportEvent::Message { channel, payload })) = tokio::time::timeout(wait, rx.recv()).await {
            match dialect.decode(&channel, &payload).unwrap().body {
                Body::SocketsJoin { rooms, .. } => got.push(rooms),
                other => panic!("unexpected {other:?}"),
            }
        }
        got
    }

    #[tokio::test]
    async fn joins_travel_one_room_per_message_where_the_dialect_carries_one() {
        let python = joins(Arc::new(PythonDialect::default()), "socketio").await;
        assert_eq!(python, vec![vec![Room::from("a")], vec![Room::from("b")]]);
        let node = joins(Arc::new(NodeClusterDialect::default()), "socket.io#/#").await;
        assert_eq!(node, vec![vec![Room::from("a"), Room::from("b")]]);
    }
}
