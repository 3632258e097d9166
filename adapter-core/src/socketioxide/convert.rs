//! Conversions between socketioxide's options and packets and ours, with the
//! server's own parser.

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use socketioxide_core::adapter::{BroadcastFlags as SioFlags, BroadcastOptions as SioOpts, Room as SioRoom, RoomParam};
use socketioxide_core::packet::{Packet, PacketData};
use socketioxide_core::parser::Parse;
use tracing::warn;

use crate::local::AckError;
use crate::types::{BroadcastFlags, BroadcastOptions, EventPacket, Room};
use crate::value::{Args, Value};

pub(super) fn our_rooms(rooms: impl RoomParam) -> Vec<Room> {
    rooms.into_room_iter().map(|r| Room::new(r.into_owned())).collect()
}

pub(super) fn sio_rooms(rooms: &[Room]) -> Vec<SioRoom> {
    rooms.iter().map(|r| SioRoom::Owned(r.as_str().to_owned())).collect()
}

pub(super) fn all_sockets() -> SioOpts {
    let mut opts = SioOpts::default();
    opts.add_flag(SioFlags::Broadcast);
    opts
}

/// socketioxide's options -> ours. A single-socket target (`sid`, no rooms, no
/// broadcast flag) becomes the socket's own room; `broadcast` excludes the sender.
pub fn from_sio_opts(opts: &SioOpts) -> BroadcastOptions {
    let mut out = BroadcastOptions {
        rooms: opts.rooms.iter().map(|r| Room::new(r.to_string())).collect(),
        except: opts.except.iter().map(|r| Room::new(r.to_string())).collect(),
        flags: BroadcastFlags::default(),
    };
    if let Some(sid) = opts.sid {
        if opts.has_flag(SioFlags::Broadcast) {
            out.except.push(Room::new(sid.to_string()));
        } else if out.rooms.is_empty() {
            out.rooms.push(Room::new(sid.to_string()));
        }
    }
    out.flags.volatile = opts.has_flag(SioFlags::Volatile);
    out.flags.local = opts.has_flag(SioFlags::Local);
    out
}

/// Ours -> socketioxide's, for the local sockets (rooms empty = every socket).
pub fn to_sio_opts(opts: &BroadcastOptions) -> SioOpts {
    let mut out = all_sockets();
    out.rooms = sio_rooms(&opts.rooms).into();
    out.except = sio_rooms(&opts.except).into();
    if opts.flags.volatile {
        out.add_flag(SioFlags::Volatile);
    }
    out
}

/// An event packet of socketioxide as ours (`None` for other packet kinds).
pub fn to_event(parser: impl Parse, packet: &Packet) -> Option<EventPacket> {
    match &packet.inner {
        PacketData::Event(v, _) | PacketData::BinaryEvent(v, _) => {
            let event = match parser.read_event(v) {
                Ok(e) => e.to_owned(),
                Err(e) => {
                    warn!(error = %e, "cannot read the event name of a broadcast");
                    return None;
                }
            };
            let mut v = v.clone();
            match parser.decode_value::<ArgsOwned>(&mut v, true) {
                Ok(args) => Some(EventPacket::new(event, args.0)),
                Err(e) => {
                    warn!(event = %event, error = %e, "cannot decode the arguments of a broadcast");
                    None
                }
            }
        }
        _ => None,
    }
}

/// Our event as socketioxide's packet value, with the server's parser.
pub fn from_event(parser: impl Parse, packet: &EventPacket) -> Result<socketioxide_core::Value, String> {
    parser.encode_value(&Args(packet.args.as_slice()), Some(&packet.event)).map_err(|e| e.to_string())
}

pub(super) fn encode_ack(parser: impl Parse, v: &Value) -> Option<socketioxide_core::Value> {
    match parser.encode_value(v, None) {
        Ok(v) => Some(v),
        Err(e) => {
            warn!(error = %e, "cannot encode a remote ack");
            None
        }
    }
}

pub(super) fn decode_ack(parser: impl Parse, v: &mut socketioxide_core::Value) -> Result<Value, String> {
    // an ack carries the client's callback arguments; the first is what travels
    let args = parser.decode_value::<ArgsOwned>(v, false).map_err(|e| e.to_string())?;
    Ok(args.0.into_iter().next().unwrap_or(Value::Null))
}

/// A remote ack error as the server's ack error type (`Timeout` when it has one).
pub(super) fn ack_error<A: serde::de::DeserializeOwned>(e: &AckError) -> Option<A> {
    let name = match e {
        AckError::Timeout => "Timeout",
        _ => return None,
    };
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

/// Arguments read as a tuple of any length (every element after the event).
struct ArgsOwned(Vec<Value>);

impl<'de> Deserialize<'de> for ArgsOwned {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ArgsOwned;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("event arguments")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ArgsOwned, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(v) = seq.next_element::<Value>()? {
                    out.push(v);
                }
                Ok(ArgsOwned(out))
            }
        }
        d.deserialize_tuple(usize::MAX, V)
    }
}
