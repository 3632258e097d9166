// Publish rate of the Node.js `@socket.io/redis-emitter` 5.1 over a node-redis v4 client:
// `emitter.to(room).emit("m", seq, t_ms, pad)` n times, as fast as the library allows, in
// one process.
//
//   NODE_PATH=.cache/node/node_modules node bench/node/emitter_rate.js \
//     '{"redis":"redis://127.0.0.1:6379","prefix":"p","room":"r","n":100000,"payload":100,"batch":0}'
//
// Prints {"n","secs","rate"}. The emitter publishes one PUBLISH per emit and does not await
// it; node-redis queues the command and writes everything queued in one tick as a single
// corked write (implicit pipelining). The client's `publish` is wrapped to keep each
// command's promise, and the time stops when Redis has answered the last one (replies come
// in order). "batch": 0 (default) emits all n in one synchronous loop; batch B > 0 yields to
// the event loop (setImmediate) after every B emits, so that writing overlaps encoding.
// "payload" is the size in bytes of the socket.io packet a client receives,
// `2["m",seq,t_ms,"xx…"]`, reached by padding the last argument.
"use strict";
const { performance } = require("node:perf_hooks");
const { createClient } = require("redis");
const { Emitter } = require("@socket.io/redis-emitter");

const cfg = JSON.parse(process.argv[2] || "{}");
const n = cfg.n ?? 100000;
const room = cfg.room ?? "r";
const batch = cfg.batch ?? 0;
const now = () => performance.timeOrigin + performance.now();

// pad so that 2["m",seq,t_ms,"pad"] is ~payload bytes (seq and t_ms vary by a few digits)
const base = ("2" + JSON.stringify(["m", Math.floor(n / 2), now(), ""])).length;
const pad = "x".repeat(Math.max(0, (cfg.payload ?? 100) - base));

(async () => {
  const client = createClient({ url: cfg.redis ?? "redis://127.0.0.1:6379" });
  client.on("error", (e) => process.stderr.write(`redis: ${e.message}\n`));
  await client.connect();

  // observe the promises of the publishes the emitter fires and forgets
  const publish = client.publish.bind(client);
  const pending = [];
  client.publish = (...args) => {
    const p = publish(...args);
    pending.push(p);
    return p;
  };

  const emitter = new Emitter(client, { key: cfg.prefix ?? "socket.io" });
  const t0 = performance.now();
  for (let seq = 0; seq < n; seq++) {
    emitter.to(room).emit("m", seq, now(), pad);
    if (batch > 0 && (seq + 1) % batch === 0) await new Promise(setImmediate);
  }
  await Promise.all(pending); // rejects on the first failed PUBLISH
  const secs = (performance.now() - t0) / 1000;
  if (pending.length !== n) throw new Error(`expected ${n} publishes, saw ${pending.length}`);

  process.stdout.write(JSON.stringify({ n, secs, rate: n / secs }) + "\n");
  await client.quit();
})().catch((e) => {
  process.stderr.write(`emitter_rate: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
