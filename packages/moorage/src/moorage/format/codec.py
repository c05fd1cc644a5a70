"""The dispatcher: stored bytes to records and back, native, Prefect or raw. Free of I/O.

The store's sync and async shells both call these functions with the bytes they read
(or hand over the buffers to write); every rule about which format an object is in, and
which checks it must pass, lives here once. `StreamDecoder` is the same for a record read
from an open file: it decides, `moorage.storage.streams` reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson

from moorage.buffers import BytesLike
from moorage.errors import ConfigurationError, RecordCorrupted
from moorage.format import prefect as prefect_format
from moorage.format.native import (
    HEAD_SIZE,
    HEADER_SIZE,
    MAGIC,
    MAX_METADATA_BYTES,
    HeadLastRecord,
    check_metadata,
    encode_native,
    is_native,
    native_metadata,
    native_metadata_head_last,
    parse_native_head,
    parts_length,
    serialize_value,
    verify_head,
)
from moorage.format.payloads import (
    Decoded,
    ParsedMetadata,
    RecordFormat,
    Trust,
    as_trust,
    corrupted,
    decode_payload,
    decode_raw,
)
from moorage.records.expiry import check_fresh
from moorage.records.metadata import ResultRecordMetadata
from moorage.serializers.base import Serializer

__all__ = [
    "Decoded",
    "Encoded",
    "ParsedMetadata",
    "Trust",
    "decode_payload",
    "decode_raw",
    "decode_record",
    "decode_split",
    "decode_stored",
    "encode_record",
    "metadata_from_head",
    "parse_metadata_blob",
    "split_record",
]


def _load_metadata(data: BytesLike, key: str, where: str) -> ResultRecordMetadata:
    try:
        return ResultRecordMetadata.load_bytes(data)
    except RecordCorrupted as exc:
        raise corrupted(key, where, str(exc)) from exc
    except (ValueError, TypeError) as exc:
        raise corrupted(key, where, f"invalid metadata ({exc})") from exc


def native_parsed(data: BytesLike, key: str, where: str, trust: Trust) -> ParsedMetadata | int:
    """Parse and verify a native head; an int is the number of bytes needed when ``data``
    is short."""
    head = parse_native_head(data, key, where)
    if head.metadata_length > MAX_METADATA_BYTES:
        raise corrupted(key, where, f"its head announces {head.metadata_length} metadata bytes")
    end = head.payload_offset
    if len(data) < end:
        return end
    view = memoryview(data)
    meta_bytes = view[head.metadata_offset : end]
    verify_head(head, view[:HEADER_SIZE], meta_bytes, trust.signing_key, key, where)
    meta = _load_metadata(meta_bytes, key, where)
    check_metadata(meta, head.mac is not None, trust.signing_key, key, where)
    return ParsedMetadata(meta, "moorage", head)


def check_whole_length(parsed: ParsedMetadata, size: int, key: str, where: str) -> None:
    """When the whole object is at hand, its size must match what the head announces."""
    assert parsed.head is not None
    expected = parsed.head.payload_offset
    if not parsed.head.detached:
        expected += parsed.metadata.payload_length or 0
    if size != expected:
        raise corrupted(key, where, f"{size} bytes where its head announces {expected}")


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
        parsed = native_parsed(head, key, where, trust)
        if complete and isinstance(parsed, ParsedMetadata):
            check_whole_length(parsed, len(head), key, where)
        return parsed
    if complete and 0 < len(head) < len(MAGIC) and MAGIC.startswith(bytes(head)):
        raise corrupted(key, where, f"only {len(head)} bytes of a record header")
    if bytes(head[:1]) == b"{":
        parsed = _parse_json(head) if complete else _prefect_head(head)
        if parsed is None and not complete:
            return max(len(head) * 4, HEAD_SIZE * 16)  # metadata longer than the head
        found = _as_prefect(parsed, key, where, trust, with_text=False)
        if found is not None:
            return found
    trust.allow_unsigned(key, where, "a raw payload (no record around it)")
    return None


def _prefect_head(head: BytesLike) -> Any:
    """Parse the metadata object at the start of a combined Prefect record's head."""
    prefix = b'{"metadata":'
    data = bytes(head)
    if not data.startswith(prefix):
        return _parse_json(data)
    try:
        meta, _ = json.JSONDecoder().raw_decode(data[len(prefix) :].decode("utf-8", "replace"))
    except ValueError:
        return None
    return {"metadata": meta, "result": ""}


def _prefect_meta(meta: dict[str, Any], key: str, where: str) -> ResultRecordMetadata:
    try:
        return ResultRecordMetadata.model_validate({**meta, "moorage_version": None})
    except (ValueError, TypeError) as exc:
        raise corrupted(key, where, f"invalid Prefect metadata ({exc})") from exc


def _prefect_parsed(
    parsed: dict[str, Any], key: str, where: str, with_text: bool
) -> ParsedMetadata:
    meta = _prefect_meta(parsed["metadata"], key, where)
    text = parsed["result"]
    if with_text and not isinstance(text, str):
        raise corrupted(key, where, "the Prefect record's 'result' is not a string")
    return ParsedMetadata(meta, "prefect", prefect_text=text.encode("utf-8") if with_text else None)


def _as_prefect(
    value: Any, key: str, where: str, trust: Trust, *, with_text: bool
) -> ParsedMetadata | None:
    """``value`` (parsed JSON) as a Prefect record or Prefect metadata, if it is one (a
    store that signs must accept unsigned Prefect records for it to count); else None.
    ``with_text``: keep a combined record's payload text (the whole object was read)."""
    if prefect_format.is_prefect_record(value):
        trust.allow_unsigned(key, where, "a Prefect record")
        return _prefect_parsed(value, key, where, with_text=with_text)
    if prefect_format.is_prefect_metadata(value):
        trust.allow_unsigned(key, where, "a Prefect record")
        return ParsedMetadata(_prefect_meta(value, key, where), "prefect")
    return None


def parse_metadata_blob(
    data: BytesLike, key: str, where: str, trust: Trust | bytes | None = None
) -> ParsedMetadata:
    """Parse and verify a complete metadata object (from a metadata storage, or a whole
    record)."""
    trust = as_trust(trust)
    if is_native(data):
        parsed = native_parsed(data, key, where, trust)
        if isinstance(parsed, int):
            raise corrupted(key, where, f"{len(data)} bytes, the head says {parsed}")
        assert parsed.head is not None
        if parsed.head.detached and len(data) != parsed.head.payload_offset:
            end = parsed.head.payload_offset
            raise corrupted(key, where, f"{len(data)} bytes where its head announces {end}")
        return parsed
    found = _as_prefect(_parse_json(data), key, where, trust, with_text=True)
    if found is not None:
        return found
    raise corrupted(key, where, "it is neither a moorage nor a Prefect record")


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
        parsed = native_parsed(view, key, where, trust)
        if isinstance(parsed, int):
            raise corrupted(key, where, f"{len(view)} bytes, the head says {parsed}")
        assert parsed.head is not None
        if parsed.head.detached:
            raise corrupted(key, where, "it holds only metadata; its payload is stored apart")
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
            raise corrupted(key, where, damage)
    trust.allow_unsigned(key, where, "a raw payload (no record around it)")
    return None, view


def decode_stored(
    data: BytesLike,
    key: str,
    where: str,
    backup_serializer: Serializer | None,
    trust: Trust | bytes | None,
) -> Decoded:
    """Decode a whole object read from result storage, refusing an expired record before
    its payload is decoded."""
    trust = as_trust(trust)
    parsed, payload = split_record(data, key, where, trust)
    if parsed is None:
        return decode_raw(payload, key, where, backup_serializer, trust)
    check_fresh(key, where, parsed.metadata.expiration)
    return decode_payload(parsed, payload, key, where, trust, backup_serializer)


def decode_record(
    data: BytesLike,
    key: str,
    where: str,
    backup_serializer: Serializer | None,
    trust: Trust | bytes | None,
) -> Decoded:
    """Decode a whole object, expired or not: native, Prefect, or a raw payload."""
    trust = as_trust(trust)
    parsed, payload = split_record(data, key, where, trust)
    if parsed is None:
        return decode_raw(payload, key, where, backup_serializer, trust)
    return decode_payload(parsed, payload, key, where, trust, backup_serializer)


def decode_split(
    metadata: BytesLike,
    payload: BytesLike,
    key: str,
    where: str,
    trust: Trust | bytes | None,
    configured: Serializer | None = None,
) -> Decoded:
    """Decode a record whose metadata and payload were stored apart."""
    parsed = parse_metadata_blob(metadata, key, where, trust)
    return decode_payload(parsed, payload, key, where, trust, configured)


@dataclass(frozen=True, slots=True)
class Encoded:
    """What to write: the record (or payload) for result storage, and metadata if split.
    ``filled``: the metadata fields written with other values than the record's own (the
    payload's length and checksum, a Prefect record's storage location), by name.
    ``head_last``: for a storage that writes head last, the record to write so (its
    ``result_parts`` are then the payload alone, and its checksum is filled in by the
    write)."""

    result_key: str
    result_parts: list[BytesLike]
    metadata_parts: list[BytesLike] | None
    size: int
    filled: dict[str, Any]
    head_last: HeadLastRecord | None = None


#: Payloads from this size on go head last to a storage that can write so: the payload
#: no longer fits in the CPU's caches, and a checksum pass before the write would read
#: all of it from memory once more.
HEAD_LAST_FROM = 8 << 20


def encode_record(
    meta: ResultRecordMetadata,
    value: Any,
    key: str,
    record_format: RecordFormat,
    split: bool,
    signing_key: bytes | None,
    result_location: str | None = None,
    head_last: bool = False,
) -> Encoded:
    """Serialize ``value`` with metadata ``meta`` for storage under ``key``. ``meta`` is
    left as it is: what the metadata written adds to it (the payload's length and
    checksum, or a Prefect record's storage location) comes back in `Encoded.filled`.

    ``result_location`` is where result storage resolves ``key``; Prefect records carry
    it as their ``storage_key``, as Prefect itself does. ``head_last``: the storage can
    write a record head last (`moorage.storage.base.WritesHeadLast`); an unsigned native
    record of a payload from `HEAD_LAST_FROM` bytes, stored whole, is then encoded so.
    """
    if record_format == "prefect":
        if signing_key is not None:
            raise ConfigurationError(
                f"cannot write record {key!r}: Prefect's record format has no place for a "
                "signature, and a store with a signing_key refuses unsigned records; unset "
                "signing_key or use record_format='moorage'"
            )
        filled: dict[str, Any] = {}
        if result_location is not None:
            filled["storage_key"] = result_location
            meta = meta.model_copy(update=filled)
        if not split:
            blob = prefect_format.encode_combined(meta, value)
            return Encoded(key, [blob], None, len(blob), filled)
        text = prefect_format.dumps_text(meta.serializer, value)
        meta_blob = orjson.dumps(prefect_format.metadata_dict(meta))
        return Encoded(key, [text], [meta_blob], len(text), filled)
    payload, uncompressed = serialize_value(meta.serializer, value)
    if head_last and not split and signing_key is None and parts_length(payload) >= HEAD_LAST_FROM:
        record = native_metadata_head_last(meta, payload, uncompressed, key)
        return Encoded(key, payload, None, record.length, record.filled, record)
    meta_bytes, filled = native_metadata(meta, payload, signing_key, uncompressed, key)
    size: int = filled["payload_length"]
    if not split:
        return Encoded(key, encode_native(meta_bytes, payload, signing_key), None, size, filled)
    meta_parts = encode_native(meta_bytes, payload, signing_key, detached=True)
    return Encoded(key, payload, meta_parts, size, filled)
