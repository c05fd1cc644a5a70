"""Stable hashes of Python values, for cache keys that hold across processes and runs.

`stable_hash` feeds a canonical, type-tagged encoding of a value to BLAKE2b. The same
value gives the same hash in every process: dict and set order do not matter (entries
are sorted by their own hashes, so ``PYTHONHASHSEED`` has no effect), ``1``, ``1.0``,
``True`` and ``"1"`` differ, and a tuple differs from a list. Common types are encoded
by value: ``None``, bool, int, float, str, bytes, list, tuple, dict, set, frozenset,
datetime, date, time, timedelta, UUID, Decimal, paths, enums, pydantic models,
dataclasses and array-likes with ``dtype``/``shape``/``tobytes`` (NumPy). Anything else
is hashed by its cloudpickle bytes, which is stable for plain objects built the same
way; a value that cannot be pickled raises `UnhashableValue`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import hashlib
import pathlib
import uuid
from typing import Any, Protocol

import cloudpickle

__all__ = ["UnhashableValue", "stable_hash"]

_MAX_DEPTH = 200


class UnhashableValue(TypeError):
    """A value has no stable encoding (it cannot even be pickled)."""


class _Sink(Protocol):
    def update(self, data: bytes, /) -> None: ...


def stable_hash(*values: Any) -> str:
    """A 32-character hex digest of ``values``, the same in every process."""
    sink = hashlib.blake2b(digest_size=16)
    for value in values:
        _feed(sink, value, 0)
    return sink.hexdigest()


def _chunk(sink: _Sink, tag: bytes, data: bytes) -> None:
    sink.update(tag + len(data).to_bytes(8, "little") + data)


def _digest(value: Any, depth: int) -> bytes:
    sink = hashlib.blake2b(digest_size=16)
    _feed(sink, value, depth)
    return sink.digest()


def _name(value: Any) -> bytes:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}".encode()


def _feed(sink: _Sink, value: Any, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise UnhashableValue(f"value nested deeper than {_MAX_DEPTH} levels (a cycle?)")
    depth += 1
    kind = type(value)
    if value is None:
        sink.update(b"N")
    elif kind is bool:
        sink.update(b"T" if value else b"F")
    elif kind is int:
        _chunk(sink, b"i", str(value).encode())
    elif kind is float:
        _chunk(sink, b"f", value.hex().encode())
    elif kind is str:
        _chunk(sink, b"s", value.encode("utf-8", "surrogatepass"))
    elif kind in (bytes, bytearray, memoryview):
        _chunk(sink, b"b", bytes(value))
    elif isinstance(value, enum.Enum):
        _chunk(sink, b"e", _name(value) + b":" + value.name.encode())
    elif kind in (list, tuple):
        _chunk(sink, b"l" if kind is list else b"t", str(len(value)).encode())
        for item in value:
            _feed(sink, item, depth)
    elif kind is dict:
        pairs = sorted(_digest(k, depth) + _digest(v, depth) for k, v in value.items())
        _chunk(sink, b"d", b"".join(pairs))
    elif kind in (set, frozenset):
        _chunk(sink, b"S", b"".join(sorted(_digest(item, depth) for item in value)))
    elif isinstance(value, (dt.datetime, dt.date, dt.time)):
        _chunk(sink, b"D", _name(value) + b":" + value.isoformat().encode())
    elif isinstance(value, (dt.timedelta, uuid.UUID, decimal.Decimal, pathlib.PurePath)):
        _chunk(sink, b"V", _name(value) + b":" + str(value).encode())
    else:
        _feed_object(sink, value, depth)


def _feed_object(sink: _Sink, value: Any, depth: int) -> None:
    dump = getattr(value, "model_dump", None)
    if callable(dump) and hasattr(type(value), "model_fields"):  # a pydantic model
        _chunk(sink, b"M", _name(value))
        _feed(sink, dump(mode="python"), depth)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        _chunk(sink, b"C", _name(value))
        for field in dataclasses.fields(value):
            _feed(sink, (field.name, getattr(value, field.name)), depth)
    elif all(hasattr(value, attr) for attr in ("dtype", "shape", "tobytes")):  # NumPy & co.
        _chunk(sink, b"A", _name(value) + f":{value.dtype}:{tuple(value.shape)}".encode())
        _chunk(sink, b"b", value.tobytes())
    else:
        try:
            data = cloudpickle.dumps(value, protocol=5)
        except Exception as exc:
            raise UnhashableValue(
                f"cannot hash a {type(value).__qualname__} value for a cache key: it is "
                f"not a common type and cannot be pickled ({exc})"
            ) from exc
        _chunk(sink, b"p", data)
