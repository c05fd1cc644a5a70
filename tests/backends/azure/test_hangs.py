"""No Azure call hangs: every operation fails within its timeouts and retries when the
endpoint accepts connections and then stops answering (a black hole, a frozen Azurite),
with a `StorageError` naming the URL and the key.

Each call runs in a thread of its own, all at once; the join timeout is a hang detector,
far above the configured bounds (timeouts of 1 s, no retry), not a speed test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from moorage_azure import AzureStorage

from servers import ServerProcess
from servers.azure import AzureServer, connection_string, start_azurite
from servers.hangs import MIB, assert_all_fail_in_time, black_hole, every_operation, frozen

BOUNDS = {"read_timeout": 1, "connection_timeout": 1, "retries": 0, "retry_backoff": 0}
JOIN_TIMEOUT = 60.0


def with_batch_deletes(
    calls: dict[str, Callable[[], Any]], storage: AzureStorage
) -> dict[str, Callable[[], Any]]:
    """``calls`` and the batch deletes, sync and async (one request each here)."""
    return {
        **calls,
        "delete_paths": lambda: storage.delete_paths(["k", "w"]),
        "adelete_paths": lambda: asyncio.run(storage.adelete_paths(["k"])),
    }


def storages(url: str, endpoint: str) -> tuple[AzureStorage, AzureStorage]:
    given = {"connection_string": connection_string(endpoint), **BOUNDS}
    single = AzureStorage(url, block_size=16 * MIB, **given)
    blocks = AzureStorage(url, block_size=4 * MIB, max_concurrency=2, **given)
    return single, blocks


def test_a_black_hole_endpoint_fails_every_operation_in_time() -> None:
    with black_hole() as endpoint:
        single, blocks = storages("az://quiet/records", endpoint)
        try:
            calls = with_batch_deletes(every_operation(single, blocks, "blocks"), single)
            assert_all_fail_in_time(calls, single.url, JOIN_TIMEOUT, endpoint)
        finally:
            single.close()
            blocks.close()


@pytest.fixture
def own_azurite(tmp_path: Path) -> Iterator[tuple[ServerProcess, AzureServer]]:
    """An Azurite for this test alone: freezing it disturbs no other test."""
    with start_azurite(tmp_path, silent=True) as process:
        yield process, AzureServer(process)


def test_a_frozen_azurite_fails_every_operation_in_time(
    own_azurite: tuple[ServerProcess, AzureServer],
) -> None:
    process, server = own_azurite
    single, blocks = storages(f"az://{server.create_container()}/records", server.endpoint)
    single.write_path("k", b"record")
    assert single.read_path("k") == b"record"
    try:
        with frozen(process):
            calls = with_batch_deletes(every_operation(single, blocks, "blocks"), single)
            assert_all_fail_in_time(calls, single.url, JOIN_TIMEOUT, "the frozen Azurite")
    finally:
        single.close()
        blocks.close()
