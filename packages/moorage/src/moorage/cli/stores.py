"""Which store a command works on: the configured one, or one on a storage given by URL,
path or name; and what of a record may be decoded without running code."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from moorage.storage import Storage
    from moorage.store.store import ResultStore

__all__ = ["listed_storage", "open_store", "pick_storage", "safe_to_decode"]


def pick_storage(argument: str | None, option: str | None) -> str | None:
    """The storage named by a STORAGE argument or ``--storage``; both is a usage mistake."""
    if argument is not None and option is not None and argument != option:
        raise click.UsageError(f"give the storage once: {argument!r} or --storage {option!r}")
    return argument if argument is not None else option


def open_store(storage: str | None) -> ResultStore:
    """The configured store, or one on ``storage`` (a URL, a path or a storage's name)
    with the other settings as configured."""
    from moorage.store.store import ResultStore

    return ResultStore() if storage is None else ResultStore(result_storage=storage)


def listed_storage(store: ResultStore) -> Storage:
    """Where the store's records are listed (and their heads kept): its metadata storage
    if it has one, else its result storage."""
    return store.metadata_storage or store._storage()


def safe_to_decode(description: Any) -> bool:
    """Whether a record whose serializer is ``description`` (a `Serializer` or its
    ``to_dict()``) decodes without running code: `Serializer.runs_no_code` decides
    (json, msgpack, or a compressed serializer around one of them). A description that
    names no known serializer is not safe."""
    from moorage.errors import MoorageError
    from moorage.serializers.fields import coerce_serializer

    try:
        return coerce_serializer(description).runs_no_code()
    except (MoorageError, TypeError, ValueError):
        return False
