"""Storages and lock managers that arrive by pickle share their process's clients.

A worker unpickles a task, and the storage and lock manager inside it, for every call;
each copy of equal configuration is the one object the process already has, so clients
are built once per process (`moorage.landing`).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import cloudpickle
import pytest

from moorage.landing import forget_landed

from servers.s3 import S3Server


@pytest.fixture(autouse=True)
def _clean() -> None:
    forget_landed()


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps])
def test_equal_storages_land_as_one(s3_server: S3Server, dumps: Callable[[Any], bytes]) -> None:
    storage = s3_server.make_storage("landing")
    storage.write_path("k", b"v")
    data = dumps(storage)
    first, second = pickle.loads(data), pickle.loads(data)
    assert first is second, "the second arrival shares the first's client"
    assert first is not storage, "objects made by constructors are never shared"
    assert first.read_path("k") == b"v"


def test_different_options_never_share(s3_server: S3Server) -> None:
    storage = s3_server.make_storage("landing")
    other = type(storage)(storage.url, **{**s3_server.options(), "retries": 1})
    assert pickle.loads(pickle.dumps(storage)) is not pickle.loads(pickle.dumps(other))


def test_equal_lock_managers_land_as_one() -> None:
    from moorage_redis import RedisLockManager

    manager = RedisLockManager("redis://127.0.0.1:1/0", hold_timeout=30)
    data = pickle.dumps(manager)
    first, second = pickle.loads(data), pickle.loads(data)
    assert first is second
    assert first == manager
    assert first is not manager
    other = pickle.loads(pickle.dumps(RedisLockManager("redis://127.0.0.1:1/0", hold_timeout=31)))
    assert other is not first
