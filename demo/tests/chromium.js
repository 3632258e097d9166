// Shared by the browser tests: runs `body(ctx, page)` in a fresh headless Chromium
// (playwright-core, $CHROMIUM), with each page's console and errors on stderr, the
// profile removed afterwards, and exit status 1 on any failure.
"use strict";
const { chromium } = require("playwright-core");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

exports.withChromium = (body) =>
  (async () => {
    const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sio-chromium-"));
    const ctx = await chromium.launchPersistentContext(userDataDir, {
      executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    // a named page whose console and errors end up in the test output when something fails
    const page = async (name) => {
      const p = await ctx.newPage();
      p.on("console", (m) => console.error(`[page ${name}] ${m.type()}: ${m.text()}`));
      p.on("pageerror", (e) => console.error(`[page ${name}] error: ${e.message}`));
      return p;
    };
    try {
      await body(page);
    } finally {
      await ctx.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    }
  })().catch((e) => {
    console.error(e.stack || String(e));
    process.exit(1);
  });
