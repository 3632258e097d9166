//! The inbound side: the loop that takes the transport's events, and the dispatch of
//! each received message (health check echo, own message, membership, response,
//! heartbeat or request for the local sockets).

use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock, Weak};

use tokio::sync::mpsc;
use tracing::{info, warn};

use super::pending::RouteResult;
use super::stats::Counters;
use super::{Inner, Mode};
use crate::dialect::EMITTER_UID;
use crate::error::{DecodeError, DialectError};
use crate::local::PendingDelivery;
use crate::message::{Body, Message};
use crate::throttle::OncePerKey;
use crate::transport::{Transport, TransportEvent};

/// Handles the transport's events one at a time; a message for local sockets holds the
/// next one back until the sockets took it (back-pressure on the transport).
pub(super) async fn inbound_loop<T: Transport>(weak: Weak<Inner<T>>, mut rx: mpsc::Receiver<TransportEvent>) {
    while let Some(event) = rx.recv().await {
        let Some(inner) = weak.upgrade() else { return };
        match event {
            TransportEvent::Message { channel, payload } => {
                if let Some(pending) = inner.on_message(&channel, &payload) {
                    // Back-pressure: the next message waits until local sockets took this one.
                    // The health check must not take the wait for deafness.
                    inner.delivering.store(true, Ordering::Relaxed);
                    drop(inner);
                    let dropped = pending.await;
                    let Some(inner) = weak.upgrade() else { return };
                    inner.delivering.store(false, Ordering::Relaxed);
                    inner.counters.dropped_deliveries.fetch_add(dropped, Ordering::Relaxed);
                }
            }
            TransportEvent::Reconnected => {
                info!(node = %inner.uid, nsp = %inner.nsp, broker = %inner.transport.describe(),
                      "transport reconnected, subscriptions restored");
                if inner.mode() == Mode::Heartbeat && inner.is_node() {
                    inner.publish_later(inner.message(Body::InitialHeartbeat));
                }
            }
        }
    }
}

impl<T: Transport> Inner<T> {
    /// Handles one message from the transport; returns the rest of a local delivery that
    /// must finish before the next message (see [`PendingDelivery`]). Never fails: what
    /// cannot be decoded is counted and dropped.
    pub(super) fn on_message(self: &Arc<Self>, channel: &str, payload: &[u8]) -> Option<PendingDelivery> {
        Counters::bump(&self.counters.received);
        if payload.len() > self.config.max_message_size {
            Counters::bump(&self.counters.oversized);
            if let Some(held_back) = self.oversized_warning.check() {
                warn!(nsp = %self.nsp, channel, bytes = payload.len(), limit = self.config.max_message_size, held_back,
                      total = self.counters.oversized.load(Ordering::Relaxed),
                      "dropping a message over the maximum message size, unread (max_message_bytes; one line per 10 s; held_back: since the last)");
            }
            return None;
        }
        if let (Some(local), Some(room)) = (&self.local, self.dialect.broadcast_room(&self.nsp, channel))
            && !local.has_room(room)
        {
            return None;
        }
        let msg = match self.dialect.decode(channel, payload) {
            Ok(msg) => msg,
            Err(DialectError::Decode { source: DecodeError::Pickled { sender }, .. }) => {
                Counters::bump(&self.counters.undecodable);
                Counters::bump(&self.counters.pickled);
                // one line per sender for the whole process (every namespace hears it)
                static WARNED: LazyLock<OncePerKey> = LazyLock::new(|| OncePerKey::new(1024));
                let who = sender.as_deref().unwrap_or("an unnamed sender");
                if WARNED.first(who) {
                    warn!(nsp = %self.nsp, channel, sender = who,
                          total = self.counters.pickled.load(Ordering::Relaxed),
                          "dropping pickled messages from a python-socketio before 5.14 (never unpickled); upgrade that sender to python-socketio 5.14 or later, which sends JSON (one line per sender)");
                }
                return None;
            }
            Err(e) => {
                Counters::bump(&self.counters.undecodable);
                if let Some(held_back) = self.undecodable_warning.check() {
                    warn!(node = %self.uid, nsp = %self.nsp, broker = %self.transport.describe(), channel,
                          bytes = payload.len(), error = %e, held_back,
                          total = self.counters.undecodable.load(Ordering::Relaxed),
                          "dropping undecodable message (one line per 10 s; held_back: since the last)");
                }
                return None;
            }
        };
        if msg.nsp != self.nsp {
            // python-socketio's one channel carries every namespace: not foreign there
            if self.dialect.capabilities().namespace_channels {
                Counters::bump(&self.counters.other_namespace);
                if let Some(held_back) = self.other_namespace_warning.check() {
                    warn!(nsp = %self.nsp, channel, other = %msg.nsp, held_back,
                          total = self.counters.other_namespace.load(Ordering::Relaxed),
                          "dropping a message of another namespace on this namespace's channel (one line per 10 s; held_back: since the last)");
                }
            }
            return None;
        }
        // before anything else: a ping may carry no uid, and never makes its sender known
        if self.take_ping(channel, &msg) {
            return None;
        }
        if msg.uid.as_deref() == Some(self.uid.as_str()) {
            return None;
        }
        if let Some(uid) = msg.uid.as_deref()
            && uid != EMITTER_UID
        {
            self.touch(uid, matches!(msg.body, Body::AdapterClose));
        }
        if msg.body.response_to().is_some() {
            self.route_response(msg);
            return None;
        }
        if let Body::InitialHeartbeat = msg.body {
            if self.mode() == Mode::Heartbeat && self.is_node() {
                self.publish_later(self.message(Body::Heartbeat));
            }
            return None;
        }
        let local = self.local.clone()?;
        self.answer(local.as_ref(), msg)
    }

    /// Hands a response to the request waiting for it (if any).
    fn route_response(&self, msg: Message) {
        let Some(id) = msg.body.response_to().map(str::to_owned) else { return };
        match self.pending.route(&id, msg.uid, msg.body) {
            RouteResult::Delivered | RouteResult::Unknown => {}
            RouteResult::Full => {
                Counters::bump(&self.counters.dropped_responses);
                if let Some(held_back) = self.response_warning.check() {
                    warn!(node = %self.uid, nsp = %self.nsp, broker = %self.transport.describe(), request = %id, held_back,
                          "response queue full, dropping a response (one line per 10 s; held_back: since the last)");
                }
            }
        }
    }
}

#[cfg(all(test, feature = "test-util"))]
#[path = "tests/inbound.rs"]
mod tests;
