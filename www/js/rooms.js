// Rooms (contract version 3) without the DOM: room names as the server takes
// them, the address's #room, the busiest-rooms list, the numbering of one
// room's messages across drops, the pace of joins, and the page's list of
// rooms with their unread counts. node tests it all (page-modules.test.mjs).

export const maxRoomCodePoints = 64;

// Unicode's White_Space, which the server trims: not quite JavaScript's
// trim(), which leaves U+0085 and takes U+FEFF.
const edgeWhiteSpace = /^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/gu;

// The name the server uses: trimmed at both ends.
export function normalizeRoom(raw) {
  return String(raw ?? "").replace(edgeWhiteSpace, "");
}

// Mirrors contract rule 17 so that most mistakes are explained at once; the
// server stays the judge. "" when the (trimmed) name is valid.
export function roomProblem(raw) {
  const room = normalizeRoom(raw);
  if (room.length === 0) {
    return "Please enter a room name.";
  }
  if (!room.isWellFormed()) {
    return "A room name must be valid text.";
  }
  if ([...room].length > maxRoomCodePoints) {
    return `A room name has at most ${maxRoomCodePoints} characters.`;
  }
  if (/\p{Cc}/u.test(room)) {
    return "A room name cannot contain control characters.";
  }
  if (room.startsWith("@")) {
    return "A room name cannot begin with @.";
  }
  return "";
}

// The address names the room shown: "#red" is the room red, no fragment the
// lobby. Any text works in a name, so it is percent-encoded.
export function hashForRoom(room) {
  return room === "" ? "" : `#${encodeURIComponent(room)}`;
}

export function roomFromHash(hash) {
  const text = String(hash ?? "").replace(/^#/, "");
  let room = text;
  try {
    room = decodeURIComponent(text);
  } catch {
    // Not percent-encoded by us: take it as it is.
  }
  return normalizeRoom(room);
}

// A `rooms` answer (name -> users) as a list, the busiest first, at most
// `limit` entries.
export function busiestRooms(rooms, limit = 20) {
  return Object.entries(rooms ?? {})
    .map(([name, users]) => [name, Number(users)])
    .sort(([a, usersA], [b, usersB]) => usersB - usersA || a.localeCompare(b))
    .slice(0, limit);
}

// The numbering of one room's messages as a client sees it (rules 13, 17):
// the last id seen and the epoch it counts in, so that a login or join after
// a drop asks for what was missed, and messages already seen are not passed
// on twice. The lobby has one, and so has every room the user is in.
export class Sequence {
  lastId = 0; // the newest message id seen
  epoch = ""; // the history those ids count in
  #resuming = false; // the last request carried lastId and epoch
  #welcomeHistory = false; // the history frame that follows the welcome is due
  #resumedWithin = false; // the last welcome continued the history we had
  #welcomeId = 0; // the room's last message id when we came in

  // What a login or join asks for: where we were, when coming back after a
  // drop having seen something; a first arrival asks for nothing in particular.
  resumePoint(comingBack) {
    this.#resuming = comingBack && this.lastId > 0;
    return this.#resuming ? { id: this.lastId, epoch: this.epoch } : {};
  }

  // The welcome (login or join). Returns whether it continues the history
  // we had: then the next history frame holds what we missed. Otherwise (a
  // first arrival, or the server's history is another one) the ids start
  // over from what the server says.
  welcome(frame) {
    this.#resumedWithin = this.#resuming && frame.epoch === this.epoch && this.epoch !== "";
    if (!this.#resumedWithin) {
      this.lastId = 0;
    }
    this.epoch = frame.epoch ?? "";
    this.#welcomeId = Number(frame.id ?? 0);
    this.#welcomeHistory = true;
    return this.#resumedWithin;
  }

  // Whether the next history frame is the one that follows the welcome.
  get awaitingWelcomeHistory() {
    return this.#welcomeHistory;
  }

  // A history frame's entries, oldest first. Returns { kind, messages,
  // complete? }: kind "join" (a newcomer's), "resume" (what we missed while
  // away; `complete` is false if some could not be recovered) or "older"
  // (an answer to a request for older messages).
  history(entries) {
    const messages = entries.filter((message) => Number(message.id) > 0);
    if (!this.#welcomeHistory) {
      return { kind: "older", messages };
    }
    this.#welcomeHistory = false;
    // Whatever it holds, we start from the welcome's id: live messages follow it.
    const lastBefore = this.lastId;
    const fresh = messages.filter((message) => this.seen(message.id));
    this.lastId = Math.max(this.lastId, this.#welcomeId);
    if (!this.#resumedWithin) {
      return { kind: "join", messages: fresh };
    }
    // What we missed, from the id after ours: a gap shows that some of it
    // is no longer kept (or more was missed than the server sends).
    const first = messages.length > 0 ? Number(messages[0].id) : this.#welcomeId + 1;
    const complete = first === lastBefore + 1 || this.#welcomeId === lastBefore;
    return { kind: "resume", messages: fresh, complete };
  }

  // A message is new if its id is above the last seen; it becomes the last.
  seen(id) {
    const number = Number(id);
    if (number <= this.lastId) {
      return false;
    }
    this.lastId = number;
    return true;
  }
}

// A token bucket for the frames a client sends by itself (joining its rooms
// again after a drop): every frame counts against the server's rate limit
// (rule 7, by default 20 a second with a burst of 40), so a user in 100
// rooms must not send 100 joins at once. The defaults take half of that,
// leaving the rest to what the user does meanwhile.
export class Pacer {
  #burst;
  #perSecond;
  #tokens;
  #at = null;

  constructor({ burst = 20, perSecond = 10 } = {}) {
    this.#burst = burst;
    this.#perSecond = perSecond;
    this.#tokens = burst;
  }

  // 0: a frame may go now, and it is counted. Otherwise the milliseconds
  // until one may.
  take(nowMs) {
    if (this.#at !== null) {
      this.#tokens = Math.min(this.#burst, this.#tokens + ((nowMs - this.#at) * this.#perSecond) / 1000);
    }
    this.#at = nowMs;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil(((1 - this.#tokens) * 1000) / this.#perSecond));
  }
}

// The rooms the page shows: the lobby first, then the rooms the user is in
// in the order joined, which one is shown, and how many messages arrived in
// each while another was shown.
export class RoomList {
  #rooms = new Map([["", 0]]); // room -> unread messages
  #active = "";

  reset() {
    this.#rooms = new Map([["", 0]]);
    this.#active = "";
  }

  has(room) {
    return this.#rooms.has(room);
  }

  // Rooms besides the lobby.
  get size() {
    return this.#rooms.size - 1;
  }

  // False if it is there already.
  add(room) {
    if (this.#rooms.has(room)) {
      return false;
    }
    this.#rooms.set(room, 0);
    return true;
  }

  // The lobby stays. Returns whether the room was there; the shown room
  // becomes the lobby if it was this one.
  remove(room) {
    if (room === "" || !this.#rooms.delete(room)) {
      return false;
    }
    if (this.#active === room) {
      this.#active = "";
    }
    return true;
  }

  get active() {
    return this.#active;
  }

  // Shows `room`, which counts as read. False if the user is not in it.
  activate(room) {
    if (!this.#rooms.has(room)) {
      return false;
    }
    this.#active = room;
    this.#rooms.set(room, 0);
    return true;
  }

  // A message arrived in `room`: unread unless the room is shown. Returns
  // the room's unread count.
  arrived(room, count = 1) {
    if (!this.#rooms.has(room)) {
      return 0;
    }
    const unread = room === this.#active ? 0 : this.#rooms.get(room) + count;
    this.#rooms.set(room, unread);
    return unread;
  }

  unread(room) {
    return this.#rooms.get(room) ?? 0;
  }

  get totalUnread() {
    let total = 0;
    for (const unread of this.#rooms.values()) {
      total += unread;
    }
    return total;
  }

  // [{ room, unread, active }], the lobby first.
  entries() {
    return [...this.#rooms].map(([room, unread]) => ({ room, unread, active: room === this.#active }));
  }
}
