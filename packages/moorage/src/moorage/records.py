"""Result records: metadata plus payload, and the native on-disk format.

Native format, version 1 (documented byte by byte in ``docs/format.md``):

```text
    offset  size  field
    0       4     magic b"\\x89MOR"
    4       1     format version (1)
    5       1     flags: bit 0 signed, bit 1 detached payload
    6       2     reserved, zero
    8       4     metadata length M, unsigned big-endian
    12      32    HMAC-SHA256, present only when the signed flag is set
    12|44   M     metadata: compact UTF-8 JSON
    ...     P     payload: the serializer's output, raw (absent when detached)
```

The metadata names the payload length and its CRC-32, so a reader checks both before
decoding; a signed record's MAC covers header, metadata and payload and is checked
before anything is unpickled. ``exists`` and listings read only the head.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from moorage import __version__
from moorage.errors import RecordCorrupted, SerializationError
from moorage.serializers import PickleSerializer, Serializer, SerializerField

__all__ = [
    "FLAG_DETACHED",
    "FLAG_SIGNED",
    "FORMAT_VERSION",
    "HEAD_SIZE",
    "MAGIC",
    "NativeHead",
    "ResultRecord",
    "ResultRecordMetadata",
    "checksum_of",
    "encode_native",
    "is_native",
    "parse_native_head",
]

R = TypeVar("R")

MAGIC = b"\x89MOR"
FORMAT_VERSION = 1
FLAG_SIGNED = 0x01
FLAG_DETACHED = 0x02
_HEADER = struct.Struct(">4sBBHI")
HEADER_SIZE = _HEADER.size  # 12
MAC_SIZE = 32
#: How many bytes `exists` and listings read first; enough for typical metadata.
HEAD_SIZE = 4096

BytesLike = bytes | bytearray | memoryview


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def format_expiration(value: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC ending in ``Z``, as Prefect writes it."""
    if value is None:
        return None
    return _utc(value).isoformat().replace("+00:00", "Z")


def checksum_of(payload: BytesLike | Sequence[BytesLike]) -> str:
    """The checksum stored in metadata, of a payload or of its parts in order."""
    crc = 0
    for part in payload_parts(payload):
        crc = zlib.crc32(part, crc)
    return f"crc32:{crc:08x}"


def payload_parts(payload: BytesLike | Sequence[BytesLike]) -> list[BytesLike]:
    """A payload as a list of parts (a single buffer is one part)."""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return [payload]
    return list(payload)


def parts_length(parts: Sequence[BytesLike]) -> int:
    return sum(memoryview(part).nbytes for part in parts)


class ResultRecordMetadata(BaseModel):
    """What is known about a stored result without decoding its payload."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    storage_key: str | None = None
    expiration: Annotated[dt.datetime, AfterValidator(_utc)] | None = None
    serializer: SerializerField = Field(default_factory=lambda: PickleSerializer())
    moorage_version: str | None = __version__
    storage_block_id: UUID | None = None
    payload_length: int | None = None
    checksum: str | None = None

    def is_expired(self, now: dt.datetime | None = None) -> bool:
        if self.expiration is None:
            return False
        return (now or dt.datetime.now(dt.UTC)) >= self.expiration

    def to_dict(self) -> dict[str, Any]:
        data = {
            "storage_key": self.storage_key,
            "expiration": format_expiration(self.expiration),
            "serializer": self.serializer.to_dict(),
            "moorage_version": self.moorage_version,
            "storage_block_id": None
            if self.storage_block_id is None
            else str(self.storage_block_id),
            "payload_length": self.payload_length,
            "checksum": self.checksum,
        }
        if self.model_extra:
            data.update(self.model_extra)
        return data

    def dump_bytes(self) -> bytes:
        """The metadata as compact JSON bytes."""
        return orjson.dumps(self.to_dict())

    @classmethod
    def load_bytes(cls, data: BytesLike) -> ResultRecordMetadata:
        """Parse metadata JSON written by `dump_bytes` (or by Prefect 3)."""
        text = bytes(data) if isinstance(data, memoryview) else data  # a few hundred bytes
        try:  # pydantic-core parses and validates in one pass
            return cls.model_validate_json(text)
        except ValidationError as exc:
            first = exc.errors()[0]
            if first["type"] == "json_invalid":
                raise RecordCorrupted(f"record metadata is not valid JSON: {first['msg']}") from exc
            if first["type"] == "model_type" and not first["loc"]:
                raise RecordCorrupted("record metadata is not a JSON object") from exc
            raise


@dataclass(frozen=True, slots=True)
class NativeHead:
    """The parsed fixed-size prefix of a native record."""

    flags: int
    metadata_offset: int
    metadata_length: int
    mac: bytes | None

    @property
    def payload_offset(self) -> int:
        return self.metadata_offset + self.metadata_length

    @property
    def detached(self) -> bool:
        return bool(self.flags & FLAG_DETACHED)


def is_native(data: BytesLike) -> bool:
    """Whether ``data`` starts like a native record."""
    return data[:4] == MAGIC  # bytes, bytearray and memoryview compare by content


def parse_native_head(data: BytesLike, key: str, where: str) -> NativeHead:
    """Parse the fixed prefix; ``data`` must start with `MAGIC`."""
    if len(data) < HEADER_SIZE:
        raise RecordCorrupted(
            f"record {key!r} in {where} is truncated: {len(data)} bytes, shorter than the "
            f"{HEADER_SIZE}-byte header; delete it and write it again"
        )
    _, version, flags, _, meta_len = _HEADER.unpack_from(data)
    if version != FORMAT_VERSION:
        raise RecordCorrupted(
            f"record {key!r} in {where} uses native format version {version}; this moorage "
            f"({__version__}) reads version {FORMAT_VERSION}: upgrade moorage"
        )
    offset = HEADER_SIZE
    mac = None
    if flags & FLAG_SIGNED:
        mac = bytes(data[offset : offset + MAC_SIZE])
        offset += MAC_SIZE
    return NativeHead(flags, offset, meta_len, mac)


def _mac(
    signing_key: bytes,
    header: BytesLike,
    metadata: BytesLike,
    payload: BytesLike | Sequence[BytesLike],
) -> bytes:
    mac = hmac.new(signing_key, header, hashlib.sha256)
    mac.update(metadata)
    for part in payload_parts(payload):
        mac.update(part)
    return mac.digest()


def encode_native(
    metadata: bytes,
    payload: BytesLike | Sequence[BytesLike],
    signing_key: bytes | None = None,
    detached: bool = False,
) -> list[BytesLike]:
    """The buffers of a native record, in order (joined, they are the record's bytes).

    With ``detached`` the payload is not part of the record (it is stored elsewhere), but
    the MAC still covers it.
    """
    flags = (FLAG_SIGNED if signing_key else 0) | (FLAG_DETACHED if detached else 0)
    header = _HEADER.pack(MAGIC, FORMAT_VERSION, flags, 0, len(metadata))
    parts: list[BytesLike] = [header]
    if signing_key:
        parts.append(_mac(signing_key, header, metadata, payload))
    parts.append(metadata)
    if not detached:
        parts.extend(payload_parts(payload))
    return parts


def verify_payload(
    meta: ResultRecordMetadata,
    payload: BytesLike,
    head: NativeHead | None,
    header_and_metadata: tuple[BytesLike, BytesLike] | None,
    signing_key: bytes | None,
    key: str,
    where: str,
) -> None:
    """Check length, checksum and (when a signing key is set) the signature."""
    if meta.payload_length is not None and len(payload) != meta.payload_length:
        raise RecordCorrupted(
            f"record {key!r} in {where} is truncated or padded: payload is {len(payload)} "
            f"bytes, its metadata says {meta.payload_length}; delete it and write it again"
        )
    if meta.checksum is not None and checksum_of(payload) != meta.checksum:
        raise RecordCorrupted(
            f"record {key!r} in {where} failed its checksum ({meta.checksum} expected); the "
            "stored bytes were altered or damaged: delete it and write it again"
        )
    if signing_key is None:
        return
    if head is None or head.mac is None or header_and_metadata is None:
        raise RecordCorrupted(
            f"record {key!r} in {where} is not signed, but a signing_key is configured, so "
            "it is refused unread; write it again with the key set, or unset signing_key"
        )
    header, metadata = header_and_metadata
    expected = _mac(signing_key, header, metadata, payload)
    if not hmac.compare_digest(expected, head.mac):
        raise RecordCorrupted(
            f"record {key!r} in {where} has an invalid signature: it was written with another "
            "signing_key or altered since; it was refused before decoding"
        )


class ResultRecord(BaseModel, Generic[R]):
    """A result and its metadata."""

    model_config = ConfigDict(arbitrary_types_allowed=True, defer_build=True)

    metadata: ResultRecordMetadata
    result: R

    @property
    def expiration(self) -> dt.datetime | None:
        return self.metadata.expiration

    @property
    def serializer(self) -> Serializer:
        return self.metadata.serializer

    def serialize_result(self) -> bytes:
        """The payload: the serializer's output for `result`."""
        return b"".join(self.serialize_result_parts())

    def serialize_result_parts(self) -> list[BytesLike]:
        """The payload as buffers to write in order (see `Serializer.dump_parts`): large
        buffers of the result are referenced, not copied."""
        try:
            return self.serializer.dump_parts(self.result)
        except SerializationError:
            raise
        except Exception as exc:
            raise SerializationError(
                f"could not serialize a {type(self.result).__qualname__} with serializer "
                f"{self.serializer.type!r}: {exc}. Try another serializer, e.g. "
                "serializer='pickle'"
            ) from exc

    def serialize_metadata(self) -> bytes:
        return self.metadata.dump_bytes()

    def to_parts(
        self,
        payload: BytesLike | Sequence[BytesLike],
        signing_key: bytes | None = None,
        detached: bool = False,
    ) -> list[BytesLike]:
        """Native record buffers for this record with ``payload`` (one buffer or its parts);
        fills in the length and checksum."""
        parts = payload_parts(payload)
        self.metadata.payload_length = parts_length(parts)
        self.metadata.checksum = checksum_of(parts)
        return encode_native(self.metadata.dump_bytes(), parts, signing_key, detached)

    def serialize(self, signing_key: bytes | None = None) -> bytes:
        """The whole record in the native format."""
        return b"".join(self.to_parts(self.serialize_result(), signing_key))

    @classmethod
    def deserialize(
        cls,
        data: BytesLike,
        backup_serializer: Serializer | None = None,
        *,
        key: str = "<bytes>",
        where: str = "memory",
        signing_key: bytes | None = None,
    ) -> ResultRecord[Any]:
        """Read a record in any format moorage understands.

        Native and Prefect 3 records are recognised by their first bytes; anything else
        is a raw payload, decoded with ``backup_serializer`` (a `RecordCorrupted` error
        without one).
        """
        from moorage import codec

        return codec.decode_record(data, key, where, backup_serializer, signing_key)

    @classmethod
    def deserialize_from_result_and_metadata(
        cls, result: BytesLike, metadata: BytesLike, *, key: str = "<bytes>", where: str = "memory"
    ) -> ResultRecord[Any]:
        """Rebuild a record from a payload and metadata stored apart."""
        from moorage import codec

        return codec.decode_split(metadata, result, key, where, None)
