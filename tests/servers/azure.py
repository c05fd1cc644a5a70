"""Azurite (the Azure Storage emulator, from npm) for the tests, and a counting proxy.

`azure_server` (session scope) starts ``azurite-blob`` on 127.0.0.1 with a free port,
in memory, with telemetry off (without ``--disableTelemetry`` it reaches the internet),
the first time a test asks for it. It is looked up in ``.tools/azurite`` under the
repository root, where ``nox -s tests`` installs it, then on PATH.

`CountingProxy` is an HTTP reverse proxy in front of Azurite that records every request
(method, path, range, status, body bytes each way) and the most requests in flight at
once. It parses HTTP because the Azure SDK keeps connections alive: one connection
carries many requests.
"""

from __future__ import annotations

import http.client
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from holdfast.storage import Storage

from servers import ROOT, ServerProcess, free_port

__all__ = [
    "ACCOUNT",
    "ACCOUNT_KEY",
    "BACKEND",
    "STORAGE",
    "AzureServer",
    "CountingProxy",
    "Exchange",
    "azure_server",
    "connection_string",
]

BACKEND = "azure"
STORAGE = True

#: Azurite's well-known development account and its published key.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
AZURITE_VERSION = "3.37.0"
NPM_INSTALL = f"npm install --prefix .tools/azurite --no-audit --no-fund azurite@{AZURITE_VERSION}"


def connection_string(endpoint: str, key: str = ACCOUNT_KEY) -> str:
    """A connection string for the dev account at ``endpoint`` (``http://127.0.0.1:PORT``)."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={key};"
        f"BlobEndpoint={endpoint}/{ACCOUNT};"
    )


def azurite_command() -> str:
    local = ROOT / ".tools" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
    if local.exists():
        return str(local)
    found = shutil.which("azurite-blob")
    if found:
        return found
    pytest.fail(
        f"Azurite is not installed: run `{NPM_INSTALL}` in {ROOT} (needs Node.js and npm), "
        "or run the tests with `nox -s tests`, which installs it",
        pytrace=False,
    )


# -- the counting proxy -------------------------------------------------------------------

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass
class Exchange:
    """One request through the proxy and its response."""

    method: str
    path: str
    range: str | None
    sent: int = 0  # request body bytes
    received: int = 0  # response body bytes
    status: int = 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer
    _upstream: http.client.HTTPConnection | None = None

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _exchange(self, body: bytes) -> tuple[http.client.HTTPResponse, bytes]:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["Content-Length"] = str(len(body))
        for attempt in (1, 2):  # a kept-alive upstream connection may have timed out
            if self._upstream is None:
                self._upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream)
            try:
                self._upstream.request(self.command, self.path, body=body, headers=headers)
                response = self._upstream.getresponse()
                return response, response.read()
            except (http.client.RemoteDisconnected, ConnectionError):
                self._upstream.close()
                self._upstream = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _forward(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            self.send_error(501, "the counting proxy needs Content-Length")
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        ranged = self.headers.get("x-ms-range") or self.headers.get("Range")
        exchange = Exchange(self.command, self.path, ranged, sent=len(body))
        proxy = self.server.proxy
        proxy.enter(exchange)
        try:
            proxy.wait_at_gate(self.path)
            proxy.run_hook(self.path)
            if proxy.delay:
                time.sleep(proxy.delay)
            response, data = self._exchange(body)
            exchange.status, exchange.received = response.status, len(data)
        finally:
            proxy.leave()
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        length = response.getheader("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length or str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _forward


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 512

    def __init__(self, upstream: int, proxy: CountingProxy) -> None:
        self.upstream = upstream
        self.proxy = proxy
        super().__init__(("127.0.0.1", 0), _Handler)


class CountingProxy:
    """An HTTP proxy on 127.0.0.1 in front of ``upstream_port`` that counts requests."""

    def __init__(self, upstream_port: int) -> None:
        self.exchanges: list[Exchange] = []
        self.in_flight = 0
        self.max_in_flight = 0
        #: Seconds each request waits before it is forwarded: a network's round trip.
        self.delay = 0.0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._gate = 0
        self._gated = ""
        self._hooks: list[tuple[str, Callable[[], None]]] = []
        self._server = _ProxyServer(upstream_port, self)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="azure-proxy", daemon=True
        )
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def connection_string(self) -> str:
        return connection_string(self.endpoint)

    def enter(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._changed.notify_all()

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def hold(self, n: int, path_contains: str = "") -> None:
        """Hold the next requests (whose path contains ``path_contains``) until ``n``
        are in flight at once, then let all pass.

        Makes overlap deterministic: concurrent clients reach ``n``, a client that
        sends one request at a time never does (each is let go after 10 s).
        """
        with self._lock:
            self._gate, self._gated = n, path_contains

    def before(self, path_contains: str, action: Callable[[], None]) -> None:
        """Run ``action`` once, before forwarding the next request whose path contains
        ``path_contains``: another client's move at an exact point of this one's."""
        with self._lock:
            self._hooks.append((path_contains, action))

    def run_hook(self, path: str) -> None:
        with self._lock:
            due = [hook for hook in self._hooks if hook[0] in path][:1]
            for hook in due:
                self._hooks.remove(hook)
        for _, action in due:
            action()

    def wait_at_gate(self, path: str) -> None:
        with self._lock:
            if not self._gate or self._gated not in path:
                return
            if not self._changed.wait_for(lambda: self.in_flight >= self._gate, timeout=10):
                return  # a sequential client: let this one through, keep the gate
            self._gate = 0
            self._changed.notify_all()

    def reset(self) -> None:
        with self._lock:
            self.exchanges = []
            self.max_in_flight = self.in_flight

    def received(self) -> int:
        """Response body bytes that went to the client since the last reset."""
        with self._lock:
            return sum(e.received for e in self.exchanges)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# -- the server ----------------------------------------------------------------------------


class AzureServer:
    """A running Azurite: fresh containers, storages on them, counting proxies."""

    def __init__(self, process: ServerProcess) -> None:
        self.process = process
        self.endpoint = process.endpoint
        self.connection_string = connection_string(self.endpoint)

    def create_container(self, name: str | None = None) -> str:
        """A new, empty container (a unique name unless given)."""
        from azure.storage.blob import BlobServiceClient

        name = name or f"t-{uuid.uuid4().hex}"
        with BlobServiceClient.from_connection_string(self.connection_string) as client:
            client.create_container(name)
        return name

    def make_storage(self, name: str = "results", **options: Any) -> Storage:
        """A storage on a fresh container, built through the registry from a URL."""
        return self.storage(self.create_container(), name, **options)

    def storage(
        self, container: str, name: str = "results", *, via: str | None = None, **options: Any
    ) -> Storage:
        """A storage on ``container``, built through the registry from a URL.

        ``via``: a connection string to use instead of Azurite's own (a proxy's).
        """
        from holdfast.resolve import storage_from

        options.setdefault("connection_string", via or self.connection_string)
        return storage_from(f"az://{container}/{name}", **options)

    def start_proxy(self) -> CountingProxy:
        return CountingProxy(self.process.port)


@pytest.fixture(scope="session")
def azure_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzureServer]:
    command = azurite_command()
    workdir: Path = tmp_path_factory.mktemp("azurite")
    port = free_port()
    process = ServerProcess(
        "azurite",
        [
            command,
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--loose",
            "--inMemoryPersistence",
        ],
        port,
        workdir,
        cwd=workdir,
    )
    try:
        yield AzureServer(process)
    finally:
        process.stop()
