// Two browser pages and one TCP client in the same chat room, in headless Chromium.
//
// Usage: node two_pages.mjs WEB_URL TCP_HOST:PORT SCREENSHOT.png
// Exits 0 when every message arrived where it should; 1 (with the reason) otherwise.
// Run by ../browser.rs, which starts the server first. Near the end the script prints
// "restart the server" and waits for a line on stdin: the test restarts the server on the
// same ports, and the page must reconnect and log in again by itself.

import net from "node:net";
import readline from "node:readline";
import { chromium } from "playwright-core";

const [webUrl, tcpAddr, screenshot] = process.argv.slice(2);
const STEP_TIMEOUT = 15000;

/// A line-oriented TCP chat client: `lines` collects what the server sent.
function tcpClient(addr) {
  const [host, port] = addr.split(":");
  const socket = net.connect(Number(port), host);
  const client = { socket, lines: [], buffer: "" };
  socket.on("data", (data) => {
    client.buffer += data.toString("utf8");
    let newline;
    while ((newline = client.buffer.indexOf("\n")) >= 0) {
      client.lines.push(client.buffer.slice(0, newline));
      client.buffer = client.buffer.slice(newline + 1);
    }
  });
  client.send = (line) => socket.write(line + "\n");
  // Waits until a line starting with `text` has arrived.
  client.waitFor = async (text) => {
    const start = Date.now();
    while (!client.lines.some((line) => line.startsWith(text))) {
      if (Date.now() - start > STEP_TIMEOUT) {
        throw new Error(`TCP client never got ${JSON.stringify(text)}; got ${JSON.stringify(client.lines)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  return client;
}

/// Opens the page and logs in as `nick`.
async function join(browser, nick) {
  const page = await browser.newPage();
  await page.goto(webUrl);
  await page.waitForSelector("#state.online", { timeout: STEP_TIMEOUT });
  await say(page, nick);
  await seen(page, `* hello ${nick}, you are in`);
  return page;
}

async function say(page, text) {
  await page.fill("#input", text);
  await page.press("#input", "Enter");
}

/// Waits until the page's log shows a line starting with `text`.
async function seen(page, text) {
  await page.waitForFunction(
    (wanted) => [...document.querySelectorAll("#log div")].some((d) => d.textContent.startsWith(wanted)),
    text,
    { timeout: STEP_TIMEOUT },
  );
}

/// Resolves with the next line written to this process's stdin.
function nextStdinLine() {
  const lines = readline.createInterface({ input: process.stdin });
  return new Promise((resolve) => lines.once("line", (line) => { lines.close(); resolve(line); }));
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  try {
    const alice = await join(browser, "alice");
    const bob = await join(browser, "bob");
    await seen(alice, "* bob joined");

    const carol = tcpClient(tcpAddr);
    carol.send("carol");
    await carol.waitFor("* hello carol");
    await seen(alice, "* carol joined");

    await say(alice, "hi from alice");
    await seen(bob, "alice: hi from alice");
    await carol.waitFor("alice: hi from alice");

    carol.send("hi from carol");
    await seen(alice, "carol: hi from carol");
    await seen(bob, "carol: hi from carol");

    await say(bob, "/who");
    await seen(bob, "* online: alice, bob, carol");

    await alice.screenshot({ path: screenshot, fullPage: true });
    carol.socket.destroy();

    // The server restarts: the page goes offline, reconnects, and logs alice in again.
    console.log("restart the server");
    await nextStdinLine();
    await alice.waitForFunction(
      () => [...document.querySelectorAll("#log div")]
        .filter((d) => d.textContent.startsWith("* hello alice")).length >= 2,
      null,
      { timeout: STEP_TIMEOUT },
    );
    await alice.waitForSelector("#state.online", { timeout: STEP_TIMEOUT });
    console.log("browser test: two pages and a TCP client chatted; screenshot at " + screenshot);
  } finally {
    await browser.close();
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error("browser test failed: " + (error && error.stack ? error.stack : error));
    process.exit(1);
  },
);
