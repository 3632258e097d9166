//! Answering: another node's request applied to the local sockets, and the answer
//! published back to the requester.

use std::sync::Arc;

use futures_util::StreamExt;
use tracing::warn;

use super::{Inner, deadline_after};
use crate::local::{LocalNode, PendingDelivery, ServerSideAck};
use crate::message::{Body, LegacyOp, Message};
use crate::transport::Transport;
use crate::types::BroadcastOptions;

impl<T: Transport> Inner<T> {
    /// Applies a request from another node to the local sockets and answers it.
    pub(super) fn answer(self: &Arc<Self>, local: &dyn LocalNode, msg: Message) -> Option<PendingDelivery> {
        let from = msg.uid;
        match msg.body {
            Body::Broadcast { packet, opts } => return local.broadcast(&packet, &opts),
            Body::BroadcastWithAck { request_id, packet, opts } => {
                let timeout = opts.flags.timeout.unwrap_or(self.config.request_timeout);
                let (mut acks, count) = local.broadcast_with_ack(&packet, &opts, timeout);
                let inner = Arc::clone(self);
                let counts = self.dialect.capabilities().client_counts;
                if !counts && count == 0 {
                    // python-socketio: the server holding the target answers, the others say nothing
                    return None;
                }
                tokio::spawn(async move {
                    let reply = |body| inner.message(body).reply_to(from.clone());
                    let counted = reply(Body::BroadcastClientCount { request_id: request_id.clone(), count });
                    if counts && let Err(e) = inner.publish(&counted).await {
                        warn!(nsp = %inner.nsp, error = %e, "failed to publish a client count");
                        return;
                    }
                    let deadline = deadline_after(timeout);
                    while let Ok(Some((_sid, result))) = tokio::time::timeout_at(deadline, acks.next()).await {
                        if let Ok(value) = result {
                            let ack = reply(Body::BroadcastAck { request_id: request_id.clone(), value });
                            if let Err(e) = inner.publish(&ack).await {
                                warn!(nsp = %inner.nsp, error = %e, "failed to publish an ack");
                            }
                        }
                    }
                });
            }
            Body::SocketsJoin { opts, rooms } => self.rooms_changed(local.add_sockets(&opts, &rooms)),
            Body::SocketsLeave { opts, rooms } => self.rooms_changed(local.del_sockets(&opts, &rooms)),
            Body::DisconnectSockets { opts, close } => local.disconnect_sockets(&opts, close),
            Body::FetchSockets { request_id, opts } => {
                let sockets = local.fetch_sockets(&opts);
                self.respond(from, Body::FetchSocketsResponse { request_id, sockets });
            }
            Body::AllRooms { request_id } => {
                self.respond(from, Body::AllRoomsResponse { request_id, rooms: local.rooms() });
            }
            Body::ServerSideEmit { request_id: None, packet } => local.server_side_emit(packet, None),
            Body::ServerSideEmit { request_id: Some(request_id), packet } => {
                let (ack, rx) = ServerSideAck::new();
                local.server_side_emit(packet, Some(ack));
                let inner = Arc::clone(self);
                let timeout = self.config.request_timeout;
                tokio::spawn(async move {
                    if let Ok(Ok(value)) = tokio::time::timeout(timeout, rx).await {
                        inner.respond(from, Body::ServerSideEmitResponse { request_id, value });
                    }
                });
            }
            Body::LegacySockets { request_id, rooms } => {
                let sockets = local.socket_ids(&rooms);
                self.respond(from, Body::LegacySocketsResponse { request_id, sockets });
            }
            Body::LegacySocketOp { request_id, sid, op } => {
                if !local.has_room(&sid) {
                    return None;
                }
                let target = BroadcastOptions::default().to(sid.as_str());
                match op {
                    LegacyOp::Join(room) => self.rooms_changed(local.add_sockets(&target, &[room])),
                    LegacyOp::Leave(room) => self.rooms_changed(local.del_sockets(&target, &[room])),
                    LegacyOp::Disconnect { close } => local.disconnect_sockets(&target, close),
                }
                self.respond(from, Body::LegacyAck { request_id });
            }
            _ => {}
        }
        None
    }
}
