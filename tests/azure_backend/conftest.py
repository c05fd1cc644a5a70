"""Fixtures for the holdfast-azure tests: a clean Azure environment, Azurite, proxies.

Every test here starts without ``AZURE_*`` variables, so nothing from the machine leaks
in (and no test reaches for a real account); tests that need the SDK's variables set
them with ``monkeypatch``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from holdfast.storage import Storage

from servers.azure import AzureServer, CountingProxy


@pytest.fixture(autouse=True)
def _clean_azure_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AZURE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def azurite(azure_server: AzureServer) -> AzureServer:
    return azure_server


@pytest.fixture
def proxy(azure_server: AzureServer) -> Iterator[CountingProxy]:
    """A counting proxy in front of Azurite, for this test only."""
    counting = azure_server.start_proxy()
    yield counting
    counting.stop()


@pytest.fixture
def make(azure_server: AzureServer) -> Iterator[Callable[..., Storage]]:
    """``make(name="results", via=None, **options)``: a storage on a fresh container,
    closed at the end of the test."""
    made: list[Storage] = []

    def build(name: str = "results", **options: Any) -> Storage:
        storage = azure_server.make_storage(name, **options)
        made.append(storage)
        return storage

    yield build
    for storage in made:
        storage.close()
