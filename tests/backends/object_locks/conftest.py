"""Fixtures for the object-store lock manager: a place for locks (a fresh bucket or
container and the options that reach it) on each of the suite's emulators, moto's S3,
the GCS emulator and Azurite.

`place` is parametrized over the three; `Place.manager` builds a manager through
`moorage.plugins.resolve.lock_manager_from`, as a user's URL is resolved, and
`Place.storage` a storage on the same bucket, to look at the lock objects directly.
``via`` routes either through a `servers.proxy.CountingProxy` to count requests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from moorage.locking import LockManager
from moorage.plugins.resolve import lock_manager_from, storage_from
from moorage.storage import Storage

from servers.azure import AzureServer, connection_string
from servers.cleanup import clear_environment
from servers.gcs import GCSServer
from servers.proxy import CountingProxy
from servers.s3 import S3Server

BACKENDS = ["s3", "gcs", "azure"]


@dataclass
class Place:
    """Where a test's locks live: ``url`` and the options that reach its emulator
    (``options_for(endpoint)``: the same, through another endpoint such as a proxy)."""

    backend: str
    url: str
    port: int
    options_for: Callable[[str | None], dict[str, Any]]
    made: list[Any] = field(default_factory=list)

    def manager(self, hold_timeout: float | None = 60.0, via: str | None = None) -> LockManager:
        """A lock manager for ``url``, resolved from the URL as configuration does."""
        made = lock_manager_from(self.url, hold_timeout=hold_timeout, **self.options_for(via))
        self.made.append(made)
        return made

    def storage(self, via: str | None = None) -> Storage:
        """A storage on the same URL: the lock objects are below ``.moorage-locks/``."""
        made = storage_from(self.url, **self.options_for(via))
        self.made.append(made)
        return made


@pytest.fixture(autouse=True)
def _clean_cloud_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing from the machine's AWS, Google or Azure settings reaches a client."""
    clear_environment(monkeypatch, "AWS_", "AZURE_", "GOOGLE_", "STORAGE_EMULATOR_HOST")
    aws = tmp_path / "aws-home"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(aws / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(aws / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _s3_place(server: S3Server) -> Place:
    bucket_storage = server.make_storage("locks", prefix="")  # creates the bucket
    bucket_storage.close()
    return Place("s3", f"{bucket_storage.url}/app", server.port, server.options)


def _gcs_place(server: GCSServer) -> Place:
    def options(endpoint: str | None) -> dict[str, Any]:
        return {"endpoint_url": endpoint or server.endpoint, "token": "anon"}

    return Place("gcs", server.url("app"), server.port, options)


def _azure_place(server: AzureServer) -> Place:
    def options(endpoint: str | None) -> dict[str, Any]:
        return {"connection_string": connection_string(endpoint or server.endpoint)}

    return Place("azure", f"az://{server.create_container()}/app", server.port, options)


@pytest.fixture(params=BACKENDS)
def place(request: pytest.FixtureRequest) -> Iterator[Place]:
    """A fresh bucket (or container) on one emulator; what was built on it is closed
    at the end of the test."""
    backend = str(request.param)
    server = request.getfixturevalue(f"{backend}_server")
    builders: dict[str, Callable[[Any], Place]] = {
        "s3": _s3_place,
        "gcs": _gcs_place,
        "azure": _azure_place,
    }
    build = builders[backend]
    made = build(server)
    yield made
    for thing in made.made:
        thing.close()


@pytest.fixture
def proxy(place: Place) -> Iterator[CountingProxy]:
    """A counting proxy in front of the place's emulator."""
    with CountingProxy(place.port) as counting:
        yield counting
