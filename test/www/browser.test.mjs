// End-to-end: the page in Debian's Chromium against a real chat_app.
// CHROMIUM_PATH names the browser (default /usr/bin/chromium); screenshots go
// to CHAT_TEST_OUTPUT (default build/www-tests).

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

import { ChatServer, RedisServer } from "./chat-server.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const outputDir = process.env.CHAT_TEST_OUTPUT ?? path.join(root, "build/www-tests");
const waitMs = 10000;

let server;
let browser;
const dialogs = [];
const pageErrors = [];

async function openPage({ width = 1000, height = 700 } = {}, url = server.url) {
  const page = await browser.newPage({ viewport: { width, height } });
  page.setDefaultTimeout(waitMs);
  page.on("dialog", (dialog) => {
    dialogs.push(dialog.message());
    dialog.dismiss().catch(() => {});
  });
  page.on("pageerror", (error) => pageErrors.push(error.message));
  await page.goto(url);
  return page;
}

// Keyboard only: the name field has the focus (once the page is ready), Enter submits.
async function logIn(page, name) {
  await page.locator("#name:enabled:focus").waitFor();
  await page.keyboard.type(name);
  await page.keyboard.press("Enter");
}

async function loggedInPage(name, viewport, url = server.url) {
  const page = await openPage(viewport, url);
  await logIn(page, name);
  await page.locator("#chat-view").waitFor({ state: "visible" });
  return page;
}

async function say(page, text) {
  await page.locator("#text").fill(text);
  await page.locator("#text").press("Enter");
}

const users = (page) => page.locator("#users li");
const userNamed = (page, name) => users(page).filter({ hasText: new RegExp(`^${name}( \\(you\\))?$`) });
const messageSaying = (page, text) => page.locator("#messages li.msg").filter({ has: page.locator(".text", { hasText: text }) });

async function expectUsers(page, names) {
  const shown = async () => (await users(page).allTextContents()).join(", ");
  await page.waitForFunction(
    (expected) => {
      const shown = [...document.querySelectorAll("#users li")].map((li) => li.textContent.replace(/ \(you\)$/, ""));
      return JSON.stringify(shown) === JSON.stringify(expected) &&
        document.querySelector("#user-count").textContent === String(expected.length);
    },
    [...names].sort((a, b) => a.localeCompare(b)),
    { timeout: waitMs },
  ).catch(async (error) => {
    throw new Error(`expected users ${names.join(", ")}; the page shows ${await shown()}`, { cause: error });
  });
}

before(async () => {
  mkdirSync(outputDir, { recursive: true });
  server = await ChatServer.start();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox"],
  });
});

after(async () => {
  await browser?.close();
  const code = await server?.stop();
  assert.equal(code, 0, `chat_app exit code\n${server?.log}`);
  assert.deepEqual(pageErrors, [], "uncaught errors in the page");
});

describe("the chat page in Chromium", () => {
  test("pages on two nodes of a cluster are in one room (rule 15)", async () => {
    const redis = await RedisServer.start();
    const nodes = [];
    try {
      for (const id of ["a", "b"]) {
        const node = await ChatServer.start({ args: ["--redis", redis.url, "--node-id", id] });
        nodes.push(node);
        await node.waitForLog("the room can be reached");
      }
      const amy = await loggedInPage("amy", undefined, nodes[0].url);
      const bob = await loggedInPage("bob", undefined, nodes[1].url);
      await expectUsers(amy, ["amy", "bob"]);
      await expectUsers(bob, ["amy", "bob"]);
      await say(bob, "from the other node");
      await messageSaying(amy, "from the other node").waitFor();
      await messageSaying(bob, "from the other node").waitFor();
      await bob.close();
      await expectUsers(amy, ["amy"]);
      await amy.close();
    } finally {
      for (const node of nodes) {
        assert.equal(await node.stop(), 0, node.log);
      }
      await redis.stop();
    }
  });

  test("a big room's presence frames keep the list and the count (rule 16)", async () => {
    const big = await ChatServer.start({
      args: ["--presence-batch-above", "1", "--presence-interval", "0.05", "--welcome-list-limit", "2"],
    });
    try {
      const url = big.url;
      const amy = await loggedInPage("amy", undefined, url);
      const bob = await loggedInPage("bob", undefined, url);
      const cat = await loggedInPage("cat", undefined, url);
      await expectUsers(amy, ["amy", "bob", "cat"]); // from presence frames
      await amy.locator("#messages .notice", { hasText: "1 joined" }).first().waitFor();
      // cat's welcome lists two (cat and the latest, bob) and says three are online.
      await cat.locator("#user-count", { hasText: "3" }).waitFor();
      await cat.locator("#users li.more", { hasText: "and 1 more" }).waitFor();
      await bob.close();
      await amy.locator("#messages .notice", { hasText: "1 left" }).waitFor();
      await cat.locator("#user-count", { hasText: "2" }).waitFor();
      for (const page of [amy, cat]) {
        await page.close();
      }
    } finally {
      assert.equal(await big.stop(), 0, big.log);
    }
  });

  test("two people log in, see each other, chat; one leaves", async () => {
    const amy = await loggedInPage("amy");
    const bob = await loggedInPage("bob");
    await expectUsers(amy, ["amy", "bob"]);
    await expectUsers(bob, ["amy", "bob"]);
    await amy.locator("#messages .notice", { hasText: "bob joined" }).waitFor();
    assert.match(await amy.locator("#status").textContent(), /Online as amy/);

    await say(amy, "hello bob");
    await say(bob, "hi amy, all well?");
    for (const page of [amy, bob]) {
      await messageSaying(page, "hello bob").waitFor();
      await messageSaying(page, "hi amy, all well?").waitFor();
    }
    // Own messages are set apart, others' are not; each shows sender and time.
    assert.match(await messageSaying(amy, "hello bob").getAttribute("class"), /\bown\b/);
    assert.doesNotMatch(await messageSaying(bob, "hello bob").getAttribute("class"), /\bown\b/);
    assert.equal(await messageSaying(bob, "hello bob").locator(".who").textContent(), "amy");
    assert.match(await messageSaying(bob, "hello bob").locator("time").getAttribute("datetime"), /^\d{4}-\d\d-\d\dT/);
    assert.equal(await amy.locator("#text").inputValue(), "", "the input is cleared after sending");
    await amy.screenshot({ path: path.join(outputDir, "chat.png") });

    await bob.close();
    await expectUsers(amy, ["amy"]);
    await amy.locator("#messages .notice", { hasText: "bob left" }).waitFor();
    await amy.locator("#logout").click();
    await amy.locator("#login-view").waitFor({ state: "visible" });
    await amy.close();
  });

  test("an invalid or taken name is refused with a clear message, then another works", async () => {
    const cat = await loggedInPage("cat");
    const other = await openPage();
    await logIn(other, "   ");
    assert.match(await other.locator("#login-error").textContent(), /enter a name/);
    await other.locator("#name").fill("x".repeat(33));
    await other.locator("#name").press("Enter");
    assert.match(await other.locator("#login-error").textContent(), /at most 32/);

    await other.locator("#name").fill("cat");
    await other.locator("#name").press("Enter");
    await other.locator("#login-error", { hasText: "name taken" }).waitFor();
    assert.ok(await other.locator("#login-view").isVisible());
    await other.screenshot({ path: path.join(outputDir, "name-taken.png") });

    await other.locator("#name").fill("cat2");
    await other.locator("#name").press("Enter");
    await other.locator("#chat-view").waitFor({ state: "visible" });
    await expectUsers(other, ["cat", "cat2"]);
    await other.close();
    await cat.close();
  });

  test("message text is shown as text, never run as HTML", async () => {
    const dan = await loggedInPage("dan");
    const eve = await loggedInPage("eve");
    const attack = "<img src=x onerror=alert(1)>";
    await say(dan, attack);
    const shown = messageSaying(eve, attack);
    await shown.waitFor();
    assert.equal(await shown.locator(".text").textContent(), attack);
    assert.equal(await eve.locator("#messages img").count(), 0);
    assert.equal(await dan.locator("#messages img").count(), 0);
    assert.deepEqual(dialogs, []);
    await dan.close();
    await eve.close();
  });

  test("reading older messages is not interrupted by new ones", async () => {
    const fay = await loggedInPage("fay", { width: 380, height: 640 });
    const gus = await loggedInPage("gus");
    for (let i = 1; i <= 30; ++i) {
      await say(gus, `line ${i}`);
    }
    await messageSaying(fay, "line 30").waitFor();
    const list = fay.locator("#messages");
    assert.ok(await list.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight < 48), "follows while at the bottom");
    await fay.screenshot({ path: path.join(outputDir, "phone.png") });

    await list.evaluate((el) => { el.scrollTop = 0; });
    await say(gus, "while fay reads");
    await messageSaying(fay, "while fay reads").waitFor({ state: "attached" });
    assert.equal(await list.evaluate((el) => el.scrollTop), 0, "the view stays where the reader put it");
    await fay.locator("#jump").click();
    assert.ok(await list.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight < 48));
    await fay.close();
    await gus.close();
  });

  test("a server restart is survived by reconnecting with the same name", async () => {
    const hal = await loggedInPage("hal");
    const ivy = await loggedInPage("ivy");
    await expectUsers(hal, ["hal", "ivy"]);

    const port = server.port;
    assert.equal(await server.stop(), 0, "the server stops cleanly with the pages connected");
    for (const page of [hal, ivy]) {
      await page.locator("#status", { hasText: "Trying again" }).waitFor();
      await page.locator("#messages .notice.error", { hasText: "going away" }).waitFor();
    }
    await hal.screenshot({ path: path.join(outputDir, "reconnecting.png") });

    server = await ChatServer.start({ port });
    for (const page of [hal, ivy]) {
      await page.locator("#status", { hasText: "Online as" }).waitFor({ timeout: 30000 });
    }
    await expectUsers(hal, ["hal", "ivy"]);
    await expectUsers(ivy, ["hal", "ivy"]);
    await hal.locator("#messages .notice", { hasText: "Reconnected" }).waitFor();
    await say(ivy, "back again");
    await messageSaying(hal, "back again").waitFor();
    await hal.close();
    await ivy.close();
  });

  test("every request of the page succeeds, the icon included", async () => {
    const page = await browser.newPage();
    const failed = [];
    page.on("response", (response) => {
      if (response.status() >= 400) {
        failed.push(`${response.status()} ${response.url()}`);
      }
    });
    page.on("requestfailed", (request) => failed.push(`failed ${request.url()}`));
    page.on("console", (message) => {
      if (message.type() === "error") {
        failed.push(`console: ${message.text()}`);
      }
    });
    await page.goto(server.url);
    await logIn(page, "kim");
    await page.locator("#chat-view").waitFor({ state: "visible" });
    assert.deepEqual(failed, []);
    await page.close();
  });

  test("without protobuf.js the page says why, styled, with the form disabled", async () => {
    const page = await browser.newPage();
    await page.route("**/vendor/protobuf.min.js", (route) => route.fulfill({ status: 404, body: "not found" }));
    await page.goto(server.url);
    const error = page.locator("#login-error");
    await error.filter({ hasText: "protobuf.js" }).waitFor();
    assert.match(await error.textContent(), /npm/);
    assert.ok(await page.locator("#join").isDisabled());
    assert.ok(await page.locator("#name").isDisabled());
    assert.equal(await page.locator("#status").getAttribute("data-state"), "error");
    const color = await error.evaluate((node) => getComputedStyle(node).borderTopStyle);
    assert.equal(color, "solid", "the error stands out");
    await page.screenshot({ path: path.join(outputDir, "no-protobuf.png") });
    await page.close();
  });

  test("the content limit comes from the server", async () => {
    const small = await ChatServer.start({ args: ["--max-content-bytes", "10"] });
    try {
      const page = await browser.newPage();
      page.setDefaultTimeout(waitMs);
      await page.goto(small.url);
      await logIn(page, "lea");
      await page.locator("#chat-view").waitFor({ state: "visible" });
      await say(page, "0123456789A");
      await page.locator("#send-error", { hasText: "at most 10" }).waitFor();
      await say(page, "0123456789");
      await messageSaying(page, "0123456789").waitFor();
      await page.close();
    } finally {
      assert.equal(await small.stop(), 0);
    }
  });

  test("history: a newcomer sees what was said, and older pages down to the beginning", async () => {
    const kept = await ChatServer.start({ args: ["--rate", "0", "--history-on-join", "3"] });
    try {
      const open = async (name) => {
        const page = await browser.newPage({ viewport: { width: 1000, height: 500 } });
        page.setDefaultTimeout(waitMs);
        await page.goto(kept.url);
        await logIn(page, name);
        await page.locator("#chat-view").waitFor({ state: "visible" });
        return page;
      };
      const pat = await open("pat");
      for (let i = 0; i < 120; ++i) {
        await say(pat, `m${i}`);
      }
      await messageSaying(pat, "m119").waitFor();
      const quin = await open("quin");
      // The newest 3 right above the boundary, then the welcome. (Older pages
      // may already be coming: a list too short to scroll fills itself.)
      await quin.locator("#messages .notice.boundary").waitFor();
      const shown = async () => quin.locator("#messages li.msg .text").allTextContents();
      const aboveBoundary = await quin.locator("#messages li").evaluateAll((items) => {
        const boundary = items.findIndex((item) => item.classList.contains("boundary"));
        return items.slice(boundary - 3, boundary).map((item) => item.querySelector(".text")?.textContent);
      });
      assert.deepEqual(aboveBoundary, ["m117", "m118", "m119"]);
      await quin.screenshot({ path: path.join(outputDir, "history-join.png") });
      // Scrolling to the top asks for older pages until the first message.
      const beginning = quin.locator("#messages .notice.beginning", { hasText: "Beginning of the conversation" });
      for (let attempt = 0; attempt < 20 && !(await beginning.isVisible()); ++attempt) {
        const count = (await shown()).length;
        await quin.locator("#messages").evaluate((list) => {
          list.scrollTop = 0;
          list.dispatchEvent(new Event("scroll"));
        });
        await quin.waitForFunction(
          (before) => document.querySelectorAll("#messages li.msg").length > before ||
            document.querySelector("#messages .notice.beginning") !== null,
          count,
        );
      }
      await beginning.waitFor();
      const all = await shown();
      assert.equal(all.length, 120);
      assert.deepEqual(all.slice(0, 2), ["m0", "m1"]);
      assert.equal(all.at(-1), "m119");
      await quin.screenshot({ path: path.join(outputDir, "history-beginning.png") });
      await pat.close();
      await quin.close();
    } finally {
      assert.equal(await kept.stop(), 0);
    }
  });
});
