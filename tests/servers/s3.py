"""moto's S3 server for the tests, and a counting proxy to put in front of it.

`s3_server` (session scope) starts ``python -m moto.server`` on 127.0.0.1 with a free
port the first time a test asks for it. Its value makes storages on fresh buckets,
resets moto, and starts `CountingProxy` instances: a TCP proxy that records every
request passing through (method, path, Range header, bytes each way) and how many were
in flight at once. moto answers every request with ``Connection: close``, so each TCP
connection through the proxy carries exactly one request and one response, which is
what makes the counting exact without parsing HTTP bodies.
"""

from __future__ import annotations

import asyncio
import re
import sys
import threading
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from holdfast_s3 import S3Storage

from servers import ServerProcess, free_port

__all__ = [
    "BACKEND",
    "STORAGE",
    "CountingProxy",
    "Exchange",
    "S3Server",
    "error_response",
    "s3_server",
    "start_moto",
]

BACKEND = "s3"
STORAGE = True

#: Credentials moto accepts (it checks none unless its IAM auth is switched on).
ACCESS_KEY = "holdfast-test-key"
SECRET_KEY = "holdfast-test-secret"
REGION = "us-east-1"


@dataclass
class Exchange:
    """One request through the proxy and its response."""

    method: str = ""
    target: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    sent: int = 0  # bytes client -> server (request line, headers, body)
    received: int = 0  # bytes server -> client (status line, headers, body)
    response_head: int = 0  # bytes of the response's status line and headers
    status: int = 0
    dropped: bool = False  # closed by the proxy without reaching the server
    in_flight: bool = False  # the request arrived and its response is not complete

    @property
    def body(self) -> int:
        """Bytes of response body that reached the client."""
        return max(self.received - self.response_head, 0)


def _head_lines(data: bytes) -> tuple[list[str], int] | None:
    """The lines of an HTTP message head and its length, once the head is complete."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    return data[:end].decode("latin-1").split("\r\n"), end + 4


def error_response(status: int, code: str, message: str = "injected by the test proxy") -> bytes:
    """A complete S3 error response (XML body, connection closed after it)."""
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{message}</Message><RequestId>test</RequestId></Error>"
    ).encode()
    head = (
        f"HTTP/1.1 {status} {code}\r\nContent-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    return head + body


def _header_dict(lines: list[str]) -> dict[str, str]:
    return {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines[1:])
    }


def _final_head(data: bytes, exchange: Exchange) -> int | None:
    """Note the response's status and head length, past any ``100 Continue``; return the
    whole response's length when it is known from its head."""
    offset = 0
    while (parsed := _head_lines(data[offset:])) is not None:
        offset += parsed[1]
        status = int(parsed[0][0].split(" ")[1])
        if status >= 200:
            exchange.status, exchange.response_head = status, offset
            length = _header_dict(parsed[0]).get("content-length")
            if exchange.method == "HEAD" or status in (204, 304):
                return offset
            return offset + int(length) if length is not None else None
    return None


class CountingProxy:
    """A TCP proxy on 127.0.0.1 that counts requests, bytes and concurrency.

    Hooks, each called in the proxy's thread once a request's head has arrived and
    before it is forwarded: ``on_request(exchange)`` observes; ``drop(exchange)``
    returning True closes the connection unanswered, as a network failure would;
    ``respond(exchange)`` returning bytes sends them as the response instead of asking
    the server (see `error_response`).
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.exchanges: list[Exchange] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.on_request: Callable[[Exchange], None] | None = None
        self.drop: Callable[[Exchange], bool] | None = None
        self.respond: Callable[[Exchange], bytes | None] | None = None
        self._lock = threading.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server: asyncio.Server | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._serve, name="s3-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the counting proxy did not start")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=1024)
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        exchange = Exchange()
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # asyncio keeps only weak references to tasks
        try:
            await self._exchange(reader, writer, exchange)
        except asyncio.CancelledError:  # stop() with a request under way: just end
            writer.transport.abort()
        finally:
            self._finish(exchange)
            writer.close()
            self._tasks.discard(task)

    def _finish(self, exchange: Exchange) -> None:
        """The exchange is no longer in flight (called before its last byte goes out)."""
        with self._lock:
            if exchange.in_flight:
                exchange.in_flight = False
                self.in_flight -= 1

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, exchange: Exchange
    ) -> None:
        head = b""
        while (parsed := _head_lines(head)) is None:
            chunk = await reader.read(65536)
            if not chunk:  # a connection that never carried a request
                return
            head += chunk
        lines = parsed[0]
        exchange.sent = len(head)
        exchange.method, exchange.target = lines[0].split(" ")[:2]
        exchange.headers = _header_dict(lines)
        with self._lock:
            self.exchanges.append(exchange)
            exchange.in_flight = True
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self.on_request is not None:
            self.on_request(exchange)
        if self.drop is not None and self.drop(exchange):
            exchange.dropped = True
            self._finish(exchange)
            writer.transport.abort()
            return
        canned = self.respond(exchange) if self.respond is not None else None
        if canned is not None:
            if exchange.method == "HEAD":  # a HEAD response never has a body
                canned = canned[: canned.index(b"\r\n\r\n") + 4]
            exchange.status = int(canned.split(b" ", 2)[1])
            exchange.received = len(canned)
            self._finish(exchange)
            writer.write(canned)
            await writer.drain()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        up_writer.write(head)
        forward = asyncio.ensure_future(self._forward(reader, up_writer, exchange))
        try:
            await self._answer(up_reader, writer, exchange)
        finally:  # the response is complete: whatever the client still sends is moot
            forward.cancel()
            await asyncio.wait([forward])
            up_writer.close()

    @staticmethod
    async def _forward(
        source: asyncio.StreamReader, sink: asyncio.StreamWriter, exchange: Exchange
    ) -> None:
        """Client to server: the rest of the request."""
        try:
            while chunk := await source.read(65536):
                exchange.sent += len(chunk)
                sink.write(chunk)
                await sink.drain()
        except OSError:
            pass

    async def _answer(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, exchange: Exchange
    ) -> None:
        """Server to client: the response, counted; the exchange ends with its last byte."""
        head = b""
        expected: int | None = None
        try:
            while chunk := await source.read(65536):
                exchange.received += len(chunk)
                if not exchange.response_head:
                    head += chunk
                    expected = _final_head(head, exchange)
                if expected is not None and exchange.received >= expected:
                    self._finish(exchange)
                sink.write(chunk)
                await sink.drain()
        except OSError:
            pass
        finally:
            self._finish(exchange)
            if sink.can_write_eof():
                try:
                    sink.write_eof()
                except OSError:
                    pass

    # -- what the tests read ----------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self.exchanges = []
            self.max_in_flight = self.in_flight

    def requests(self) -> list[Exchange]:
        with self._lock:
            return list(self.exchanges)

    def summary(self) -> list[str]:
        """``METHOD path [range]`` of each request, for assertion messages."""
        lines = []
        for e in self.requests():
            ranged = f" range={e.headers['range']}" if "range" in e.headers else ""
            lines.append(f"{e.method} {e.target}{ranged} -> {e.status}, {e.body} body bytes")
        return lines

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            while handlers := list(self._tasks):
                for handler in handlers:
                    handler.cancel()
                await asyncio.wait(handlers)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()


class S3Server:
    """A running moto server: storages on fresh buckets, reset, counting proxies."""

    def __init__(self, process: ServerProcess) -> None:
        self.process = process
        self.endpoint = process.endpoint
        self.port = process.port

    def options(self, endpoint: str | None = None) -> dict[str, Any]:
        """Options that reach this server with the test credentials."""
        return {
            "endpoint_url": endpoint or self.endpoint,
            "key": ACCESS_KEY,
            "secret": SECRET_KEY,
            "region": REGION,
        }

    def env(self) -> dict[str, str]:
        """The SDK's environment variables that point a client without options here."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL_S3": self.endpoint,
        }

    @staticmethod
    def bucket_name(name: str = "results") -> str:
        """A unique, valid bucket name starting with ``name``."""
        stem = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:40] or "b"
        return f"{stem}-{uuid.uuid4().hex[:16]}"

    def make_storage(
        self, name: str = "results", *, prefix: str = "records", **options: Any
    ) -> S3Storage:
        """An `S3Storage` on a new, empty bucket (created through the backend)."""
        bucket = self.bucket_name(name)
        url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        storage = S3Storage(url, **{**self.options(), **options})
        storage.create_bucket()
        return storage

    def reset(self) -> None:
        """Forget every bucket and object (moto's reset endpoint)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    def counting_proxy(self) -> CountingProxy:
        """A new proxy in front of this server; stop it when done."""
        return CountingProxy(self.port)


def start_moto(
    log_dir: Path, name: str = "moto-s3", env: dict[str, str] | None = None
) -> ServerProcess:
    """Start a moto server on a free port (its S3 API and moto's own API)."""
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    return ServerProcess(name, command, port, log_dir, env=env)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    process = start_moto(tmp_path_factory.mktemp("s3-server"))
    try:
        yield S3Server(process)
    finally:
        process.stop()
