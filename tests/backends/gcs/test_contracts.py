"""The plugin test kit applied to moorage-gcs, against the emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from moorage.plugins.resolve import storage_from
from moorage.storage import Storage
from moorage.testing import StorageContract
from moorage_gcs import GCSStorage

from servers.gcs import GCSServer


class TestGCSStorage(StorageContract):
    """``gs://bucket/prefix`` built through the plugin registry, default options."""

    @pytest.fixture
    def storage(self, gcs_server: GCSServer) -> Iterator[Storage]:
        storage = gcs_server.make_storage("contract")
        assert isinstance(storage, GCSStorage)
        yield storage
        storage.close()


class TestGCSStorageChunked(StorageContract):
    """``gcs://bucket`` (no prefix) with the smallest chunk size GCS allows, so the large
    payloads and parts go up as resumable uploads of many chunks; and batch deletes of 7
    objects a request, so the kit's batch deletes take several."""

    large_payload_size = 3 * 1024 * 1024 + 17

    @pytest.fixture
    def storage(self, gcs_server: GCSServer) -> Iterator[Storage]:
        url = f"gcs://{gcs_server.create_bucket()}?chunk_size=262144&token=anon"
        storage = storage_from(url, endpoint_url=gcs_server.endpoint)
        assert isinstance(storage, GCSStorage)
        assert storage.settings.chunk_size == 262144
        storage.remove_batch = 7
        yield storage
        storage.close()
