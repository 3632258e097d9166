// Headless Chromium opens the chat page on two different sio-node nodes, sends a message
// on one and waits for it on the other. Usage: node browser.js PORT_A PORT_B SCREENSHOT
"use strict";
const { chromium } = require("playwright-core");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

(async () => {
  const [portA, portB, shot] = process.argv.slice(2);
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sio-chromium-"));
  const ctx = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const a = await ctx.newPage();
    const b = await ctx.newPage();
    // the page's console and errors end up in the test output when something fails
    for (const [name, p] of [["A", a], ["B", b]]) {
      p.on("console", (m) => console.error(`[page ${name}] ${m.type()}: ${m.text()}`));
      p.on("pageerror", (e) => console.error(`[page ${name}] error: ${e.message}`));
    }
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
  } finally {
    await ctx.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
})().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
