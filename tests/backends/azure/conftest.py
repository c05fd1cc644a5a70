"""Fixtures for the moorage-azure tests: a clean Azure environment, Azurite, proxies.

Every test here starts without ``AZURE_*`` variables, so nothing from the machine leaks
in (and no test reaches for a real account); tests that need the SDK's variables set
them with ``monkeypatch``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from moorage.storage import Storage

from servers.azure import AzureServer
from servers.cleanup import clear_environment, closing_all
from servers.proxy import CountingProxy


@pytest.fixture(autouse=True)
def _clean_azure_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_environment(monkeypatch, "AZURE_")


@pytest.fixture
def azurite(azure_server: AzureServer) -> AzureServer:
    return azure_server


@pytest.fixture
def proxy(azure_server: AzureServer) -> Iterator[CountingProxy]:
    """A counting proxy in front of Azurite, for this test only."""
    with CountingProxy(azure_server.port) as counting:
        yield counting


@pytest.fixture
def make(azure_server: AzureServer) -> Iterator[Callable[..., Storage]]:
    """``make(name="results", **options)``: a storage on a fresh container, closed at the
    end of the test."""
    with closing_all(azure_server.make_storage) as build:
        yield build
