"""Result records: metadata plus payload, and the native on-disk format.

Native format, version 2 (documented byte by byte in ``docs/format.md``):

```text
    offset  size  field
    0       4     magic b"\\x89MOR"
    4       1     format version (2)
    5       1     flags: bit 0 signed, bit 1 detached payload
    6       2     reserved, zero
    8       4     metadata length M, unsigned big-endian
    12      4     head CRC-32C: of bytes 0-11 and the metadata, unsigned big-endian
    16      32    HMAC-SHA256 of bytes 0-15 and the metadata, only when signed
    16|48   M     metadata: compact UTF-8 JSON
    ...     P     payload: the serializer's output, raw (absent when detached)
```

The metadata holds the payload's length and checksum (``crc32c:...``, or in signed
records the SHA-256 digest ``sha256:...``), so the head alone (checked by its CRC, and by
its MAC in a signing store) vouches for the payload: ``exists``, listings and expiry
decisions check the head they read, and a read checks the payload against it before
decoding anything.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from moorage import __version__
from moorage.errors import RecordCorrupted, SerializationError
from moorage.format.integrity import CRC32C, SHA256, PayloadCheck, crc32c, parse_checksum
from moorage.format.integrity import checksum_of as _checksum_of
from moorage.serializers.base import (
    CompressedSerializer,
    PickleSerializer,
    Serializer,
    SerializerField,
)

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
    "verify_head",
]

R = TypeVar("R")

MAGIC = b"\x89MOR"
FORMAT_VERSION = 2
FLAG_SIGNED = 0x01
FLAG_DETACHED = 0x02
_KNOWN_FLAGS = FLAG_SIGNED | FLAG_DETACHED
_PREFIX = struct.Struct(">4sBBHI")  # the bytes the head CRC covers, before the CRC
_HEADER = struct.Struct(">4sBBHII")
PREFIX_SIZE = _PREFIX.size  # 12
HEADER_SIZE = _HEADER.size  # 16
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


def checksum_of(payload: BytesLike | Sequence[BytesLike], algorithm: str = CRC32C) -> str:
    """The checksum stored in metadata, of a payload or of its parts in order:
    ``crc32c:`` and 8 hex digits (unsigned records), or ``sha256:`` and 64 (signed)."""
    return _checksum_of(payload_parts(payload), algorithm)


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
    #: For compressed serializers: the length of the payload once decompressed.
    uncompressed_length: int | None = None
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
            "uncompressed_length": self.uncompressed_length,
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
    """The parsed fixed-size prefix of a native record (not yet verified: see
    `verify_head`)."""

    flags: int
    reserved: int
    metadata_offset: int
    metadata_length: int
    head_crc: int
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


def _corrupt(key: str, where: str, what: str) -> RecordCorrupted:
    return RecordCorrupted(
        f"record {key!r} in {where} {what}; it was refused unread: delete it and write it again"
    )


def parse_native_head(data: BytesLike, key: str, where: str) -> NativeHead:
    """Parse the fixed prefix; ``data`` must start with `MAGIC`. Nothing in it is trusted
    until `verify_head` has checked it."""
    if len(data) < HEADER_SIZE:
        raise _corrupt(
            key,
            where,
            f"is truncated: {len(data)} bytes, shorter than the {HEADER_SIZE}-byte header",
        )
    _, version, flags, reserved, meta_len, head_crc = _HEADER.unpack_from(data)
    if version != FORMAT_VERSION:
        raise RecordCorrupted(
            f"record {key!r} in {where} uses native format version {version}; this moorage "
            f"({__version__}) reads version {FORMAT_VERSION} only: upgrade moorage, or write "
            "the record again"
        )
    offset = HEADER_SIZE
    mac = None
    if flags & FLAG_SIGNED:
        mac = bytes(data[offset : offset + MAC_SIZE])
        offset += MAC_SIZE
    return NativeHead(flags, reserved, offset, meta_len, head_crc, mac)


def _head_mac(signing_key: bytes, header: BytesLike, metadata: BytesLike) -> bytes:
    mac = hmac.new(signing_key, header, hashlib.sha256)
    mac.update(metadata)
    return mac.digest()


def verify_head(
    head: NativeHead,
    header: BytesLike,
    metadata: BytesLike,
    signing_key: bytes | None,
    key: str,
    where: str,
) -> None:
    """Check a native head: its CRC-32C, its flags and, with ``signing_key``, its MAC
    (an unsigned record is refused then). ``header`` is the record's first 16 bytes."""
    crc = crc32c([bytes(header[:PREFIX_SIZE]) + bytes(metadata)])  # a few hundred bytes
    if crc != head.head_crc:
        raise _corrupt(
            key,
            where,
            f"failed its head checksum (CRC-32C {head.head_crc:08x} stored, {crc:08x} "
            "computed): its header or metadata were altered or damaged",
        )
    if head.flags & ~_KNOWN_FLAGS or head.reserved:
        raise _corrupt(key, where, f"has unknown flags ({head.flags:#04x}, {head.reserved:#06x})")
    if signing_key is None:
        return
    if head.mac is None:
        raise RecordCorrupted(
            f"record {key!r} in {where} is not signed, but this store has a signing_key, "
            "so it was refused unread; write it again with the key set, or unset signing_key"
        )
    if not hmac.compare_digest(_head_mac(signing_key, header, metadata), head.mac):
        raise RecordCorrupted(
            f"record {key!r} in {where} has an invalid signature: it was written with another "
            "signing_key or altered since, and was refused unread; check that every writer "
            "uses this signing_key, or write the record again"
        )


def check_metadata(
    meta: ResultRecordMetadata, signed: bool, signing_key: bytes | None, key: str, where: str
) -> None:
    """The checks a native record's metadata must name: its payload's length and
    checksum (a SHA-256 digest when the record is signed or read by a signing store)."""
    length = meta.payload_length
    if type(length) is not int or length < 0:
        raise _corrupt(key, where, f"has no valid payload_length ({length!r})")
    parsed = parse_checksum(meta.checksum)
    if parsed is None:
        raise _corrupt(key, where, f"has no checksum moorage knows ({meta.checksum!r})")
    if (signed or signing_key is not None) and parsed[0] != SHA256:
        raise _corrupt(key, where, f"is signed, but its checksum is not a digest ({parsed[0]})")
    unpacked = meta.uncompressed_length
    if isinstance(meta.serializer, CompressedSerializer):
        if type(unpacked) is not int or unpacked < 0:
            raise _corrupt(key, where, f"has no valid uncompressed_length ({unpacked!r})")
    elif unpacked is not None:
        raise _corrupt(key, where, "has an uncompressed_length but no compressed serializer")


def encode_native(
    metadata: bytes,
    payload: BytesLike | Sequence[BytesLike],
    signing_key: bytes | None = None,
    detached: bool = False,
) -> list[BytesLike]:
    """The buffers of a native record, in order (joined, they are the record's bytes).

    ``metadata`` must already name the payload's length and checksum. With ``detached``
    the payload is not part of the record (it is stored elsewhere).
    """
    flags = (FLAG_SIGNED if signing_key else 0) | (FLAG_DETACHED if detached else 0)
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, flags, 0, len(metadata))
    header = prefix + struct.pack(">I", crc32c([prefix, metadata]))
    parts: list[BytesLike] = [header]
    if signing_key:
        parts.append(_head_mac(signing_key, header, metadata))
    parts.append(metadata)
    if not detached:
        parts.extend(payload_parts(payload))
    return parts


def verify_payload(meta: ResultRecordMetadata, payload: BytesLike, key: str, where: str) -> None:
    """Check a payload's length and checksum against its (verified) metadata."""
    size = memoryview(payload).nbytes
    if size != meta.payload_length:
        raise _corrupt(
            key,
            where,
            f"is truncated or padded: its payload is {size} bytes, its metadata says "
            f"{meta.payload_length}",
        )
    checksum = meta.checksum or ""
    if checksum.startswith("crc32c:"):  # the common case, without the general machinery
        matches = f"crc32c:{crc32c([payload]):08x}" == checksum
    else:
        check = PayloadCheck(checksum)
        check.update(payload)
        matches = check.matches()
    if not matches:
        raise _corrupt(
            key,
            where,
            f"failed its payload checksum ({meta.checksum} expected): the stored bytes were "
            "altered or damaged",
        )


def payload_checksum_algorithm(signing_key: bytes | None) -> str:
    """Signed records carry a SHA-256 digest of their payload; others a CRC-32C."""
    return SHA256 if signing_key else CRC32C


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
        buffers of the result are referenced, not copied. For a compressed serializer,
        the uncompressed length goes into the metadata."""
        try:
            if isinstance(self.serializer, CompressedSerializer):
                parts, length = self.serializer.dump_parts_measured(self.result)
                self.metadata.uncompressed_length = length
                return parts
            self.metadata.uncompressed_length = None
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
        fills in the length and checksum (``payload`` must come from
        `serialize_result_parts`, which fills in the uncompressed length)."""
        parts = payload_parts(payload)
        self.metadata.payload_length = parts_length(parts)
        self.metadata.checksum = checksum_of(parts, payload_checksum_algorithm(signing_key))
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
        from moorage.format import codec

        return codec.decode_record(data, key, where, backup_serializer, signing_key)

    @classmethod
    def deserialize_from_result_and_metadata(
        cls, result: BytesLike, metadata: BytesLike, *, key: str = "<bytes>", where: str = "memory"
    ) -> ResultRecord[Any]:
        """Rebuild a record from a payload and metadata stored apart."""
        from moorage.format import codec

        return codec.decode_split(metadata, result, key, where, None)
