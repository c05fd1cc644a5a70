"""What the msgpack serializer keeps exactly, what it refuses, and how it says so."""

from __future__ import annotations

import collections
import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any, NamedTuple

import pydantic
import pytest

from moorage.errors import SerializationError
from moorage_msgpack import MsgpackSerializer

from .samples import RICH, typed

STRICT = MsgpackSerializer()
LENIENT = MsgpackSerializer(strict_types=False)


def round_trip(value: Any, serializer: MsgpackSerializer = STRICT) -> Any:
    return serializer.loads(serializer.dumps(value))


@pytest.mark.parametrize("value", RICH, ids=[repr(v)[:50] for v in RICH])
def test_rich_values_keep_types_offsets_zones_folds_and_exponents(value: Any) -> None:
    assert typed(round_trip(value)) == typed(value)


def test_a_typed_comparison_can_fail() -> None:
    assert typed((1,)) != typed([1])
    assert typed(True) != typed(1)
    assert typed(Decimal("1.1")) != typed(Decimal("1.10"))
    paris = RICH[6]
    assert typed(paris) != typed(paris.replace(fold=0))


@pytest.mark.parametrize("text", ["NaN", "-NaN", "NaN123", "sNaN", "-sNaN7"])
def test_decimal_nans_are_exact(text: str) -> None:
    back = round_trip(Decimal(text))
    assert type(back) is Decimal
    assert back.compare_total(Decimal(text)) == 0
    assert str(back) == text


def test_float_nan_survives() -> None:
    back = round_trip([float("nan")])
    assert back[0] != back[0]


def test_a_decimal_keeps_more_digits_than_the_context_precision() -> None:
    digits = "3." + "1415926535" * 10
    assert str(round_trip(Decimal(digits))) == digits


def test_integers_around_the_native_range() -> None:
    for n in (2**63 - 1, -(2**63), 2**64 - 1, 2**64, -(2**63) - 1, 10**100, -(10**100)):
        back = round_trip(n)
        assert back == n
        assert type(back) is int


def test_datetimes_keep_microseconds_and_offsets() -> None:
    odd = dt.timezone(dt.timedelta(hours=-9, minutes=-30, seconds=-1, microseconds=-999999))
    value = dt.datetime(2024, 3, 10, 1, 59, 59, 999999, tzinfo=odd)
    back = round_trip(value)
    assert back.microsecond == 999999
    assert back.utcoffset() == odd.utcoffset(None)
    assert back.replace(tzinfo=None) == value.replace(tzinfo=None)


@pytest.mark.parametrize(
    "offset", [dt.timedelta(microseconds=1), -dt.timedelta(hours=5, seconds=3, microseconds=7)]
)
def test_offsets_keep_their_microseconds(offset: dt.timedelta) -> None:
    # Python 3.11's fromisoformat reads "+00:00:00.000001" as UTC (found by hypothesis).
    zone = dt.timezone(offset)
    serializer = MsgpackSerializer()
    for value in (dt.time(0, 0, tzinfo=zone), dt.datetime(2020, 1, 1, tzinfo=zone)):
        assert serializer.loads(serializer.dumps(value)).utcoffset() == offset


def test_naive_stays_naive_and_utc_is_the_utc_singleton() -> None:
    assert round_trip(dt.datetime(2024, 1, 1)).tzinfo is None
    assert round_trip(dt.datetime(2024, 1, 1, tzinfo=dt.UTC)).tzinfo is dt.UTC


def test_bytearray_and_memoryview_come_back_as_bytes() -> None:
    assert round_trip([bytearray(b"ab"), memoryview(b"cd")]) == [b"ab", b"cd"]


class Outer:
    class Inner:
        pass


class Model(pydantic.BaseModel):
    x: int = 1


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (object(), "builtins.object"),
        (Outer.Inner(), f"{__name__}.Outer.Inner"),
        ({"deep": [1, (2, {Outer.Inner()})]}, f"{__name__}.Outer.Inner"),
        (1 + 2j, "builtins.complex"),
        (Model(), f"{__name__}.Model"),
    ],
)
def test_unknown_type_is_named_and_pickle_suggested(value: Any, name: str) -> None:
    with pytest.raises(SerializationError) as caught:
        STRICT.dumps(value)
    message = str(caught.value)
    assert f"cannot encode a {name};" in message
    assert "serializer='pickle'" in message
    with pytest.raises(SerializationError, match=name):
        LENIENT.dumps(value)


class Point(NamedTuple):
    x: int
    y: int


class Size(enum.IntEnum):
    HUGE = 2**70
    SMALL = 3


class Mood(str, enum.Enum):  # noqa: UP042 - the mixin, whose str() is "Mood.GLAD"
    GLAD = "glad"


class Stamp(dt.datetime):
    pass


class Tags(set[str]):
    pass


SUBCLASSED: list[tuple[Any, Any, str]] = [
    (collections.OrderedDict(a=1, b=2), {"a": 1, "b": 2}, "collections.OrderedDict"),
    (collections.defaultdict(list, a=[1]), {"a": [1]}, "collections.defaultdict"),
    (Point(1, 2), (1, 2), f"{__name__}.Point"),
    (Size.HUGE, 2**70, f"{__name__}.Size"),
    (Size.SMALL, 3, f"{__name__}.Size"),
    (Mood.GLAD, "glad", f"{__name__}.Mood"),
    (Stamp(2024, 1, 2, 3, tzinfo=dt.UTC), dt.datetime(2024, 1, 2, 3, tzinfo=dt.UTC), "Stamp"),
    (Tags({"a"}), {"a"}, f"{__name__}.Tags"),
    (bytearray.__new__(type("Buffer", (bytearray,), {})), b"", "Buffer"),
]


@pytest.mark.parametrize(("value", "plain", "name"), SUBCLASSED, ids=[n for *_, n in SUBCLASSED])
def test_subclasses_are_refused_when_strict_and_stored_as_their_base_when_not(
    value: Any, plain: Any, name: str
) -> None:
    with pytest.raises(SerializationError, match=rf"{name}, a subclass of .*strict_types=False"):
        STRICT.dumps({"k": value})
    back = round_trip({"k": value}, LENIENT)["k"]
    assert type(back) is type(plain)
    assert back == plain


@pytest.mark.parametrize("serializer", [STRICT, LENIENT], ids=["strict", "lenient"])
def test_too_deep_or_cyclic_values_raise_serialization_error(
    serializer: MsgpackSerializer,
) -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    deep_tuple: Any = ()
    for _ in range(5000):
        deep_tuple = (deep_tuple,)
    for value in (cyclic, deep_tuple):
        with pytest.raises(SerializationError, match="nested too deeply"):
            serializer.dumps(value)


def test_invalid_unicode_raises_serialization_error() -> None:
    with pytest.raises(SerializationError, match="surrogates not allowed"):
        STRICT.dumps({"text": "\udc80"})


def test_options_are_validated_and_the_serializer_is_frozen() -> None:
    with pytest.raises(pydantic.ValidationError):
        MsgpackSerializer(use_bin_type=False)  # type: ignore[call-arg]
    with pytest.raises(pydantic.ValidationError):
        STRICT.strict_types = False  # type: ignore[misc]
    assert MsgpackSerializer() == STRICT
    assert MsgpackSerializer(strict_types=False) != STRICT


def test_uuids_of_every_version_round_trip() -> None:
    values = [uuid.uuid1(), uuid.uuid3(uuid.NAMESPACE_DNS, "x"), uuid.uuid4(), uuid.UUID(int=0)]
    assert round_trip(values) == values
