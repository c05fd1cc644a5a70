"""Reading a record's value for ``show`` and ``get`` only when decoding it runs no stored
code, or when the user said ``--decode``.

The decision is made twice: first from the record's head alone (cheap: a refused
record's payload is never read), then by the store on the very bytes it decodes
(``ResultStore.read(key, allow=Serializer.runs_no_code)``). The second look matters: a
record replaced by a pickle record between the head read and the payload read is judged
by what is actually decoded, not by what was there before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moorage.cli.stores import listed_storage, safe_to_decode

if TYPE_CHECKING:
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
    """The record's value, read by the store, which asks again on the bytes it decodes
    whether their serializer runs no code (unless ``decode``): `Refused` if not."""
    from moorage.errors import DecodeRefused, RecordExpired
    from moorage.serializers.base import Serializer

    try:
        return store.read(key, allow=None if decode else Serializer.runs_no_code).result
    except RecordExpired:
        raise Refused("not read: the record has expired since it was looked at") from None
    except DecodeRefused:
        kind = store.info(key).serializer
        raise Refused(
            f"not decoded: it is serialized with {kind!r} (it was replaced while being read), "
            "and decoding it runs code the record holds; pass --decode if you trust this storage"
        ) from None
