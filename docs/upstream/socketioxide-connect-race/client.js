// Connects N socket.io clients one after another; each emits `join` (with an ack)
// right in its `connect` listener and records whether the ack ever came back.
//
// Usage: node client.js [--url http://127.0.0.1:3000] [--clients 500]
//                       [--transport websocket|polling] [--timeout 2000]
//   websocket: websocket transport only (default)
//   polling:   socket.io-client default, HTTP long-polling then upgrade to websocket
// Prints one JSON line {"clients":N,"acked":..,"missed":[indices]}; exit code 1 if any missed.
const { io } = require("socket.io-client");

const opts = { url: "http://127.0.0.1:3000", clients: 500, transport: "websocket", timeout: 2000 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = argv[i].replace(/^--/, "");
  if (!(key in opts) || argv[i + 1] === undefined) {
    console.error(`unknown or incomplete option ${argv[i]}`);
    process.exit(2);
  }
  opts[key] = typeof opts[key] === "number" ? Number(argv[i + 1]) : argv[i + 1];
}
const transports = opts.transport === "polling" ? ["polling", "websocket"] : ["websocket"];

function runOne() {
  return new Promise((resolve) => {
    const socket = io(opts.url, { transports, forceNew: true, reconnection: false });
    const done = (ok) => {
      socket.disconnect();
      resolve(ok);
    };
    socket.on("connect_error", (err) => {
      console.error(`connect_error: ${err.message}`);
      done(false);
    });
    socket.on("connect", () => {
      socket.timeout(opts.timeout).emit("join", "room-1", (err, res) => done(!err && res === "ok"));
    });
  });
}

(async () => {
  const missed = [];
  for (let i = 0; i < opts.clients; i++) {
    if (!(await runOne())) missed.push(i);
  }
  console.log(JSON.stringify({ clients: opts.clients, acked: opts.clients - missed.length, missed }));
  process.exit(missed.length > 0 ? 1 : 0);
})();
