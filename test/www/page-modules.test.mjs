// The page's modules without a browser: backoff, user list, codec, and the
// connection's login/reconnect logic against a scripted WebSocket.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { describe, test } from "node:test";

import { backoffDelay } from "../../www/js/backoff.js";
import { createCodec } from "../../www/js/codec.js";
import { ChatConnection, State } from "../../www/js/connection.js";
import { Roster } from "../../www/js/roster.js";

const require = createRequire(import.meta.url);
const protobuf = require("protobufjs");
const schema = readFileSync(new URL("../../proto/chat.proto", import.meta.url), "utf8");
const codec = createCodec(protobuf, schema);

// What a browser's binaryType "arraybuffer" hands over: exactly the frame's
// bytes (node's encoder returns a view into a larger pool).
const arrayBufferOf = (bytes) => new Uint8Array(bytes).buffer;

describe("backoffDelay", () => {
  test("grows exponentially up to the cap, keeping at least half", () => {
    const options = { baseMs: 500, maxMs: 15000 };
    assert.equal(backoffDelay(0, options, () => 0), 250);
    assert.equal(backoffDelay(0, options, () => 1), 500);
    assert.equal(backoffDelay(3, options, () => 1), 4000);
    assert.equal(backoffDelay(3, options, () => 0), 2000);
    assert.equal(backoffDelay(10, options, () => 1), 15000);
    assert.equal(backoffDelay(1000, options, () => 0.5), 11250);
  });

  test("jitter spreads the delays of one attempt", () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(4)));
    assert.ok(delays.size > 10, `only ${delays.size} distinct delays`);
    for (const delay of delays) {
      assert.ok(delay >= 4000 && delay <= 8000, `delay ${delay}`);
    }
  });
});

describe("Roster", () => {
  test("starts from the newcomer's list and follows the deltas", () => {
    const roster = new Roster();
    roster.reset({ zoe: "t1", amy: "t2" });
    roster.join("bob", "t3");
    assert.equal(roster.size, 3);
    assert.deepEqual(roster.entries().map(([name]) => name), ["amy", "bob", "zoe"]);
    assert.ok(roster.leave("zoe"));
    assert.ok(!roster.leave("zoe"));
    assert.ok(!roster.has("zoe"));
    roster.reset({});
    assert.equal(roster.size, 0);
  });
});

describe("Roster in a big room (rule 16)", () => {
  test("a partial welcome keeps the server's count; presence frames change it", () => {
    const roster = new Roster();
    roster.reset({ me: "t0", amy: "t1" }, 1500);
    assert.ok(roster.partial);
    assert.equal(roster.size, 1500);
    assert.equal(roster.unlisted, 1498);
    // A repeat of what the welcome showed changes nothing; an unlisted user
    // who leaves still counts.
    assert.deepEqual(roster.apply({ amy: "t1", bob: "t2", zed: "" }), { joined: 1, left: 1 });
    assert.equal(roster.size, 1500);
    assert.ok(roster.has("bob"));
    assert.deepEqual(roster.apply({ bob: "", amy: "" }), { joined: 0, left: 2 });
    assert.equal(roster.size, 1498);
    assert.deepEqual(roster.entries().map(([name]) => name), ["me"]);
  });

  test("a complete list counts exactly and ignores leaves of strangers", () => {
    const roster = new Roster();
    roster.reset({ me: "t0" });
    assert.ok(!roster.partial);
    assert.deepEqual(roster.apply({ ann: "t1", ghost: "" }), { joined: 1, left: 0 });
    assert.equal(roster.size, 2);
  });
});

describe("codec", () => {
  test("round-trips every field with the server's schema", () => {
    const message = { userName: "bob", type: "message", content: "hi", userList: {}, timestamp: 5, id: 41, epoch: "", history: [], room: "", rooms: {} };
    const frame = { userName: "ünï", type: "history", content: "", userList: { "ünï": "2026-11-29T05:00:00Z" }, timestamp: 1796000000123, id: 42, epoch: "e1", history: [message], room: "café ☕", rooms: { "café ☕": 3, b: 1 } };
    const decoded = codec.decode(arrayBufferOf(codec.encode(frame)));
    assert.deepEqual(decoded, frame);
  });

  test("decodes absent fields as defaults and rejects garbage", () => {
    assert.deepEqual(codec.decode(new Uint8Array()), { userName: "", type: "", content: "", userList: {}, timestamp: 0, id: 0, epoch: "", history: [], room: "", rooms: {} });
    assert.throws(() => codec.decode(new Uint8Array([0x0a, 0x05, 0x61])));
    assert.throws(() => codec.encode({ type: 7 }));
  });
});

// A WebSocket whose peer is the test.
class ScriptedSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  static created = [];

  readyState = ScriptedSocket.CONNECTING;
  sent = [];

  constructor(url) {
    this.url = url;
    ScriptedSocket.created.push(this);
  }

  send(bytes) {
    assert.equal(this.readyState, ScriptedSocket.OPEN, "send on a socket that is not open");
    this.sent.push(codec.decode(bytes));
  }

  close() {
    this.readyState = ScriptedSocket.CLOSING;
  }

  // The peer's side.
  open() {
    this.readyState = ScriptedSocket.OPEN;
    this.onopen?.({});
  }

  receive(fields) {
    this.onmessage?.({ data: arrayBufferOf(codec.encode(fields)) });
  }

  drop(code = 1006, reason = "") {
    this.readyState = ScriptedSocket.CLOSED;
    this.onclose?.({ code, reason });
  }
}

class ManualTimers {
  pending = new Map();
  nowMs = 0;
  #next = 1;

  now() {
    return this.nowMs;
  }

  setTimeout(callback, delayMs) {
    const id = this.#next++;
    this.pending.set(id, { callback, delayMs });
    return id;
  }

  clearTimeout(id) {
    this.pending.delete(id);
  }

  fireAll() {
    const due = [...this.pending.values()];
    this.pending.clear();
    for (const { callback } of due) {
      callback();
    }
  }
}

function connectionUnderTest() {
  ScriptedSocket.created = [];
  const timers = new ManualTimers();
  const connection = new ChatConnection({ url: "ws://test/ws", codec, WebSocket: ScriptedSocket, timers });
  const events = [];
  for (const type of ["state", "online", "refused", "frame", "error", "history"]) {
    connection.addEventListener(type, ({ detail }) => events.push({ type, ...detail }));
  }
  return { connection, timers, events, sockets: ScriptedSocket.created };
}

describe("ChatConnection", () => {
  test("logs in, takes the trimmed name and passes broadcasts on", () => {
    const { connection, events, sockets } = connectionUnderTest();
    connection.login("amy");
    assert.equal(connection.state, State.connecting);
    sockets[0].open();
    assert.deepEqual(sockets[0].sent.map((f) => [f.type, f.userName]), [["login", "amy"]]);
    assert.equal(connection.send("too early"), false);
    sockets[0].receive({ type: "login", userName: "amy", userList: { amy: "t" } });
    assert.equal(connection.state, State.online);
    assert.deepEqual(events.find((e) => e.type === "online"), { type: "online", name: "amy", userList: { amy: "t" }, online: 0, reconnected: false, sameHistory: false });
    assert.ok(connection.send("hi"));
    assert.deepEqual(sockets[0].sent.at(-1).content, "hi");
    sockets[0].receive({ type: "message", userName: "bob", content: "<b>x</b>", id: 1, timestamp: 5 });
    sockets[0].receive({ type: "heartbeat", timestamp: 6 });
    sockets[0].receive({ type: "error", content: "rate limited" });
    assert.deepEqual(events.filter((e) => e.type === "frame").map((e) => e.frame.content), ["<b>x</b>"]);
    assert.deepEqual(events.filter((e) => e.type === "error").map((e) => e.content), ["rate limited"]);
  });

  test("a refused name waits on the open socket for another", () => {
    const { connection, timers, events, sockets } = connectionUnderTest();
    connection.login("amy");
    sockets[0].open();
    sockets[0].receive({ type: "error", content: "name taken" });
    assert.equal(connection.state, State.refused);
    assert.deepEqual(events.filter((e) => e.type === "refused").map((e) => e.reason), ["name taken"]);
    assert.equal(timers.pending.size, 0, "a refusal is not retried by itself");
    connection.login("amy2");
    assert.equal(sockets.length, 1);
    assert.equal(sockets[0].sent.at(-1).userName, "amy2");
    sockets[0].receive({ type: "error", content: "name taken" });
    // If the socket closes while the user thinks, nothing reconnects...
    sockets[0].drop(1000);
    assert.equal(connection.state, State.idle);
    assert.equal(timers.pending.size, 0);
    // ...and the next try opens a new one.
    connection.login("amy3");
    assert.equal(sockets.length, 2);
    sockets[1].open();
    assert.equal(sockets[1].sent.at(-1).userName, "amy3");
  });

  test("a drop reconnects with backoff and logs in again with the same name", () => {
    const { connection, timers, events, sockets } = connectionUnderTest();
    connection.login("  amy ");
    sockets[0].open();
    sockets[0].receive({ type: "login", userName: "amy", userList: { amy: "t" } });
    sockets[0].drop(1001, "");
    assert.equal(connection.state, State.waiting);
    const waiting = events.findLast((e) => e.type === "state");
    assert.equal(waiting.code, 1001);
    assert.match(waiting.reason, /going away/);
    assert.equal(timers.pending.size, 1);
    timers.fireAll();
    assert.equal(sockets.length, 2);
    sockets[1].drop(1006); // the server is still down
    const delays = [...timers.pending.values()].map((t) => t.delayMs);
    assert.equal(delays.length, 1);
    assert.ok(delays[0] >= 500 && delays[0] <= 1000, `second delay ${delays[0]}`);
    timers.fireAll();
    sockets[2].open();
    assert.deepEqual(sockets[2].sent.map((f) => [f.type, f.userName]), [["login", "amy"]]);
    // The old connection still holds the name on the server: retry later.
    sockets[2].receive({ type: "error", content: "name taken" });
    assert.equal(connection.state, State.waiting);
    assert.equal(events.filter((e) => e.type === "refused").length, 0);
    timers.fireAll();
    assert.equal(sockets.length, 3, "retried on the same socket");
    assert.equal(sockets[2].sent.length, 2);
    sockets[2].receive({ type: "login", userName: "amy", userList: { amy: "t", bob: "u" } });
    assert.equal(connection.state, State.online);
    assert.equal(events.findLast((e) => e.type === "online").reconnected, true);
    // Attempts start over after a success.
    sockets[2].drop(1006);
    const [{ delayMs }] = [...timers.pending.values()];
    assert.ok(delayMs <= 500, `first delay after a success ${delayMs}`);
  });

  test("a name still taken longer than the server holds a dropped connection asks for another", () => {
    const { connection, timers, events, sockets } = connectionUnderTest();
    connection.login("amy");
    sockets[0].open();
    sockets[0].receive({ type: "login", userName: "amy", userList: { amy: "t" } });
    sockets[0].drop(1006);
    timers.fireAll();
    sockets[1].open();
    sockets[1].receive({ type: "error", content: "name taken" }); // maybe our old connection
    assert.equal(connection.state, State.waiting);
    timers.nowMs += 29000;
    timers.fireAll();
    sockets[1].receive({ type: "error", content: "name taken" });
    assert.equal(connection.state, State.waiting, "within the server's idle timeout: retried");
    timers.nowMs += 2000;
    timers.fireAll();
    sockets[1].receive({ type: "error", content: "name taken" });
    assert.equal(connection.state, State.refused, "someone else has it now");
    assert.deepEqual(events.findLast((e) => e.type === "refused"), { type: "refused", reason: "name taken", taken: true });
    assert.equal(timers.pending.size, 0, "no more retries");
    // Another name works on the same socket, as a first login.
    connection.login("amy2");
    sockets[1].receive({ type: "login", userName: "amy2", userList: { amy2: "t" } });
    assert.equal(events.findLast((e) => e.type === "online").reconnected, false);
  });

  test("a drop resumes from the last id and epoch: nothing missed, nothing twice", () => {
    const { connection, timers, events, sockets } = connectionUnderTest();
    const message = (id) => ({ type: "message", userName: "bob", content: `m${id}`, id, timestamp: id });
    connection.login("amy");
    sockets[0].open();
    assert.equal(sockets[0].sent[0].id, 0, "a first login asks for nothing in particular");
    sockets[0].receive({ type: "login", userName: "amy", userList: { amy: "t" }, id: 2, epoch: "e1" });
    sockets[0].receive({ type: "history", history: [message(1), message(2)] });
    assert.deepEqual(events.findLast((e) => e.type === "history").kind, "join");
    sockets[0].receive(message(3));
    sockets[0].drop(1006);
    timers.fireAll();
    sockets[1].open();
    assert.deepEqual([sockets[1].sent[0].id, sockets[1].sent[0].epoch], [3, "e1"]);
    sockets[1].receive({ type: "login", userName: "amy", userList: { amy: "t" }, id: 5, epoch: "e1" });
    assert.equal(events.findLast((e) => e.type === "online").sameHistory, true);
    sockets[1].receive({ type: "history", history: [message(4), message(5)] });
    const resume = events.findLast((e) => e.type === "history");
    assert.deepEqual([resume.kind, resume.complete, resume.messages.map((m) => m.id)], ["resume", true, [4, 5]]);
    sockets[1].receive(message(5)); // a duplicate is not passed on
    sockets[1].receive(message(6));
    const live = events.filter((e) => e.type === "frame").map((e) => e.frame.id);
    assert.deepEqual(live, [3, 6]);
    // Older pages on request.
    assert.ok(connection.requestOlder(4));
    assert.deepEqual([sockets[1].sent.at(-1).type, sockets[1].sent.at(-1).id], ["history", 4]);
    sockets[1].receive({ type: "history", history: [message(1), message(2), message(3)] });
    assert.equal(events.findLast((e) => e.type === "history").kind, "older");
    assert.equal(connection.requestOlder(1), false, "nothing is older than 1");
  });

  test("a resume into another history, or with a gap, says so", () => {
    const { connection, timers, events, sockets } = connectionUnderTest();
    const message = (id) => ({ type: "message", userName: "bob", content: `m${id}`, id, timestamp: id });
    connection.login("amy");
    sockets[0].open();
    sockets[0].receive({ type: "login", userName: "amy", userList: { amy: "t" }, id: 10, epoch: "e1" });
    sockets[0].receive({ type: "history", history: [message(10)] });
    sockets[0].drop(1006);
    timers.fireAll();
    sockets[1].open();
    assert.equal(sockets[1].sent[0].id, 10, "from the welcome's id");
    sockets[1].receive({ type: "login", userName: "amy", userList: { amy: "t" }, id: 30, epoch: "e1" });
    sockets[1].receive({ type: "history", history: [message(25), message(30)].map((m, i) => ({ ...m, id: 29 + i })) });
    assert.equal(events.findLast((e) => e.type === "history").complete, false, "11..28 are missing");
    sockets[1].drop(1006);
    timers.fireAll();
    sockets[2].open();
    sockets[2].receive({ type: "login", userName: "amy", userList: { amy: "t" }, id: 3, epoch: "e2" });
    assert.equal(events.findLast((e) => e.type === "online").sameHistory, false);
    sockets[2].receive({ type: "history", history: [message(2), message(3)] });
    assert.equal(events.findLast((e) => e.type === "history").kind, "join");
    sockets[2].receive(message(4)); // counted afresh in the new history
    assert.equal(events.findLast((e) => e.type === "frame").frame.id, 4);
  });

  test("logout says so, and the close that follows does not reconnect", () => {
    const { connection, timers, sockets } = connectionUnderTest();
    connection.login("amy");
    sockets[0].open();
    sockets[0].receive({ type: "login", userName: "amy", userList: { amy: "t" } });
    connection.logout();
    assert.equal(sockets[0].sent.at(-1).type, "logout");
    assert.equal(connection.state, State.closed);
    sockets[0].drop(1000);
    assert.equal(connection.state, State.closed);
    assert.equal(timers.pending.size, 0);
  });

  test("logging in again while the old socket still closes starts a new one at once", () => {
    const { connection, timers, sockets } = connectionUnderTest();
    connection.login("amy");
    sockets[0].open();
    sockets[0].receive({ type: "login", userName: "amy", userList: { amy: "t" } });
    connection.logout();
    sockets[0].close(); // closing, the server's close frame not yet in
    connection.login("amy");
    assert.equal(sockets.length, 2, "a new socket, no wait for a retry");
    sockets[0].drop(1000); // the old one's close arrives late and is ignored
    assert.equal(timers.pending.size, 0);
    sockets[1].open();
    assert.deepEqual(sockets[1].sent.map((f) => f.type), ["login"]);
    sockets[1].receive({ type: "login", userName: "amy", userList: { amy: "t" } });
    assert.equal(connection.state, State.online);
  });
});
