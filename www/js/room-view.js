// One room's message view: its own list with its own scroll-back (older
// pages asked for per room, rule 14), its own user list, and where the reader
// left it when another room is shown. Every text that came over the wire goes
// in through textContent, never as HTML.

import { Roster } from "./roster.js";

const maxShownMessages = 1000; // older ones leave the page: memory stays bounded
// A room not shown, read to the end, keeps fewer: a user in 100 rooms does
// not hold 100 full lists.
const maxHiddenMessages = 250;
export const stickToBottomPx = 48;

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

export function timeOf(timestamp) {
  const date = new Date(timestamp || Date.now());
  const time = document.createElement("time");
  time.dateTime = date.toISOString();
  time.textContent = timeFormat.format(date);
  return time;
}

export function messageItem(frame, me) {
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

export function noticeItem(text, { className = "" } = {}, timestamp = 0) {
  const item = document.createElement("li");
  item.className = `notice ${className}`.trim();
  item.append(timeOf(timestamp), ` ${text}`);
  return item;
}

export class RoomView {
  room;
  list;
  roster = new Roster();
  // Older messages, asked for when the reader scrolls to the top: one
  // request at a time, each page put above what is shown without moving
  // what the reader looks at, down to the first message.
  older = { pending: false, done: false };
  #jump;
  #shown = false;
  #savedTop = null; // where the reader left it; null: at the bottom
  #newBelow = false; // messages came below while the reader was above them

  // `jump`: the "New messages" button, shown while the reader of this view
  // is above new messages.
  constructor(room, jump) {
    this.room = room;
    this.#jump = jump;
    const list = document.createElement("ol");
    list.className = "messages";
    list.setAttribute("role", "log");
    list.setAttribute("aria-live", "polite");
    list.setAttribute("aria-label", room === "" ? "Messages in the lobby" : `Messages in ${room}`);
    list.tabIndex = 0;
    list.dataset.room = room;
    list.hidden = true;
    this.list = list;
  }

  get shown() {
    return this.#shown;
  }

  // The shown view's list is #messages; the others keep their place.
  show() {
    if (this.#shown) {
      return;
    }
    this.#shown = true;
    this.list.hidden = false;
    this.list.id = "messages";
    if (this.#savedTop === null) {
      this.scrollToBottom();
    } else {
      this.list.scrollTop = this.#savedTop;
      this.#jump.hidden = !this.#newBelow || this.isNearBottom();
    }
  }

  hide() {
    if (!this.#shown) {
      return;
    }
    this.#savedTop = this.isNearBottom() ? null : this.list.scrollTop;
    this.#shown = false;
    this.list.hidden = true;
    this.list.removeAttribute("id");
    this.#trim();
  }

  // Empties the view for a new login.
  clear() {
    this.list.replaceChildren();
    this.older = { pending: false, done: false };
    this.#savedTop = null;
    this.#newBelow = false;
  }

  // The reader scrolled: at the bottom, everything below has been seen.
  scrolled() {
    if (this.#shown && this.isNearBottom()) {
      this.#newBelow = false;
      this.#jump.hidden = true;
    }
  }

  isNearBottom() {
    if (!this.#shown) {
      return this.#savedTop === null;
    }
    const list = this.list;
    return list.scrollHeight - list.scrollTop - list.clientHeight < stickToBottomPx;
  }

  scrollToBottom() {
    this.#newBelow = false;
    if (this.#shown) {
      this.list.scrollTop = this.list.scrollHeight;
      this.#jump.hidden = true;
    } else {
      this.#savedTop = null;
    }
  }

  // Appends an item; follows it only if the reader was already at the bottom.
  append(item) {
    const follow = this.isNearBottom();
    this.list.append(item);
    this.#trim();
    if (follow) {
      this.scrollToBottom();
    } else {
      this.#newBelow = true;
      if (this.#shown) {
        this.#jump.hidden = false;
      }
    }
  }

  notice(text, { error = false, timestamp = 0 } = {}) {
    this.append(noticeItem(text, { className: error ? "error" : "" }, timestamp));
  }

  #trim() {
    const max = this.#shown || this.#savedTop !== null ? maxShownMessages : maxHiddenMessages;
    while (this.list.childElementCount > max) {
      if (this.list.firstElementChild.classList.contains("beginning")) {
        this.older.done = false; // scrolled out: older pages can be asked for again
      }
      this.list.firstElementChild.remove();
    }
  }

  oldestShown() {
    const first = this.list.querySelector("li.msg");
    return first ? Number(first.dataset.id) : 0;
  }

  // Puts items above what is shown, keeping what the reader looks at still.
  prepend(items) {
    const list = this.list;
    const fromBottom = list.scrollHeight - list.scrollTop;
    list.prepend(...items);
    if (this.#shown) {
      list.scrollTop = list.scrollHeight - fromBottom;
    }
    this.#trim();
    if (this.oldestShown() === 1) {
      this.finish();
    }
  }

  // The newcomer's history: before the welcome, set apart by a boundary.
  joinHistory(messages, me) {
    const items = messages.map((frame) => messageItem(frame, me));
    if (items.length > 0) {
      items.push(noticeItem("Earlier messages are above; you joined here.", { className: "boundary" }));
    }
    this.prepend(items);
    if (messages.length === 0) {
      this.finish(); // nothing was said before
    }
    this.scrollToBottom();
  }

  // The answer to a request for older messages: only what is older than
  // what is shown goes in (an answer may come after the list changed).
  answered(messages, me, connection, failed = false) {
    this.older.pending = false;
    if (failed) {
      return; // scrolling up asks again
    }
    const oldest = this.oldestShown();
    const items = messages.filter((frame) => oldest === 0 || Number(frame.id) < oldest).map((frame) => messageItem(frame, me));
    if (messages.length === 0) {
      this.finish();
    } else if (items.length > 0) {
      this.prepend(items);
      this.fill(connection);
    }
  }

  // A list too short to scroll gives the reader no way to reach its top:
  // ask for older pages until it can scroll, or until the beginning.
  fill(connection) {
    if (this.#shown && this.list.scrollHeight <= this.list.clientHeight) {
      this.maybeAsk(connection);
    }
  }

  finish() {
    if (!this.older.done) {
      this.older.done = true;
      this.prepend([noticeItem("Beginning of the conversation", { className: "beginning" })]);
    }
  }

  maybeAsk(connection) {
    const oldest = this.oldestShown();
    if (this.#shown && this.list.scrollTop === 0 && !this.older.pending && !this.older.done && oldest > 1) {
      this.older.pending = connection.requestOlder(oldest, this.room);
    }
  }
}
