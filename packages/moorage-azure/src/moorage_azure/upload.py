"""Writing one blob from a sequence of buffers, atomically, without joining them.

A payload up to the block size goes up as one Put Blob request. A larger one is staged
as blocks (Put Block, several in flight) that are slices of the caller's buffers, then
committed with one Put Block List: the blob changes from its old bytes to its new bytes
in that single call, so a reader never sees a part. A commit discards every uncommitted
block of the blob, so concurrent block uploads of one key knock each other out; see
`upload` for how a writer that lost its blocks that way finishes. Only runs of small pieces (the
record's header and metadata, a buffer's tail) are joined into a block; the payload's
full-size blocks go out as memoryviews of the caller's bytes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob.aio import BlobClient

from moorage.storage import BytesLike
from moorage_azure.errors import error_code

__all__ = ["plan_blocks", "upload"]

MAX_BLOCKS = 50_000  # the service's limit of blocks in one blob
#: Times the blocks are staged again when another writer's commit discarded them.
COMMIT_ATTEMPTS = 3


def plan_blocks(parts: Sequence[BytesLike], block_size: int) -> list[list[memoryview]]:
    """The blocks to stage, in order, each a list of views that together fill it.

    Full-size slices become blocks of one view (sent without a copy); consecutive
    shorter pieces share a block as long as they fit.
    """
    blocks: list[list[memoryview]] = []
    small: list[memoryview] = []
    small_size = 0
    for part in parts:
        view = memoryview(part).cast("B")
        for start in range(0, len(view), block_size):
            piece = view[start : start + block_size]
            full = len(piece) == block_size
            if small and (full or small_size + len(piece) > block_size):
                blocks.append(small)
                small, small_size = [], 0
            if full:
                blocks.append([piece])
            else:
                small.append(piece)
                small_size += len(piece)
    if small:
        blocks.append(small)
    return blocks


def _block_data(pieces: list[memoryview]) -> BytesLike:
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


async def _stage(
    blob: BlobClient, blocks: list[list[memoryview]], concurrency: int, options: dict[str, Any]
) -> list[str]:
    """Stage every block under fresh ids (unique to this attempt); return the ids.

    All ids of one blob must have one length, uncommitted blocks of other writers
    included: 48 characters, as the Azure SDK's own chunked uploads use.
    """
    token = uuid.uuid4().hex
    ids = [f"{token}{index:016d}" for index in range(len(blocks))]
    queue = iter(range(len(blocks)))

    async def worker() -> None:
        for index in queue:  # shared: each worker takes the next block
            data = _block_data(blocks[index])
            await blob.stage_block(ids[index], data, length=len(data), **options)  # type: ignore[arg-type]

    workers = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, len(blocks)))]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise
    return ids


async def upload(
    blob: BlobClient,
    parts: Sequence[BytesLike],
    *,
    block_size: int,
    concurrency: int,
    options: dict[str, Any],
) -> None:
    """Replace the blob's content with the concatenation of ``parts``."""
    size = sum(memoryview(part).nbytes for part in parts)
    if size <= block_size:
        data = b"".join(parts) if len(parts) != 1 else bytes(parts[0])
        await blob.upload_blob(data, overwrite=True, length=size, max_concurrency=1, **options)
        return
    blocks = plan_blocks(parts, block_size)
    if len(blocks) > MAX_BLOCKS:
        raise ValueError(
            f"a payload of {size} bytes needs {len(blocks)} blocks of {block_size} bytes, "
            f"more than the {MAX_BLOCKS} a blob may have; raise the block_size option"
        )
    before = await _etag(blob, options)
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        ids = await _stage(blob, blocks, concurrency, options)
        try:
            await blob.commit_block_list(ids, **options)  # type: ignore[arg-type]
            return
        except HttpResponseError as exc:
            if error_code(exc) != "InvalidBlockList":
                raise
            # Another writer's commit (or a delete) discarded the blob's uncommitted
            # blocks, ours too. If the blob changed since this call began, that change
            # came after our write in a valid order: ours was replaced at once, and
            # nobody could have read it. Report success, as if it had won the race
            # and then been overwritten. If nothing changed, stage everything again.
            if await _etag(blob, options) != before:
                return
            if attempt == COMMIT_ATTEMPTS:
                raise


async def _etag(blob: BlobClient, options: dict[str, Any]) -> str | None:
    try:
        properties = await blob.get_blob_properties(**options)
    except ResourceNotFoundError:
        return None
    return str(properties.etag)
