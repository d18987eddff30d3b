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
//   frame        { frame }    a broadcast: message, login or logout notice, presence
//                (a message already seen, after a resume, is not passed on)
//   history      { messages, kind, complete? }   earlier messages, oldest
//                first: kind "join" (a newcomer's), "resume" (what we missed
//                while away; `complete` is false if some could not be
//                recovered) or "older" (the answer to requestOlder)
//   error        { content }  an error frame the server sent while online
//
// It keeps the last message id and the epoch it saw, and a login after a
// drop sends them, so that the server sends what was missed (contract rule
// 13): nothing is lost and nothing comes twice.

import { backoffDelay, defaultBackoff } from "./backoff.js";

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
  #lastId = 0; // the newest message id seen
  #epoch = ""; // the history those ids count in
  #resuming = false; // the login carried #lastId and #epoch
  #welcomeHistory = false; // the history frame that follows the welcome is due
  #resumedWithin = false; // the last welcome continued the history we had
  #welcomeId = 0; // the last message id when we logged in

  // `nameHoldMs`: how long the server may keep a dropped connection (and its
  // name) before it notices, its idle timeout; past that, a name still taken
  // is someone else's. `timers` gives setTimeout, clearTimeout and, for
  // tests, now().
  constructor({
    url,
    codec,
    WebSocket = globalThis.WebSocket,
    backoff = defaultBackoff,
    timers = globalThis,
    nameHoldMs = 30000,
  }) {
    super();
    this.#url = url;
    this.#codec = codec;
    this.#WebSocket = WebSocket;
    this.#backoff = backoff;
    this.#timers = timers;
    this.#nameHoldMs = nameHoldMs;
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

  // Logs in as `name`, opening the socket if there is none.
  login(name) {
    if (this.#state === State.online) {
      throw new Error("already logged in");
    }
    this.#name = name;
    this.#wanted = true;
    this.#wasOnline = false;
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

  // Asks for the messages before `id` (the oldest shown); answered with a
  // "history" event of kind "older". False when not online.
  requestOlder(id) {
    if (this.#state !== State.online || !(id > 1)) {
      return false;
    }
    this.#write({ type: "history", id });
    return true;
  }

  // Sends a chat message; false when not online (the caller keeps the text).
  send(content) {
    if (this.#state !== State.online) {
      return false;
    }
    this.#write({ type: "message", content });
    return true;
  }

  // Leaves on purpose: the server answers with a normal close.
  logout() {
    this.#wanted = false;
    this.#wasOnline = false;
    this.#cancelRetry();
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
    this.#resuming = this.#wasOnline && this.#lastId > 0;
    const resume = this.#resuming ? { id: this.#lastId, epoch: this.#epoch } : {};
    this.#write({ type: "login", userName: this.#name, ...resume });
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
      this.#emit("error", { content: `undecodable frame from the server: ${error.message}` });
      return;
    }
    if (frame.type === "heartbeat") {
      return;
    }
    if (this.#state === State.loggingIn) {
      this.#loginAnswer(frame);
    } else if (this.#state === State.online) {
      if (frame.type === "error") {
        this.#emit("error", { content: frame.content });
      } else if (frame.type === "history") {
        this.#history(frame);
      } else if (frame.type !== "message" || this.#seen(frame.id)) {
        this.#emit("frame", { frame });
      }
    } else if (frame.type === "error") {
      this.#emit("error", { content: frame.content });
    }
  }

  // A message is new if its id is above the last seen; it becomes the last.
  #seen(id) {
    const number = Number(id);
    if (number <= this.#lastId) {
      return false;
    }
    this.#lastId = number;
    return true;
  }

  #history(frame) {
    const messages = frame.history.filter((message) => Number(message.id) > 0);
    if (!this.#welcomeHistory) {
      this.#emit("history", { messages, kind: "older" });
      return;
    }
    this.#welcomeHistory = false;
    // Whatever it holds, we start from the welcome's id: live messages follow it.
    const lastBefore = this.#lastId;
    const fresh = messages.filter((message) => this.#seen(message.id));
    this.#lastId = Math.max(this.#lastId, this.#welcomeId);
    if (!this.#resumedWithin) {
      this.#emit("history", { messages: fresh, kind: "join" });
      return;
    }
    // What we missed, from the id after ours: a gap shows that some of it
    // is no longer kept (or more was missed than the server sends).
    const first = messages.length > 0 ? Number(messages[0].id) : this.#welcomeId + 1;
    const complete = first === lastBefore + 1 || this.#welcomeId === lastBefore;
    this.#emit("history", { messages: fresh, kind: "resume", complete });
  }

  // Before login the server sends nothing but the answer to it: our own
  // login notice (with the whole user list) or an error.
  #loginAnswer(frame) {
    if (frame.type === "login") {
      const reconnected = this.#wasOnline;
      // Resumed within the same history: the next frame holds what we
      // missed. Otherwise (a first login, or the server's history is another
      // one) the ids start over from what the server says.
      this.#resumedWithin = this.#resuming && frame.epoch === this.#epoch && this.#epoch !== "";
      if (!this.#resumedWithin) {
        this.#lastId = 0;
      }
      this.#epoch = frame.epoch ?? "";
      this.#welcomeId = Number(frame.id ?? 0);
      this.#welcomeHistory = true;
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
        sameHistory: this.#resumedWithin,
      });
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
    this.#setState(State.refused, { reason: frame.content });
    this.#emit("refused", lost ? { reason: frame.content, taken: true } : { reason: frame.content });
  }

  #closed(socket, event) {
    if (socket !== this.#socket) {
      return;
    }
    this.#socket = null;
    this.#cancelRetry();
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
