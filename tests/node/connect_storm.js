// Connects N socket.io-client clients one after another; each emits an event with an ack
// in its `connect` listener, as applications do, and waits for the ack. Prints one JSON
// line: {"clients", "acked", "missed": [indices], "ms"}; exits 0 even on misses (the
// caller asserts).
//
//   node connect_storm.js '{"url":"http://127.0.0.1:3000","clients":2000,"event":"join",
//                           "data":"room","timeout_ms":5000,"transports":["websocket"]}'
"use strict";
const { io: connect } = require("socket.io-client");

const cfg = JSON.parse(process.argv[2]);
const N = cfg.clients ?? 2000;
const timeout = cfg.timeout_ms ?? 5000;

function one(i) {
  return new Promise((resolve) => {
    const socket = connect(cfg.url, {
      transports: cfg.transports ?? ["websocket"],
      forceNew: true,
      reconnection: false,
    });
    const done = (acked) => {
      socket.disconnect();
      resolve(acked);
    };
    socket.on("connect_error", () => done(false));
    socket.on("connect", () => {
      socket.timeout(timeout).emit(cfg.event ?? "join", cfg.data ?? `storm-${i}`, (err) => done(!err));
    });
  });
}

(async () => {
  const started = Date.now();
  const missed = [];
  for (let i = 0; i < N; i++) {
    if (!(await one(i))) missed.push(i);
  }
  process.stdout.write(JSON.stringify({ clients: N, acked: N - missed.length, missed, ms: Date.now() - started }) + "\n");
  process.exit(0);
})();
