"""The plugin test kit applied to moorage-azure, against Azurite."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from moorage.storage import Storage
from moorage.testing import StorageContract
from moorage_azure import AzureStorage


class TestAzureStorage(StorageContract):
    """Built through the registry from ``az://container/results`` with a connection string."""

    @pytest.fixture
    def storage(self, make: Callable[..., Storage]) -> Storage:
        storage = make()
        assert isinstance(storage, AzureStorage)
        return storage


class TestAzureStorageInBlocks(StorageContract):
    """Small blocks: every payload above 64 KiB is staged in blocks and committed at once,
    including the concurrent writers' (whose commits discard each other's blocks); and
    Blob Batches of 7 deletes, so the kit's batch deletes take several requests."""

    large_payload_size = 1024 * 1024
    concurrent_payload_size = 200 * 1024

    @pytest.fixture
    def storage(self, make: Callable[..., Storage]) -> Storage:
        storage = make("blocks", block_size=64 * 1024, max_concurrency=4)
        assert isinstance(storage, AzureStorage)
        storage.remove_batch = 7
        return storage
