"""The stored format, byte by byte: extension codes and their data must never change.

The expected bytes are written out by hand from the msgpack spec and the table in
docs/serializers/msgpack.md, not produced by the code under test.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import msgpack
import pytest

from moorage.errors import SerializationError
from moorage_msgpack import ExtCode, MsgpackSerializer


def text(value: str) -> str:
    return value.encode().hex()


# fixext1..16: d4 d5 d6 d7 d8 <code> <data>; ext8: c7 <length> <code> <data>
GOLDEN: list[tuple[Any, str]] = [
    (None, "c0"),
    (True, "c3"),
    (-1, "ff"),
    (2**64 - 1, "cf ffffffffffffffff"),  # still native
    (1.5, "cb 3ff8000000000000"),
    ("é", "a2 c3a9"),
    (b"\x00", "c4 01 00"),  # bin, not str
    ([1, "a"], "92 01 a1 61"),
    ({1: 2}, "81 01 02"),  # a non-str key stays a native map key
    # Datetimes, dates and times are ISO 8601 text: ext8 (c7), length, code, text.
    (
        dt.datetime(2024, 9, 1, 12, 0, 30, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        "c7 20 01" + text("2024-09-01T12:00:30.123456+02:00"),
    ),
    (dt.datetime(2000, 1, 2, 3, 4, 5), "c7 13 01" + text("2000-01-02T03:04:05")),
    (
        dt.datetime(2024, 1, 1, tzinfo=ZoneInfo("Europe/Paris")),
        "c7 27 01" + text("2024-01-01T00:00:00+01:00[Europe/Paris]"),
    ),
    (
        dt.datetime(2024, 10, 27, 2, 30, tzinfo=ZoneInfo("Europe/Paris"), fold=1),
        "c7 2f 01" + text("2024-10-27T02:30:00+01:00[Europe/Paris][fold=1]"),
    ),
    (dt.date(2024, 2, 29), "c7 0a 02" + text("2024-02-29")),
    (dt.time(1, 2, 3, 4), "c7 0f 03" + text("01:02:03.000004")),
    (dt.time(8, 15, tzinfo=ZoneInfo("Asia/Tokyo")), "c7 14 03" + text("08:15:00[Asia/Tokyo]")),
    # timedelta: 12 bytes, days (signed), seconds, microseconds as 32-bit big-endian
    (dt.timedelta(days=-1, seconds=2, microseconds=3), "c7 0c 04 ffffffff 00000002 00000003"),
    (uuid.UUID(int=1), "d8 05 00000000000000000000000000000001"),
    (Decimal("1.10"), "d6 06 312e3130"),
    (Decimal("-NaN"), "d6 06 2d4e614e"),
    (2**64, "c7 09 07 010000000000000000"),
    (-(2**63) - 1, "c7 09 07 ff7fffffffffffffff"),
    # Containers: a native array whose first item is the empty marker extension (c7 00 code).
    ((1, 2), "93 c700 08 01 02"),
    ((), "91 c700 08"),
    ({1}, "92 c700 09 01"),
    (frozenset(), "91 c700 0a"),
    ([(1,)], "91 92 c700 08 01"),
    ({(1,): frozenset()}, "81 92 c700 08 01 91 c700 0a"),  # a tuple key
]


@pytest.mark.parametrize(("value", "expected"), GOLDEN, ids=[repr(v)[:40] for v, _ in GOLDEN])
def test_golden_bytes(value: Any, expected: str) -> None:
    serializer = MsgpackSerializer()
    data = serializer.dumps(value)
    assert data.hex() == expected.replace(" ", "")
    back = serializer.loads(bytes.fromhex(expected.replace(" ", "")))
    assert type(back) is type(value)
    if isinstance(value, Decimal):
        assert back.compare_total(value) == 0  # NaN never equals itself
    else:
        assert back == value


def test_codes_are_the_documented_table() -> None:
    assert {code.name: int(code) for code in ExtCode} == {
        "DATETIME": 1,
        "DATE": 2,
        "TIME": 3,
        "TIMEDELTA": 4,
        "UUID": 5,
        "DECIMAL": 6,
        "BIGINT": 7,
        "TUPLE": 8,
        "SET": 9,
        "FROZENSET": 10,
    }


@pytest.mark.parametrize("code", [0, 11, 42, 127, -2, -128])
def test_unknown_extension_code_is_refused(code: int) -> None:
    # {"x": [fixext4 of ``code``]}, by hand: msgpack-python refuses to make negative codes.
    payload = b"\x81\xa1x\x91\xd6" + code.to_bytes(1, "big", signed=True) + b"data"
    with pytest.raises(SerializationError, match=rf"extension type {code}\b.*Upgrade"):
        MsgpackSerializer().loads(payload)


def test_malformed_extension_names_the_type() -> None:
    payload = msgpack.packb(msgpack.ExtType(ExtCode.UUID, b"short"))
    with pytest.raises(SerializationError, match=r"malformed uuid\.UUID \(extension type 5\)"):
        MsgpackSerializer().loads(payload)


def datetime_ext(iso: str) -> bytes:
    return msgpack.packb(msgpack.ExtType(ExtCode.DATETIME, iso.encode()))


def test_malformed_zone_key_is_refused_and_a_missing_zone_keeps_the_offset() -> None:
    with pytest.raises(SerializationError, match=r"malformed datetime\.datetime"):
        MsgpackSerializer().loads(datetime_ext("2024-01-01T12:00:00+01:00[../../etc/passwd]"))
    # A zone this machine's database lacks: the instant and offset survive.
    back = MsgpackSerializer().loads(datetime_ext("2024-01-01T12:00:00+01:00[Nowhere/Atlantis]"))
    assert back.utcoffset() == dt.timedelta(hours=1)
    assert back == dt.datetime(2024, 1, 1, 11, tzinfo=dt.UTC)


def test_zone_rules_that_disagree_with_the_stored_offset_keep_the_instant() -> None:
    # Paris is UTC+1 in January; a writer that said +5 wins, as a fixed offset.
    back = MsgpackSerializer().loads(datetime_ext("2024-01-01T12:00:00+05:00[Europe/Paris]"))
    assert back == dt.datetime(2024, 1, 1, 7, tzinfo=dt.UTC)
    assert back.tzinfo == dt.timezone(dt.timedelta(hours=5))


@pytest.mark.parametrize(
    "iso", ["", "yesterday", "2024-13-01T00:00:00", "2024-01-01T00:00:00[Europe/Paris", "\udcff"]
)
def test_malformed_datetime_text_is_refused(iso: str) -> None:
    payload = msgpack.packb(msgpack.ExtType(ExtCode.DATETIME, iso.encode(errors="surrogateescape")))
    with pytest.raises(SerializationError, match=r"malformed datetime\.datetime"):
        MsgpackSerializer().loads(payload)


@pytest.mark.parametrize(
    "payload",
    [
        "92 01 c700 08",  # a marker after the first item
        "c700 08",  # a marker alone
        "81 c700 09 01",  # a marker as a map key
        "91 c701 08 00",  # a marker with data
    ],
)
def test_stray_or_malformed_markers_are_refused(payload: str) -> None:
    with pytest.raises(SerializationError, match="marker"):
        MsgpackSerializer().loads(bytes.fromhex(payload.replace(" ", "")))


def test_deep_payloads_raise_instead_of_crashing() -> None:
    """Nesting far beyond msgpack's limit, in tuples and in plain arrays, ends in an error:
    the unpacker is never re-entered per level, so the C stack cannot overflow."""
    for level in ("92 c700 08", "92 c700 09", "91"):
        payload = bytes.fromhex(level.replace(" ", "")) * 100_000 + b"\x01"
        with pytest.raises(SerializationError, match="not valid msgpack"):
            MsgpackSerializer().loads(payload)


def test_tuples_nest_as_deep_as_lists() -> None:
    value: Any = "leaf"
    for depth in range(1000):
        value = (value, frozenset({depth})) if depth % 2 else [value]
    back = MsgpackSerializer().loads(MsgpackSerializer().dumps(value))
    for depth in reversed(range(1000)):
        if depth % 2:
            assert type(back) is tuple
            assert back[1] == frozenset({depth})
        else:
            assert type(back) is list
        back = back[0]
    assert back == "leaf"


def test_msgpack_timestamps_from_other_writers_read_as_utc_datetimes() -> None:
    moment = dt.datetime(2024, 9, 1, 12, 0, 30, 123456, tzinfo=dt.UTC)
    foreign = msgpack.packb({"at": moment}, datetime=True)  # extension type -1
    assert MsgpackSerializer().loads(foreign) == {"at": moment}
