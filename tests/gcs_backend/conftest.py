"""Fixtures for the holdfast-gcs tests: the emulator, proxies in front of it, storages
that are closed afterwards, and the loopback stand-ins of `helpers`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from holdfast_gcs import GCSStorage

from .helpers import LoopbackHTTP, MakeGCS, RawListener, Reply
from servers.gcs import GCSServer, TrafficCounter


@pytest.fixture
def gcs(gcs_server: GCSServer) -> GCSServer:
    return gcs_server


@pytest.fixture
def proxy(gcs_server: GCSServer) -> Iterator[TrafficCounter]:
    with gcs_server.proxy() as counter:
        yield counter


@pytest.fixture
def make_gcs(gcs_server: GCSServer) -> Iterator[MakeGCS]:
    """Build `GCSStorage` objects on the emulator (a fresh bucket unless ``url`` is given)
    and close them at the end of the test."""
    made: list[GCSStorage] = []

    def make(url: str | None = None, **options: Any) -> GCSStorage:
        options.setdefault("endpoint_url", gcs_server.endpoint)
        options.setdefault("token", "anon")
        storage = GCSStorage(url or gcs_server.url(), **options)
        made.append(storage)
        return storage

    yield make
    for storage in made:
        storage.close()


@pytest.fixture
def loopback_http() -> Iterator[Callable[..., LoopbackHTTP]]:
    started: list[LoopbackHTTP] = []

    def start(reply: Reply) -> LoopbackHTTP:
        server = LoopbackHTTP(reply)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture
def raw_listener() -> Iterator[Callable[..., RawListener]]:
    started: list[RawListener] = []

    def start(*, hang: bool) -> RawListener:
        listener = RawListener(hang=hang)
        started.append(listener)
        return listener

    yield start
    for listener in started:
        listener.close()
