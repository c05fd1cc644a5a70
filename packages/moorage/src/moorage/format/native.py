"""moorage's native record format: header, head checksum, signature, metadata, payload.

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
decoding anything. Everything here is a pure function of bytes and metadata.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson

from moorage.buffers import BytesLike
from moorage.errors import RecordCorrupted
from moorage.format.integrity import (
    CRC32C,
    SHA256,
    PayloadCheck,
    RunningCRC32C,
    checksum_of,
    crc32c,
    parse_checksum,
)
from moorage.records.metadata import ResultRecordMetadata
from moorage.serializers.base import Serializer
from moorage.serializers.compressed import CompressedSerializer
from moorage.serializers.failures import serialization_errors
from moorage.version import __version__

__all__ = [
    "FLAG_DETACHED",
    "FLAG_SIGNED",
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "HEAD_SIZE",
    "MAGIC",
    "MAX_METADATA_BYTES",
    "HeadLastRecord",
    "NativeHead",
    "check_metadata",
    "encode_native",
    "is_native",
    "native_metadata",
    "native_metadata_head_last",
    "parse_native_head",
    "serialize_value",
    "verify_head",
    "verify_payload",
]

MAGIC = b"\x89MOR"
FORMAT_VERSION = 2
FLAG_SIGNED = 0x01
FLAG_DETACHED = 0x02
_KNOWN_FLAGS = FLAG_SIGNED | FLAG_DETACHED
_PREFIX = struct.Struct(">4sBBHI")  # the bytes the head CRC covers, before the CRC
_HEADER = struct.Struct(">4sBBHII")
_CRC = struct.Struct(">I")
PREFIX_SIZE = _PREFIX.size  # 12
HEADER_SIZE = _HEADER.size  # 16
MAC_SIZE = 32
#: How many bytes `exists` and listings read first; enough for typical metadata.
HEAD_SIZE = 4096
#: The most metadata bytes a native head may announce; more is damage, not metadata.
MAX_METADATA_BYTES = 16 << 20


def refused(key: str, where: str, what: str) -> RecordCorrupted:
    """A native record that fails a check: ``what`` says which."""
    return RecordCorrupted(
        f"record {key!r} in {where} {what}; it was refused unread: delete it and write it again"
    )


# -- encoding ---------------------------------------------------------------------------


def serialize_value(serializer: Serializer, value: Any) -> tuple[list[BytesLike], int | None]:
    """The payload for ``value``, as buffers to write in order (large buffers of the value
    are referenced, not copied; see `Serializer.dump_parts`), and for a compressed
    serializer the payload's length once decompressed (None otherwise)."""
    with serialization_errors(
        lambda exc: (
            f"could not serialize a {type(value).__qualname__} with serializer "
            f"{serializer.type!r}: {exc}. Try another serializer, e.g. serializer='pickle'"
        )
    ):
        if isinstance(serializer, CompressedSerializer):
            return serializer.dump_parts_measured(value)
        return serializer.dump_parts(value), None


def payload_parts(payload: BytesLike | Sequence[BytesLike]) -> list[BytesLike]:
    """A payload as a list of parts (a single buffer is one part)."""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return [payload]
    return list(payload)


def parts_length(parts: Sequence[BytesLike]) -> int:
    """How many bytes ``parts`` hold together."""
    return sum(memoryview(part).nbytes for part in parts)


def payload_checksum_algorithm(signing_key: bytes | None) -> str:
    """Signed records carry a SHA-256 digest of their payload; others a CRC-32C."""
    return SHA256 if signing_key else CRC32C


def native_metadata(
    meta: ResultRecordMetadata,
    parts: Sequence[BytesLike],
    signing_key: bytes | None,
    uncompressed_length: int | None,
    storage_key: str | None = None,
) -> tuple[bytes, dict[str, Any]]:
    """The metadata bytes of a native record of payload ``parts``: ``meta`` with the
    payload's length, checksum and uncompressed length (and ``storage_key``, when given)
    filled in. ``meta`` itself is left as it is; the fields filled in come back too
    (no copy of the model is made: writes are measured in microseconds)."""
    checksum = checksum_of(parts, payload_checksum_algorithm(signing_key))
    data, filled = _filled_metadata(meta, parts, uncompressed_length, storage_key, checksum)
    return orjson.dumps(data), filled


def _filled_metadata(
    meta: ResultRecordMetadata,
    parts: Sequence[BytesLike],
    uncompressed_length: int | None,
    storage_key: str | None,
    checksum: str | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``meta`` as metadata to encode, with the payload's fields filled in (a checksum of
    None is left for later), and those fields apart."""
    filled: dict[str, Any] = {
        "payload_length": parts_length(parts),
        "uncompressed_length": uncompressed_length,
    }
    if checksum is not None:
        filled["checksum"] = checksum
    if storage_key is not None:
        filled["storage_key"] = storage_key
    data = meta.encodable()  # encoded at once: the serializer's description is shared
    data.update(filled)
    return data, filled


#: A CRC-32C checksum as record metadata holds it, with the digits still unknown: every
#: such checksum is this long, so a head can be sized before its payload is checksummed.
_CRC_PLACEHOLDER = f"{CRC32C}:00000000"


class HeadLastRecord:
    """An unsigned native record whose head is made after its payload went by: for a
    storage that writes head last (`moorage.storage.base.WritesHeadLast`), which
    checksums each slice of the payload just after writing it, while it is in cache,
    instead of in a pass of its own over memory first. The bytes stored are those
    `encode_native` would make.

    ``data`` is the record's metadata as `native_metadata` fills it, less the checksum;
    ``filled`` the fields the record gets once written (the checksum is added to both
    when the head is made).
    """

    __slots__ = ("_crc", "_data", "_seen", "body", "filled", "head_size", "length")

    def __init__(
        self, data: dict[str, Any], filled: dict[str, Any], body: list[BytesLike], length: int
    ) -> None:
        self._data = data
        self.filled = filled
        self.body = body
        self.length = length
        data["checksum"] = _CRC_PLACEHOLDER
        self.head_size = HEADER_SIZE + len(orjson.dumps(data))
        self._crc = RunningCRC32C()
        self._seen = 0

    def observe(self, view: memoryview, start: int, stop: int, /) -> None:
        """The storage wrote ``view[start:stop]``, the next bytes of the payload."""
        self._crc.update_span(view, start, stop)
        self._seen += stop - start

    def head(self) -> list[BytesLike]:
        """The record's head, once the whole payload was observed; a write that is tried
        again (the storage's folder pruned meanwhile) observes the payload afresh."""
        if self._seen != self.length:
            raise ValueError(
                f"the payload went by as {self._seen} bytes, not the {self.length} its "
                "record's head states"
            )
        checksum = self._crc.checksum()
        self._data["checksum"] = self.filled["checksum"] = checksum
        self._crc, self._seen = RunningCRC32C(), 0
        return encode_native(orjson.dumps(self._data), ())


def native_metadata_head_last(
    meta: ResultRecordMetadata,
    parts: list[BytesLike],
    uncompressed_length: int | None,
    storage_key: str | None = None,
) -> HeadLastRecord:
    """`native_metadata` and `encode_native` for a storage that writes head last: the
    unsigned record of payload ``parts``, its checksum computed as the payload is written
    (a signed record's digest is made before: its head is signed)."""
    data, filled = _filled_metadata(meta, parts, uncompressed_length, storage_key, None)
    return HeadLastRecord(data, filled, parts, filled["payload_length"])


def _head_mac(signing_key: bytes, header: BytesLike, metadata: BytesLike) -> bytes:
    mac = hmac.new(signing_key, header, hashlib.sha256)
    mac.update(metadata)
    return mac.digest()


def encode_native(
    metadata: bytes,
    payload: BytesLike | Sequence[BytesLike],
    signing_key: bytes | None = None,
    detached: bool = False,
) -> list[BytesLike]:
    """The buffers of a native record, in order (joined, they are the record's bytes).

    ``metadata`` must already name the payload's length and checksum (see
    `native_metadata`). With ``detached`` the payload is not part of the record (it is
    stored elsewhere).
    """
    flags = (FLAG_SIGNED if signing_key else 0) | (FLAG_DETACHED if detached else 0)
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, flags, 0, len(metadata))
    header = prefix + _CRC.pack(crc32c([prefix, metadata]))
    parts: list[BytesLike] = [header]
    if signing_key:
        parts.append(_head_mac(signing_key, header, metadata))
    parts.append(metadata)
    if not detached:
        parts.extend(payload_parts(payload))
    return parts


# -- the head ---------------------------------------------------------------------------


class NativeHead(NamedTuple):
    """The parsed fixed-size prefix of a native record (not yet verified: see
    `verify_head`). A named tuple: one is made per read, and a tuple is the cheapest
    immutable object Python builds."""

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


def parse_native_head(data: BytesLike, key: str, where: str) -> NativeHead:
    """Parse the fixed prefix; ``data`` must start with `MAGIC`. Nothing in it is trusted
    until `verify_head` has checked it."""
    if len(data) < HEADER_SIZE:
        raise refused(
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
        raise refused(
            key,
            where,
            f"failed its head checksum (CRC-32C {head.head_crc:08x} stored, {crc:08x} "
            "computed): its header or metadata were altered or damaged",
        )
    if head.flags & ~_KNOWN_FLAGS or head.reserved:
        raise refused(key, where, f"has unknown flags ({head.flags:#04x}, {head.reserved:#06x})")
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
        raise refused(key, where, f"has no valid payload_length ({length!r})")
    parsed = parse_checksum(meta.checksum)
    if parsed is None:
        raise refused(key, where, f"has no checksum moorage knows ({meta.checksum!r})")
    if (signed or signing_key is not None) and parsed[0] != SHA256:
        raise refused(key, where, f"is signed, but its checksum is not a digest ({parsed[0]})")
    unpacked = meta.uncompressed_length
    if isinstance(meta.serializer, CompressedSerializer):
        if type(unpacked) is not int or unpacked < 0:
            raise refused(key, where, f"has no valid uncompressed_length ({unpacked!r})")
    elif unpacked is not None:
        raise refused(key, where, "has an uncompressed_length but no compressed serializer")


# -- the payload ------------------------------------------------------------------------


def verify_payload(meta: ResultRecordMetadata, payload: BytesLike, key: str, where: str) -> None:
    """Check a whole payload's length and checksum against its (verified) metadata."""
    size = memoryview(payload).nbytes
    checksum = meta.checksum or ""
    if size != meta.payload_length:
        matches = False  # the length explains it
    elif checksum.startswith("crc32c:"):  # the common case, without the general machinery
        matches = f"crc32c:{crc32c([payload]):08x}" == checksum
    else:
        check = PayloadCheck(checksum)
        check.update(payload)
        matches = check.matches()
    if not matches:
        raise payload_damage(meta, size, key, where)


def verify_checked(meta: ResultRecordMetadata, check: PayloadCheck, key: str, where: str) -> None:
    """`verify_payload` for a payload fed to ``check`` as it went by (a streamed read)."""
    if check.length != meta.payload_length or not check.matches():
        raise payload_damage(meta, check.length, key, where)


def payload_damage(meta: ResultRecordMetadata, size: int, key: str, where: str) -> RecordCorrupted:
    """What is wrong with a payload of ``size`` bytes that failed its check."""
    if size != meta.payload_length:
        return refused(
            key,
            where,
            f"is truncated or padded: its payload is {size} bytes, its metadata says "
            f"{meta.payload_length}",
        )
    return refused(
        key,
        where,
        f"failed its payload checksum ({meta.checksum} expected): the stored bytes were "
        "altered or damaged",
    )
