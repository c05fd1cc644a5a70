"""Expiry, in one place: when a record expires, whether it has, and the error that says so.

The store turns a caller's ``expiration`` (a moment, or a duration from now) into a moment
with `absolute_expiration`; readers refuse an expired record with `check_fresh` before its
payload is decoded; `ResultRecordMetadata.is_expired` answers for probes and caches.
"""

from __future__ import annotations

import datetime as dt

from moorage.errors import RecordExpired

__all__ = ["absolute_expiration", "check_fresh", "expired", "is_expired", "utc"]


def utc(value: dt.datetime) -> dt.datetime:
    """``value`` in UTC; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def absolute_expiration(value: dt.datetime | dt.timedelta | None) -> dt.datetime | None:
    """The moment a record written now expires: ``value`` itself, or now plus a duration."""
    if isinstance(value, dt.timedelta):
        return dt.datetime.now(dt.UTC) + value
    return value


def is_expired(expiration: dt.datetime | None, now: dt.datetime | None = None) -> bool:
    """Whether a record expiring at ``expiration`` (never, for None) has expired at ``now``
    (default: the current time)."""
    if expiration is None:
        return False
    return (now or dt.datetime.now(dt.UTC)) >= expiration


def expired(key: str, where: str, expiration: dt.datetime | None) -> RecordExpired:
    """The error for record ``key`` in ``where`` read after its expiration."""
    return RecordExpired(
        f"record {key!r} in {where} expired at {expiration:%Y-%m-%dT%H:%M:%SZ}; "
        "compute the value again and write it"
    )


def check_fresh(key: str, where: str, expiration: dt.datetime | None) -> None:
    """Raise `RecordExpired` for a record past its expiration."""
    if is_expired(expiration):
        raise expired(key, where, expiration)
