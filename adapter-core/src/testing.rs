//! Test helpers shared by this crate's cluster tests and the broker suites (feature
//! `test-util`): a stand-in for a Socket.IO server's sockets that records what the
//! adapter delivered, and the [`conformance`] suite every transport runs.

pub mod conformance;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::local::{AckError, LocalAckStream, LocalSockets, ServerSideAck, SocketDetails};
use crate::types::{BroadcastFlags, EventPacket};
use crate::value::{Map, Value};
use tokio::sync::mpsc;

/// One delivery: socket id, packet, volatile.
pub type Delivery = (String, EventPacket, bool);

/// Records deliveries, disconnects and server-side events; answers acks with
/// `"ack:<sid>"` (unless the socket is in `silent`) and the server-side event `ping`
/// with `"pong from <name>"`.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Name of the node (returned in socket data and pongs).
    pub name: String,
    /// Everything delivered.
    pub delivered: Mutex<Vec<Delivery>>,
    /// Disconnected sockets and the `close` flag.
    pub disconnected: Mutex<Vec<(String, bool)>>,
    /// Sockets that never ack.
    pub silent: Mutex<HashSet<String>>,
    /// Server-side events received.
    pub server_events: Mutex<Vec<EventPacket>>,
}

/// Locks, ignoring poisoning (a failed assertion elsewhere must not hide this data).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A socket id of the length Socket.IO uses (20), from a short name: `a1` -> `a1__________________`.
pub fn sid(name: &str) -> String {
    format!("{name:_<20}")
}

/// The short name of a [`sid`].
pub fn short(sid: &str) -> String {
    sid.trim_end_matches('_').to_owned()
}

impl Recorder {
    /// A new recorder.
    pub fn new(name: &str) -> Arc<Self> {
        Arc::new(Recorder { name: name.into(), ..Default::default() })
    }

    /// Sorted short names of the sockets that received `event`.
    pub fn got(&self, event: &str) -> Vec<String> {
        let mut v: Vec<String> =
            lock(&self.delivered).iter().filter(|(_, p, _)| p.event == event).map(|(s, _, _)| short(s)).collect();
        v.sort();
        v
    }

    /// Packets of `event`, in arrival order.
    pub fn packets(&self, event: &str) -> Vec<EventPacket> {
        lock(&self.delivered).iter().filter(|(_, p, _)| p.event == event).map(|(_, p, _)| p.clone()).collect()
    }

    /// Deliveries of `event` with their volatile flag.
    pub fn deliveries(&self, event: &str) -> Vec<Delivery> {
        lock(&self.delivered).iter().filter(|(_, p, _)| p.event == event).cloned().collect()
    }
}

impl LocalSockets for Recorder {
    fn send(&self, sids: &[String], packet: &EventPacket, _flags: &BroadcastFlags) {
        let mut d = lock(&self.delivered);
        for s in sids {
            d.push((s.clone(), packet.clone(), false));
        }
    }

    fn send_volatile(&self, sids: &[String], packet: &EventPacket, _flags: &BroadcastFlags) {
        let mut d = lock(&self.delivered);
        for s in sids {
            d.push((s.clone(), packet.clone(), true));
        }
    }

    fn send_with_ack(
        &self,
        sids: &[String],
        packet: &EventPacket,
        flags: &BroadcastFlags,
        timeout: Duration,
    ) -> LocalAckStream {
        self.send(sids, packet, flags);
        let (tx, rx) = mpsc::channel(sids.len().max(1));
        let silent = lock(&self.silent).clone();
        let sids = sids.to_vec();
        tokio::spawn(async move {
            let mut late = Vec::new();
            for sid in sids {
                if silent.contains(&sid) {
                    late.push(sid);
                } else {
                    let _ = tx.send((sid.clone(), Ok(Value::from(format!("ack:{}", short(&sid)))))).await;
                }
            }
            if !late.is_empty() {
                tokio::time::sleep(timeout).await;
                for sid in late {
                    let _ = tx.send((sid, Err(AckError::Timeout))).await;
                }
            }
        });
        Box::pin(futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) }))
    }

    fn disconnect(&self, sids: &[String], close: bool) {
        let mut d = lock(&self.disconnected);
        for s in sids {
            d.push((short(s), close));
        }
    }

    fn describe(&self, sid: &str) -> Option<SocketDetails> {
        let mut data = Map::new();
        data.insert("node", self.name.clone());
        data.insert("sid", sid);
        Some(SocketDetails { handshake: Value::Null, data: Value::Map(data) })
    }

    fn server_side_emit(&self, packet: EventPacket, ack: Option<ServerSideAck>) {
        if let Some(ack) = ack
            && packet.event == "ping"
        {
            ack.send(format!("pong from {}", self.name));
        }
        lock(&self.server_events).push(packet);
    }
}
