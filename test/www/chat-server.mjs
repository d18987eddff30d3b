// Starts a real chat_app for the browser tests and stops it again.
// CHAT_APP_PATH names the binary (default: the debug preset's).

import { spawn } from "node:child_process";
import { once } from "node:events";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const chatAppPath = process.env.CHAT_APP_PATH ?? path.join(root, "build/debug/chat_app");
export const wwwRoot = path.join(root, "www");

const startTimeoutMs = 15000;

export class ChatServer {
  #process;
  #log = "";
  port;

  // port 0: any free port; the server's log says which one it took.
  static async start({ port = 0, args = [] } = {}) {
    const server = new ChatServer();
    await server.#spawn(port, args);
    return server;
  }

  get url() {
    return `http://127.0.0.1:${this.port}/`;
  }

  get log() {
    return this.#log;
  }

  async #spawn(port, args) {
    const child = spawn(
      chatAppPath,
      ["--address", "127.0.0.1", "--port", String(port), "--www", wwwRoot, "--log-dir", "", "--threads", "1",
        // History in memory unless a test names a file.
        ...(args.includes("--history-db") ? [] : ["--history-db", ""]), ...args],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    this.#process = child;
    const listening = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`chat_app did not start in ${startTimeoutMs} ms:\n${this.#log}`)), startTimeoutMs);
      const onData = (chunk) => {
        this.#log += chunk;
        const match = /listening on 127\.0\.0\.1:(\d+)/.exec(this.#log);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      };
      child.stdout.setEncoding("utf8").on("data", onData);
      child.stderr.setEncoding("utf8").on("data", onData);
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`chat_app exited (${code ?? signal}) before listening:\n${this.#log}`));
      });
      child.once("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    this.port = await listening;
  }

  // Resolves once the log holds `text` (a cluster node: "the room can be reached").
  async waitForLog(text, timeoutMs = startTimeoutMs) {
    const child = this.#process;
    if (this.#log.includes(text)) {
      return;
    }
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.stdout.off("data", onData);
        reject(new Error(`"${text}" not in the log within ${timeoutMs} ms:\n${this.#log}`));
      }, timeoutMs);
      const onData = () => {
        if (this.#log.includes(text)) {
          clearTimeout(timer);
          child.stdout.off("data", onData);
          resolve();
        }
      };
      child.stdout.on("data", onData);
    });
  }

  // SIGTERM, as an operator would; resolves with the exit code.
  async stop() {
    const child = this.#process;
    if (child.exitCode !== null || child.signalCode !== null) {
      return child.exitCode;
    }
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    const [code] = await exited;
    return code;
  }
}

// A redis-server of the test's own, on a port below the ephemeral range
// (where no client connection takes it first), for cluster nodes.
export class RedisServer {
  #process;
  port;

  static async start() {
    const redis = new RedisServer();
    redis.port = 20000 + Math.floor(Math.random() * 12000);
    const child = spawn(
      "redis-server",
      ["--port", String(redis.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    redis.#process = child;
    let log = "";
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${log}`)), startTimeoutMs);
      child.stdout.setEncoding("utf8").on("data", (chunk) => {
        log += chunk;
        if (log.includes("Ready to accept connections")) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited (${code}):\n${log}`));
      });
    });
    return redis;
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  async stop() {
    const exited = once(this.#process, "exit");
    this.#process.kill("SIGTERM");
    await exited;
  }
}

// A TCP proxy in front of a server whose connections the test can cut, as a
// network would: every connection through it ends at once (the browser sees
// its WebSocket close with 1006, the server sees the TCP connection end), and
// new ones are refused until restore().
export class CuttableProxy {
  #server;
  #sockets = new Set();
  #cut = false;
  port;

  static async start(targetPort) {
    const proxy = new CuttableProxy();
    proxy.#server = net.createServer((client) => proxy.#connect(client, targetPort));
    proxy.#server.listen(0, "127.0.0.1");
    await once(proxy.#server, "listening");
    proxy.port = proxy.#server.address().port;
    return proxy;
  }

  get url() {
    return `http://127.0.0.1:${this.port}/`;
  }

  #connect(client, targetPort) {
    if (this.#cut) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, "127.0.0.1");
    for (const [from, to] of [[client, upstream], [upstream, client]]) {
      this.#sockets.add(from);
      from.on("error", () => to.destroy());
      from.on("close", () => {
        this.#sockets.delete(from);
        to.destroy();
      });
      from.pipe(to);
    }
  }

  cut() {
    this.#cut = true;
    for (const socket of this.#sockets) {
      socket.destroy();
    }
  }

  restore() {
    this.#cut = false;
  }

  async stop() {
    this.cut();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}
