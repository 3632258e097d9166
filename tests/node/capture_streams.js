// Captures what @socket.io/redis-streams-adapter 0.3.1 writes to Redis: the stream entries
// (XADD fields in order, read back with a bounded XRANGE) and the pub/sub messages
// (PSUBSCRIBE on the channel prefix), one JSON file per scenario, for
// adapter-core/tests/fixtures/node-streams/. Run from a folder whose node_modules has
// socket.io 4.8, socket.io-client 4.8, redis 4 and @socket.io/redis-streams-adapter 0.3.1:
//
//   NODE_PATH=$SIO_NODE_MODULES node tests/node/capture_streams.js redis://127.0.0.1:6379 OUT_DIR
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { Server } = require("socket.io");
const { io: connect } = require("socket.io-client");
const { createClient } = require("redis");
const { createAdapter } = require("@socket.io/redis-streams-adapter");
const { hashCode } = require("@socket.io/redis-streams-adapter/dist/util");
const { decode, encode } = require("@msgpack/msgpack");

const [url, outDir] = process.argv.slice(2);
const STREAM = "cap-stream";
const PREFIX = "cap";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const hex = (b) => Buffer.from(b).toString("hex");
// decoded values in the fixtures' notation (binary as {"$bin": hex})
const show = (v) => {
  if (v instanceof Uint8Array) return { $bin: hex(v) };
  if (Array.isArray(v)) return v.map(show);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, show(x)]));
  return v === undefined ? null : v;
};

async function main() {
  fs.mkdirSync(outDir, { recursive: true });
  const admin = createClient({ url });
  await admin.connect();
  await admin.del(STREAM);
  const mon = admin.duplicate();
  await mon.connect();
  let pubsub = [];
  await mon.pSubscribe(`${PREFIX}#*`, (message, channel) => pubsub.push({ channel, bytes: message }), true);
  let lastId = "0-0";

  const servers = [];
  for (const port of [3101, 3102]) {
    const pub = createClient({ url });
    await pub.connect();
    const io = new Server(port, { adapter: createAdapter(pub, { streamName: STREAM, channelPrefix: PREFIX }) });
    for (const nsp of ["/", "/admin"]) {
      io.of(nsp).on("connection", (s) => {
        s.join(s.handshake.auth.rooms || []);
        s.data = { client: s.handshake.auth.name };
      });
    }
    io.on("hello", (...args) => {
      const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
      if (cb) cb(`hi from ${port}`);
    });
    servers.push({ io, pub, port });
  }
  await sleep(500);
  const [A, B] = servers.map((s) => s.io);
  const sock = await new Promise((resolve, reject) => {
    const s = connect("http://127.0.0.1:3102/", {
      auth: { rooms: ["r1"], name: "c1" },
      transports: ["websocket"],
      reconnection: false,
    });
    s.on("ping", (arg, cb) => cb(arg === "bin" ? Buffer.from([9, 8]) : "pong"));
    s.on("connect", () => resolve(s));
    s.on("connect_error", reject);
  });
  await sleep(300);
  const uids = { 3101: A.of("/").adapter.uid, 3102: B.of("/").adapter.uid };

  const scenarios = [
    ["server_emit_all", 'io.emit("hello", "world")', async () => A.emit("hello", "world")],
    ["server_to_r1_except_r3", 'io.to("r1").except("r3").emit("hello", 1, {a: [true, null]})', async () =>
      A.to("r1").except("r3").emit("hello", 1, { a: [true, null] })],
    ["server_rooms_volatile", 'io.to(["r1", "r2"]).volatile.emit("v", 1.5)', async () =>
      A.to(["r1", "r2"]).volatile.emit("v", 1.5)],
    ["server_binary", 'io.emit("bin", Buffer.from([1,2,3]), {b: Buffer.from("xyz")})', async () =>
      A.emit("bin", Buffer.from([1, 2, 3]), { b: Buffer.from("xyz") })],
    ["server_nsp_admin", 'io.of("/admin").to("r1").emit("a", "b")', async () => A.of("/admin").to("r1").emit("a", "b")],
    ["server_sockets_join", 'io.in("r1").socketsJoin(["r7", "r8"])', async () => A.in("r1").socketsJoin(["r7", "r8"])],
    ["server_sockets_leave", 'io.except("r9").socketsLeave("r7")', async () => A.except("r9").socketsLeave("r7")],
    ["server_disconnect_sockets_room", 'io.in("r404").disconnectSockets(true)', async () =>
      A.in("r404").disconnectSockets(true)],
    ["server_fetch_sockets", 'await io.in("r1").fetchSockets()', async () => {
      const s = await A.in("r1").fetchSockets();
      return s.map((x) => x.id);
    }],
    ["server_side_emit", 'io.serverSideEmit("note", "x", 2)', async () => A.serverSideEmit("note", "x", 2)],
    ["server_side_emit_with_ack", 'await io.serverSideEmitWithAck("hello", "x")', async () =>
      A.serverSideEmitWithAck("hello", "x")],
    ["server_emit_with_ack", 'await io.timeout(2000).emitWithAck("ping", "p")', async () =>
      A.timeout(2000).emitWithAck("ping", "p")],
    ["server_emit_with_binary_ack", 'await io.timeout(2000).emitWithAck("ping", "bin")', async () =>
      A.timeout(2000).emitWithAck("ping", "bin")],
  ];

  const index = [];
  let n = 0;
  for (const [label, action, run] of scenarios) {
    n += 1;
    pubsub = [];
    const result = await run();
    await sleep(400);
    const entries = await admin.sendCommand(["XRANGE", STREAM, "(" + lastId, "+", "COUNT", "100"], {
      returnBuffers: true,
    });
    const messages = [];
    for (const [id, fields] of entries) {
      lastId = id.toString();
      const pairs = [];
      for (let i = 0; i < fields.length; i += 2) pairs.push([fields[i].toString(), fields[i + 1].toString()]);
      const obj = Object.fromEntries(pairs);
      let decodedData = null;
      if (obj.data !== undefined) {
        decodedData = obj.data.startsWith("{")
          ? JSON.parse(obj.data)
          : show(decode(Buffer.from(obj.data, "base64")));
      }
      messages.push({ kind: "stream", stream: STREAM, fields: pairs, decoded_data: decodedData });
    }
    for (const m of pubsub) {
      messages.push({ kind: "pubsub", channel: m.channel.toString(), hex: hex(m.bytes), decoded: show(decode(m.bytes)) });
    }
    const file = `${String(n).padStart(2, "0")}_${label}.json`;
    const doc = { label, action, server_uids: uids, action_result: show(result === undefined ? null : result), messages };
    fs.writeFileSync(path.join(outDir, file), JSON.stringify(doc, null, 2) + "\n");
    index.push({ file, action, messages: messages.map((m) => m.kind + ":" + (m.channel || m.stream)) });
  }
  // @socket.io/redis-streams-emitter 0.1.1 is not on npm: its entries as its source builds
  // them (socket.io@1c3e471 packages/socket.io-redis-streams-emitter/lib/index.ts,
  // flattenPayload and publish: uid "emitter", packet.nsp added to broadcasts, every
  // message appended to the stream), with the same @msgpack/msgpack.
  const emitterMessages = [
    { type: 3, nsp: "/", data: { packet: { type: 2, data: ["hello", "world"] }, opts: { rooms: ["r1"], flags: {}, except: [] } } },
    { type: 3, nsp: "/admin", data: { packet: { type: 2, data: ["bin", Buffer.from([1, 2, 3])] }, opts: { rooms: [], flags: { volatile: true }, except: ["r2"] } } },
    { type: 4, nsp: "/", data: { opts: { rooms: ["r1"], except: [], flags: {} }, rooms: ["r2", "r3"] } },
    { type: 5, nsp: "/", data: { opts: { rooms: [], except: ["r9"], flags: {} }, rooms: ["r2"] } },
    { type: 6, nsp: "/", data: { opts: { rooms: ["r1"], except: [], flags: {} }, close: true } },
    { type: 9, nsp: "/", data: { packet: ["note", "x", 2] } },
  ];
  const emitterEntries = emitterMessages.map((m) => {
    if (m.type === 3) m.data.packet.nsp = m.nsp;
    const binary = [3, 8, 9, 10, 12].includes(m.type) && JSON.stringify(m.data).includes('"Buffer"');
    const data = binary ? Buffer.from(encode(m.data)).toString("base64") : JSON.stringify(m.data);
    return { kind: "stream", stream: "socket.io", fields: [["uid", "emitter"], ["nsp", m.nsp], ["type", String(m.type)], ["data", data]], decoded_data: show(m.data) };
  });
  fs.writeFileSync(
    path.join(outDir, "emitter_entries.json"),
    JSON.stringify({ label: "emitter_entries", action: "@socket.io/redis-streams-emitter 0.1.1, built from its source", messages: emitterEntries }, null, 2) + "\n"
  );

  const names = ["/", "/admin", "/chat", "/a-much-longer-namespace", "/é", "/ns-negative?"];
  const hashes = names.map((name) => ({ name, hashCode: hashCode(name) }));
  fs.writeFileSync(path.join(outDir, "hash_codes.json"), JSON.stringify(hashes, null, 2) + "\n");
  fs.writeFileSync(path.join(outDir, "index.json"), JSON.stringify(index, null, 2) + "\n");

  sock.disconnect();
  for (const s of servers) await new Promise((r) => s.io.close(() => r()));
  await admin.del(STREAM);
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
