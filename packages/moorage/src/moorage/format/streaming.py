"""Decoding a record read from an open file, decided here and read elsewhere.

A storage that streams reads (`moorage.storage.base.Storage.read_stream`) hands the
store an open file and its size. `moorage.storage.streams.read_record` does the reading;
a `StreamDecoder` makes every decision, from the bytes it is shown: how many to read
first, whether the payload may be decoded as it is read, and whether what went by was
the payload its head vouches for. Like h11, the decisions are pure and the I/O is the
caller's.

A large unsigned native record is decoded as it is read: its serializer's
`~moorage.serializers.base.Serializer.load_stream` builds the value from the file,
while the length and checksum are checked on the bytes going by; a value read from a
damaged payload is dropped and `RecordCorrupted` raised. In a signing store (the
payload's digest must be checked before decoding), compressed payloads (checked before
they are decompressed), Prefect records and raw payloads are read whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moorage.buffers import BytesLike
from moorage.errors import SerializationError
from moorage.format.codec import check_whole_length, decode_stored, metadata_from_head
from moorage.format.integrity import PayloadCheck
from moorage.format.native import HEAD_SIZE, verify_checked
from moorage.format.payloads import Decoded, ParsedMetadata, Trust, as_trust, undecodable
from moorage.records.expiry import check_fresh
from moorage.records.metadata import ResultRecordMetadata
from moorage.serializers.allowed import reading_serializer
from moorage.serializers.base import Serializer
from moorage.serializers.compressed import CompressedSerializer

__all__ = ["StreamDecoder", "StreamedPayload"]


@dataclass(frozen=True, slots=True)
class StreamedPayload:
    """A native record whose payload a deserializer may read straight from the file:
    ``length`` bytes from ``offset``, fed to ``check`` as they go by."""

    metadata: ResultRecordMetadata
    offset: int
    length: int
    serializer: Serializer
    check: PayloadCheck


class StreamDecoder:
    """The decisions for reading record ``key`` in ``where`` from an open file: see the
    module's docstring. It never reads."""

    __slots__ = ("_backup", "_key", "_trust", "_where")

    def __init__(
        self,
        key: str,
        where: str,
        backup_serializer: Serializer | None,
        trust: Trust | bytes | None,
    ) -> None:
        self._key = key
        self._where = where
        self._backup = backup_serializer
        self._trust = as_trust(trust)

    def first_read(self, size: int) -> int:
        """How many of the object's ``size`` bytes to read first: all of them in a signing
        store (a payload's digest is checked before it is decoded), else a head."""
        return size if self._trust.signing_key is not None else min(size, HEAD_SIZE)

    def plan(self, head: BytesLike, size: int) -> StreamedPayload | int | None:
        """Given the object's first bytes: the payload to decode as it is read, or how many
        bytes from the start to show again (the metadata runs past ``head``), or None
        when the object is to be read whole and given to `whole`."""
        if self._trust.signing_key is not None:
            return None
        key, where = self._key, self._where
        parsed = metadata_from_head(head, key, where, False, self._trust)
        if isinstance(parsed, int):
            return parsed if parsed <= size else None
        if (
            not isinstance(parsed, ParsedMetadata)
            or parsed.head is None
            or parsed.head.detached  # metadata only: refused as such by `whole`
            or isinstance(parsed.metadata.serializer, CompressedSerializer)
        ):
            return None
        check_whole_length(parsed, size, key, where)
        meta = parsed.metadata
        check_fresh(key, where, meta.expiration)
        offset = parsed.head.payload_offset
        serializer = reading_serializer(meta.serializer, self._backup)
        self._trust.check_decoder(serializer, key, where)
        check = PayloadCheck(meta.checksum or "")  # check_metadata made sure it is well-formed
        return StreamedPayload(meta, offset, size - offset, serializer, check)

    def whole(self, data: BytesLike) -> Decoded:
        """Decode the whole object, read in full."""
        return decode_stored(data, self._key, self._where, self._backup, self._trust)

    def verify(self, payload: StreamedPayload) -> None:
        """After the payload went by: `RecordCorrupted` unless its length and checksum are
        the ones its head vouches for."""
        verify_checked(payload.metadata, payload.check, self._key, self._where)

    def decoded(self, payload: StreamedPayload, value: Any) -> Decoded:
        """The record, once `verify` has passed."""
        return Decoded(payload.metadata, value, payload.length)

    def undecodable(self, exc: SerializationError) -> SerializationError:
        """The error for a (verified) payload its serializer could not decode."""
        return undecodable(self._key, self._where, exc)
