"""The plugin test kit's storage contract, run against moto two ways."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from moorage.plugins.resolve import storage_from
from moorage.storage import Storage
from moorage.testing import StorageContract
from moorage_s3 import S3Storage

from servers.s3 import S3Server


class TestS3Storage(StorageContract):
    """Built directly, on a key prefix inside a fresh bucket; DeleteObjects batches of 7
    keys, so the kit's batch deletes take several requests."""

    @pytest.fixture
    def storage(self, moto: S3Server) -> Iterator[Storage]:
        storage = moto.make_storage("contract")
        storage.remove_batch = 7
        yield storage
        storage.close()


class TestS3StorageFromURL(StorageContract):
    """Built through the plugin registry from an ``s3://`` URL with its options in the
    query string, on the bucket's root, with multipart settings small enough that the
    kit's large payloads (and its 1,000,003-byte write_parts chunks, which straddle part
    boundaries) go up as multipart uploads of two parts."""

    large_payload_size = 6 * 1024 * 1024

    @pytest.fixture
    def storage(self, moto: S3Server) -> Iterator[Storage]:
        bucket = moto.bucket_name("contract-url")
        options = moto.options()
        query = "&".join(f"{name}={value}" for name, value in options.items())
        storage = storage_from(
            f"s3://{bucket}?{query}&multipart_threshold=5MiB&part_size=5MiB&max_concurrency=2"
        )
        assert isinstance(storage, S3Storage)
        assert storage.url == f"s3://{bucket}"
        storage.create_bucket()
        yield storage
        storage.close()
