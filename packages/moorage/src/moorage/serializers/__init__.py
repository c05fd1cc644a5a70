"""Serializers: how a value becomes payload bytes and back."""

from moorage.serializers.base import (
    CompressedJSONSerializer,
    CompressedPickleSerializer,
    CompressedSerializer,
    ConfiguredSerializerField,
    JSONSerializer,
    PickleSerializer,
    Serializer,
    SerializerField,
    UnknownSerializer,
    coerce_serializer,
)

__all__ = [
    "CompressedJSONSerializer",
    "CompressedPickleSerializer",
    "CompressedSerializer",
    "ConfiguredSerializerField",
    "JSONSerializer",
    "PickleSerializer",
    "Serializer",
    "SerializerField",
    "UnknownSerializer",
    "coerce_serializer",
]
