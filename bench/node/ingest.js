// Adapter ingest without websockets or Redis: the per-message work of the classic
// `@socket.io/redis-adapter` when a broadcast arrives from another node.
//
//   NODE_PATH=.cache/node/node_modules node bench/node/ingest.js \
//     '{"sockets":10000,"rooms":1000,"n":200000,"payload":100}'
//
// A real RedisAdapter (an in-memory socket.io-adapter `Adapter` underneath) is built for a
// fake namespace "/" over stub Redis clients that only accept its SUBSCRIBE calls. The
// namespace holds `sockets` fake sockets; socket i is in its own id room and in room
// `r${i % rooms}` (added with adapter.addAll, as Socket.join does). A socket's
// `client.writeToEngine` only counts, which is where Adapter.broadcast ends for each
// recipient (after `notifyOutgoingListeners`, kept as in socket.io's Socket).
// n messages are pre-encoded exactly as RedisAdapter.broadcast publishes a broadcast to one
// room: notepack msgpack of [uid, packet, {rooms:[room], except:[], flags:{}}] on channel
// `socket.io#/#<room>#`, rooms round-robin, packet an EVENT ["m", seq, t_ms, pad] whose
// socket.io encoding is ~payload bytes. The timed loop calls adapter.onmessage(null,
// channel, msg) with Buffers, as the node-redis v4 pSubscribe listener does: channel and
// room checks, msgpack decode, uid / namespace checks, rooms/except to Sets,
// Adapter.broadcast (socket.io-parser encode once, the precomputed ws frame, the room
// lookup and one writeToEngine per recipient).
// Prints {"n","secs","msgs_per_s","deliveries"}; deliveries = n * sockets / rooms.
"use strict";
const { performance } = require("node:perf_hooks");
const msgpack = require("notepack.io");
const { Encoder } = require("socket.io-parser");
const { RedisAdapter } = require("@socket.io/redis-adapter");

const cfg = JSON.parse(process.argv[2] || "{}");
const nSockets = cfg.sockets ?? 10000;
const nRooms = cfg.rooms ?? 1000;
const n = cfg.n ?? 200000;
const key = "socket.io";

if (nSockets % nRooms !== 0) throw new Error("sockets must be a multiple of rooms");

let writes = 0;
class FakeSocket {
  constructor(id) {
    this.id = id;
    this.client = { writeToEngine: () => void writes++ };
  }
  // as socket.io's Socket#notifyOutgoingListeners, with no onAnyOutgoing listener
  notifyOutgoingListeners(packet) {
    if (this._anyOutgoingListeners && this._anyOutgoingListeners.length) throw new Error("unexpected");
  }
}

// stub node-redis v4 clients: the adapter only subscribes (and registers error handlers)
const noop = () => Promise.resolve();
const stub = {
  pSubscribe: noop,
  subscribe: noop,
  on() {},
  off() {},
  publish() {
    throw new Error("the ingest path must not publish");
  },
};

const nsp = { name: "/", server: { encoder: new Encoder() }, sockets: new Map() };
const adapter = new RedisAdapter(nsp, stub, stub, { key });
for (let i = 0; i < nSockets; i++) {
  const id = `sock-${i}`;
  nsp.sockets.set(id, new FakeSocket(id));
  adapter.addAll(id, new Set([id, `r${i % nRooms}`]));
}

// pre-encode: what another node's RedisAdapter.broadcast publishes for io.to(room).emit(...)
const now = () => performance.timeOrigin + performance.now();
const base = ("2" + JSON.stringify(["m", Math.floor(n / 2), now(), ""])).length;
const pad = "x".repeat(Math.max(0, (cfg.payload ?? 100) - base));
const otherUid = "remote"; // not this adapter's uid
const channels = [];
for (let r = 0; r < nRooms; r++) channels.push(Buffer.from(`${key}#/#r${r}#`));
const msgs = new Array(n);
for (let seq = 0; seq < n; seq++) {
  const packet = { type: 2, data: ["m", seq, now(), pad], nsp: "/" };
  msgs[seq] = msgpack.encode([otherUid, packet, { rooms: [`r${seq % nRooms}`], except: [], flags: {} }]);
}

const t0 = performance.now();
for (let seq = 0; seq < n; seq++) adapter.onmessage(null, channels[seq % nRooms], msgs[seq]);
const secs = (performance.now() - t0) / 1000;

const expected = (n * nSockets) / nRooms;
if (writes !== expected) {
  process.stderr.write(`ingest: ${writes} deliveries, expected ${expected}\n`);
  process.exit(1);
}
process.stdout.write(JSON.stringify({ n, secs, msgs_per_s: n / secs, deliveries: writes }) + "\n");
