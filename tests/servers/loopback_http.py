"""A small threaded HTTP/1.1 server on 127.0.0.1, and the records it deals in.

`LoopbackHTTPServer` listens on a free port, reads each request (its body by
Content-Length or chunked) into an `Exchange`, asks its ``answer`` function what to do
and sends the `Reply` it returns, or closes the connection unanswered on None. Clients
may keep connections alive; `LoopbackHTTPServer.stop` ends them all and waits for
their threads. `servers.proxy.CountingProxy` is built on it.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any

__all__ = ["Answer", "Exchange", "LoopbackHTTPServer", "Reply", "has_body"]


@dataclass(eq=False)
class Exchange:
    """One request and what came of it."""

    method: str
    path: str  # the request target: path and query string
    headers: dict[str, str]  # the request's headers, names in lower case
    body: bytes = field(default=b"", repr=False)  # the request's body
    status: int = 0  # the response's status; 0 when none was sent
    received: int = 0  # response body bytes that went back to the client
    dropped: bool = False  # closed without an answer

    @property
    def sent(self) -> int:
        """Request body bytes."""
        return len(self.body)

    @property
    def range(self) -> str | None:
        """The byte range asked for (``Range``, or Azure's ``x-ms-range``)."""
        return self.headers.get("x-ms-range") or self.headers.get("range")

    def line(self) -> str:
        """``METHOD path range -> status; bytes each way``, for assertion messages."""
        ranged = f" range={self.range}" if self.range else ""
        outcome = "dropped" if self.dropped else str(self.status)
        return (
            f"{self.method} {self.path}{ranged} -> {outcome}; "
            f"{self.sent} bytes sent, {self.received} received"
        )


@dataclass(frozen=True)
class Reply:
    """A response to send: a server's, or a made-up one."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    reason: str | None = None  # None: the standard phrase of the status

    @classmethod
    def json(cls, status: int, payload: Any) -> Reply:
        body = json.dumps(payload).encode()
        return cls(status, body, (("Content-Type", "application/json"),))


def has_body(method: str, status: int) -> bool:
    """Whether a response to ``method`` with ``status`` carries a body."""
    return method != "HEAD" and status >= 200 and status not in (204, 304)


#: What the server asks for each request: the exchange and the request's headers as
#: sent (names as written, repeats kept); the reply, or None to hang up unanswered.
Answer = Callable[[Exchange, list[tuple[str, str]]], Reply | None]


class _Handler(BaseHTTPRequestHandler):
    """Reads each request of a connection (kept alive as the client likes) and answers."""

    protocol_version = "HTTP/1.1"  # also answers "Expect: 100-continue" by itself
    server: LoopbackHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the exchanges are the record."""

    def _serve(self) -> None:
        headers = list(self.headers.items())
        named = {name.lower(): value for name, value in headers}
        exchange = Exchange(self.command, self.path, named, self._read_body())
        reply = self.server.answer(exchange, headers)
        if reply is None:
            self.close_connection = True
            return
        self.send_response_only(reply.status, reply.reason)
        for name, value in reply.headers:
            self.send_header(name, value)
        framed = any(name.lower() == "content-length" for name, _ in reply.headers)
        if has_body("GET", reply.status) and not framed:
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if has_body(self.command, reply.status):
            self.wfile.write(reply.body)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = _serve

    def _read_body(self) -> bytes:
        if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        pieces = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            pieces.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF after the chunk
        while self.rfile.readline().strip():  # trailers, up to the empty line
            pass
        return b"".join(pieces)


class LoopbackHTTPServer(ThreadingHTTPServer):
    """Serving on 127.0.0.1 from the start, a thread per connection; `stop` ends it all."""

    daemon_threads = True
    request_queue_size = 1024  # bursts of concurrent clients; http.server's default is 5

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self._open: dict[socket.socket, threading.Thread] = {}
        self._open_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)
        self.port: int = self.server_port
        self._thread = threading.Thread(
            target=self.serve_forever, args=(0.05,), name=f"loopback-http-{self.port}"
        )
        self._thread.daemon = True
        self._thread.start()

    def server_bind(self) -> None:
        TCPServer.server_bind(self)  # without HTTPServer's name lookup
        self.server_name, self.server_port = "127.0.0.1", self.socket.getsockname()[1]

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), daemon=True
        )
        with self._open_lock:
            self._open[request] = thread
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.pop(request, None)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # not just a client that went away
            super().handle_error(request, client_address)

    def stop(self) -> None:
        """Stop listening, close every connection and wait for their threads (a thread
        still inside ``answer`` is waited for, up to 30 s)."""
        self.shutdown()
        with self._open_lock:
            connections = list(self._open.items())
        for sock, _ in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # a handler reading the next request wakes
            except OSError:
                pass
        for _, thread in connections:
            thread.join(30)
        self.server_close()
        self._thread.join(30)
