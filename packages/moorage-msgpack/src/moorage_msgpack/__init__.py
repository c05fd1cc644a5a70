"""moorage-msgpack: the ``msgpack`` serializer.

Registers the serializer type ``msgpack`` (`MsgpackSerializer`), so
``ResultStore(serializer="msgpack")`` and ``Serializer(type="msgpack")`` use it once this
distribution is installed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moorage.plugins import hookimpl
from moorage_msgpack.extension_types import ExtCode
from moorage_msgpack.serializer import MsgpackSerializer

__all__ = ["ExtCode", "MsgpackSerializer", "register_serializers"]


@hookimpl
def register_serializers(register: Callable[[str, type[Any]], None]) -> None:
    """Serve the serializer type ``msgpack`` with `MsgpackSerializer`."""
    register(MsgpackSerializer.type_name(), MsgpackSerializer)
