"""Hashers for pandas: DataFrame, Series, Index and extension arrays, by their values.

A DataFrame is its column labels (an Index, each label encoded as a value, so ``1``
and ``"1"`` differ), its index, and each column's dtype and values in order. Memory
layout is not part of it: a frame built from a C- or Fortran-ordered 2-D array, one
built column by column, one consolidated or not, and one sliced then copied all get
the key of the same frame built directly. Numeric columns are hashed from their NumPy
buffers (see `moorage.keys.libraries.numpy_arrays`), copied at most once.

What each part holds:

- Index: its names, dtype and values. A ``RangeIndex`` and an int64 ``Index`` holding
  the same integers are the same index inside a frame or Series (``df.equals`` treats
  them so, and both have dtype int64): either is hashed as ``(first, step, length)``
  when its values are an arithmetic progression. ``freq`` is not part of an index.
  A ``MultiIndex`` is its names and the values of each level (not its levels and
  codes, which keep unused labels after slicing).
- Object columns: element by element through the stable encoding (never through
  ``str``, so ``1`` and ``"1"`` differ).
- Extension arrays: categoricals by categories, codes and ``ordered``; nullable
  numbers and booleans by their mask and their values with masked slots zeroed;
  datetimes by their int64 values and dtype (unit and time zone); Arrow-backed arrays
  (pandas 3's ``str``, ``ArrowDtype``) by their Arrow content (see
  `moorage.keys.libraries.arrow_tables`); others element by element.

Not hashed: ``attrs``, ``flags``, an index's ``freq``, block structure, memory order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from moorage.keys.libraries.numpy_arrays import array_representation, dtype_representation

__all__ = ["hash_extension_array", "hash_frame", "hash_index", "hash_series"]

_INT64 = np.dtype(np.int64)
#: Rows compared at a time when checking whether an int64 index is a progression.
_CHUNK = 1 << 20


def hash_frame(df: pd.DataFrame) -> Any:
    """Column labels, index, then each column's dtype and values."""
    columns = [_values(df.iloc[:, i]) for i in range(df.shape[1])]
    return ("frame", _index(df.columns), _index(df.index), [_array(v) for v in columns])


def hash_series(series: pd.Series) -> Any:
    """Name (as a value), index, dtype and values."""
    return ("series", series.name, _index(series.index), _array(_values(series)))


def hash_index(index: pd.Index) -> Any:
    """Names, dtype and values (see the module docstring for RangeIndex)."""
    return _index(index)


def hash_extension_array(array: Any) -> Any:
    """A pandas ExtensionArray by its dtype and values."""
    return _extension(array)


def _values(obj: pd.Series | pd.Index) -> Any:
    """The NumPy array (no copy) or ExtensionArray behind a Series or Index."""
    if isinstance(obj.dtype, np.dtype):
        return obj.to_numpy(copy=False)
    return obj.array


def _array(values: Any) -> Any:
    if isinstance(values, np.ndarray):
        return ("numpy", array_representation(values))
    return _extension(values)


def _index(index: pd.Index) -> Any:
    if isinstance(index, pd.MultiIndex):
        levels = [_index_values(index.get_level_values(i)) for i in range(index.nlevels)]
        return ("multi", list(index.names), levels)
    return ("index", list(index.names), _index_values(index))


def _index_values(index: pd.Index) -> Any:
    if isinstance(index, pd.RangeIndex):
        return _progression(index.start, index.step, len(index))
    values = _values(index)
    if isinstance(values, np.ndarray) and values.dtype == _INT64:
        found = _as_progression(values)
        if found is not None:
            return found
    return _array(values)


def _progression(first: int, step: int, length: int) -> Any:
    """An int64 arithmetic progression, normalised so that equal values give equal
    tuples (one value has no step; steps wrap as int64 arithmetic does)."""
    if length == 0:
        first = 0
    if length <= 1:
        step = 1
    step = (step + (1 << 63)) % (1 << 64) - (1 << 63)
    return ("int64 progression", first, step, length)


def _as_progression(values: np.ndarray[Any, Any]) -> Any:
    """``_progression(...)`` if ``values`` (int64) is one, else None; checked a chunk
    at a time, after an O(1) test of the last value."""
    n = len(values)
    if n <= 1:
        return _progression(int(values[0]) if n else 0, 1, n)
    first = int(values[0])
    step = int(values[1]) - first
    wrap = 1 << 64
    if (first + step * (n - 1) - int(values[-1])) % wrap:
        return None
    first64, step64 = np.int64(first), np.int64((step + (1 << 63)) % wrap - (1 << 63))
    with np.errstate(over="ignore"):
        for lo in range(0, n, _CHUNK):
            hi = min(lo + _CHUNK, n)
            expected = np.arange(lo, hi, dtype=np.int64) * step64 + first64
            if not np.array_equal(values[lo:hi], expected):
                return None
    return _progression(first, step, n)


def _extension(array: Any) -> Any:
    dtype = _dtype(array.dtype)
    if isinstance(array, pd.Categorical):
        categories = _index_values(array.categories)
        return ("categorical", bool(array.ordered), categories, _codes(array.codes))
    if isinstance(array, (pd.arrays.IntegerArray, pd.arrays.FloatingArray, pd.arrays.BooleanArray)):
        data, mask = array._data, array._mask  # the documented parts of a masked array
        if mask.any():
            data = data.copy()
            data[mask] = 0
        return ("masked", dtype, array_representation(data), _mask_bytes(mask))
    if isinstance(array, pd.arrays.ArrowExtensionArray):
        from moorage.keys.libraries.arrow_tables import array_content

        return ("arrow", dtype, array_content(array.__arrow_array__()))
    if isinstance(array, pd.arrays.NumpyExtensionArray):
        return ("numpy", array_representation(array.to_numpy()))
    backing = getattr(array, "_ndarray", None)  # datetimes, timedeltas, periods, strings
    if isinstance(backing, np.ndarray):
        return ("ndarray", dtype, array_representation(backing))
    missing = np.asarray(array.isna(), dtype=bool)
    items = [
        None if na else item for item, na in zip(array.tolist(), missing.tolist(), strict=True)
    ]
    return ("elements", dtype, _mask_bytes(missing), items)


def _codes(codes: np.ndarray[Any, Any]) -> Any:
    return array_representation(codes)


def _mask_bytes(mask: np.ndarray[Any, Any]) -> Any:
    return array_representation(np.asarray(mask, dtype=bool))


def _dtype(dtype: Any) -> Any:
    """A pandas or NumPy dtype as plain values (never a truncated repr)."""
    if isinstance(dtype, np.dtype):
        return dtype_representation(dtype)
    if isinstance(dtype, pd.StringDtype):
        na = dtype.na_value
        return ("StringDtype", dtype.storage, "nan" if na is not pd.NA else "NA")
    if isinstance(dtype, pd.CategoricalDtype):
        return ("category", bool(dtype.ordered))  # the categories are hashed with the codes
    if isinstance(dtype, pd.DatetimeTZDtype):
        return ("datetime64tz", dtype.unit, str(dtype.tz))
    if isinstance(dtype, pd.ArrowDtype):
        from moorage.keys.libraries.arrow_tables import type_representation

        return ("ArrowDtype", type_representation(dtype.pyarrow_dtype))
    return (type(dtype).__name__, str(dtype))
