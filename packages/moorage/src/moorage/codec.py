"""Turning stored bytes into records and records into bytes, free of I/O.

The store's sync and async shells both call these functions; every rule about formats,
checksums, signatures and payload lookup lives here once.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal

import orjson

from moorage import prefect_format
from moorage.errors import (
    ClassNotAllowed,
    ConfigurationError,
    RecordCorrupted,
    RecordExpired,
    SerializationError,
)
from moorage.records import (
    HEAD_SIZE,
    HEADER_SIZE,
    MAGIC,
    NativeHead,
    ResultRecord,
    ResultRecordMetadata,
    checksum_of,
    encode_native,
    is_native,
    parse_native_head,
    parts_length,
    verify_payload,
)
from moorage.serializers import Serializer, reading_serializer

__all__ = [
    "Encoded",
    "ParsedMetadata",
    "decode_record",
    "decode_split",
    "encode_record",
    "metadata_from_head",
]

BytesLike = bytes | bytearray | memoryview
RecordFormat = Literal["moorage", "prefect"]


@dataclass(frozen=True, slots=True)
class ParsedMetadata:
    """Metadata read from a record or a metadata file, before the payload is touched."""

    metadata: ResultRecordMetadata
    format: RecordFormat
    head: NativeHead | None = None
    header: BytesLike | None = None  # native: the 12-byte fixed prefix, covered by the MAC
    metadata_bytes: BytesLike | None = None
    #: For combined Prefect records, the payload text already parsed from the JSON.
    prefect_text: bytes | None = None


def _corrupt(key: str, where: str, what: str) -> RecordCorrupted:
    return RecordCorrupted(
        f"record {key!r} in {where} is corrupted: {what}; delete it and write it again"
    )


def _undecodable(key: str, where: str, exc: SerializationError) -> SerializationError:
    """A payload that could not be decoded, naming the record; a refused class stays a
    `ClassNotAllowed`."""
    cls = ClassNotAllowed if isinstance(exc, ClassNotAllowed) else SerializationError
    return cls(f"cannot decode record {key!r} in {where}: {exc}")


def _load_metadata(data: BytesLike, key: str, where: str) -> ResultRecordMetadata:
    try:
        return ResultRecordMetadata.load_bytes(data)
    except RecordCorrupted as exc:
        raise _corrupt(key, where, str(exc)) from exc
    except (ValueError, TypeError) as exc:
        raise _corrupt(key, where, f"invalid metadata ({exc})") from exc


def _native_metadata(data: BytesLike, key: str, where: str) -> ParsedMetadata | int:
    """Parse a native head; an int is the number of bytes needed when ``data`` is short."""
    head = parse_native_head(data, key, where)
    end = head.payload_offset
    if len(data) < end:
        return end
    meta_bytes = memoryview(data)[head.metadata_offset : end]
    return ParsedMetadata(
        _load_metadata(meta_bytes, key, where),
        "moorage",
        head,
        memoryview(data)[:HEADER_SIZE],
        meta_bytes,
    )


def _check_whole_length(parsed: ParsedMetadata, size: int, key: str, where: str) -> None:
    """When the whole object is at hand, its size must match what the head announces."""
    assert parsed.head is not None
    expected = parsed.head.payload_offset
    if not parsed.head.detached:
        expected += parsed.metadata.payload_length or 0
    if size != expected:
        raise _corrupt(key, where, f"{size} bytes where its head announces {expected}")


def _parse_json(data: BytesLike) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def metadata_from_head(
    head: BytesLike, key: str, where: str, complete: bool
) -> ParsedMetadata | int | None:
    """Metadata from the first bytes of a stored object, without its payload.

    Returns the metadata, or the number of bytes needed to see all of it, or None when
    the object is a raw payload (no metadata: it never expires). ``complete`` says that
    ``head`` is the whole object.
    """
    if is_native(head):
        parsed = _native_metadata(head, key, where)
        if complete and isinstance(parsed, ParsedMetadata):
            _check_whole_length(parsed, len(head), key, where)
        return parsed
    if complete and 0 < len(head) < len(MAGIC) and MAGIC.startswith(bytes(head)):
        raise _corrupt(key, where, f"only {len(head)} bytes of a record header")
    if bytes(head[:1]) == b"{":
        parsed = _parse_json(head) if complete else _prefect_head(head)
        if parsed is None and not complete:
            return max(len(head) * 4, HEAD_SIZE * 16)  # metadata longer than the head
        if prefect_format.is_prefect_record(parsed):
            return _prefect_parsed(parsed, key, where, with_text=False)
        if prefect_format.is_prefect_metadata(parsed):
            return ParsedMetadata(_prefect_meta(parsed, key, where), "prefect")
    return None


def _prefect_head(head: BytesLike) -> Any:
    """Parse the metadata object at the start of a combined Prefect record's head."""
    prefix = b'{"metadata":'
    data = bytes(head)
    if not data.startswith(prefix):
        return _parse_json(data)
    import json

    try:
        meta, _ = json.JSONDecoder().raw_decode(data[len(prefix) :].decode("utf-8", "replace"))
    except ValueError:
        return None
    return {"metadata": meta, "result": ""}


def _prefect_meta(meta: dict[str, Any], key: str, where: str) -> ResultRecordMetadata:
    try:
        return ResultRecordMetadata.model_validate({**meta, "moorage_version": None})
    except (ValueError, TypeError) as exc:
        raise _corrupt(key, where, f"invalid Prefect metadata ({exc})") from exc


def _prefect_parsed(
    parsed: dict[str, Any], key: str, where: str, with_text: bool
) -> ParsedMetadata:
    meta = _prefect_meta(parsed["metadata"], key, where)
    text = parsed["result"]
    if with_text and not isinstance(text, str):
        raise _corrupt(key, where, "the Prefect record's 'result' is not a string")
    return ParsedMetadata(meta, "prefect", prefect_text=text.encode("utf-8") if with_text else None)


def parse_metadata_blob(data: BytesLike, key: str, where: str) -> ParsedMetadata:
    """Parse a complete metadata object (from a metadata storage, or a whole record)."""
    if is_native(data):
        parsed = _native_metadata(data, key, where)
        if isinstance(parsed, int):
            raise _corrupt(key, where, f"{len(data)} bytes, the head says {parsed}")
        return parsed
    value = _parse_json(data)
    if prefect_format.is_prefect_record(value):
        return _prefect_parsed(value, key, where, with_text=True)
    if prefect_format.is_prefect_metadata(value):
        return ParsedMetadata(_prefect_meta(value, key, where), "prefect")
    raise _corrupt(key, where, "it is neither a moorage nor a Prefect record")


def decode_payload(
    parsed: ParsedMetadata,
    payload: BytesLike,
    key: str,
    where: str,
    signing_key: bytes | None,
    configured: Serializer | None = None,
) -> ResultRecord[Any]:
    """Verify ``payload`` against ``parsed`` and decode it into a record. ``configured``
    is the reader's serializer: which classes a payload may name comes from it (or from
    settings), never from the record (see `reading_serializer`)."""
    meta = parsed.metadata
    serializer = reading_serializer(meta.serializer, configured)
    if parsed.format == "moorage":
        header_meta = None
        if parsed.header is not None and parsed.metadata_bytes is not None:
            header_meta = (parsed.header, parsed.metadata_bytes)
        verify_payload(meta, payload, parsed.head, header_meta, signing_key, key, where)
        value = _loads(serializer, payload, key, where, prefect=False)
    else:
        if signing_key is not None:
            verify_payload(meta, payload, None, None, signing_key, key, where)
        value = _loads(serializer, payload, key, where, prefect=True)
    return ResultRecord(metadata=meta, result=value)


def _loads(serializer: Serializer, payload: BytesLike, key: str, where: str, prefect: bool) -> Any:
    try:
        if prefect:
            return prefect_format.loads_text(serializer, payload)
        return serializer.loads(payload)
    except SerializationError as exc:
        raise _undecodable(key, where, exc) from exc


def split_record(data: BytesLike, key: str, where: str) -> tuple[ParsedMetadata | None, BytesLike]:
    """Separate a whole stored object into its metadata and payload, decoding neither payload.

    Returns ``(None, data)`` for a raw payload.
    """
    view = memoryview(data)
    if is_native(view):
        parsed = _native_metadata(view, key, where)
        if isinstance(parsed, int):
            raise _corrupt(key, where, f"{len(view)} bytes, the head says {parsed}")
        assert parsed.head is not None
        if parsed.head.detached:
            raise _corrupt(key, where, "it holds only metadata; its payload is stored apart")
        return parsed, view[parsed.head.payload_offset :]
    if bytes(view[:1]) == b"{":
        value = _parse_json(view)
        if prefect_format.is_prefect_record(value):
            parsed = _prefect_parsed(value, key, where, with_text=True)
            assert parsed.prefect_text is not None
            return parsed, parsed.prefect_text
        damage = prefect_format.damaged_record(value)
        if damage is not None:  # never handed back whole as a raw payload's value
            raise _corrupt(key, where, damage)
    return None, view


def expiration_error(key: str, where: str, meta: ResultRecordMetadata) -> RecordExpired:
    return RecordExpired(
        f"record {key!r} in {where} expired at {meta.expiration:%Y-%m-%dT%H:%M:%SZ}; "
        "compute the value again and write it"
    )


def check_fresh(key: str, where: str, meta: ResultRecordMetadata) -> None:
    """Raise `RecordExpired` for a record past its expiration."""
    if meta.is_expired():
        raise expiration_error(key, where, meta)


def decode_stored(
    data: BytesLike,
    key: str,
    where: str,
    backup_serializer: Serializer | None,
    signing_key: bytes | None,
) -> tuple[ResultRecord[Any], int]:
    """Decode a whole object read from result storage, refusing an expired record before
    its payload is decoded: the record and its payload's size."""
    parsed, payload = split_record(data, key, where)
    if parsed is None:
        return decode_raw(payload, key, where, backup_serializer, signing_key), len(payload)
    check_fresh(key, where, parsed.metadata)
    record = decode_payload(parsed, payload, key, where, signing_key, backup_serializer)
    return record, len(payload)


def decode_stream(
    key: str,
    where: str,
    backup_serializer: Serializer | None,
    signing_key: bytes | None,
    source: BinaryIO | bytes,
    size: int,
) -> tuple[ResultRecord[Any], int]:
    """`decode_stored` for an object given as bytes or open as a stream (``size`` bytes;
    see `moorage.storage.Storage.read_stream`).

    A large unsigned native record is decoded as it is read: its serializer's
    `~moorage.serializers.Serializer.load_stream` builds the value from the file, while
    the length and checksum are checked on the bytes going by; a value read from a
    damaged payload is dropped and `RecordCorrupted` raised. Signed records (their
    signature must be checked before decoding), Prefect records and raw payloads are read
    whole.
    """
    if isinstance(source, bytes):
        return decode_stored(source, key, where, backup_serializer, signing_key)
    stream = source
    if signing_key is not None:
        return decode_stored(_read_all(stream, size), key, where, backup_serializer, signing_key)
    head = _read_all(stream, min(size, HEAD_SIZE))
    parsed = metadata_from_head(head, key, where, complete=False)
    if isinstance(parsed, int) and parsed <= size:
        head += _read_all(stream, parsed - len(head))
        parsed = metadata_from_head(head, key, where, complete=False)
    if (
        not isinstance(parsed, ParsedMetadata)
        or parsed.head is None
        or parsed.head.mac  # signed: checked whole, before decoding
        or parsed.head.detached  # metadata only: refused as such by decode_stored
    ):
        rest = _read_all(stream, size - len(head))
        return decode_stored(head + rest, key, where, backup_serializer, signing_key)
    _check_whole_length(parsed, size, key, where)
    meta = parsed.metadata
    check_fresh(key, where, meta)
    offset = parsed.head.payload_offset
    stream.seek(offset)
    reader = _PayloadReader(stream, size - offset)
    try:
        serializer = reading_serializer(meta.serializer, backup_serializer)
        value = serializer.load_stream(reader)  # type: ignore[arg-type]
    except SerializationError as exc:
        reader.verify(meta.checksum, key, where)  # damage explains the failure best
        raise _undecodable(key, where, exc) from exc
    reader.verify(meta.checksum, key, where)
    return ResultRecord(metadata=meta, result=value), size - offset


def _read_all(stream: BinaryIO, n: int) -> bytes:
    data = stream.read(n)
    if len(data) < n:  # short reads: a pipe-like stream, or a file truncated meanwhile
        chunks = [data]
        missing = n - len(data)
        while missing > 0 and (chunk := stream.read(missing)):
            chunks.append(chunk)
            missing -= len(chunk)
        data = b"".join(chunks)
    return data


class _PayloadReader:
    """A read-only view of the payload's bytes in a stream, for a deserializer: it reads
    no further than the payload and keeps the CRC-32 and count of what went by."""

    def __init__(self, stream: BinaryIO, length: int) -> None:
        self._stream = stream
        self._left = length
        self._crc = 0

    def read(self, n: int = -1) -> bytes:
        n = self._left if n is None or n < 0 else min(n, self._left)
        data = _read_all(self._stream, n)
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

    def readline(self, limit: int = -1) -> bytes:
        limit = self._left if limit is None or limit < 0 else min(limit, self._left)
        data = self._stream.readline(limit)
        self._seen(data)
        return data

    def _seen(self, data: BytesLike) -> None:
        self._crc = zlib.crc32(data, self._crc)
        self._left -= len(data) if not isinstance(data, memoryview) else data.nbytes

    def verify(self, checksum: str | None, key: str, where: str) -> None:
        """Read what the deserializer left, then check the whole payload's length and
        checksum; `RecordCorrupted` naming the key if either is wrong."""
        chunk = bytearray(1 << 20)
        while self._left > 0 and self.readinto(chunk):
            pass
        if self._left > 0:
            raise _corrupt(key, where, f"its payload ends {self._left} bytes early")
        if checksum is not None and f"crc32:{self._crc:08x}" != checksum:
            raise _corrupt(
                key,
                where,
                f"it failed its checksum ({checksum} expected); the stored bytes were "
                "altered or damaged",
            )


def decode_record(
    data: BytesLike,
    key: str,
    where: str,
    backup_serializer: Serializer | None,
    signing_key: bytes | None,
) -> ResultRecord[Any]:
    """Decode a whole object from result storage: native, Prefect, or a raw payload."""
    parsed, payload = split_record(data, key, where)
    if parsed is None:
        return decode_raw(payload, key, where, backup_serializer, signing_key)
    return decode_payload(parsed, payload, key, where, signing_key, backup_serializer)


def decode_raw(
    payload: BytesLike,
    key: str,
    where: str,
    serializer: Serializer | None,
    signing_key: bytes | None,
) -> ResultRecord[Any]:
    """A raw payload (no record around it), as Prefect leaves for flow results."""
    if serializer is None:
        raise _corrupt(key, where, "it is not a record and no serializer was given to read it raw")
    meta = ResultRecordMetadata(storage_key=key, serializer=serializer, moorage_version=None)
    if signing_key is not None:
        verify_payload(meta, payload, None, None, signing_key, key, where)
    try:
        value = serializer.loads(payload)
    except ClassNotAllowed as exc:  # read, and refused: not damage
        raise _undecodable(key, where, exc) from exc
    except SerializationError:
        try:
            value = prefect_format.loads_text(serializer, payload)
        except ClassNotAllowed as exc:
            raise _undecodable(key, where, exc) from exc
        except SerializationError as exc:
            raise _corrupt(
                key,
                where,
                f"it is not a record, and the {serializer.type} serializer cannot "
                f"read it as a raw payload ({exc})",
            ) from exc
    return ResultRecord(metadata=meta, result=value)


def decode_split(
    metadata: BytesLike,
    payload: BytesLike,
    key: str,
    where: str,
    signing_key: bytes | None,
    configured: Serializer | None = None,
) -> ResultRecord[Any]:
    parsed = parse_metadata_blob(metadata, key, where)
    return decode_payload(parsed, payload, key, where, signing_key, configured)


@dataclass(frozen=True, slots=True)
class Encoded:
    """What to write: the record (or payload) for result storage, and metadata if split."""

    result_key: str
    result_parts: list[BytesLike]
    metadata_parts: list[BytesLike] | None
    size: int


def encode_record(
    record: ResultRecord[Any],
    key: str,
    record_format: RecordFormat,
    split: bool,
    signing_key: bytes | None,
    result_location: str | None = None,
) -> Encoded:
    """Serialize ``record`` for storage under ``key``.

    ``result_location`` is where result storage resolves ``key``; Prefect records carry
    it as their ``storage_key``, as Prefect itself does.
    """
    meta = record.metadata
    if record_format == "prefect":
        if signing_key is not None:
            raise ConfigurationError(
                f"cannot write record {key!r}: Prefect's record format has no place for a "
                "signature, and a store with a signing_key refuses unsigned records; unset "
                "signing_key or use record_format='moorage'"
            )
        if result_location is not None:
            meta.storage_key = result_location
        if not split:
            blob = prefect_format.encode_combined(meta, record.result)
            return Encoded(key, [blob], None, len(blob))
        text = prefect_format.dumps_text(meta.serializer, record.result)
        meta_blob = orjson.dumps(prefect_format.metadata_dict(meta))
        return Encoded(key, [text], [meta_blob], len(text))
    meta.storage_key = key
    payload = record.serialize_result_parts()
    size = parts_length(payload)
    if not split:
        return Encoded(key, record.to_parts(payload, signing_key), None, size)
    meta.payload_length = size
    meta.checksum = checksum_of(payload)
    meta_parts = encode_native(meta.dump_bytes(), payload, signing_key, detached=True)
    return Encoded(key, payload, meta_parts, size)
