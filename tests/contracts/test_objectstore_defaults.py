"""`moorage.storage.objectstore.ObjectStorage`'s default primitives (fsspec's generic
async methods), as a third-party fsspec backend gets them when it only supplies
`make_filesystem`: the contract kit run on a plain s3fs filesystem against moto
(moorage-s3 supplies its own primitives, so this is what keeps the defaults honest)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import s3fs

from moorage.errors import StorageError
from moorage.storage import Storage
from moorage.storage.objectstore import ObjectStorage
from moorage.testing import StorageContract


class PlainS3(ObjectStorage):
    schemes = ("s3",)

    def make_filesystem(self, *, asynchronous: bool, loop: Any) -> Any:
        fs = s3fs.S3FileSystem(
            endpoint_url=self.options["endpoint_url"],
            key=self.options["key"],
            secret=self.options["secret"],
            client_kwargs={"region_name": self.options["region"]},
            config_kwargs={"retries": {"max_attempts": self.options.get("attempts", 5)}},
            skip_instance_cache=True,
            use_listings_cache=False,
            asynchronous=asynchronous,
            loop=loop,
        )
        fs.retries = 1  # s3fs's own retry loop stays out: botocore retries (moto may 500)
        return fs


class TestObjectStorageDefaults(StorageContract):
    large_payload_size = 1024 * 1024

    @pytest.fixture
    def storage(self, s3_server: Any) -> Iterator[Storage]:
        bucket = s3_server.make_storage("defaults", prefix="")  # creates the bucket
        storage = PlainS3(f"{bucket.url}/records", **s3_server.options())
        yield storage
        storage.close()


def test_missing_bucket_is_reported_by_every_operation(s3_server: Any) -> None:
    storage = PlainS3("s3://no-such-bucket-here/p", **s3_server.options())
    for call in (
        lambda: storage.read_path("k"),
        lambda: list(storage.list_paths()),
        lambda: storage.write_path("k", b"x"),
    ):
        with pytest.raises(StorageError, match="'no-such-bucket-here' does not exist"):
            call()


def test_option_values_never_reach_messages(s3_server: Any) -> None:
    options = {**s3_server.options(), "endpoint_url": "http://127.0.0.1:9", "attempts": 1}
    storage = PlainS3("s3://bucket/p", **options)
    with pytest.raises(StorageError) as caught:
        storage.read_path("k")
    assert options["secret"] not in str(caught.value)
    assert "s3://bucket/p" in str(caught.value)
