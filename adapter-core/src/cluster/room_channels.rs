//! Per-room channel subscriptions (the dialects' dynamic subscription modes): a node
//! subscribes to the channel of each room it has members in, so that a broadcast to a
//! room reaches only the nodes interested in it.
//!
//! Room changes update the *desired* set at once ([`Inner::rooms_changed`]); a
//! background task brings the broker's *applied* set to it, retrying every 500 ms
//! while the broker refuses or is unreachable.
//!
//! A node subscribes a room's channel only after its sockets joined the room, without
//! telling anyone when (Node.js servers do not wait for their `SSUBSCRIBE`; ours apply
//! it in the background). So right after this engine asked the cluster's sockets to join
//! a room ([`ClusterCore::add_sockets`], `sockets join` from an emitter), a broadcast to
//! that room on its channel would reach no server that is still subscribing: the worker
//! that joins users to a room and then emits to it would lose its first event. For
//! [`JOIN_SETTLE`] after such a join, this engine's broadcasts to that room alone go on
//! the namespace's main channel instead ([`RecentJoins`]), where every server already
//! listens and where the join went before them, so in order. Peers handle a room
//! broadcast on the main channel as they do in `static` mode.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;
use tracing::warn;

use super::{ClusterCore, Inner, deadline_after, lock};
use crate::rooms::RoomChanges;
use crate::transport::{Channel, Transport};
use crate::types::Room;

/// How long after this engine made the cluster's sockets join a room its broadcasts to
/// that room alone go on the main channel (see the module doc): ample for a server to
/// receive the join and subscribe the room's channel, short enough that the
/// per-room channels carry a room's traffic again soon after.
pub(super) const JOIN_SETTLE: Duration = Duration::from_secs(10);

/// The most joined rooms remembered at once; joins beyond it are not remembered, and
/// broadcasts to those rooms take the room's channel as they would without this.
pub(super) const MAX_RECENT_JOINS: usize = 4096;

/// The rooms this engine made the cluster's sockets join in the last [`JOIN_SETTLE`].
#[derive(Debug, Default)]
pub(super) struct RecentJoins {
    /// Joins in time order (a room again for each join, at most [`MAX_RECENT_JOINS`]).
    order: VecDeque<(Instant, Room)>,
    /// Each remembered room's latest join.
    latest: HashMap<Room, Instant>,
}

impl RecentJoins {
    /// This engine asked the cluster's sockets to join `rooms` at `now`.
    pub(super) fn joined(&mut self, rooms: &[Room], now: Instant) {
        self.expire(now);
        for room in rooms {
            if self.order.len() >= MAX_RECENT_JOINS {
                return;
            }
            self.latest.insert(room.clone(), now);
            self.order.push_back((now, room.clone()));
        }
    }

    /// Whether `room` was joined less than [`JOIN_SETTLE`] before `now`.
    pub(super) fn contains(&mut self, room: &Room, now: Instant) -> bool {
        if self.latest.is_empty() {
            return false;
        }
        self.expire(now);
        self.latest.contains_key(room)
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.saturating_duration_since(*at) < JOIN_SETTLE {
                break;
            }
            let Some((at, room)) = self.order.pop_front() else { break };
            if self.latest.get(&room) == Some(&at) {
                self.latest.remove(&room);
            }
        }
    }

    /// Rooms remembered.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.latest.len()
    }
}

/// The per-room channels wanted and those the broker has.
#[derive(Debug, Default)]
pub(super) struct RoomSubs {
    desired: HashSet<String>,
    applied: HashSet<String>,
    /// The channel the health check probed last (they take turns).
    probed: Option<String>,
}

impl RoomSubs {
    /// No longer wants `deleted`, then wants `created` (but not what is also in
    /// `deleted`) while fewer than `max` are wanted: (whether the desired set changed,
    /// how many created were refused).
    pub(super) fn want(
        &mut self,
        created: impl IntoIterator<Item = String>,
        deleted: impl IntoIterator<Item = String>,
        max: usize,
    ) -> (bool, u64) {
        let mut changed = false;
        let deleted: Vec<String> = deleted.into_iter().collect();
        for ch in &deleted {
            changed |= self.desired.remove(ch);
        }
        let mut refused = 0;
        for ch in created {
            if deleted.contains(&ch) {
                // created and deleted at once: a change, to nothing
                changed = true;
            } else if self.desired.len() < max || self.desired.contains(&ch) {
                changed |= self.desired.insert(ch);
            } else {
                refused += 1;
            }
        }
        (changed, refused)
    }

    /// What to subscribe to and what to leave, each sorted.
    pub(super) fn diff(&self) -> (Vec<String>, Vec<String>) {
        let mut add: Vec<String> = self.desired.difference(&self.applied).cloned().collect();
        let mut remove: Vec<String> = self.applied.difference(&self.desired).cloned().collect();
        add.sort();
        remove.sort();
        (add, remove)
    }

    /// The broker subscribed to `channels`.
    pub(super) fn subscribed(&mut self, channels: impl IntoIterator<Item = String>) {
        self.applied.extend(channels);
    }

    /// The broker left `channels`.
    pub(super) fn unsubscribed(&mut self, channels: &[String]) {
        for ch in channels {
            self.applied.remove(ch);
        }
    }

    /// `true` when the broker has exactly the desired channels.
    pub(super) fn is_settled(&self) -> bool {
        self.desired == self.applied
    }

    /// Channels subscribed at the broker.
    pub(super) fn applied_len(&self) -> usize {
        self.applied.len()
    }

    /// (Un)subscriptions not yet applied.
    pub(super) fn pending_len(&self) -> usize {
        self.desired.symmetric_difference(&self.applied).count()
    }

    /// The applied channel the health check probes next: the one after the last probed in
    /// name order, from the first again after the last.
    pub(super) fn next_probe(&mut self) -> Option<String> {
        let after = |ch: &&String| self.probed.as_ref().is_none_or(|p| *ch > p);
        let next = self.applied.iter().filter(after).min().or_else(|| self.applied.iter().min()).cloned();
        self.probed.clone_from(&next);
        next
    }

    /// Forgets the applied channels (on close) and returns them.
    pub(super) fn take_applied(&mut self) -> impl Iterator<Item = String> + '_ {
        self.applied.drain()
    }
}

impl<T: Transport> ClusterCore<T> {
    /// Reports local room changes (subscribes to or leaves per-room channels in the
    /// dialects that have them).
    pub fn rooms_changed(&self, changes: RoomChanges) {
        self.inner.rooms_changed(changes);
    }

    /// Waits until the broker applied every per-room subscription wanted so far (see
    /// [`ClusterCore::rooms_changed`]), at most the request timeout; `false` if it did not.
    pub async fn room_subscriptions_applied(&self) -> bool {
        let deadline = deadline_after(self.inner.config.request_timeout);
        loop {
            if lock(&self.inner.room_subs).is_settled() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

impl<T: Transport> Inner<T> {
    /// Updates the desired room channels and wakes the subscription task if they changed.
    pub(super) fn rooms_changed(&self, changes: RoomChanges) {
        if changes.created.is_empty() && changes.deleted.is_empty() {
            return;
        }
        let channel = |room| self.dialect.room_channel(&self.nsp, room);
        let created = changes.created.iter().filter_map(channel);
        let deleted = changes.deleted.iter().filter_map(channel);
        let max = self.config.max_room_channels;
        let (changed, refused) = lock(&self.room_subs).want(created, deleted, max);
        if changed {
            self.room_notify.notify_one();
        }
        if refused > 0 {
            let total = self.counters.room_channels_refused.fetch_add(refused, Ordering::Relaxed) + refused;
            if let Some(held_back) = self.room_channel_warning.check() {
                warn!(nsp = %self.nsp, refused, total, limit = max, held_back,
                      "room channel limit reached: rooms created beyond it get no channel, and their members here miss \
                       room broadcasts from dynamic-mode peers (ClusterConfig::with_max_room_channels, max_room_channels in the URL; one line per 10 s)");
            }
        }
    }

    /// Brings the broker's per-room subscriptions to the desired set. Returns `false` if
    /// some (un)subscription failed and must be retried.
    pub(super) async fn apply_room_subscriptions(&self) -> bool {
        let Some(sink) = self.sink.get() else { return true };
        let mut settled = true;
        let (add, remove) = lock(&self.room_subs).diff();
        if !add.is_empty() {
            let channels: Vec<Channel> = add.iter().cloned().map(Channel::Exact).collect();
            match self.transport.subscribe(&channels, sink.clone()).await {
                Ok(()) => lock(&self.room_subs).subscribed(add),
                Err(e) => {
                    settled = false;
                    warn!(nsp = %self.nsp, channels = ?add, error = %e, "room subscription failed");
                }
            }
        }
        if !remove.is_empty() {
            let channels: Vec<Channel> = remove.iter().cloned().map(Channel::Exact).collect();
            match self.transport.unsubscribe(&channels, sink).await {
                Ok(()) => {
                    lock(&self.room_subs).unsubscribed(&remove);
                    lock(&self.health).left_rooms(&remove, Instant::now());
                }
                Err(e) => {
                    settled = false;
                    warn!(nsp = %self.nsp, channels = ?remove, error = %e, "room unsubscription failed");
                }
            }
        }
        settled
    }
}

/// Applies the desired room channels whenever they change (and every 500 ms while
/// some failed).
pub(super) async fn room_subscription_loop<T: Transport>(weak: Weak<Inner<T>>) {
    // Hold only the `Notify` between rounds: a strong `Inner` here would keep the adapter
    // (and its broker connections) alive after its owner dropped it.
    let Some(notify) = weak.upgrade().map(|inner| std::sync::Arc::clone(&inner.room_notify)) else { return };
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let settled = match weak.upgrade() {
            Some(inner) => inner.apply_room_subscriptions().await,
            None => return,
        };
        if settled {
            notified.await;
        } else {
            // the broker refused or was unreachable: retry soon even without a change
            let _ = tokio::time::timeout(Duration::from_millis(500), notified).await;
        }
    }
}

#[cfg(test)]
#[path = "tests/room_channels.rs"]
mod tests;
