"""Stable hashes of Python values, for cache keys that hold across processes and runs.

`stable_hash` feeds a canonical, type-tagged encoding of a value to BLAKE2b. The same
value gives the same hash in every process: dict and set order do not matter (entries
are sorted by their own hashes, so ``PYTHONHASHSEED`` has no effect), ``1``, ``1.0``,
``True`` and ``"1"`` differ, and a tuple differs from a list.

How a value is encoded, in order:

1. Common types by value, inline: None, bool, int, float, str, bytes, list, tuple,
   dict, set, frozenset, datetime, date, time, timedelta, UUID, Decimal, paths, enums.
2. A hasher from the table of `moorage.keys.hashers` (NumPy, pandas, polars and
   pyarrow built in, pydantic models, dataclasses, attrs classes, file contents, and
   whatever plugins register): its representation is encoded, tagged with the type.
3. Functions and classes by qualified name (local ones and lambdas by their code too).
4. Any other object by what pickling would save (``__reduce_ex__``): its constructor by
   name, its arguments and its state, each encoded by these same rules, so a set inside
   an object is still ordered canonically. An object that cannot be pickled (a lock, an
   open file, a generator), or whose only content is its identity (no state, compared
   by identity), raises `UnhashableValue`: a key that differed per process, or that
   every such object shared, would be a guess.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import hashlib
import pathlib
import types
import uuid
from typing import Any

from moorage.errors import UnhashableValue
from moorage.keys.functions import function_material
from moorage.keys.hashers import hasher_table

__all__ = ["UnhashableValue", "describe", "stable_hash"]

_MAX_DEPTH = 200

#: Buffers from this size on are hashed where they lie, not joined with the rest.
_LARGE = 1 << 16


class _Out(list[Any]):
    """The encoding's chunks; ``large`` is set once a big buffer is among them."""

    __slots__ = ("large",)

    def __init__(self) -> None:
        super().__init__()
        self.large = False


def stable_hash(*values: Any) -> str:
    """A 32-character hex digest of ``values``, the same in every process."""
    out = _Out()
    for value in values:
        _encode(value, out, 0)
    digest: str = _finish(out).hexdigest()
    return digest


def _finish(out: _Out) -> Any:
    if not out.large:  # the common case: one join, one update
        return hashlib.blake2b(b"".join(out), digest_size=16)
    digest = hashlib.blake2b(digest_size=16)
    small: list[Any] = []
    for piece in out:
        if len(piece) < _LARGE:
            small.append(piece)
            continue
        if small:
            digest.update(b"".join(small))
            small.clear()
        digest.update(piece)
    digest.update(b"".join(small))
    return digest


# The encoding is a sequence of chunks: a one-letter type tag, the data's length in
# decimal and a colon, then the data (``s5:hello``), so no two values share an encoding.
# Chunks are collected in a list and hashed once: feeding BLAKE2b many small updates
# costs more than joining them.


def _chunk(out: _Out, tag: bytes, data: bytes) -> None:
    out.append(b"%s%d:" % (tag, len(data)))
    out.append(data)


def _buffer(out: _Out, data: bytes | bytearray | memoryview) -> None:
    """Bytes-like data, without a copy: a memoryview is hashed as it lies (C order)."""
    if type(data) is memoryview:
        if not data.c_contiguous:
            data = memoryview(data.tobytes())
        data = data.cast("B") if data.ndim != 1 or data.format != "B" else data
    size = len(data)
    out.append(b"b%d:" % size)
    out.append(data)
    if size >= _LARGE:
        out.large = True


def _digest(value: Any, depth: int) -> bytes:
    out = _Out()
    _encode(value, out, depth)
    digest: bytes = _finish(out).digest()
    return digest


def _name(value: Any) -> bytes:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}".encode()


def _encode(value: Any, out: _Out, depth: int) -> None:
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
        _buffer(out, value)
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


def _encode_dict(value: dict[Any, Any], out: _Out, depth: int) -> None:
    for key in value:  # a task's parameters come here on every call: no sets built
        if type(key) is not str:
            break
    else:  # the common case, every key a str: order by the keys
        out.append(b"m%d:" % len(value))
        for key in sorted(value) if len(value) > 1 else value:
            data = key.encode("utf-8", "surrogatepass")
            out.append(b"s%d:" % len(data))
            out.append(data)
            try:
                _encode(value[key], out, depth)
            except UnhashableValue as exc:
                exc.path.insert(0, key)  # where the value sits, for the message
                raise
        return
    # keys of mixed types do not sort: order the entries by their hashes
    pairs = sorted(_digest(k, depth) + _digest(v, depth) for k, v in value.items())
    _chunk(out, b"d", b"".join(pairs))


def _encode_object(value: Any, out: _Out, depth: int) -> None:
    entry = hasher_table().find(value)
    if entry is not None:
        try:
            representation = entry.hasher()(value)
        except UnhashableValue:
            raise
        except Exception as exc:
            raise UnhashableValue(
                f"the {entry.label} failed on a {type(value).__qualname__} value ({exc!r})"
            ) from exc
        _chunk(out, b"H", _name(value))
        _encode(representation, out, depth)
    elif isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)):
        _encode_function(value, out, depth)
    elif isinstance(value, types.MethodType):
        out.append(b"B")
        _encode_function(value.__func__, out, depth)
        _encode(value.__self__, out, depth)
    elif all(hasattr(value, attr) for attr in ("dtype", "shape", "tobytes")):
        # An array of a library with no hasher (CuPy, JAX): its dtype, shape and bytes.
        _chunk(out, b"A", _name(value) + f":{value.dtype}:{tuple(value.shape)}".encode())
        _buffer(out, value.tobytes())
    else:
        _encode_reduced(value, out, depth)


def _encode_function(fn: Any, out: _Out, depth: int) -> None:
    name, material = function_material(fn)
    _chunk(out, b"F", name.encode())
    _encode(material, out, depth)


def _encode_reduced(value: Any, out: _Out, depth: int) -> None:
    """An object by what pickling would save of it: constructor, arguments, state."""
    cls = type(value)
    try:
        reduced = value.__reduce_ex__(4)
    except Exception as exc:
        raise UnhashableValue(
            f"a {cls.__module__}.{cls.__qualname__} value has no hasher and cannot be "
            f"pickled ({exc})"
        ) from exc
    if isinstance(reduced, str):  # a module-level singleton, pickled by its name
        _chunk(out, b"g", _name(value) + b":" + reduced.encode())
        return
    constructor, args, state, items, pairs = (*reduced, None, None, None)[:5]
    if (
        not state
        and items is None
        and pairs is None
        and args in ((cls,), ())
        and cls.__eq__ is object.__eq__  # type: ignore[comparison-overlap]
    ):
        raise UnhashableValue(
            f"a {cls.__module__}.{cls.__qualname__} value has nothing to hash but its "
            "identity (it holds no state and compares by identity)"
        )
    _chunk(out, b"R", _name(value))
    _encode(constructor, out, depth)
    _encode(args, out, depth)
    _encode(state, out, depth)
    _encode(None if items is None else list(items), out, depth)
    _encode(None if pairs is None else list(pairs), out, depth)


def describe(value: Any) -> str:
    """How `stable_hash` encodes ``value`` at its top level, as an explanation shows it."""
    kind = type(value)
    if kind in _INLINE or isinstance(value, (enum.Enum, dt.date, dt.time, pathlib.PurePath)):
        return f"{kind.__qualname__}, by value"
    entry = hasher_table().find(value)
    if entry is not None:
        return entry.label
    if isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)):
        return "by qualified name"
    if isinstance(value, types.MethodType):
        return "method: function name and the object it is bound to"
    if all(hasattr(value, attr) for attr in ("dtype", "shape", "tobytes")):
        return f"{kind.__qualname__}: dtype, shape and bytes"
    return f"{kind.__qualname__}: constructor, arguments and state (as pickled)"


_INLINE = frozenset(
    {
        str,
        int,
        type(None),
        bool,
        float,
        list,
        tuple,
        dict,
        bytes,
        bytearray,
        memoryview,
        set,
        frozenset,
        dt.timedelta,
        uuid.UUID,
        decimal.Decimal,
    }
)
