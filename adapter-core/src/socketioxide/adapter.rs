//! [`SioAdapter`]: socketioxide's `CoreAdapter` over the namespace's [`ClusterCore`].

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::{BoxStream, Fuse};
use socketioxide_core::adapter::errors::{AdapterError as SioAdapterError, BroadcastError};
use socketioxide_core::adapter::{
    AckStreamItem, BroadcastOptions as SioOpts, CoreAdapter, CoreLocalAdapter, RemoteSocketData, Room as SioRoom,
    RoomParam, SocketEmitter, Spawnable,
};
use socketioxide_core::packet::Packet;
use socketioxide_core::parser::Parse;
use socketioxide_core::{Sid, Uid};
use tracing::warn;

use super::bridge::LocalBridge;
use super::convert::{ack_error, encode_ack, from_sio_opts, our_rooms, to_event};
use super::{RoomDiff, SioState};
use crate::cluster::ClusterCore;
use crate::error::AdapterError;
use crate::local::LocalNode;
use crate::throttle::Throttle;
use crate::transport::Transport;
use crate::types::Room;
use crate::value::Value;

/// The error of [`SioAdapter`] operations.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SioError(#[from] pub AdapterError);

impl From<SioError> for SioAdapterError {
    fn from(e: SioError) -> Self {
        SioAdapterError(Box::new(e))
    }
}

/// socketioxide's adapter over a [`ClusterCore`]. Use it with
/// `SocketIo::builder().with_adapter::<SioAdapter<_, T>>(SioState::new(..))`.
pub struct SioAdapter<E: SocketEmitter, T: Transport> {
    core: Result<ClusterCore<T>, String>,
    local: Arc<LocalBridge<E>>,
    room_poll: Duration,
}

impl<E: SocketEmitter, T: Transport> socketioxide_core::adapter::DefinedAdapter for SioAdapter<E, T> {}

impl<E: SocketEmitter, T: Transport> std::fmt::Debug for SioAdapter<E, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SioAdapter").field("nsp", &self.local.nsp).finish()
    }
}

/// The future returned by `io.ns(..)`: subscribes the namespace. Await it, or let
/// socketioxide spawn it for dynamic namespaces.
pub struct InitFuture(Pin<Box<dyn Future<Output = Result<(), SioError>> + Send>>);

impl std::fmt::Debug for InitFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InitFuture")
    }
}

impl Future for InitFuture {
    type Output = Result<(), SioError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl Spawnable for InitFuture {
    fn spawn(self) {
        tokio::spawn(async move {
            if let Err(e) = self.await {
                warn!(error = %e, "cluster adapter of a dynamic namespace failed to start");
            }
        });
    }
}

impl<E: SocketEmitter, T: Transport> SioAdapter<E, T> {
    fn core(&self) -> Result<&ClusterCore<T>, SioError> {
        self.core.as_ref().map_err(|e| SioError(AdapterError::Config(e.clone())))
    }

    fn parser(&self) -> impl Parse + '_ {
        self.local.local.parser()
    }
}

impl<E: SocketEmitter, T: Transport> CoreAdapter<E> for SioAdapter<E, T> {
    type Error = SioError;
    type State = SioState<T>;
    type AckStream = Fuse<BoxStream<'static, AckStreamItem<E::AckError>>>;
    type InitRes = InitFuture;

    fn new(state: &Self::State, local: CoreLocalAdapter<E>) -> Self {
        let nsp = local.path().to_string();
        let local = Arc::new_cyclic(|me| LocalBridge {
            local,
            nsp: nsp.clone(),
            node: std::sync::OnceLock::new(),
            broker: state.transport.describe(),
            hooks: state.hooks.clone(),
            me: me.clone(),
            known_rooms: Mutex::new(None),
            slow: state.slow,
            stalled: Mutex::new(HashSet::new()),
            slow_warning: Throttle::default(),
        });
        let node: Arc<dyn LocalNode> = local.clone();
        let core =
            ClusterCore::node(state.transport.clone(), Arc::clone(&state.dialect), &nsp, node, state.config.clone())
                .map_err(|e| e.to_string());
        match &core {
            Ok(c) => {
                let _ = local.node.set(c.node_id().to_owned());
                let rooms: std::sync::Weak<dyn RoomDiff> = Arc::downgrade(&local) as std::sync::Weak<LocalBridge<E>>;
                state.registry.lock().unwrap_or_else(PoisonError::into_inner).insert(nsp, (c.clone(), rooms));
            }
            Err(e) => warn!(nsp = %nsp, error = %e, "namespace cannot join the cluster"),
        }
        SioAdapter { core, local, room_poll: state.room_poll }
    }

    fn init(self: Arc<Self>, on_success: impl FnOnce() + Send + 'static) -> Self::InitRes {
        InitFuture(Box::pin(async move {
            let core = self.core()?.clone();
            core.start().await?;
            on_success();
            if !core.dialect().capabilities().room_channels {
                return Ok(());
            }
            // socketioxide changes rooms without telling the adapter: poll for per-room channels
            *self.local.known_rooms.lock().unwrap_or_else(PoisonError::into_inner) = Some(HashSet::new());
            let weak = Arc::downgrade(&self);
            let every = self.room_poll;
            tokio::spawn(async move {
                loop {
                    let Some(me) = weak.upgrade() else { return };
                    let Ok(core) = me.core() else { return };
                    let changes = me.local.room_diff();
                    if !changes.created.is_empty() || !changes.deleted.is_empty() {
                        core.rooms_changed(changes);
                    }
                    drop(me);
                    tokio::time::sleep(every).await;
                }
            });
            Ok(())
        }))
    }

    async fn close(&self) -> Result<(), SioError> {
        self.core()?.close().await?;
        Ok(())
    }

    async fn server_count(&self) -> Result<u16, SioError> {
        let n = self.core()?.server_count().await?;
        Ok(u16::try_from(n).unwrap_or(u16::MAX))
    }

    async fn broadcast(&self, packet: Packet, opts: SioOpts) -> Result<(), BroadcastError> {
        let local_only = opts.is_local(self.local.local.server_id());
        let remote =
            if local_only { None } else { to_event(self.parser(), &packet).map(|p| (p, from_sio_opts(&opts))) };
        let core = self.core().map_err(|e| BroadcastError::Adapter(e.into()))?;
        let pending = self.local.deliver(packet, opts);
        core.broadcast_beside(pending, remote).await.map_err(|e| BroadcastError::Adapter(SioError(e).into()))
    }

    async fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: SioOpts,
        timeout: Option<Duration>,
    ) -> Result<Self::AckStream, SioError> {
        let server_id = self.local.local.server_id();
        let Some(event) = (!opts.is_local(server_id)).then(|| to_event(self.parser(), &packet)).flatten() else {
            let (stream, _) = self.local.local.broadcast_with_ack(packet, opts, timeout);
            return Ok(stream.boxed().fuse());
        };
        // the local half through socketioxide with its own options, as for broadcasts
        // without acks; the core merges the other nodes' acks into it
        let core = self.core()?;
        let timeout = timeout.unwrap_or(self.local.local.ack_timeout());
        let mut ours = from_sio_opts(&opts);
        ours.flags.timeout = Some(timeout);
        let (local, count) = self.local.local.broadcast_with_ack(packet, opts, Some(timeout));
        let local = (self.local.our_acks(local), u64::from(count));
        let acks = core.broadcast_with_ack_beside(local, event, ours).await?;
        // the parser is borrowed per item: socketioxide's is not `Send`
        let bridge = Arc::clone(&self.local);
        let parser = move |v: &Value| encode_ack(bridge.local.parser(), v);
        let stream = acks.filter_map(move |ack| {
            let sid = ack.socket.as_deref().and_then(|s| Sid::from_str(s).ok()).unwrap_or(Sid::ZERO);
            let item = match ack.result {
                Ok(v) => parser(&v).map(|v| (sid, Ok(v))),
                Err(e) => ack_error::<E::AckError>(&e).map(|e| (sid, Err(e))),
            };
            std::future::ready(item)
        });
        Ok(stream.boxed().fuse())
    }

    async fn add_sockets(&self, opts: SioOpts, rooms: impl RoomParam) -> Result<(), SioError> {
        self.core()?.add_sockets(from_sio_opts(&opts), our_rooms(rooms)).await?;
        Ok(())
    }

    async fn del_sockets(&self, opts: SioOpts, rooms: impl RoomParam) -> Result<(), SioError> {
        self.core()?.del_sockets(from_sio_opts(&opts), our_rooms(rooms)).await?;
        Ok(())
    }

    async fn disconnect_socket(&self, opts: SioOpts) -> Result<(), BroadcastError> {
        let core = self.core().map_err(|e| BroadcastError::Adapter(e.into()))?;
        core.disconnect_sockets(from_sio_opts(&opts), false)
            .await
            .map_err(|e| BroadcastError::Adapter(SioError(e).into()))
    }

    async fn rooms(&self, opts: SioOpts) -> Result<Vec<SioRoom>, SioError> {
        let core = self.core()?;
        let rooms: Vec<Room> = if opts.rooms.is_empty() && opts.except.is_empty() {
            core.all_rooms().await?.value
        } else {
            let mut set: Vec<Room> =
                core.fetch_sockets(from_sio_opts(&opts)).await?.value.into_iter().flat_map(|s| s.rooms).collect();
            set.sort();
            set.dedup();
            set
        };
        Ok(rooms.into_iter().map(|r| SioRoom::Owned(r.into_string())).collect())
    }

    async fn fetch_sockets(&self, opts: SioOpts) -> Result<Vec<RemoteSocketData>, SioError> {
        let ns = self.local.local.path().clone();
        let sockets = self.core()?.fetch_sockets(from_sio_opts(&opts)).await?.value;
        let me = self.local.local.server_id();
        Ok(sockets
            .into_iter()
            .filter_map(|s| {
                let id = Sid::from_str(&s.id).ok()?;
                // local sockets keep this server's id; remote ones get none, so that
                // operations on them go through the cluster
                let local = if self.local.local.socket_rooms(id).is_empty() { Uid::ZERO } else { me };
                Some(RemoteSocketData { id, server_id: local, ns: ns.clone() })
            })
            .collect())
    }

    fn get_local(&self) -> &CoreLocalAdapter<E> {
        &self.local.local
    }
}
