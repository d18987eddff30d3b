// End-to-end: the page in Debian's Chromium against a real chat_app.
// CHROMIUM_PATH names the browser (default /usr/bin/chromium); screenshots go
// to CHAT_TEST_OUTPUT (default build/www-tests).

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

import { ChatServer, CuttableProxy, RedisServer } from "./chat-server.mjs";

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
    // Both in a room too, which hal is reading.
    await joinRoom(ivy, "den");
    await joinRoom(hal, "den");
    await openRoom(ivy, "");

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
    await expectUsers(hal, ["hal", "ivy"]); // in den, again
    await expectUsers(ivy, ["hal", "ivy"]);
    // A new server keeps no history in memory: a new epoch, said in each room.
    await hal.locator("#messages .notice", { hasText: "Reconnected. The server's history started over" }).waitFor();
    await roomView(hal, "").locator(".notice", { hasText: "Reconnected" }).waitFor({ state: "attached" });
    await say(ivy, "back again");
    await messageIn(hal, "", "back again").waitFor({ state: "attached" });
    await openRoom(ivy, "den");
    await say(ivy, "back in den");
    await messageSaying(hal, "back in den").waitFor();
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

// Rooms (contract version 3). A room's view is the list whose data-room
// names it; the one shown is #messages.
const roomView = (page, room) => page.locator(`ol.messages[data-room=${JSON.stringify(room)}]`);
const roomEntry = (page, room) => page.locator(`#rooms li[data-room=${JSON.stringify(room)}]`);
const messageIn = (page, room, text) =>
  roomView(page, room).locator("li.msg").filter({ has: page.locator(".text", { hasText: text }) });
const textsIn = (page, room) => roomView(page, room).locator("li.msg .text").allTextContents();

async function joinRoom(page, typed) {
  const room = typed.trim();
  await page.locator("#room-name").fill(typed);
  await page.locator("#room-name").press("Enter");
  await roomView(page, room).locator(".notice", { hasText: `You joined ${room}` }).waitFor();
}

async function openRoom(page, room) {
  await roomEntry(page, room).locator(".room-open").click();
  await page.locator(`#messages[data-room=${JSON.stringify(room)}]`).waitFor();
}

// Waits until the room's view holds exactly `expected`, in that order.
async function expectTexts(page, room, expected) {
  await page.waitForFunction(
    ([room, expected]) => {
      const list = [...document.querySelectorAll("ol.messages")].find((ol) => ol.dataset.room === room);
      const texts = list ? [...list.querySelectorAll("li.msg .text")].map((p) => p.textContent) : [];
      return JSON.stringify(texts) === JSON.stringify(expected);
    },
    [room, expected],
    { timeout: waitMs },
  ).catch(async (error) => {
    throw new Error(`expected ${room || "the lobby"} to show ${expected.join(", ")}; it shows ${(await textsIn(page, room)).join(", ")}`, { cause: error });
  });
}

// Waits until the busiest rooms list `room` with `users`. The server may
// answer a rooms request from a list up to a second old, so the page asks
// again (↻) every 300 ms until it does.
async function expectBusiest(page, room, users) {
  await page.waitForFunction(
    ([room, users]) => {
      const shown = [...document.querySelectorAll("#busiest li")].some(
        (item) => item.dataset.room === room && item.querySelector(".users-in")?.textContent === String(users),
      );
      if (!shown) {
        document.querySelector("#refresh-rooms").click();
      }
      return shown;
    },
    [room, users],
    { polling: 300, timeout: waitMs },
  ).catch(async (error) => {
    throw new Error(`expected ${room} with ${users} in the busiest rooms; the page shows ${(await page.locator("#busiest li").allTextContents()).join(", ")}`, { cause: error });
  });
}

describe("rooms in Chromium (contract v3)", () => {
  test("two users in two rooms: a message stays in its room, unread counts, leave", async () => {
    const amy = await loggedInPage("ria");
    const bob = await loggedInPage("sam");
    for (const page of [amy, bob]) {
      await joinRoom(page, "red");
      await joinRoom(page, "blue");
      assert.equal(await page.locator("#room-title").textContent(), "blue");
      assert.equal(new URL(page.url()).hash, "#blue");
    }
    await expectUsers(amy, ["ria", "sam"]); // blue's users
    await roomView(amy, "blue").locator(".notice", { hasText: "sam joined" }).waitFor();
    await expectUsers(amy, ["ria", "sam"]);

    await openRoom(amy, "red");
    assert.equal(new URL(amy.url()).hash, "#red");
    await say(amy, "only in red");
    await messageIn(bob, "red", "only in red").waitFor({ state: "attached" });
    // bob reads blue: red counts one unread.
    await roomEntry(bob, "red").locator(".unread", { hasText: "1" }).waitFor();
    assert.ok(await roomEntry(bob, "blue").locator(".unread").isHidden());
    assert.equal(await bob.title(), "(1) Chat");
    await say(bob, "only in blue");
    await say(bob, "blue again");
    await messageIn(amy, "blue", "blue again").waitFor({ state: "attached" });
    await roomEntry(amy, "blue").locator(".unread", { hasText: "2" }).waitFor();
    assert.ok(await roomEntry(amy, "red").locator(".unread").isHidden(), "own messages and the room shown count nothing");
    await openRoom(amy, "");
    await say(amy, "in the lobby");
    await messageIn(bob, "", "in the lobby").waitFor({ state: "attached" });
    await roomEntry(bob, "").locator(".unread", { hasText: "1" }).waitFor();
    await amy.screenshot({ path: path.join(outputDir, "rooms.png") });

    // Each view holds its own room's messages only, in both pages (the
    // lobby also what earlier tests said there).
    for (const page of [amy, bob]) {
      await expectTexts(page, "red", ["only in red"]);
      await expectTexts(page, "blue", ["only in blue", "blue again"]);
      const lobby = await textsIn(page, "");
      assert.equal(lobby.at(-1), "in the lobby");
      assert.deepEqual(lobby.filter((text) => /only in|blue again/.test(text)), []);
    }
    await openRoom(bob, "red");
    assert.ok(await roomEntry(bob, "red").locator(".unread").isHidden(), "read once shown");
    await messageSaying(bob, "only in red").waitFor();
    assert.equal(await bob.title(), "(1) Chat", "the lobby's is still unread");

    // The busiest rooms, from the server.
    await expectBusiest(bob, "red", 2);
    await expectBusiest(bob, "blue", 2);

    // amy leaves red: bob sees it there, and only there.
    await roomEntry(amy, "red").locator(".room-leave").click();
    await roomEntry(amy, "red").waitFor({ state: "detached" });
    assert.equal(await roomView(amy, "red").count(), 0);
    await expectUsers(bob, ["sam"]);
    await roomView(bob, "red").locator(".notice", { hasText: "ria left" }).waitFor();
    assert.equal(await roomView(bob, "blue").locator(".notice", { hasText: "ria left" }).count(), 0);
    await expectBusiest(bob, "red", 1);
    // The leave button above the messages leaves the room shown, for the lobby.
    await bob.locator("#leave-room").click();
    await bob.locator("#messages[data-room='']").waitFor();
    assert.equal(new URL(bob.url()).hash, "");
    await roomEntry(bob, "red").waitFor({ state: "detached" });
    await bob.close();
    await openRoom(amy, "blue");
    await expectUsers(amy, ["ria"]);
    await amy.close();
  });

  test("a link to #room opens it; a bad room name is explained before it is sent", async () => {
    const url = new URL(server.url);
    url.hash = "#caf%C3%A9%20au%20lait";
    const tom = await loggedInPage("tom", undefined, url.href);
    await roomView(tom, "café au lait").locator(".notice", { hasText: "You joined café au lait" }).waitFor();
    assert.equal(await tom.locator("#room-title").textContent(), "café au lait");
    await tom.locator("#messages[data-room='café au lait']").waitFor();

    for (const [name, problem] of [["@everyone", /begin with @/], ["x".repeat(65), /at most 64/], ["   ", /enter a room name/]]) {
      await tom.locator("#room-name").fill(name);
      await tom.locator("#room-name").press("Enter");
      await tom.locator("#room-error", { hasText: problem }).waitFor();
    }
    assert.equal(await tom.locator("#rooms li").count(), 2, "the lobby and café au lait");
    assert.deepEqual(pageErrors, []);

    // A room name is trimmed; Back goes to the room shown before.
    await joinRoom(tom, "  spaced  ");
    assert.equal(new URL(tom.url()).hash, "#spaced");
    await tom.goBack();
    await tom.locator("#messages[data-room='café au lait']").waitFor();
    // A link on the page (or an edited address) opens a room too.
    await tom.evaluate(() => { window.location.hash = "#green"; });
    await roomView(tom, "green").locator(".notice", { hasText: "You joined green" }).waitFor();
    await tom.locator("#messages[data-room='green']").waitFor();
    // Someone who follows the link lands in the same room.
    const uma = await loggedInPage("uma", undefined, tom.url());
    await uma.locator("#messages[data-room='green']").waitFor();
    await expectUsers(uma, ["tom", "uma"]);
    await tom.close();
    await uma.close();
  });

  test("a cut connection is resumed in the lobby and in both rooms: nothing lost, nothing twice", async () => {
    const proxy = await CuttableProxy.start(server.port);
    try {
      const cy = await loggedInPage("cy", undefined, proxy.url);
      const dee = await loggedInPage("dee");
      for (const page of [cy, dee]) {
        await joinRoom(page, "north");
        await joinRoom(page, "south");
      }
      await say(dee, "south before");
      await openRoom(dee, "north");
      await say(dee, "north before");
      await expectTexts(cy, "north", ["north before"]);
      await expectTexts(cy, "south", ["south before"]);

      proxy.cut();
      await cy.locator("#status", { hasText: "Trying again" }).waitFor();
      await roomView(cy, "north").locator(".notice.error", { hasText: "Disconnected" }).waitFor({ state: "attached" });
      await roomView(cy, "south").locator(".notice.error", { hasText: "Disconnected" }).waitFor();
      // The server saw cy go from every room.
      await roomView(dee, "north").locator(".notice", { hasText: "cy left" }).waitFor();
      await roomView(dee, "south").locator(".notice", { hasText: "cy left" }).waitFor({ state: "attached" });
      for (let i = 1; i <= 3; ++i) {
        await say(dee, `north missed ${i}`);
      }
      await openRoom(dee, "south");
      await say(dee, "south missed");
      await openRoom(dee, "");
      await say(dee, "lobby missed");
      await messageIn(dee, "", "lobby missed").waitFor({ state: "attached" });
      await cy.screenshot({ path: path.join(outputDir, "rooms-cut.png") });

      proxy.restore();
      await cy.locator("#status", { hasText: "Online as cy" }).waitFor({ timeout: 30000 });
      await roomView(cy, "north").locator(".notice", { hasText: "Reconnected. 3 messages you missed" }).waitFor({ state: "attached" });
      await roomView(cy, "south").locator(".notice", { hasText: "Reconnected. 1 message you missed" }).waitFor({ state: "attached" });
      await roomView(cy, "").locator(".notice", { hasText: "Reconnected. 1 message you missed" }).waitFor({ state: "attached" });
      await roomView(dee, "north").locator(".notice", { hasText: "cy joined" }).waitFor({ state: "attached" });
      await openRoom(dee, "north");
      await say(dee, "north after");
      await openRoom(dee, "south");
      await say(dee, "south after");
      await expectTexts(cy, "north", ["north before", "north missed 1", "north missed 2", "north missed 3", "north after"]);
      await expectTexts(cy, "south", ["south before", "south missed", "south after"]);
      // The lobby (where earlier tests talked too) has it once, last.
      await messageIn(cy, "", "lobby missed").waitFor({ state: "attached" });
      assert.equal(await messageIn(cy, "", "lobby missed").count(), 1);
      assert.equal((await textsIn(cy, "")).at(-1), "lobby missed");
      // Consecutive ids in each room: nothing in between was lost.
      for (const room of ["north", "south"]) {
        const ids = await roomView(cy, room).locator("li.msg").evaluateAll((items) => items.map((item) => Number(item.dataset.id)));
        assert.deepEqual(ids, ids.map((_, i) => ids[0] + i), `${room}: ${ids}`);
      }
      // The room shown is still the one cy was reading, and cy can talk there.
      assert.equal(await cy.locator("#room-title").textContent(), "south");
      await say(cy, "cy is back");
      await expectTexts(dee, "south", ["south before", "south missed", "south after", "cy is back"]);
      await cy.close();
      await dee.close();
    } finally {
      await proxy.stop();
    }
  });

  test("scroll-back per room: each room pages its own history down to its beginning", async () => {
    const kept = await ChatServer.start({ args: ["--rate", "0", "--history-on-join", "3"] });
    try {
      const open = async (name, url = kept.url) => {
        const page = await browser.newPage({ viewport: { width: 1000, height: 500 } });
        page.setDefaultTimeout(waitMs);
        await page.goto(url);
        await logIn(page, name);
        await page.locator("#chat-view").waitFor({ state: "visible" });
        return page;
      };
      const pat = await open("pat");
      await joinRoom(pat, "short");
      for (let i = 0; i < 5; ++i) {
        await say(pat, `s${i}`);
      }
      await joinRoom(pat, "long");
      for (let i = 0; i < 120; ++i) {
        await say(pat, `m${i}`);
      }
      await messageIn(pat, "long", "m119").waitFor();
      await expectTexts(pat, "short", ["s0", "s1", "s2", "s3", "s4"]);

      const quin = await open("quin", new URL("#long", kept.url).href);
      await roomView(quin, "long").locator(".notice.boundary").waitFor();
      await joinRoom(quin, "short");
      // A list too short to scroll fills itself: short's beginning, with its own messages only.
      await roomView(quin, "short").locator(".notice.beginning").waitFor();
      await expectTexts(quin, "short", ["s0", "s1", "s2", "s3", "s4"]);
      await openRoom(quin, "long");
      const beginning = roomView(quin, "long").locator(".notice.beginning");
      for (let attempt = 0; attempt < 20 && !(await beginning.isVisible()); ++attempt) {
        const count = (await textsIn(quin, "long")).length;
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
      await expectTexts(quin, "long", Array.from({ length: 120 }, (_, i) => `m${i}`));
      // Each room keeps where its reader was.
      await quin.locator("#messages").evaluate((list) => { list.scrollTop = 200; });
      await openRoom(quin, "short");
      await openRoom(quin, "long");
      assert.equal(await quin.locator("#messages").evaluate((list) => list.scrollTop), 200);
      assert.ok(await quin.locator("#jump").isHidden(), "nothing new came below");
      await quin.screenshot({ path: path.join(outputDir, "rooms-history.png") });
      // The lobby had nothing: its beginning, empty.
      await openRoom(quin, "");
      await roomView(quin, "").locator(".notice.beginning").waitFor();
      await expectTexts(quin, "", []);
      await pat.close();
      await quin.close();
    } finally {
      assert.equal(await kept.stop(), 0);
    }
  });

  test("on a phone the rooms stay in reach above the messages", async () => {
    const vic = await loggedInPage("vic", { width: 380, height: 640 });
    await joinRoom(vic, "a room with a rather long name indeed");
    await joinRoom(vic, "tea");
    await openRoom(vic, "");
    const list = await vic.locator("#messages").boundingBox();
    assert.ok(list.height > 250, `the messages keep the room: ${list.height} px`);
    for (const room of ["", "tea"]) {
      assert.ok(await roomEntry(vic, room).isVisible());
    }
    await vic.screenshot({ path: path.join(outputDir, "rooms-phone.png") });
    await vic.close();
  });
});
