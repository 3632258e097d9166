//! Per-room channel subscriptions (the dialects' dynamic subscription modes): a node
//! subscribes to the channel of each room it has members in, so that a broadcast to a
//! room reaches only the nodes interested in it.
//!
//! Room changes update the *desired* set at once ([`Inner::rooms_changed`]); a
//! background task brings the broker's *applied* set to it, retrying every 500 ms
//! while the broker refuses or is unreachable.

use std::collections::HashSet;
use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;
use tracing::warn;

use super::{ClusterCore, Inner, deadline_after, lock};
use crate::rooms::RoomChanges;
use crate::transport::{Channel, Transport};

/// The per-room channels wanted and those the broker has.
#[derive(Debug, Default)]
pub(super) struct RoomSubs {
    desired: HashSet<String>,
    applied: HashSet<String>,
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
                Ok(()) => lock(&self.room_subs).unsubscribed(&remove),
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
