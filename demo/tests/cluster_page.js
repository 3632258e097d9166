// Headless Chromium opens the cluster page on node A of a two-node cluster while a chat
// page on node B has joined room "lobby" and sends messages; waits until the page lists
// both servers with their sockets, the room with its member, and a rate chart with
// samples, then keeps a screenshot. Usage: node cluster_page.js PORT_A PORT_B SCREENSHOT
"use strict";
const { withChromium } = require("./chromium.js");

withChromium(async (newPage) => {
  const [portA, portB, shot] = process.argv.slice(2);
  const chat = await newPage("chat");
  const page = await newPage("cluster");
  await chat.goto(`http://127.0.0.1:${portB}/`);
  await chat.waitForFunction(() => document.getElementById("me").textContent !== "…", null, { timeout: 30000 });
  await chat.click("#join");
  await chat.waitForSelector("text=joined lobby", { timeout: 10000 });
  await page.goto(`http://127.0.0.1:${portA}/cluster`);
  const cells = (id) => page.$$eval(`#${id} tbody tr`, (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
  const deadline = Date.now() + 30000;
  let servers, rooms, samples;
  for (;;) {
    // traffic for the chart: the chat page sends to the room
    await chat.fill("#text", `tick ${Date.now()}`);
    await chat.click("#send");
    servers = await cells("servers");
    rooms = await cells("rooms");
    samples = parseInt(await page.textContent("#points"), 10) || 0;
    const ok =
      JSON.stringify(servers) === JSON.stringify([["A", "1"], ["B", "1"]]) &&
      JSON.stringify(rooms) === JSON.stringify([["lobby", "1"]]) &&
      samples >= 3;
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`page never complete: ${JSON.stringify({ servers, rooms, samples })}`);
    await page.waitForTimeout(500);
  }
  const points = await page.getAttribute("#line", "points");
  if (points.trim().split(" ").length < 3) throw new Error(`no chart: ${points}`);
  await page.screenshot({ path: shot, fullPage: true });
  console.log(JSON.stringify({ ok: true, servers, rooms, samples }));
});
