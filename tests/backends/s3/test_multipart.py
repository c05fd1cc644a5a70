"""Large records go up as multipart uploads: parts cut from the record's buffers one at a
time, the object visible only once complete, the upload aborted on any failure."""

from __future__ import annotations

import array
import asyncio
import random
import threading
import tracemalloc
from typing import Any

import pytest

from moorage import StorageError
from moorage.storage.upload import Buffers as BufferSlicer
from moorage_s3 import S3Storage
from moorage_s3.multipart import MAX_PARTS, part_ranges
from moorage_s3.options import MIB

from servers import wait_until
from servers.proxy import CountingProxy, Exchange
from servers.s3 import S3Server, error_reply

SMALL_PARTS = {"multipart_threshold": "5MiB", "part_size": "5MiB"}
HEADER, METADATA = b"HF\x00\x01" * 4, b'{"serializer": "pickle"}' * 10


def record(size: int, seed: int = 1) -> tuple[list[Any], bytes]:
    """A record as the store hands it over (header, metadata, payload view), and its bytes."""
    payload = random.Random(seed).randbytes(size)
    return [HEADER, METADATA, memoryview(payload)], HEADER + METADATA + payload


def pending_uploads(storage: S3Storage) -> list[dict[str, Any]]:
    fs = storage._filesystem()
    uploads: list[dict[str, Any]] = fs.call_s3("list_multipart_uploads", Bucket=storage.bucket)
    return uploads.get("Uploads", [])  # type: ignore[attr-defined, no-any-return]


def counted(moto: S3Server, proxy: CountingProxy, **options: Any) -> tuple[S3Storage, S3Storage]:
    direct = moto.make_storage("multipart")
    return direct, S3Storage(direct.url, **moto.options(proxy.endpoint), **options)


def kind(exchange: Exchange) -> str:
    target = exchange.path
    if "uploads" in target.split("?")[-1].split("&"):
        return "create"
    if "partNumber=" in target:
        return "part"
    if "uploadId=" in target:
        return {"POST": "complete", "DELETE": "abort"}.get(exchange.method, exchange.method)
    return exchange.method


def test_a_large_record_goes_up_in_parts(moto: S3Server, proxy: CountingProxy) -> None:
    direct, storage = counted(moto, proxy, **SMALL_PARTS, max_concurrency=2)
    parts, joined = record(12 * MIB)
    location = storage.write_parts("big/record", parts)

    assert location == storage.resolve_path("big/record")
    exchanges = proxy.exchanges
    assert [kind(e) for e in exchanges] == ["create", "part", "part", "part", "complete"], (
        proxy.summary()
    )
    uploaded = [e for e in exchanges if kind(e) == "part"]
    sizes = sorted(int(e.headers["content-length"]) for e in uploaded)
    assert sizes == sorted([5 * MIB, 5 * MIB, len(joined) - 10 * MIB])
    assert sum(e.sent for e in exchanges) < len(joined) + 64 * 1024, "bytes were sent twice"
    assert direct.read_path("big/record") == joined
    assert pending_uploads(direct) == []
    # botocore computes CRC32 checksums by default; the upload declares it, as boto3 does
    assert exchanges[0].headers.get("x-amz-checksum-algorithm") == "CRC32"
    assert all("x-amz-checksum-crc32" in e.headers for e in uploaded)


def test_multipart_without_checksums(
    moto: S3Server, proxy: CountingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
    direct, storage = counted(moto, proxy, **SMALL_PARTS)
    parts, joined = record(6 * MIB)
    storage.write_parts("plain", parts)
    assert [kind(e) for e in proxy.exchanges] == ["create", "part", "part", "complete"]
    assert all(not h.startswith("x-amz-checksum") for e in proxy.exchanges for h in e.headers)
    assert direct.read_path("plain") == joined


def test_below_the_threshold_a_record_is_one_put(moto: S3Server, proxy: CountingProxy) -> None:
    _, storage = counted(moto, proxy, multipart_threshold="6MiB", part_size="5MiB")
    parts, joined = record(6 * MIB - len(HEADER) - len(METADATA) - 1)
    storage.write_parts("just-below", parts)
    assert [e.method for e in proxy.exchanges] == ["PUT"]
    assert storage.read_path("just-below") == joined


def test_parts_go_up_at_most_max_concurrency_at_a_time(
    moto: S3Server, proxy: CountingProxy
) -> None:
    direct, storage = counted(moto, proxy, **SMALL_PARTS, max_concurrency=2)
    proxy.hold(2, "partNumber=")  # the first two parts are in flight together
    proxy.delay = 0.05  # and each part takes long enough for a third to start, if it could
    parts, joined = record(21 * MIB)  # 5 parts
    storage.write_parts("bounded", parts)
    assert [kind(e) for e in proxy.exchanges].count("part") == 5, proxy.summary()
    assert proxy.max_in_flight == 2, proxy.summary()
    assert direct.read_path("bounded") == joined


def test_parts_are_copied_one_at_a_time(moto: S3Server) -> None:
    storage = moto.make_storage("memory", **SMALL_PARTS, max_concurrency=2)
    storage.write_path("warm-up", b"x")  # the client and its session exist before measuring
    parts, joined = record(24 * MIB)
    tracemalloc.start()
    try:
        storage.write_parts("big", parts)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # two parts of 5 MiB in flight, plus the client's buffers; a joined copy alone is 24 MiB
    assert peak < 18 * MIB, f"writing 24 MiB took {peak / MIB:.1f} MiB more memory"
    assert storage.read_path("big") == joined


def test_a_failed_part_aborts_the_upload_and_keeps_the_old_object(
    moto: S3Server, proxy: CountingProxy
) -> None:
    direct, storage = counted(moto, proxy, **SMALL_PARTS, retries=1)
    direct.write_path("kept", b"old value")
    proxy.reply(error_reply(500, "InternalError"), "partNumber=2")
    parts, _ = record(11 * MIB)
    with pytest.raises(StorageError, match=r"cannot write 'kept' in s3://.*InternalError"):
        storage.write_parts("kept", parts)

    assert "abort" in [kind(e) for e in proxy.exchanges], proxy.summary()
    assert pending_uploads(direct) == [], "the failed upload left parts behind"
    assert direct.read_path("kept") == b"old value"


def test_the_object_appears_only_when_the_upload_completes(
    moto: S3Server, proxy: CountingProxy
) -> None:
    direct, storage = counted(moto, proxy, **SMALL_PARTS, max_concurrency=1)
    direct.write_path("swap", b"old value")
    seen: dict[str, bytes] = {}

    def look(exchange: Exchange) -> None:  # before each request of the upload goes out
        seen[kind(exchange)] = direct.read_path("swap")

    proxy.before("", look, once=False)
    parts, joined = record(11 * MIB)
    storage.write_parts("swap", parts)
    assert seen == {"create": b"old value", "part": b"old value", "complete": b"old value"}
    assert direct.read_path("swap") == joined


def test_cancelling_an_async_write_aborts_the_upload(moto: S3Server, proxy: CountingProxy) -> None:
    direct, storage = counted(moto, proxy, **SMALL_PARTS, max_concurrency=1)
    first_part = threading.Event()
    proxy.before(lambda e: kind(e) == "part", lambda e: first_part.set())
    parts, _ = record(16 * MIB)

    async def write_then_cancel() -> None:
        task = asyncio.ensure_future(storage.awrite_parts("cancelled", parts))
        await asyncio.to_thread(first_part.wait, 60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(write_then_cancel())
    wait_until(lambda: "abort" in [kind(e) for e in proxy.exchanges], what="the abort")
    wait_until(lambda: not pending_uploads(direct), what="no pending uploads")
    assert direct.exists("cancelled") is False


def test_async_multipart_round_trip(moto: S3Server) -> None:
    storage = moto.make_storage("async-multipart", **SMALL_PARTS)
    parts, joined = record(7 * MIB)
    location = asyncio.run(storage.awrite_parts("a/big", parts))
    assert location == storage.resolve_path("a/big")
    assert asyncio.run(storage.aread_path("a/big")) == joined


# -- the slicing, without a server ------------------------------------------------------


def test_slices_straddle_buffers_without_copying_them() -> None:
    numbers = array.array("i", range(4))  # a memoryview of another format than bytes
    buffers: list[Any] = [b"abc", b"", bytearray(b"defg"), memoryview(numbers)]
    whole = b"abcdefg" + numbers.tobytes()
    slicer = BufferSlicer(buffers)
    assert slicer.size == len(whole)
    for start in range(len(whole) + 1):
        for end in range(start, len(whole) + 1):
            pieces = slicer.pieces(start, end)
            assert b"".join(pieces) == whole[start:end]
            assert all(piece.nbytes for piece in pieces)
    assert slicer.body(2, 9).read() == whole[2:9]
    with pytest.raises(ValueError, match="outside"):
        slicer.pieces(0, len(whole) + 1)


def test_part_ranges() -> None:
    assert part_ranges(0, 5 * MIB) == []
    assert part_ranges(12, 5) == [(0, 5), (5, 10), (10, 12)]
    assert part_ranges(10, 5) == [(0, 5), (5, 10)]
    huge = 100_000 * 5 * MIB  # too many parts at 5 MiB: the part size grows
    ranges = part_ranges(huge, 5 * MIB)
    assert len(ranges) <= MAX_PARTS
    assert ranges[-1][1] == huge
    assert (ranges[0][1] - ranges[0][0]) % MIB == 0
