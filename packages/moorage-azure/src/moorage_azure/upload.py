"""Writing one blob from a sequence of buffers in blocks, atomically, without joining them.

A payload up to the block size goes up as one Put Blob request (`AzureStorage._put`). A
larger one is staged as blocks (Put Block, several in flight: moorage's one chunked
upload, `moorage.storage.upload`) that are slices of the caller's buffers, then
committed with one Put Block List: the blob changes from its old bytes to its new bytes
in that single call, so a reader never sees a part. A commit discards every uncommitted
block of the blob, so concurrent block uploads of one key knock each other out; see
`upload_blocks` for how a writer that lost its blocks that way finishes. Only runs of
small pieces (the record's header and metadata, a buffer's tail) are joined into a
block; the payload's full-size blocks go out as memoryviews of the caller's bytes.

A conditional write (``if_absent``: ``If-None-Match: *``; ``if_version``:
``If-Match: <ETag>``) sends its condition with the request that makes the new content
appear: the Put Blob, or the Put Block List, never a Put Block. So the service decides
it at the moment of replacing, and a refused upload leaves only uncommitted blocks,
which no reader sees (the service drops them at the next commit of the blob, or after a
week).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob.aio import BlobClient

from moorage.buffers import BytesLike
from moorage.storage import WriteCondition
from moorage.storage.upload import Buffers, send_parts
from moorage_azure.errors import ConditionFailed, error_code

__all__ = ["COMMIT_ATTEMPTS", "match_conditions", "plan_blocks", "upload_blocks"]

MAX_BLOCKS = 50_000  # the service's limit of blocks in one blob
#: Times the blocks are staged again when another writer's commit discarded them.
COMMIT_ATTEMPTS = 3


def plan_blocks(parts: Sequence[BytesLike], block_size: int) -> list[list[memoryview]]:
    """The blocks to stage, in order, each a list of views that together fill it.

    Full-size slices become blocks of one view (sent without a copy); consecutive
    shorter pieces share a block as long as they fit.
    """
    buffers = Buffers(parts)
    return [buffers.pieces(start, end) for start, end in buffers.cut(block_size, pack=True)]


async def _stage(
    blob: BlobClient,
    buffers: Buffers,
    blocks: list[tuple[int, int]],
    concurrency: int,
    options: dict[str, Any],
) -> list[str]:
    """Stage every block under fresh ids (unique to this attempt); return the ids.

    All ids of one blob must have one length, uncommitted blocks of other writers
    included: 48 characters, as the Azure SDK's own chunked uploads use.
    """
    token = uuid.uuid4().hex
    ids = [f"{token}{index:016d}" for index in range(len(blocks))]

    async def send(index: int) -> None:
        start, end = blocks[index]
        data = buffers.data(start, end)  # a view, or the one copy of a block of pieces
        await blob.stage_block(ids[index], data, length=data.nbytes, **options)  # type: ignore[arg-type]

    await send_parts(len(blocks), send, concurrency=concurrency)
    return ids


def match_conditions(condition: WriteCondition) -> dict[str, Any]:
    """The SDK's keyword arguments for a write's condition (public `azure.core`
    ``MatchConditions``), none for an unconditional write.

    ``IfMissing`` sends ``If-None-Match: *`` and must come without ``etag``: the SDK
    does not consume an ``etag`` given with it, and passes it down to the HTTP session,
    which fails. ``IfNotModified`` sends ``If-Match: <etag>``.
    """
    if condition.if_absent:
        return {"match_condition": MatchConditions.IfMissing}
    if condition.if_version is not None:
        return {"etag": condition.if_version, "match_condition": MatchConditions.IfNotModified}
    return {}


async def upload_blocks(
    blob: BlobClient,
    buffers: Buffers,
    *,
    block_size: int,
    concurrency: int,
    options: dict[str, Any],
    condition: WriteCondition,
    metadata: dict[str, str] | None = None,
) -> None:
    """Replace the blob's content with the buffers' bytes, staged as blocks and committed
    in one Put Block List, which also sets the blob's ``metadata`` (none: the blob has
    none): only where no blob exists with ``if_absent``, only over the
    blob whose ETag is ``if_version`` with that. A failed condition raises the SDK's
    error for it (409 BlobAlreadyExists, 412 ConditionNotMet) or `ConditionFailed`; see
    `moorage_azure.errors.is_conflict`."""
    conditions = match_conditions(condition)
    blocks = buffers.cut(block_size, pack=True)
    if len(blocks) > MAX_BLOCKS:
        raise ValueError(
            f"a payload of {buffers.size} bytes needs {len(blocks)} blocks of {block_size} "
            f"bytes, more than the {MAX_BLOCKS} a blob may have; raise the block_size option"
        )
    # An unconditional write remembers the blob it replaces (see below); a conditional
    # one needs no extra request: its condition says which blob it may replace.
    before = await _etag(blob, options) if not conditions else None
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        ids = await _stage(blob, buffers, blocks, concurrency, options)
        try:
            await blob.commit_block_list(ids, metadata=metadata, **conditions, **options)  # type: ignore[arg-type]
            return
        except HttpResponseError as exc:
            if error_code(exc) != "InvalidBlockList":
                raise
            # Another writer's commit (or a delete) discarded the blob's uncommitted
            # blocks, ours too.
            now = await _etag(blob, options)
            if conditions:
                # The service checks the condition before the block list (Azurite
                # does; checked here in case a service does not): if it fails now,
                # the other writer won and nothing of ours was written.
                if (condition.if_absent and now is not None) or (
                    condition.if_version is not None and now != condition.if_version
                ):
                    raise ConditionFailed(error_code(exc)) from exc
            elif now != before:
                # The blob changed since this call began: that change came after our
                # write in a valid order: ours was replaced at once, and nobody could
                # have read it. Report success, as if it had won the race and then
                # been overwritten.
                return
            # Nothing changed (or the condition still holds): stage everything again.
            if attempt == COMMIT_ATTEMPTS:
                raise


async def _etag(blob: BlobClient, options: dict[str, Any]) -> str | None:
    try:
        properties = await blob.get_blob_properties(**options)
    except ResourceNotFoundError:
        return None
    return str(properties.etag)
