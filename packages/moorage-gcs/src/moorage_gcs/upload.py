"""Writing one object from a sequence of buffers.

GCS makes an object visible only when its upload is complete, so both ways below are
atomic: a reader sees the old object or the new one, never a part.

- Up to ``chunk_size`` bytes: one request, ``uploadType=media``, the bytes as the body.
  Not gcsfs's ``simple_upload``: that one wraps the payload in a multipart body with a
  fixed boundary (``==0==``) and a payload containing that boundary line comes back cut
  short. A single buffer is sent as it is; several are joined (at most ``chunk_size``).
- Larger payloads: a resumable upload session, then one request per ``chunk_size``
  bytes or less, each a view of the caller's buffers. Only the 256 KiB around a seam
  between two buffers is copied, so the extra memory a write needs does not grow with
  the payload. If a chunk fails for good, the session is cancelled (best effort; an
  abandoned session never becomes an object and expires on its own).

A conditional write sends ``ifGenerationMatch`` with the upload: ``0`` (create only where
no live object is) or the generation read before (replace only that object). GCS decides
it when it creates the object: in the one request of a small upload, in the request that
completes a resumable one. A failed condition is its HTTP 412, which gcsfs raises as
`FileExistsError` and never retries; it leaves here as `PreconditionFailed`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from gcsfs.core import initiate_upload, quote, simple_upload, upload_chunk

from moorage.storage.base import BytesLike
from moorage_gcs.options import UPLOAD_UNIT

if TYPE_CHECKING:
    from moorage_gcs.filesystem import PlainGCSFileSystem

__all__ = [
    "ABSENT",
    "CONTENT_TYPE",
    "PreconditionFailed",
    "byte_views",
    "chunks",
    "write_object",
]

CONTENT_TYPE = "application/octet-stream"
#: ``ifGenerationMatch`` for "no live object": create only.
ABSENT = "0"


class PreconditionFailed(Exception):
    """The upload's ``ifGenerationMatch`` did not hold (HTTP 412): nothing was written.

    ``generation`` is the value sent, `ABSENT` for a create-only write. The storage turns
    this into `moorage.errors.WriteConflict`.
    """

    def __init__(self, name: str, generation: str) -> None:
        super().__init__(f"ifGenerationMatch={generation} did not hold for {name!r}")
        self.name = name
        self.generation = generation


def byte_views(parts: Sequence[BytesLike]) -> list[memoryview]:
    """The non-empty parts as flat byte views (``len`` counts bytes), without copying."""
    views = (memoryview(part).cast("B") for part in parts)
    return [view for view in views if view.nbytes]


def chunks(views: Sequence[memoryview], size: int) -> Iterator[memoryview]:
    """The concatenation of ``views`` in pieces GCS accepts as resumable-upload chunks.

    Every piece but the last is a multiple of `UPLOAD_UNIT` (256 KiB) and at most
    ``size`` bytes (itself a multiple of it). Pieces are slices of the views; where the
    data crosses from one view to the next, the bytes around the seam are joined into a
    piece of exactly one unit, so no more than 256 KiB is ever copied at a time.
    """
    pending: list[memoryview] = []
    filled = 0  # bytes in pending, always less than one unit
    for view in views:
        start = 0
        if pending:
            start = min(view.nbytes, UPLOAD_UNIT - filled)
            pending.append(view[:start])
            filled += start
            if filled < UPLOAD_UNIT:
                continue  # this view is used up and the unit is not full yet
            yield memoryview(b"".join(pending))
            pending, filled = [], 0
        whole = (view.nbytes - start) // UPLOAD_UNIT * UPLOAD_UNIT
        for offset in range(start, start + whole, size):
            yield view[offset : min(offset + size, start + whole)]
        if start + whole < view.nbytes:
            pending.append(view[start + whole :])
            filled = view.nbytes - start - whole
    if pending:
        yield pending[0] if len(pending) == 1 else memoryview(b"".join(pending))


async def write_object(
    fs: PlainGCSFileSystem,
    bucket: str,
    name: str,
    views: Sequence[memoryview],
    chunk_size: int,
    generation: str | None = None,
) -> None:
    """Store the concatenation of ``views`` as ``gs://bucket/name``; with ``generation``,
    only if the live object's generation is that (`ABSENT`: only if there is none), else
    raise `PreconditionFailed`."""
    size = sum(view.nbytes for view in views)
    try:
        if size == 0:
            await _empty(fs, bucket, name, generation)
        elif size <= chunk_size:
            body = views[0] if len(views) == 1 else memoryview(b"".join(views))
            # gcsfs drops parameters whose value is None: unconditional is no parameter.
            await fs._call(
                "POST",
                f"{fs._location}/upload/storage/v1/b/{quote(bucket)}/o",
                uploadType="media",
                name=name,
                ifGenerationMatch=generation,
                headers={"Content-Type": CONTENT_TYPE},
                data=body,
            )
        else:
            await _resumable(fs, bucket, name, views, size, chunk_size, generation)
    except FileExistsError as exc:
        # gcsfs's rendering of HTTP 412 (gcsfs.retry.validate_response), raised outside
        # its retry loop. Only a conditional upload can get one.
        if generation is None:
            raise
        raise PreconditionFailed(name, generation) from exc


async def _empty(fs: PlainGCSFileSystem, bucket: str, name: str, generation: str | None) -> None:
    """An empty object, as a multipart upload: nothing can collide with the multipart
    boundary, and the media route of some emulators cannot take an empty body."""
    if generation is None or generation == ABSENT:
        mode = "overwrite" if generation is None else "create"  # create: ifGenerationMatch=0
        await simple_upload(fs, bucket, name, b"", content_type=CONTENT_TYPE, mode=mode)
        return
    # gcsfs's simple_upload can only send ifGenerationMatch=0 (mode="create"): the same
    # request with the generation, through fs._call (gcsfs's request method with its
    # retries and error mapping; the public `call` is its sync wrapper, which cannot run
    # on the I/O loop). The name is also a query parameter, as objects.insert takes it.
    meta = json.dumps({"name": name})
    body = (
        f"--==0==\nContent-Type: application/json; charset=UTF-8\n\n{meta}\n"
        f"--==0==\nContent-Type: {CONTENT_TYPE}\n\n\n--==0==--"
    ).encode()
    await fs._call(
        "POST",
        f"{fs._location}/upload/storage/v1/b/{quote(bucket)}/o",
        uploadType="multipart",
        name=name,
        ifGenerationMatch=generation,
        headers={"Content-Type": 'multipart/related; boundary="==0=="'},
        data=body,
    )


async def _initiate(fs: PlainGCSFileSystem, bucket: str, name: str, generation: str | None) -> str:
    """Open a resumable upload session; its URI carries the condition, which GCS checks
    when the last chunk completes the object."""
    if generation is None or generation == ABSENT:
        mode = "overwrite" if generation is None else "create"  # create: ifGenerationMatch=0
        session: str = await initiate_upload(fs, bucket, name, CONTENT_TYPE, mode=mode)
        return session
    # gcsfs's initiate_upload can only send ifGenerationMatch=0 (mode="create"): the same
    # request with the generation, through fs._call as above.
    headers, _ = await fs._call(
        "POST",
        f"{fs._location}/upload/storage/v1/b/{quote(bucket)}/o",
        uploadType="resumable",
        name=name,
        ifGenerationMatch=generation,
        json={"name": name},
        headers={"X-Upload-Content-Type": CONTENT_TYPE},
    )
    location = headers["Location"]
    return str(location[0] if isinstance(location, list) else location)


async def _resumable(
    fs: PlainGCSFileSystem,
    bucket: str,
    name: str,
    views: Sequence[memoryview],
    size: int,
    chunk_size: int,
    generation: str | None,
) -> None:
    session = await _initiate(fs, bucket, name, generation)
    offset = 0
    try:
        for chunk in chunks(views, chunk_size):
            await upload_chunk(fs, session, chunk, offset, size, CONTENT_TYPE)
            offset += chunk.nbytes
    except Exception:
        try:
            await fs._request_once("DELETE", session)
        except Exception:
            pass  # the session expires unused; the original error is what matters
        raise
