// The page: wires a ChatConnection to the DOM. Every text that came over the
// wire goes in through textContent, never as HTML.

import { loadCodec } from "./codec.js";
import { ChatConnection, State, closeReason } from "./connection.js";
import { Roster } from "./roster.js";

const maxNameCodePoints = 32;
// The server's limits come from GET /config; these are its defaults.
const limits = { maxContentBytes: 4096, idleTimeoutMs: 30000 };
const maxShownMessages = 1000; // older ones leave the page: memory stays bounded
const stickToBottomPx = 48;

const $ = (id) => document.getElementById(id);
const view = {
  status: $("status"),
  logout: $("logout"),
  loginView: $("login-view"),
  loginForm: $("login-form"),
  name: $("name"),
  join: $("join"),
  loginError: $("login-error"),
  chatView: $("chat-view"),
  users: $("users"),
  userCount: $("user-count"),
  messages: $("messages"),
  jump: $("jump"),
  sendForm: $("send-form"),
  text: $("text"),
  send: $("send"),
  sendError: $("send-error"),
};

const roster = new Roster();
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const encoder = new TextEncoder();

function setStatus(text, state) {
  view.status.textContent = text;
  view.status.dataset.state = state;
}

// Mirrors contract rule 2 so that most mistakes are explained at once; the
// server stays the judge.
function nameProblem(raw) {
  const name = raw.trim();
  if (name.length === 0) {
    return "Please enter a name.";
  }
  if ([...name].length > maxNameCodePoints) {
    return `A name has at most ${maxNameCodePoints} characters.`;
  }
  if (/\p{Cc}/u.test(name)) {
    return "A name cannot contain control characters.";
  }
  return "";
}

function showLogin(error = "") {
  view.chatView.hidden = true;
  view.logout.hidden = true;
  view.loginView.hidden = false;
  view.loginError.textContent = error;
  view.name.disabled = false;
  view.join.disabled = false;
  view.name.focus();
}

function showChat() {
  view.loginView.hidden = true;
  view.chatView.hidden = false;
  view.logout.hidden = false;
  view.text.focus();
}

function renderUsers(me) {
  view.userCount.textContent = String(roster.size);
  const items = roster.entries().map(([name, since]) => {
    const item = document.createElement("li");
    item.textContent = name;
    if (since) {
      item.title = `online since ${since}`;
    }
    if (name === me) {
      item.classList.add("me");
      item.append(" (you)");
    }
    return item;
  });
  if (roster.partial) {
    const more = document.createElement("li");
    more.className = "more";
    more.textContent = `and ${roster.unlisted} more`;
    items.push(more);
  }
  view.users.replaceChildren(...items);
}

function isNearBottom() {
  const list = view.messages;
  return list.scrollHeight - list.scrollTop - list.clientHeight < stickToBottomPx;
}

function scrollToBottom() {
  view.messages.scrollTop = view.messages.scrollHeight;
  view.jump.hidden = true;
}

// Appends an item; follows it only if the reader was already at the bottom.
function append(item) {
  const follow = isNearBottom();
  view.messages.append(item);
  while (view.messages.childElementCount > maxShownMessages) {
    if (view.messages.firstElementChild.classList.contains("beginning")) {
      older.done = false; // scrolled out: older pages can be asked for again
    }
    view.messages.firstElementChild.remove();
  }
  if (follow) {
    scrollToBottom();
  } else {
    view.jump.hidden = false;
  }
}

function timeOf(timestamp) {
  const date = new Date(timestamp || Date.now());
  const time = document.createElement("time");
  time.dateTime = date.toISOString();
  time.textContent = timeFormat.format(date);
  return time;
}

function appendMessage(frame, me) {
  append(messageItem(frame, me));
}

function messageItem(frame, me) {
  const item = document.createElement("li");
  item.className = frame.userName === me ? "msg own" : "msg";
  item.dataset.id = String(frame.id);
  const header = document.createElement("header");
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = frame.userName === me ? `${frame.userName} (you)` : frame.userName;
  header.append(who, timeOf(frame.timestamp));
  const text = document.createElement("p");
  text.className = "text";
  text.textContent = frame.content;
  item.append(header, text);
  return item;
}

function appendNotice(text, { error = false, timestamp = 0 } = {}) {
  append(noticeItem(text, { className: error ? "error" : "" }, timestamp));
}

function noticeItem(text, { className = "" } = {}, timestamp = 0) {
  const item = document.createElement("li");
  item.className = `notice ${className}`.trim();
  item.append(timeOf(timestamp), ` ${text}`);
  return item;
}

// Older messages, asked for when the reader scrolls to the top (rule 14):
// one request at a time, each page put above what is shown without moving
// what the reader looks at, down to the first message.
const older = {
  pending: false,
  done: false, // "Beginning of the conversation" is shown
  reset() {
    this.pending = false;
    this.done = false;
  },
  oldestShown() {
    const first = view.messages.querySelector("li.msg");
    return first ? Number(first.dataset.id) : 0;
  },
  prepend(items) {
    const list = view.messages;
    const fromBottom = list.scrollHeight - list.scrollTop;
    list.prepend(...items);
    list.scrollTop = list.scrollHeight - fromBottom;
    if (this.oldestShown() === 1) {
      this.finish();
    }
  },
  answered(items, connection) {
    this.pending = false;
    if (items.length === 0) {
      this.finish();
    } else {
      this.prepend(items);
      this.fill(connection);
    }
  },
  // A list too short to scroll gives the reader no way to reach its top:
  // ask for older pages until it can scroll, or until the beginning.
  fill(connection) {
    if (view.messages.scrollHeight <= view.messages.clientHeight) {
      this.maybeAsk(connection);
    }
  },
  finish() {
    if (!this.done) {
      this.done = true;
      this.prepend([noticeItem("Beginning of the conversation", { className: "beginning" })]);
    }
  },
  maybeAsk(connection) {
    const oldest = this.oldestShown();
    if (view.messages.scrollTop === 0 && !this.pending && !this.done && oldest > 1) {
      this.pending = connection.requestOlder(oldest);
    }
  },
};

function describeState({ state, attempt, delayMs, reason }, name) {
  switch (state) {
    case State.connecting:
      return attempt ? `Reconnecting (attempt ${attempt + 1})…` : "Connecting…";
    case State.loggingIn:
      return `Logging in as ${name}…`;
    case State.online:
      return `Online as ${name}`;
    case State.waiting: {
      const seconds = Math.max(1, Math.round(delayMs / 1000));
      return `${reason ? `${reason[0].toUpperCase()}${reason.slice(1)}. ` : ""}Trying again in ${seconds} s…`;
    }
    case State.refused:
      return "Not logged in";
    case State.closed:
      return "You left the chat";
    default:
      return "Not connected";
  }
}

function start(codec) {
  const url = new URL("/ws", window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  // The server may hold a dropped connection's name until its idle timeout.
  const connection = new ChatConnection({ url: url.href, codec, nameHoldMs: limits.idleTimeoutMs + 5000 });

  connection.addEventListener("state", ({ detail }) => {
    setStatus(describeState(detail, connection.name), detail.state);
    view.send.disabled = detail.state !== State.online;
    if (detail.state === State.waiting) {
      const why = detail.reason || closeReason(detail.code);
      if (view.chatView.hidden) {
        view.loginError.textContent = `Cannot reach the server: ${why}. Still trying…`;
      } else {
        appendNotice(`Disconnected: ${why}. Reconnecting…`, { error: true });
      }
    }
  });
  connection.addEventListener("online", ({ detail }) => {
    roster.reset(detail.userList, detail.online);
    renderUsers(detail.name);
    if (!detail.reconnected) {
      view.messages.replaceChildren();
      older.reset();
      appendNotice(`Welcome, ${detail.name}. ${roster.size === 1 ? "Nobody else is here yet." : `${roster.size} people are online.`}`);
    } else if (!detail.sameHistory) {
      appendNotice("Reconnected. The server's history started over: what was said while you were away is not shown.", { error: true });
    }
    showChat();
  });
  connection.addEventListener("history", ({ detail: { messages, kind, complete } }) => {
    const me = connection.name;
    switch (kind) {
      case "join": {
        // Before the welcome, set apart by a boundary.
        const items = messages.map((frame) => messageItem(frame, me));
        if (items.length > 0) {
          items.push(noticeItem("Earlier messages are above; you joined here.", { className: "boundary" }));
        }
        older.prepend(items);
        if (messages.length === 0) {
          older.finish(); // nothing was said before
        }
        scrollToBottom();
        older.fill(connection);
        break;
      }
      case "resume":
        appendNotice(
          messages.length === 0
            ? "Reconnected. You missed nothing."
            : `Reconnected. ${messages.length} message${messages.length === 1 ? "" : "s"} you missed:`,
        );
        if (!complete) {
          appendNotice("Some messages from while you were away are no longer kept.", { error: true });
        }
        for (const frame of messages) {
          appendMessage(frame, me);
        }
        break;
      case "older":
        older.answered(
          messages.map((frame) => messageItem(frame, me)),
          connection,
        );
        break;
      default:
        break;
    }
  });
  connection.addEventListener("refused", ({ detail }) => {
    showLogin(
      detail.taken
        ? `Someone took the name "${connection.name}" while you were away. Please choose another.`
        : `The server refused the name: ${detail.reason}.`,
    );
  });
  connection.addEventListener("frame", ({ detail: { frame } }) => {
    const me = connection.name;
    switch (frame.type) {
      case "message":
        appendMessage(frame, me);
        break;
      case "login":
        for (const [name, since] of Object.entries(frame.userList)) {
          roster.join(name, since);
        }
        renderUsers(me);
        appendNotice(`${frame.userName} joined`, { timestamp: frame.timestamp });
        break;
      case "logout":
        roster.leave(frame.userName);
        renderUsers(me);
        appendNotice(`${frame.userName} left`, { timestamp: frame.timestamp });
        break;
      case "presence": {
        // Rule 16: a big room's joins and leaves, gathered.
        const { joined, left } = roster.apply(frame.userList);
        renderUsers(me);
        const parts = [];
        if (joined > 0) {
          parts.push(`${joined} joined`);
        }
        if (left > 0) {
          parts.push(`${left} left`);
        }
        if (parts.length > 0) {
          appendNotice(parts.join(", "), { timestamp: frame.timestamp });
        }
        break;
      }
      default:
        break;
    }
  });
  connection.addEventListener("error", ({ detail }) => {
    appendNotice(`Server: ${detail.content}`, { error: true });
  });

  view.loginForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const problem = nameProblem(view.name.value);
    view.loginError.textContent = problem;
    if (problem) {
      view.name.focus();
      return;
    }
    view.join.disabled = true;
    connection.login(view.name.value.trim());
  });

  view.sendForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const content = view.text.value;
    view.sendError.textContent = "";
    if (content.trim().length === 0) {
      return;
    }
    const bytes = encoder.encode(content).length;
    if (bytes > limits.maxContentBytes) {
      view.sendError.textContent = `Too long: ${bytes} bytes, at most ${limits.maxContentBytes}.`;
      return;
    }
    if (!connection.send(content)) {
      view.sendError.textContent = "Not connected; your text is kept and can be sent once back online.";
      return;
    }
    view.text.value = "";
    scrollToBottom();
  });

  view.messages.addEventListener("scroll", () => {
    if (isNearBottom()) {
      view.jump.hidden = true;
    }
    older.maybeAsk(connection);
  });
  view.jump.addEventListener("click", () => {
    scrollToBottom();
    view.text.focus();
  });
  view.logout.addEventListener("click", () => {
    connection.logout();
    roster.reset({});
    showLogin();
  });

  showLogin();
}

// The page cannot work: say why where the form was, and keep it disabled.
function showFatal(text) {
  setStatus("Cannot start", "error");
  view.loginError.textContent = text;
  view.loginView.classList.add("broken");
  view.name.disabled = true;
  view.join.disabled = true;
}

async function loadLimits() {
  const response = await fetch("/config");
  if (!response.ok) {
    throw new Error(`GET /config answered ${response.status}`);
  }
  const config = await response.json();
  for (const key of Object.keys(limits)) {
    if (Number.isFinite(config[key]) && config[key] > 0) {
      limits[key] = config[key];
    }
  }
}

async function main() {
  if (!globalThis.protobuf) {
    showFatal(
      "The page's protobuf.js library did not load (vendor/protobuf.min.js). The build stages it " +
        "with npm from package-lock.json: install npm (scripts/install-deps), then configure and build again.",
    );
    return;
  }
  try {
    await loadLimits();
    start(await loadCodec(globalThis.protobuf, "/chat.proto"));
  } catch (error) {
    showFatal(`Cannot start: ${error.message}`);
  }
}

main();
