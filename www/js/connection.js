// One chat connection as the page sees it: logs in, keeps the login across
// drops (reconnecting with backoff and jitter, logging in again with the same
// name), and reports what happens as events. No DOM here, so that node can
// test it with a fake WebSocket.
//
// Events (CustomEvent, the payload in `detail`):
//   state        { state, attempt?, delayMs?, code?, reason? }   see State
//   online       { name, userList, reconnected }   our login was accepted
//   refused      { reason, taken? }   the login was refused (invalid name,
//                taken); `taken` when the name went to someone else while we
//                were away, so the user must pick another
//   frame        { frame }    a broadcast: message, login or logout notice
//   error        { content }  an error frame the server sent while online

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
    this.#write({ type: "login", userName: this.#name });
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
      } else {
        this.#emit("frame", { frame });
      }
    } else if (frame.type === "error") {
      this.#emit("error", { content: frame.content });
    }
  }

  // Before login the server sends nothing but the answer to it: our own
  // login notice (with the whole user list) or an error.
  #loginAnswer(frame) {
    if (frame.type === "login") {
      const reconnected = this.#wasOnline;
      this.#name = frame.userName;
      this.#wasOnline = true;
      this.#attempt = 0;
      this.#takenSince = null;
      this.#setState(State.online);
      this.#emit("online", { name: frame.userName, userList: frame.userList, reconnected });
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
