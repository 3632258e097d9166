// The in-memory room index of socket.io-adapter 2.5 (the `Adapter` that the Redis adapter
// extends): its memory per membership, and the cost of a broadcast to a small room as the
// total number of rooms grows.
//
//   NODE_PATH=.cache/node/node_modules node --expose-gc bench/node/rooms.js \
//     '{"mode":"memory","sockets":100000,"rooms_per_socket":10,"rooms":10000}'
//   NODE_PATH=.cache/node/node_modules node bench/node/rooms.js \
//     '{"mode":"broadcast","rooms":100000,"hot":10,"iterations":2000}'
//
// memory: after a full GC, heapUsed is read; then socket i (id "s" + i zero-padded to 20
//   chars, the length of socket.io ids) gets `adapter.addAll(id, new Set(rooms))` with
//   exactly the rooms `r${(i + j*7919) % rooms}` for j in 0..rooms_per_socket (duplicates
//   collapse, as in a Set). Room names are fresh strings per call, as decoded from a
//   client's packet ("intern": true reuses one string per room instead). After a full GC
//   heapUsed is read again. Every socket is also in the room of its own id (as socket.io
//   sockets are). Prints {"memberships","bytes","bytes_per_membership","rss_bytes",
//   "rss_bytes_per_membership"} (heap growth and process RSS growth); the bytes include
//   the socket ids, the sids map and the rooms map.
// broadcast: R sockets each in room `r${i}`, plus `hot` sockets in room "hot"; times
//   `iterations` Adapter.broadcast(packet, {rooms:{"hot"}, except:{}}) calls (after
//   "warmup", default 20000, untimed ones), each a fresh EVENT ["m", seq, t_ms, pad] of
//   ~payload bytes: encode once, precomputed ws frame, room lookup, one counting
//   writeToEngine per hot socket.
//   Prints {"rooms":R,"ns_per_broadcast"}.
"use strict";
const { performance } = require("node:perf_hooks");
const { Encoder } = require("socket.io-parser");
const { Adapter } = require("socket.io-adapter");

const cfg = JSON.parse(process.argv[2] || "{}");
const sid = (i) => "s" + String(i).padStart(19, "0");

let writes = 0;
const fakeSocket = (id) => ({
  id,
  client: { writeToEngine: () => void writes++ },
  notifyOutgoingListeners() {}, // socket.io's Socket: a no-op without onAnyOutgoing listeners
});
const newAdapter = () => {
  const nsp = { name: "/", server: { encoder: new Encoder() }, sockets: new Map() };
  return [nsp, new Adapter(nsp)];
};

function gc() {
  for (let i = 0; i < 3; i++) global.gc();
  const m = process.memoryUsage();
  return [m.heapUsed, m.rss];
}

function memory() {
  if (typeof global.gc !== "function") throw new Error("run with node --expose-gc");
  const nSockets = cfg.sockets ?? 100000;
  const perSocket = cfg.rooms_per_socket ?? 10;
  const nRooms = cfg.rooms ?? 10000;
  const names = cfg.intern ? Array.from({ length: nRooms }, (_, r) => `r${r}`) : null;
  const [, adapter] = newAdapter();
  const before = gc();
  for (let i = 0; i < nSockets; i++) {
    const rooms = new Set([sid(i)]); // every socket is in the room of its own id, as socket.io does
    for (let j = 0; j < perSocket; j++) {
      const r = (i + j * 7919) % nRooms;
      rooms.add(names ? names[r] : `r${r}`);
    }
    adapter.addAll(sid(i), rooms);
  }
  const after = gc();
  let memberships = 0;
  for (const set of adapter.rooms.values()) memberships += set.size;
  const bytes = after[0] - before[0];
  const rss = after[1] - before[1];
  return { memberships, bytes, bytes_per_membership: bytes / memberships, rss_bytes: rss, rss_bytes_per_membership: rss / memberships };
}

function broadcast() {
  const R = cfg.rooms ?? 1000;
  const hot = cfg.hot ?? 10;
  const iterations = cfg.iterations ?? 2000;
  const [nsp, adapter] = newAdapter();
  const add = (id, room) => {
    nsp.sockets.set(id, fakeSocket(id));
    adapter.addAll(id, new Set([room]));
  };
  for (let i = 0; i < R; i++) add(sid(i), `r${i}`);
  for (let i = 0; i < hot; i++) add(sid(R + i), "hot");

  const now = () => performance.timeOrigin + performance.now();
  const base = ("2" + JSON.stringify(["m", iterations, now(), ""])).length;
  const pad = "x".repeat(Math.max(0, (cfg.payload ?? 100) - base));
  const once = (seq) =>
    adapter.broadcast({ type: 2, data: ["m", seq, now(), pad], nsp: "/" }, { rooms: new Set(["hot"]), except: new Set() });

  const warm = cfg.warmup ?? 20000; // lets V8 optimise the path first
  for (let s = 0; s < warm; s++) once(s);
  writes = 0;
  const t0 = process.hrtime.bigint();
  for (let s = 0; s < iterations; s++) once(s);
  const ns = Number(process.hrtime.bigint() - t0);
  if (writes !== iterations * hot) throw new Error(`${writes} deliveries, expected ${iterations * hot}`);
  return { rooms: R, ns_per_broadcast: ns / iterations };
}

try {
  const modes = { memory, broadcast };
  if (!modes[cfg.mode]) throw new Error(`mode must be "memory" or "broadcast", got ${cfg.mode}`);
  process.stdout.write(JSON.stringify(modes[cfg.mode]()) + "\n");
} catch (e) {
  process.stderr.write(`rooms: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
}
