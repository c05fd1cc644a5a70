"""gcp-storage-emulator for the tests.

`gcs_server` (session scope) starts ``tests/servers/gcs_emulator.py`` (the emulator in
memory, served by a threading server with a deep accept queue) on 127.0.0.1 with a free
port, the first time a test asks for it. Its value makes buckets and storages on fresh
buckets. The emulator answers as HTTP/1.0 and closes every connection after one
response; count requests with a `servers.proxy.CountingProxy` in front of its ``port``.
"""

from __future__ import annotations

import json
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from moorage.storage import Storage

from servers import ServerProcess, free_port

__all__ = ["BACKEND", "STORAGE", "GCSServer", "gcs_server"]

BACKEND = "gcs"
STORAGE = True

LAUNCHER = Path(__file__).with_name("gcs_emulator.py")


class GCSServer:
    """The running emulator: buckets and storages on them."""

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
        self._call("POST", "/storage/v1/b?project=moorage-tests", {"name": name})
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
        from moorage.plugins.resolve import storage_from

        options.setdefault("endpoint_url", self.endpoint)
        options.setdefault("token", "anon")
        return storage_from(self.url(name), **options)


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GCSServer]:
    port = free_port()
    process = ServerProcess(
        "gcs-emulator",
        [sys.executable, str(LAUNCHER), "--host", "127.0.0.1", "--port", str(port)],
        port,
        tmp_path_factory.mktemp("gcs-emulator"),
    )
    with process:
        yield GCSServer(process)
