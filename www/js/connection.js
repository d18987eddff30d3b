// One chat connection as the page sees it: logs in, keeps the login across
// drops (reconnecting with backoff and jitter, logging in again with the same
// name), and reports what happens as events. No DOM here, so that node can
// test it with a fake WebSocket.
//
// Events (CustomEvent, the payload in `detail`):
//   state        { state, attempt?, delayMs?, code?, reason? }   see State
//   online       { name, userList, online, reconnected }   our login was accepted
//   refused      { reason, taken? }   the login was refused (invalid name,
//                taken); `taken` when the name went to someone else while we
//                were away, so the user must pick another
//   frame        { frame }    a broadcast: message, login or logout notice, presence;
//                in a room (frame.room set): message, join or leave notice,
//                presence (a message already seen, after a resume, is not
//                passed on)
//   history      { room, messages, kind, complete?, failed? }   earlier
//                messages, oldest first: kind "join" (a newcomer's), "resume"
//                (what we missed while away; `complete` is false if some
//                could not be recovered) or "older" (the answer to
//                requestOlder; `failed` when the server refused it)
//   joined       { room, name, userList, online, rejoined, sameHistory }
//                our welcome to a room; `rejoined` after a drop
//   left         { room, reason }   we are no longer in the room: our leave
//                was confirmed (reason ""), or the join was refused (reason:
//                the server's error)
//   rooms        { rooms }    the answer to requestRooms: name -> users
//   error        { content, room }  an error frame the server sent while
//                online (room "" when it names none)
//
// It keeps the last message id and the epoch it saw, in the lobby and in
// each room, and a login after a drop sends them, then joins every room the
// user was in again with its own (contract rules 13 and 17): nothing is lost
// and nothing comes twice, in any room. The joins go at a pace the server's
// rate limit allows.

import { backoffDelay, defaultBackoff } from "./backoff.js";
import { Pacer, Sequence } from "./rooms.js";

// How long a join may stay unanswered after an error that named no room
// (rate limited, or a name the server refused) before it is taken as the one
// refused.
const joinAnswerWaitMs = 5000;
const maxJoinTries = 3;

export const State = Object.freeze({
  idle: "idle", // not connected, not trying to be
  connecting: "connecting", // socket opening
  loggingIn: "logging-in", // socket open, login sent, no answer yet
  refused: "refused", // socket open, the login was refused: waiting for a new name
  online: "online", // logged in
  waiting: "waiting", // dropped; the next attempt is scheduled
  closed: "closed", // logged out on purpose
});

export class ChatConnection extends EventTarget {
  #url;
  #codec;
  #WebSocket;
  #backoff;
  #timers;
  #socket = null;
  #state = State.idle;
  #name = "";
  #wanted = false; // the user wants to be online
  #wasOnline = false; // logged in at least once with #name: drops reconnect
  #attempt = 0;
  #retryTimer = null;
  #nameHoldMs;
  #takenSince = null; // when a login after a drop first found our name taken
  #lobby = new Sequence();
  // The rooms the user is in or asked for, besides the lobby: room -> {
  //   sequence, state: "queued" (to be sent), "joining" (sent), "in" or
  //   "leaving" (sent), wasIn: we were in it before the last drop,
  //   joinAfterLeave: joined again while leaving, tries: joins sent }
  #rooms = new Map();
  #joinQueue = []; // rooms in state "queued", first to go first
  #pacer;
  #pumpTimer = null;
  #joinCheckTimer = null;
  #olderInFlight = null; // the room whose history request awaits its answer
  #olderSent = 0; // counts the history requests sent
  #olderQueued = new Map(); // room -> id: requests waiting for their turn

  // `nameHoldMs`: how long the server may keep a dropped connection (and its
  // name) before it notices, its idle timeout; past that, a name still taken
  // is someone else's. `timers` gives setTimeout, clearTimeout and, for
  // tests, now(). `joinPace` is the Pacer's { burst, perSecond } for joins.
  constructor({
    url,
    codec,
    WebSocket = globalThis.WebSocket,
    backoff = defaultBackoff,
    timers = globalThis,
    nameHoldMs = 30000,
    joinPace = undefined,
  }) {
    super();
    this.#url = url;
    this.#codec = codec;
    this.#WebSocket = WebSocket;
    this.#backoff = backoff;
    this.#timers = timers;
    this.#nameHoldMs = nameHoldMs;
    this.#pacer = new Pacer(joinPace);
  }

  #now() {
    return this.#timers.now?.() ?? Date.now();
  }

  get state() {
    return this.#state;
  }

  get name() {
    return this.#name;
  }

  // The rooms the user is in or is joining, besides the lobby.
  get rooms() {
    return [...this.#rooms].filter(([, entry]) => entry.state !== "leaving").map(([room]) => room);
  }

  // Logs in as `name`, opening the socket if there is none. A new login
  // starts in the lobby alone.
  login(name) {
    if (this.#state === State.online) {
      throw new Error("already logged in");
    }
    this.#name = name;
    this.#wanted = true;
    this.#wasOnline = false;
    this.#forgetRooms();
    this.#cancelRetry();
    if (this.#isOpen()) {
      this.#sendLogin();
    } else if (this.#socket === null || this.#socket.readyState >= this.#WebSocket.CLOSING) {
      // None, or one still closing after a logout: start afresh.
      this.#forgetSocket();
      this.#open();
    }
    // else: the socket is still opening; its open handler sends the login.
  }

  // Enters `room` (a valid, trimmed name: see roomProblem): at once when
  // online, else as soon as the login is back. Answered with a "joined"
  // event, or "left" with the reason if the server refuses. False when the
  // user is in it already, or not logged in.
  join(room) {
    if (!this.#wanted || room === "") {
      return false;
    }
    const entry = this.#rooms.get(room);
    if (entry !== undefined) {
      if (entry.state !== "leaving" || entry.joinAfterLeave) {
        return false;
      }
      entry.joinAfterLeave = true; // once the server confirms the leave
      return true;
    }
    this.#rooms.set(room, newRoomEntry());
    if (this.#state === State.online) {
      this.#joinQueue.push(room);
      this.#pump();
    }
    return true;
  }

  // Leaves `room`; no frame of it is passed on from now on. False if the
  // user is not in it.
  leave(room) {
    const entry = this.#rooms.get(room);
    if (entry === undefined || entry.state === "leaving") {
      if (entry !== undefined) {
        entry.joinAfterLeave = false;
      }
      return false;
    }
    if (entry.state === "queued" || this.#state !== State.online) {
      // Not sent, or the server forgets it with the connection anyway.
      this.#rooms.delete(room);
      this.#joinQueue = this.#joinQueue.filter((queued) => queued !== room);
      return true;
    }
    entry.state = "leaving";
    entry.joinAfterLeave = false;
    this.#olderQueued.delete(room);
    this.#write({ type: "leave", room });
    return true;
  }

  // Asks which rooms have users; answered with a "rooms" event. False when
  // not online.
  requestRooms() {
    if (this.#state !== State.online) {
      return false;
    }
    this.#write({ type: "rooms" });
    return true;
  }

  // Asks for the messages of `room` before `id` (the oldest shown);
  // answered with a "history" event of kind "older". One request is on its
  // way at a time (rule 14); others wait for their turn. False when not
  // online or not in the room.
  requestOlder(id, room = "") {
    if (this.#state !== State.online || !(id > 1) || !this.#isIn(room)) {
      return false;
    }
    if (this.#olderInFlight !== null) {
      this.#olderQueued.set(room, id);
    } else {
      this.#sendOlder(room, id);
    }
    return true;
  }

  #sendOlder(room, id) {
    this.#olderInFlight = room;
    this.#olderSent += 1;
    this.#write({ type: "history", id, ...roomField(room) });
  }

  #olderFailed() {
    const room = this.#olderInFlight;
    this.#olderAnswered();
    this.#emit("history", { room, messages: [], kind: "older", failed: true });
  }

  #olderAnswered() {
    this.#olderInFlight = null;
    const next = this.#olderQueued.entries().next();
    if (!next.done) {
      const [room, id] = next.value;
      this.#olderQueued.delete(room);
      this.#sendOlder(room, id);
    }
  }

  #isIn(room) {
    return room === "" || this.#rooms.get(room)?.state === "in";
  }

  // Sends a chat message to `room` (the lobby by default); false when not
  // online or not in the room (the caller keeps the text).
  send(content, room = "") {
    if (this.#state !== State.online || !this.#isIn(room)) {
      return false;
    }
    this.#write({ type: "message", content, ...roomField(room) });
    return true;
  }

  // Leaves on purpose: the server answers with a normal close.
  logout() {
    this.#wanted = false;
    this.#wasOnline = false;
    this.#cancelRetry();
    this.#forgetRooms();
    if (this.#isOpen()) {
      this.#write({ type: "logout" });
    } else if (this.#socket !== null) {
      this.#socket.close(1000, "logout");
    }
    this.#setState(State.closed);
  }

  #forgetSocket() {
    if (this.#socket !== null) {
      this.#socket.onopen = this.#socket.onmessage = this.#socket.onclose = this.#socket.onerror = null;
      this.#socket = null;
    }
  }

  #isOpen() {
    return this.#socket !== null && this.#socket.readyState === this.#WebSocket.OPEN;
  }

  #open() {
    this.#setState(State.connecting, { attempt: this.#attempt });
    let socket;
    try {
      socket = new this.#WebSocket(this.#url);
    } catch (error) {
      this.#scheduleRetry({ reason: String(error.message ?? error) });
      return;
    }
    socket.binaryType = "arraybuffer";
    this.#socket = socket;
    socket.onopen = () => {
      if (this.#wanted) {
        this.#sendLogin();
      } else {
        socket.close(1000, "logout");
      }
    };
    socket.onmessage = (event) => this.#receive(event.data);
    socket.onclose = (event) => this.#closed(socket, event);
    // A failed connection also fires close, which does the work.
    socket.onerror = () => {};
  }

  #sendLogin() {
    this.#setState(State.loggingIn);
    // Coming back after a drop: where we were, so that the server sends what
    // we missed. A first login asks for nothing in particular.
    this.#write({ type: "login", userName: this.#name, ...this.#lobby.resumePoint(this.#wasOnline) });
  }

  #write(fields) {
    this.#socket.send(this.#codec.encode(fields));
  }

  #receive(data) {
    if (typeof data === "string") {
      return; // the contract has only binary frames; ignore anything else
    }
    let frame;
    try {
      frame = this.#codec.decode(data);
    } catch (error) {
      this.#emit("error", { content: `undecodable frame from the server: ${error.message}`, room: "" });
      return;
    }
    if (frame.type === "heartbeat") {
      return;
    }
    if (this.#state === State.loggingIn) {
      this.#loginAnswer(frame);
    } else if (this.#state === State.online) {
      if (frame.type === "error") {
        this.#error(frame);
      } else if (frame.type === "rooms") {
        this.#emit("rooms", { rooms: frame.rooms ?? {} });
      } else if (frame.room) {
        this.#roomFrame(frame);
      } else if (frame.type === "history") {
        this.#history(frame, "", this.#lobby);
      } else if (frame.type !== "message" || this.#lobby.seen(frame.id)) {
        this.#emit("frame", { frame });
      }
    } else if (frame.type === "error") {
      this.#emit("error", { content: frame.content, room: frame.room ?? "" });
    }
  }

  #history(frame, room, sequence) {
    const { kind, messages, complete } = sequence.history(frame.history);
    if (kind === "older" && this.#olderInFlight === room) {
      this.#olderAnswered();
    }
    this.#emit("history", complete === undefined ? { room, messages, kind } : { room, messages, kind, complete });
  }

  // A frame about a room other than the lobby.
  #roomFrame(frame) {
    const room = frame.room;
    const entry = this.#rooms.get(room);
    const own = frame.userName === this.#name;
    if (frame.type === "join" && own) {
      if (entry?.state === "joining" || entry?.state === "queued") {
        // (queued: sent again after an error, the first one's welcome late)
        this.#joinedRoom(room, entry, frame);
      } else if (entry === undefined) {
        // A join we gave up waiting for: we are not in it after all.
        this.#write({ type: "leave", room });
      }
      return;
    }
    if (frame.type === "leave" && own) {
      if (entry !== undefined && entry.state !== "queued") {
        this.#roomGone(room, entry, "");
      }
      return;
    }
    if (entry?.state !== "in") {
      return; // not yet in it, or leaving: none of its frames are shown
    }
    if (frame.type === "history") {
      this.#history(frame, room, entry.sequence);
    } else if (frame.type !== "message" || entry.sequence.seen(frame.id)) {
      this.#emit("frame", { frame });
    }
  }

  #joinedRoom(room, entry, frame) {
    const rejoined = entry.wasIn;
    const sameHistory = entry.sequence.welcome(frame);
    entry.state = "in";
    entry.wasIn = true;
    entry.tries = 0;
    this.#emit("joined", {
      room,
      name: frame.userName,
      userList: frame.userList,
      online: Number(frame.content) || 0,
      rejoined,
      sameHistory,
    });
  }

  // We are out of `room`: our leave was confirmed (reason ""), or the
  // server refused to let us in.
  #roomGone(room, entry, reason) {
    this.#rooms.delete(room);
    this.#olderQueued.delete(room);
    if (this.#olderInFlight === room) {
      this.#olderAnswered();
    }
    if (entry.state === "leaving" && entry.joinAfterLeave) {
      this.join(room);
      return;
    }
    if (entry.state !== "leaving" || reason !== "") {
      this.#emit("left", { room, reason });
    }
  }

  #error(frame) {
    const content = frame.content;
    const room = frame.room ?? "";
    // A refused request for older messages is an answer too (rule 14's
    // "busy", a history that cannot be read now).
    if (this.#olderInFlight === room && /history|busy|not in room/.test(content)) {
      this.#olderFailed();
    }
    const entry = room === "" ? undefined : this.#rooms.get(room);
    if (entry?.state === "joining") {
      if (content.includes("already in room")) {
        return; // a join sent again: the first one's welcome came or comes
      }
      if (content.includes("unavailable") && entry.tries < maxJoinTries) {
        // A cluster node cut off from Redis: the room comes back later.
        entry.state = "queued";
        this.#retryJoin(room, entry);
        return;
      }
      this.#roomGone(room, entry, content);
      return;
    }
    if (entry?.state === "leaving" && content.includes("not in room")) {
      this.#roomGone(room, entry, "");
      return;
    }
    if (room === "") {
      this.#checkJoinsAfter(content);
    }
    this.#emit("error", { content, room });
  }

  // An error that names no room may answer one of the joins on their way
  // (rate limited, or a name the server refused), or the request for older
  // messages (rate limited): joins still unanswered a while later are sent
  // again (rate limited) or taken as refused; the request is taken as
  // refused, and may be made again.
  #checkJoinsAfter(content) {
    if (this.#joinCheckTimer !== null) {
      return;
    }
    const sent = [...this.#rooms].filter(([, entry]) => entry.state === "joining");
    const older = this.#olderInFlight !== null && content.includes("rate limited") ? this.#olderSent : null;
    if (sent.length === 0 && older === null) {
      return;
    }
    this.#joinCheckTimer = this.#timers.setTimeout(() => {
      this.#joinCheckTimer = null;
      if (older !== null && this.#olderInFlight !== null && this.#olderSent === older) {
        this.#olderFailed();
      }
      for (const [room, entry] of sent) {
        if (this.#rooms.get(room) !== entry || entry.state !== "joining") {
          continue;
        }
        if (content.includes("rate limited") && entry.tries < maxJoinTries) {
          entry.state = "queued";
          this.#joinQueue.push(room);
        } else {
          this.#roomGone(room, entry, content);
        }
      }
      this.#pump();
    }, joinAnswerWaitMs);
  }

  #retryJoin(room, entry) {
    const timer = this.#timers.setTimeout(() => {
      if (this.#rooms.get(room) === entry && entry.state === "queued" && this.#state === State.online) {
        this.#joinQueue.push(room);
        this.#pump();
      }
    }, backoffDelay(entry.tries, this.#backoff));
    entry.retryTimer = timer;
  }

  // Sends the queued joins as fast as the pacer lets them go.
  #pump() {
    if (this.#pumpTimer !== null) {
      return;
    }
    while (this.#joinQueue.length > 0 && this.#state === State.online) {
      const room = this.#joinQueue[0];
      const entry = this.#rooms.get(room);
      if (entry?.state !== "queued") {
        this.#joinQueue.shift(); // left meanwhile
        continue;
      }
      const waitMs = this.#pacer.take(this.#now());
      if (waitMs > 0) {
        this.#pumpTimer = this.#timers.setTimeout(() => {
          this.#pumpTimer = null;
          this.#pump();
        }, waitMs);
        return;
      }
      this.#joinQueue.shift();
      entry.state = "joining";
      entry.tries += 1;
      this.#write({ type: "join", room, ...entry.sequence.resumePoint(entry.wasIn) });
    }
  }

  // After a login: every room the user was in or asked for is joined
  // (again); rooms being left are left with the old connection.
  #rejoinRooms() {
    this.#joinQueue = [];
    for (const [room, entry] of this.#rooms) {
      if (entry.state === "leaving" && !entry.joinAfterLeave) {
        this.#rooms.delete(room);
        continue;
      }
      if (entry.state === "leaving") {
        // Joined again while leaving: a new arrival, as if after the leave.
        this.#rooms.set(room, newRoomEntry());
      } else {
        entry.state = "queued";
        entry.tries = 0;
      }
      this.#joinQueue.push(room);
    }
    this.#pump();
  }

  #stopRoomTimers() {
    this.#joinQueue = [];
    for (const timer of [this.#pumpTimer, this.#joinCheckTimer]) {
      if (timer !== null) {
        this.#timers.clearTimeout(timer);
      }
    }
    this.#pumpTimer = this.#joinCheckTimer = null;
    for (const entry of this.#rooms.values()) {
      if (entry.retryTimer !== undefined) {
        this.#timers.clearTimeout(entry.retryTimer);
        entry.retryTimer = undefined;
      }
    }
    this.#olderInFlight = null;
    this.#olderQueued.clear();
  }

  #forgetRooms() {
    this.#stopRoomTimers();
    this.#rooms.clear();
  }

  // Before login the server sends nothing but the answer to it: our own
  // login notice (with the whole user list) or an error.
  #loginAnswer(frame) {
    if (frame.type === "login") {
      const reconnected = this.#wasOnline;
      const sameHistory = this.#lobby.welcome(frame);
      this.#name = frame.userName;
      this.#wasOnline = true;
      this.#attempt = 0;
      this.#takenSince = null;
      this.#setState(State.online);
      this.#emit("online", {
        name: frame.userName,
        userList: frame.userList,
        // In a big room (rule 16) the list is partial and content says how
        // many are online.
        online: Number(frame.content) || 0,
        reconnected,
        sameHistory,
      });
      this.#rejoinRooms();
      return;
    }
    if (frame.type !== "error") {
      return;
    }
    const taken = frame.content.includes("name taken");
    if (this.#wasOnline && taken) {
      this.#takenSince ??= this.#now();
    }
    if (this.#wasOnline && !(taken && this.#now() - this.#takenSince > this.#nameHoldMs)) {
      // Coming back after a drop, the server may not have noticed yet that
      // the old connection is gone and still holds the name (until its idle
      // timeout). Try again later on the same socket.
      this.#attempt += 1;
      const delayMs = backoffDelay(this.#attempt, this.#backoff);
      this.#setState(State.waiting, { attempt: this.#attempt, delayMs, reason: frame.content });
      this.#retryTimer = this.#timers.setTimeout(() => {
        this.#retryTimer = null;
        if (this.#isOpen()) {
          this.#sendLogin();
        } else if (this.#socket === null) {
          this.#open();
        }
      }, delayMs);
      return;
    }
    // Wait on the open socket for the user to pick another name; if it
    // closes meanwhile, the next login opens a new one. A name taken for
    // longer than the server could hold our old connection is someone else's.
    const lost = this.#wasOnline;
    this.#wanted = false;
    this.#wasOnline = false;
    this.#takenSince = null;
    this.#forgetRooms();
    this.#setState(State.refused, { reason: frame.content });
    this.#emit("refused", lost ? { reason: frame.content, taken: true } : { reason: frame.content });
  }

  #closed(socket, event) {
    if (socket !== this.#socket) {
      return;
    }
    this.#socket = null;
    this.#cancelRetry();
    this.#stopRoomTimers();
    if (!this.#wanted) {
      const state = this.#state === State.refused ? State.idle : State.closed;
      this.#setState(state, { code: event.code, reason: event.reason });
      return;
    }
    this.#scheduleRetry({ code: event.code, reason: event.reason || closeReason(event.code) });
  }

  #scheduleRetry(why) {
    const delayMs = backoffDelay(this.#attempt, this.#backoff);
    this.#attempt += 1;
    this.#setState(State.waiting, { attempt: this.#attempt, delayMs, ...why });
    this.#retryTimer = this.#timers.setTimeout(() => {
      this.#retryTimer = null;
      this.#open();
    }, delayMs);
  }

  #cancelRetry() {
    if (this.#retryTimer !== null) {
      this.#timers.clearTimeout(this.#retryTimer);
      this.#retryTimer = null;
    }
  }

  #setState(state, detail = {}) {
    this.#state = state;
    this.#emit("state", { state, ...detail });
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

function newRoomEntry() {
  return { sequence: new Sequence(), state: "queued", wasIn: false, joinAfterLeave: false, tries: 0 };
}

// The room field of a frame: absent for the lobby.
function roomField(room) {
  return room === "" ? {} : { room };
}

// Words for the close codes the contract uses, for the status line.
export function closeReason(code) {
  switch (code) {
    case 1000:
      return "closed";
    case 1001:
      return "the server is going away";
    case 1003:
      return "the server refused a frame";
    case 1006:
      return "the connection was lost";
    case 1008:
      return "closed by the server (too slow or too many messages)";
    case 1009:
      return "a message was too big";
    default:
      return code ? `closed (code ${code})` : "the connection was lost";
  }
}
