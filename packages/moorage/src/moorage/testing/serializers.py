"""`SerializerContract`: the tests every serializer must pass."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import pytest

from moorage.errors import SerializationError
from moorage.plugins.catalog import lookup_serializer_class
from moorage.serializers.base import Serializer, UnknownSerializer
from moorage.serializers.fields import coerce_serializer

__all__ = ["DEFAULT_GARBAGE", "DEFAULT_SAMPLES", "SerializerContract"]

#: Values every serializer must round-trip: plain JSON-shaped data, nothing exotic.
DEFAULT_SAMPLES: tuple[Any, ...] = (
    0,
    1,
    -7,
    2**53 + 1,
    0.0,
    3.5,
    -0.1,
    1e300,
    "",
    "text",
    "ünïcödé ✓ 漢字 \U0001f600",
    'quotes " and \\ backslash\n',
    True,
    False,
    None,
    [],
    {},
    [1, "two", 3.0, None, True, [], {}],
    {"a": 1, "b": [1, 2, {"c": "d"}], "e": {"f": {"g": None}}, "h": False},
    [[[[["deep"]]]]],
)

#: Payloads ``loads`` must refuse with `moorage.SerializationError`.
DEFAULT_GARBAGE: tuple[bytes, ...] = (
    b"",
    b"\x00\xff\xfe garbage \x80\x81",
    b"\x80\x05",
    b"{not json",
)


def _type_mismatch(expected: Any, actual: Any, path: str = "value") -> str | None:
    """Where ``actual`` differs in type from ``expected`` (recursively), or None."""
    if type(expected) is not type(actual):
        return f"{path} is a {type(actual).__name__}, expected a {type(expected).__name__}"
    if isinstance(expected, (list, tuple)):
        for i, (e, a) in enumerate(zip(expected, actual, strict=False)):
            found = _type_mismatch(e, a, f"{path}[{i}]")
            if found:
                return found
    elif isinstance(expected, dict):
        for k, e in expected.items():
            if k in actual:
                found = _type_mismatch(e, actual[k], f"{path}[{k!r}]")
                if found:
                    return found
    return None


class SerializerContract:
    """Contract tests for a `moorage.serializers.base.Serializer`.

    Subclass it in your own test suite (name the subclass ``Test...``) and override the
    ``serializer`` fixture to return an instance of your serializer::

        import pytest
        from moorage.testing import DEFAULT_SAMPLES, SerializerContract
        from my_plugin import MySerializer

        class TestMySerializer(SerializerContract):
            extra_samples = (b"raw bytes", (1, 2))        # added to the defaults
            unserializable_samples = (object(),)          # dumps must refuse these

            @pytest.fixture
            def serializer(self):
                return MySerializer()

    Values tested:

    - ``samples``: round-trips every serializer must pass (default `DEFAULT_SAMPLES`,
      JSON-shaped data); replace it to narrow the defaults;
    - ``extra_samples``: added to ``samples``; put your serializer's specialities here;
    - the ``serializer_samples`` fixture combines the two; override it for samples that
      need other fixtures;
    - ``check_types``: round-tripped values must have the original types, recursively
      (``True`` must not come back as ``1``); set False for formats that cannot keep
      them;
    - ``garbage``: payloads ``loads`` must refuse with `moorage.SerializationError`;
    - ``unserializable_samples``: values ``dumps`` must refuse with
      `moorage.SerializationError` (none by default: that test is skipped).

    The serializer must also be registered (through a ``register_serializers`` hook,
    or by subclassing `Serializer` with a new ``type`` default) so that a record's
    stored description, ``serializer.to_dict()``, builds it again.
    """

    samples: ClassVar[Sequence[Any]] = DEFAULT_SAMPLES
    extra_samples: ClassVar[Sequence[Any]] = ()
    check_types: ClassVar[bool] = True
    garbage: ClassVar[Sequence[bytes]] = DEFAULT_GARBAGE
    unserializable_samples: ClassVar[Sequence[Any]] = ()

    @pytest.fixture
    def serializer(self) -> Serializer:
        """Override: return an instance of your serializer."""
        pytest.fail(
            f"{type(self).__name__} subclasses SerializerContract but does not override the "
            "`serializer` fixture; define `@pytest.fixture def serializer(self)` returning "
            "an instance of your serializer",
            pytrace=False,
        )

    @pytest.fixture
    def serializer_samples(self) -> list[Any]:
        """The values to round-trip: ``samples`` plus ``extra_samples``."""
        return [*self.samples, *self.extra_samples]

    # -- helpers ---------------------------------------------------------------------------

    def _check_round_trips(
        self,
        samples: Sequence[Any],
        dumps: Callable[[Any], bytes],
        loads: Callable[[Any], Any],
        wrap: Callable[[bytes], Any] = bytes,
        how: str = "loads(dumps(x))",
    ) -> None:
        failures: list[str] = []
        for i, sample in enumerate(samples):
            try:
                back = loads(wrap(dumps(sample)))
            except Exception as exc:
                failures.append(f"sample #{i} {sample!r}: {how} raised {exc!r}")
                continue
            if back != sample:
                failures.append(f"sample #{i} {sample!r}: {how} gave {back!r}")
            elif self.check_types:
                mismatch = _type_mismatch(sample, back)
                if mismatch:
                    failures.append(f"sample #{i} {sample!r}: {how}: {mismatch}")
        assert not failures, "\n".join(failures)

    # -- tests -----------------------------------------------------------------------------

    def test_is_a_serializer(self, serializer: Serializer) -> None:
        assert isinstance(serializer, Serializer), (
            f"{type(serializer).__name__} must subclass moorage.serializers.base.Serializer"
        )
        assert not isinstance(serializer, UnknownSerializer), (
            f"the fixture built an UnknownSerializer for type {serializer.type!r}: the "
            "serializer's class is not registered"
        )
        assert isinstance(serializer.type, str)
        assert serializer.type

    def test_samples_are_given(self, serializer_samples: list[Any]) -> None:
        assert serializer_samples, "no samples to round-trip; keep at least the defaults"

    def test_dumps_returns_bytes(
        self, serializer: Serializer, serializer_samples: list[Any]
    ) -> None:
        for sample in serializer_samples:
            data = serializer.dumps(sample)
            assert type(data) is bytes, (
                f"dumps({sample!r}) returned a {type(data).__name__}, not bytes"
            )

    def test_round_trip(self, serializer: Serializer, serializer_samples: list[Any]) -> None:
        self._check_round_trips(serializer_samples, serializer.dumps, serializer.loads)

    @pytest.mark.parametrize(
        ("wrap", "how"),
        [
            (memoryview, "loads(memoryview(dumps(x)))"),
            (bytearray, "loads(bytearray(dumps(x)))"),
            # Records hand serializers a memoryview into a bigger buffer (header + payload).
            (
                lambda data: memoryview(b"HEAD" + data + b"TAIL")[4:-4],
                "loads(memoryview(b'HEAD' + dumps(x) + b'TAIL')[4:-4])",
            ),
        ],
        ids=["memoryview", "bytearray", "slice-of-a-larger-buffer"],
    )
    def test_loads_accepts_any_buffer(
        self,
        serializer: Serializer,
        serializer_samples: list[Any],
        wrap: Callable[[bytes], Any],
        how: str,
    ) -> None:
        self._check_round_trips(
            serializer_samples, serializer.dumps, serializer.loads, wrap=wrap, how=how
        )

    def test_to_dict_round_trip(
        self, serializer: Serializer, serializer_samples: list[Any]
    ) -> None:
        described = serializer.to_dict()
        assert isinstance(described, dict)
        assert described.get("type") == serializer.type
        stored = json.loads(json.dumps(described))  # record metadata is JSON
        assert stored == described, "to_dict() must return plain JSON values"
        rebuilt = coerce_serializer(stored)
        assert not isinstance(rebuilt, UnknownSerializer), (
            f"serializer type {serializer.type!r} is not registered: implement the "
            "register_serializers hook in your plugin (or subclass Serializer with a new "
            "'type' default) so coerce_serializer(serializer.to_dict()) finds it"
        )
        assert type(rebuilt) is type(serializer), (
            f"coerce_serializer(to_dict()) built a {type(rebuilt).__name__}, not a "
            f"{type(serializer).__name__}"
        )
        assert rebuilt == serializer, f"{rebuilt!r} != {serializer!r}"
        assert rebuilt.to_dict() == described
        self._check_round_trips(
            serializer_samples,
            serializer.dumps,
            rebuilt.loads,
            how="rebuilt.loads(original.dumps(x))",
        )

    def test_type_finds_registered_class(self, serializer: Serializer) -> None:
        cls = lookup_serializer_class(serializer.type)
        assert cls is not None, f"no serializer class is registered for {serializer.type!r}"
        assert isinstance(serializer, cls), (
            f"type {serializer.type!r} is registered as {cls.__qualname__}, but the "
            f"fixture's serializer is a {type(serializer).__qualname__}"
        )
        built = Serializer(**serializer.to_dict())
        assert type(built) is type(serializer)
        assert built == serializer

    def test_garbage_raises_serialization_error(self, serializer: Serializer) -> None:
        if not self.garbage:
            pytest.skip("no garbage payloads given")
        failures: list[str] = []
        for payload in self.garbage:
            try:
                result = serializer.loads(payload)
            except SerializationError:
                continue
            except Exception as exc:
                failures.append(
                    f"loads({payload!r}) raised {type(exc).__qualname__} ({exc}); wrap it in "
                    "moorage.SerializationError"
                )
            else:
                failures.append(f"loads({payload!r}) returned {result!r} instead of failing")
        assert not failures, "\n".join(failures)

    def test_unserializable_raises_serialization_error(self, serializer: Serializer) -> None:
        if not self.unserializable_samples:
            pytest.skip("no unserializable_samples given")
        failures: list[str] = []
        for sample in self.unserializable_samples:
            try:
                serializer.dumps(sample)
            except SerializationError:
                continue
            except Exception as exc:
                failures.append(
                    f"dumps({sample!r}) raised {type(exc).__qualname__} ({exc}); wrap it in "
                    "moorage.SerializationError"
                )
            else:
                failures.append(f"dumps({sample!r}) succeeded; it must fail")
        assert not failures, "\n".join(failures)
