"""S3 decides conditional writes: If-None-Match / If-Match go with the request that makes
the object appear (PutObject, or CompleteMultipartUpload for a large record)."""

from __future__ import annotations

import pytest

from moorage.errors import WriteConflict

from .test_multipart import SMALL_PARTS, counted, kind, pending_uploads, record
from servers.proxy import CountingProxy
from servers.s3 import S3Server


def test_if_absent_travels_on_the_put(moto: S3Server, proxy: CountingProxy) -> None:
    _, storage = counted(moto, proxy)
    storage.write_path("small", b"first", if_absent=True)
    puts = [e for e in proxy.exchanges if e.method == "PUT"]
    assert [e.headers.get("if-none-match") for e in puts] == ["*"]
    with pytest.raises(WriteConflict, match=r"'small' in s3://"):
        storage.write_path("small", b"second", if_absent=True)
    assert storage.read_path("small") == b"first"


def test_if_absent_large_record_is_decided_at_completion(
    moto: S3Server, proxy: CountingProxy
) -> None:
    direct, storage = counted(moto, proxy, **SMALL_PARTS)
    parts, joined = record(11 * 1024 * 1024)
    storage.write_parts("big", parts, if_absent=True)
    completes = [e for e in proxy.exchanges if kind(e) == "complete"]
    assert [e.headers.get("if-none-match") for e in completes] == ["*"]
    other, _ = record(11 * 1024 * 1024, seed=2)
    with pytest.raises(WriteConflict):
        storage.write_parts("big", other, if_absent=True)
    assert direct.read_path("big") == joined
    assert pending_uploads(storage) == [], "the refused upload was not aborted"


def test_if_version_sends_the_etag(moto: S3Server, proxy: CountingProxy) -> None:
    _, storage = counted(moto, proxy)
    storage.write_path("v", b"one")
    etag = storage.version_of("v")
    assert etag is not None
    storage.write_path("v", b"two", if_version=etag)
    sent = [e.headers.get("if-match") for e in proxy.exchanges if e.method == "PUT"]
    assert sent[-1] == etag
    with pytest.raises(WriteConflict, match="changed since version"):
        storage.write_path("v", b"stale", if_version=etag)
    assert storage.read_path("v") == b"two"
