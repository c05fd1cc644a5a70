"""Smoke tests of moorage as installed from its wheels (``nox -s smoke``): the packages
come from site-packages, every backend plugin is found through its entry point, and a
store on each emulator writes and reads records."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import moorage
from moorage.results import ResultStore

SOURCES = Path(__file__).resolve().parents[2] / "packages"


def test_installed_from_wheels_not_the_source_tree() -> None:
    assert "site-packages" in moorage.__file__, "run these through `nox -s smoke`"
    import moorage_azure
    import moorage_gcs
    import moorage_local
    import moorage_msgpack
    import moorage_redis
    import moorage_s3

    modules = (moorage, moorage_local, moorage_s3, moorage_gcs, moorage_azure)
    for module in (*modules, moorage_redis, moorage_msgpack):
        path = Path(str(module.__file__))
        assert "site-packages" in path.parts, module
        assert SOURCES not in path.parents, f"{module} comes from the source tree"


def test_plugins_command_lists_every_backend() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "moorage", "plugins", "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    registered = {
        name
        for plugin in json.loads(out)
        for names in plugin["registers"].values()
        for name in names
    }
    assert {"file", "s3", "gs", "gcs", "az", "abfs", "redis", "rediss", "msgpack"} <= registered


@pytest.mark.parametrize("backend", ["s3", "gcs", "azure"])
def test_store_round_trip_on_each_emulator(backend: str, request: pytest.FixtureRequest) -> None:
    server: Any = request.getfixturevalue(f"{backend}_server")
    store = ResultStore(result_storage=server.make_storage("smoke"), serializer="msgpack")
    store.write({"backend": backend, "rows": [1, 2, 3]}, key="smoke/record")
    fresh = ResultStore(result_storage=store.result_storage, cache_result_in_memory=False)
    assert fresh.exists("smoke/record")
    assert fresh.read("smoke/record").result == {"backend": backend, "rows": [1, 2, 3]}


def test_redis_locks(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    server: Any = request.getfixturevalue("redis_server")
    store = ResultStore(result_storage=tmp_path, lock_manager=server.url)
    with store.transaction("counter", "SERIALIZABLE") as txn:
        assert store.is_locked("counter")
        txn.stage(1)
    assert not store.is_locked("counter")
    assert store.read("counter").result == 1
