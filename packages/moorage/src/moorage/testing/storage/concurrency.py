"""`ConcurrencyCases`: writers racing on one key leave one complete value."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from moorage.storage import Storage
from moorage.testing._util import BackgroundThread, run
from moorage.testing.storage.harness import StorageHarness

__all__ = ["ConcurrencyCases"]


def _describe(data: bytes) -> str:
    """A short description of a payload for a failure message (not megabytes of it)."""
    head = data[:24]
    return f"{len(data)} bytes starting {head!r}"


class ConcurrencyCases(StorageHarness):
    """Unconditional writes to one key from many threads (or tasks): readers never see a
    torn value, the last value is one writer's whole payload, and no temporary files
    stay visible. Tuned by ``concurrent_writers``, ``concurrent_rounds``,
    ``concurrent_payload_size`` and ``thread_timeout``."""

    def test_concurrent_writers_leave_a_complete_value(self, storage: Storage) -> None:
        key = "contended/value"
        size = self.concurrent_payload_size
        payloads = [bytes([0x41 + i % 26]) * (size + i) for i in range(self.concurrent_writers)]
        valid = set(payloads)
        storage.write_path(key, payloads[0])
        start = threading.Barrier(self.concurrent_writers + 1, timeout=self.thread_timeout)
        writers_done = threading.Event()
        torn: list[str] = []
        reads = [0]

        def writer(payload: bytes) -> Callable[[], None]:
            def write() -> None:
                start.wait()
                for _ in range(self.concurrent_rounds):
                    storage.write_path(key, payload)

            return write

        def reader() -> None:
            start.wait()
            while not writers_done.is_set() or reads[0] == 0:
                data = storage.read_path(key)  # RecordNotFound here is a failure too
                reads[0] += 1
                if data not in valid:
                    torn.append(_describe(data))

        writers = [
            BackgroundThread(writer(p), name=f"writer-{i}").start() for i, p in enumerate(payloads)
        ]
        reading = BackgroundThread(reader, name="reader").start()
        try:
            for thread in writers:
                thread.join(self.thread_timeout)
        finally:
            writers_done.set()
            reading.join(self.thread_timeout)
        assert not torn, f"a reader saw partial values: {torn[:3]}"
        final = storage.read_path(key)
        assert final in valid, f"the final value is not one writer's: {_describe(final)}"
        assert self._listed(storage) == [key], "temporary files were left visible"

    def test_async_concurrent_writers_leave_a_complete_value(self, storage: Storage) -> None:
        payloads = [bytes([0x61 + i]) * (64 * 1024 + i) for i in range(8)]

        async def scenario() -> bytes:
            await asyncio.gather(*(storage.awrite_path("async/contended", p) for p in payloads))
            return await storage.aread_path("async/contended")

        final = run(scenario())
        assert final in set(payloads), f"the final value is not one writer's: {_describe(final)}"
