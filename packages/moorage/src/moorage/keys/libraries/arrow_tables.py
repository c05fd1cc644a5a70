"""Hashers for pyarrow: Table, RecordBatch, Array and ChunkedArray, by their values.

An array's representation is its type (built from the type's parts, never from a
printed form that could be ambiguous) and its content, which does not depend on how
the data is chunked or sliced:

- Validity: a null mask over the whole array (nothing when it has no nulls); the bytes
  under a null slot are never read (they are zeroed, or the slot is emptied).
- Fixed-width values (integers, floats, decimals, temporal types, fixed-size binary):
  the values' bytes, from the Arrow buffer itself when the array is one chunk without
  nulls, else gathered in one copy. Float NaNs are canonicalised as for NumPy.
- Booleans: one byte per value.
- Strings and binaries (``string``, ``large_string``, ``string_view`` and their binary
  twins): each value's length as int64 and the concatenated bytes, the same for all
  three layouts (the type still tells them apart in a key).
- Lists, maps and structs: validity, list lengths and the children's content, through
  pyarrow's ``flatten`` (which skips what lies under null slots); dictionaries by their
  decoded values; extension arrays by their storage; union arrays are refused.

A table is its schema (field names, types and nullability, not metadata: pandas'
schema metadata holds the pandas version) and each column's content.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from moorage.keys.libraries.numpy_arrays import array_representation

__all__ = ["array_content", "hash_array", "hash_table", "type_representation"]

_FLOATS: dict[int, np.dtype[Any]] = {16: np.dtype("<f2"), 32: np.dtype("<f4"), 64: np.dtype("<f8")}


def hash_table(table: Any) -> Any:
    """A Table or RecordBatch: number of rows, schema (without metadata), columns."""
    schema = [(f.name, bool(f.nullable), type_representation(f.type)) for f in table.schema]
    columns = [array_content(column) for column in table.columns]
    return ("table", int(table.num_rows), schema, columns)


def hash_array(values: Any) -> Any:
    """An Array or ChunkedArray: type and content (chunking and offsets do not count)."""
    return ("array", type_representation(values.type), array_content(values))


def type_representation(t: Any) -> Any:
    """An Arrow type as plain values. List item field names ("item", "element") are
    left out: producers differ in them, not in the data."""
    types = pa.types
    if types.is_struct(t):
        fields = [t.field(i) for i in range(t.num_fields)]
        return ("struct", [(f.name, bool(f.nullable), type_representation(f.type)) for f in fields])
    if types.is_map(t):
        return (
            "map",
            type_representation(t.key_type),
            type_representation(t.item_type),
            t.keys_sorted,
        )
    if types.is_fixed_size_list(t):
        return ("fixed_size_list", t.list_size, type_representation(t.value_type))
    if types.is_list(t) or types.is_large_list(t) or _is(t, "is_list_view", "is_large_list_view"):
        return (str(t).split("<", 1)[0], type_representation(t.value_type))
    if types.is_dictionary(t):
        index, value = type_representation(t.index_type), type_representation(t.value_type)
        return ("dictionary", index, value, bool(t.ordered))
    if types.is_timestamp(t):
        return ("timestamp", t.unit, t.tz)
    if isinstance(t, pa.ExtensionType):
        serialized = t.__arrow_ext_serialize__()
        return ("extension", t.extension_name, serialized, type_representation(t.storage_type))
    if types.is_union(t):
        fields = [
            (f.name, type_representation(f.type)) for f in (t.field(i) for i in range(t.num_fields))
        ]
        return ("union", t.mode, fields, list(t.type_codes))
    if _is(t, "is_run_end_encoded"):
        return (
            "run_end_encoded",
            type_representation(t.run_end_type),
            type_representation(t.value_type),
        )
    return str(t)  # a primitive type: its printed name holds no user text


def _is(t: Any, *checks: str) -> bool:
    return any(getattr(pa.types, check, lambda _t: False)(t) for check in checks)


def array_content(values: Any) -> Any:
    """The content of an Array or ChunkedArray, independent of chunks and offsets."""
    if isinstance(values, pa.ChunkedArray):
        chunks: list[Any] = list(values.chunks) or [values.combine_chunks()]
    else:
        chunks = [values]
    return _content(values.type, chunks)


def _content(t: Any, chunks: list[Any]) -> Any:
    types = pa.types
    if isinstance(t, pa.ExtensionType):
        return _content(t.storage_type, [chunk.storage for chunk in chunks])
    if types.is_dictionary(t):
        return _content(t.value_type, [chunk.dictionary_decode() for chunk in chunks])
    if _is(t, "is_run_end_encoded"):
        return _content(t.value_type, [pc.run_end_decode(chunk) for chunk in chunks])
    if _is(t, "is_string_view", "is_binary_view"):
        wide = pa.large_string() if types.is_string_view(t) else pa.large_binary()
        return _content(wide, [chunk.cast(wide) for chunk in chunks])
    length = sum(len(chunk) for chunk in chunks)
    if types.is_null(t):
        return ("null", length)
    mask = _null_mask(chunks)
    if types.is_boolean(t):
        filled = [chunk.fill_null(False) if chunk.null_count else chunk for chunk in chunks]
        flags = [chunk.to_numpy(zero_copy_only=False) for chunk in filled]
        return ("bool", mask, array_representation(_joined(flags, np.dtype(bool))))
    if (
        types.is_string(t)
        or types.is_binary(t)
        or types.is_large_string(t)
        or types.is_large_binary(t)
    ):
        return ("binary", mask, *_binary(t, chunks))
    if _nested(t):
        return _nested_content(t, _one(chunks, t), mask)
    if types.is_union(t):
        raise TypeError("Arrow union arrays are not supported by the cache key hasher")
    width = _bit_width(t)
    if width is None or width % 8:
        raise TypeError(f"Arrow arrays of type {t} are not supported by the cache key hasher")
    return ("fixed", mask, array_representation(_fixed(t, width // 8, chunks, mask)))


def _nested(t: Any) -> bool:
    types = pa.types
    return bool(
        types.is_struct(t)
        or types.is_list(t)
        or types.is_large_list(t)
        or types.is_fixed_size_list(t)
        or types.is_map(t)
        or _is(t, "is_list_view", "is_large_list_view")
    )


def _nested_content(t: Any, array: Any, mask: Any) -> Any:
    """Lists, maps and structs: ``flatten`` drops the offset and whatever lies under
    null slots (a null list's child values, a null struct's field values)."""
    if pa.types.is_struct(t):
        return ("struct", mask, [_content(f.type, [f]) for f in array.flatten()])
    if _is(t, "is_list_view", "is_large_list_view"):
        wide = pa.large_list(t.value_field)
        array, t = array.cast(wide), wide
    elif pa.types.is_map(t):  # a list of key-value structs (list kernels take no maps)
        wide = pa.list_(pa.struct([t.key_field, t.item_field]))
        array, t = array.cast(wide), wide
    lengths = pc.list_value_length(array).fill_null(0).to_numpy(zero_copy_only=False)
    lengths = np.asarray(lengths, dtype=np.int64)
    child = array.flatten()
    return ("list", mask, array_representation(lengths), _content(child.type, [child]))


def _one(chunks: list[Any], t: Any) -> Any:
    if len(chunks) == 1:
        return chunks[0]
    if not chunks:
        return pa.array([], type=t)
    return pa.concat_arrays(chunks)


def _bit_width(t: Any) -> int | None:
    try:
        return int(t.bit_width)
    except (ValueError, AttributeError):
        return None


def _null_mask(chunks: Sequence[Any]) -> Any:
    """Which slots are null, as NumPy bools; None when none is."""
    if not any(chunk.null_count for chunk in chunks):
        return None
    parts = [chunk.is_null().to_numpy(zero_copy_only=False) for chunk in chunks]
    return array_representation(_joined(parts, np.dtype(bool)))


def _joined(parts: list[np.ndarray[Any, Any]], dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return np.zeros(0, dtype=dtype)
    return np.concatenate(parts)


def _fixed(t: Any, width: int, chunks: list[Any], mask: Any) -> np.ndarray[Any, Any]:
    """The values of fixed-width chunks as one NumPy array (floats as floats, so NaNs
    are canonicalised; others as rows of bytes), null slots zeroed."""
    dtype: np.dtype[Any] | None = _FLOATS.get(width * 8) if pa.types.is_floating(t) else None
    views: list[np.ndarray[Any, Any]] = []
    for chunk in chunks:
        n = len(chunk)
        buffer = chunk.buffers()[1]
        if n == 0 or buffer is None:
            views.append(np.zeros((0,) if dtype is not None else (0, width), dtype or np.uint8))
            continue
        if dtype is not None:
            views.append(np.frombuffer(buffer, dtype=dtype, count=n, offset=chunk.offset * width))
        else:
            raw = np.frombuffer(
                buffer, dtype=np.uint8, count=n * width, offset=chunk.offset * width
            )
            views.append(raw.reshape(n, width))
    if mask is None:
        return _joined(views, dtype or np.dtype(np.uint8))
    out = np.concatenate(views) if len(views) > 1 else views[0].copy()
    nulls = np.concatenate([chunk.is_null().to_numpy(zero_copy_only=False) for chunk in chunks])
    out[nulls] = 0
    return out


def _binary(t: Any, chunks: list[Any]) -> tuple[Any, Any]:
    """Lengths (int64) and the concatenated bytes of variable-width binary chunks;
    null slots are emptied first, so the bytes behind them are never read."""
    large = pa.types.is_large_string(t) or pa.types.is_large_binary(t)
    offset_type = np.dtype("<i8") if large else np.dtype("<i4")
    empty = pa.scalar("" if pa.types.is_string(t) or pa.types.is_large_string(t) else b"", type=t)
    lengths: list[np.ndarray[Any, Any]] = []
    pieces: list[memoryview] = []
    for chunk in chunks:
        if chunk.null_count:
            chunk = chunk.fill_null(empty)
        n = len(chunk)
        if n == 0:
            continue
        buffers = chunk.buffers()
        offsets = np.frombuffer(
            buffers[1], dtype=offset_type, count=n + 1, offset=chunk.offset * offset_type.itemsize
        )
        lengths.append(np.diff(offsets).astype(np.int64, copy=False))
        start, end = int(offsets[0]), int(offsets[-1])
        data = buffers[2]
        pieces.append(
            memoryview(data)[start:end] if data is not None and end > start else memoryview(b"")
        )
    sizes = _joined(lengths, np.dtype(np.int64))
    data_all: Any = pieces[0] if len(pieces) == 1 else b"".join(pieces)
    return array_representation(np.asarray(sizes, dtype=np.int64)), data_all
