"""`StorageHarness`: what every group of storage contract cases stands on.

The ``storage`` fixture that plugin authors override, the class attributes that tune
sizes and timeouts, and the helpers the cases share. Each group of cases (basics,
payloads, listing, keys, concurrency, conditional writes, retention) subclasses it, and
`StorageContract` combines the groups into the one class authors subclass.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import ClassVar

import pytest

from moorage.storage import Storage
from moorage.testing._util import fixture_not_overridden

__all__ = ["StorageHarness"]


class StorageHarness:
    """The fixture, tuning attributes and helpers of `StorageContract`."""

    #: Size of the large payload of the round-trip tests (about 5 MB).
    large_payload_size: ClassVar[int] = 5 * 1024 * 1024
    #: Threads writing one key at once in the concurrent-writers test.
    concurrent_writers: ClassVar[int] = 4
    #: Writes each of those threads makes.
    concurrent_rounds: ClassVar[int] = 8
    #: Size of each concurrent writer's payload.
    concurrent_payload_size: ClassVar[int] = 256 * 1024
    #: Seconds any background thread may take before the test fails as hung.
    thread_timeout: ClassVar[float] = 60.0
    #: Threads racing to create one key in the conditional-create race test.
    racing_creators: ClassVar[int] = 6
    #: Keys one ``delete_paths`` call of the batch-delete tests removes. A backend that
    #: deletes in batches should see more than one here: lower its batch size in the
    #: fixture (as moorage's own S3 and Azure tests do) rather than raise this.
    batch_delete_keys: ClassVar[int] = 25

    @pytest.fixture
    def storage(self) -> Iterator[Storage]:
        """Override: yield a fresh, empty storage of your backend."""
        fixture_not_overridden(
            self, "StorageContract", "storage", "yielding a fresh, empty Storage"
        )

    # -- helpers ---------------------------------------------------------------------

    @staticmethod
    def _listed(storage: Storage, prefix: str = "") -> list[str]:
        """``list_paths(prefix)`` sorted, after checking it yields distinct strings."""
        keys = list(storage.list_paths(prefix))
        for key in keys:
            assert isinstance(key, str), f"list_paths yielded {key!r}, not a str"
        assert len(keys) == len(set(keys)), f"list_paths({prefix!r}) repeated keys: {keys}"
        return sorted(keys)

    def _large_payload(self) -> bytes:
        """`large_payload_size` random bytes, the same in every test (fixed seed)."""
        return random.Random(1234).randbytes(self.large_payload_size)
