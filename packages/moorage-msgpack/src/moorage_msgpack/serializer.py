"""`MsgpackSerializer`: the ``msgpack`` serializer type."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from moorage.buffers import BytesLike
from moorage.serializers.base import Serializer
from moorage_msgpack import packing

__all__ = ["MsgpackSerializer"]


class MsgpackSerializer(Serializer):
    """msgpack payloads, with extension types for what msgpack cannot hold natively.

    Handles None, bool, int (any size), float, str, bytes, list, dict (keys of any
    supported type), tuple, set, frozenset, datetime, date, time, timedelta, UUID and
    Decimal; see `moorage_msgpack.ExtCode` for the stored format. Anything else raises
    `moorage.SerializationError`: use the ``pickle`` serializer for arbitrary objects.
    """

    decodes_data_only: ClassVar[bool] = True

    type: str = "msgpack"
    strict_types: bool = Field(
        default=True,
        description=(
            "Refuse subclasses of the supported types (OrderedDict, IntEnum, named tuples) "
            "instead of storing them as their base type, so nothing comes back as another "
            "type."
        ),
    )

    def dumps(self, obj: Any) -> bytes:
        return packing.encode(obj, strict_types=self.strict_types)

    def loads(self, data: BytesLike) -> Any:
        return packing.decode(data)
