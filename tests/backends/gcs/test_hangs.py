"""No GCS call hangs: every operation fails within its timeouts and retries when the
endpoint accepts connections and then stops answering (a black hole, a frozen
emulator), with a `StorageError` naming the URL and the key.

Each call runs in a thread of its own, all at once; the join timeout is a hang detector,
far above the configured bounds (timeouts of 1 s, no retry), not a speed test.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from moorage_gcs import GCSStorage

from servers import ServerProcess, free_port
from servers.gcs import LAUNCHER, GCSServer
from servers.hangs import MIB, assert_all_fail_in_time, black_hole, every_operation, frozen

BOUNDS = {"timeout": 1, "connect_timeout": 1, "retries": 0, "token": "anon"}
JOIN_TIMEOUT = 60.0


def with_batch_deletes(
    calls: dict[str, Callable[[], Any]], storage: GCSStorage
) -> dict[str, Callable[[], Any]]:
    """``calls`` and the batch deletes, sync and async (one request each here)."""
    return {
        **calls,
        "delete_paths": lambda: storage.delete_paths(["k", "w"]),
        "adelete_paths": lambda: asyncio.run(storage.adelete_paths(["k"])),
    }


def storages(url: str, endpoint: str) -> tuple[GCSStorage, GCSStorage]:
    single = GCSStorage(url, endpoint_url=endpoint, chunk_size=16 * MIB, **BOUNDS)
    resumable = GCSStorage(url, endpoint_url=endpoint, chunk_size=MIB, **BOUNDS)
    return single, resumable


def test_a_black_hole_endpoint_fails_every_operation_in_time() -> None:
    with black_hole() as endpoint:
        single, resumable = storages("gs://quiet/records", endpoint)
        try:
            calls = with_batch_deletes(every_operation(single, resumable, "resumable"), single)
            assert_all_fail_in_time(calls, single.url, JOIN_TIMEOUT, endpoint)
        finally:
            single.close()
            resumable.close()


@pytest.fixture
def own_emulator(tmp_path: Path) -> Iterator[tuple[ServerProcess, GCSServer]]:
    """An emulator for this test alone: freezing it disturbs no other test."""
    port = free_port()
    command = [sys.executable, str(LAUNCHER), "--host", "127.0.0.1", "--port", str(port)]
    with ServerProcess("gcs-emulator-frozen", command, port, tmp_path) as process:
        yield process, GCSServer(process)


def test_a_frozen_emulator_fails_every_operation_in_time(
    own_emulator: tuple[ServerProcess, GCSServer],
) -> None:
    process, server = own_emulator
    single, resumable = storages(server.url("frozen"), server.endpoint)
    single.write_path("k", b"record")
    assert single.read_path("k") == b"record"
    try:
        with frozen(process):
            calls = with_batch_deletes(every_operation(single, resumable, "resumable"), single)
            assert_all_fail_in_time(calls, single.url, JOIN_TIMEOUT, "the frozen emulator")
    finally:
        single.close()
        resumable.close()
