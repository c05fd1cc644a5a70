"""Serializers as pydantic fields: a serializer, a type name or a stored description in.

A field annotated `SerializerField` takes a `Serializer`, a type name (``"json"``) or a
description (``{"type": "pickle", "picklelib": "pickle"}``, as record metadata stores
it), and dumps the description. A type nobody provides becomes an `UnknownSerializer`,
so a record's metadata can be read where its serializer's plugin is not installed.
`ConfiguredSerializerField` is for a serializer the user configures: checked at once.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Annotated, Any

import orjson
from pydantic import PlainSerializer, PlainValidator

from moorage.config.settings import get_settings
from moorage.serializers.base import (
    Serializer,
    UnknownSerializer,
    describing,
    serializer_types,
)

__all__ = [
    "ConfiguredSerializerField",
    "SerializerField",
    "coerce_serializer",
    "configured_serializer",
]

#: Fields that are configuration, never data: left out of stored descriptions, and
#: dropped from any description read back, so a record cannot widen what its reader allows.
_CONFIGURATION_ONLY = ("allowed_classes",)


def coerce_serializer(value: Any) -> Serializer:
    """Accept a serializer, a type name or a stored description (dict)."""
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return _from_description(value)  # a record's description: first, every read asks
    if isinstance(value, Serializer):
        return value
    if isinstance(value, str):
        return Serializer(type=value)
    raise TypeError(
        "a serializer must be a Serializer, a type name such as 'pickle' or 'json', or a "
        f"dict with a 'type' key; got {type(value).__name__}"
    )


#: Serializers built from stored descriptions, by the description (its items, or its JSON
#: when nested): every record read carries one, nearly always the same few, and building
#: one is most of what parsing a record's metadata costs. Serializers are frozen, so
#: sharing them is safe. Kept for one answer of `serializer_types` (plugins decide which
#: class a type names), and bounded. Each entry also keeps the ``json_allowed_classes``
#: setting it was built under when its serializer takes its trusted classes from there
#: (json), and None when it has none (pickle): only the former is checked against the
#: settings again on a hit, so reading a pickle record never asks for the settings.
_DESCRIBED: dict[Hashable, tuple[Serializer, tuple[Any, ...] | None]] = {}
_described_for: object = None
_DESCRIBED_MAX = 256


def _description_key(value: dict[str, Any]) -> Hashable | None:
    try:  # flat descriptions (nearly all): their items, in the order they were stored
        key: Hashable = tuple(value.items())
        hash(key)
        return key
    except TypeError:  # nested (a wrapped serializer): its JSON, if it is JSON at all
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            return None


def _allowed_setting() -> tuple[Any, ...]:
    return tuple(get_settings().json_allowed_classes)


def _from_description(value: dict[str, Any]) -> Serializer:
    global _described_for
    types = serializer_types()
    generation = types.generation()
    if _described_for != generation:
        _DESCRIBED.clear()
        _described_for = generation
    key = _description_key(value)
    if key is not None:
        found = _DESCRIBED.get(key)
        if found is not None and (found[1] is None or found[1] == _allowed_setting()):
            return found[0]
    cls = types.find(value["type"]) or UnknownSerializer
    if any(name in value for name in _CONFIGURATION_ONLY):
        value = {k: v for k, v in value.items() if k not in _CONFIGURATION_ONLY}
    # A json serializer takes its allowed classes from the settings as it is built.
    allowed = _allowed_setting()
    with describing():
        serializer = cls.model_validate(value)
    if key is not None:
        if len(_DESCRIBED) >= _DESCRIBED_MAX:
            _DESCRIBED.clear()
        _DESCRIBED[key] = (serializer, None if serializer.trusted_classes() is None else allowed)
    return serializer


SerializerField = Annotated[
    Serializer,
    PlainValidator(coerce_serializer),
    PlainSerializer(lambda s: s.to_dict(), return_type=dict),
]


def configured_serializer(value: Any) -> Serializer:
    """`coerce_serializer` for a serializer the user configures (a store's): checked at
    once (`Serializer.check_usable`), so a bad ``picklelib`` fails where it is given."""
    serializer = coerce_serializer(value)
    serializer.check_usable()
    return serializer


#: A store's serializer field: like `SerializerField`, and checked when it is set.
ConfiguredSerializerField = Annotated[
    Serializer,
    PlainValidator(configured_serializer),
    PlainSerializer(lambda s: s.to_dict(), return_type=dict),
]
