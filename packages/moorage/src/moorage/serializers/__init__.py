"""Serializers: how a value becomes payload bytes and back.

The base class and the way type names find classes are in `moorage.serializers.base`;
each built-in serializer has its own module. Importing this face also plugs the plugin
registry into that lookup (`moorage.plugins.catalog`), so ``Serializer(type="msgpack")``
finds a plugin's class however moorage was first imported.
"""

from moorage.serializers.base import Serializer, UnknownSerializer
from moorage.serializers.compressed import (
    CompressedJSONSerializer,
    CompressedPickleSerializer,
    CompressedSerializer,
)
from moorage.serializers.fields import ConfiguredSerializerField, SerializerField, coerce_serializer
from moorage.serializers.json_serializer import JSONSerializer
from moorage.serializers.pickle_serializer import PickleSerializer

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

# The plugin registry decides which class a type name means: plug it in (see the module
# docstring). It imports the modules above, never this face's names.
import moorage.plugins.catalog  # noqa: F401
