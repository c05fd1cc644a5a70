"""The msgpack extension types of the ``msgpack`` serializer: their codes, and how each
type beyond msgpack's own is held in its extension's data, both ways.

The codes are a stored format: once written, a code keeps its meaning forever. A new
type gets a new code; an existing code's data never changes shape. Tuples, sets and
frozensets have codes too, for the empty markers that start their arrays (see
`moorage_msgpack.packing`).
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import re
import struct
import sys
import uuid
import zoneinfo
from collections.abc import Callable
from enum import IntEnum
from typing import Any, NamedTuple, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["SCALARS", "ExtCode", "Scalar", "encode_bigint"]


class ExtCode(IntEnum):
    """msgpack extension type codes, and what each one's data holds. Text is UTF-8."""

    #: ``isoformat()``'s ISO 8601 text (``2024-09-01T12:00:30.123456+02:00``, no offset
    #: when naive), then ``[Europe/Paris]`` when the tzinfo is a `zoneinfo.ZoneInfo` (as
    #: RFC 9557 writes zones), then ``[fold=1]`` when ``fold`` is 1.
    DATETIME = 1
    #: ``isoformat()``'s ISO 8601 text, ``2024-02-29``.
    DATE = 2
    #: text as for datetimes: ``08:15:00.000001+02:00``, ``08:15:00[Asia/Tokyo]``.
    TIME = 3
    #: 12 bytes, big-endian: days (signed 32-bit), seconds and microseconds (unsigned
    #: 32-bit), as `datetime.timedelta` normalises them.
    TIMEDELTA = 4
    #: the 16 bytes of ``UUID.bytes``.
    UUID = 5
    #: ``str(value)`` in ASCII: ``1.10``, ``-1.2E+5``, ``NaN``, ``-sNaN7``, ``Infinity``.
    DECIMAL = 6
    #: an int outside msgpack's range (-2**63 .. 2**64-1): two's complement, big-endian,
    #: in the fewest bytes that keep the sign.
    BIGINT = 7
    #: no data; the first item of a native array that holds a tuple's items after it.
    TUPLE = 8
    #: no data; the first item of a native array that holds a set's items after it.
    SET = 9
    #: no data; the first item of a native array that holds a frozenset's items after it.
    FROZENSET = 10


class Scalar(NamedTuple):
    """A type stored as one extension: its code, and its data both ways."""

    code: ExtCode
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]


# -- datetimes, dates and times: ISO 8601 text with RFC 9557-style suffixes ------------------

_FOLD = "[fold=1]"


def _encode_moment(value: dt.datetime | dt.time) -> bytes:
    text = value.isoformat()
    tz = value.tzinfo
    if isinstance(tz, ZoneInfo) and tz.key is not None:
        text = f"{text}[{tz.key}]"
    if value.fold:
        text += _FOLD
    return text.encode()


def _split_suffixes(text: str) -> tuple[str, str | None, int]:
    """``(iso text, zone key or None, fold)`` from a datetime's or time's text."""
    fold = 0
    if text.endswith(_FOLD):
        text, fold = text[: -len(_FOLD)], 1
    key = None
    if text.endswith("]"):
        start = text.rindex("[")
        text, key = text[:start], text[start + 1 : -1]
    return text, key, fold


#: A zone key as the tz database spells them (``America/Argentina/Buenos_Aires``,
#: ``Etc/GMT+5``): no dots, so it can only ever name a file, never a module path.
_ZONE_KEY = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*")
_ZONES: dict[str, ZoneInfo] = {}


def _zone(key: str) -> ZoneInfo | None:
    """The zone ``key``, where it can be had without importing a module: zoneinfo imports
    the ``tzdata`` package for a zone the system's zone files lack, and the key comes from
    data, so a ``tzdata`` planted on ``sys.path`` would run. Found in the system's zone
    files, or in tzdata once something else imported it; else None. `ValueError` for
    text that is no zone key."""
    zone = _ZONES.get(key)
    if zone is not None:
        return zone
    if len(key) > 255 or not _ZONE_KEY.fullmatch(key):
        raise ValueError(f"{key!r} is not a time zone key")
    if "tzdata" not in sys.modules and not any(
        os.path.isfile(os.path.join(root, key)) for root in zoneinfo.TZPATH
    ):
        return None
    try:
        zone = ZoneInfo(key)
    except ZoneInfoNotFoundError:
        return None
    if len(_ZONES) < 1024:
        _ZONES[key] = zone
    return zone


def _zoned(value: Any, key: str | None) -> Any:
    """``value`` (a datetime or time) in the zone ``key`` where this machine knows it and
    its rules give the stored offset; else ``value`` as it is (the instant wins)."""
    if key is None:
        return value
    zone = _zone(key)
    if zone is None:
        return value
    zoned = value.replace(tzinfo=zone)
    offset = value.utcoffset()
    return zoned if offset is None or zoned.utcoffset() == offset else value


#: A UTC offset with microseconds, as ``isoformat`` writes one (``+05:30:00.000001``).
_FINE_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2}):(\d{2})\.(\d{6})$")


def _exact_offset(text: str) -> dt.timezone | None:
    """The offset at the end of ``text`` when it has microseconds, which Python 3.11's
    ``fromisoformat`` drops (it reads ``+00:00:00.000001`` as UTC); else None."""
    found = _FINE_OFFSET.search(text)
    if found is None:
        return None
    sign, hours, minutes, seconds, micros = found.groups()
    offset = dt.timedelta(
        hours=int(hours), minutes=int(minutes), seconds=int(seconds), microseconds=int(micros)
    )
    return dt.timezone(-offset if sign == "-" else offset)


_Moment = TypeVar("_Moment", dt.datetime, dt.time)


def _decode_moment(data: bytes, parse: Callable[[str], _Moment]) -> _Moment:
    """A datetime or time from its text: offset (to the microsecond), fold and zone."""
    text, key, fold = _split_suffixes(data.decode())
    value = parse(text)
    if (exact := _exact_offset(text)) is not None:
        value = value.replace(tzinfo=exact)
    if fold:
        value = value.replace(fold=1)
    zoned: _Moment = _zoned(value, key)
    return zoned


def _decode_datetime(data: bytes) -> dt.datetime:
    return _decode_moment(data, dt.datetime.fromisoformat)


def _decode_time(data: bytes) -> dt.time:
    return _decode_moment(data, dt.time.fromisoformat)


# -- the other scalars -----------------------------------------------------------------------

_TIMEDELTA = struct.Struct(">iII")


def _decode_timedelta(data: bytes) -> dt.timedelta:
    days, seconds, micros = _TIMEDELTA.unpack(data)
    return dt.timedelta(days=days, seconds=seconds, microseconds=micros)


def _decode_decimal(data: bytes) -> decimal.Decimal:
    text = data.decode("ascii")
    value = decimal.Decimal(text)  # exact, whatever the context's precision
    # Where the caller's context does not trap InvalidOperation, junk becomes NaN.
    if value.is_nan() and "nan" not in text.lower():
        raise ValueError(f"not a decimal number: {text!r}")
    return value


def encode_bigint(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True)


def _decode_bigint(data: bytes) -> int:
    if not data:
        raise ValueError("no bytes")
    return int.from_bytes(data, "big", signed=True)


SCALARS: dict[type, Scalar] = {
    dt.datetime: Scalar(ExtCode.DATETIME, _encode_moment, _decode_datetime),
    dt.date: Scalar(
        ExtCode.DATE, lambda v: v.isoformat().encode(), lambda d: dt.date.fromisoformat(d.decode())
    ),
    dt.time: Scalar(ExtCode.TIME, _encode_moment, _decode_time),
    dt.timedelta: Scalar(
        ExtCode.TIMEDELTA,
        lambda v: _TIMEDELTA.pack(v.days, v.seconds, v.microseconds),
        _decode_timedelta,
    ),
    uuid.UUID: Scalar(ExtCode.UUID, lambda v: v.bytes, lambda d: uuid.UUID(bytes=d)),
    decimal.Decimal: Scalar(ExtCode.DECIMAL, lambda v: str(v).encode("ascii"), _decode_decimal),
    int: Scalar(ExtCode.BIGINT, encode_bigint, _decode_bigint),
}
