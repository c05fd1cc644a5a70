"""The ``json`` serializer: orjson, with tagged values for what JSON cannot hold.

Reading never imports a module: a payload builds only the standard value types and the
classes its reader allows (`JSONSerializer.allowed_classes`, else the
``json_allowed_classes`` setting). The encoding itself is `moorage.serializers.json_values`.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from pydantic import ConfigDict, Field

from moorage.buffers import BytesLike
from moorage.serializers import json_values
from moorage.serializers.allowed import AllowedClasses, allowed_classes_from_settings
from moorage.serializers.base import Classes, Serializer

__all__ = ["JSONSerializer"]


class JSONSerializer(Serializer):
    """JSON via orjson, with tagged values for what JSON cannot hold (see `json_values`).

    Unknown fields (such as Prefect's ``jsonlib`` and ``object_encoder``) are kept so
    records read from Prefect can be written back unchanged.
    """

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)
    decodes_data_only: ClassVar[bool] = True

    type: str = "json"
    #: Classes a payload may name, beyond the standard value types: pydantic models,
    #: dataclasses, enums, exceptions. Classes or dotted names (``"myapp.models.Point"``),
    #: resolved when the serializer is built. Default: the ``json_allowed_classes`` setting.
    #: Configuration only: never stored in a record, never read from one.
    allowed_classes: AllowedClasses = Field(
        default_factory=lambda: allowed_classes_from_settings(), exclude=True
    )

    def dumps(self, obj: Any) -> bytes:
        return json_values.dumps(obj)

    def loads(self, data: BytesLike) -> Any:
        return json_values.loads(data, _tags(self.allowed_classes))

    def trusted_classes(self) -> Classes | None:
        return self.allowed_classes

    def with_trusted_classes(self, classes: Classes) -> Serializer:
        if classes == self.allowed_classes:
            return self
        return self.model_copy(update={"allowed_classes": classes})


@functools.lru_cache(maxsize=64)
def _tags(classes: Classes) -> json_values.Allowed:
    return json_values.allowed_by_name(classes)
