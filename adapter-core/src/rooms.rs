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
///
/// Memory: socket ids and room names are stored once each and memberships as 32-bit
/// numbers (a room's members in a hash set, a socket's rooms in a short list), about
/// 40 bytes per (socket, room) membership at 100k sockets in 10 rooms each, against
/// about 160 for socket.io-adapter's index in Node.js (`scripts/bench.sh`, scenario 6).
#[derive(Debug, Default)]
pub struct RoomIndex {
    room_ids: HashMap<Room, u32>,
    rooms: Slab<RoomEntry>,
    sids: HashMap<SocketId, u32>,
    sockets: Slab<SocketEntry>,
}

#[derive(Debug)]
struct RoomEntry {
    name: Room,
    members: HashSet<u32>,
}

#[derive(Debug)]
struct SocketEntry {
    sid: SocketId,
    /// Usually a few rooms: a list is smaller than a set, and removal is a scan.
    rooms: Vec<u32>,
}

/// Entries addressed by a reused `u32`.
#[derive(Debug)]
struct Slab<T> {
    entries: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab { entries: Vec::new(), free: Vec::new() }
    }
}

impl<T> Slab<T> {
    fn insert(&mut self, value: T) -> u32 {
        match self.free.pop() {
            Some(id) => {
                self.entries[id as usize] = Some(value);
                id
            }
            None => {
                self.entries.push(Some(value));
                u32::try_from(self.entries.len() - 1).unwrap_or(u32::MAX)
            }
        }
    }

    fn remove(&mut self, id: u32) -> Option<T> {
        let value = self.entries.get_mut(id as usize)?.take();
        if value.is_some() {
            self.free.push(id);
        }
        value
    }

    fn get(&self, id: u32) -> Option<&T> {
        self.entries.get(id as usize)?.as_ref()
    }

    fn get_mut(&mut self, id: u32) -> Option<&mut T> {
        self.entries.get_mut(id as usize)?.as_mut()
    }
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
        let socket = match self.sids.get(sid) {
            Some(&id) => id,
            None => {
                let id = self.sockets.insert(SocketEntry { sid: sid.to_owned(), rooms: Vec::new() });
                self.sids.insert(sid.to_owned(), id);
                id
            }
        };
        let own = Room::new(sid);
        for room in std::iter::once(&own).chain(rooms) {
            let room_id = match self.room_ids.get(room.as_str()) {
                Some(&id) => id,
                None => {
                    changes.created.push(room.clone());
                    let id = self.rooms.insert(RoomEntry { name: room.clone(), members: HashSet::new() });
                    self.room_ids.insert(room.clone(), id);
                    id
                }
            };
            let Some(entry) = self.rooms.get_mut(room_id) else { continue };
            if entry.members.insert(socket)
                && let Some(s) = self.sockets.get_mut(socket)
            {
                s.rooms.push(room_id);
            }
        }
        changes
    }

    /// Removes a socket from one room.
    pub fn del(&mut self, sid: &str, room: &Room) -> RoomChanges {
        let mut changes = RoomChanges::default();
        if let (Some(&socket), Some(&room_id)) = (self.sids.get(sid), self.room_ids.get(room.as_str())) {
            if let Some(s) = self.sockets.get_mut(socket) {
                s.rooms.retain(|&r| r != room_id);
            }
            self.leave(socket, room_id, &mut changes);
        }
        changes
    }

    /// Removes a socket from every room (on disconnect).
    pub fn del_all(&mut self, sid: &str) -> RoomChanges {
        let mut changes = RoomChanges::default();
        if let Some(socket) = self.sids.remove(sid)
            && let Some(entry) = self.sockets.remove(socket)
        {
            for room_id in entry.rooms {
                self.leave(socket, room_id, &mut changes);
            }
        }
        changes
    }

    fn leave(&mut self, socket: u32, room_id: u32, changes: &mut RoomChanges) {
        let Some(entry) = self.rooms.get_mut(room_id) else { return };
        entry.members.remove(&socket);
        if entry.members.is_empty()
            && let Some(entry) = self.rooms.remove(room_id)
        {
            self.room_ids.remove(entry.name.as_str());
            changes.deleted.push(entry.name);
        }
    }

    fn members(&self, room: &Room) -> Option<&HashSet<u32>> {
        self.room_ids.get(room.as_str()).and_then(|&id| self.rooms.get(id)).map(|e| &e.members)
    }

    fn sid(&self, socket: u32) -> Option<&SocketId> {
        self.sockets.get(socket).map(|s| &s.sid)
    }

    /// The sockets matching `opts`, each once.
    pub fn matching(&self, opts: &BroadcastOptions) -> Vec<SocketId> {
        self.matching_parts(&opts.rooms, &opts.except)
    }

    /// The sockets in any of `rooms` (all sockets when empty) and in none of `except`.
    pub fn matching_parts(&self, rooms: &[Room], except: &[Room]) -> Vec<SocketId> {
        let excluded: HashSet<u32> = except.iter().filter_map(|r| self.members(r)).flatten().copied().collect();
        if rooms.is_empty() {
            return self.sids.iter().filter(|(_, id)| !excluded.contains(id)).map(|(sid, _)| sid.clone()).collect();
        }
        let mut out = Vec::new();
        if let [room] = rooms {
            // one room: its members are distinct already
            for &socket in self.members(room).into_iter().flatten() {
                if !excluded.contains(&socket)
                    && let Some(sid) = self.sid(socket)
                {
                    out.push(sid.clone());
                }
            }
            return out;
        }
        let mut seen: HashSet<u32> = HashSet::new();
        for room in rooms {
            for &socket in self.members(room).into_iter().flatten() {
                if !excluded.contains(&socket)
                    && seen.insert(socket)
                    && let Some(sid) = self.sid(socket)
                {
                    out.push(sid.clone());
                }
            }
        }
        out
    }

    /// The rooms of a socket (including its own id), if the socket is known.
    pub fn socket_rooms(&self, sid: &str) -> Option<Vec<Room>> {
        let socket = self.sockets.get(*self.sids.get(sid)?)?;
        Some(socket.rooms.iter().filter_map(|&r| self.rooms.get(r)).map(|e| e.name.clone()).collect())
    }

    /// `true` if a room has members here.
    pub fn has_room(&self, room: &str) -> bool {
        self.room_ids.contains_key(room)
    }

    /// `true` if `name` is the id of a local socket.
    pub fn is_socket(&self, name: &str) -> bool {
        self.sids.contains_key(name)
    }

    /// Every room with members here (socket ids included, as in Node.js).
    pub fn rooms(&self) -> Vec<Room> {
        self.room_ids.keys().cloned().collect()
    }

    /// Number of local sockets.
    pub fn socket_count(&self) -> usize {
        self.sids.len()
    }

    /// Number of rooms with members here (socket ids included).
    pub fn room_count(&self) -> usize {
        self.room_ids.len()
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

    #[test]
    fn ids_are_reused_and_memberships_stay_exact() {
        let mut ix = RoomIndex::new();
        for round in 0..3 {
            for i in 0..50 {
                let rooms: Vec<Room> = (0..5).map(|j| Room::new(format!("r{}", (i + j + round) % 7))).collect();
                ix.add_all(&format!("s{i}"), &rooms);
            }
            for i in (0..50).step_by(2) {
                assert!(ix.del_all(&format!("s{i}")).deleted.iter().any(|r| r.as_str() == format!("s{i}")));
            }
            for i in (0..50).step_by(2) {
                assert!(!ix.is_socket(&format!("s{i}")));
            }
            assert_eq!(ix.socket_count(), 25);
            let members = ix.matching(&BroadcastOptions::all().to(format!("r{round}")));
            for sid in &members {
                let rooms = ix.socket_rooms(sid).expect("known");
                assert!(rooms.iter().any(|r| r.as_str() == format!("r{round}")), "{sid} {rooms:?}");
                assert!(rooms.iter().any(|r| r.as_str() == sid), "own room of {sid}");
            }
            for i in (1..50).step_by(2) {
                ix.del_all(&format!("s{i}"));
            }
            assert_eq!(ix.socket_count(), 0);
            assert!(ix.rooms().is_empty(), "{:?}", ix.rooms());
        }
    }
}
