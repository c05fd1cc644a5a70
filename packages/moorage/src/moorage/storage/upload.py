"""Chunked upload, written once for every object-store backend.

A record reaches a storage as a few buffers (header, metadata, the payload as a view of
the caller's bytes). A large one goes up in parts: S3 multipart upload parts, GCS
resumable-upload chunks, Azure blocks. The services differ in how an upload starts and
is committed (and where a write condition goes), which stays in each backend; what they
share lives here:

- `cut` decides the parts: byte ranges of the buffers' concatenation, each at most a
  given size, aligned to a unit where the service needs that (GCS: 256 KiB), small
  pieces packed together where that saves requests (Azure). Pure arithmetic on the
  buffers' lengths, so it is cheap to test and to reason about;
- `Buffers` hands out a range's bytes: views of the caller's buffers where the range
  lies in one of them (no copy), one copy only where it straddles two (or where the
  client library needs a file object);
- `send_parts` uploads the parts through a bounded pool: at most ``concurrency`` parts
  in flight, and so in memory, at once. Each part is one request of the backend's
  client, which bounds it with its timeouts and retries it within its retry limit; one
  part failing for good cancels the others before the error goes on, so the backend
  can abort its upload with nothing left running.
"""

from __future__ import annotations

import asyncio
import bisect
import io
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from moorage.buffers import BytesLike

__all__ = ["Buffers", "byte_views", "cut", "send_parts"]

_T = TypeVar("_T")


def byte_views(parts: Sequence[BytesLike]) -> list[memoryview]:
    """The non-empty parts as flat byte views (``len`` counts bytes), without copying (a
    view that is not contiguous, such as ``view[::2]``, is copied once to bytes)."""
    views = (_flat(memoryview(part)) for part in parts)
    return [view for view in views if view.nbytes]


def _flat(view: memoryview) -> memoryview:
    return view.cast("B") if view.c_contiguous else memoryview(view.tobytes())


def cut(
    lengths: Sequence[int], size: int, *, unit: int = 1, pack: bool = False
) -> list[tuple[int, int]]:
    """``[start, end)`` of each part of buffers of these ``lengths``, laid end to end.

    Every part but the last is a multiple of ``unit`` bytes and at most ``size`` (itself
    a multiple of ``unit``). Within a buffer the parts are slices of it; where the bytes
    run from one buffer into the next, the part across the seam is exactly one ``unit``
    (with ``unit == size``, every part but the last is exactly ``size``). With ``pack``
    (only for ``unit == 1``), consecutive parts shorter than ``size`` (a record's header
    and metadata, a buffer's tail) share one part while they fit, so the few small
    pieces of a record cost one request, not one each.
    """
    if size <= 0 or unit <= 0 or size % unit:
        raise ValueError(f"part size {size} is not a positive multiple of {unit}")
    if pack and unit != 1:
        raise ValueError(f"packing small pieces would break the alignment to {unit} bytes")
    ranges: list[tuple[int, int]] = []
    start = 0  # where the bytes not given to a part yet begin
    offset = 0  # where the current buffer begins
    for length in lengths:
        end = offset + length
        position = offset
        if start < offset:  # less than a unit left over from earlier buffers: top it up
            position = min(end, start + unit)
            if position - start < unit:
                offset = end
                continue
            ranges.append((start, position))
            start = position
        whole = position + (end - position) // unit * unit
        for first in range(position, whole, size):
            ranges.append((first, min(first + size, whole)))
        start = whole
        offset = end
    if start < offset:
        ranges.append((start, offset))
    return _packed(ranges, size) if pack else ranges


def _packed(ranges: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    packed: list[tuple[int, int]] = []
    for start, end in ranges:
        if packed and end - start < size:
            first, last = packed[-1]
            if last - first < size and end - first <= size:
                packed[-1] = (first, end)
                continue
        packed.append((start, end))
    return packed


class Buffers:
    """The concatenation of some buffers, read one byte range at a time, never whole."""

    def __init__(self, buffers: Sequence[BytesLike]) -> None:
        self.views = byte_views(buffers)
        self._starts: list[int] = []
        offset = 0
        for view in self.views:
            self._starts.append(offset)
            offset += view.nbytes
        self.size = offset

    def cut(self, size: int, *, unit: int = 1, pack: bool = False) -> list[tuple[int, int]]:
        """The parts of these buffers; see the module function `cut`."""
        return cut([view.nbytes for view in self.views], size, unit=unit, pack=pack)

    def pieces(self, start: int, end: int) -> list[memoryview]:
        """Views (no copies) of the buffers that make up the bytes ``[start, end)``."""
        if not 0 <= start <= end <= self.size:
            raise ValueError(f"range {start}-{end} outside 0-{self.size}")
        found: list[memoryview] = []
        index = max(bisect.bisect_right(self._starts, start) - 1, 0)
        while start < end:
            view, first = self.views[index], self._starts[index]
            take = min(end, first + view.nbytes)
            found.append(view[start - first : take - first])
            start = take
            index += 1
        return found

    def single(self) -> bytes | None:
        """The caller's one ``bytes`` object, when the buffers are exactly that (it can
        be sent as it is, without a copy); else None."""
        if len(self.views) == 1:
            whole = self.views[0].obj
            if isinstance(whole, bytes) and len(whole) == self.size:
                return whole
        return None

    def data(self, start: int, end: int) -> memoryview:
        """The bytes ``[start, end)``: a view of the caller's buffer where they lie in
        one, else one copy joining the pieces."""
        pieces = self.pieces(start, end)
        if len(pieces) == 1:
            return pieces[0]
        return memoryview(b"".join(pieces))

    def body(self, start: int, end: int) -> io.BytesIO:
        """The bytes ``[start, end)`` as a file object: one copy, made here.

        For clients that take a file better than bytes: botocore would wrap ``bytes``
        in a BytesIO sharing the buffer, and aiohttp would then copy it once more.
        """
        body = io.BytesIO()
        for piece in self.pieces(start, end):
            body.write(piece)
        body.seek(0)
        return body


async def send_parts(
    count: int, send: Callable[[int], Awaitable[_T]], *, concurrency: int
) -> list[_T]:
    """``[await send(0), ..., await send(count - 1)]``, at most ``concurrency`` at once.

    Parts are taken in order by a pool of workers, so with ``concurrency=1`` they go one
    after the other (as a GCS resumable upload needs). ``send`` builds its part's body
    when its turn comes, so no more than ``concurrency`` bodies exist at once. If one
    fails (or the caller is cancelled), the parts still in flight are cancelled and
    waited for before the error goes on: nothing keeps sending behind the caller's back.
    """
    if concurrency < 1:
        raise ValueError(f"send_parts needs a concurrency of at least 1, got {concurrency}")
    results: dict[int, _T] = {}
    todo = iter(range(count))
    failed = False

    async def worker() -> None:
        nonlocal failed
        try:
            for index in todo:  # shared: each part is taken by exactly one worker
                if failed:  # another part failed: start no new one
                    return
                results[index] = await send(index)
        except BaseException:
            failed = True
            raise

    workers = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, count))]
    try:
        await asyncio.gather(*workers)
    finally:
        failed = True  # also when the caller was cancelled
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    return [results[index] for index in range(count)]
