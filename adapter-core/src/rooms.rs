//! The local room index.

use std::collections::{HashMap, HashSet};

use crate::types::{BroadcastOptions, Room, SocketId};

/// Which sockets are in which rooms on this node.
///
/// Every socket is also in the room named after its id. Matching follows Node.js:
/// non-empty `rooms` selects the union of their members (each socket once), empty
/// `rooms` selects every socket; members of any `except` room are then removed. The
/// cost of a match is proportional to the members of the named rooms, not to the
/// number of rooms or sockets (except for "all sockets", which is what it says).
#[derive(Debug, Default)]
pub struct RoomIndex {
    rooms: HashMap<Room, HashSet<SocketId>>,
    sids: HashMap<SocketId, HashSet<Room>>,
}

/// Rooms created or deleted by a membership change (for per-room subscriptions).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RoomChanges {
    /// Rooms that had no member before.
    pub created: Vec<Room>,
    /// Rooms left without members.
    pub deleted: Vec<Room>,
}

impl RoomIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a socket to rooms (and to the room of its own id).
    pub fn add_all(&mut self, sid: &str, rooms: &[Room]) -> RoomChanges {
        let mut changes = RoomChanges::default();
        let own = Room::new(sid);
        let joined = self.sids.entry(sid.to_owned()).or_default();
        for room in std::iter::once(&own).chain(rooms) {
            if joined.insert(room.clone()) {
                let members = self.rooms.entry(room.clone()).or_insert_with(|| {
                    changes.created.push(room.clone());
                    HashSet::new()
                });
                members.insert(sid.to_owned());
            }
        }
        changes
    }

    /// Removes a socket from one room.
    pub fn del(&mut self, sid: &str, room: &Room) -> RoomChanges {
        let mut changes = RoomChanges::default();
        if let Some(joined) = self.sids.get_mut(sid) {
            joined.remove(room);
        }
        self.leave(sid, room, &mut changes);
        changes
    }

    /// Removes a socket from every room (on disconnect).
    pub fn del_all(&mut self, sid: &str) -> RoomChanges {
        let mut changes = RoomChanges::default();
        if let Some(joined) = self.sids.remove(sid) {
            for room in joined {
                self.leave(sid, &room, &mut changes);
            }
        }
        changes
    }

    fn leave(&mut self, sid: &str, room: &Room, changes: &mut RoomChanges) {
        if let Some(members) = self.rooms.get_mut(room.as_str()) {
            members.remove(sid);
            if members.is_empty() {
                self.rooms.remove(room.as_str());
                changes.deleted.push(room.clone());
            }
        }
    }

    /// The sockets matching `opts`, each once.
    pub fn matching(&self, opts: &BroadcastOptions) -> Vec<SocketId> {
        self.matching_parts(&opts.rooms, &opts.except)
    }

    /// The sockets in any of `rooms` (all sockets when empty) and in none of `except`.
    pub fn matching_parts(&self, rooms: &[Room], except: &[Room]) -> Vec<SocketId> {
        let excluded: HashSet<&str> = except
            .iter()
            .filter_map(|r| self.rooms.get(r.as_str()))
            .flat_map(|members| members.iter().map(String::as_str))
            .collect();
        if rooms.is_empty() {
            return self.sids.keys().filter(|s| !excluded.contains(s.as_str())).cloned().collect();
        }
        let mut seen: HashSet<&str> = HashSet::new();
        let mut out = Vec::new();
        for room in rooms {
            if let Some(members) = self.rooms.get(room.as_str()) {
                for sid in members {
                    if !excluded.contains(sid.as_str()) && seen.insert(sid.as_str()) {
                        out.push(sid.clone());
                    }
                }
            }
        }
        out
    }

    /// The rooms of a socket (including its own id), if the socket is known.
    pub fn socket_rooms(&self, sid: &str) -> Option<Vec<Room>> {
        self.sids.get(sid).map(|rooms| rooms.iter().cloned().collect())
    }

    /// `true` if a room has members here.
    pub fn has_room(&self, room: &str) -> bool {
        self.rooms.contains_key(room)
    }

    /// `true` if `name` is the id of a local socket.
    pub fn is_socket(&self, name: &str) -> bool {
        self.sids.contains_key(name)
    }

    /// Every room with members here (socket ids included, as in Node.js).
    pub fn rooms(&self) -> Vec<Room> {
        self.rooms.keys().cloned().collect()
    }

    /// Number of local sockets.
    pub fn socket_count(&self) -> usize {
        self.sids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut v: Vec<SocketId>) -> Vec<SocketId> {
        v.sort();
        v
    }

    fn index() -> RoomIndex {
        let mut ix = RoomIndex::new();
        ix.add_all("a", &["r1".into(), "r2".into()]);
        ix.add_all("b", &["r1".into()]);
        ix.add_all("c", &["r3".into()]);
        ix.add_all("d", &[]);
        ix
    }

    #[test]
    fn matching_follows_node_semantics() {
        let ix = index();
        let all = BroadcastOptions::all();
        assert_eq!(sorted(ix.matching(&all)), ["a", "b", "c", "d"]);
        assert_eq!(sorted(ix.matching(&all.clone().to("r1"))), ["a", "b"]);
        // union without duplicates
        assert_eq!(sorted(ix.matching(&all.clone().to("r1").to("r2"))), ["a", "b"]);
        assert_eq!(sorted(ix.matching(&all.clone().except("r1"))), ["c", "d"]);
        assert_eq!(sorted(ix.matching(&all.clone().to("r1").except("r2"))), ["b"]);
        // a socket id is a room
        assert_eq!(sorted(ix.matching(&all.clone().to("c").to("d"))), ["c", "d"]);
        assert_eq!(sorted(ix.matching(&all.clone().except("a"))), ["b", "c", "d"]);
        assert!(ix.matching(&all.to("nobody")).is_empty());
    }

    #[test]
    fn rooms_are_created_and_deleted() {
        let mut ix = RoomIndex::new();
        let c = ix.add_all("a", &["r1".into()]);
        assert_eq!(c.created, vec![Room::from("a"), Room::from("r1")]);
        assert!(ix.add_all("b", &["r1".into()]).created == vec![Room::from("b")]);
        assert!(ix.del("a", &"r1".into()).deleted.is_empty());
        assert_eq!(ix.del("b", &"r1".into()).deleted, vec![Room::from("r1")]);
        assert!(!ix.has_room("r1"));
        let c = ix.del_all("a");
        assert_eq!(c.deleted, vec![Room::from("a")]);
        assert!(!ix.is_socket("a"));
        assert_eq!(ix.socket_count(), 1);
    }

    #[test]
    fn numeric_rooms_match_their_text() {
        let mut ix = RoomIndex::new();
        ix.add_all("a", &[Room::from(42)]);
        assert_eq!(ix.matching(&BroadcastOptions::all().to("42")), ["a"]);
        assert_eq!(ix.matching(&BroadcastOptions::all().to(42)), ["a"]);
    }
}
