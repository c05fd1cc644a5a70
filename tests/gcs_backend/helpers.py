"""Loopback stand-ins for what the emulator does not do: check credentials (a token
endpoint), answer with a chosen status, hang, or drop connections."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from holdfast_gcs import GCSStorage

__all__ = ["LoopbackHTTP", "MakeGCS", "RawListener", "Reply", "service_account_file"]

#: Builds a GCSStorage on the emulator (see the ``make_gcs`` fixture).
MakeGCS = Callable[..., GCSStorage]
#: What a LoopbackHTTP answers: status and JSON body, given the request handler.
Reply = Callable[[BaseHTTPRequestHandler], tuple[int, dict[str, Any]]]


class LoopbackHTTP:
    """A tiny HTTP server on 127.0.0.1 answering every request with ``reply(handler)``."""

    def __init__(self, reply: Reply) -> None:
        self.requests: list[tuple[str, str, bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append((self.command, self.path, body))
                status, payload = reply(self)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(30)


class RawListener:
    """A TCP listener on 127.0.0.1 that never answers: it closes each connection at once
    (``hang=False``) or holds it open in silence (``hang=True``). Counts connections."""

    def __init__(self, *, hang: bool) -> None:
        self.hang = hang
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._sock.settimeout(0.1)
        self._stop = threading.Event()
        self.port = self._sock.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            if self.hang:
                self._held.append(conn)
            else:
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self._sock.close()
        for conn in self._held:
            conn.close()


def service_account_file(folder: Path, token_uri: str) -> tuple[Path, str]:
    """A service-account key file (fresh RSA key) whose token endpoint is ``token_uri``;
    returns the path and the private key text."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "holdfast-tests",
        "private_key_id": "0123456789abcdef",
        "private_key": pem,
        "client_email": "holdfast@holdfast-tests.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": token_uri,
    }
    path = folder / "service-account.json"
    path.write_text(json.dumps(info))
    return path, pem
