"""Writing one object from a sequence of buffers.

GCS makes an object visible only when its upload is complete, so both ways below are
atomic: a reader sees the old object or the new one, never a part.

- Up to ``chunk_size`` bytes: one request, ``uploadType=media``, the bytes as the body.
  Not gcsfs's ``simple_upload``: that one wraps the payload in a multipart body with a
  fixed boundary (``==0==``) and a payload containing that boundary line comes back cut
  short. A single buffer is sent as it is; several are joined (at most ``chunk_size``).
  A write with custom metadata (the record's expiry stamp) cannot go as ``media``, whose
  request has no room for it: it is one ``uploadType=multipart`` request, the object
  resource and the bytes in one body, with a random boundary that the payload does not
  contain (the payload is copied into that body once).
- Larger payloads: a resumable upload session, then one request per ``chunk_size``
  bytes or less, one after the other, each a view of the caller's buffers: moorage's
  one chunked upload (`moorage.storage.upload`) with the 256 KiB unit GCS requires.
  Only the 256 KiB around a seam between two buffers is copied, so the extra memory a
  write needs does not grow with the payload. If a chunk fails for good, the session
  is cancelled (best effort; an abandoned session never becomes an object and expires
  on its own).

Custom ``metadata`` (a mapping of names to texts; moorage keeps the record's expiry
stamp there, see `moorage.storage.entries.EXPIRY_METADATA_KEY`) goes in the object
resource the upload creates: in the multipart body of a one-request upload, in the JSON
that opens a resumable session. Either way the object appears with its metadata, in the
same request, and objects.list hands it back in each item's ``metadata``.

A conditional write sends ``ifGenerationMatch`` with the upload: ``0`` (create only where
no live object is) or the generation read before (replace only that object). GCS decides
it when it creates the object: in the one request of a small upload, in the request that
completes a resumable one. A failed condition is its HTTP 412, which gcsfs raises as
`FileExistsError` and never retries; `GCSStorage.is_conflict` recognises it.

Every request goes through the filesystem's ``_call``, the coroutine behind gcsfs's
public ``call`` (its request method, with the retries and per-attempt bounds of
`moorage_gcs.filesystem`), to the JSON API's documented upload endpoints; gcsfs's
module-level upload helpers (``simple_upload``, ``initiate_upload``, ``upload_chunk``)
are not used: they are not part of its documented interface and can send only
``ifGenerationMatch=0``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING
from urllib.parse import quote

from moorage.storage.upload import Buffers, send_parts
from moorage_gcs.options import UPLOAD_UNIT

if TYPE_CHECKING:
    from moorage_gcs.filesystem import PlainGCSFileSystem

__all__ = ["ABSENT", "CONTENT_TYPE", "PreconditionFailed", "chunks", "write_object"]

CONTENT_TYPE = "application/octet-stream"
#: ``ifGenerationMatch`` for "no live object": create only.
ABSENT = "0"


class PreconditionFailed(Exception):
    """The write's ``ifGenerationMatch`` cannot hold: nothing was written.

    ``generation`` is the value given, `ABSENT` for a create-only write. The storage turns
    this into `moorage.errors.WriteConflict`.
    """

    def __init__(self, name: str, generation: str) -> None:
        super().__init__(f"ifGenerationMatch={generation} did not hold for {name!r}")
        self.name = name
        self.generation = generation


def chunks(views: Sequence[memoryview], size: int) -> Iterator[memoryview]:
    """The concatenation of ``views`` in pieces GCS accepts as resumable-upload chunks.

    Every piece but the last is a multiple of `UPLOAD_UNIT` (256 KiB) and at most
    ``size`` bytes (itself a multiple of it). Pieces are slices of the views; where the
    data crosses from one view to the next, the bytes around the seam are joined into a
    piece of exactly one unit, so no more than 256 KiB is ever copied at a time.
    """
    buffers = Buffers(views)
    for start, end in buffers.cut(size, unit=UPLOAD_UNIT):
        yield buffers.data(start, end)


def _uploads(fs: PlainGCSFileSystem, bucket: str) -> str:
    """The JSON API's upload URL for objects of ``bucket``."""
    base = str(fs.base)  # gcsfs's public ".../storage/v1/" for this endpoint
    return f"{base.removesuffix('storage/v1/')}upload/storage/v1/b/{quote(bucket, safe='')}/o"


async def write_object(
    fs: PlainGCSFileSystem,
    bucket: str,
    name: str,
    buffers: Buffers,
    chunk_size: int,
    generation: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Store the buffers' bytes as ``gs://bucket/name``, with the custom ``metadata`` if
    any; with ``generation``, only if the live object's generation is that (`ABSENT`:
    only if there is none), else gcsfs raises `FileExistsError` (HTTP 412)."""
    size = buffers.size
    resource = _resource(name, metadata)
    if size == 0:
        await _empty(fs, bucket, name, generation, resource)
    elif size > chunk_size:
        await _resumable(fs, bucket, name, buffers, chunk_size, generation, resource)
    elif metadata:
        await _multipart(fs, bucket, name, buffers, generation, resource)
    else:
        # gcsfs drops parameters whose value is None: unconditional is no parameter.
        await fs._call(
            "POST",
            _uploads(fs, bucket),
            uploadType="media",
            name=name,
            ifGenerationMatch=generation,
            headers={"Content-Type": CONTENT_TYPE},
            data=buffers.data(0, size),
        )


def _resource(name: str, metadata: Mapping[str, str] | None) -> dict[str, object]:
    """The object resource an upload sends: its name, and its custom metadata if any."""
    resource: dict[str, object] = {"name": name}
    if metadata:
        resource["metadata"] = dict(metadata)
    return resource


async def _multipart(
    fs: PlainGCSFileSystem,
    bucket: str,
    name: str,
    buffers: Buffers,
    generation: str | None,
    resource: dict[str, object],
) -> None:
    """The object resource and the bytes in one ``multipart/related`` request. The
    boundary is random and checked against the payload, so no payload can end its part
    early (the fault of a fixed boundary, see above)."""
    data = buffers.data(0, buffers.size)
    while True:
        boundary = f"moorage-{secrets.token_hex(16)}"
        head = (
            f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
            f"{json.dumps(resource)}\r\n--{boundary}\r\nContent-Type: {CONTENT_TYPE}\r\n\r\n"
        ).encode()
        body = b"".join((head, data, f"\r\n--{boundary}--\r\n".encode()))
        if body.find(boundary.encode(), len(head), len(head) + data.nbytes) < 0:
            break  # (a random 128-bit boundary in the payload: practically never)
    await fs._call(
        "POST",
        _uploads(fs, bucket),
        uploadType="multipart",
        name=name,
        ifGenerationMatch=generation,
        headers={"Content-Type": f'multipart/related; boundary="{boundary}"'},
        data=body,
    )


async def _empty(
    fs: PlainGCSFileSystem,
    bucket: str,
    name: str,
    generation: str | None,
    resource: dict[str, object],
) -> None:
    """An empty object, as a multipart upload: nothing can collide with the multipart
    boundary, and the media route of some emulators cannot take an empty body. The name
    is also a query parameter, as objects.insert takes it."""
    meta = json.dumps(resource)
    body = (
        f"--==0==\nContent-Type: application/json; charset=UTF-8\n\n{meta}\n"
        f"--==0==\nContent-Type: {CONTENT_TYPE}\n\n\n--==0==--"
    ).encode()
    await fs._call(
        "POST",
        _uploads(fs, bucket),
        uploadType="multipart",
        name=name,
        ifGenerationMatch=generation,
        headers={"Content-Type": 'multipart/related; boundary="==0=="'},
        data=body,
    )


async def _initiate(
    fs: PlainGCSFileSystem,
    bucket: str,
    name: str,
    generation: str | None,
    resource: dict[str, object],
) -> str:
    """Open a resumable upload session for the object ``resource`` (name, metadata);
    its URI carries the condition, which GCS checks when the last chunk completes the
    object, and the object appears then with that resource's metadata."""
    headers, _ = await fs._call(
        "POST",
        _uploads(fs, bucket),
        uploadType="resumable",
        name=name,
        ifGenerationMatch=generation,
        json=resource,
        headers={"X-Upload-Content-Type": CONTENT_TYPE},
    )
    location = headers["Location"]
    return str(location[0] if isinstance(location, list) else location)


async def _send_chunk(
    fs: PlainGCSFileSystem, session: str, data: memoryview, offset: int, size: int
) -> None:
    """Send ``data`` as the bytes at ``offset`` of the ``size``-byte object; should the
    server keep fewer than were sent (its ``Range`` answer says up to where), send the
    rest again."""
    while data.nbytes:
        last = offset + data.nbytes - 1
        headers, _ = await fs._call(
            "POST",
            session,
            headers={
                "Content-Range": f"bytes {offset}-{last}/{size}",
                "Content-Type": CONTENT_TYPE,
                "Content-Length": str(data.nbytes),
            },
            data=data,
        )
        kept = headers.get("Range")  # "bytes=0-N" on 308: the bytes stored so far
        if not kept:
            return
        end = int(str(kept).rpartition("-")[2])
        if end >= last:
            return
        data, offset = data[end + 1 - offset :], end + 1


async def _resumable(
    fs: PlainGCSFileSystem,
    bucket: str,
    name: str,
    buffers: Buffers,
    chunk_size: int,
    generation: str | None,
    resource: dict[str, object],
) -> None:
    session = await _initiate(fs, bucket, name, generation, resource)
    ranges = buffers.cut(chunk_size, unit=UPLOAD_UNIT)

    async def send(index: int) -> None:
        start, end = ranges[index]
        await _send_chunk(fs, session, buffers.data(start, end), start, buffers.size)

    try:
        # One after the other: a resumable session takes its bytes in order.
        await send_parts(len(ranges), send, concurrency=1)
    except Exception:
        try:
            await fs._request_once("DELETE", session)
        except Exception:
            pass  # the session expires unused; the original error is what matters
        raise
