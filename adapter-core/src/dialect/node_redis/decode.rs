//! Decoding the classic protocol: broadcasts (MessagePack), requests and responses
//! (JSON, or MessagePack for broadcast-with-ack), by channel kind.

use super::{NodeRedisDialect, req};
use crate::dialect::{EMITTER_UID, Fields, event_of, parse_payload, rooms_of};
use crate::error::DecodeError;
use crate::message::{Body, LegacyOp, Message};
use crate::msgpack;
use crate::types::Room;
use crate::value::Value;

impl NodeRedisDialect {
    pub(super) fn decode_broadcast(&self, channel: &str, payload: &[u8]) -> Result<Message, DecodeError> {
        let items = match msgpack::decode(payload)? {
            Value::Array(items) if items.len() == 3 => items,
            other => {
                return Err(DecodeError::WrongType {
                    field: "broadcast",
                    expected: "an array of 3 items",
                    found: other.kind(),
                });
            }
        };
        let mut it = items.into_iter();
        // the emitter's marker uid means "no node": re-encoding keeps the emitter layout
        let uid = match it.next() {
            Some(Value::Str(s)) if s != EMITTER_UID => Some(s),
            _ => None,
        };
        let mut holder = crate::value::Map::with_capacity(2);
        holder.insert("packet", it.next().unwrap_or_default());
        holder.insert("opts", it.next().unwrap_or_default());
        let mut f = Fields::from_value(Value::Map(holder))?;
        let (packet, nsp) = f.packet("packet")?;
        let opts = f.opts("opts")?;
        // Node.js defaults a missing packet.nsp to "/"
        let nsp = nsp.unwrap_or_else(|| "/".to_owned());
        let _ = channel;
        Ok(Message::new(uid, nsp, Body::Broadcast { packet, opts }))
    }

    pub(super) fn decode_request(&self, nsp: String, payload: &[u8]) -> Result<Message, DecodeError> {
        let mut f = Fields::from_value(parse_payload(payload)?)?;
        let ty = f.int("type")?;
        let uid = f.opt_string("uid")?;
        let body = match ty {
            req::SOCKETS => Body::LegacySockets { request_id: f.string("requestId")?, rooms: f.rooms("rooms")? },
            req::ALL_ROOMS => Body::AllRooms { request_id: f.string("requestId")? },
            req::REMOTE_JOIN | req::REMOTE_LEAVE | req::REMOTE_DISCONNECT if f.has("opts") => {
                let opts = f.opts("opts")?;
                match ty {
                    req::REMOTE_JOIN => Body::SocketsJoin { opts, rooms: f.rooms("rooms")? },
                    req::REMOTE_LEAVE => Body::SocketsLeave { opts, rooms: f.rooms("rooms")? },
                    _ => Body::DisconnectSockets { opts, close: f.bool_or("close", false)? },
                }
            }
            req::REMOTE_JOIN | req::REMOTE_LEAVE | req::REMOTE_DISCONNECT => {
                let request_id = f.string("requestId")?;
                let sid = f.string("sid")?;
                let op = match ty {
                    req::REMOTE_DISCONNECT => LegacyOp::Disconnect { close: f.bool_or("close", false)? },
                    _ => {
                        let room = f.req("room")?;
                        let room = Room::from_value(&room).ok_or(DecodeError::WrongType {
                            field: "room",
                            expected: "a string or a number",
                            found: room.kind(),
                        })?;
                        if ty == req::REMOTE_JOIN { LegacyOp::Join(room) } else { LegacyOp::Leave(room) }
                    }
                };
                Body::LegacySocketOp { request_id, sid, op }
            }
            req::REMOTE_FETCH => Body::FetchSockets { request_id: f.string("requestId")?, opts: f.opts("opts")? },
            req::SERVER_SIDE_EMIT => Body::ServerSideEmit {
                request_id: f.opt_string("requestId")?,
                packet: event_of(f.array("data")?, "data")?,
            },
            req::BROADCAST => {
                let request_id = f.string("requestId")?;
                let (packet, _) = f.packet("packet")?;
                Body::BroadcastWithAck { request_id, packet, opts: f.opts("opts")? }
            }
            other => return Err(DecodeError::UnknownType(other)),
        };
        Ok(Message::new(uid, nsp, body))
    }

    pub(super) fn decode_response(&self, nsp: String, payload: &[u8]) -> Result<Message, DecodeError> {
        let mut f = Fields::from_value(parse_payload(payload)?)?;
        let request_id = f.string("requestId")?;
        let body = if f.has("type") {
            match f.int("type")? {
                req::SERVER_SIDE_EMIT => {
                    Body::ServerSideEmitResponse { request_id, value: f.take("data").unwrap_or_default() }
                }
                req::BROADCAST_CLIENT_COUNT => {
                    let count = f.count("clientCount")?;
                    Body::BroadcastClientCount { request_id, count }
                }
                req::BROADCAST_ACK => Body::BroadcastAck { request_id, value: f.take("packet").unwrap_or_default() },
                other => return Err(DecodeError::UnknownType(other)),
            }
        } else if f.has("sockets") {
            let legacy = matches!(
                f.0.get("sockets"),
                Some(Value::Array(items)) if items.first().is_some_and(|v| v.as_str().is_some())
            );
            if legacy {
                let sockets = rooms_of(f.req("sockets")?, "sockets")?.into_iter().map(Room::into_string).collect();
                Body::LegacySocketsResponse { request_id, sockets }
            } else {
                Body::FetchSocketsResponse { request_id, sockets: f.sockets("sockets")? }
            }
        } else if f.has("rooms") {
            Body::AllRoomsResponse { request_id, rooms: f.rooms("rooms")? }
        } else {
            Body::LegacyAck { request_id }
        };
        Ok(Message::new(None, nsp, body))
    }
}
