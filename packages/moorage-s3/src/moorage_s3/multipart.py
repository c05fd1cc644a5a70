"""Multipart upload of a record given as several buffers, without joining them first.

A record arrives as a few buffers (header, metadata, the payload as a memoryview). Each
part of the upload is copied out of those buffers when its turn comes (one copy of that
part, whether it lies inside one buffer or straddles two), so at most ``concurrency``
parts exist in memory at once, however big the record is.

The object appears only when CompleteMultipartUpload succeeds, so readers see the old
object or the new one. Any failure, cancellation included, aborts the upload so no parts
are left behind (and billed).
"""

from __future__ import annotations

import asyncio
import bisect
import io
import logging
from collections.abc import Sequence
from typing import Any

from moorage.storage.base import BytesLike
from moorage_s3.options import MIB

__all__ = ["MAX_PARTS", "BufferSlicer", "part_ranges", "upload_multipart"]

#: S3 accepts at most this many parts per upload.
MAX_PARTS = 10_000

logger = logging.getLogger(__name__)


class BufferSlicer:
    """Byte ranges of the concatenation of some buffers, copied one range at a time."""

    def __init__(self, buffers: Sequence[BytesLike]) -> None:
        self._views = [v for v in (memoryview(b).cast("B") for b in buffers) if v.nbytes]
        self._starts: list[int] = []
        offset = 0
        for view in self._views:
            self._starts.append(offset)
            offset += view.nbytes
        self.size = offset

    def pieces(self, start: int, end: int) -> list[memoryview]:
        """Views (no copies) of the buffers that make up the bytes ``[start, end)``."""
        if not 0 <= start <= end <= self.size:
            raise ValueError(f"range {start}-{end} outside 0-{self.size}")
        found: list[memoryview] = []
        index = max(bisect.bisect_right(self._starts, start) - 1, 0)
        while start < end:
            view, first = self._views[index], self._starts[index]
            take = min(end, first + view.nbytes)
            found.append(view[start - first : take - first])
            start = take
            index += 1
        return found

    def body(self, start: int, end: int) -> io.BytesIO:
        """The bytes ``[start, end)`` as a request body: one copy, made here.

        A file object rather than ``bytes``: botocore would wrap ``bytes`` in a BytesIO
        that shares the buffer, and aiohttp would then copy it once more.
        """
        body = io.BytesIO()
        for piece in self.pieces(start, end):
            body.write(piece)
        body.seek(0)
        return body


def part_ranges(size: int, part_size: int) -> list[tuple[int, int]]:
    """``[start, end)`` of each part; the part size grows (by whole MiB) past 10,000 parts."""
    if size > part_size * MAX_PARTS:
        smallest = -(-size // MAX_PARTS)
        part_size = -(-smallest // MIB) * MIB
    return [(start, min(start + part_size, size)) for start in range(0, size, part_size)]


async def upload_multipart(
    fs: Any,
    bucket: str,
    key: str,
    slicer: BufferSlicer,
    part_size: int,
    concurrency: int,
    condition: dict[str, str] | None = None,
) -> None:
    """Upload the slicer's bytes to ``bucket/key`` in parts; abort on any failure.

    ``condition`` (``IfNoneMatch`` / ``IfMatch``) goes with CompleteMultipartUpload, the
    request that makes the object appear, so S3 decides it at the moment of replacing.

    ``fs`` is an ``s3fs.S3FileSystem``; requests go through its ``_call_s3`` so they get
    its error translation. Checksums follow botocore's setting, as boto3's transfer
    manager does: with ``request_checksum_calculation = when_supported`` (the default)
    the upload declares CRC32 and each part's checksum is sent back on completion.
    """
    client = await fs.set_session()
    checksum = getattr(client.meta.config, "request_checksum_calculation", None)
    extra = {"ChecksumAlgorithm": "CRC32"} if checksum == "when_supported" else {}
    where = {"Bucket": bucket, "Key": key}
    created = await fs._call_s3("create_multipart_upload", **where, **extra)
    upload_id: str = created["UploadId"]
    ranges = part_ranges(slicer.size, part_size)
    todo = iter(range(len(ranges)))
    done: dict[int, dict[str, Any]] = {}

    async def send_parts() -> None:
        for index in todo:  # shared iterator: each part is taken by exactly one worker
            start, end = ranges[index]
            body = slicer.body(start, end)
            sent = await fs._call_s3(
                "upload_part",
                **where,
                UploadId=upload_id,
                PartNumber=index + 1,
                Body=body,
                **extra,
            )
            del body
            part = {"PartNumber": index + 1, "ETag": sent["ETag"]}
            if extra and sent.get("ChecksumCRC32"):
                part["ChecksumCRC32"] = sent["ChecksumCRC32"]
            done[index] = part

    workers = [asyncio.ensure_future(send_parts()) for _ in range(min(concurrency, len(ranges)))]
    try:
        try:
            await asyncio.gather(*workers)
        finally:
            for worker in workers:  # one failed: stop the others before aborting
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        await fs._call_s3(
            "complete_multipart_upload",
            **where,
            UploadId=upload_id,
            MultipartUpload={"Parts": [done[i] for i in range(len(ranges))]},
            **(condition or {}),
        )
    except BaseException:
        await asyncio.shield(_abort(fs, where, upload_id))
        raise


async def _abort(fs: Any, where: dict[str, str], upload_id: str) -> None:
    try:
        await fs._call_s3("abort_multipart_upload", **where, UploadId=upload_id)
    except Exception:
        logger.warning(
            "could not abort the multipart upload %s of s3://%s/%s; S3 keeps its parts "
            "until a lifecycle rule (AbortIncompleteMultipartUpload) removes them",
            upload_id,
            where["Bucket"],
            where["Key"],
        )
