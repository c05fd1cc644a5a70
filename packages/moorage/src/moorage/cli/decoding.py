"""Reading a record's value for ``show`` and ``get`` only when decoding it runs no stored
code, or when the user said ``--decode``.

The decision is made twice: first from the record's head alone (cheap: a refused
record's payload is never read), then again on the very bytes that are decoded. The
second look matters: a record replaced by a pickle record between the head read and
the payload read is judged by what is actually decoded, not by what was there before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moorage.cli.stores import listed_storage, safe_to_decode

if TYPE_CHECKING:
    from moorage.format.payloads import ParsedMetadata
    from moorage.store.listing import RecordInfo
    from moorage.store.store import ResultStore

__all__ = ["Refused", "head_check", "read_value"]


class Refused(Exception):
    """The value is not decoded; the message says why and what to do."""


def _refusal(metadata: dict[str, Any] | None, configured: dict[str, Any], decode: bool) -> str:
    """Why a record with this metadata (None: a raw payload) must not be decoded, or ""."""
    described = configured if metadata is None else metadata["serializer"]
    if decode or safe_to_decode(described):
        return ""
    kind = described.get("type") if isinstance(described, dict) else described
    return (
        f"not decoded: it is serialized with {kind!r}, and decoding it runs code the record "
        "holds; pass --decode if you trust this storage"
    )


def head_check(
    store: ResultStore, info: RecordInfo, decode: bool
) -> tuple[dict[str, Any] | None, str]:
    """The metadata of the record ``info`` describes, as its head states it (None for a
    raw payload or a damaged head), and why its value must not be read ("" if it may),
    from the head alone."""
    from moorage.errors import RecordCorrupted
    from moorage.operations import run_sync
    from moorage.store.reading import head_op

    key = info.key
    if info.format == "damaged":
        return None, f"not read: the record is damaged: {info.problem}"
    try:
        parsed = run_sync(head_op(store, listed_storage(store), key))
    except RecordCorrupted as exc:
        return None, f"not read: {exc}"
    metadata = None if parsed is None else parsed.metadata.to_dict()
    if info.expired:
        return metadata, "not read: the record has expired (the store reads no expired record)"
    return metadata, _refusal(metadata, store.serializer.to_dict(), decode)


def read_value(store: ResultStore, key: str, decode: bool) -> Any:
    """The record's value, read whole and decoded, the record judged again on the bytes
    decoded: `Refused` if those may not be decoded (or have expired meanwhile)."""
    from moorage.format.codec import decode_payload, decode_raw

    trust = store._trust()
    storage = store._storage()
    parsed, payload = _stored(store, key)
    configured = store.serializer
    if parsed is None:
        reason = _refusal(None, configured.to_dict(), decode)
    else:
        if parsed.metadata.is_expired():
            raise Refused("not read: the record has expired since it was looked at")
        reason = _refusal(parsed.metadata.to_dict(), configured.to_dict(), decode)
    if reason:
        raise Refused(reason + " (it was replaced while being read)")
    if parsed is None:
        return decode_raw(payload, key, storage.url, configured, trust).value
    return decode_payload(parsed, payload, key, storage.url, trust, configured).value


def _stored(store: ResultStore, key: str) -> tuple[ParsedMetadata | None, Any]:
    """The record's verified metadata (None for a raw payload) and its payload bytes,
    undecoded, as stored: one object, or metadata and payload apart."""
    from moorage.errors import PayloadMissing, RecordNotFound
    from moorage.format.codec import parse_metadata_blob, split_record
    from moorage.store.reading import payload_keys

    trust = store._trust()
    storage = store._storage()
    if store.metadata_storage is None:
        return split_record(storage.read_path(key), key, storage.url, trust)
    metadata_storage = store.metadata_storage
    blob = metadata_storage.read_path(key)
    parsed = parse_metadata_blob(blob, key, metadata_storage.url, trust)
    if parsed.prefect_text is not None:
        return parsed, parsed.prefect_text
    candidates = payload_keys(parsed.metadata, key, storage)
    for candidate in candidates:
        try:
            return parsed, storage.read_path(candidate)
        except RecordNotFound:
            continue
    raise PayloadMissing(
        f"the metadata of record {key!r} is in {metadata_storage.url}, but its payload is "
        f"missing from {storage.url} (looked under {', '.join(map(repr, candidates))}); "
        "write the record again"
    )
