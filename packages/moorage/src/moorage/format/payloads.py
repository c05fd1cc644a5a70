"""From a verified payload to a value, within what the reader trusts.

`Trust` says what a reader accepts (signatures, unsigned Prefect records, how far a
payload may decompress); `decode_payload` checks a payload against its verified metadata
and decodes it; `decode_raw` reads a payload with no record around it. Pure functions:
the bytes are handed in, never read here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from moorage.buffers import BytesLike
from moorage.errors import ClassNotAllowed, DecodeRefused, RecordCorrupted, SerializationError
from moorage.format import prefect as prefect_format
from moorage.format.integrity import DEFAULT_MAX_PAYLOAD_BYTES
from moorage.format.native import NativeHead, verify_payload
from moorage.records.metadata import ResultRecordMetadata
from moorage.serializers.allowed import reading_serializer
from moorage.serializers.base import Serializer
from moorage.serializers.compressed import CompressedSerializer

__all__ = [
    "Decoded",
    "ParsedMetadata",
    "RecordFormat",
    "Trust",
    "as_trust",
    "corrupted",
    "decode_payload",
    "decode_raw",
    "undecodable",
]

RecordFormat = Literal["moorage", "prefect"]


@dataclass(frozen=True, slots=True)
class Trust:
    """What a reader accepts: with ``signing_key``, only records signed with it (Prefect
    records and raw payloads, which cannot be signed, only when
    ``accept_unsigned_prefect`` is set); compressed payloads of unstated size decompress
    to at most ``max_payload_bytes``."""

    signing_key: bytes | None = None
    accept_unsigned_prefect: bool = False
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    #: The reader's check of the serializer a value would be decoded with, before any
    #: decoding: `DecodeRefused` when it says no (see `check_decoder`).
    allow: Callable[[Serializer], bool] | None = None

    def check_decoder(self, serializer: Serializer, key: str, where: str) -> None:
        """Refuse to decode record ``key`` with ``serializer`` if the reader's check
        (`allow`) says no; nothing of the payload has been decoded then."""
        if self.allow is not None and not self.allow(serializer):
            raise DecodeRefused(
                f"record {key!r} in {where} was not decoded: its serializer "
                f"({serializer.type!r}) did not pass the reader's check (decoding it may run "
                "code the record names); read it without allow= only if you trust this storage"
            )

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
    """A `Trust` from a `Trust`, or from a signing key alone (None: no key)."""
    return value if isinstance(value, Trust) else Trust(signing_key=value)


class ParsedMetadata(NamedTuple):
    """Metadata read from a record or a metadata file, before the payload is touched
    (a named tuple, as `NativeHead`: one is made per read)."""

    metadata: ResultRecordMetadata
    format: RecordFormat
    head: NativeHead | None = None
    #: For combined Prefect records, the payload text already parsed from the JSON.
    prefect_text: bytes | None = None


class Decoded(NamedTuple):
    """A decoded record: its metadata, its value, and its payload's size in bytes (what
    the memory cache counts). `moorage.records.ResultRecord` wraps the first two."""

    metadata: ResultRecordMetadata
    value: Any
    size: int


def corrupted(key: str, where: str, what: str) -> RecordCorrupted:
    """A stored object that is not a readable record: ``what`` says why."""
    return RecordCorrupted(
        f"record {key!r} in {where} is corrupted: {what}; delete it and write it again"
    )


def undecodable(key: str, where: str, exc: SerializationError) -> SerializationError:
    """A payload that could not be decoded, naming the record; a refused class stays a
    `ClassNotAllowed`."""
    cls = ClassNotAllowed if isinstance(exc, ClassNotAllowed) else SerializationError
    return cls(f"cannot decode record {key!r} in {where}: {exc}")


def signed(parsed: ParsedMetadata, trust: Trust) -> bool:
    """Whether this store checked the record's signature (so its metadata is trusted)."""
    head = parsed.head
    return trust.signing_key is not None and head is not None and head.mac is not None


def decode_payload(
    parsed: ParsedMetadata,
    payload: BytesLike,
    key: str,
    where: str,
    trust: Trust | bytes | None,
    configured: Serializer | None = None,
) -> Decoded:
    """Verify ``payload`` against ``parsed`` (already verified) and decode it. ``configured``
    is the reader's serializer: which classes a payload may name comes from it (or from
    settings), never from the record (see `reading_serializer`)."""
    trust = as_trust(trust)
    meta = parsed.metadata
    serializer = reading_serializer(meta.serializer, configured)
    if parsed.format == "moorage":
        verify_payload(meta, payload, key, where)
        value = _loads(serializer, meta, payload, key, where, trust, signed=signed(parsed, trust))
    else:
        trust.allow_unsigned(key, where, "a Prefect record")
        value = _loads(serializer, meta, payload, key, where, trust, prefect=True)
    return Decoded(meta, value, len(payload))


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
    if trust.allow is not None:  # a reader's check: asked only when there is one
        trust.check_decoder(serializer, key, where)
    try:
        if prefect:
            return prefect_format.loads_text(serializer, payload, trust.max_payload_bytes)
        if isinstance(serializer, CompressedSerializer):
            limit, why, exact = _decompression_limit(meta, trust, signed)
            return serializer.loads_bounded(payload, limit, why=why, exact=exact)
        return serializer.loads(payload)
    except RecordCorrupted as exc:
        raise corrupted(key, where, str(exc)) from exc
    except SerializationError as exc:
        raise undecodable(key, where, exc) from exc


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


def decode_raw(
    payload: BytesLike,
    key: str,
    where: str,
    serializer: Serializer | None,
    trust: Trust | bytes | None,
) -> Decoded:
    """A raw payload (no record around it), as Prefect leaves for flow results."""
    trust = as_trust(trust)
    trust.allow_unsigned(key, where, "a raw payload (no record around it)")
    if serializer is None:
        raise corrupted(key, where, "it is not a record and no serializer was given to read it raw")
    if trust.allow is not None:  # a reader's check: asked only when there is one
        trust.check_decoder(serializer, key, where)
    meta = ResultRecordMetadata(storage_key=key, serializer=serializer, moorage_version=None)
    try:
        if isinstance(serializer, CompressedSerializer):
            why = "the max_payload_bytes setting"
            value = serializer.loads_bounded(payload, trust.max_payload_bytes, why=why)
        else:
            value = serializer.loads(payload)
    except ClassNotAllowed as exc:  # read, and refused: not damage
        raise undecodable(key, where, exc) from exc
    except SerializationError:
        try:
            value = prefect_format.loads_text(serializer, payload, trust.max_payload_bytes)
        except ClassNotAllowed as exc:
            raise undecodable(key, where, exc) from exc
        except SerializationError as exc:
            raise corrupted(
                key,
                where,
                f"it is not a record, and the {serializer.type} serializer cannot "
                f"read it as a raw payload ({exc})",
            ) from exc
    return Decoded(meta, value, len(payload))
