"""Property tests: any nesting of the supported types round-trips exactly, and no payload,
however broken, raises anything but SerializationError."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moorage.errors import SerializationError
from moorage_msgpack import MsgpackSerializer

from .samples import typed

# No wall-clock limits on a shared machine: deadline=None.
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_DAY = dt.timedelta(hours=23, minutes=59, seconds=59, microseconds=999999)
fixed_offsets = st.builds(dt.timezone, st.timedeltas(min_value=-_DAY, max_value=_DAY))
zones = st.none() | st.timezones() | fixed_offsets

hashable_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**130), max_value=2**130),
    st.floats(),  # NaN and -0.0 included: `typed` compares floats by repr
    st.text(),
    st.binary(),
    st.datetimes(timezones=zones),
    st.dates(),
    st.times(timezones=zones),
    st.timedeltas(),
    st.uuids(),
    # A signalling NaN cannot be hashed, so it is no set member or key; see `leaves`.
    st.decimals().filter(lambda d: not d.is_snan()),
)
hashables = st.recursive(
    hashable_leaves,
    lambda inner: st.lists(inner, max_size=3).map(tuple) | st.frozensets(inner, max_size=3),
    max_leaves=6,
)
leaves = hashable_leaves | st.decimals()
values = st.recursive(
    leaves | hashables,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(hashables | st.text(), inner, max_size=4),
        st.sets(hashables, max_size=4),
        st.frozensets(hashables, max_size=4),
    ),
    max_leaves=25,
)


@pytest.mark.parametrize("strict_types", [True, False])
@PROPERTY
@given(value=values)
def test_nested_values_round_trip_exactly(strict_types: bool, value: Any) -> None:
    serializer = MsgpackSerializer(strict_types=strict_types)
    data = serializer.dumps(value)
    assert type(data) is bytes
    assert typed(serializer.loads(data)) == typed(value)
    assert typed(serializer.loads(memoryview(b"x" + data)[1:])) == typed(value)


@PROPERTY
@given(payload=st.binary(max_size=64))
def test_random_bytes_decode_or_raise_serialization_error(payload: bytes) -> None:
    try:
        MsgpackSerializer().loads(payload)
    except SerializationError:
        pass


@PROPERTY
@given(value=values, data=st.data())
def test_damaged_payloads_decode_or_raise_serialization_error(value: Any, data: Any) -> None:
    payload = bytearray(MsgpackSerializer().dumps(value))
    where = data.draw(st.integers(min_value=0, max_value=len(payload) - 1), label="where")
    payload[where] = data.draw(st.integers(0, 255), label="byte")
    cut = data.draw(st.integers(min_value=0, max_value=len(payload)), label="cut")
    for damaged in (bytes(payload), bytes(payload[:cut])):
        try:
            MsgpackSerializer().loads(damaged)
        except SerializationError:
            pass
