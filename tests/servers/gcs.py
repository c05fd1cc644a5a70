"""gcp-storage-emulator for the tests, and a counting TCP proxy to put in front of it.

`gcs_server` (session scope) starts ``tests/servers/gcs_emulator.py`` (the emulator in
memory, served by a threading server with a deep accept queue) on 127.0.0.1 with a free
port, the first time a test asks for it. Its value makes storages on fresh buckets and
starts `TrafficCounter` proxies.

The emulator answers as HTTP/1.0 and closes every connection after one response, so
each TCP connection through a proxy is exactly one request: the proxy records its
request line, headers and the bytes each way. A request is in flight from the moment
its connection arrives until the first byte of its answer comes back; the proxy keeps
the most requests that were ever in flight at once.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from holdfast.storage import Storage

from servers import ServerProcess, free_port

__all__ = ["BACKEND", "STORAGE", "Exchange", "GCSServer", "TrafficCounter", "gcs_server"]

BACKEND = "gcs"
STORAGE = True

LAUNCHER = Path(__file__).with_name("gcs_emulator.py")


@dataclass
class Exchange:
    """One request through a `TrafficCounter` and its response."""

    method: str = ""
    target: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case
    sent: int = 0  # client -> server: request line, headers, body
    received: int = 0  # server -> client: status line, headers, body
    refused: bool = False  # closed by the proxy without reaching the server
    answered: bool = False  # the first byte of the answer came back (or the exchange ended)


def _parse_head(exchange: Exchange, data: bytes) -> None:
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    request_line = head[0].split(" ")
    exchange.method = request_line[0]
    exchange.target = request_line[1] if len(request_line) > 1 else ""
    for line in head[1:]:
        name, _, value = line.partition(":")
        exchange.headers[name.strip().lower()] = value.strip()


class TrafficCounter:
    """A TCP proxy on 127.0.0.1 that records every request and how many overlap."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        #: When set, connections after this many are closed unanswered (a failing network).
        self.fail_after: int | None = None
        self.exchanges: list[Exchange] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.port = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=self._run, name="gcs-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the counting proxy did not start")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        """The form STORAGE_EMULATOR_HOST takes."""
        return f"127.0.0.1:{self.port}"

    def reset(self) -> None:
        with self._lock:
            self.exchanges.clear()
            self.max_in_flight = self.in_flight

    def snapshot(self) -> list[Exchange]:
        with self._lock:
            return list(self.exchanges)

    def close(self) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._server is not None:
                await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()

    def __enter__(self) -> TrafficCounter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the proxy loop -------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=1024)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        exchange = Exchange()
        with self._lock:
            self.exchanges.append(exchange)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            exchange.refused = self.fail_after is not None and len(self.exchanges) > self.fail_after
        if exchange.refused:
            client_w.close()
            self._answered(exchange)
            return
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_w.close()
            self._answered(exchange)
            return

        async def upstream() -> None:
            while data := await client_r.read(256 * 1024):
                if not exchange.method:
                    _parse_head(exchange, data)
                exchange.sent += len(data)
                server_w.write(data)
                await server_w.drain()
            if server_w.can_write_eof():
                server_w.write_eof()  # the client is done: let the server see it

        async def downstream() -> None:
            while data := await server_r.read(256 * 1024):
                if not exchange.received:
                    self._answered(exchange)
                exchange.received += len(data)
                client_w.write(data)
                await client_w.drain()

        sending = asyncio.ensure_future(upstream())
        try:
            await downstream()  # the server closes after its one response
        except ConnectionError:
            pass
        finally:
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
            for writer in (client_w, server_w):
                writer.close()
            self._answered(exchange)

    def _answered(self, exchange: Exchange) -> None:
        """The request is no longer in flight: its answer started (or never will)."""
        with self._lock:
            if not exchange.answered:
                exchange.answered = True
                self.in_flight -= 1


class GCSServer:
    """The running emulator: buckets, storages on them, proxies in front of it."""

    def __init__(self, process: ServerProcess) -> None:
        self.process = process
        self.port = process.port
        self.endpoint = process.endpoint
        self.host = f"127.0.0.1:{process.port}"  # as STORAGE_EMULATOR_HOST

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> bytes:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.endpoint}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data else {},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            payload: bytes = response.read()
            return payload

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh unique name unless given); return its name."""
        name = name or f"hf-{uuid.uuid4().hex[:24]}"
        self._call("POST", "/storage/v1/b?project=holdfast-tests", {"name": name})
        return name

    def object_names(self, bucket: str) -> list[str]:
        """The names in a bucket, asked of the emulator directly."""
        listing = json.loads(self._call("GET", f"/storage/v1/b/{bucket}/o"))
        return sorted(item["name"] for item in listing.get("items") or [])

    def reset(self) -> None:
        """Delete every bucket and object."""
        self._call("GET", "/wipe")

    def url(self, name: str = "results", bucket: str | None = None) -> str:
        """``gs://`` URL of a prefix in a bucket (a fresh bucket unless given)."""
        return f"gs://{bucket or self.create_bucket()}/{name}"

    def make_storage(self, name: str = "results", **options: Any) -> Storage:
        """A storage on a fresh, empty bucket, built through the plugin registry."""
        from holdfast.resolve import storage_from

        options.setdefault("endpoint_url", self.endpoint)
        options.setdefault("token", "anon")
        return storage_from(self.url(name), **options)

    def proxy(self) -> TrafficCounter:
        """A new counting proxy in front of the emulator; close it (or use ``with``)."""
        return TrafficCounter(self.port)


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GCSServer]:
    port = free_port()
    process = ServerProcess(
        "gcs-emulator",
        [sys.executable, str(LAUNCHER), "--host", "127.0.0.1", "--port", str(port)],
        port,
        tmp_path_factory.mktemp("gcs-emulator"),
    )
    try:
        yield GCSServer(process)
    finally:
        process.stop()
