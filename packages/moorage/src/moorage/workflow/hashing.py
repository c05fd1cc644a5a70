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
from typing import Any

import cloudpickle

__all__ = ["UnhashableValue", "stable_hash"]

_MAX_DEPTH = 200


class UnhashableValue(TypeError):
    """A value has no stable encoding (it cannot even be pickled)."""


def stable_hash(*values: Any) -> str:
    """A 32-character hex digest of ``values``, the same in every process."""
    out: list[bytes] = []
    for value in values:
        _encode(value, out, 0)
    return hashlib.blake2b(b"".join(out), digest_size=16).hexdigest()


# The encoding is a sequence of chunks: a one-letter type tag, the data's length in
# decimal and a colon, then the data (``s5:hello``), so no two values share an encoding.
# Chunks are collected in a list and hashed once: feeding BLAKE2b many small updates
# costs more than joining them.


def _chunk(out: list[bytes], tag: bytes, data: bytes) -> None:
    out.append(b"%s%d:" % (tag, len(data)))
    out.append(data)


def _digest(value: Any, depth: int) -> bytes:
    out: list[bytes] = []
    _encode(value, out, depth)
    return hashlib.blake2b(b"".join(out), digest_size=16).digest()


def _name(value: Any) -> bytes:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}".encode()


def _encode(value: Any, out: list[bytes], depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise UnhashableValue(f"value nested deeper than {_MAX_DEPTH} levels (a cycle?)")
    depth += 1
    kind = type(value)
    if kind is str:  # the two commonest types are written inline: calls cost here
        data = value.encode("utf-8", "surrogatepass")
        out.append(b"s%d:" % len(data))
        out.append(data)
    elif kind is int:
        data = b"%d" % value
        out.append(b"i%d:" % len(data))
        out.append(data)
    elif value is None:
        out.append(b"N")
    elif kind is bool:
        out.append(b"T" if value else b"F")
    elif kind is float:
        _chunk(out, b"f", value.hex().encode())
    elif kind in (list, tuple):
        out.append(b"%s%d:" % (b"l" if kind is list else b"t", len(value)))
        for item in value:
            _encode(item, out, depth)
    elif kind is dict:
        _encode_dict(value, out, depth)
    elif kind in (bytes, bytearray, memoryview):
        _chunk(out, b"b", bytes(value))
    elif isinstance(value, enum.Enum):
        _chunk(out, b"e", _name(value) + b":" + value.name.encode())
    elif kind in (set, frozenset):
        if set(map(type, value)) <= {str}:  # ordered by the strings themselves
            out.append(b"z%d:" % len(value))
            for item in sorted(value):
                _encode(item, out, depth)
        else:  # mixed types do not sort: order the members by their own hashes
            _chunk(out, b"S", b"".join(sorted(_digest(item, depth) for item in value)))
    elif isinstance(value, (dt.datetime, dt.date, dt.time)):
        _chunk(out, b"D", _name(value) + b":" + value.isoformat().encode())
    elif isinstance(value, (dt.timedelta, uuid.UUID, decimal.Decimal, pathlib.PurePath)):
        _chunk(out, b"V", _name(value) + b":" + str(value).encode())
    else:
        _encode_object(value, out, depth)


def _encode_dict(value: dict[Any, Any], out: list[bytes], depth: int) -> None:
    if set(map(type, value)) <= {str}:  # the common case: order by the keys
        out.append(b"m%d:" % len(value))
        for key in sorted(value):
            data = key.encode("utf-8", "surrogatepass")
            out.append(b"s%d:" % len(data))
            out.append(data)
            _encode(value[key], out, depth)
    else:  # keys of mixed types do not sort: order the entries by their hashes
        pairs = sorted(_digest(k, depth) + _digest(v, depth) for k, v in value.items())
        _chunk(out, b"d", b"".join(pairs))


def _encode_object(value: Any, out: list[bytes], depth: int) -> None:
    dump = getattr(value, "model_dump", None)
    if callable(dump) and hasattr(type(value), "model_fields"):  # a pydantic model
        _chunk(out, b"M", _name(value))
        _encode(dump(mode="python"), out, depth)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        _chunk(out, b"C", _name(value))
        for field in dataclasses.fields(value):
            _encode((field.name, getattr(value, field.name)), out, depth)
    elif all(hasattr(value, attr) for attr in ("dtype", "shape", "tobytes")):  # NumPy & co.
        _chunk(out, b"A", _name(value) + f":{value.dtype}:{tuple(value.shape)}".encode())
        _chunk(out, b"b", value.tobytes())
    else:
        try:
            data = cloudpickle.dumps(value, protocol=5)
        except Exception as exc:
            raise UnhashableValue(
                f"cannot hash a {type(value).__qualname__} value for a cache key: it is "
                f"not a common type and cannot be pickled ({exc})"
            ) from exc
        _chunk(out, b"p", data)
