// Headless Chromium opens the chat page on two different sio-node nodes, sends a message
// on one and waits for it on the other. Usage: node browser.js PORT_A PORT_B SCREENSHOT
"use strict";
const { withChromium } = require("./chromium.js");

withChromium(async (page) => {
  const [portA, portB, shot] = process.argv.slice(2);
  const a = await page("A");
  const b = await page("B");
  await a.goto(`http://127.0.0.1:${portA}/`);
  await b.goto(`http://127.0.0.1:${portB}/`);
  for (const p of [a, b]) {
    // a cold Chromium on a busy 2-core machine can take a while to load and connect
    await p.waitForFunction(() => document.getElementById("me").textContent !== "…", null, { timeout: 30000 });
    await p.click("#join");
    await p.waitForSelector("text=joined lobby", { timeout: 10000 });
  }
  const text = `hello from the browser ${Date.now()}`;
  // the room subscription of a new room settles within the adapter's poll period
  await a.waitForTimeout(300);
  await a.fill("#text", text);
  await a.click("#send");
  await b.waitForSelector(`text=${text}`, { timeout: 10000 });
  const line = await b.textContent("#log");
  if (!line.includes(`from A in lobby`)) throw new Error(`node B shows no origin: ${line}`);
  await b.screenshot({ path: shot });
  console.log(JSON.stringify({ ok: true, text }));
});
