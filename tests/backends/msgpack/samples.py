"""Sample values for the msgpack serializer's tests, and a typed comparison."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
PLUS_TWO = dt.timezone(dt.timedelta(hours=2))
#: An offset with seconds and microseconds: datetime allows them, and they must survive.
ODD_OFFSET = dt.timezone(-dt.timedelta(hours=3, minutes=7, seconds=11, microseconds=13))

DATETIMES: tuple[Any, ...] = (
    dt.datetime(2024, 9, 1, 12, 0, 30, 123456),
    dt.datetime(2024, 9, 1, 12, 0, 30, 123456, tzinfo=dt.UTC),
    dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=PLUS_TWO),
    dt.datetime(1, 1, 1, 0, 0),
    dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=ODD_OFFSET),
    dt.datetime(2024, 7, 14, 9, 30, tzinfo=PARIS),
    # 02:30 happens twice in Paris on 2024-10-27; fold=1 is the second one (UTC+1).
    dt.datetime(2024, 10, 27, 2, 30, tzinfo=PARIS, fold=1),
    dt.date(2024, 2, 29),
    dt.date(1, 1, 1),
    dt.time(0, 0),
    dt.time(23, 59, 59, 999999),
    dt.time(8, 15, 0, 1, tzinfo=PLUS_TWO),
    dt.time(8, 15, tzinfo=ZoneInfo("Asia/Tokyo")),
    dt.timedelta(0),
    dt.timedelta(days=-3, seconds=5, microseconds=7),
    dt.timedelta(days=999999999, seconds=86399, microseconds=999999),
)

NUMBERS: tuple[Any, ...] = (
    2**63 - 1,
    -(2**63),
    2**64 - 1,
    2**64,
    -(2**63) - 1,
    2**200,
    -(2**521) + 1,
    Decimal("1.10"),
    Decimal("-12345678901234567890.000001"),
    Decimal("0E-30"),
    Decimal("-0"),
    Decimal("1.23456789012345678901234567890123456789E+999"),
    Decimal("Infinity"),
    Decimal("-Infinity"),
    float("inf"),
    -0.0,
)

CONTAINERS: tuple[Any, ...] = (
    (),
    (1, "two", 3.0, None),
    ((1,), (2, [3, (4, ())])),
    [(1, 2), [3, 4]],
    set(),
    {1, 2, "three", (4, 5)},
    frozenset(),
    frozenset({"a", frozenset({"b"})}),
    b"",
    b"raw \x00\xff bytes",
    {1: "int key", (1, 2): "tuple key", None: "none", b"k": "bytes key", 2.5: "float"},
    {frozenset({1}): {dt.date(2024, 1, 1): [uuid.UUID(int=7)]}},
    {True: "bool key", "s": "str key"},
)

RICH: tuple[Any, ...] = (
    *DATETIMES,
    *NUMBERS,
    *CONTAINERS,
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    uuid.UUID(int=0),
    {
        "when": DATETIMES[1],
        "ids": [uuid.UUID(int=1), uuid.UUID(int=2)],
        "money": Decimal("0.01"),
        "flags": {True, False},
        "nested": [{"pair": (1, (2, (3,)))}, frozenset({(1, 2)})],
        "big": [2**70, -(2**70)],
        "took": dt.timedelta(seconds=1.5),
    },
)


def typed(value: Any) -> Any:
    """A hashable form of ``value`` that differs wherever a round trip could lose something:
    types (``True`` vs ``1``, tuple vs list), float signs and NaNs, a Decimal's exponent, a
    datetime's offset, zone and fold."""
    cls = type(value)
    if cls is list or cls is tuple:
        return (cls, tuple(typed(v) for v in value))
    if cls is set or cls is frozenset:
        return (cls, frozenset(typed(v) for v in value))
    if cls is dict:
        return (cls, frozenset((typed(k), typed(v)) for k, v in value.items()))
    if cls is float or cls is Decimal:
        return (cls, repr(value))
    if cls is dt.datetime or cls is dt.time:
        zone = getattr(value.tzinfo, "key", None)
        return (cls, value.replace(tzinfo=None), value.utcoffset(), zone, value.fold)
    return (cls, value)
