"""Turning stored bytes into records and records into bytes, free of I/O.

The store's sync and async shells both call these functions; every rule about formats,
checksums, signatures and payload lookup lives here once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, BinaryIO, Literal

import orjson

from moorage.errors import (
    ClassNotAllowed,
    ConfigurationError,
    RecordCorrupted,
    RecordExpired,
    SerializationError,
)
from moorage.format import prefect as prefect_format
from moorage.format.integrity import DEFAULT_MAX_PAYLOAD_BYTES, PayloadCheck
from moorage.records.models import (
    HEAD_SIZE,
    HEADER_SIZE,
    MAGIC,
    NativeHead,
    ResultRecord,
    ResultRecordMetadata,
    check_metadata,
    checksum_of,
    encode_native,
    is_native,
    parse_native_head,
    parts_length,
    payload_checksum_algorithm,
    verify_head,
    verify_payload,
)
from moorage.serializers.base import CompressedSerializer, Serializer, reading_serializer

__all__ = [
    "Encoded",
    "ParsedMetadata",
    "Trust",
    "decode_record",
    "decode_split",
    "encode_record",
    "metadata_from_head",
]

BytesLike = bytes | bytearray | memoryview
RecordFormat = Literal["moorage", "prefect"]


#: The most metadata bytes a native head may announce; more is damage, not metadata.
MAX_METADATA_BYTES = 16 << 20


@dataclass(frozen=True, slots=True)
class Trust:
    """What a reader accepts: with ``signing_key``, only records signed with it (Prefect
    records and raw payloads, which cannot be signed, only when
    ``accept_unsigned_prefect`` is set); compressed payloads of unstated size decompress
    to at most ``max_payload_bytes``."""

    signing_key: bytes | None = None
    accept_unsigned_prefect: bool = False
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES

    def allow_unsigned(self, key: str, where: str, what: str) -> None:
        """Refuse a Prefect record or raw payload (``what``) in a signing store, unless the
        user opted in."""
        if self.signing_key is not None and not self.accept_unsigned_prefect:
            raise RecordCorrupted(
                f"record {key!r} in {where} is {what}, which carries no signature, and this "
                "store has a signing_key, so it was refused unread; to read such records "
                "anyway, set accept_unsigned_prefect_records=True on the store (or the "
                "MOORAGE_ACCEPT_UNSIGNED_PREFECT_RECORDS setting)"
            )


def as_trust(value: Trust | bytes | None) -> Trust:
    return value if isinstance(value, Trust) else Trust(signing_key=value)


@dataclass(frozen=True, slots=True)
class ParsedMetadata:
    """Metadata read from a record or a metadata file, before the payload is touched."""

    metadata: ResultRecordMetadata
    format: RecordFormat
    head: NativeHead | None = None
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


def _native_metadata(data: BytesLike, key: str, where: str, trust: Trust) -> ParsedMetadata | int:
    """Parse and verify a native head; an int is the number of bytes needed when ``data``
    is short."""
    head = parse_native_head(data, key, where)
    if head.metadata_length > MAX_METADATA_BYTES:
        raise _corrupt(key, where, f"its head announces {head.metadata_length} metadata bytes")
    end = head.payload_offset
    if len(data) < end:
        return end
    view = memoryview(data)
    meta_bytes = view[head.metadata_offset : end]
    verify_head(head, view[:HEADER_SIZE], meta_bytes, trust.signing_key, key, where)
    meta = _load_metadata(meta_bytes, key, where)
    check_metadata(meta, head.mac is not None, trust.signing_key, key, where)
    return ParsedMetadata(meta, "moorage", head)


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
    head: BytesLike, key: str, where: str, complete: bool, trust: Trust | bytes | None = None
) -> ParsedMetadata | int | None:
    """Metadata from the first bytes of a stored object, without its payload; a native
    head is verified (CRC-32C, and the MAC with a signing key) before it is believed.

    Returns the metadata, or the number of bytes needed to see all of it, or None when
    the object is a raw payload (no metadata: it never expires). ``complete`` says that
    ``head`` is the whole object. `RecordCorrupted` for a head that fails its checks,
    and in a signing store for anything unsigned.
    """
    trust = as_trust(trust)
    if is_native(head):
        parsed = _native_metadata(head, key, where, trust)
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
            trust.allow_unsigned(key, where, "a Prefect record")
            return _prefect_parsed(parsed, key, where, with_text=False)
        if prefect_format.is_prefect_metadata(parsed):
            trust.allow_unsigned(key, where, "a Prefect record")
            return ParsedMetadata(_prefect_meta(parsed, key, where), "prefect")
    trust.allow_unsigned(key, where, "a raw payload (no record around it)")
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


def parse_metadata_blob(
    data: BytesLike, key: str, where: str, trust: Trust | bytes | None = None
) -> ParsedMetadata:
    """Parse and verify a complete metadata object (from a metadata storage, or a whole
    record)."""
    trust = as_trust(trust)
    if is_native(data):
        parsed = _native_metadata(data, key, where, trust)
        if isinstance(parsed, int):
            raise _corrupt(key, where, f"{len(data)} bytes, the head says {parsed}")
        assert parsed.head is not None
        if parsed.head.detached and len(data) != parsed.head.payload_offset:
            end = parsed.head.payload_offset
            raise _corrupt(key, where, f"{len(data)} bytes where its head announces {end}")
        return parsed
    value = _parse_json(data)
    if prefect_format.is_prefect_record(value):
        trust.allow_unsigned(key, where, "a Prefect record")
        return _prefect_parsed(value, key, where, with_text=True)
    if prefect_format.is_prefect_metadata(value):
        trust.allow_unsigned(key, where, "a Prefect record")
        return ParsedMetadata(_prefect_meta(value, key, where), "prefect")
    raise _corrupt(key, where, "it is neither a moorage nor a Prefect record")


def decode_payload(
    parsed: ParsedMetadata,
    payload: BytesLike,
    key: str,
    where: str,
    trust: Trust | bytes | None,
    configured: Serializer | None = None,
) -> ResultRecord[Any]:
    """Verify ``payload`` against ``parsed`` (already verified) and decode it into a
    record. ``configured`` is the reader's serializer: which classes a payload may name
    comes from it (or from settings), never from the record (see `reading_serializer`)."""
    trust = as_trust(trust)
    meta = parsed.metadata
    serializer = reading_serializer(meta.serializer, configured)
    if parsed.format == "moorage":
        verify_payload(meta, payload, key, where)
        signed = _signed(parsed, trust)
        value = _loads(serializer, meta, payload, key, where, trust, signed=signed)
    else:
        trust.allow_unsigned(key, where, "a Prefect record")
        value = _loads(serializer, meta, payload, key, where, trust, prefect=True)
    return ResultRecord(metadata=meta, result=value)


def _signed(parsed: ParsedMetadata, trust: Trust) -> bool:
    """Whether this store checked the record's signature (so its metadata is trusted)."""
    head = parsed.head
    return trust.signing_key is not None and head is not None and head.mac is not None


def _loads(
    serializer: Serializer,
    meta: ResultRecordMetadata,
    payload: BytesLike,
    key: str,
    where: str,
    trust: Trust,
    *,
    signed: bool = False,
    prefect: bool = False,
) -> Any:
    """Decode a verified payload. A compressed payload decompresses incrementally, to at
    most (native records) the length its metadata states or (foreign ones)
    ``max_payload_bytes``."""
    try:
        if prefect:
            return prefect_format.loads_text(serializer, payload, trust.max_payload_bytes)
        if isinstance(serializer, CompressedSerializer):
            limit, why, exact = _decompression_limit(meta, trust, signed)
            return serializer.loads_bounded(payload, limit, why=why, exact=exact)
        return serializer.loads(payload)
    except RecordCorrupted as exc:
        raise _corrupt(key, where, str(exc)) from exc
    except SerializationError as exc:
        raise _undecodable(key, where, exc) from exc


def _decompression_limit(
    meta: ResultRecordMetadata, trust: Trust, signed: bool
) -> tuple[int, str, bool]:
    """How far a native compressed payload may decompress: exactly the length its
    metadata states, which an unsigned record may not set past ``max_payload_bytes``."""
    stated = meta.uncompressed_length
    if stated is None:  # check_metadata refuses this for native records
        return trust.max_payload_bytes, "the max_payload_bytes setting", False
    if stated > trust.max_payload_bytes and not signed:
        raise RecordCorrupted(
            f"its metadata states an uncompressed length of {stated} bytes, more than "
            f"max_payload_bytes ({trust.max_payload_bytes}) allows an unsigned record; if "
            "it is genuine, raise the max_payload_bytes setting to read it"
        )
    return stated, "the uncompressed length its metadata states", True


def split_record(
    data: BytesLike, key: str, where: str, trust: Trust | bytes | None = None
) -> tuple[ParsedMetadata | None, BytesLike]:
    """Separate a whole stored object into its (verified) metadata and payload, decoding
    neither payload.

    Returns ``(None, data)`` for a raw payload.
    """
    trust = as_trust(trust)
    view = memoryview(data)
    if is_native(view):
        parsed = _native_metadata(view, key, where, trust)
        if isinstance(parsed, int):
            raise _corrupt(key, where, f"{len(view)} bytes, the head says {parsed}")
        assert parsed.head is not None
        if parsed.head.detached:
            raise _corrupt(key, where, "it holds only metadata; its payload is stored apart")
        return parsed, view[parsed.head.payload_offset :]
    if bytes(view[:1]) == b"{":
        value = _parse_json(view)
        if prefect_format.is_prefect_record(value):
            trust.allow_unsigned(key, where, "a Prefect record")
            parsed = _prefect_parsed(value, key, where, with_text=True)
            assert parsed.prefect_text is not None
            return parsed, parsed.prefect_text
        damage = prefect_format.damaged_record(value)
        if damage is not None:  # never handed back whole as a raw payload's value
            raise _corrupt(key, where, damage)
    trust.allow_unsigned(key, where, "a raw payload (no record around it)")
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
    trust: Trust | bytes | None,
) -> tuple[ResultRecord[Any], int]:
    """Decode a whole object read from result storage, refusing an expired record before
    its payload is decoded: the record and its payload's size."""
    trust = as_trust(trust)
    parsed, payload = split_record(data, key, where, trust)
    if parsed is None:
        return decode_raw(payload, key, where, backup_serializer, trust), len(payload)
    check_fresh(key, where, parsed.metadata)
    record = decode_payload(parsed, payload, key, where, trust, backup_serializer)
    return record, len(payload)


def decode_stream(
    key: str,
    where: str,
    backup_serializer: Serializer | None,
    trust: Trust | bytes | None,
    source: BinaryIO | bytes,
    size: int,
) -> tuple[ResultRecord[Any], int]:
    """`decode_stored` for an object given as bytes or open as a stream (``size`` bytes;
    see `moorage.storage.base.Storage.read_stream`).

    A large unsigned native record is decoded as it is read: its serializer's
    `~moorage.serializers.base.Serializer.load_stream` builds the value from the file, while
    the length and checksum are checked on the bytes going by; a value read from a
    damaged payload is dropped and `RecordCorrupted` raised. In a signing store (the
    payload's digest must be checked before decoding), compressed payloads (checked before
    they are decompressed), Prefect records and raw payloads are read whole.
    """
    trust = as_trust(trust)
    if isinstance(source, bytes):
        return decode_stored(source, key, where, backup_serializer, trust)
    stream = source
    if trust.signing_key is not None:
        return decode_stored(_read_all(stream, size), key, where, backup_serializer, trust)
    head = _read_all(stream, min(size, HEAD_SIZE))
    parsed = metadata_from_head(head, key, where, False, trust)
    if isinstance(parsed, int) and parsed <= size:
        head += _read_all(stream, parsed - len(head))
        parsed = metadata_from_head(head, key, where, False, trust)
    if (
        not isinstance(parsed, ParsedMetadata)
        or parsed.head is None
        or parsed.head.detached  # metadata only: refused as such by decode_stored
        or isinstance(parsed.metadata.serializer, CompressedSerializer)
    ):
        rest = _read_all(stream, size - len(head))
        return decode_stored(head + rest, key, where, backup_serializer, trust)
    _check_whole_length(parsed, size, key, where)
    meta = parsed.metadata
    check_fresh(key, where, meta)
    offset = parsed.head.payload_offset
    stream.seek(offset)
    reader = _PayloadReader(stream, size - offset, meta.checksum or "")
    try:
        serializer = reading_serializer(meta.serializer, backup_serializer)
        value = serializer.load_stream(reader)  # type: ignore[arg-type]
    except SerializationError as exc:
        reader.verify(key, where)  # damage explains the failure best
        raise _undecodable(key, where, exc) from exc
    reader.verify(key, where)
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
    no further than the payload and checks what went by against its checksum."""

    def __init__(self, stream: BinaryIO, length: int, checksum: str) -> None:
        self._stream = stream
        self._left = length
        self._check = PayloadCheck(checksum)  # check_metadata made sure it is well-formed

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
        self._check.update(data)
        self._left -= len(data) if not isinstance(data, memoryview) else data.nbytes

    def verify(self, key: str, where: str) -> None:
        """Read what the deserializer left, then check the whole payload's length and
        checksum; `RecordCorrupted` naming the key if either is wrong."""
        chunk = bytearray(1 << 20)
        while self._left > 0 and self.readinto(chunk):
            pass
        if self._left > 0:
            raise _corrupt(key, where, f"its payload ends {self._left} bytes early")
        if not self._check.matches():
            raise _corrupt(
                key,
                where,
                "it failed its payload checksum; the stored bytes were altered or damaged",
            )


def decode_record(
    data: BytesLike,
    key: str,
    where: str,
    backup_serializer: Serializer | None,
    trust: Trust | bytes | None,
) -> ResultRecord[Any]:
    """Decode a whole object from result storage: native, Prefect, or a raw payload."""
    trust = as_trust(trust)
    parsed, payload = split_record(data, key, where, trust)
    if parsed is None:
        return decode_raw(payload, key, where, backup_serializer, trust)
    return decode_payload(parsed, payload, key, where, trust, backup_serializer)


def decode_raw(
    payload: BytesLike,
    key: str,
    where: str,
    serializer: Serializer | None,
    trust: Trust | bytes | None,
) -> ResultRecord[Any]:
    """A raw payload (no record around it), as Prefect leaves for flow results."""
    trust = as_trust(trust)
    trust.allow_unsigned(key, where, "a raw payload (no record around it)")
    if serializer is None:
        raise _corrupt(key, where, "it is not a record and no serializer was given to read it raw")
    meta = ResultRecordMetadata(storage_key=key, serializer=serializer, moorage_version=None)
    try:
        if isinstance(serializer, CompressedSerializer):
            why = "the max_payload_bytes setting"
            value = serializer.loads_bounded(payload, trust.max_payload_bytes, why=why)
        else:
            value = serializer.loads(payload)
    except ClassNotAllowed as exc:  # read, and refused: not damage
        raise _undecodable(key, where, exc) from exc
    except SerializationError:
        try:
            value = prefect_format.loads_text(serializer, payload, trust.max_payload_bytes)
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
    trust: Trust | bytes | None,
    configured: Serializer | None = None,
) -> ResultRecord[Any]:
    parsed = parse_metadata_blob(metadata, key, where, trust)
    return decode_payload(parsed, payload, key, where, trust, configured)


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
    meta.checksum = checksum_of(payload, payload_checksum_algorithm(signing_key))
    meta_parts = encode_native(meta.dump_bytes(), payload, signing_key, detached=True)
    return Encoded(key, payload, meta_parts, size)
