// The Node.js reference server of the benchmark: socket.io 4.8 on the classic
// `@socket.io/redis-adapter` (createAdapter over two node-redis v4 clients), or with
// "mode":"streams" on `@socket.io/redis-streams-adapter` 0.3.1 (stream "stream", default
// the prefix; channel prefix the prefix), default
// socket.io / engine.io options (polling + websocket, no perMessageDeflate).
//
//   NODE_PATH=.cache/node/node_modules node bench/node/server.js \
//     '{"port":3001,"redis":"redis://127.0.0.1:6379","prefix":"bench-x","id":"N1","requestsTimeout":3000}'
//
// Prints {"ready":true,"pid":N} once it listens and its Redis subscriptions are active,
// then runs until stdin reaches EOF (when stdin is a pipe or socket) or SIGTERM/SIGINT.
// Events on namespace "/", each answered through the ack callback (as `sio-node` does):
//   join  "room" | ["a","b"]                        -> {"ok":true}
//   emit  {to:[rooms], except?, event, args:[...]}  -> {"ok":true}   io.to(rooms).emit(event, ...args)
//   fetch_sockets {to:[rooms], except?}            -> {"sockets":[{"id","rooms"}],"complete":true}
//   server_side_emit {event, args, ack}            -> {"responses":[...]} (ack) | {"ok":true}
//   server_count                                    -> {"count":N}   adapter.serverCount()
// A failing handler answers {"error": message}. A server-side `ping` (with ack) is answered
// with {"node": id}. GET /health -> {"node": id, "servers": N}.
"use strict";
const http = require("node:http");
const fs = require("node:fs");
const { Server } = require("socket.io");
const { createClient } = require("redis");
const { createAdapter } = require("@socket.io/redis-adapter");

const cfg = JSON.parse(process.argv[2] || "{}");
const id = cfg.id || "N1";
const prefix = cfg.prefix || "socket.io";

const die = (e) => {
  process.stderr.write(`server.js ${id}: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
};

// The ack callback is the last argument; the payload, if any, the first.
const handlers = {
  join: async (socket, d) => {
    socket.join(d); // a string or an array of strings
    return { ok: true };
  },
  emit: async (socket, d, io) => {
    let op = io.to(d.to || []);
    if (d.except && d.except.length) op = op.except(d.except);
    op.emit(d.event, ...(d.args || []));
    return { ok: true };
  },
  fetch_sockets: async (socket, d, io) => {
    let op = io.in((d && d.to) || []);
    if (d && d.except && d.except.length) op = op.except(d.except);
    // local Socket and RemoteSocket both have `id` and `rooms` (a Set)
    const sockets = await op.fetchSockets();
    // the classic adapter rejects on a missing response, so a result is always complete
    return { sockets: sockets.map((s) => ({ id: s.id, rooms: [...s.rooms] })), complete: true };
  },
  server_side_emit: async (socket, d, io) => {
    if (!d.ack) {
      io.serverSideEmit(d.event, ...(d.args || []));
      return { ok: true };
    }
    // io.timeout() does not apply to serverSideEmitWithAck: the adapter's
    // `requestsTimeout` (cfg.requestsTimeout, 3000 ms by default here) bounds the wait.
    try {
      return { responses: await io.serverSideEmitWithAck(d.event, ...(d.args || [])) };
    } catch (e) {
      return { responses: e.responses || [], error: e.message };
    }
  },
  server_count: async (socket, d, io) => ({ count: await io.of("/").adapter.serverCount() }),
};

(async () => {
  const pub = createClient({ url: cfg.redis || "redis://127.0.0.1:6379" });
  const sub = pub.duplicate();
  for (const c of [pub, sub]) c.on("error", (e) => process.stderr.write(`redis: ${e.message}\n`));
  await Promise.all([pub.connect(), sub.connect()]);

  const httpServer = http.createServer((req, res) => {
    // socket.io handles /socket.io/ itself and passes every other request here
    if (req.method === "GET" && req.url.split("?")[0] === "/health") {
      io.of("/").adapter.serverCount().then(
        (servers) => {
          res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify({ node: id, servers }));
        },
        (e) => {
          res.writeHead(500);
          res.end(String(e));
        },
      );
      return;
    }
    res.writeHead(404);
    res.end();
  });

  const io = new Server(httpServer, {
    adapter:
      cfg.mode === "streams"
        ? require("@socket.io/redis-streams-adapter").createAdapter(pub, {
            streamName: cfg.stream || prefix,
            channelPrefix: prefix,
            maxLen: cfg.maxLen || 10000,
          })
        : createAdapter(pub, sub, { key: prefix, requestsTimeout: cfg.requestsTimeout || 3000 }),
  });

  io.on("connection", (socket) => {
    for (const [event, handle] of Object.entries(handlers)) {
      socket.on(event, (...args) => {
        const ack = typeof args[args.length - 1] === "function" ? args.pop() : () => {};
        handle(socket, args[0], io).then(ack, (e) => ack({ error: String((e && e.message) || e) }));
      });
    }
  });
  // server-side events (serverSideEmit from the other nodes) are emitted on the namespace
  io.of("/").on("ping", (...args) => {
    const ack = args[args.length - 1];
    if (typeof ack === "function") ack({ node: id });
  });

  // The adapter subscribes in its constructor without awaiting; node-redis answers the
  // commands of one connection in order, so once this later SUBSCRIBE resolves the
  // adapter's PSUBSCRIBE / SUBSCRIBE are active too.
  const probe = `${prefix}-ready#${id}#${process.pid}`;
  await sub.subscribe(probe, () => {});
  await sub.unsubscribe(probe);

  await new Promise((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(cfg.port || 3000, cfg.host || "127.0.0.1", resolve);
  });
  process.stdout.write(JSON.stringify({ ready: true, pid: process.pid }) + "\n");

  let closing = false;
  const shutdown = () => {
    if (closing) return;
    closing = true;
    io.close(); // also closes httpServer
    Promise.allSettled([pub.quit(), sub.quit()]).finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
  // stdin EOF means the parent went away, but only when stdin is a pipe or a socket
  // (a background job in a script gets /dev/null, which is at EOF at once)
  const st = fs.fstatSync(0);
  if (st.isFIFO() || st.isSocket()) {
    process.stdin.on("end", shutdown);
    process.stdin.on("error", shutdown);
    process.stdin.resume();
  }
})().catch(die);
