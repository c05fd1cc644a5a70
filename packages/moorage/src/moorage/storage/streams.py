"""Reading records from open files: the I/O half of a streamed read.

`Storage.read_stream` hands its consumer an open file and the object's size. The
consumer the store gives it is `read_record`, bound to a pure decoder (see
`moorage.format.streaming.StreamDecoder`, which this module does not import: it only
needs the `RecordStreamDecoder` protocol). Reading stays here; the decoder decides what
to read and checks what was read. Memory stays bounded: a streamed payload is handed to
its deserializer through `CheckedReader` and never held whole.
"""

from __future__ import annotations

from typing import Any, BinaryIO, Protocol, TypeVar

from moorage.buffers import BytesLike
from moorage.errors import SerializationError

__all__ = ["CheckedReader", "RecordStreamDecoder", "StreamedPayload", "read_exactly", "read_record"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
P = TypeVar("P", bound="StreamedPayload")

#: How much `CheckedReader.drain` reads at a time.
_DRAIN_CHUNK = 1 << 20


class PayloadCheck(Protocol):
    """An incremental check, fed the payload's bytes in order."""

    def update(self, data: BytesLike, /) -> None: ...  # pragma: no cover


class PayloadLoader(Protocol):
    """What builds a value from a file holding exactly a payload (a serializer)."""

    def load_stream(self, stream: BinaryIO, /) -> Any: ...  # pragma: no cover


class StreamedPayload(Protocol):
    """A payload to decode as it is read: where it is, and what reads and checks it."""

    @property
    def offset(self) -> int: ...  # pragma: no cover

    @property
    def length(self) -> int: ...  # pragma: no cover

    @property
    def serializer(self) -> PayloadLoader: ...  # pragma: no cover

    @property
    def check(self) -> PayloadCheck: ...  # pragma: no cover


class RecordStreamDecoder(Protocol[P, T_co]):
    """The pure decisions of a streamed read (`moorage.format.streaming.StreamDecoder`)."""

    def first_read(self, size: int) -> int: ...  # pragma: no cover

    def plan(self, head: BytesLike, size: int) -> P | int | None: ...  # pragma: no cover

    def whole(self, data: BytesLike) -> T_co: ...  # pragma: no cover

    def verify(self, payload: P) -> None: ...  # pragma: no cover

    def decoded(self, payload: P, value: Any) -> T_co: ...  # pragma: no cover

    def undecodable(self, exc: SerializationError) -> SerializationError: ...  # pragma: no cover


def read_exactly(stream: BinaryIO, n: int) -> bytes:
    """``n`` bytes from ``stream``, or fewer only at its end (short reads are retried: a
    pipe-like stream, or a file truncated meanwhile)."""
    data = stream.read(n)
    if len(data) < n:
        chunks = [data]
        missing = n - len(data)
        while missing > 0 and (chunk := stream.read(missing)):
            chunks.append(chunk)
            missing -= len(chunk)
        data = b"".join(chunks)
    return data


def read_record(decoder: RecordStreamDecoder[P, T], source: BinaryIO | bytes, size: int) -> T:
    """Read the object ``source`` (``size`` bytes, or its bytes already) as ``decoder``
    decides, and return what it decodes."""
    if isinstance(source, bytes):
        return decoder.whole(source)
    head = read_exactly(source, decoder.first_read(size))
    plan = decoder.plan(head, size)
    if isinstance(plan, int):  # the metadata runs past the first read
        head += read_exactly(source, plan - len(head))
        plan = decoder.plan(head, size)
    if plan is None or isinstance(plan, int):
        return decoder.whole(head + read_exactly(source, size - len(head)))
    source.seek(plan.offset)
    reader = CheckedReader(source, plan.length, plan.check)
    try:
        value = plan.serializer.load_stream(reader)  # type: ignore[arg-type]
    except SerializationError as exc:
        reader.drain()
        decoder.verify(plan)  # damage explains the failure best
        raise decoder.undecodable(exc) from exc
    reader.drain()
    decoder.verify(plan)
    return decoder.decoded(plan, value)


class CheckedReader:
    """A read-only view of ``length`` bytes of a stream, for a deserializer: it reads no
    further, and feeds what goes by to ``check``."""

    def __init__(self, stream: BinaryIO, length: int, check: PayloadCheck) -> None:
        self._stream = stream
        self._left = length
        self._check = check

    def read(self, n: int | None = -1) -> bytes:
        n = self._left if n is None or n < 0 else min(n, self._left)
        data = read_exactly(self._stream, n)
        self._seen(data)
        return data

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")[: self._left]
        filled = 0
        while filled < view.nbytes:
            got = self._stream.readinto(view[filled:])  # type: ignore[attr-defined]
            if not got:
                break
            filled += got
        self._seen(view[:filled])
        return filled

    def readline(self, limit: int | None = -1) -> bytes:
        limit = self._left if limit is None or limit < 0 else min(limit, self._left)
        data = self._stream.readline(limit)
        self._seen(data)
        return data

    def _seen(self, data: BytesLike) -> None:
        self._check.update(data)
        self._left -= len(data) if not isinstance(data, memoryview) else data.nbytes

    def drain(self) -> None:
        """Read (and check) what the deserializer left of the payload; the check then
        tells whether the payload ended early."""
        if self._left <= 0:
            return
        chunk = bytearray(_DRAIN_CHUNK)
        while self._left > 0 and self.readinto(chunk):
            pass
