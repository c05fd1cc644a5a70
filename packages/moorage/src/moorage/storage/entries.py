"""What a listing says about each stored object: its key, size and last modification.

`Storage.list_entries` yields them a page at a time, so a listing of a million objects
never sits in memory whole; each backend fills in what its listing gives for free (a
size and a time from an object store's listing, or from ``stat`` on local disk).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = ["LIST_PAGE_SIZE", "StorageEntry"]

#: How many entries a page of `Storage.list_entries` holds at most, by default (the most
#: S3, GCS and Azure return per listing request).
LIST_PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class StorageEntry:
    """One stored object: ``key`` (relative to the storage's root), ``size`` in bytes and
    ``modified`` (UTC), each None where the backend cannot tell without another request."""

    key: str
    size: int | None = None
    modified: dt.datetime | None = None
