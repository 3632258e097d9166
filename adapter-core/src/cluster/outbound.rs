//! Publishing, answering, and the request/answer round trip.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::warn;

use super::pending::Expect;
use super::stats::Counters;
use super::{Inner, Mode, deadline_after, lock};
use crate::dialect::Outgoing;
use crate::error::{AdapterError, DialectError, Shortfall};
use crate::message::{Body, Message, RequestId};
use crate::transport::Transport;
use crate::types::{BroadcastOptions, EventPacket, NodeId, SocketInfo};
use crate::value::Value;

impl<T: Transport> Inner<T> {
    /// A message from this node in this namespace.
    pub(super) fn message(&self, body: Body) -> Message {
        Message::new(Some(self.uid.clone()), self.nsp.clone(), body)
    }

    /// Encodes and publishes `msg`, counting it (and resetting the heartbeat clock).
    pub(super) async fn publish(&self, msg: &Message) -> Result<(), AdapterError> {
        let out = self.encode(msg)?;
        self.send(msg.body.name(), out).await
    }

    /// Encodes `msg`, refusing it over the maximum message size. A broadcast to one room
    /// this engine made the cluster join lately goes on the main channel (see
    /// `room_channels`).
    pub(super) fn encode(&self, msg: &Message) -> Result<Outgoing, AdapterError> {
        let mut out = self.dialect.encode(msg)?;
        if let Body::Broadcast { opts, .. } = &msg.body
            && let [room] = opts.rooms.as_slice()
            && self.dialect.capabilities().room_channels
            && lock(&self.recent_joins).contains(room, Instant::now())
            && let Some(main) = self.dialect.all_servers_channel(&msg.nsp)
        {
            out.channel = main;
        }
        let limit = self.config.max_message_size;
        if out.payload.len() > limit {
            Counters::bump(&self.counters.publish_errors);
            return Err(AdapterError::MessageTooLarge { size: out.payload.len(), limit });
        }
        Ok(out)
    }

    /// Publishes an encoded message (`what`: its body's name, for errors).
    pub(super) async fn send(&self, what: &str, out: Outgoing) -> Result<(), AdapterError> {
        match self.transport.publish(&out.channel, out.payload).await {
            Ok(()) => {
                *lock(&self.last_publish) = Instant::now();
                Counters::bump(&self.counters.published);
                Ok(())
            }
            Err(e) => {
                Counters::bump(&self.counters.publish_errors);
                Err(AdapterError::transport(format!("publish {what} on {}", out.channel), e))
            }
        }
    }

    /// Publishes in the background (answers from the inbound loop must not wait for
    /// the network).
    pub(super) fn publish_later(self: &Arc<Self>, msg: Message) {
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(e) = inner.publish(&msg).await {
                warn!(nsp = %inner.nsp, error = %e, "failed to publish an answer");
            }
        });
    }

    /// Answers `to` (the requester) in the background.
    pub(super) fn respond(self: &Arc<Self>, to: Option<NodeId>, body: Body) {
        self.publish_later(self.message(body).reply_to(to));
    }

    /// The subscribers of the count channel, as the broker counts them.
    pub(super) async fn broker_count(&self) -> Result<usize, AdapterError> {
        let channel = self.dialect.count_channel(&self.nsp);
        let counted = self
            .transport
            .server_count(&channel)
            .await
            .map_err(|e| AdapterError::transport(format!("count subscribers of {channel}"), e))?;
        Ok(counted.unwrap_or(0))
    }

    /// Who must answer a request starting now.
    /// Refuses `operation` (a request) when the dialect has no requests.
    pub(super) fn supports_requests(&self, operation: &'static str) -> Result<(), AdapterError> {
        if self.dialect.capabilities().requests {
            return Ok(());
        }
        Err(AdapterError::Dialect(DialectError::Unsupported { dialect: self.dialect.name(), operation }))
    }

    pub(super) async fn expect(&self) -> Result<Expect, AdapterError> {
        match self.mode() {
            Mode::Broker => {
                let n = self.broker_count().await?;
                let peers = if self.is_node() { n.saturating_sub(1) } else { n };
                Ok(Expect::count(peers, self.live_nodes()))
            }
            Mode::Heartbeat => Ok(Expect::nodes(self.live_nodes())),
        }
    }

    /// Publishes the request `make` builds around a fresh id and hands each answer to
    /// `accept` until every expected node answered (or left), or `timeout` passes. The
    /// timeout bounds the publish too: a broker that does not take the request in time
    /// (stalled) ends it at its timeout, incomplete, however long the transport would
    /// have waited (Kafka: `message_timeout_ms`).
    pub(super) async fn request(
        self: &Arc<Self>,
        make: impl FnOnce(RequestId) -> Body,
        timeout: Duration,
        operation: &'static str,
        accept: impl FnMut(Option<&str>, Body) -> bool,
    ) -> Result<Option<Shortfall>, AdapterError> {
        self.supports_requests(operation)?;
        self.ready().await?;
        let expect = self.expect().await?;
        if expect.done() {
            return Ok(None);
        }
        let mut reg = self.pending.register(|| self.dialect.new_node_id())?;
        let msg = self.message(make(reg.id.clone()));
        let started = Instant::now();
        let deadline = deadline_after(timeout);
        match tokio::time::timeout_at(deadline, self.publish(&msg)).await {
            Ok(published) => published?,
            Err(_) => warn!(node = %self.uid, nsp = %self.nsp, broker = %self.transport.describe(), operation,
                            ?timeout, "the broker did not take the request within its timeout"),
        }
        let total = expect.total();
        let shortfall = reg.collect(expect, deadline, operation, accept).await;
        self.counters.round_trips.record(started.elapsed());
        if let Some(s) = &shortfall {
            Counters::bump(&self.counters.incomplete_requests);
            warn!(node = %self.uid, nsp = %self.nsp, broker = %self.transport.describe(), operation,
                  expected = total, received = s.received,
                  missing = ?s.missing_nodes, "cluster request incomplete");
        }
        Ok(shortfall)
    }

    /// A server-side emit of `packet` with an ack: hands each answer's sender (where the
    /// dialect names it) and value to `each` (see [`Inner::request`]).
    pub(super) async fn emit_round(
        self: &Arc<Self>,
        packet: EventPacket,
        timeout: Duration,
        operation: &'static str,
        mut each: impl FnMut(Option<&str>, Value),
    ) -> Result<Option<Shortfall>, AdapterError> {
        self.request(
            |request_id| Body::ServerSideEmit { request_id: Some(request_id), packet },
            timeout,
            operation,
            |uid, body| match body {
                Body::ServerSideEmitResponse { value, .. } => {
                    each(uid, value);
                    true
                }
                _ => false,
            },
        )
        .await
    }

    /// A `fetch_sockets` request for `opts`: hands each answer's sender and sockets to
    /// `each` (see [`Inner::request`]).
    pub(super) async fn fetch_round(
        self: &Arc<Self>,
        opts: BroadcastOptions,
        timeout: Duration,
        operation: &'static str,
        mut each: impl FnMut(Option<&str>, Vec<SocketInfo>),
    ) -> Result<Option<Shortfall>, AdapterError> {
        self.request(
            |request_id| Body::FetchSockets { request_id, opts },
            timeout,
            operation,
            |uid, body| match body {
                Body::FetchSocketsResponse { sockets, .. } => {
                    each(uid, sockets);
                    true
                }
                _ => false,
            },
        )
        .await
    }
}
