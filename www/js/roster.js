// The online-user list, kept from the server's notices: the newcomer's login
// carries the list, later login/logout notices carry one change each, and in
// a big room (rule 16) presence frames carry several. There, the welcome
// lists only the latest to join and says in its content how many are online:
// the list is then partial, and the count is the server's.

export class Roster {
  #users = new Map(); // name -> join time (RFC 3339)
  #online = 0; // users online, listed or not

  reset(userList, online = 0) {
    this.#users = new Map(Object.entries(userList ?? {}));
    this.#online = Math.max(online, this.#users.size);
  }

  join(name, since) {
    if (!this.#users.has(name)) {
      this.#online += 1;
    }
    this.#users.set(name, since ?? "");
  }

  leave(name) {
    const listed = this.#users.delete(name);
    if (listed || this.partial) {
      this.#online = Math.max(this.#online - 1, this.#users.size);
    }
    return listed;
  }

  // A presence frame: name -> join time, or "" for a leave. Repeats of what
  // is known change nothing. Returns how many joined and left.
  apply(userList) {
    let joined = 0;
    let left = 0;
    for (const [name, since] of Object.entries(userList ?? {})) {
      if (since === "") {
        if (this.#users.has(name) || this.partial) {
          this.leave(name);
          left += 1;
        }
      } else if (!this.#users.has(name)) {
        this.join(name, since);
        joined += 1;
      } else {
        this.#users.set(name, since); // left and came back within the interval
      }
    }
    return { joined, left };
  }

  has(name) {
    return this.#users.has(name);
  }

  // Users online, listed or not.
  get size() {
    return this.#online;
  }

  // Whether some users online are not listed (a big room's welcome).
  get partial() {
    return this.#online > this.#users.size;
  }

  get unlisted() {
    return this.#online - this.#users.size;
  }

  // Sorted by name, the way people look for someone in a list.
  entries() {
    return [...this.#users].sort(([a], [b]) => a.localeCompare(b));
  }
}
