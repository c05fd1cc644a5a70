"""The wire format of the ``msgpack`` serializer: values packed into bytes and back.

Plain values are native msgpack: nil, booleans, integers, floats, UTF-8 strings (str),
bin (bytes), arrays (list) and maps (dict, with keys of any supported type). The other
supported types are msgpack extension types, listed in `ExtCode`
(`moorage_msgpack.extension_types`).

Tuples, sets and frozensets are native arrays whose first item is an empty *marker*
extension. They are never an extension wrapping a packed array: decoding such nested
payloads would re-enter the unpacker once per level, and each level takes a large C
stack frame, so a deep payload could crash the reader. With markers the whole payload is
decoded in one pass, within msgpack's own nesting limit.

The codes are a stored format: once written, a code keeps its meaning forever. A new
type gets a new code; an existing code's data never changes shape. Decoding a code this
version does not know raises `moorage.SerializationError`, never a guess.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack  # type: ignore[import-untyped, unused-ignore]

from moorage.errors import SerializationError
from moorage.serializers.failures import serialization_errors
from moorage.serializers.json_values import qualified_name
from moorage_msgpack.extension_types import SCALARS, ExtCode, encode_bigint

__all__ = ["SUPPORTED", "ExtCode", "Packer", "decode", "encode"]

#: What the serializer encodes, for error messages.
SUPPORTED = (
    "None, bool, int, float, str, bytes, list, dict, tuple, set, frozenset, datetime, "
    "date, time, timedelta, UUID and Decimal"
)

_NATIVE_INT_MIN = -(2**63)
_NATIVE_INT_MAX = 2**64 - 1

#: ``ExtType((code, data))`` without re-checking arguments that are valid by construction.
_ext_type: Callable[[tuple[int, bytes]], Any] = msgpack.ExtType._make


# -- tuples, sets, frozensets: marked arrays -------------------------------------------------


class _Marker:
    """What a container's marker extension decodes to, until its array is complete."""

    __slots__ = ("build", "code", "name")

    def __init__(self, code: ExtCode, cls: type) -> None:
        self.code = code
        self.build: Callable[[list[Any]], Any] = cls
        self.name = qualified_name(cls)

    def __repr__(self) -> str:
        return f"<msgpack marker of a {self.name}>"


_CONTAINERS: dict[type, tuple[ExtCode, Any]] = {
    tuple: (ExtCode.TUPLE, _ext_type((ExtCode.TUPLE, b""))),
    set: (ExtCode.SET, _ext_type((ExtCode.SET, b""))),
    frozenset: (ExtCode.FROZENSET, _ext_type((ExtCode.FROZENSET, b""))),
}
_MARKERS: dict[int, _Marker] = {code: _Marker(code, cls) for cls, (code, _) in _CONTAINERS.items()}


# -- encoding --------------------------------------------------------------------------------


def _plain_int(value: int) -> Any:
    exact = int.__int__(value)
    if _NATIVE_INT_MIN <= exact <= _NATIVE_INT_MAX:
        return exact
    return _ext_type((ExtCode.BIGINT, encode_bigint(exact)))


#: With ``strict_types=False``: subclasses of natively packed types, as their base type.
_DOWNCASTS: dict[type, Callable[[Any], Any]] = {
    int: _plain_int,
    float: float.__float__,
    str: str.__str__,
    bytes: bytes.__bytes__,
    bytearray: bytes,
    list: list,
    dict: dict,
}


def _as(base: type, value: Any) -> Any:
    """``value`` in the form msgpack packs for the supported type ``base``."""
    scalar = SCALARS.get(base)
    if scalar is not None:
        return _ext_type((scalar.code, scalar.encode(value)))
    container = _CONTAINERS.get(base)
    if container is not None:
        return [container[1], *value]
    return _DOWNCASTS[base](value)


class Packer:
    """Packs values to msgpack bytes; see `ExtCode` for the types beyond msgpack's own.

    ``strict_types`` refuses subclasses of the supported types (an ``OrderedDict``, an
    ``IntEnum``, a named tuple) instead of storing them as their base type.
    """

    def __init__(self, strict_types: bool = True) -> None:
        self.strict_types = strict_types

    def pack(self, value: Any) -> bytes:
        # msgpack's strict_types=True keeps it from packing tuples (and subclasses) as
        # arrays: every type it does not pack exactly comes to `_default`.
        data: bytes = msgpack.packb(
            value, default=self._default, use_bin_type=True, strict_types=True, datetime=False
        )
        return data

    def _default(self, value: Any) -> Any:
        cls = type(value)
        if cls in SCALARS or cls in _CONTAINERS:
            return _as(cls, value)
        for base in cls.__mro__[1:]:
            if base in SCALARS or base in _CONTAINERS or base in _DOWNCASTS:
                break
        else:
            raise SerializationError(
                f"the msgpack serializer cannot encode a {qualified_name(cls)}; it handles "
                f"{SUPPORTED}. Use serializer='pickle' for other objects"
            )
        if self.strict_types:
            raise SerializationError(
                f"the msgpack serializer does not encode a {qualified_name(cls)}, a subclass "
                f"of {base.__qualname__}, with strict_types=True (the default), so that "
                "nothing comes back as another type. Use MsgpackSerializer(strict_types="
                f"False) to store it as a plain {base.__qualname__}, or serializer='pickle' "
                "to keep its type"
            )
        return _as(base, value)


_PACKERS = {True: Packer(strict_types=True), False: Packer(strict_types=False)}


def encode(value: Any, strict_types: bool = True) -> bytes:
    """``value`` as msgpack bytes; `SerializationError` for what cannot be encoded."""
    with serialization_errors(lambda exc: _cannot_encode(value, exc)):
        return _PACKERS[strict_types].pack(value)


def _cannot_encode(value: Any, exc: Exception) -> str:
    # e.g. a str with lone surrogates; msgpack raises ValueError past its nesting limit.
    if isinstance(exc, RecursionError) or "recursion limit" in str(exc):
        why = "it is nested too deeply, or a container holds itself"
    else:
        why = str(exc)
    return f"the msgpack serializer cannot encode a {qualified_name(type(value))}: {why}"


# -- decoding --------------------------------------------------------------------------------


def _malformed(name: str, code: int, exc: Exception) -> SerializationError:
    return SerializationError(
        f"the msgpack payload holds a malformed {name} (extension type {code}): {exc!r}"
    )


_SCALAR_DECODERS: dict[int, tuple[str, Callable[[bytes], Any]]] = {
    scalar.code: (qualified_name(cls), scalar.decode) for cls, scalar in SCALARS.items()
}


class _Decoding:
    """The hooks of one `decode` call; counts markers not yet turned into containers."""

    __slots__ = ("open_markers",)

    def __init__(self) -> None:
        self.open_markers = 0

    def ext_hook(self, code: int, data: bytes) -> Any:
        marker = _MARKERS.get(code)
        if marker is not None:
            if data:
                raise _malformed(marker.name, code, ValueError("a marker has no data"))
            self.open_markers += 1
            return marker
        known = _SCALAR_DECODERS.get(code)
        if known is None:
            raise SerializationError(
                f"the msgpack payload holds extension type {code}, which this version of "
                "moorage-msgpack does not know; it was written by a newer moorage-msgpack "
                "or another program. Upgrade moorage-msgpack, or read the record where it "
                "was written"
            )
        name, decoder = known
        try:
            return decoder(data)
        except Exception as exc:
            raise _malformed(name, code, exc) from exc

    def list_hook(self, items: list[Any]) -> Any:
        if not items:
            return items
        marker = items[0]
        if type(marker) is not _Marker:
            return items
        self.open_markers -= 1
        del items[0]
        try:
            return marker.build(items)
        except TypeError as exc:  # an unhashable set member
            raise _malformed(marker.name, marker.code, exc) from exc


def decode(data: Any) -> Any:
    """The value packed in ``data``; `SerializationError` for a malformed payload."""
    hooks = _Decoding()
    with serialization_errors(lambda exc: f"the payload is not valid msgpack: {exc!r}"):
        value = msgpack.unpackb(
            data,
            ext_hook=hooks.ext_hook,
            list_hook=hooks.list_hook,
            raw=False,
            strict_map_key=False,
            timestamp=3,
        )
    if hooks.open_markers:
        raise SerializationError(
            "the msgpack payload holds a tuple or set marker (extension type 8, 9 or 10) "
            "that does not start an array; it was not written by moorage-msgpack"
        )
    return value
