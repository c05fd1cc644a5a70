"""Hashers for NumPy arrays and scalars: what a value *is*, never how it lies in memory.

An array's representation is its dtype (with byte order and, for structured dtypes,
each field's name and dtype, but not the field offsets or padding), its shape and its
content in C order: the same values give the same key whatever the strides, Fortran
or C order, or whether the array is a view. Content is hashed from the array's own
buffer where it is C-contiguous; otherwise it is copied once.

- Floats and complex numbers: every NaN is hashed as the one canonical quiet NaN (a
  NaN's payload bits are not part of its value); a copy is made only when the array
  holds a NaN. ``-0.0`` and ``0.0`` stay different.
- ``longdouble`` on x86 (80 bits stored in 12 or 16 bytes): only the 10 bytes that
  hold the number, never the padding.
- Object arrays and ``StringDType`` arrays: element by element, each element through
  the stable encoding itself (so ``1`` and ``"1"`` differ); slower, but never a guess.
  When every element is exactly a ``str``, the strings' UTF-8 lengths and bytes.
- Structured arrays: field by field, so padding between fields is never hashed.
- Masked arrays: the mask, the fill value, and the data with masked slots zeroed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["array_representation", "dtype_representation", "hash_array", "hash_scalar"]


def hash_array(a: npt.NDArray[Any]) -> Any:
    """The representation of an ndarray (or subclass): dtype, shape, content."""
    if isinstance(a, np.ma.MaskedArray):
        return _masked(a)
    return array_representation(np.asarray(a))


def hash_scalar(x: np.generic) -> Any:
    """A NumPy scalar as the 0-d array of its value (its type tags the key apart)."""
    return array_representation(np.asarray(x))


def array_representation(a: npt.NDArray[Any]) -> tuple[Any, ...]:
    """``(dtype, shape, content)`` of a plain ndarray; see the module docstring."""
    return (dtype_representation(a.dtype), tuple(int(n) for n in a.shape), _content(a))


def dtype_representation(dtype: np.dtype[Any]) -> Any:
    """A dtype as plain values: ``'<f8'``-style strings (with byte order), fields by
    name and dtype for structured dtypes (offsets and itemsize, which are layout, are
    left out), and StringDType with its NA object."""
    if dtype.names is not None:
        fields = dtype.fields
        assert fields is not None
        return ("struct", [(name, dtype_representation(fields[name][0])) for name in dtype.names])
    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        return ("subarray", dtype_representation(base), tuple(shape))
    if dtype.kind == "T":  # StringDType: variable-width strings held out of line
        na = getattr(dtype, "na_object", _NO_NA)
        return ("StringDType", None if na is _NO_NA else ("na", na), bool(dtype.coerce))  # type: ignore[attr-defined]
    return dtype.str


_NO_NA = object()


def _content(a: npt.NDArray[Any]) -> Any:
    dtype = a.dtype
    if dtype.names is not None:  # field by field: padding between fields is never read
        return [_content(a[name]) for name in dtype.names]
    if dtype.hasobject or dtype.kind == "T":
        items = a.ravel(order="C").tolist() if a.ndim else [a.item()]
        if items and set(map(type, items)) == {str}:
            return _strings(items)
        return items
    if dtype.kind in "fc":
        a = _canonical_nans(a)
        if dtype.itemsize > (8 if dtype.kind == "f" else 16):
            return _extended_precision(a)
    return _bytes_of(a)


def _strings(items: list[str]) -> tuple[Any, ...]:
    """Elements that are all exactly ``str``: their UTF-8 lengths and bytes, a few
    times faster than encoding each string on its own (and told apart from the
    element-by-element list, which is encoded as a list, not a tuple)."""
    encoded = [item.encode("utf-8", "surrogatepass") for item in items]
    lengths = np.fromiter(map(len, encoded), dtype="<i8", count=len(encoded))
    return ("utf-8 strings", _bytes_of(lengths), b"".join(encoded))


def _bytes_of(a: npt.NDArray[Any]) -> memoryview:
    """The array's bytes in C order: its own buffer when C-contiguous, else one copy."""
    flat = np.ascontiguousarray(a).reshape(-1)
    return flat.view(np.uint8).data


def _canonical_nans(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``a`` with every NaN set to the canonical NaN: a copy only if ``a`` holds one.
    ``min`` propagates NaN and reads the array once without allocating, so the usual
    case (no NaN) costs a fraction of the hash itself."""
    if a.size == 0:
        return a
    if a.dtype.kind == "f":
        if not np.isnan(np.min(a)):
            return a
    elif not np.isnan(a).any():
        return a
    fixed = np.array(a, order="C", copy=True)
    parts = [fixed.real, fixed.imag] if fixed.dtype.kind == "c" else [fixed]
    for part in parts:
        part[np.isnan(part)] = np.nan
    return fixed


def _extended_precision(a: npt.NDArray[Any]) -> Any:
    """``longdouble`` (and its complex): x86's 80-bit format is stored in 12 or 16 bytes
    whose tail is padding with whatever was there; only the 10 meaningful bytes of each
    number are hashed. Other formats (IEEE binary128, double-double) fill their bytes."""
    flat = np.ascontiguousarray(a).reshape(-1)
    if flat.dtype.kind == "c":
        flat = flat.view(flat.dtype.newbyteorder("=").type(0).real.dtype)
    if np.finfo(flat.dtype).nmant != 63 or not flat.dtype.isnative:
        return _bytes_of(flat)  # not x87 extended: every byte is the number's
    rows = flat.view(np.uint8).reshape(-1, flat.dtype.itemsize)
    return _bytes_of(rows[:, :10])


def _masked(a: np.ma.MaskedArray[Any, Any]) -> tuple[Any, ...]:
    """A masked array: its mask, fill value, and data with the masked slots zeroed
    (whatever lies under a mask is not part of the value)."""
    mask = np.ma.getmaskarray(a)
    data = np.asarray(np.ma.getdata(a))
    if mask.any() and data.dtype.names is None and data.dtype.kind in "biufcmMSUV":
        data = np.array(data, copy=True)
        data[mask] = np.zeros((), dtype=data.dtype)
    return ("masked", array_representation(data), _bytes_of(mask), _fill_value(a))


def _fill_value(a: np.ma.MaskedArray[Any, Any]) -> Any:
    fill = a.fill_value
    if isinstance(fill, np.ndarray):
        return array_representation(fill)
    if isinstance(fill, np.generic):
        return array_representation(np.asarray(fill))
    return fill
