//! Starting (mode detection, subscriptions, background tasks) and closing an engine.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{info, warn};

use super::inbound::inbound_loop;
use super::room_channels::room_subscription_loop;
use super::{Inner, Membership, Mode, lock};
use crate::error::AdapterError;
use crate::message::Body;
use crate::transport::{Channel, Transport};

impl<T: Transport> Inner<T> {
    /// `true` for a server node (it has local sockets), `false` for a requester.
    pub(super) fn is_node(&self) -> bool {
        self.local.is_some()
    }

    /// How servers are counted (broker count until started).
    pub(super) fn mode(&self) -> Mode {
        *self.mode.get().unwrap_or(&Mode::Broker)
    }

    /// Fails once closed; a node must have been started, a requester starts here.
    pub(super) async fn ready(self: &Arc<Self>) -> Result<(), AdapterError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(AdapterError::Closed);
        }
        if self.sink.get().is_some() {
            return Ok(());
        }
        if self.is_node() {
            return Err(AdapterError::NotInitialized);
        }
        Inner::start(self).await
    }

    pub(super) async fn start(self: &Arc<Self>) -> Result<(), AdapterError> {
        let _guard = self.start_lock.lock().await;
        if self.closed.load(Ordering::Acquire) {
            return Err(AdapterError::Closed);
        }
        if self.sink.get().is_some() {
            return Ok(());
        }
        let mode = self.detect_mode().await?;
        let _ = self.mode.set(mode);

        let (tx, rx) = mpsc::channel(self.config.inbound_capacity);
        self.spawn(inbound_loop(Arc::downgrade(self), rx));
        let channels = self.own_channels(mode);
        self.transport.subscribe(&channels, tx.clone()).await.map_err(|e| {
            AdapterError::transport(
                format!("subscribe to {}", channels.iter().map(Channel::as_str).collect::<Vec<_>>().join(", ")),
                e,
            )
        })?;
        let _ = self.sink.set(tx);
        lock(&self.health).started(tokio::time::Instant::now());
        info!(node = %self.uid, nsp = %self.nsp, broker = %self.transport.describe(),
              dialect = self.dialect.name(), ?mode, server = self.is_node(), "cluster adapter started");

        if mode == Mode::Heartbeat {
            self.publish(&self.message(Body::InitialHeartbeat)).await?;
        }
        if self.is_node() || mode == Mode::Heartbeat {
            self.spawn(maintenance_loop(Arc::downgrade(self)));
        }
        if self.is_node() {
            self.spawn(room_subscription_loop(Arc::downgrade(self)));
        }
        if !self.is_node() && mode == Mode::Heartbeat {
            // give the nodes a moment to answer the initial heartbeat
            tokio::time::sleep(self.config.discovery_window).await;
        }
        Ok(())
    }

    /// Decides how servers are counted: as configured, or (auto) by the broker when it
    /// can count subscribers, else by heartbeats when the dialect has them.
    async fn detect_mode(&self) -> Result<Mode, AdapterError> {
        let membership = self.config.membership;
        if !self.dialect.capabilities().requests {
            // nothing is counted: requests and the server count are refused as the
            // dialect cannot carry them (python-socketio)
            return Ok(Mode::Broker);
        }
        if membership == Membership::Heartbeat {
            return Ok(Mode::Heartbeat);
        }
        let count_channel = self.dialect.count_channel(&self.nsp);
        let counted = self
            .transport
            .server_count(&count_channel)
            .await
            .map_err(|e| AdapterError::transport(format!("count subscribers of {count_channel}"), e))?;
        match (counted, membership) {
            (Some(_), _) => Ok(Mode::Broker),
            (None, Membership::BrokerCount) => {
                Err(AdapterError::Config(format!("the {} transport cannot count subscribers", self.transport.name())))
            }
            (None, _) if self.dialect.capabilities().heartbeats => Ok(Mode::Heartbeat),
            (None, _) => Err(AdapterError::Config(format!(
                "the {} transport cannot count subscribers and the {} dialect has no heartbeats",
                self.transport.name(),
                self.dialect.name()
            ))),
        }
    }

    /// The channels this engine subscribes to on start: a node's, or a requester's (a
    /// requester in heartbeat mode listens to the main channel for heartbeats).
    fn own_channels(&self, mode: Mode) -> Vec<Channel> {
        if self.is_node() || mode == Mode::Heartbeat {
            self.dialect.node_channels(&self.nsp, &self.uid)
        } else {
            self.dialect.requester_channels(&self.nsp, &self.uid)
        }
    }

    pub(super) async fn close(self: &Arc<Self>) -> Result<(), AdapterError> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let mut result = Ok(());
        if let Some(sink) = self.sink.get() {
            if self.mode() == Mode::Heartbeat && self.is_node() {
                result = self.publish(&self.message(Body::AdapterClose)).await;
            }
            let mut channels = self.own_channels(self.mode());
            channels.extend(lock(&self.room_subs).take_applied().map(Channel::Exact));
            if let Err(e) = self.transport.unsubscribe(&channels, sink).await {
                warn!(nsp = %self.nsp, error = %e, "failed to unsubscribe on close");
            }
        }
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
        self.pending.clear();
        info!(node = %self.uid, nsp = %self.nsp, broker = %self.transport.describe(), "cluster adapter closed");
        result
    }

    /// Runs a background task that stops with the engine.
    pub(super) fn spawn(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(fut);
        lock(&self.tasks).push(handle.abort_handle());
    }
}

/// Ticks [`Inner::maintain`] (heartbeats, eviction, health check) every heartbeat
/// interval, at most every second and at least every 10 ms.
async fn maintenance_loop<T: Transport>(weak: std::sync::Weak<Inner<T>>) {
    let period = match weak.upgrade() {
        Some(inner) => inner.config.heartbeat_interval.min(Duration::from_secs(1)).max(Duration::from_millis(10)),
        None => return,
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        let now = tick.tick().await;
        let Some(inner) = weak.upgrade() else { return };
        inner.maintain(now).await;
    }
}
