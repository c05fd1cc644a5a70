"""What a listing says about each stored object: its key, size, last modification and,
on backends whose listing carries object metadata, the expiration moorage wrote there.

`Storage.list_entries` yields them a page at a time, so a listing of a million objects
never sits in memory whole; each backend fills in what its listing gives for free (a
size and a time from an object store's listing, or from ``stat`` on local disk).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = [
    "EXPIRY_METADATA_KEY",
    "LIST_PAGE_SIZE",
    "StorageEntry",
    "expiry_stamp",
    "listed_entry",
]

#: How many entries a page of `Storage.list_entries` holds at most, by default (the most
#: S3, GCS and Azure return per listing request).
LIST_PAGE_SIZE = 1000


#: The name of the object metadata item in which a backend with
#: `moorage.storage.Storage.lists_expiration` keeps a record's expiry stamp (a service
#: that refuses the hyphen uses its nearest form: Azure's is ``moorage_expires``).
EXPIRY_METADATA_KEY = "moorage-expires"
#: The stamp of a record that never expires.
NEVER = "never"
_STAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_STAMP_LENGTH = len("2026-12-05T11:33:03.123456Z")


def expiry_stamp(expiration: dt.datetime | None) -> str:
    """The text kept in object metadata for a record's expiration: an ISO 8601 UTC
    moment with microseconds, or ``never``. Backends store it as they are given it
    (the ``expiry=`` argument of their writes) and hand it back to `listed_entry`."""
    if expiration is None:
        return NEVER
    if expiration.tzinfo is None:
        raise ValueError(f"an expiry stamp needs an aware datetime, got {expiration!r}")
    return expiration.astimezone(dt.UTC).strftime(_STAMP_FORMAT)


def _parse_stamp(stamp: object) -> tuple[bool, dt.datetime | None]:
    """``(listed, expiration)`` from a stamp found in a listing. Anything but a well
    formed stamp (metadata set by another tool, or damaged) counts as not listed, so
    the store reads the record's head instead of trusting it."""
    if stamp == NEVER:
        return True, None
    if not isinstance(stamp, str) or len(stamp) != _STAMP_LENGTH:
        return False, None
    try:
        moment = dt.datetime.strptime(stamp, _STAMP_FORMAT)
    except ValueError:
        return False, None
    return True, moment.replace(tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class StorageEntry:
    """One stored object: ``key`` (relative to the storage's root), ``size`` in bytes and
    ``modified`` (UTC), each None where the backend cannot tell without another request.

    ``expiry_listed`` is True when the listing itself says when the object's record
    expires (a backend with `Storage.lists_expiration`, for an object written with
    ``expiration=``); ``expiration`` is then that moment (UTC), or None for a record
    that never expires. When ``expiry_listed`` is False, ``expiration`` means nothing:
    only the record's head can tell.
    """

    key: str
    size: int | None = None
    modified: dt.datetime | None = None
    expiration: dt.datetime | None = None
    expiry_listed: bool = False


def listed_entry(
    key: str,
    size: int | None,
    modified: dt.datetime | None,
    stamp: object,
) -> StorageEntry:
    """A `StorageEntry` for a listed object whose metadata held ``stamp`` (the value
    under `EXPIRY_METADATA_KEY`, or None where it had none)."""
    listed, expiration = _parse_stamp(stamp)
    return StorageEntry(key, size, modified, expiration, listed)
