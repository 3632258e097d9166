// One socket.io-client client calls each event of a list without any argument, each with
// an ack, and prints one JSON line: {"<event>": <the ack's first argument> | "timeout"}.
//
//   node contract.js '{"url":"http://127.0.0.1:3000","events":["whoami","nope"],"timeout_ms":3000}'
"use strict";
const { io: connect } = require("socket.io-client");

const cfg = JSON.parse(process.argv[2]);
const socket = connect(cfg.url, { transports: ["websocket"], forceNew: true, reconnection: false });
socket.on("connect_error", (e) => {
  console.error(`contract.js: ${e.message}`);
  process.exit(1);
});
socket.on("connect", async () => {
  const out = {};
  for (const event of cfg.events) {
    try {
      out[event] = await socket.timeout(cfg.timeout_ms ?? 3000).emitWithAck(event);
    } catch (e) {
      out[event] = "timeout";
    }
  }
  console.log(JSON.stringify(out));
  socket.disconnect();
  process.exit(0);
});
