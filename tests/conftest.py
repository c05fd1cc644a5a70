"""Shared fixtures: every test runs with clean settings, a private home for the default
local storage, and a fresh plugin registry and memory cache."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import holdfast.results
from holdfast.plugins import reset_registry
from holdfast.settings import reset_settings


@pytest.fixture(autouse=True)
def _isolated(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("HOLDFAST_"):
            monkeypatch.delenv(name)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOLDFAST_LOCAL_STORAGE_PATH", str(home / "storage"))
    monkeypatch.chdir(home)
    reset_settings()
    reset_registry()
    holdfast.results._cache = None
    yield
    reset_settings()
    reset_registry()
    holdfast.results._cache = None


def _memory_url() -> str:
    return f"memory://test-{uuid.uuid4().hex}"


@pytest.fixture(params=["memory", "local"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_storage(backend: str, tmp_path: Path) -> Callable[[str], Any]:
    """Build a fresh storage of the parametrized backend; the name keeps them apart."""

    def make(name: str = "results") -> Any:
        from holdfast.resolve import storage_from

        if backend == "memory":
            return storage_from(_memory_url())
        return storage_from(tmp_path / name)

    return make
