"""Hashers for polars: DataFrame and Series, by schema and values.

A Series is its name, its polars dtype (built from the dtype's parts: time unit and
zone, decimal precision and scale, Enum categories, struct fields, list and array
inner types) and its values, read through Arrow (`Series.to_arrow`) and hashed as
`moorage.keys.libraries.arrow_tables` hashes an array: chunking, slicing, the bytes
under nulls and whether polars exports strings as ``large_string`` or ``string_view``
do not count. Categoricals are hashed by their string values (their physical codes
depend on the process's string cache). Dtypes Arrow cannot carry (``Object``,
``Int128``, ``UInt128``) are hashed element by element through the stable encoding;
nested dtypes holding them are refused (the key would be a guess).

polars' own ``hash`` is not used: its results are documented to change between
versions.
"""

from __future__ import annotations

from typing import Any

import polars as pl
from polars.datatypes import DataTypeClass

from moorage.keys.libraries.arrow_tables import array_content

__all__ = ["dtype_representation", "hash_frame", "hash_series"]


def hash_frame(df: pl.DataFrame) -> Any:
    """Height, schema (names and dtypes in order), then each column's values."""
    schema = [(name, dtype_representation(dtype)) for name, dtype in df.schema.items()]
    return ("frame", df.height, schema, [_content(series) for series in df.get_columns()])


def hash_series(series: pl.Series) -> Any:
    """Name, dtype and values."""
    return ("series", series.name, dtype_representation(series.dtype), _content(series))


def dtype_representation(dtype: pl.DataType | DataTypeClass) -> Any:
    """A polars dtype as plain values, its parameters included."""
    if isinstance(dtype, pl.List):
        return ("List", dtype_representation(dtype.inner))
    if isinstance(dtype, pl.Array):
        return ("Array", tuple(dtype.shape), dtype_representation(dtype.inner))
    if isinstance(dtype, pl.Struct):
        return ("Struct", [(f.name, dtype_representation(f.dtype)) for f in dtype.fields])
    if isinstance(dtype, pl.Enum):
        return ("Enum", dtype.categories.to_list())
    if isinstance(dtype, pl.Datetime):
        return ("Datetime", dtype.time_unit, dtype.time_zone)
    if isinstance(dtype, pl.Duration):
        return ("Duration", dtype.time_unit)
    if isinstance(dtype, pl.Decimal):
        return ("Decimal", dtype.precision, dtype.scale)
    return repr(dtype)  # a dtype without parameters: "Int64", "String", "Categorical"


#: Dtypes Arrow cannot carry, hashed element by element (exact Python values).
_ELEMENT_WISE = tuple(
    getattr(pl, name) for name in ("Object", "Int128", "UInt128") if hasattr(pl, name)
)


def _content(series: pl.Series) -> Any:
    if series.dtype in _ELEMENT_WISE:
        return ("elements", series.to_list())
    return ("arrow", array_content(series.to_arrow()))
