// The online-user list, kept from the server's notices: the newcomer's login
// carries the whole list, later login/logout notices carry one change each.

export class Roster {
  #users = new Map(); // name -> join time (RFC 3339)

  reset(userList) {
    this.#users = new Map(Object.entries(userList ?? {}));
  }

  join(name, since) {
    this.#users.set(name, since ?? "");
  }

  leave(name) {
    return this.#users.delete(name);
  }

  has(name) {
    return this.#users.has(name);
  }

  get size() {
    return this.#users.size;
  }

  // Sorted by name, the way people look for someone in a list.
  entries() {
    return [...this.#users].sort(([a], [b]) => a.localeCompare(b));
  }
}
