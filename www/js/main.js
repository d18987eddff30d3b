// The page: wires a ChatConnection to the DOM. Every text that came over the
// wire goes in through textContent, never as HTML.
//
// Rooms (contract version 3): the lobby and the rooms the user is in each
// have their own view (js/room-view.js); one is shown, and named in the
// address (#room), so that a link opens it. Messages in the others count as
// unread until they are shown.

import { loadCodec } from "./codec.js";
import { ChatConnection, State, closeReason } from "./connection.js";
import { RoomView, messageItem } from "./room-view.js";
import { RoomList, busiestRooms, hashForRoom, normalizeRoom, roomFromHash, roomProblem } from "./rooms.js";

const maxNameCodePoints = 32;
// The server's limits come from GET /config; these are its defaults.
const limits = { maxContentBytes: 4096, idleTimeoutMs: 30000, maxRoomsPerUser: 100 };
const busiestShown = 20;

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
  rooms: $("rooms"),
  joinRoomForm: $("join-room-form"),
  roomName: $("room-name"),
  roomError: $("room-error"),
  busiest: $("busiest"),
  refreshRooms: $("refresh-rooms"),
  usersLabel: $("users-label"),
  users: $("users"),
  userCount: $("user-count"),
  roomTitle: $("room-title"),
  leaveRoom: $("leave-room"),
  jump: $("jump"),
  sendForm: $("send-form"),
  text: $("text"),
  send: $("send"),
  sendError: $("send-error"),
};

const roomList = new RoomList();
const views = new Map(); // room -> RoomView, the lobby's included
const encoder = new TextEncoder();
const pageTitle = document.title;

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

const roomLabel = (room) => (room === "" ? "Lobby" : room);

function viewOf(room) {
  let roomView = views.get(room);
  if (roomView === undefined) {
    roomView = new RoomView(room, view.jump);
    views.set(room, roomView);
    view.jump.before(roomView.list);
  }
  return roomView;
}

const activeView = () => views.get(roomList.active);

function renderUsers(me) {
  const roomView = activeView();
  const roster = roomView.roster;
  view.usersLabel.textContent = roomView.room === "" ? "Online" : "In this room";
  view.userCount.textContent = String(roster.size);
  const items = roster.entries().map(([name, since]) => {
    const item = document.createElement("li");
    item.textContent = name;
    if (since) {
      item.title = `${roomView.room === "" ? "online" : "here"} since ${since}`;
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

// The rooms panel: the lobby, then the rooms the user is in, each with its
// unread count and (but the lobby) a button to leave it.
function renderRooms() {
  const items = roomList.entries().map(({ room, unread, active }) => {
    const item = document.createElement("li");
    item.className = room === "" ? "room lobby" : "room";
    item.dataset.room = room;
    const open = document.createElement("button");
    open.type = "button";
    open.className = "room-open";
    if (active) {
      open.setAttribute("aria-current", "page");
    }
    const name = document.createElement("span");
    name.className = "room-name";
    name.textContent = roomLabel(room);
    const count = document.createElement("span");
    count.className = "unread";
    count.textContent = String(unread);
    count.hidden = unread === 0;
    count.title = `${unread} unread`;
    open.append(name, count);
    open.addEventListener("click", () => goTo(room));
    item.append(open);
    if (room !== "") {
      const leave = document.createElement("button");
      leave.type = "button";
      leave.className = "room-leave quiet";
      leave.textContent = "×";
      leave.title = `Leave ${room}`;
      leave.setAttribute("aria-label", `Leave ${room}`);
      leave.addEventListener("click", () => leaveRoom(room));
      item.append(leave);
    }
    return item;
  });
  view.rooms.replaceChildren(...items);
  const unread = roomList.totalUnread;
  document.title = unread > 0 ? `(${unread}) ${pageTitle}` : pageTitle;
}

function renderBusiest(rooms) {
  const entries = busiestRooms(rooms, busiestShown);
  if (entries.length === 0) {
    const none = document.createElement("li");
    none.className = "none";
    none.textContent = "No rooms yet: join one by name.";
    view.busiest.replaceChildren(none);
    return;
  }
  view.busiest.replaceChildren(
    ...entries.map(([room, users]) => {
      const item = document.createElement("li");
      item.dataset.room = room;
      const open = document.createElement("button");
      open.type = "button";
      open.className = "room-open";
      const name = document.createElement("span");
      name.className = "room-name";
      name.textContent = room;
      const count = document.createElement("span");
      count.className = "users-in";
      count.textContent = String(users);
      count.title = `${users} ${users === 1 ? "user" : "users"}`;
      open.append(name, count);
      open.addEventListener("click", () => goTo(room));
      item.append(open);
      return item;
    }),
  );
}

// Shows `room`, which the user is in.
function show(room) {
  const current = activeView();
  if (current.room !== room || !current.shown) {
    current.hide();
  }
  roomList.activate(room);
  const next = activeView();
  next.show();
  view.roomTitle.textContent = roomLabel(room);
  view.leaveRoom.hidden = room === "";
  view.leaveRoom.textContent = room === "" ? "Leave room" : `Leave ${room}`;
  view.text.placeholder = room === "" ? "Write a message, Enter sends" : `Message ${room}, Enter sends`;
  view.sendError.textContent = "";
  renderRooms();
  renderUsers(connection.name);
  next.fill(connection);
}

// The address names the shown room; a new room shown is a new entry in the
// browser's history, so that Back goes to the one before.
function setAddress(room, { replace = false } = {}) {
  const hash = hashForRoom(room);
  if (roomFromHash(window.location.hash) === room && window.location.hash === hash) {
    return;
  }
  const url = `${window.location.pathname}${window.location.search}${hash}`;
  if (replace) {
    window.history.replaceState(null, "", url);
  } else {
    window.history.pushState(null, "", url);
  }
}

// Goes to `raw` (a room name as typed, or from the address), joining it if
// the user is not in it. Returns the problem with the name, if any.
function goTo(raw, { fromAddress = false } = {}) {
  const room = normalizeRoom(raw);
  if (room !== "" && !roomList.has(room)) {
    const problem = roomProblem(room);
    if (problem) {
      return problem;
    }
    if (roomList.size >= limits.maxRoomsPerUser) {
      return `You are in ${roomList.size} rooms, the most this server allows; leave one first.`;
    }
    if (!connection.join(room)) {
      return "Not connected; try again once back online.";
    }
    roomList.add(room);
    viewOf(room).notice(`Joining ${room}…`);
  }
  show(room);
  setAddress(room, { replace: fromAddress });
  return "";
}

function leaveRoom(room) {
  connection.leave(room);
  const wasShown = roomList.active === room;
  roomList.remove(room);
  views.get(room)?.list.remove();
  views.delete(room);
  if (wasShown) {
    show("");
    setAddress("", { replace: true });
  } else {
    renderRooms();
  }
}

// A new login: the lobby alone, empty.
function resetRooms() {
  for (const [room, roomView] of views) {
    if (room !== "") {
      roomView.list.remove();
      views.delete(room);
    }
  }
  roomList.reset();
  viewOf("").clear();
  viewOf("").roster.reset({});
}

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

let connection;

// A message arrived in `room`: unread unless shown.
function arrived(room, count, me, from) {
  if (count > 0 && from !== me) {
    roomList.arrived(room, count);
    renderRooms();
  }
}

function start(codec) {
  const url = new URL("/ws", window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  // The server may hold a dropped connection's name until its idle timeout.
  connection = new ChatConnection({ url: url.href, codec, nameHoldMs: limits.idleTimeoutMs + 5000 });
  viewOf("");
  show("");

  let lastState = State.idle;
  connection.addEventListener("state", ({ detail }) => {
    setStatus(describeState(detail, connection.name), detail.state);
    view.send.disabled = detail.state !== State.online;
    if (detail.state === State.waiting) {
      const why = detail.reason || closeReason(detail.code);
      if (view.chatView.hidden) {
        view.loginError.textContent = `Cannot reach the server: ${why}. Still trying…`;
      } else if (lastState === State.online) {
        // The drop, in every room; the attempts that follow are on the status line.
        for (const roomView of views.values()) {
          roomView.notice(`Disconnected: ${why}. Reconnecting…`, { error: true });
        }
      }
    }
    lastState = detail.state;
  });
  connection.addEventListener("online", ({ detail }) => {
    // Requests for older messages went with the old connection.
    for (const roomView of views.values()) {
      roomView.older.pending = false;
    }
    const lobby = viewOf("");
    lobby.roster.reset(detail.userList, detail.online);
    if (!detail.reconnected) {
      resetRooms();
      lobby.roster.reset(detail.userList, detail.online);
      lobby.notice(`Welcome, ${detail.name}. ${lobby.roster.size === 1 ? "Nobody else is here yet." : `${lobby.roster.size} people are online.`}`);
    } else if (!detail.sameHistory) {
      // Its ids count anew: what is shown cannot be continued.
      lobby.clear();
      lobby.notice("Reconnected. The server's history started over: what was said while you were away is not shown.", { error: true });
    }
    showChat();
    if (!detail.reconnected) {
      // The room in the address opens with the page.
      const problem = goTo(roomFromHash(window.location.hash), { fromAddress: true });
      if (problem) {
        view.roomError.textContent = `The address names no room: ${problem}`;
        show("");
        setAddress("", { replace: true });
      }
    } else {
      show(roomList.active);
    }
    connection.requestRooms();
  });
  connection.addEventListener("joined", ({ detail }) => {
    const roomView = views.get(detail.room);
    if (roomView === undefined) {
      return;
    }
    roomView.roster.reset(detail.userList, detail.online);
    if (!detail.rejoined) {
      roomView.notice(
        `You joined ${detail.room}. ${roomView.roster.size === 1 ? "Nobody else is here yet." : `${roomView.roster.size} people are here.`}`,
      );
      connection.requestRooms();
    } else if (!detail.sameHistory) {
      roomView.clear();
      roomView.notice("Reconnected. The server's history started over: what was said while you were away is not shown.", { error: true });
    }
    if (roomView.shown) {
      renderUsers(connection.name);
    }
  });
  connection.addEventListener("left", ({ detail: { room, reason } }) => {
    if (!roomList.has(room)) {
      return;
    }
    leaveRoom(room);
    view.roomError.textContent = reason ? `Could not join ${room}: ${reason}` : `You are no longer in ${room}.`;
  });
  connection.addEventListener("rooms", ({ detail }) => renderBusiest(detail.rooms));
  connection.addEventListener("history", ({ detail: { room, messages, kind, complete, failed } }) => {
    const roomView = views.get(room);
    if (roomView === undefined) {
      return;
    }
    const me = connection.name;
    switch (kind) {
      case "join":
        roomView.joinHistory(messages, me);
        roomView.fill(connection);
        break;
      case "resume":
        roomView.notice(
          messages.length === 0
            ? "Reconnected. You missed nothing."
            : `Reconnected. ${messages.length} message${messages.length === 1 ? "" : "s"} you missed:`,
        );
        if (!complete) {
          roomView.notice("Some messages from while you were away are no longer kept.", { error: true });
        }
        for (const frame of messages) {
          roomView.append(messageItem(frame, me));
        }
        arrived(room, messages.filter((frame) => frame.userName !== me).length, me, "");
        break;
      case "older":
        roomView.answered(messages, me, connection, failed);
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
    const room = frame.room ?? "";
    const roomView = views.get(room);
    if (roomView === undefined) {
      return;
    }
    const roster = roomView.roster;
    let usersChanged = false;
    switch (frame.type) {
      case "message":
        roomView.append(messageItem(frame, me));
        arrived(room, 1, me, frame.userName);
        break;
      case "login": // the lobby's
      case "join": // a room's
        for (const [name, since] of Object.entries(frame.userList)) {
          roster.join(name, since);
        }
        usersChanged = true;
        roomView.notice(`${frame.userName} joined`, { timestamp: frame.timestamp });
        break;
      case "logout":
      case "leave":
        roster.leave(frame.userName);
        usersChanged = true;
        roomView.notice(`${frame.userName} left`, { timestamp: frame.timestamp });
        break;
      case "presence": {
        // Rule 16: a big room's joins and leaves, gathered.
        const { joined, left } = roster.apply(frame.userList);
        usersChanged = true;
        const parts = [];
        if (joined > 0) {
          parts.push(`${joined} joined`);
        }
        if (left > 0) {
          parts.push(`${left} left`);
        }
        if (parts.length > 0) {
          roomView.notice(parts.join(", "), { timestamp: frame.timestamp });
        }
        break;
      }
      default:
        break;
    }
    if (usersChanged && roomView.shown) {
      renderUsers(me);
    }
  });
  connection.addEventListener("error", ({ detail: { content, room } }) => {
    // An error about a room goes to its view; one about none, to the view
    // shown, where the user just did something.
    (views.get(room) ?? activeView()).notice(`Server: ${content}`, { error: true });
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
    if (!connection.send(content, roomList.active)) {
      view.sendError.textContent =
        connection.state === State.online
          ? "You are not in this room yet; your text is kept and can be sent in a moment."
          : "Not connected; your text is kept and can be sent once back online.";
      return;
    }
    view.text.value = "";
    activeView().scrollToBottom();
  });

  view.joinRoomForm.addEventListener("submit", (event) => {
    event.preventDefault();
    // An empty field is a mistake, not a way back to the lobby.
    const problem = normalizeRoom(view.roomName.value) === "" ? roomProblem(view.roomName.value) : goTo(view.roomName.value);
    view.roomError.textContent = problem;
    if (problem) {
      view.roomName.focus();
      return;
    }
    view.roomName.value = "";
    view.text.focus();
  });
  view.leaveRoom.addEventListener("click", () => {
    if (roomList.active !== "") {
      leaveRoom(roomList.active);
      view.text.focus();
    }
  });
  view.refreshRooms.addEventListener("click", () => connection.requestRooms());

  // Each list scrolls on its own; a scroll event does not bubble, so one
  // listener in the capture phase serves them all.
  view.chatView.addEventListener(
    "scroll",
    (event) => {
      const roomView = views.get(event.target.dataset?.room);
      if (roomView === undefined || !roomView.shown) {
        return;
      }
      roomView.scrolled();
      roomView.maybeAsk(connection);
    },
    true,
  );
  view.jump.addEventListener("click", () => {
    activeView().scrollToBottom();
    view.text.focus();
  });
  view.logout.addEventListener("click", () => {
    connection.logout();
    resetRooms();
    show("");
    showLogin();
  });
  // A link to #room, Back or Forward, or the address edited: go there.
  const followAddress = () => {
    if (connection.state !== State.online && view.chatView.hidden) {
      return; // logging in takes the address as it is then
    }
    const room = roomFromHash(window.location.hash);
    if (room === roomList.active) {
      return;
    }
    const problem = goTo(room, { fromAddress: true });
    view.roomError.textContent = problem ? `The address names no room: ${problem}` : "";
  };
  window.addEventListener("hashchange", followAddress);
  window.addEventListener("popstate", followAddress);

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
