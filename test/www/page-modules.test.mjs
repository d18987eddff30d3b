// The page's modules without a browser: backoff, user list, codec, rooms, and
// the connection's login/reconnect and rooms logic against a scripted
// WebSocket.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { describe, test } from "node:test";

import { backoffDelay } from "../../www/js/backoff.js";
import { createCodec } from "../../www/js/codec.js";
import { ChatConnection, State } from "../../www/js/connection.js";
import { Roster } from "../../www/js/roster.js";
import {
  Pacer, RoomList, Sequence, busiestRooms, hashForRoom, normalizeRoom, roomFromHash, roomProblem,
} from "../../www/js/rooms.js";

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
  for (const type of ["state", "online", "refused", "frame", "error", "history", "joined", "left", "rooms"]) {
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

describe("room names (rule 17)", () => {
  test("are trimmed and checked as the server does", () => {
    assert.equal(normalizeRoom("  red room \t"), "red room");
    assert.equal(normalizeRoom("\u3000\u0085red\u00a0\n"), "red", "Unicode's white space, as the server trims");
    assert.equal(normalizeRoom("\ufeffred"), "\ufeffred", "U+FEFF is not white space to the server");
    assert.equal(roomProblem("red"), "");
    assert.equal(roomProblem("  café ☕  "), "");
    assert.equal(roomProblem("x".repeat(64)), "");
    assert.equal(roomProblem("😀".repeat(64)), "", "64 code points, 128 UTF-16 units");
    assert.match(roomProblem("   "), /enter a room name/);
    assert.match(roomProblem("x".repeat(65)), /at most 64/);
    assert.match(roomProblem("a\u0007b"), /control characters/);
    assert.match(roomProblem("@here"), /begin with @/);
    assert.equal(roomProblem(" a@b"), "", "only a leading @ is kept for later");
    assert.match(roomProblem("a\ud800b"), /valid text/);
  });

  test("go in the address and come back out of it", () => {
    for (const room of ["red", "two words", "café ☕", "a#b%c/d?e", "100%"]) {
      const hash = hashForRoom(room);
      assert.match(hash, /^#[^#\s]+$/, hash);
      assert.equal(roomFromHash(hash), room);
      assert.equal(new URL(`http://h/${hash}`).hash, hash, "the browser keeps it as it is");
    }
    assert.equal(hashForRoom(""), "");
    assert.equal(roomFromHash(""), "");
    assert.equal(roomFromHash("#"), "");
    assert.equal(roomFromHash("#%E0%A4%A"), "%E0%A4%A", "a broken escape is taken as text");
    assert.equal(roomFromHash("#%20red%20"), "red");
  });

  test("the busiest rooms come first, ties by name, at most the limit", () => {
    assert.deepEqual(busiestRooms({ b: 2, a: 2, c: 9, d: 1 }, 3), [["c", 9], ["a", 2], ["b", 2]]);
    assert.deepEqual(busiestRooms(undefined), []);
    assert.equal(busiestRooms(Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`r${i}`, i]))).length, 20);
  });
});

describe("Sequence", () => {
  const message = (id) => ({ type: "message", id, content: `m${id}` });

  test("a first arrival takes the newest messages and counts on from the welcome", () => {
    const sequence = new Sequence();
    assert.deepEqual(sequence.resumePoint(false), {});
    assert.equal(sequence.welcome({ id: 7, epoch: "e" }), false);
    assert.ok(sequence.awaitingWelcomeHistory);
    assert.deepEqual(sequence.history([message(6), message(7)]), { kind: "join", messages: [message(6), message(7)] });
    assert.equal(sequence.lastId, 7);
    assert.ok(!sequence.seen(7));
    assert.ok(sequence.seen(8));
    assert.deepEqual(sequence.history([message(1)]).kind, "older");
  });

  test("coming back resumes from the last id in the same epoch only", () => {
    const sequence = new Sequence();
    sequence.welcome({ id: 0, epoch: "e" });
    sequence.history([]);
    assert.equal(sequence.lastId, 0);
    assert.deepEqual(sequence.resumePoint(true), {}, "nothing seen: nothing to resume from");
    sequence.seen(1);
    sequence.seen(2);
    assert.deepEqual(sequence.resumePoint(true), { id: 2, epoch: "e" });
    assert.equal(sequence.welcome({ id: 4, epoch: "e" }), true);
    assert.deepEqual(sequence.history([message(3), message(4)]), { kind: "resume", messages: [message(3), message(4)], complete: true });
    assert.deepEqual(sequence.resumePoint(true), { id: 4, epoch: "e" });
    assert.equal(sequence.welcome({ id: 9, epoch: "e" }), true);
    assert.equal(sequence.history([message(8), message(9)]).complete, false, "5..7 are missing");
    sequence.resumePoint(true);
    assert.equal(sequence.welcome({ id: 2, epoch: "other" }), false);
    assert.deepEqual(sequence.history([message(2)]), { kind: "join", messages: [message(2)] });
  });
});

describe("Pacer", () => {
  test("lets a burst go, then paces to the rate", () => {
    const pacer = new Pacer({ burst: 3, perSecond: 10 });
    assert.deepEqual([pacer.take(0), pacer.take(0), pacer.take(0)], [0, 0, 0]);
    assert.equal(pacer.take(0), 100);
    assert.equal(pacer.take(50), 50);
    assert.equal(pacer.take(100), 0);
    assert.equal(pacer.take(100), 100);
    assert.deepEqual([pacer.take(10000), pacer.take(10000), pacer.take(10000), pacer.take(10000)], [0, 0, 0, 100], "the burst refills, no further");
  });
});

describe("RoomList", () => {
  test("the lobby first, then the rooms in the order joined; unread until shown", () => {
    const rooms = new RoomList();
    assert.equal(rooms.active, "");
    assert.ok(rooms.add("red"));
    assert.ok(rooms.add("blue"));
    assert.ok(!rooms.add("red"));
    assert.equal(rooms.size, 2);
    assert.equal(rooms.arrived("red"), 1);
    assert.equal(rooms.arrived("red", 2), 3);
    assert.equal(rooms.arrived(""), 0, "the room shown has nothing unread");
    assert.equal(rooms.arrived("green"), 0, "not in it");
    assert.equal(rooms.totalUnread, 3);
    assert.deepEqual(rooms.entries(), [
      { room: "", unread: 0, active: true },
      { room: "red", unread: 3, active: false },
      { room: "blue", unread: 0, active: false },
    ]);
    assert.ok(rooms.activate("red"));
    assert.equal(rooms.unread("red"), 0);
    assert.equal(rooms.arrived(""), 1);
    assert.ok(!rooms.activate("green"));
    assert.ok(rooms.remove("red"));
    assert.equal(rooms.active, "", "leaving the room shown shows the lobby");
    assert.ok(!rooms.remove(""), "the lobby stays");
    assert.ok(!rooms.remove("red"));
    rooms.reset();
    assert.deepEqual(rooms.entries(), [{ room: "", unread: 0, active: true }]);
  });
});

describe("ChatConnection in rooms (rule 17)", () => {
  const message = (room, id, content = `${room}${id}`) => ({ type: "message", userName: "bob", content, id, timestamp: id, room });

  function online() {
    const under = connectionUnderTest();
    under.connection.login("amy");
    under.sockets[0].open();
    under.sockets[0].receive({ type: "login", userName: "amy", userList: { amy: "t" }, id: 0, epoch: "e1" });
    under.sockets[0].receive({ type: "history", history: [] });
    return under;
  }

  function welcome(socket, room, id, { userList = { amy: "t" }, history = [], epoch = "e1" } = {}) {
    socket.receive({ type: "join", room, userName: "amy", userList, id, epoch });
    socket.receive({ type: "history", room, history });
  }

  test("joins, keeps each room's frames apart, leaves", () => {
    const { connection, events, sockets } = online();
    assert.ok(connection.join("red"));
    assert.ok(!connection.join("red"), "already in it");
    assert.ok(connection.join("blue"));
    assert.deepEqual(sockets[0].sent.slice(1).map((f) => [f.type, f.room, f.id]), [["join", "red", 0], ["join", "blue", 0]]);
    assert.equal(connection.send("too early", "red"), false, "not in it before the welcome");
    welcome(sockets[0], "red", 2, { userList: { amy: "t", bob: "u" }, history: [message("red", 1), message("red", 2)] });
    welcome(sockets[0], "blue", 0);
    assert.deepEqual(events.filter((e) => e.type === "joined").map((e) => [e.room, Object.keys(e.userList).length, e.rejoined]), [["red", 2, false], ["blue", 1, false]]);
    assert.deepEqual(events.filter((e) => e.type === "history").map((e) => [e.room, e.kind, e.messages.length]), [["", "join", 0], ["red", "join", 2], ["blue", "join", 0]]);
    assert.deepEqual(connection.rooms, ["red", "blue"]);

    assert.ok(connection.send("hi red", "red"));
    assert.deepEqual([sockets[0].sent.at(-1).type, sockets[0].sent.at(-1).room], ["message", "red"]);
    assert.ok(connection.send("hi lobby"));
    assert.equal(sockets[0].sent.at(-1).room, "", "the lobby's frames name no room");
    sockets[0].receive(message("red", 3));
    sockets[0].receive(message("blue", 1));
    sockets[0].receive({ ...message("", 1), room: undefined });
    sockets[0].receive(message("red", 3)); // once only
    sockets[0].receive({ type: "join", room: "blue", userName: "bob", userList: { bob: "u" } });
    sockets[0].receive(message("green", 1)); // a room we are not in
    const frames = events.filter((e) => e.type === "frame").map((e) => [e.frame.type, e.frame.room, e.frame.id]);
    assert.deepEqual(frames, [["message", "red", 3], ["message", "blue", 1], ["message", "", 1], ["join", "blue", 0]]);

    assert.ok(connection.leave("red"));
    assert.deepEqual([sockets[0].sent.at(-1).type, sockets[0].sent.at(-1).room], ["leave", "red"]);
    sockets[0].receive(message("red", 4)); // on its way before the leave: not shown
    sockets[0].receive({ type: "leave", room: "red", userName: "amy" });
    assert.deepEqual(connection.rooms, ["blue"]);
    assert.equal(events.filter((e) => e.type === "frame").length, 4);
    assert.equal(events.filter((e) => e.type === "left").length, 0, "a leave we asked for is no news");
    assert.ok(!connection.leave("red"));
    assert.ok(connection.requestRooms());
    assert.equal(sockets[0].sent.at(-1).type, "rooms");
    sockets[0].receive({ type: "rooms", rooms: { blue: 2, red: 1 } });
    assert.deepEqual(events.findLast((e) => e.type === "rooms").rooms, { blue: 2, red: 1 });
  });

  test("a refused join says why and forgets the room", () => {
    const { connection, events, sockets } = online();
    connection.join("red");
    sockets[0].receive({ type: "error", room: "red", content: "too many rooms: at most 100" });
    assert.deepEqual(events.filter((e) => e.type === "left").map((e) => [e.room, e.reason]), [["red", "too many rooms: at most 100"]]);
    assert.deepEqual(connection.rooms, []);
    assert.ok(connection.join("red"), "may be asked for again");
  });

  test("a join the server refused without naming the room is given up after a while", () => {
    const { connection, timers, events, sockets } = online();
    connection.join("ʀed");
    sockets[0].receive({ type: "error", content: "bad room: control characters" });
    assert.equal(events.findLast((e) => e.type === "error").content, "bad room: control characters");
    timers.fireAll();
    assert.deepEqual(events.filter((e) => e.type === "left").map((e) => e.room), ["ʀed"]);
    // Had it been a late welcome after all, we leave again: the page does not show it.
    sockets[0].receive({ type: "join", room: "ʀed", userName: "amy", userList: { amy: "t" }, id: 0, epoch: "e1" });
    assert.deepEqual([sockets[0].sent.at(-1).type, sockets[0].sent.at(-1).room], ["leave", "ʀed"]);
  });

  test("a rate-limited join is sent again", () => {
    const { connection, timers, sockets } = online();
    connection.join("red");
    sockets[0].receive({ type: "error", content: "rate limited: slow down" });
    timers.fireAll();
    assert.deepEqual(sockets[0].sent.filter((f) => f.type === "join").map((f) => f.room), ["red", "red"]);
    welcome(sockets[0], "red", 0);
    sockets[0].receive({ type: "error", room: "red", content: "already in room" });
    assert.deepEqual(connection.rooms, ["red"]);
  });

  test("joining again while the leave is on its way joins once it is confirmed", () => {
    const { connection, events, sockets } = online();
    connection.join("red");
    welcome(sockets[0], "red", 0);
    connection.leave("red");
    assert.ok(connection.join("red"));
    assert.equal(sockets[0].sent.at(-1).type, "leave");
    sockets[0].receive({ type: "leave", room: "red", userName: "amy" });
    assert.deepEqual([sockets[0].sent.at(-1).type, sockets[0].sent.at(-1).room, sockets[0].sent.at(-1).id], ["join", "red", 0]);
    welcome(sockets[0], "red", 0);
    assert.equal(events.filter((e) => e.type === "joined").length, 2);
  });

  test("after a drop it logs in again and rejoins every room from its last id: nothing lost, nothing twice", () => {
    const { connection, timers, events, sockets } = online();
    connection.join("red");
    connection.join("blue");
    welcome(sockets[0], "red", 5, { history: [message("red", 5)] });
    welcome(sockets[0], "blue", 0);
    sockets[0].receive(message("red", 6));
    sockets[0].receive(message("blue", 1));
    sockets[0].receive({ ...message("", 1), room: undefined });
    connection.join("green"); // sent, no answer before the drop
    connection.leave("blue");
    connection.join("blue"); // leaving and joining again: joined afresh
    sockets[0].drop(1006);
    assert.equal(connection.join("pink"), true, "asked for while away: joined once back");
    timers.fireAll();
    sockets[1].open();
    assert.deepEqual([sockets[1].sent[0].type, sockets[1].sent[0].id, sockets[1].sent[0].epoch], ["login", 1, "e1"]);
    assert.equal(sockets[1].sent.length, 1, "the joins wait for the login's answer");
    sockets[1].receive({ type: "login", userName: "amy", userList: { amy: "t" }, id: 2, epoch: "e1" });
    const joins = sockets[1].sent.slice(1).map((f) => [f.type, f.room, f.id, f.epoch]);
    assert.deepEqual(joins, [["join", "red", 6, "e1"], ["join", "blue", 0, ""], ["join", "green", 0, ""], ["join", "pink", 0, ""]]);
    sockets[1].receive({ type: "history", history: [message("", 2)].map((m) => ({ ...m, room: "" })) });
    welcome(sockets[1], "red", 8, { history: [message("red", 7), message("red", 8)] });
    sockets[1].receive(message("red", 8)); // a duplicate is not passed on
    sockets[1].receive(message("red", 9));
    welcome(sockets[1], "blue", 1, { history: [message("blue", 1)] });
    welcome(sockets[1], "green", 3, { history: [message("green", 3)] });
    const joined = events.filter((e) => e.type === "joined").slice(2).map((e) => [e.room, e.rejoined, e.sameHistory]);
    assert.deepEqual(joined, [["red", true, true], ["blue", false, false], ["green", false, false]]);
    const histories = events.filter((e) => e.type === "history").slice(3).map((e) => [e.room, e.kind, e.messages.map((m) => m.id), e.complete]);
    assert.deepEqual(histories, [["", "resume", [2], true], ["red", "resume", [7, 8], true], ["blue", "join", [1], undefined], ["green", "join", [3], undefined]]);
    const redLive = events.filter((e) => e.type === "frame" && e.frame.room === "red").map((e) => e.frame.id);
    assert.deepEqual(redLive, [6, 9]);
  });

  test("a new epoch starts each room's count over", () => {
    const { connection, timers, events, sockets } = online();
    connection.join("red");
    welcome(sockets[0], "red", 4, { history: [message("red", 4)] });
    sockets[0].drop(1012);
    timers.fireAll();
    sockets[1].open();
    sockets[1].receive({ type: "login", userName: "amy", userList: { amy: "t" }, id: 0, epoch: "e2" });
    assert.deepEqual([sockets[1].sent.at(-1).id, sockets[1].sent.at(-1).epoch], [4, "e1"], "the server judges the epoch");
    welcome(sockets[1], "red", 1, { history: [message("red", 1)], epoch: "e2" });
    assert.deepEqual(events.findLast((e) => e.type === "joined").sameHistory, false);
    assert.deepEqual(events.findLast((e) => e.type === "history").kind, "join");
    sockets[1].receive(message("red", 2));
    assert.equal(events.findLast((e) => e.type === "frame").frame.id, 2);
  });

  test("a hundred rooms are joined again at a pace the rate limit allows", () => {
    ScriptedSocket.created = [];
    const timers = new ManualTimers();
    const connection = new ChatConnection({ url: "ws://test/ws", codec, WebSocket: ScriptedSocket, timers, joinPace: { burst: 20, perSecond: 10 } });
    const sockets = ScriptedSocket.created;
    connection.login("amy");
    sockets[0].open();
    sockets[0].receive({ type: "login", userName: "amy", userList: {}, id: 0, epoch: "e1" });
    const joins = () => sockets[0].sent.filter((f) => f.type === "join").length;
    for (let i = 0; i < 100; ++i) {
      connection.join(`r${i}`);
    }
    assert.equal(joins(), 20, "the burst");
    let elapsedMs = 0;
    while (joins() < 100) {
      const [{ delayMs }] = [...timers.pending.values()];
      elapsedMs += delayMs;
      timers.nowMs += delayMs;
      timers.fireAll();
    }
    assert.ok(elapsedMs >= 7900 && elapsedMs <= 8100, `80 more at 10 a second: ${elapsedMs} ms`);
    assert.deepEqual(sockets[0].sent.filter((f) => f.type === "join").map((f) => f.room).slice(0, 3), ["r0", "r1", "r2"]);
  });

  test("older pages are asked for per room, one request at a time", () => {
    const { connection, events, sockets } = online();
    connection.join("red");
    welcome(sockets[0], "red", 200, { history: [message("red", 200)] });
    assert.equal(connection.requestOlder(50, "blue"), false, "not in it");
    assert.ok(connection.requestOlder(200, "red"));
    assert.ok(connection.requestOlder(10));
    const asked = () => sockets[0].sent.filter((f) => f.type === "history").map((f) => [f.room, f.id]);
    assert.deepEqual(asked(), [["red", 200]], "the lobby's waits for red's answer");
    sockets[0].receive({ type: "history", room: "red", history: [message("red", 199)] });
    const answer = events.findLast((e) => e.type === "history");
    assert.deepEqual([answer.room, answer.kind, answer.messages.map((m) => m.content)], ["red", "older", ["red199"]]);
    assert.deepEqual(asked(), [["red", 200], ["", 10]]);
    sockets[0].receive({ type: "error", content: "busy: the answer to your last history request is on its way" });
    assert.deepEqual(events.findLast((e) => e.type === "history"), { type: "history", room: "", kind: "older", messages: [], failed: true });
    assert.ok(connection.requestOlder(199, "red"));
    assert.equal(asked().length, 3, "asked again at once: nothing is on its way");
  });
});
