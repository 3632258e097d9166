// A Node.js peer for the interop suites: a socket.io 4.8 server on the Redis adapter
// (classic `createAdapter`, `createShardedAdapter`, or `@socket.io/redis-streams-adapter`
// with mode "streams": `stream`, `streamCount`, `shardedPubSub`), socket.io-client
// clients, and the Redis emitter. Driven by JSON lines on stdin: {"id", "op", "args"} -> {"id", "result"|"error"}.
//
//   node peer.js '{"name":"N1","port":3001,"redis":"redis://127.0.0.1:6379","mode":"classic",
//                  "prefix":"socket.io","cluster":["redis://127.0.0.1:7000"], "requestsTimeout":3000,
//                  "specificResponse":false,"subscriptionMode":"dynamic","server":true}'
"use strict";
const readline = require("node:readline");
const { Server } = require("socket.io");
const { io: connect } = require("socket.io-client");
const { createClient, createCluster } = require("redis");
const { createAdapter, createShardedAdapter } = require("@socket.io/redis-adapter");
const { Emitter } = require("@socket.io/redis-emitter");
const streams = require("@socket.io/redis-streams-adapter");

const cfg = JSON.parse(process.argv[2]);
const name = cfg.name || "node";
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

// {"$bin": base64} <-> Buffer, recursively
const fromWire = (v) => {
  if (Array.isArray(v)) return v.map(fromWire);
  if (v && typeof v === "object") {
    if (typeof v.$bin === "string" && Object.keys(v).length === 1) return Buffer.from(v.$bin, "base64");
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fromWire(x)]));
  }
  return v;
};
const toWire = (v) => {
  if (Buffer.isBuffer(v)) return { $bin: v.toString("base64") };
  if (v instanceof ArrayBuffer) return { $bin: Buffer.from(v).toString("base64") };
  if (ArrayBuffer.isView(v)) return { $bin: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") };
  if (Array.isArray(v)) return v.map(toWire);
  if (v instanceof Set) return [...v].map(toWire);
  if (v instanceof Date) return v.toJSON();
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toWire(x)]));
  return v;
};

async function redisClient() {
  if (cfg.cluster) {
    const c = createCluster({ rootNodes: cfg.cluster.map((url) => ({ url })) });
    c.on("error", (e) => console.error(`[${name}] redis cluster error`, e.message));
    await c.connect();
    return c;
  }
  const c = createClient({ url: cfg.redis || "redis://127.0.0.1:6379" });
  c.on("error", (e) => console.error(`[${name}] redis error`, e.message));
  await c.connect();
  return c;
}

const clients = new Map(); // name -> { socket, nsp, received: [] }
const serverEvents = [];
let io = null;
const redis = [];

function target(nsp, a) {
  let op = io.of(nsp || "/");
  for (const r of a.to || []) op = op.to(r);
  for (const r of a.except || []) op = op.except(r);
  return op;
}

async function startServer() {
  const pub = await redisClient();
  const sub = pub.duplicate();
  sub.on("error", (e) => console.error(`[${name}] redis sub error`, e.message));
  await sub.connect();
  redis.push(pub, sub);
  const adapter =
    cfg.mode === "streams"
      ? streams.createAdapter(pub, {
          streamName: cfg.stream || "socket.io",
          streamCount: cfg.streamCount || 1,
          channelPrefix: cfg.prefix || "socket.io",
          useShardedPubSub: !!cfg.shardedPubSub,
        })
      : cfg.mode === "sharded"
      ? createShardedAdapter(pub, sub, {
          channelPrefix: cfg.prefix || "socket.io",
          subscriptionMode: cfg.subscriptionMode || "dynamic",
        })
      : createAdapter(pub, sub, {
          key: cfg.prefix || "socket.io",
          requestsTimeout: cfg.requestsTimeout || 5000,
          publishOnSpecificResponseChannel: !!cfg.specificResponse,
        });
  io = new Server(cfg.port, { adapter });
  for (const nsp of ["/", "/admin"]) {
    const n = io.of(nsp);
    n.on("connection", (socket) => {
      const rooms = socket.handshake.auth.rooms || [];
      socket.join(rooms);
      socket.data = { node: name, client: socket.handshake.auth.name };
    });
    n.on("ping", (...args) => {
      const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
      serverEvents.push({ nsp, event: "ping", args: toWire(args) });
      if (cb) cb(`pong from ${name}`);
    });
    n.on("hello", (...args) => {
      serverEvents.push({ nsp, event: "hello", args: toWire(args) });
    });
  }
}

const ops = {
  async clients(a) {
    // a.clients: [{name, nsp, rooms, port?}]
    const ids = {};
    await Promise.all(
      a.clients.map(
        (c) =>
          new Promise((resolve, reject) => {
            const url = `http://127.0.0.1:${c.port || cfg.port}${c.nsp || "/"}`;
            const socket = connect(url, {
              auth: { rooms: c.rooms || [], name: c.name },
              transports: ["websocket"],
              reconnection: false,
              forceNew: true,
            });
            const entry = { socket, nsp: c.nsp || "/", received: [], disconnected: false };
            socket.onAny((event, ...args) => {
              const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
              entry.received.push({ event, args: toWire(args) });
              if (cb) cb(`ack:${c.name}`);
            });
            socket.on("disconnect", () => (entry.disconnected = true));
            socket.on("connect", () => {
              clients.set(c.name, entry);
              ids[c.name] = socket.id;
              resolve();
            });
            socket.on("connect_error", (e) => reject(new Error(`${c.name}: ${e.message}`)));
          })
      )
    );
    return ids;
  },
  async call(a) {
    // a client emits a contract event and waits for its ack: {name, event, data, timeout?}
    const c = clients.get(a.name);
    if (!c) throw new Error(`no client ${a.name}`);
    const data = a.data === undefined ? {} : fromWire(a.data);
    return toWire(await c.socket.timeout(a.timeout || 10000).emitWithAck(a.event, data));
  },
  received(a) {
    const res = {};
    for (const [n, c] of clients) res[n] = c.received.filter((r) => !a.event || r.event === a.event);
    return res;
  },
  disconnected() {
    const res = {};
    for (const [n, c] of clients) res[n] = c.disconnected;
    return res;
  },
  broadcast(a) {
    let op = target(a.nsp, a);
    if (a.volatile) op = op.volatile;
    op.emit(a.event, ...fromWire(a.args || []));
    return true;
  },
  async emitWithAck(a) {
    try {
      const res = await target(a.nsp, a).timeout(a.timeout || 3000).emitWithAck(a.event, ...fromWire(a.args || []));
      return { responses: toWire(res) };
    } catch (e) {
      return { error: e.message, responses: toWire(e.responses || []) };
    }
  },
  async fetchSockets(a) {
    const sockets = await target(a.nsp, a).fetchSockets();
    return sockets.map((s) => ({ id: s.id, rooms: [...s.rooms], data: toWire(s.data) }));
  },
  async allRooms(a) {
    // RedisAdapter (classic) only: the sharded ClusterAdapter has no allRooms
    return [...(await io.of(a.nsp || "/").adapter.allRooms())];
  },
  async serverCount(a) {
    return await io.of(a.nsp || "/").adapter.serverCount();
  },
  async serverSideEmitWithAck(a) {
    try {
      // the wait is bounded by the adapter's requestsTimeout
      const res = await io.of(a.nsp || "/").serverSideEmitWithAck(a.event, ...fromWire(a.args || []));
      return { responses: toWire(res) };
    } catch (e) {
      return { error: e.message };
    }
  },
  serverSideEmit(a) {
    io.of(a.nsp || "/").serverSideEmit(a.event, ...fromWire(a.args || []));
    return true;
  },
  serverEvents() {
    return serverEvents;
  },
  socketsJoin(a) {
    target(a.nsp, a).socketsJoin(a.rooms);
    return true;
  },
  socketsLeave(a) {
    target(a.nsp, a).socketsLeave(a.rooms);
    return true;
  },
  disconnectSockets(a) {
    target(a.nsp, a).disconnectSockets(!!a.close);
    return true;
  },
  rooms(a) {
    // rooms of a local client's server-side socket
    const c = clients.get(a.name);
    const s = c && io.of(c.nsp).sockets.get(c.socket.id);
    return s ? [...s.rooms] : null;
  },
  async emitter(a) {
    // @socket.io/redis-emitter (classic protocol only)
    if (!this._emitter) {
      const c = await redisClient();
      redis.push(c);
      this._emitter = new Emitter(c, { key: cfg.prefix || "socket.io" });
    }
    let e = this._emitter.of(a.nsp || "/");
    for (const r of a.to || []) e = e.to(r);
    for (const r of a.except || []) e = e.except(r);
    if (a.volatile) e = e.volatile;
    if (a.compress === false) e = e.compress(false);
    switch (a.action || "emit") {
      case "emit":
        e.emit(a.event, ...fromWire(a.args || []));
        break;
      case "socketsJoin":
        e.socketsJoin(a.rooms);
        break;
      case "socketsLeave":
        e.socketsLeave(a.rooms);
        break;
      case "disconnectSockets":
        e.disconnectSockets(!!a.close);
        break;
      case "serverSideEmit":
        e.serverSideEmit(a.event, ...fromWire(a.args || []));
        break;
      default:
        throw new Error(`unknown emitter action ${a.action}`);
    }
    return true;
  },
  async close() {
    for (const c of clients.values()) c.socket.disconnect();
    if (io) await new Promise((r) => io.close(() => r()));
    for (const c of redis) {
      try {
        await c.quit();
      } catch {}
    }
    setTimeout(() => process.exit(0), 50);
    return true;
  },
};

(async () => {
  try {
    if (cfg.server !== false) await startServer();
    out({ ready: true, name });
  } catch (e) {
    out({ ready: true, error: e.stack || String(e) });
    process.exit(1);
  }
  const rl = readline.createInterface({ input: process.stdin });
  rl.on("line", async (line) => {
    let msg;
    try {
      msg = JSON.parse(line);
    } catch {
      return;
    }
    try {
      const fn = ops[msg.op];
      if (!fn) throw new Error(`unknown op ${msg.op}`);
      const result = await fn.call(ops, msg.args || {});
      out({ id: msg.id, result: result === undefined ? null : result });
    } catch (e) {
      out({ id: msg.id, error: e.stack || String(e) });
    }
  });
  rl.on("close", () => process.exit(0));
})();
