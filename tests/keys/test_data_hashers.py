"""Data hashers (moorage.keys.libraries): NumPy, pandas, pyarrow and polars values get
keys from what they hold, never from how it lies in memory. Equal values built in
different ways share a key; a change of one value, dtype, name or index changes it; the
keys are the same in other processes and under other PYTHONHASHSEED values; and hashing
plain values imports none of these libraries."""

from __future__ import annotations

import itertools
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from hypothesis.extra import pandas as hpd

from moorage.keys.encoding import stable_hash

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------- NumPy


NUMERIC = st.sampled_from(["<i8", "<i4", "<u2", "<f8", "<f4", "<c16", "|b1", "<M8[ns]"])


@SETTINGS
@given(
    hnp.arrays(
        NUMERIC,
        hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5),
    )
)
def test_numpy_layout_does_not_count(a: np.ndarray[Any, Any]) -> None:
    key = stable_hash(a)
    assert stable_hash(np.asfortranarray(a)) == key
    assert stable_hash(a.copy()) == key
    padded = np.zeros((*a.shape[:-1], a.shape[-1] * 2), dtype=a.dtype)
    padded[..., ::2] = a
    assert a.shape[-1] == 1 or not padded[..., ::2].flags.c_contiguous
    assert stable_hash(padded[..., ::2]) == key, "a strided view hashes as its values"
    assert stable_hash(a.T.copy().T) == key


@pytest.mark.filterwarnings("ignore:overflow encountered")
@SETTINGS
@given(
    hnp.arrays("<f8", st.integers(1, 20), elements=st.floats(allow_nan=False)),
    st.data(),
)
def test_numpy_one_value_or_the_dtype_changes_the_key(
    a: np.ndarray[Any, Any], data: st.DataObject
) -> None:
    i = data.draw(st.integers(0, len(a) - 1))
    other = data.draw(st.floats(allow_nan=False).filter(lambda x: x != a[i] or str(x) != str(a[i])))
    changed = a.copy()
    changed[i] = other
    assert stable_hash(changed) != stable_hash(a)
    assert stable_hash(a.astype("<f4")) != stable_hash(a)
    assert stable_hash(a.reshape(1, -1)) != stable_hash(a), "the shape is part of the key"


def test_numpy_byte_order_is_part_of_the_dtype() -> None:
    a = np.arange(5, dtype="<i4")
    assert stable_hash(a) != stable_hash(a.astype(">i4"))
    assert stable_hash(a.astype(">i4")) == stable_hash(a.astype(">i4").copy(order="F"))
    assert stable_hash(np.array([1], "<i4")) != stable_hash(np.array([1 << 24], ">i4").byteswap())


def test_numpy_nan_payloads_and_kinds() -> None:
    a = np.array([1.0, np.nan, 3.0])
    other = a.copy()
    other.view(np.uint64)[1] |= 0xABC  # another quiet NaN, a different bit pattern
    assert np.isnan(other[1])
    assert other.tobytes() != a.tobytes()
    assert stable_hash(other) == stable_hash(a)
    negative = a.copy()
    negative[1] = -np.nan
    assert stable_hash(negative) == stable_hash(a)
    c = np.array([complex(np.nan, 1.0)])
    c2 = c.copy()
    c2.view(np.uint64)[0] |= 0x1234
    assert stable_hash(c) == stable_hash(c2)
    assert stable_hash(np.array([0.0])) != stable_hash(np.array([-0.0]))
    f32 = np.array([np.nan], dtype="<f4")
    f32b = f32.copy()
    f32b.view(np.uint32)[0] |= 1
    assert stable_hash(f32) == stable_hash(f32b)


def test_numpy_structured_padding_and_offsets_are_not_hashed() -> None:
    aligned = np.dtype([("a", "i1"), ("b", "<f8")], align=True)
    assert aligned.itemsize == 16
    raw = np.frombuffer(bytearray(range(32)), dtype=aligned)  # padding bytes not zero
    clean = np.zeros(2, dtype=aligned)
    clean["a"], clean["b"] = raw["a"], raw["b"]
    assert raw.tobytes() != clean.tobytes(), "the padding bytes differ"
    assert stable_hash(raw) == stable_hash(clean)
    packed = np.zeros(2, dtype=[("a", "i1"), ("b", "<f8")])
    packed["a"], packed["b"] = raw["a"], raw["b"]
    assert stable_hash(packed) == stable_hash(clean), "field offsets are layout"
    renamed = packed.copy().view([("a", "i1"), ("c", "<f8")])
    assert stable_hash(renamed) != stable_hash(packed)


def test_numpy_longdouble_padding_is_not_hashed() -> None:
    if np.finfo(np.longdouble).nmant != 63 or np.dtype(np.longdouble).itemsize <= 10:
        pytest.skip("longdouble is not x87 extended precision here")
    width = np.dtype(np.longdouble).itemsize
    a = np.array([1.5, -2.25], dtype=np.longdouble)
    noisy = a.copy()
    noisy.view(np.uint8).reshape(2, width)[:, 10:] = 0xAB
    assert noisy.tobytes() != a.tobytes()
    assert (noisy == a).all()
    assert stable_hash(noisy) == stable_hash(a)
    assert stable_hash(a) != stable_hash(np.array([1.5, -2.0], dtype=np.longdouble))


def test_numpy_objects_are_hashed_element_by_element() -> None:
    assert stable_hash(np.array([1, "1"], dtype=object)) != stable_hash(
        np.array(["1", 1], dtype=object)
    )
    assert stable_hash(np.array([1, 2], dtype=object)) != stable_hash(
        np.array([1.0, 2.0], dtype=object)
    )
    words = np.array(["ab", "", "c"], dtype=object)
    assert stable_hash(words) != stable_hash(np.array(["a", "b", "c"], dtype=object))
    assert stable_hash(words) != stable_hash(np.array(["ab", "", np.str_("c")], dtype=object))
    assert stable_hash(words) == stable_hash(np.array(["ab", "", "c", "x"], dtype=object)[:3])
    nested = np.array([{"b": 1, "a": {2, 3}}, None], dtype=object)
    assert stable_hash(nested) == stable_hash(pickle.loads(pickle.dumps(nested)))
    strings = np.array(["a", "bb", ""], dtype=np.dtypes.StringDType())
    assert stable_hash(strings) == stable_hash(strings[::-1][::-1].copy())
    assert stable_hash(strings) != stable_hash(np.array(["a", "bb", "x"], dtype=strings.dtype))
    assert stable_hash(np.array(["a"], "<U1")) != stable_hash(np.array(["a"], "<U2"))


def test_numpy_masked_arrays_ignore_what_lies_under_the_mask() -> None:
    a = np.ma.array([1, 2, 3], mask=[False, True, False])
    b = np.ma.array([1, 99, 3], mask=[False, True, False])
    assert stable_hash(a) == stable_hash(b)
    assert stable_hash(a) != stable_hash(np.ma.array([1, 2, 3], mask=[False, False, True]))
    assert stable_hash(a) != stable_hash(np.array([1, 2, 3])), "tagged by type"


def test_numpy_scalars() -> None:
    assert stable_hash(np.float64(1.5)) == stable_hash(np.float64(1.5))
    assert stable_hash(np.float64(1.5)) != stable_hash(np.float32(1.5))
    assert stable_hash(np.float64(1.5)) != stable_hash(1.5)
    assert stable_hash(np.int64(1)) != stable_hash(np.str_("1"))
    assert stable_hash(np.datetime64("2020-01-01", "D")) != stable_hash(
        np.datetime64("2020-01-01", "s")
    )
    nans = np.array([np.nan, np.nan])
    nans.view(np.uint64)[1] |= 7
    assert stable_hash(nans[0]) == stable_hash(nans[1])


# ---------------------------------------------------------------- pandas

COLUMNS = [
    hpd.column("f", dtype=float),
    hpd.column("i", dtype="int64"),
    hpd.column("b", dtype=bool),
    hpd.column("t", dtype="datetime64[ns]"),
    hpd.column(
        "s",
        elements=st.text(max_size=3),
        dtype=object,
    ),
]

FRAMES = hpd.data_frames(COLUMNS, index=hpd.range_indexes(min_size=1, max_size=8))


def _rebuilt_ways(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Frames equal to ``df`` built in other ways."""
    extra = pd.concat([df, df.iloc[::-1]], ignore_index=True)
    by_column = pd.DataFrame(
        {
            name: pd.Series(df[name].to_numpy().copy(), index=df.index.copy(), dtype=df[name].dtype)
            for name in df.columns
        }
    )
    split = pd.concat([df[[name]] for name in df.columns], axis=1)
    int_index = df.copy()
    int_index.index = pd.Index(list(df.index), dtype="int64")
    return {
        "copy": df.copy(),
        "deep copy of a pickle": pickle.loads(pickle.dumps(df)),
        "sliced then copied": extra.iloc[: len(df)].copy(),
        "column by column": by_column,
        "unconsolidated": split,
        "int64 index": int_index,
    }


@SETTINGS
@given(FRAMES)
def test_pandas_equal_frames_built_differently_share_a_key(df: pd.DataFrame) -> None:
    key = stable_hash(df)
    for how, other in _rebuilt_ways(df).items():
        assert other.equals(df), how
        assert (other.dtypes == df.dtypes).all(), how
        assert stable_hash(other) == key, how


@SETTINGS
@given(
    hnp.arrays(
        st.sampled_from(["<f8", "<i8"]),
        st.tuples(st.integers(1, 6), st.integers(1, 4)),
    )
)
def test_pandas_memory_order_does_not_count(a: np.ndarray[Any, Any]) -> None:
    c_frame = pd.DataFrame(np.ascontiguousarray(a))
    f_frame = pd.DataFrame(np.asfortranarray(a))
    by_column = pd.DataFrame({i: a[:, i].copy() for i in range(a.shape[1])})
    assert stable_hash(c_frame) == stable_hash(f_frame) == stable_hash(by_column)


@pytest.mark.filterwarnings("ignore:overflow encountered")
@SETTINGS
@given(FRAMES, st.data())
def test_pandas_a_change_changes_the_key(df: pd.DataFrame, data: st.DataObject) -> None:
    key = stable_hash(df)
    row = data.draw(st.integers(0, len(df) - 1))
    value = df.iloc[row, 1]
    changed = df.copy()
    changed.iloc[row, 1] = value + 1 if value < 2**62 else value - 1
    assert stable_hash(changed) != key, "one value"
    assert stable_hash(df.astype({"i": "int32"})) != key, "one dtype"
    assert stable_hash(df.astype({"f": "float32"})) != key, "one dtype"
    assert stable_hash(df.rename(columns={"i": "j"})) != key, "one column name"
    assert stable_hash(df[["i", "f", "b", "t", "s"]]) != key, "column order"
    shifted = df.copy()
    shifted.index = shifted.index + 1
    assert stable_hash(shifted) != key, "the index"
    named = df.copy()
    named.index.name = "row"
    assert stable_hash(named) != key, "the index's name"
    text = df.copy()
    text.iloc[row, 4] = text.iloc[row, 4] + "x"
    assert stable_hash(text) != key, "one string"


def test_pandas_labels_and_objects_are_values_not_strings() -> None:
    assert stable_hash(pd.DataFrame({1: [1]})) != stable_hash(pd.DataFrame({"1": [1]}))
    mixed = pd.Series([1, "1", None, 2.0], dtype=object)
    swapped = pd.Series(["1", 1, None, 2.0], dtype=object)
    assert stable_hash(mixed) != stable_hash(swapped)
    assert stable_hash(pd.Series([1, None], dtype=object)) != stable_hash(
        pd.Series([1, np.nan], dtype=object)
    )
    assert stable_hash(pd.Series([1], name=1)) != stable_hash(pd.Series([1], name="1"))


def test_pandas_range_index_is_an_int64_index_inside_frames() -> None:
    ranged = pd.DataFrame({"a": [1.0, 2.0, 3.0]}, index=pd.RangeIndex(10, 16, 2))
    listed = pd.DataFrame({"a": [1.0, 2.0, 3.0]}, index=pd.Index([10, 12, 14]))
    assert stable_hash(ranged) == stable_hash(listed)
    uneven = pd.DataFrame({"a": [1.0, 2.0, 3.0]}, index=pd.Index([10, 12, 15]))
    assert stable_hash(uneven) != stable_hash(listed)
    as_int32 = pd.DataFrame({"a": [1.0, 2.0, 3.0]}, index=pd.Index([10, 12, 14], dtype="int32"))
    assert stable_hash(as_int32) != stable_hash(listed)
    one = pd.Series([1.0], index=pd.RangeIndex(5, 6))
    assert stable_hash(one) == stable_hash(pd.Series([1.0], index=pd.Index([5])))
    empty = pd.DataFrame({"a": pd.Series([], dtype=float)})
    assert stable_hash(empty) == stable_hash(
        pd.DataFrame({"a": pd.Series([], dtype=float)}, index=pd.Index([], dtype="int64"))
    )
    long = np.arange(3_000_000, dtype=np.int64) * 3
    long_changed = long.copy()
    long_changed[2_500_000] += 1
    assert stable_hash(pd.Series(0, index=pd.Index(long))) == stable_hash(
        pd.Series(0, index=pd.RangeIndex(0, 9_000_000, 3))
    )
    assert stable_hash(pd.Series(0, index=pd.Index(long_changed))) != stable_hash(
        pd.Series(0, index=pd.Index(long))
    )


def test_pandas_multiindex_by_level_values() -> None:
    index = pd.MultiIndex.from_product([[1, 2], ["a", "b"]], names=["n", "s"])
    frame = pd.DataFrame({"v": range(4)}, index=index)
    sliced = frame.iloc[:2].copy()  # keeps the unused level value 2
    direct = pd.DataFrame(
        {"v": [0, 1]}, index=pd.MultiIndex.from_tuples([(1, "a"), (1, "b")], names=["n", "s"])
    )
    assert sliced.equals(direct)
    assert stable_hash(sliced) == stable_hash(direct)
    assert stable_hash(direct) != stable_hash(direct.rename_axis(["n", "t"]))
    assert stable_hash(direct) != stable_hash(direct.swaplevel().sort_index())


def test_pandas_extension_arrays() -> None:
    masked = pd.arrays.IntegerArray(np.array([1, 2, 3]), np.array([False, True, False]))
    garbage = pd.arrays.IntegerArray(np.array([1, 77, 3]), np.array([False, True, False]))
    assert stable_hash(pd.Series(masked)) == stable_hash(pd.Series(garbage))
    assert stable_hash(pd.Series(masked)) != stable_hash(pd.Series([1, 0, 3], dtype="Int64"))
    assert stable_hash(pd.Series([1, 2], dtype="Int64")) != stable_hash(pd.Series([1, 2]))
    assert stable_hash(pd.Series([1, 2], dtype="Int64")) != stable_hash(
        pd.Series([1, 2], dtype="Int32")
    )

    cat = pd.Series(pd.Categorical(["a", "b", "a"]))
    assert stable_hash(cat) == stable_hash(pd.Series(pd.Categorical(["a", "b", "a"])))
    assert stable_hash(cat) != stable_hash(
        pd.Series(pd.Categorical(["a", "b", "a"], categories=["b", "a"]))
    )
    assert stable_hash(cat) != stable_hash(pd.Series(pd.Categorical(["a", "b", "a"], ordered=True)))
    assert stable_hash(cat) != stable_hash(pd.Series(["a", "b", "a"]))

    strings = pd.Series(["x", None, "zz"], dtype="str")
    chunked = pd.concat([strings.iloc[:1], strings.iloc[1:]])
    assert stable_hash(strings) == stable_hash(chunked)
    assert stable_hash(strings) != stable_hash(pd.Series(["x", None, "z"], dtype="str"))
    python = pd.Series(["x", None, "zz"], dtype=pd.StringDtype("python"))
    assert stable_hash(python) == stable_hash(python.copy())
    assert stable_hash(python) != stable_hash(pd.Series(["x", "", "zz"], dtype=python.dtype))
    assert stable_hash(strings) != stable_hash(python), "another dtype"

    times = pd.Series(pd.date_range("2024-01-01", periods=3, freq="h", tz="UTC"))
    assert stable_hash(times) == stable_hash(times.copy())
    assert stable_hash(times) != stable_hash(times.dt.tz_convert("Europe/Paris"))
    assert stable_hash(times) != stable_hash(times.dt.tz_localize(None))
    assert stable_hash(times) != stable_hash(times.dt.as_unit("ms"))
    arrow = pd.Series([1, None, 3], dtype="int64[pyarrow]")
    assert stable_hash(arrow) != stable_hash(pd.Series([1, None, 3], dtype="Int64"))
    intervals = pd.Series(pd.arrays.IntervalArray.from_breaks([0, 1, 2]))
    assert stable_hash(intervals) == stable_hash(intervals.copy())
    assert stable_hash(intervals) != stable_hash(
        pd.Series(pd.arrays.IntervalArray.from_breaks([0, 1, 3]))
    )
    assert stable_hash(masked) == stable_hash(garbage), "an ExtensionArray on its own"


# ---------------------------------------------------------------- pyarrow

OPTIONAL_INTS = st.lists(st.none() | st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=20)
OPTIONAL_TEXT = st.lists(st.none() | st.text(max_size=4), min_size=1, max_size=20)


def _chunked(values: list[Any], cuts: list[int], kind: Any) -> pa.ChunkedArray:
    bounds = sorted({0, len(values), *(c % (len(values) + 1) for c in cuts)})
    pieces = [pa.array(values[lo:hi], type=kind) for lo, hi in itertools.pairwise(bounds)]
    return pa.chunked_array(pieces, type=kind)


@SETTINGS
@given(
    st.one_of(
        OPTIONAL_INTS.map(lambda v: (v, pa.int64())),
        OPTIONAL_TEXT.map(lambda v: (v, pa.string())),
        OPTIONAL_TEXT.map(lambda v: (v, pa.large_string())),
        st.lists(st.none() | st.lists(st.integers(0, 9), max_size=3), min_size=1).map(
            lambda v: (v, pa.list_(pa.int32()))
        ),
        st.lists(st.none() | st.booleans(), min_size=1).map(lambda v: (v, pa.bool_())),
    ),
    st.lists(st.integers(0, 40), max_size=4),
    st.data(),
)
def test_arrow_chunking_and_slices_do_not_count(
    case: tuple[list[Any], Any], cuts: list[int], data: st.DataObject
) -> None:
    values, kind = case
    whole = pa.chunked_array([pa.array(values, type=kind)])
    key = stable_hash(whole)
    assert stable_hash(_chunked(values, cuts, kind)) == key
    table = pa.table({"c": whole})
    assert stable_hash(pa.table({"c": _chunked(values, cuts, kind)})) == stable_hash(table)
    lo = data.draw(st.integers(0, len(values)))
    hi = data.draw(st.integers(lo, len(values)))
    padded = pa.array([*values, *values], type=kind)
    assert stable_hash(padded.slice(lo, hi - lo)) == stable_hash(pa.array(values[lo:hi], type=kind))
    i = data.draw(st.integers(0, len(values) - 1))
    changed = list(values)
    changed[i] = _another(values[i], kind)
    assert stable_hash(pa.chunked_array([pa.array(changed, type=kind)])) != key


def _another(value: Any, kind: Any) -> Any:
    if value is None:
        if pa.types.is_list(kind):
            return []
        if pa.types.is_boolean(kind):
            return False
        return 0 if pa.types.is_integer(kind) else ""
    if pa.types.is_boolean(kind):
        return not value
    if pa.types.is_list(kind):
        return None
    if isinstance(value, int):
        return value - 1 if value > 0 else value + 1
    return value + "x"


def _validity(bits: list[int]) -> pa.Buffer:
    return pa.py_buffer(np.packbits(bits, bitorder="little").tobytes())


def test_arrow_bytes_under_nulls_are_not_hashed() -> None:
    valid = _validity([1, 0, 1])
    ints = pa.Array.from_buffers(
        pa.int64(), 3, [valid, pa.py_buffer(np.array([1, 999, 3], "<i8").tobytes())]
    )
    assert stable_hash(ints) == stable_hash(pa.array([1, None, 3]))
    floats = pa.Array.from_buffers(
        pa.float64(), 3, [valid, pa.py_buffer(np.array([1, np.nan, 3], "<f8").tobytes())]
    )
    assert stable_hash(floats) == stable_hash(pa.array([1.0, None, 3.0]))
    offsets = pa.py_buffer(np.array([0, 1, 4, 6], "<i4").tobytes())
    text = pa.Array.from_buffers(pa.string(), 3, [valid, offsets, pa.py_buffer(b"xJUNzz")])
    assert text.to_pylist() == ["x", None, "zz"]
    assert stable_hash(text) == stable_hash(pa.array(["x", None, "zz"]))
    list_offsets = pa.py_buffer(np.array([0, 1, 3, 4], "<i4").tobytes())
    lists = pa.Array.from_buffers(
        pa.list_(pa.int64()), 3, [valid, list_offsets], children=[pa.array([1, 7, 7, 4])]
    )
    assert stable_hash(lists) == stable_hash(pa.array([[1], None, [4]]))
    fixed = pa.Array.from_buffers(
        pa.list_(pa.int64(), 2), 3, [valid], children=[pa.array([1, 2, 9, 9, 5, 6])]
    )
    fixed_clean = pa.Array.from_buffers(
        pa.list_(pa.int64(), 2), 3, [valid], children=[pa.array([1, 2, 0, 0, 5, 6])]
    )
    assert stable_hash(fixed) == stable_hash(fixed_clean)
    entries = pa.StructArray.from_arrays(
        [pa.array(["a", "j", "k", "d"]), pa.array([1, 7, 7, 4])],
        fields=[pa.field("key", pa.string(), nullable=False), pa.field("value", pa.int64())],
    )
    maps = pa.Array.from_buffers(
        pa.map_(pa.string(), pa.int64()), 3, [valid, list_offsets], children=[entries]
    )
    clean_maps = pa.array([[("a", 1)], None, [("d", 4)]], type=maps.type)
    assert stable_hash(maps) == stable_hash(clean_maps)
    assert stable_hash(maps.slice(1)) == stable_hash(clean_maps.slice(1))
    assert stable_hash(maps) != stable_hash(pa.array([[("a", 1)], [], [("d", 4)]], type=maps.type))
    mask = pa.array([False, True, False])
    structs = pa.StructArray.from_arrays([pa.array([1, 7, 3])], names=["q"], mask=mask)
    structs_clean = pa.StructArray.from_arrays([pa.array([1, 8, 3])], names=["q"], mask=mask)
    assert stable_hash(structs) == stable_hash(structs_clean)
    assert stable_hash(structs) != stable_hash(pa.array([{"q": 1}, {"q": 7}, {"q": 3}]))


def test_arrow_types_and_schemas() -> None:
    assert stable_hash(pa.array(["a", "b"])) != stable_hash(pa.array(["a", "b"], pa.large_string()))
    assert stable_hash(pa.array([1, 2], pa.int32())) != stable_hash(pa.array([1, 2], pa.int64()))
    stamps = pa.array([1, 2], pa.timestamp("ns", "UTC"))
    assert stable_hash(stamps) != stable_hash(stamps.cast(pa.timestamp("ns", "Europe/Paris")))
    first = pa.array(["b", "a", "b"]).dictionary_encode()
    second = pa.DictionaryArray.from_arrays(pa.array([0, 1, 0], pa.int32()), pa.array(["b", "a"]))
    assert stable_hash(first) == stable_hash(second), "the decoded values count"
    nested = pa.array([{"a": [1.0, float("nan")], "b": "x"}, None])
    assert stable_hash(nested) == stable_hash(
        pa.concat_arrays([nested.slice(0, 1), nested.slice(1)])
    )
    table = pa.table({"a": [1, 2], "b": ["x", "y"]})
    assert stable_hash(table) == stable_hash(table.replace_schema_metadata({"pandas": "x"}))
    assert stable_hash(table) != stable_hash(table.rename_columns(["a", "c"]))
    assert stable_hash(table) != stable_hash(table.select(["b", "a"]))
    assert stable_hash(table.to_batches()[0]) == stable_hash(
        pa.RecordBatch.from_pydict({"a": [1, 2], "b": ["x", "y"]})
    )
    assert stable_hash(pa.table({"a": pa.array([], pa.int64())})) != stable_hash(
        pa.table({"a": pa.array([], pa.int32())})
    )
    views = pa.array(["x", None, "yy"], pa.string_view())
    assert stable_hash(views) == stable_hash(views.slice(0))
    assert stable_hash(views) != stable_hash(pa.array(["x", None, "y"], pa.string_view()))
    with pytest.raises(Exception, match="union"):
        stable_hash(pa.UnionArray.from_sparse(pa.array([0], pa.int8()), [pa.array([1])]))


# ---------------------------------------------------------------- polars


@SETTINGS
@given(
    st.lists(st.none() | st.integers(-(2**40), 2**40), min_size=2, max_size=20),
    st.lists(st.none() | st.text(max_size=3), min_size=2, max_size=20),
    st.integers(1, 19),
)
def test_polars_layout_does_not_count(ints: list[Any], texts: list[Any], cut: int) -> None:
    n = min(len(ints), len(texts))
    df = pl.DataFrame(
        {"i": ints[:n], "s": texts[:n], "f": [float(k) for k in range(n)]},
        schema={"i": pl.Int64, "s": pl.String, "f": pl.Float64},
    )
    key = stable_hash(df)
    cut = cut % n
    joined = pl.concat([df[:cut], df[cut:]], rechunk=False)
    assert stable_hash(joined) == key
    assert stable_hash(joined.rechunk()) == key
    doubled = pl.concat([df, df])
    assert stable_hash(doubled[n:].clone()) == key
    assert stable_hash(doubled[n:]) == key
    assert stable_hash(df.cast({"f": pl.Float32})) != key
    assert stable_hash(df.rename({"i": "j"})) != key
    changed = df.with_columns(pl.col("f") + pl.int_range(n).eq(cut).cast(pl.Float64))
    assert stable_hash(changed) != key
    assert stable_hash(df["s"]) == stable_hash(joined["s"])
    assert stable_hash(df["s"]) != stable_hash(df["s"].alias("t"))


def test_polars_dtypes_and_categoricals() -> None:
    values = ["u", "v", "u", None]
    cat = pl.Series("c", values, dtype=pl.Categorical)
    pl.Series(["zz", "v", "yy"], dtype=pl.Categorical)  # other strings in the cache
    assert stable_hash(cat) == stable_hash(pl.Series("c", values, dtype=pl.Categorical))
    assert stable_hash(cat) != stable_hash(pl.Series("c", values, dtype=pl.String))
    enum = pl.Series("c", values, dtype=pl.Enum(["u", "v"]))
    assert stable_hash(enum) != stable_hash(pl.Series("c", values, dtype=pl.Enum(["v", "u"])))
    stamps = pl.Series("t", [1, 2], dtype=pl.Datetime("us", "UTC"))
    assert stable_hash(stamps) != stable_hash(stamps.dt.replace_time_zone(None))
    assert stable_hash(stamps) != stable_hash(stamps.dt.convert_time_zone("Asia/Tokyo"))
    lists = pl.Series("l", [[1, 2], None, []], dtype=pl.List(pl.Int64))
    assert stable_hash(lists) == stable_hash(pl.concat([lists[:1], lists[1:]], rechunk=False))
    assert stable_hash(lists) != stable_hash(
        pl.Series("l", [[1, 2], [], []], dtype=pl.List(pl.Int64))
    )
    big = pl.Series("b", [1, 2**100], dtype=pl.Int128)
    assert stable_hash(big) == stable_hash(big.clone())
    assert stable_hash(big) != stable_hash(pl.Series("b", [1, 2**100 + 1], dtype=pl.Int128))
    nan = pl.Series("f", [float("nan"), None, 1.0])
    assert stable_hash(nan) == stable_hash(pl.Series("f", [-float("nan"), None, 1.0]))


# ---------------------------------------------------------------- across processes


def _batch() -> list[Any]:
    """A fixed batch of values of each library, from a seeded generator."""
    rng = np.random.default_rng(20261205)
    n = 50
    frame = pd.DataFrame(
        {
            "f": rng.normal(size=n),
            "i": rng.integers(-100, 100, n),
            "s": rng.choice(["a", "bb", "ccc"], n).astype(object),
            "mixed": pd.Series([1, "1", None, 2.5, {"k": {1, 2}}] * 10, dtype=object),
            "cat": pd.Categorical(rng.choice(["x", "y"], n)),
            "n": pd.array(rng.integers(0, 5, n), dtype="Int64"),
            "t": pd.date_range("2025-01-01", periods=n, freq="min", tz="Europe/Paris"),
            "str": pd.Series(rng.choice(["p", "q"], n), dtype="str"),
        }
    )
    frame.loc[3, "f"] = np.nan
    frame.loc[4, "n"] = pd.NA
    frame.index = pd.MultiIndex.from_arrays([np.arange(n) % 5, rng.choice(["k", "l"], n)])
    table = pa.Table.from_pandas(frame.reset_index(drop=True)[["f", "i", "s", "cat", "t"]])
    polars_frame = pl.DataFrame(
        {
            "i": rng.integers(0, 9, n),
            "s": rng.choice(["a", "b"], n).tolist(),
            "c": pl.Series(rng.choice(["x", "y"], n).tolist(), dtype=pl.Categorical),
        }
    )
    return [
        frame,
        frame["s"],
        frame.index,
        np.asfortranarray(rng.normal(size=(7, 5))),
        np.array([1, "1", None], dtype=object),
        np.float32(2.5),
        table,
        table.column("s"),
        polars_frame,
        polars_frame["c"],
    ]


_KEYS_SCRIPT = """
import json, pickle, sys
from moorage.keys.encoding import stable_hash
with open(sys.argv[1], "rb") as f:
    values = pickle.load(f)
print(json.dumps([stable_hash(v) for v in values]))
"""


def test_keys_are_the_same_in_other_processes_and_hash_seeds(tmp_path: Path) -> None:
    values = _batch()
    here = [stable_hash(v) for v in values]
    assert len(set(here)) == len(here)
    batch = tmp_path / "batch.pickle"
    batch.write_bytes(pickle.dumps(values))
    for seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", _KEYS_SCRIPT, str(batch)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.strip().splitlines()[-1]) == here, f"seed {seed}"


_LAZY_SCRIPT = """
import sys
from dataclasses import dataclass

import moorage
from moorage.keys import stable_hash

@dataclass
class Point:
    x: int
    tags: frozenset

stable_hash({"a": 1})
stable_hash(Point(1, frozenset({"p"})))
print(",".join(m for m in ("numpy", "pandas", "polars", "pyarrow") if m in sys.modules))
"""


def test_hashing_plain_values_imports_no_data_library() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _LAZY_SCRIPT], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"imported: {done.stdout.strip()}"
