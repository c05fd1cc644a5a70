"""`ResultRecordMetadata`: what is known about a stored result without decoding its payload.

A plain model (the format layer, `moorage.format`, turns it into bytes and back): Prefect
3's fields, plus the payload's length and checksum that native records carry.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from uuid import UUID

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from moorage.buffers import BytesLike
from moorage.errors import RecordCorrupted
from moorage.records import expiry
from moorage.serializers.base import description_of
from moorage.serializers.fields import SerializerField
from moorage.serializers.pickle_serializer import PickleSerializer
from moorage.version import __version__

__all__ = ["ResultRecordMetadata", "format_expiration"]


def format_expiration(value: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC ending in ``Z``, as Prefect writes it."""
    if value is None:
        return None
    return expiry.utc(value).isoformat().replace("+00:00", "Z")


class ResultRecordMetadata(BaseModel):
    """What is known about a stored result without decoding its payload."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    storage_key: str | None = None
    expiration: Annotated[dt.datetime, AfterValidator(expiry.utc)] | None = None
    serializer: SerializerField = Field(default_factory=lambda: PickleSerializer())
    moorage_version: str | None = __version__
    storage_block_id: UUID | None = None
    payload_length: int | None = None
    #: For compressed serializers: the length of the payload once decompressed.
    uncompressed_length: int | None = None
    checksum: str | None = None

    def is_expired(self, now: dt.datetime | None = None) -> bool:
        return expiry.is_expired(self.expiration, now)

    def to_dict(self) -> dict[str, Any]:
        """The metadata as JSON-ready values (a new dict each time, the caller's to keep)."""
        return self.encodable(self.serializer.to_dict())

    def encodable(self, serializer: dict[str, Any] | None = None) -> dict[str, Any]:
        """`to_dict`, to be encoded at once and dropped: the serializer's description
        (``serializer``, default `description_of` the serializer) may be shared, so
        nothing in the result may be changed but its top level."""
        data = {
            "storage_key": self.storage_key,
            "expiration": format_expiration(self.expiration),
            "serializer": description_of(self.serializer) if serializer is None else serializer,
            "moorage_version": self.moorage_version,
            "storage_block_id": None
            if self.storage_block_id is None
            else str(self.storage_block_id),
            "payload_length": self.payload_length,
            "uncompressed_length": self.uncompressed_length,
            "checksum": self.checksum,
        }
        if self.model_extra:
            data.update(self.model_extra)
        return data

    def dump_bytes(self) -> bytes:
        """The metadata as compact JSON bytes."""
        return orjson.dumps(self.to_dict())

    @classmethod
    def load_bytes(cls, data: BytesLike) -> ResultRecordMetadata:
        """Parse metadata JSON written by `dump_bytes` (or by Prefect 3)."""
        text = bytes(data) if isinstance(data, memoryview) else data  # a few hundred bytes
        try:  # pydantic-core parses and validates in one pass
            return cls.model_validate_json(text)
        except ValidationError as exc:
            first = exc.errors()[0]
            if first["type"] == "json_invalid":
                raise RecordCorrupted(f"record metadata is not valid JSON: {first['msg']}") from exc
            if first["type"] == "model_type" and not first["loc"]:
                raise RecordCorrupted("record metadata is not a JSON object") from exc
            raise
