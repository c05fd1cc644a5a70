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
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from gcsfs.core import initiate_upload, quote, simple_upload, upload_chunk

from moorage.storage import BytesLike
from moorage_gcs.options import UPLOAD_UNIT

if TYPE_CHECKING:
    from moorage_gcs.filesystem import PlainGCSFileSystem

__all__ = ["CONTENT_TYPE", "byte_views", "chunks", "write_object"]

CONTENT_TYPE = "application/octet-stream"


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
    fs: PlainGCSFileSystem, bucket: str, name: str, views: Sequence[memoryview], chunk_size: int
) -> None:
    """Store the concatenation of ``views`` as ``gs://bucket/name``."""
    size = sum(view.nbytes for view in views)
    if size == 0:
        # Nothing can collide with the multipart boundary; and the media route of some
        # emulators cannot take an empty body.
        await simple_upload(fs, bucket, name, b"", content_type=CONTENT_TYPE)
    elif size <= chunk_size:
        body = views[0] if len(views) == 1 else memoryview(b"".join(views))
        await fs._call(
            "POST",
            f"{fs._location}/upload/storage/v1/b/{quote(bucket)}/o",
            uploadType="media",
            name=name,
            headers={"Content-Type": CONTENT_TYPE},
            data=body,
        )
    else:
        await _resumable(fs, bucket, name, views, size, chunk_size)


async def _resumable(
    fs: PlainGCSFileSystem,
    bucket: str,
    name: str,
    views: Sequence[memoryview],
    size: int,
    chunk_size: int,
) -> None:
    session = await initiate_upload(fs, bucket, name, CONTENT_TYPE)
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
