"""`ResultRecord`: a result and its metadata (`moorage.records`), with Prefect 3's methods
to turn it into bytes and back, which are thin calls into this layer's codecs (they work
on metadata and payloads only). Exported as ``moorage.records.ResultRecord`` too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from moorage.buffers import BytesLike
from moorage.format import codec
from moorage.format.native import encode_native, native_metadata, payload_parts, serialize_value
from moorage.records.metadata import ResultRecordMetadata
from moorage.serializers.base import Serializer
from moorage.serializers.compressed import CompressedSerializer

__all__ = ["ResultRecord"]

R = TypeVar("R")


class ResultRecord(BaseModel, Generic[R]):
    """A result and its metadata."""

    model_config = ConfigDict(arbitrary_types_allowed=True, defer_build=True)

    metadata: ResultRecordMetadata
    result: R

    @property
    def expiration(self) -> dt.datetime | None:
        return self.metadata.expiration

    @property
    def serializer(self) -> Serializer:
        return self.metadata.serializer

    def serialize_result(self) -> bytes:
        """The payload: the serializer's output for `result`."""
        return b"".join(self.serialize_result_parts())

    def serialize_result_parts(self) -> list[BytesLike]:
        """The payload as buffers to write in order (see `Serializer.dump_parts`): large
        buffers of the result are referenced, not copied."""
        return serialize_value(self.serializer, self.result)[0]

    def serialize_metadata(self) -> bytes:
        return self.metadata.dump_bytes()

    def to_parts(
        self,
        payload: BytesLike | Sequence[BytesLike] | None = None,
        signing_key: bytes | None = None,
        detached: bool = False,
    ) -> list[BytesLike]:
        """Native record buffers for this record, with its payload's length and checksum
        (and a compressed payload's uncompressed length) in the metadata written; the
        record itself is left as it is. ``payload`` (one buffer or its parts, from
        `serialize_result_parts`) saves serializing again."""
        if payload is None:
            parts, uncompressed = serialize_value(self.serializer, self.result)
        else:
            parts = payload_parts(payload)
            uncompressed = self.metadata.uncompressed_length
            if uncompressed is None and isinstance(self.serializer, CompressedSerializer):
                uncompressed = serialize_value(self.serializer, self.result)[1]  # measured
        meta_bytes, _ = native_metadata(self.metadata, parts, signing_key, uncompressed)
        return encode_native(meta_bytes, parts, signing_key, detached)

    def serialize(self, signing_key: bytes | None = None) -> bytes:
        """The whole record in the native format."""
        return b"".join(self.to_parts(signing_key=signing_key))

    @classmethod
    def deserialize(
        cls,
        data: BytesLike,
        backup_serializer: Serializer | None = None,
        *,
        key: str = "<bytes>",
        where: str = "memory",
        signing_key: bytes | None = None,
    ) -> ResultRecord[Any]:
        """Read a record in any format moorage understands.

        Native and Prefect 3 records are recognised by their first bytes; anything else
        is a raw payload, decoded with ``backup_serializer`` (a `RecordCorrupted` error
        without one).
        """
        decoded = codec.decode_record(data, key, where, backup_serializer, signing_key)
        return ResultRecord(metadata=decoded.metadata, result=decoded.value)

    @classmethod
    def deserialize_from_result_and_metadata(
        cls, result: BytesLike, metadata: BytesLike, *, key: str = "<bytes>", where: str = "memory"
    ) -> ResultRecord[Any]:
        """Rebuild a record from a payload and metadata stored apart."""
        decoded = codec.decode_split(metadata, result, key, where, None)
        return ResultRecord(metadata=decoded.metadata, result=decoded.value)
