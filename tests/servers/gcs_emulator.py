"""Run gcp-storage-emulator in memory, able to take many clients at once.

The emulator's own ``start`` command serves with ``http.server.HTTPServer``: one request
at a time and a listen backlog of 5, so a burst of concurrent clients overflows the
accept queue and stalls on TCP SYN retries. Here the same request handler and in-memory
storage are served by a threading server with a deep accept queue:

- every connection gets its own thread, which reads the request body off the socket
  before taking the lock, so uploads stream in side by side;
- the emulator's handlers and storage are not thread-safe (plain dicts, read-modify-write
  of resumable uploads), so routing and the answer run under one lock;
- in memory the storage would re-serialize the metadata of every object on every write
  (its persistence file); that is skipped, so a long test session stays fast.

Run as ``python tests/servers/gcs_emulator.py --port N`` (host 127.0.0.1). Importing this
module starts nothing and does not need the emulator installed (the test harness imports
every module of this folder).
"""

from __future__ import annotations

import argparse
import io
import threading
from functools import partial
from http.server import ThreadingHTTPServer
from typing import Any


class ConcurrentServer(ThreadingHTTPServer):
    request_queue_size = 1024  # the listen backlog; http.server's default is 5
    daemon_threads = True


def make_server(host: str, port: int) -> ConcurrentServer:
    """The emulator's handlers and in-memory storage behind a `ConcurrentServer`."""
    from gcp_storage_emulator.server import RequestHandler, Router
    from gcp_storage_emulator.storage import Storage

    class MemoryStorage(Storage):  # type: ignore[misc]
        """The emulator's storage in memory, without its per-write persistence file."""

        def __init__(self) -> None:
            super().__init__(use_memory_fs=True)

        def _write_config_to_file(self) -> None:
            """Nothing to persist in memory."""

    routing = threading.Lock()

    class ConcurrentHandler(RequestHandler):  # type: ignore[misc]
        """Bodies read in parallel, requests routed one at a time."""

        def _route(self, method: str) -> None:
            length = self.headers.get("Content-Length")
            if length and length.isdigit():
                self.rfile = io.BytesIO(self.rfile.read(int(length)))
            with routing:
                Router(self).handle(method)

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PUT(self) -> None:
            self._route("PUT")

        def do_PATCH(self) -> None:
            self._route("PATCH")

        def do_DELETE(self) -> None:
            self._route("DELETE")

    handler: Any = partial(ConcurrentHandler, MemoryStorage())
    return ConcurrentServer((host, port), handler)


def main() -> None:
    parser = argparse.ArgumentParser(description="gcp-storage-emulator, in memory, concurrent")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = make_server(args.host, args.port)
    print(f"gcs emulator listening on {args.host}:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
