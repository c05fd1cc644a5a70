"""Fixtures for the moorage-gcs tests: the emulator, proxies in front of it, and
storages that are closed afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from moorage_gcs import GCSStorage

from .helpers import MakeGCS
from servers.cleanup import closing_all
from servers.gcs import GCSServer
from servers.proxy import CountingProxy


@pytest.fixture
def gcs(gcs_server: GCSServer) -> GCSServer:
    return gcs_server


@pytest.fixture
def proxy(gcs_server: GCSServer) -> Iterator[CountingProxy]:
    """A counting proxy in front of the emulator, for this test only."""
    with CountingProxy(gcs_server.port) as counting:
        yield counting


@pytest.fixture
def make_gcs(gcs_server: GCSServer) -> Iterator[MakeGCS]:
    """Build `GCSStorage` objects on the emulator (a fresh bucket unless ``url`` is given)
    and close them at the end of the test."""

    def build(url: str | None = None, **options: Any) -> GCSStorage:
        options.setdefault("endpoint_url", gcs_server.endpoint)
        options.setdefault("token", "anon")
        return GCSStorage(url or gcs_server.url(), **options)

    with closing_all(build) as make:
        yield make
