"""moto's S3 server for the tests.

`s3_server` (session scope) starts ``python -m moto.server`` on 127.0.0.1 with a free
port the first time a test asks for it. Its value makes storages on fresh buckets and
resets moto; `start_moto` starts more servers (one that checks signatures, say). Count
requests with a `servers.proxy.CountingProxy` in front of its ``port``; `error_reply`
is an S3 error for the proxy to answer with.
"""

from __future__ import annotations

import re
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from moorage_s3 import S3Storage

from servers import ServerProcess, free_port
from servers.proxy import Reply

__all__ = [
    "BACKEND",
    "STORAGE",
    "S3Server",
    "error_reply",
    "s3_server",
    "start_moto",
]

BACKEND = "s3"
STORAGE = True

#: Credentials moto accepts (it checks none unless its IAM auth is switched on).
ACCESS_KEY = "moorage-test-key"
SECRET_KEY = "moorage-test-secret"
REGION = "us-east-1"


def error_reply(status: int, code: str, message: str = "injected by the test proxy") -> Reply:
    """An S3 error response (its XML body), for `CountingProxy.reply`."""
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{message}</Message><RequestId>test</RequestId></Error>"
    ).encode()
    return Reply(status, body, (("Content-Type", "application/xml"),), reason=code)


class S3Server:
    """A running moto server: storages on fresh buckets, reset."""

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
    with process:
        yield S3Server(process)
