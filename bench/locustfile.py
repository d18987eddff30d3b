"""Locust users for the chat server: each logs in and chats at a steady pace.

    locust -f bench/locustfile.py --host ws://127.0.0.1:9000/ws

Every user opens a WebSocket to /ws, logs in under a name of its own, then
sends one message per 1/--chat-rate seconds, --chat-size content bytes each,
starting at its own random point of the first interval: chat_bench's paced
mode (--rate, --size), as independent users do. Frames are protobuf
ChatRequests (docs/protocol.md), compiled from proto/chat.proto with protoc
when Locust loads this file, so that the schema has one source.

What Locust's statistics show, request type "WS":
  connect    the WebSocket handshake
  login      the login frame until the server's welcome (or its error)
  message    a message until its own broadcast comes back (the server's
             acknowledgement), or an error, a close or ACK_TIMEOUT
  broadcast  each message of another Locust user received: the time since
             its sender sent it (the sender's clock: across machines, add
             their clock difference)
and as failures: refused logins, error answers, connections the server
closed (with the close code), connections that could not be opened.
"""

import argparse
import importlib.util
import itertools
import os
import random
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

# locust first: it monkey-patches the standard library for gevent, which
# websocket-client's blocking sockets then use without knowing.
from locust import User, events, task
import gevent
from gevent.event import AsyncResult
from google.protobuf.message import DecodeError
import websocket

ACK_TIMEOUT = 10.0  # seconds a message may wait for its own broadcast
CONNECT_TIMEOUT = 10.0  # seconds for the handshake and for the welcome
CLOSE_TIMEOUT = 2.0  # seconds on stop for the server's close after a logout


def _load_chat_pb2():
    """chat_pb2, generated from proto/chat.proto into a folder that is gone again."""
    proto = Path(__file__).resolve().parent.parent / "proto" / "chat.proto"
    with tempfile.TemporaryDirectory() as out:
        try:
            subprocess.run(["protoc", f"--proto_path={proto.parent}", f"--python_out={out}",
                            proto.name], check=True)
        except FileNotFoundError:
            raise SystemExit("locustfile: protoc is needed (Debian: protobuf-compiler)") from None
        spec = importlib.util.spec_from_file_location("chat_pb2", Path(out) / "chat_pb2.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


chat_pb2 = _load_chat_pb2()

# Names unique across Locust processes (a worker per core, on several
# machines) and within one: a random tag per process and a counter. A name
# is used once, so that a login after a drop does not meet its own old one.
_process_tag = os.urandom(3).hex()
_logins = itertools.count(1)


def _positive(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
    return value


@events.init_command_line_parser.add_listener
def _add_options(parser):
    parser.add_argument("--chat-rate", type=_positive, default=1.0,
                        help="messages per second per user (chat_bench --rate)")
    parser.add_argument("--chat-size", type=int, default=100,
                        help="content bytes per message (chat_bench --size), more if the "
                             "sequence number and send time it starts with do not fit")


class ChatError(Exception):
    """The server answered with an `error` frame; its content is the reason."""


class ConnectionClosed(Exception):
    """The server closed the connection (close code and reason) or it broke."""


# What ends a connection: the server's close, a broken socket, a frame that
# is not a ChatRequest (the server never sends one).
CONNECTION_ERRORS = (ConnectionClosed, OSError, websocket.WebSocketException, DecodeError)


def chat_url(host):
    """ws://host:port/ws from --host; http(s) is taken for ws(s), the path defaults to /ws."""
    url = urlsplit(host)
    scheme = {"http": "ws", "https": "wss"}.get(url.scheme, url.scheme)
    path = url.path if url.path not in ("", "/") else "/ws"
    return urlunsplit((scheme, url.netloc, path, url.query, ""))


def frame(**fields):
    return chat_pb2.ChatRequest(**fields).SerializeToString()


class ChatUser(User):
    host = "ws://127.0.0.1:9000/ws"  # chat_bench's default

    def __init__(self, environment):
        super().__init__(environment)
        options = environment.parsed_options
        self.interval = 1.0 / (options.chat_rate if options else 1.0)
        self.size = options.chat_size if options else 100
        self.next_send = 0.0
        self.ws = None
        self.name = None
        self.reader = None  # the greenlet that reads self.ws; dead once the connection ended
        self.pending = None  # (content, AsyncResult) of the message awaiting its broadcast
        self.leaving = False
        self.sent = 0

    # Constant pacing that does not catch up in a burst after a slow answer:
    # a burst would only meet the server's rate limit.
    def wait_time(self):
        now = time.monotonic()
        self.next_send = max(self.next_send + self.interval, now)
        return self.next_send - now

    def on_start(self):
        self.log_in()
        # Independent users: each starts at its own point of the first interval.
        gevent.sleep(random.uniform(0, self.interval))
        self.next_send = time.monotonic()

    def on_stop(self):
        self.leave()

    @task
    def say(self):
        if self.reader is None or self.reader.dead:  # not logged in, or the connection ended
            self.drop()
            if not self.log_in():
                return  # reported; the next turn tries again
        self.sent += 1
        content = f"{self.sent}:{time.time_ns()};"
        content += "x" * (self.size - len(content))
        acknowledged = AsyncResult()
        self.pending = (content, acknowledged)  # before sending: the echo may come at once
        start = time.perf_counter()
        try:
            self.ws.send_binary(frame(type="message", content=content))
            length = acknowledged.get(timeout=ACK_TIMEOUT)
            self.report("message", start, length)
        except gevent.Timeout:
            self.report("message", start, 0,
                        TimeoutError(f"no broadcast of it within {ACK_TIMEOUT} s"))
        except ChatError as error:
            self.report("message", start, 0, error)
        except CONNECTION_ERRORS as error:
            self.report("message", start, 0, error)
            self.drop()
        finally:
            self.pending = None

    def report(self, name, start, length, exception=None):
        self.environment.events.request.fire(
            request_type="WS", name=name, response_time=(time.perf_counter() - start) * 1000,
            response_length=length, exception=exception, context={"user": self.name})

    def log_in(self):
        """Connects and logs in under a new name; False (and reported) when that fails."""
        start = time.perf_counter()
        try:
            self.ws = websocket.create_connection(chat_url(self.host), timeout=CONNECT_TIMEOUT)
        except (OSError, websocket.WebSocketException) as error:
            self.report("connect", start, 0, error)
            self.ws = None
            return False
        self.report("connect", start, 0)

        self.name = f"locust-{_process_tag}-{next(_logins)}"
        start = time.perf_counter()
        try:
            self.ws.send_binary(frame(type="login", user_name=self.name))
            while True:  # until the welcome; nothing else is sent to us before it
                reply, length = self.receive()
                if reply.type == "login" and reply.user_name == self.name:
                    break
                if reply.type == "error":
                    raise ChatError(f"login refused: {reply.content}")
        except (ChatError, *CONNECTION_ERRORS) as error:
            self.report("login", start, 0, error)
            self.drop()
            return False
        self.report("login", start, length)
        self.ws.settimeout(None)  # a quiet room is no reason to give up
        self.leaving = False
        self.reader = gevent.spawn(self.read)
        return True

    def receive(self):
        """The next ChatRequest and its size; ConnectionClosed on a close frame."""
        while True:
            opcode, data = self.ws.recv_data()
            if opcode == websocket.ABNF.OPCODE_BINARY:
                reply = chat_pb2.ChatRequest()
                reply.ParseFromString(data)
                return reply, len(data)
            if opcode == websocket.ABNF.OPCODE_CLOSE:  # recv_data has answered it
                code = int.from_bytes(data[:2], "big") if len(data) >= 2 else "without a code"
                reason = data[2:].decode(errors="replace")
                raise ConnectionClosed(f"closed by the server: {code} {reason}".rstrip())

    def read(self):
        """The reader greenlet: acknowledgements, broadcasts, errors, the close."""
        try:
            while True:
                reply, length = self.receive()
                if reply.type == "message":
                    self.on_message(reply, length)
                elif reply.type == "error":
                    if self.pending:
                        self.pending[1].set_exception(ChatError(reply.content))
                    else:
                        self.report("error", time.perf_counter(), length, ChatError(reply.content))
                # login, logout and presence notices, history: nothing to measure
        except CONNECTION_ERRORS as error:
            if self.leaving:
                return  # the close we asked for with our logout
            if self.pending:
                self.pending[1].set_exception(ConnectionClosed(str(error)))
            else:
                self.report("connection", time.perf_counter(), 0, error)

    def on_message(self, reply, length):
        if reply.user_name == self.name:
            if self.pending and reply.content == self.pending[0]:
                self.pending[1].set(length)
            return
        if self.leaving:
            return
        try:  # "<sequence>:<send time, ns>;" as our users write it; anything else is not ours
            sent_ns = int(reply.content.split(";", 1)[0].split(":", 1)[1])
        except (IndexError, ValueError):
            return
        self.environment.events.request.fire(
            request_type="WS", name="broadcast", response_time=(time.time_ns() - sent_ns) / 1e6,
            response_length=length, exception=None, context={"user": self.name})

    def drop(self):
        """Forgets a broken connection; the next turn logs in again."""
        if self.reader:
            self.reader.kill(block=True)
            self.reader = None
        if self.ws:
            self.ws.shutdown()
            self.ws = None

    def leave(self):
        """On stop: logout, and the server's close answered (contract: it closes with 1000)."""
        if self.ws is None:
            return
        self.leaving = True
        try:
            self.ws.send_binary(frame(type="logout"))
            if self.reader:
                self.reader.join(timeout=CLOSE_TIMEOUT)  # it answers the server's close
            else:  # stopped during the login: nobody reads, close it ourselves
                self.ws.close(timeout=CLOSE_TIMEOUT)
        except (OSError, websocket.WebSocketException):
            pass  # already broken: nothing left to close cleanly
        self.drop()
