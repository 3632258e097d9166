//! The one reconnect supervisor of every transport, and the state a transport shares
//! with it: its subscribers and its counters.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use super::Channel;
use super::backoff::Backoff;
use super::stats::{Counters, Stat, TransportStats};
use super::subscribers::Subscribers;

/// What a transport does for its [`Supervisor`]: let go of a broken connection, try to
/// connect again and restore every subscription, close at shutdown. The supervisor
/// decides when (a reported loss, a resubscribe request, a failed health check), retries
/// with the [`Backoff`], counts, logs and tells every subscriber.
pub trait Reconnect: Send + Sync + 'static {
    /// What a failed attempt reports (logged).
    type Error: fmt::Display + Send;

    /// How often the supervisor asks [`Reconnect::needs_reconnect`] without being woken;
    /// `None` (the default): only when a loss is reported.
    fn check_every(&self) -> Option<Duration> {
        None
    }

    /// Whether the connection must be re-established, asked on a periodic check and on a
    /// reported loss (not on a resubscribe). Default: yes, a reported loss is a loss.
    fn needs_reconnect(&self) -> bool {
        true
    }

    /// Before the first attempt of a recovery: let go of what broke (stop reading, close
    /// the old connection). `forced`: asked for by [`Supervisor::resubscribe`].
    fn disconnect(&self, forced: bool) -> impl Future<Output = ()> + Send {
        let _ = forced;
        async {}
    }

    /// One attempt: connect again (if needed) and restore every subscription of
    /// [`Supervisor::subscribers`] at the broker. `forced`: drop and re-create the
    /// subscriptions even if the connection looks fine.
    fn reconnect(&self, forced: bool) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The transport is shutting down (its last handle was dropped): close.
    fn close(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// The broker-independent half of a transport, shared by its handle, its connection
/// callbacks and its background tasks: who subscribed to what ([`Subscribers`]), the
/// counters ([`TransportStats`]) and the reconnect supervisor's wake-ups.
///
/// A transport reports a loss with [`Supervisor::connection_lost`] (from any thread, any
/// number of times) and forwards [`Transport::resubscribe`](crate::Transport::resubscribe)
/// to [`Supervisor::resubscribe`]; the task started by [`Supervisor::spawn`] then calls
/// its [`Reconnect`] implementation, retrying with the [`Backoff`], counts
/// [`TransportStats::reconnects`] and sends
/// [`TransportEvent::Reconnected`](crate::TransportEvent::Reconnected) to every
/// subscriber.
#[derive(Debug)]
pub struct Supervisor {
    name: &'static str,
    target: String,
    subscribers: Subscribers,
    counters: Counters,
    wake: Notify,
    /// Losses reported so far; a recovery covers those reported before its successful
    /// attempt started.
    reports: AtomicU64,
    /// The next recovery must re-create the subscriptions (a resubscribe request).
    force: AtomicBool,
    /// No loss reported since the last successful recovery (see [`Supervisor::is_connected`]).
    connected: AtomicBool,
    backoff: Mutex<Backoff>,
}

impl Supervisor {
    /// The state of one transport named `name` (for logs: `Redis`, `Kafka`, ...)
    /// connected to `target` (a description without secrets).
    pub fn new(name: &'static str, target: impl Into<String>) -> Arc<Self> {
        Arc::new(Supervisor {
            name,
            target: target.into(),
            subscribers: Subscribers::new(),
            counters: Counters::new(),
            wake: Notify::new(),
            reports: AtomicU64::new(0),
            force: AtomicBool::new(false),
            connected: AtomicBool::new(true),
            backoff: Mutex::new(Backoff::default()),
        })
    }

    /// Who subscribed to what.
    pub fn subscribers(&self) -> &Subscribers {
        &self.subscribers
    }

    /// The live counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> TransportStats {
        self.counters.snapshot()
    }

    /// The description of the broker this transport talks to.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The reconnect policy.
    pub fn backoff(&self) -> Backoff {
        *self.backoff.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the reconnect policy (from the next recovery on).
    pub fn set_backoff(&self, backoff: Backoff) {
        *self.backoff.lock().unwrap_or_else(PoisonError::into_inner) = backoff;
    }

    /// Whether the transport is connected as far as its supervisor knows: `false` from a
    /// reported loss (or a resubscribe request) until the recovery succeeded, `true`
    /// otherwise. A broker that stalls without closing the connection is not seen here
    /// (nothing fails until something is sent): the engine's health check sees it.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// The connection (or a subscription) was lost: recover. Cheap, callable from any
    /// thread (a client library's callback), idempotent while a recovery runs.
    pub fn connection_lost(&self) {
        self.connected.store(false, Ordering::Release);
        self.reports.fetch_add(1, Ordering::AcqRel);
        self.wake.notify_one();
    }

    /// Drop and restore every subscription even if the connection looks fine.
    pub fn resubscribe(&self) {
        self.force.store(true, Ordering::Release);
        self.connection_lost();
    }

    /// Hands a message published on `channel` to the subscribers of `channel` and of
    /// every matching pattern, counting [`TransportStats::delivered`].
    pub async fn deliver(&self, channel: &str, payload: &Bytes) -> u64 {
        let n = self.subscribers.deliver(channel, payload).await;
        self.counters.add(Stat::Delivered, n);
        n
    }

    /// Hands a message published on `channel` to the subscribers of exactly `key` (the
    /// channel, or the pattern the broker matched), counting delivered messages.
    pub async fn deliver_to(&self, key: &Channel, channel: &str, payload: &Bytes) -> u64 {
        let n = self.subscribers.deliver_to(key, channel, payload).await;
        self.counters.add(Stat::Delivered, n);
        n
    }

    /// Starts the supervisor task over `link`; it ends (after [`Reconnect::close`]) when
    /// `shutdown` turns `true` or its sender is dropped.
    pub fn spawn<R: Reconnect>(self: &Arc<Self>, link: R, shutdown: watch::Receiver<bool>) {
        tokio::spawn(supervise(Arc::clone(self), link, shutdown));
    }
}

async fn supervise<R: Reconnect>(sup: Arc<Supervisor>, link: R, mut shutdown: watch::Receiver<bool>) {
    let mut tick = link.check_every().map(|period| {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick
    });
    let mut handled = 0;
    'outer: loop {
        let ticked = tokio::select! {
            _ = sup.wake.notified() => false,
            _ = async {
                match tick.as_mut() {
                    Some(tick) => drop(tick.tick().await),
                    None => std::future::pending().await,
                }
            } => true,
            _ = shutdown.changed() => break,
        };
        let mut forced = sup.force.swap(false, Ordering::AcqRel);
        let reported = sup.reports.load(Ordering::Acquire);
        if !forced && !ticked && reported == handled {
            // a wake-up the last recovery already covered
            continue;
        }
        if !forced && !link.needs_reconnect() {
            handled = reported;
            sup.connected.store(true, Ordering::Release);
            continue;
        }
        sup.connected.store(false, Ordering::Release);
        link.disconnect(forced).await;
        let backoff = sup.backoff();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let seen = sup.reports.load(Ordering::Acquire);
            forced |= sup.force.swap(false, Ordering::AcqRel);
            match link.reconnect(forced).await {
                Ok(()) => {
                    handled = seen;
                    // a loss reported during this attempt keeps it disconnected: the next
                    // round recovers it
                    if sup.reports.load(Ordering::Acquire) == seen {
                        sup.connected.store(true, Ordering::Release);
                    }
                    break;
                }
                Err(_) if shutdown.has_changed().unwrap_or(true) => break 'outer,
                Err(e) => {
                    let retry_in = backoff.delay(attempt);
                    warn!(transport = sup.name, broker = %sup.target, attempt, error = %e, ?retry_in, "not reconnected yet");
                    tokio::select! {
                        _ = tokio::time::sleep(retry_in) => {}
                        _ = shutdown.changed() => break 'outer,
                    }
                }
            }
        }
        sup.counters.bump(Stat::Reconnects);
        info!(transport = sup.name, broker = %sup.target, attempts = attempt, channels = sup.subscribers.len(),
              "reconnected, subscriptions restored");
        // in a task of its own: a subscriber slow to drain must not keep the supervisor
        // from watching the new connection
        let sup = Arc::clone(&sup);
        tokio::spawn(async move { sup.subscribers.reconnected().await });
    }
    link.close().await;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::time::Duration;

    use tokio::sync::{mpsc, watch};

    use super::{Reconnect, Supervisor};
    use crate::transport::{Backoff, Channel, TransportEvent};

    #[derive(Default)]
    struct Fake {
        /// attempts that fail before one succeeds
        failures: AtomicU32,
        attempts: AtomicU32,
        forced: AtomicBool,
        disconnects: AtomicU32,
        healthy: AtomicBool,
        closed: AtomicBool,
        check: Option<Duration>,
    }

    impl Reconnect for Arc<Fake> {
        type Error = String;

        fn check_every(&self) -> Option<Duration> {
            self.check
        }

        fn needs_reconnect(&self) -> bool {
            !self.healthy.load(Ordering::SeqCst)
        }

        async fn disconnect(&self, _forced: bool) {
            self.disconnects.fetch_add(1, Ordering::SeqCst);
        }

        async fn reconnect(&self, forced: bool) -> Result<(), String> {
            self.attempts.fetch_add(1, Ordering::SeqCst);
            self.forced.fetch_or(forced, Ordering::SeqCst);
            let left = self.failures.load(Ordering::SeqCst);
            if left > 0 {
                self.failures.store(left - 1, Ordering::SeqCst);
                return Err("broker down".into());
            }
            self.healthy.store(true, Ordering::SeqCst);
            Ok(())
        }

        async fn close(&self) {
            self.closed.store(true, Ordering::SeqCst);
        }
    }

    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_with_backoff_then_reports_to_every_subscriber() {
        let sup = Supervisor::new("fake", "nowhere");
        sup.set_backoff(Backoff::new(Duration::from_millis(100), Duration::from_millis(400)).with_jitter(0.0));
        let (tx, mut rx) = mpsc::channel(8);
        sup.subscribers().add(&Channel::Exact("ch".into()), &tx);
        let fake = Arc::new(Fake { failures: AtomicU32::new(3), ..Fake::default() });
        let (stop, stop_rx) = watch::channel(false);
        sup.spawn(Arc::clone(&fake), stop_rx);
        let start = tokio::time::Instant::now();
        assert!(sup.is_connected());
        sup.connection_lost();
        sup.connection_lost();
        assert!(!sup.is_connected(), "disconnected from the report on");
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("in time");
        assert_eq!(got, Some(TransportEvent::Reconnected));
        // fails at once, after 100, after 200, then works after 400 more
        assert_eq!(start.elapsed(), Duration::from_millis(700));
        assert!(sup.is_connected(), "connected again once recovered");
        assert_eq!(fake.attempts.load(Ordering::SeqCst), 4);
        assert_eq!(fake.disconnects.load(Ordering::SeqCst), 1);
        assert!(!fake.forced.load(Ordering::SeqCst));
        assert_eq!(sup.stats().reconnects, 1);
        settle().await;
        assert_eq!(fake.attempts.load(Ordering::SeqCst), 4, "both reports covered by one recovery");
        assert!(rx.try_recv().is_err(), "one Reconnected");

        sup.resubscribe();
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(1), rx.recv()).await.expect("in time"),
            Some(TransportEvent::Reconnected)
        );
        assert!(fake.forced.load(Ordering::SeqCst), "resubscribe forces");
        assert_eq!(sup.stats().reconnects, 2);

        drop(stop);
        settle().await;
        assert!(fake.closed.load(Ordering::SeqCst), "closed at shutdown");
    }

    #[tokio::test(start_paused = true)]
    async fn periodic_checks_recover_only_when_unhealthy() {
        let sup = Supervisor::new("fake", "nowhere");
        let fake = Arc::new(Fake { check: Some(Duration::from_millis(250)), ..Fake::default() });
        fake.healthy.store(true, Ordering::SeqCst);
        let (_stop, stop_rx) = watch::channel(false);
        sup.spawn(Arc::clone(&fake), stop_rx);
        tokio::time::sleep(Duration::from_secs(1)).await;
        sup.connection_lost();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(fake.attempts.load(Ordering::SeqCst), 0, "healthy: nothing to do");
        fake.healthy.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(fake.attempts.load(Ordering::SeqCst), 1, "the check found it broken");
        assert_eq!(sup.stats().reconnects, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_loss_reported_during_an_attempt_is_recovered_again() {
        struct Slow(Arc<Supervisor>, Arc<AtomicU32>);
        impl Reconnect for Slow {
            type Error = String;
            async fn reconnect(&self, _forced: bool) -> Result<(), String> {
                if self.1.fetch_add(1, Ordering::SeqCst) == 0 {
                    // the new connection breaks while the subscriptions are restored
                    self.0.connection_lost();
                }
                Ok(())
            }
        }
        let sup = Supervisor::new("fake", "nowhere");
        let attempts = Arc::new(AtomicU32::new(0));
        let (_stop, stop_rx) = watch::channel(false);
        sup.spawn(Slow(Arc::clone(&sup), Arc::clone(&attempts)), stop_rx);
        sup.connection_lost();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
        assert_eq!(sup.stats().reconnects, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_stops_retrying_and_closes() {
        let sup = Supervisor::new("fake", "nowhere");
        let fake = Arc::new(Fake { failures: AtomicU32::new(u32::MAX), ..Fake::default() });
        let (stop, stop_rx) = watch::channel(false);
        sup.spawn(Arc::clone(&fake), stop_rx);
        sup.connection_lost();
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(!sup.is_connected(), "still disconnected while every attempt fails");
        let attempts = fake.attempts.load(Ordering::SeqCst);
        assert!((8..=12).contains(&attempts), "backing off up to 2 s: {attempts}");
        drop(stop);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(fake.closed.load(Ordering::SeqCst));
        assert!(fake.attempts.load(Ordering::SeqCst) <= attempts + 1, "no attempts after shutdown");
        assert_eq!(sup.stats().reconnects, 0);
    }
}
