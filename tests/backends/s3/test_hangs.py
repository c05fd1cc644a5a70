"""No S3 call hangs: every operation fails within its timeouts and retries when the
endpoint accepts connections and then stops answering (a black hole, a frozen server),
with a `StorageError` naming the URL and the key.

Each call runs in a thread of its own, all at once; the join timeout is a hang detector,
far above the configured bounds (timeouts of 1 s, one attempt), not a speed test.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from moorage import StorageError
from moorage_s3 import S3Storage

from servers import ServerProcess
from servers.hangs import (
    HANG,
    MIB,
    assert_all_fail_in_time,
    black_hole,
    every_operation,
    frozen,
    outcomes,
)
from servers.s3 import S3Server, start_moto

BOUNDS = {"connect_timeout": 1, "read_timeout": 1, "retries": 1}
MULTIPART = {"multipart_threshold": 5 * MIB, "part_size": 5 * MIB}
#: Far above any bound here: the longest, a 3 MiB PUT, may take 1 + 1 * (1 + 3) s.
JOIN_TIMEOUT = 60.0


def with_batch_deletes(
    calls: dict[str, Callable[[], Any]], storage: S3Storage
) -> dict[str, Callable[[], Any]]:
    """``calls`` and the batch deletes, sync and async (one request each here)."""
    return {
        **calls,
        "delete_paths": lambda: storage.delete_paths(["k", "w"]),
        "adelete_paths": lambda: asyncio.run(storage.adelete_paths(["k"])),
    }


def test_a_black_hole_endpoint_fails_every_operation_in_time() -> None:
    with black_hole() as endpoint:
        options = {"endpoint_url": endpoint, "key": "test-key", "secret": "test-secret"}
        options |= {"region": "us-east-1", **BOUNDS}
        single = S3Storage("s3://quiet/records", **options)
        multipart = S3Storage("s3://quiet/records", **options, **MULTIPART)
        try:
            assert_all_fail_in_time(
                with_batch_deletes(
                    every_operation(single, multipart, "multipart", large=3 * MIB), single
                ),
                single.url,
                JOIN_TIMEOUT,
                endpoint,
            )
        finally:
            single.close()
            multipart.close()


@pytest.fixture
def own_moto(tmp_path: Path) -> Iterator[tuple[ServerProcess, S3Server]]:
    """A moto server for this test alone: freezing it disturbs no other test."""
    process = start_moto(tmp_path, name="moto-frozen")
    with process:
        yield process, S3Server(process)


def test_a_frozen_server_fails_every_operation_in_time(
    own_moto: tuple[ServerProcess, S3Server],
) -> None:
    process, server = own_moto
    single = server.make_storage("frozen", **BOUNDS)
    multipart = S3Storage(single.url, **server.options(), **BOUNDS, **MULTIPART)
    single.write_path("k", b"record")
    assert single.read_path("k") == b"record"  # the pool now holds a live connection
    try:
        with frozen(process):
            calls = with_batch_deletes(
                every_operation(single, multipart, "multipart", large=3 * MIB), single
            )
            assert_all_fail_in_time(calls, single.url, JOIN_TIMEOUT, "frozen moto")
    finally:
        single.close()
        multipart.close()


def test_a_multipart_upload_to_a_dying_server_leaves_no_stray_task(
    own_moto: tuple[ServerProcess, S3Server], caplog: pytest.LogCaptureFixture
) -> None:
    """The server freezes while parts are in flight, then dies: the write fails in time,
    says it could not abort the upload, and no task is left with an error nobody read."""
    process, server = own_moto
    storage = server.make_storage("dying", **BOUNDS, **MULTIPART, max_concurrency=2)
    payload = os.urandom(20 * MIB)
    caplog.set_level(logging.WARNING)

    def freeze_when_parts_flow() -> None:
        deadline = time.monotonic() + 30
        while "partNumber" not in process.log() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.killpg(os.getpgid(process.process.pid), signal.SIGSTOP)

    calls = {"write": lambda: storage.write_path("big", payload), "freeze": freeze_when_parts_flow}
    try:
        results = outcomes(calls, JOIN_TIMEOUT * 2)
    finally:
        os.killpg(os.getpgid(process.process.pid), signal.SIGKILL)  # and now it is dead
        os.killpg(os.getpgid(process.process.pid), signal.SIGCONT)
    storage.close()
    assert results["write"] != HANG, "the write hung on the frozen server"
    assert isinstance(results["write"], StorageError), repr(results["write"])
    time.sleep(0.5)  # let the I/O loop finish with the closed connections
    gc.collect()  # "Task exception was never retrieved" is logged when a task is collected
    time.sleep(0.2)
    messages = [record.getMessage() for record in caplog.records]
    assert not [m for m in messages if "never retrieved" in m], messages
    assert any("AbortIncompleteMultipartUpload" in m for m in messages), messages
