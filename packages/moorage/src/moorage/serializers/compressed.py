"""The ``compressed`` serializer, wrapping another one, and its two presets.

``compressed`` (pickle with lzma by default), ``compressed/pickle`` and
``compressed/json``. Writing streams the inner serializer's parts through the compressor
where the library allows it; reading decompresses incrementally and stops as soon as the
output passes its limit, so a few bytes claiming gigabytes are refused early.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from moorage.buffers import BytesLike
from moorage.config.settings import get_settings
from moorage.serializers.base import Classes, Serializer
from moorage.serializers.compression import (
    compress_parts,
    compression_functions,
    decompress_bounded,
)
from moorage.serializers.fields import SerializerField
from moorage.serializers.json_serializer import JSONSerializer
from moorage.serializers.pickle_serializer import PickleSerializer

__all__ = ["CompressedJSONSerializer", "CompressedPickleSerializer", "CompressedSerializer"]


class CompressedSerializer(Serializer):
    """Compresses the output of another serializer (default: pickle with lzma)."""

    type: str = "compressed"
    serializer: SerializerField = Field(default_factory=lambda: PickleSerializer())
    compressionlib: str = "lzma"

    def check_usable(self) -> None:
        self.serializer.check_usable()

    def runs_no_code(self) -> bool:
        """As safe as the serializer it wraps (a stored description may put pickle
        inside ``compressed/json``: the inner one is what decodes)."""
        return self.serializer.runs_no_code()

    def dumps(self, obj: Any) -> bytes:
        compress, _ = compression_functions(self.compressionlib)
        return compress(self.serializer.dumps(obj))

    def dump_parts_measured(self, obj: Any) -> tuple[list[BytesLike], int]:
        """The compressed payload as buffers, and the length of the uncompressed bytes
        (stored in a native record's metadata, the cap when it is read back)."""
        streamed = compress_parts(self.compressionlib, self.serializer.dump_parts(obj))
        if streamed is not None:
            return list(streamed[0]), streamed[1]
        compress, _ = compression_functions(self.compressionlib)
        inner = self.serializer.dumps(obj)
        return [compress(inner)], len(inner)

    def dump_parts(self, obj: Any) -> list[BytesLike]:
        return self.dump_parts_measured(obj)[0]

    def loads(self, data: BytesLike) -> Any:
        limit = get_settings().max_payload_bytes
        return self.loads_bounded(data, limit, why="the max_payload_bytes setting")

    def loads_bounded(self, data: BytesLike, limit: int, *, why: str, exact: bool = False) -> Any:
        """`loads`, decompressing incrementally: `~moorage.errors.RecordCorrupted` as soon
        as the uncompressed bytes pass ``limit`` (or, ``exact``, differ from it)."""
        raw = decompress_bounded(self.compressionlib, data, limit, why=why, exact=exact)
        return self.serializer.loads(raw)

    def trusted_classes(self) -> Classes | None:
        return self.serializer.trusted_classes()

    def with_trusted_classes(self, classes: Classes) -> Serializer:
        inner = self.serializer.with_trusted_classes(classes)
        if inner is self.serializer:
            return self
        return self.model_copy(update={"serializer": inner})


class CompressedPickleSerializer(CompressedSerializer):
    """Preset: pickle, compressed."""

    type: str = "compressed/pickle"
    serializer: SerializerField = Field(default_factory=lambda: PickleSerializer())


class CompressedJSONSerializer(CompressedSerializer):
    """Preset: json, compressed."""

    type: str = "compressed/json"
    serializer: SerializerField = Field(default_factory=lambda: JSONSerializer())
