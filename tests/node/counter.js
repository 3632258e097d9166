// A lean socket.io-client load: K websocket clients that join a room and count what they
// receive, for delivery tests and the benchmark harness. Every delivery is counted and
// checked against the sender's sequence numbers (no loss, no duplicate, in order).
//
//   node counter.js '{"url":"http://127.0.0.1:3000","clients":10,"room":"burst","event":"m",
//                     "nsp":"/","join":"join"}'
//
// Each client emits `join` (event name from "join") with the room and waits for its ack;
// then `{"ready":true}` is printed. The counted event's arguments are `(seq, t_ms, x?)`:
// `seq` counts from 0 per sender, `t_ms` is the sender's wall clock in ms (fractions
// allowed), used for latency on this same machine; a numeric third argument names the
// sender when several interleave (anything else, such as padding, means sender 0).
// Exact mode ("senders": S, "expect": N in the config): senders are 0..S-1 and each sends
// seq 0..N-1; every client keeps one bit per (sender, seq), so a duplicate is a seq seen
// before (a late one is out of order, not a duplicate), and status adds "missing" (never
// received) and "unexpected" (a sender or seq outside the range). No latencies are kept
// when `t_ms` is not a number (pass null for long runs).
// Commands on stdin, one per line, each answered with one JSON line:
//   status     {"counts":[per client],"connected","total","out_of_order","dups","first_ms","last_ms"}
//              (exact mode: and "missing", "unexpected")
//   latency    {"n","p50","p99","p999","max"} in ms over every delivery so far
//   reset      clears counts and latencies
//   pause I    client I stops reading its TCP socket (a client that stopped reading)
//   resume I   client I reads again
//   close      disconnects and exits
"use strict";
const readline = require("node:readline");
const { performance } = require("node:perf_hooks");
const { io: connect } = require("socket.io-client");

const cfg = JSON.parse(process.argv[2]);
const K = cfg.clients ?? 10;
const event = cfg.event ?? "m";
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const now = () => performance.timeOrigin + performance.now();

const clients = [];
let lat = [];
let firstMs = null;
let lastMs = null;

const exact = Number.isInteger(cfg.expect) && Number.isInteger(cfg.senders);

function fresh(c) {
  c.count = 0;
  c.next = new Map(); // sender -> next expected seq
  c.outOfOrder = 0;
  c.dups = 0;
  if (exact) {
    c.seen = Array.from({ length: cfg.senders }, () => new Uint8Array(cfg.expect));
    c.distinct = 0;
    c.unexpected = 0;
  }
}

// exact mode: one delivery of `seq` from `sender`
function check(c, seq, sender) {
  const seen = c.seen[sender];
  if (seen === undefined || !Number.isInteger(seq) || seq < 0 || seq >= cfg.expect) {
    c.unexpected++;
    return;
  }
  if (seen[seq]) {
    c.dups++;
    return;
  }
  seen[seq] = 1;
  c.distinct++;
  const want = c.next.get(sender) ?? 0;
  if (seq !== want) c.outOfOrder++;
  if (seq >= want) c.next.set(sender, seq + 1);
}

async function start() {
  const base = cfg.url.replace(/\/$/, "") + (cfg.nsp && cfg.nsp !== "/" ? cfg.nsp : "");
  for (let i = 0; i < K; i++) {
    const socket = connect(base, { transports: ["websocket"], forceNew: true, reconnection: false });
    const c = { socket };
    fresh(c);
    socket.on(event, (seq, t, sender) => {
      if (typeof sender !== "number") sender = 0;
      const at = now();
      if (firstMs === null) firstMs = at;
      lastMs = at;
      c.count++;
      if (typeof t === "number") lat.push(at - t);
      if (exact) return check(c, seq, sender);
      const key = sender;
      const want = c.next.get(key) ?? 0;
      if (seq === want) c.next.set(key, want + 1);
      else if (seq < want) c.dups++;
      else {
        c.outOfOrder++;
        c.next.set(key, seq + 1);
      }
    });
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`client ${i} did not connect`)), 10000);
      socket.once("connect", () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once("connect_error", (e) => reject(e));
    });
    if (cfg.room) {
      await socket.timeout(10000).emitWithAck(cfg.join ?? "join", cfg.room);
    }
    clients.push(c);
  }
  out({ ready: true, clients: K });
}

function pct(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const commands = {
  status: () => ({
    counts: clients.map((c) => c.count),
    connected: clients.map((c) => c.socket.connected),
    total: clients.reduce((a, c) => a + c.count, 0),
    out_of_order: clients.reduce((a, c) => a + c.outOfOrder, 0),
    dups: clients.reduce((a, c) => a + c.dups, 0),
    ...(exact && {
      missing: clients.reduce((a, c) => a + cfg.senders * cfg.expect - c.distinct, 0),
      unexpected: clients.reduce((a, c) => a + c.unexpected, 0),
    }),
    first_ms: firstMs,
    last_ms: lastMs,
  }),
  latency: () => {
    const s = Float64Array.from(lat).sort();
    return { n: s.length, p50: pct(s, 50), p99: pct(s, 99), p999: pct(s, 99.9), max: s.length ? s[s.length - 1] : null };
  },
  reset: () => {
    clients.forEach(fresh);
    lat = [];
    firstMs = lastMs = null;
    return { ok: true };
  },
  // the `ws` WebSocket under engine.io-client, and its net.Socket
  pause: (i) => {
    clients[Number(i)].socket.io.engine.transport.ws._socket.pause();
    return { ok: true };
  },
  resume: (i) => {
    clients[Number(i)].socket.io.engine.transport.ws._socket.resume();
    return { ok: true };
  },
  close: () => {
    clients.forEach((c) => c.socket.disconnect());
    setTimeout(() => process.exit(0), 50);
    return { ok: true };
  },
};

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const [name, arg] = line.trim().split(/\s+/);
  const f = commands[name];
  try {
    out(f ? f(arg) : { error: `unknown command ${line.trim()}` });
  } catch (e) {
    out({ error: String(e) });
  }
});
process.stdin.on("end", () => process.exit(0));

start().catch((e) => {
  out({ error: String(e && e.message ? e.message : e) });
  process.exit(1);
});
