"""S3's multipart upload of a record given as several buffers, without joining them first.

The cutting and the bounded pool are moorage's one chunked upload
(`moorage.storage.upload`); this module adds what is S3's: the part size grows past
10,000 parts, parts go up as UploadPart requests, and the object appears only when
CompleteMultipartUpload succeeds, so readers see the old object or the new one. That
request also carries the write's condition (``IfNoneMatch`` / ``IfMatch``), so S3 decides
it at the moment of replacing. Any failure, cancellation included, aborts the upload so no
parts are left behind (and billed).

Each part is copied out of the buffers when its turn comes (one copy of that part,
whether it lies inside one buffer or straddles two), so at most ``concurrency`` parts
exist in memory at once, however big the record is.

Requests go to the aiobotocore client that s3fs's public ``set_session`` returns, so
they are botocore's own calls with its retries and timeouts (see `moorage_s3.transport`),
and its errors reach `moorage_s3.errors` as botocore raised them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from moorage.storage.upload import Buffers, cut, send_parts
from moorage_s3.options import MIB

__all__ = ["MAX_PARTS", "part_ranges", "upload_multipart"]

#: S3 accepts at most this many parts per upload.
MAX_PARTS = 10_000

logger = logging.getLogger(__name__)


def part_ranges(size: int, part_size: int) -> list[tuple[int, int]]:
    """``[start, end)`` of each part; the part size grows (by whole MiB) past 10,000 parts."""
    if size > part_size * MAX_PARTS:
        smallest = -(-size // MAX_PARTS)
        part_size = -(-smallest // MIB) * MIB
    # unit == size: every part but the last is exactly part_size, across buffers or not
    return cut([size], part_size, unit=part_size)


async def upload_multipart(
    client: Any,
    bucket: str,
    key: str,
    buffers: Buffers,
    part_size: int,
    concurrency: int,
    condition: dict[str, str] | None = None,
) -> None:
    """Upload the buffers' bytes to ``bucket/key`` in parts; abort on any failure.

    ``condition`` (``IfNoneMatch`` / ``IfMatch``) goes with CompleteMultipartUpload, the
    request that makes the object appear. Checksums follow botocore's setting, as boto3's
    transfer manager does: with ``request_checksum_calculation = when_supported`` (the
    default) the upload declares CRC32 and each part's checksum is sent back on
    completion.
    """
    checksum = getattr(client.meta.config, "request_checksum_calculation", None)
    extra = {"ChecksumAlgorithm": "CRC32"} if checksum == "when_supported" else {}
    where = {"Bucket": bucket, "Key": key}
    created = await client.create_multipart_upload(**where, **extra)
    upload_id: str = created["UploadId"]
    ranges = part_ranges(buffers.size, part_size)

    async def send(index: int) -> dict[str, Any]:
        start, end = ranges[index]
        sent = await client.upload_part(
            **where,
            UploadId=upload_id,
            PartNumber=index + 1,
            Body=buffers.body(start, end),
            **extra,
        )
        part = {"PartNumber": index + 1, "ETag": sent["ETag"]}
        if extra and sent.get("ChecksumCRC32"):
            part["ChecksumCRC32"] = sent["ChecksumCRC32"]
        return part

    try:
        done = await send_parts(len(ranges), send, concurrency=concurrency)
        await client.complete_multipart_upload(
            **where,
            UploadId=upload_id,
            MultipartUpload={"Parts": done},
            **(condition or {}),
        )
    except BaseException:
        await asyncio.shield(_abort(client, where, upload_id))
        raise


async def _abort(client: Any, where: dict[str, str], upload_id: str) -> None:
    try:
        await client.abort_multipart_upload(**where, UploadId=upload_id)
    except Exception:
        logger.warning(
            "could not abort the multipart upload %s of s3://%s/%s; S3 keeps its parts "
            "until a lifecycle rule (AbortIncompleteMultipartUpload) removes them",
            upload_id,
            where["Bucket"],
            where["Key"],
        )
