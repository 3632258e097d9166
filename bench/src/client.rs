//! A lean Socket.IO client (engine.io v4 over a websocket, socket.io v5 packets): enough to
//! connect, join a room with the `join` contract event and count the deliveries of one
//! event, so that a few hundred clients cost the benchmark a fraction of a core and the
//! servers, not the clients, are measured.
//!
//! The counted event's arguments are `(seq, t_ms, ..)`: `seq` counts from 0 (one sender),
//! `t_ms` is the sender's wall clock in ms, which gives the latency on this machine.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::now_ms;

/// What one client counted.
#[derive(Debug, Default)]
pub struct Counters {
    /// Deliveries of the counted event.
    pub received: AtomicU64,
    /// Deliveries whose `seq` skipped ahead (something before them is missing).
    pub out_of_order: AtomicU64,
    /// Deliveries of a `seq` already seen (or older).
    pub dups: AtomicU64,
    /// Latency samples in µs (every `sample_every`-th delivery).
    latencies: Mutex<Vec<u32>>,
    /// The next `seq` expected.
    next: AtomicU64,
}

/// A set of connected clients.
#[derive(Debug)]
pub struct Clients {
    /// One entry per client.
    pub counters: Vec<Arc<Counters>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Clients {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Options of [`Clients::connect`].
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// `http://host:port` of the server.
    pub url: String,
    /// The room every client joins (`join` event with an ack).
    pub room: String,
    /// The counted event.
    pub event: String,
    /// Record the latency of every n-th delivery.
    pub sample_every: u64,
}

impl Clients {
    /// Connects `n` clients (20 at a time) and waits until each joined the room.
    pub async fn connect(n: usize, opts: &ClientOptions) -> Result<Clients, String> {
        let mut counters = Vec::with_capacity(n);
        let mut tasks = Vec::with_capacity(n);
        let mut joined = Vec::with_capacity(n);
        for _ in 0..n {
            let c = Arc::new(Counters::default());
            let (tx, rx) = tokio::sync::oneshot::channel();
            tasks.push(tokio::spawn(run(opts.clone(), Arc::clone(&c), tx)));
            counters.push(c);
            joined.push(rx);
            if joined.len().is_multiple_of(20) {
                wait_joined(&mut joined).await?;
            }
        }
        wait_joined(&mut joined).await?;
        Ok(Clients { counters, tasks })
    }

    /// Deliveries so far, all clients.
    pub fn received(&self) -> u64 {
        self.counters.iter().map(|c| c.received.load(Ordering::Relaxed)).sum()
    }

    /// Deliveries that skipped ahead and duplicates, all clients.
    pub fn disorder(&self) -> (u64, u64) {
        let sum = |f: fn(&Counters) -> &AtomicU64| self.counters.iter().map(|c| f(c).load(Ordering::Relaxed)).sum();
        (sum(|c| &c.out_of_order), sum(|c| &c.dups))
    }

    /// Every latency sample so far (µs), sorted.
    pub fn latencies(&self) -> Vec<u32> {
        let mut all = Vec::new();
        for c in &self.counters {
            all.extend_from_slice(&c.latencies.lock().unwrap_or_else(PoisonError::into_inner));
        }
        all.sort_unstable();
        all
    }

    /// Forgets what was counted (between runs on the same clients).
    pub fn reset(&self) {
        for c in &self.counters {
            c.received.store(0, Ordering::Relaxed);
            c.out_of_order.store(0, Ordering::Relaxed);
            c.dups.store(0, Ordering::Relaxed);
            c.next.store(0, Ordering::Relaxed);
            c.latencies.lock().unwrap_or_else(PoisonError::into_inner).clear();
        }
    }

    /// Waits until `want` deliveries arrived or nothing arrived for `idle`; returns the
    /// deliveries counted.
    pub async fn wait_for(&self, want: u64, idle: Duration) -> u64 {
        let mut last = self.received();
        let mut since = tokio::time::Instant::now();
        while last < want {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let now = self.received();
            if now != last {
                since = tokio::time::Instant::now();
                last = now;
            } else if since.elapsed() >= idle {
                break;
            }
        }
        last
    }
}

async fn wait_joined(joined: &mut Vec<tokio::sync::oneshot::Receiver<Result<(), String>>>) -> Result<(), String> {
    for rx in joined.drain(..) {
        match tokio::time::timeout(Duration::from_secs(20), rx).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => return Err(e),
            Ok(Err(_)) => return Err("a client stopped before it joined".into()),
            Err(_) => return Err("a client did not join within 20 s".into()),
        }
    }
    Ok(())
}

/// `42["event",seq,t_ms,...]` -> (seq, t_ms).
fn parse_event<'a>(text: &'a str, prefix: &str) -> Option<(u64, Option<f64>)> {
    let rest: &'a str = text.strip_prefix(prefix)?;
    let mut parts = rest.splitn(3, [',', ']']);
    let seq = parts.next()?.trim().parse().ok()?;
    let t = parts.next().and_then(|t| t.trim().parse().ok());
    Some((seq, t))
}

async fn run(opts: ClientOptions, c: Arc<Counters>, joined: tokio::sync::oneshot::Sender<Result<(), String>>) {
    let ws_url = format!("{}/socket.io/?EIO=4&transport=websocket", opts.url.replace("http://", "ws://"));
    let mut ws = match tokio_tungstenite::connect_async_with_config(&ws_url, None, true).await {
        Ok((ws, _)) => ws,
        Err(e) => {
            let _ = joined.send(Err(format!("connect {ws_url}: {e}")));
            return;
        }
    };
    let prefix = format!("42[\"{}\",", opts.event);
    let join = format!("420[\"join\",{}]", serde_json::Value::String(opts.room.clone()));
    let mut joined = Some(joined);
    while let Some(Ok(msg)) = ws.next().await {
        let Message::Text(text) = msg else { continue };
        let text = text.as_str();
        let reply = match text.as_bytes() {
            [b'0', ..] => Some("40".to_owned()),
            [b'2'] => Some("3".to_owned()),
            [b'4', b'0', ..] => Some(join.clone()),
            [b'4', b'3', b'0', ..] => {
                if let Some(tx) = joined.take() {
                    let _ = tx.send(Ok(()));
                }
                None
            }
            [b'4', b'4', ..] => {
                if let Some(tx) = joined.take() {
                    let _ = tx.send(Err(format!("connect error: {text}")));
                }
                None
            }
            [b'4', b'2', ..] => {
                if let Some((seq, t)) = parse_event(text, &prefix) {
                    let n = c.received.fetch_add(1, Ordering::Relaxed);
                    let next = c.next.load(Ordering::Relaxed);
                    if seq < next {
                        c.dups.fetch_add(1, Ordering::Relaxed);
                    } else {
                        if seq > next {
                            c.out_of_order.fetch_add(1, Ordering::Relaxed);
                        }
                        c.next.store(seq + 1, Ordering::Relaxed);
                    }
                    if let Some(t) = t
                        && n.is_multiple_of(opts.sample_every.max(1))
                    {
                        let us = ((now_ms() - t) * 1000.0).clamp(0.0, f64::from(u32::MAX)) as u32;
                        c.latencies.lock().unwrap_or_else(PoisonError::into_inner).push(us);
                    }
                }
                None
            }
            _ => None,
        };
        if let Some(reply) = reply
            && ws.send(Message::text(reply)).await.is_err()
        {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_seq_and_time() {
        assert_eq!(parse_event(r#"42["m",12,1700000000123.5,"xx"]"#, r#"42["m","#), Some((12, Some(1700000000123.5))));
        assert_eq!(parse_event(r#"42["m",3]"#, r#"42["m","#), Some((3, None)));
        assert_eq!(parse_event(r#"42["other",3]"#, r#"42["m","#), None);
    }
}

/// A client that calls contract events with acks (`42<id>["event",data]` -> `43<id>[reply]`),
/// several in flight.
#[derive(Debug, Clone)]
pub struct Caller {
    tx: tokio::sync::mpsc::UnboundedSender<(
        String,
        serde_json::Value,
        tokio::sync::oneshot::Sender<serde_json::Value>,
    )>,
}

impl Caller {
    /// Connects to `url` (`http://host:port`), namespace `/`.
    pub async fn connect(url: &str) -> Result<Caller, String> {
        let ws_url = format!("{}/socket.io/?EIO=4&transport=websocket", url.replace("http://", "ws://"));
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(&ws_url, None, true)
            .await
            .map_err(|e| format!("connect {ws_url}: {e}"))?;
        // open, then namespace connect
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.as_str().starts_with('0') => {
                    ws.send(Message::text("40")).await.map_err(|e| e.to_string())?;
                }
                Some(Ok(Message::Text(t))) if t.as_str().starts_with("40") => break,
                Some(Ok(_)) => {}
                _ => return Err(format!("{url}: closed before the namespace connected")),
            }
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(
            String,
            serde_json::Value,
            tokio::sync::oneshot::Sender<serde_json::Value>,
        )>();
        tokio::spawn(async move {
            let mut waiting = std::collections::HashMap::new();
            let mut next_id = 0u64;
            loop {
                tokio::select! {
                    call = rx.recv() => {
                        let Some((event, data, reply)) = call else { return };
                        let frame = format!("42{next_id}{}", serde_json::json!([event, data]));
                        waiting.insert(next_id, reply);
                        next_id += 1;
                        if ws.send(Message::text(frame)).await.is_err() { return }
                    }
                    msg = ws.next() => {
                        let Some(Ok(msg)) = msg else { return };
                        let Message::Text(text) = msg else { continue };
                        let text = text.as_str();
                        if text == "2" {
                            if ws.send(Message::text("3")).await.is_err() { return }
                        } else if let Some(rest) = text.strip_prefix("43") {
                            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                            let (id, body) = rest.split_at(digits);
                            let (Ok(id), Ok(serde_json::Value::Array(mut args))) =
                                (id.parse::<u64>(), serde_json::from_str::<serde_json::Value>(body)) else { continue };
                            if let Some(reply) = waiting.remove(&id) {
                                let _ = reply.send(if args.is_empty() { serde_json::Value::Null } else { args.swap_remove(0) });
                            }
                        }
                    }
                }
            }
        });
        Ok(Caller { tx })
    }

    /// Calls `event` with `data`; the first argument of the ack.
    pub async fn call(&self, event: &str, data: serde_json::Value) -> Result<serde_json::Value, String> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.tx.send((event.to_owned(), data, reply)).map_err(|_| "the caller's connection closed".to_owned())?;
        match tokio::time::timeout(Duration::from_secs(10), rx).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => Err("the caller's connection closed".into()),
            Err(_) => Err(format!("{event}: no ack within 10 s")),
        }
    }
}
