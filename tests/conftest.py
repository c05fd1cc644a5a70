"""Shared fixtures: every test runs with clean settings, a private home for the default
local storage, and a fresh plugin registry and memory cache."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import moorage.results
from moorage.config.settings import reset_settings
from moorage.landing import forget_landed
from moorage.plugins.registry import reset_registry

from servers import server_modules
from servers.cleanup import clear_environment

# Each module in tests/servers/ that serves a storage backend defines BACKEND ("s3") and a
# session fixture "<BACKEND>_server" whose value has make_storage(name) -> Storage (a fresh,
# empty bucket or container). Importing the fixture here makes it visible to every test;
# the server starts the first time a test asks for it.
STORAGE_BACKENDS = ["memory", "local"]

# tests/smoke checks moorage as installed from its wheels; `nox -s smoke` installs them
# and sets MOORAGE_SMOKE=1. Against the source tree those tests would prove nothing.
collect_ignore = [] if os.environ.get("MOORAGE_SMOKE") == "1" else ["smoke"]
# tests/on_ray needs Ray, which only `nox -s ray` installs (it sets MOORAGE_RAY_TESTS=1).
if os.environ.get("MOORAGE_RAY_TESTS") != "1":
    collect_ignore.append("on_ray")
for _module in server_modules():
    globals()[f"{_module.BACKEND}_server"] = getattr(_module, f"{_module.BACKEND}_server")
    if getattr(_module, "STORAGE", False):
        STORAGE_BACKENDS.append(_module.BACKEND)


@pytest.fixture(autouse=True)
def _isolated(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    clear_environment(monkeypatch, "MOORAGE_")
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("MOORAGE_LOCAL_STORAGE_PATH", str(home / "storage"))
    monkeypatch.chdir(home)
    reset_settings()
    reset_registry()
    forget_landed()
    moorage.store.defaults._cache = None
    yield
    reset_settings()
    reset_registry()
    moorage.store.defaults._cache = None


def _memory_url() -> str:
    return f"memory://test-{uuid.uuid4().hex}"


@pytest.fixture(params=STORAGE_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_storage(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[[str], Any]:
    """Build a fresh storage of the parametrized backend; the name keeps them apart."""
    from moorage.plugins.resolve import storage_from

    if backend == "memory":
        return lambda name="results": storage_from(_memory_url())
    if backend == "local":
        return lambda name="results": storage_from(tmp_path / name)
    server = request.getfixturevalue(f"{backend}_server")
    return server.make_storage  # type: ignore[no-any-return]
