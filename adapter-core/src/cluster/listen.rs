//! Listening to a namespace's broadcasts without taking part in the cluster (what
//! `sio tail` prints): the engine subscribes to the dialect's channels, decodes every
//! message and yields the broadcasts of the namespace. A listener never answers and is
//! never counted as a server, so it refuses to start where the broker would count it
//! (a dialect whose broadcasts share the channel servers are counted on).

use std::fmt;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::dialect::Dialect;
use crate::error::{AdapterError, DialectError};
use crate::message::{Body, Message};
use crate::transport::{Channel, EventSender, Transport, TransportEvent};
use crate::types::{BroadcastOptions, EventPacket, NodeId};

/// One broadcast heard on the cluster's channels.
#[derive(Debug, Clone, PartialEq)]
pub struct Heard {
    /// The sending node (`None` for an emitter that does not identify itself).
    pub from: Option<NodeId>,
    /// The namespace.
    pub nsp: String,
    /// The event and its arguments.
    pub packet: EventPacket,
    /// Rooms, exceptions and flags.
    pub opts: BroadcastOptions,
    /// `true` for a broadcast that asks the clients for acks.
    pub with_ack: bool,
}

/// A message on a listened channel that the dialect could not decode (the listener
/// goes on).
#[derive(Debug)]
pub struct Undecodable {
    /// The channel it arrived on.
    pub channel: String,
    /// Why it could not be decoded.
    pub error: DialectError,
}

impl fmt::Display for Undecodable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "undecodable message on {}: {}", self.channel, self.error)
    }
}

/// Receives the broadcasts of one namespace. Unsubscribes on [`Listener::close`].
pub struct Listener<T: Transport> {
    transport: T,
    dialect: Arc<dyn Dialect>,
    nsp: String,
    channels: Vec<Channel>,
    tx: EventSender,
    rx: mpsc::Receiver<TransportEvent>,
}

impl<T: Transport> fmt::Debug for Listener<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener").field("nsp", &self.nsp).field("channels", &self.channels).finish()
    }
}

impl<T: Transport> Listener<T> {
    /// Subscribes to the channels on which `dialect`'s broadcasts for `nsp` travel.
    pub async fn start(transport: T, dialect: Arc<dyn Dialect>, nsp: &str) -> Result<Self, AdapterError> {
        let channels = dialect.listener_channels(nsp);
        let count_channel = dialect.count_channel(nsp);
        if channels.iter().any(|c| matches!(c, Channel::Exact(ch) if *ch == count_channel)) {
            let counts = transport
                .server_count(&count_channel)
                .await
                .map_err(|e| AdapterError::transport("count servers", e))?;
            if counts.is_some() {
                return Err(AdapterError::Config(format!(
                    "listening is not possible with the {} dialect on {}: its broadcasts share the channel servers \
                     are counted on, and a listener there would make every fetchSockets wait for it (use classic \
                     mode)",
                    dialect.name(),
                    transport.name()
                )));
            }
        }
        let (tx, rx) = mpsc::channel(4096);
        transport.subscribe(&channels, tx.clone()).await.map_err(|e| {
            let names: Vec<&str> = channels.iter().map(Channel::as_str).collect();
            AdapterError::transport(format!("subscribe to {}", names.join(", ")), e)
        })?;
        Ok(Listener { transport, dialect, nsp: nsp.to_owned(), channels, tx, rx })
    }

    /// The channels listened to.
    pub fn channels(&self) -> &[Channel] {
        &self.channels
    }

    /// The next broadcast of the namespace, an [`Undecodable`] message, or `None` when
    /// the transport went away. Other messages (requests, answers, heartbeats, health
    /// check pings, other namespaces) are skipped.
    pub async fn next(&mut self) -> Option<Result<Heard, Undecodable>> {
        loop {
            let msg = match self.next_message().await?.1 {
                Ok(m) => m,
                Err(bad) => return Some(Err(bad)),
            };
            if msg.nsp != self.nsp || super::health::main_ping_id(&msg.body).is_some() {
                continue;
            }
            let (packet, opts, with_ack) = match msg.body {
                Body::Broadcast { packet, opts } => (packet, opts, false),
                Body::BroadcastWithAck { packet, opts, .. } => (packet, opts, true),
                _ => continue,
            };
            return Some(Ok(Heard { from: msg.uid, nsp: msg.nsp, packet, opts, with_ack }));
        }
    }

    /// The next message on the listened channels, whatever its kind and namespace (for
    /// traffic statistics, `sio stats`), with its size in bytes; `None` when the transport
    /// went away.
    pub async fn next_message(&mut self) -> Option<(usize, Result<Message, Undecodable>)> {
        loop {
            let TransportEvent::Message { channel, payload } = self.rx.recv().await? else { continue };
            let decoded = self.dialect.decode(&channel, &payload).map_err(|error| Undecodable { channel, error });
            return Some((payload.len(), decoded));
        }
    }

    /// Unsubscribes.
    pub async fn close(self) -> Result<(), AdapterError> {
        self.transport
            .unsubscribe(&self.channels, &self.tx)
            .await
            .map_err(|e| AdapterError::transport("unsubscribe", e))
    }
}

#[cfg(all(test, feature = "memory"))]
mod tests {
    use super::*;
    use crate::dialect::{NodeClusterDialect, NodeRedisDialect};
    use crate::memory::MemoryHub;
    use crate::types::Room;

    fn broadcast(nsp: &str, event: &str) -> Message {
        Message::new(
            Some("node-a".into()),
            nsp,
            Body::Broadcast { packet: EventPacket::new(event, vec![]), opts: BroadcastOptions::all().to("r") },
        )
    }

    #[tokio::test]
    async fn hears_the_namespace_broadcasts_and_reports_garbage() {
        let bus = MemoryHub::counting();
        let (us, them) = (bus.transport(), bus.transport());
        let dialect: Arc<dyn Dialect> = Arc::new(NodeRedisDialect::default());
        let mut l = Listener::start(us, Arc::clone(&dialect), "/").await.unwrap();
        for (nsp, event) in [("/admin", "elsewhere"), ("/", "here")] {
            let out = dialect.encode(&broadcast(nsp, event)).unwrap();
            them.publish(&out.channel, out.payload).await.unwrap();
        }
        let heard = l.next().await.unwrap().unwrap();
        assert_eq!((heard.packet.event.as_str(), heard.from.as_deref()), ("here", Some("node-a")));
        assert_eq!(heard.opts.rooms, vec![Room::from("r")]);
        assert!(!heard.with_ack);
        them.publish("socket.io#/#", bytes::Bytes::from_static(b"\xc1")).await.unwrap();
        let bad = l.next().await.unwrap().unwrap_err();
        assert_eq!(bad.channel, "socket.io#/#");
        l.close().await.unwrap();
    }

    #[tokio::test]
    async fn refuses_where_the_broker_would_count_it_as_a_server() {
        let bus = MemoryHub::counting();
        let err = Listener::start(bus.transport(), Arc::new(NodeClusterDialect::default()), "/").await.unwrap_err();
        assert!(err.to_string().contains("listening is not possible"), "{err}");
        // a broker that cannot count: nothing to spoil
        let quiet = MemoryHub::new();
        assert!(Listener::start(quiet.transport(), Arc::new(NodeClusterDialect::default()), "/").await.is_ok());
    }
}
