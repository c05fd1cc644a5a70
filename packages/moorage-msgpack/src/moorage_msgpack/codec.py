"""The wire format of the ``msgpack`` serializer.

Plain values are native msgpack: nil, booleans, integers, floats, UTF-8 strings (str),
bin (bytes), arrays (list) and maps (dict, with keys of any supported type). The other
supported types are msgpack extension types, listed in `ExtCode`.

Tuples, sets and frozensets are native arrays whose first item is an empty *marker*
extension. They are never an extension wrapping a packed array: decoding such nested
payloads would re-enter the unpacker once per level, and each level takes a large C
stack frame, so a deep payload could crash the reader. With markers the whole payload is
decoded in one pass, within msgpack's own nesting limit.

The codes are a stored format: once written, a code keeps its meaning forever. A new
type gets a new code; an existing code's data never changes shape. Decoding a code this
version does not know raises `moorage.SerializationError`, never a guess.
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

import msgpack  # type: ignore[import-untyped, unused-ignore]

from moorage.errors import SerializationError
from moorage.serializers.json_values import qualified_name

__all__ = ["SUPPORTED", "ExtCode", "Packer", "decode", "encode"]


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


#: What the serializer encodes, for error messages.
SUPPORTED = (
    "None, bool, int, float, str, bytes, list, dict, tuple, set, frozenset, datetime, "
    "date, time, timedelta, UUID and Decimal"
)

_NATIVE_INT_MIN = -(2**63)
_NATIVE_INT_MAX = 2**64 - 1

#: ``ExtType((code, data))`` without re-checking arguments that are valid by construction.
_ext_type: Callable[[tuple[int, bytes]], Any] = msgpack.ExtType._make


class _Scalar(NamedTuple):
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


def _encode_bigint(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True)


def _decode_bigint(data: bytes) -> int:
    if not data:
        raise ValueError("no bytes")
    return int.from_bytes(data, "big", signed=True)


_SCALARS: dict[type, _Scalar] = {
    dt.datetime: _Scalar(ExtCode.DATETIME, _encode_moment, _decode_datetime),
    dt.date: _Scalar(
        ExtCode.DATE, lambda v: v.isoformat().encode(), lambda d: dt.date.fromisoformat(d.decode())
    ),
    dt.time: _Scalar(ExtCode.TIME, _encode_moment, _decode_time),
    dt.timedelta: _Scalar(
        ExtCode.TIMEDELTA,
        lambda v: _TIMEDELTA.pack(v.days, v.seconds, v.microseconds),
        _decode_timedelta,
    ),
    uuid.UUID: _Scalar(ExtCode.UUID, lambda v: v.bytes, lambda d: uuid.UUID(bytes=d)),
    decimal.Decimal: _Scalar(ExtCode.DECIMAL, lambda v: str(v).encode("ascii"), _decode_decimal),
    int: _Scalar(ExtCode.BIGINT, _encode_bigint, _decode_bigint),
}

# -- tuples, sets, frozensets: marked arrays -------------------------------------------------


class _Marker:
    """What a container's marker extension decodes to, until its array is complete."""

    __slots__ = ("build", "code", "name")

    def __init__(self, code: ExtCode, cls: type) -> None:
        self.code = code
        self.build: Callable[[list[Any]], Any] = cls
        self.name = qualified_name(cls)

    def __repr__(self) -> str:
        return f"<msgpack marker of a {self.name}>"


_CONTAINERS: dict[type, tuple[ExtCode, Any]] = {
    tuple: (ExtCode.TUPLE, _ext_type((ExtCode.TUPLE, b""))),
    set: (ExtCode.SET, _ext_type((ExtCode.SET, b""))),
    frozenset: (ExtCode.FROZENSET, _ext_type((ExtCode.FROZENSET, b""))),
}
_MARKERS: dict[int, _Marker] = {code: _Marker(code, cls) for cls, (code, _) in _CONTAINERS.items()}


# -- encoding --------------------------------------------------------------------------------


def _plain_int(value: int) -> Any:
    exact = int.__int__(value)
    if _NATIVE_INT_MIN <= exact <= _NATIVE_INT_MAX:
        return exact
    return _ext_type((ExtCode.BIGINT, _encode_bigint(exact)))


#: With ``strict_types=False``: subclasses of natively packed types, as their base type.
_DOWNCASTS: dict[type, Callable[[Any], Any]] = {
    int: _plain_int,
    float: float.__float__,
    str: str.__str__,
    bytes: bytes.__bytes__,
    bytearray: bytes,
    list: list,
    dict: dict,
}


def _as(base: type, value: Any) -> Any:
    """``value`` in the form msgpack packs for the supported type ``base``."""
    scalar = _SCALARS.get(base)
    if scalar is not None:
        return _ext_type((scalar.code, scalar.encode(value)))
    container = _CONTAINERS.get(base)
    if container is not None:
        return [container[1], *value]
    return _DOWNCASTS[base](value)


class Packer:
    """Packs values to msgpack bytes; see `ExtCode` for the types beyond msgpack's own.

    ``strict_types`` refuses subclasses of the supported types (an ``OrderedDict``, an
    ``IntEnum``, a named tuple) instead of storing them as their base type.
    """

    def __init__(self, strict_types: bool = True) -> None:
        self.strict_types = strict_types

    def pack(self, value: Any) -> bytes:
        # msgpack's strict_types=True keeps it from packing tuples (and subclasses) as
        # arrays: every type it does not pack exactly comes to `_default`.
        data: bytes = msgpack.packb(
            value, default=self._default, use_bin_type=True, strict_types=True, datetime=False
        )
        return data

    def _default(self, value: Any) -> Any:
        cls = type(value)
        if cls in _SCALARS or cls in _CONTAINERS:
            return _as(cls, value)
        for base in cls.__mro__[1:]:
            if base in _SCALARS or base in _CONTAINERS or base in _DOWNCASTS:
                break
        else:
            raise SerializationError(
                f"the msgpack serializer cannot encode a {qualified_name(cls)}; it handles "
                f"{SUPPORTED}. Use serializer='pickle' for other objects"
            )
        if self.strict_types:
            raise SerializationError(
                f"the msgpack serializer does not encode a {qualified_name(cls)}, a subclass "
                f"of {base.__qualname__}, with strict_types=True (the default), so that "
                "nothing comes back as another type. Use MsgpackSerializer(strict_types="
                f"False) to store it as a plain {base.__qualname__}, or serializer='pickle' "
                "to keep its type"
            )
        return _as(base, value)


_PACKERS = {True: Packer(strict_types=True), False: Packer(strict_types=False)}


def encode(value: Any, strict_types: bool = True) -> bytes:
    """``value`` as msgpack bytes; `SerializationError` for what cannot be encoded."""
    try:
        return _PACKERS[strict_types].pack(value)
    except SerializationError:
        raise
    except Exception as exc:  # e.g. a str with lone surrogates
        # msgpack raises ValueError past its nesting limit.
        if isinstance(exc, RecursionError) or "recursion limit" in str(exc):
            why = "it is nested too deeply, or a container holds itself"
        else:
            why = str(exc)
        raise SerializationError(
            f"the msgpack serializer cannot encode a {qualified_name(type(value))}: {why}"
        ) from exc


# -- decoding --------------------------------------------------------------------------------


def _malformed(name: str, code: int, exc: Exception) -> SerializationError:
    return SerializationError(
        f"the msgpack payload holds a malformed {name} (extension type {code}): {exc!r}"
    )


_SCALAR_DECODERS: dict[int, tuple[str, Callable[[bytes], Any]]] = {
    scalar.code: (qualified_name(cls), scalar.decode) for cls, scalar in _SCALARS.items()
}


class _Decoding:
    """The hooks of one `decode` call; counts markers not yet turned into containers."""

    __slots__ = ("open_markers",)

    def __init__(self) -> None:
        self.open_markers = 0

    def ext_hook(self, code: int, data: bytes) -> Any:
        marker = _MARKERS.get(code)
        if marker is not None:
            if data:
                raise _malformed(marker.name, code, ValueError("a marker has no data"))
            self.open_markers += 1
            return marker
        known = _SCALAR_DECODERS.get(code)
        if known is None:
            raise SerializationError(
                f"the msgpack payload holds extension type {code}, which this version of "
                "moorage-msgpack does not know; it was written by a newer moorage-msgpack "
                "or another program. Upgrade moorage-msgpack, or read the record where it "
                "was written"
            )
        name, decoder = known
        try:
            return decoder(data)
        except Exception as exc:
            raise _malformed(name, code, exc) from exc

    def list_hook(self, items: list[Any]) -> Any:
        if not items:
            return items
        marker = items[0]
        if type(marker) is not _Marker:
            return items
        self.open_markers -= 1
        del items[0]
        try:
            return marker.build(items)
        except TypeError as exc:  # an unhashable set member
            raise _malformed(marker.name, marker.code, exc) from exc


def decode(data: Any) -> Any:
    """The value packed in ``data``; `SerializationError` for a malformed payload."""
    hooks = _Decoding()
    try:
        value = msgpack.unpackb(
            data,
            ext_hook=hooks.ext_hook,
            list_hook=hooks.list_hook,
            raw=False,
            strict_map_key=False,
            timestamp=3,
        )
    except SerializationError:
        raise
    except Exception as exc:
        raise SerializationError(f"the payload is not valid msgpack: {exc!r}") from exc
    if hooks.open_markers:
        raise SerializationError(
            "the msgpack payload holds a tuple or set marker (extension type 8, 9 or 10) "
            "that does not start an array; it was not written by moorage-msgpack"
        )
    return value
