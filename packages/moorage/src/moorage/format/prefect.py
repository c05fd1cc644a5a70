"""Prefect 3's record format: reading it, and writing it on request.

Facts about the format (records written by Prefect 3.9.1): a combined record is one
compact JSON object ``{"metadata": {...}, "result": "<text>"}``; with separate metadata
storage, the metadata object alone is stored under the key and the text at
``storage_key`` in the result storage. The text is what Prefect's serializer emits:

- pickle: ``base64.encodebytes`` of the pickle (a newline every 76 characters);
- json: the JSON document itself, values JSON lacks tagged as ``{"__class__", "data"}``;
- compressed: ``base64.encodebytes`` of the compressed text of the inner serializer.

moorage's own serializers emit raw bytes, so this module converts between the two.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from moorage.buffers import BytesLike
from moorage.config.settings import get_settings
from moorage.errors import ConfigurationError, SerializationError
from moorage.records.metadata import ResultRecordMetadata, format_expiration
from moorage.serializers.base import Serializer
from moorage.serializers.compressed import CompressedSerializer
from moorage.serializers.compression import compression_functions, decompress_bounded
from moorage.serializers.json_serializer import JSONSerializer
from moorage.serializers.pickle_serializer import PickleSerializer

__all__ = [
    "PREFECT_VERSION",
    "damaged_record",
    "dumps_text",
    "encode_combined",
    "is_prefect_metadata",
    "is_prefect_record",
    "loads_text",
    "metadata_dict",
]

#: The Prefect version whose format moorage writes (stored in ``prefect_version``).
PREFECT_VERSION = "3.9.1"

_PREFECT_JSON = {
    "type": "json",
    "jsonlib": "json",
    "object_encoder": "prefect.serializers.prefect_json_object_encoder",
    "object_decoder": "prefect.serializers.prefect_json_object_decoder",
    "dumps_kwargs": {},
    "loads_kwargs": {},
}


def is_prefect_metadata(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("serializer"), dict)
        and ("prefect_version" in value or "storage_key" in value)
    )


def is_prefect_record(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and set(value) == {"metadata", "result"}
        and is_prefect_metadata(value["metadata"])
    )


def damaged_record(value: Any) -> str | None:
    """What is wrong with a JSON object shaped like a combined record that is not one, or
    None when it is not shaped like one (a raw JSON payload). Shaped like a record: a
    ``result`` key beside a key close to ``metadata`` (``metadatA``), or a ``metadata``
    key beside a key close to ``result``; such a document is a damaged record, never a
    value to return whole."""
    if not isinstance(value, dict) or is_prefect_record(value):
        return None
    keys = [k for k in value if isinstance(k, str)]
    if "metadata" in value and "result" in value:
        extra = sorted(k for k in keys if k not in ("metadata", "result"))
        if extra:
            return f"a Prefect record has only 'metadata' and 'result', not {extra}"
        return "its 'metadata' is not a Prefect metadata object (no 'serializer' object)"
    for present, wanted in (("result", "metadata"), ("metadata", "result")):
        if present not in value:
            continue
        for k in keys:
            if k != present and _close(k, wanted):
                return f"it has a key {k!r} where a Prefect record has {wanted!r}"
    return None


def _close(key: str, wanted: str) -> bool:
    if key.strip().lower() == wanted:
        return True
    import difflib  # only to name what a damaged record got wrong; 2 ms at import

    return difflib.SequenceMatcher(None, key.lower(), wanted).ratio() >= 0.75


def serializer_dict(serializer: Serializer) -> dict[str, Any]:
    """The serializer as Prefect describes it."""
    if isinstance(serializer, CompressedSerializer):
        return {
            "type": serializer.type,
            "serializer": serializer_dict(serializer.serializer),
            "compressionlib": serializer.compressionlib,
        }
    if isinstance(serializer, PickleSerializer):
        return {
            "type": "pickle",
            "picklelib": serializer.picklelib,
            "picklelib_version": serializer.picklelib_version,
        }
    if isinstance(serializer, JSONSerializer):
        return {**_PREFECT_JSON, **(serializer.model_extra or {}), "type": "json"}
    raise ConfigurationError(
        f"record_format='prefect' supports the pickle, json and compressed serializers, "
        f"not {serializer.type!r}; use record_format='moorage' for this serializer"
    )


def metadata_dict(meta: ResultRecordMetadata) -> dict[str, Any]:
    return {
        "storage_key": meta.storage_key,
        "expiration": format_expiration(meta.expiration),
        "serializer": serializer_dict(meta.serializer),
        "prefect_version": (meta.model_extra or {}).get("prefect_version", PREFECT_VERSION),
        "storage_block_id": None if meta.storage_block_id is None else str(meta.storage_block_id),
    }


def dumps_text(serializer: Serializer, obj: Any) -> bytes:
    """What Prefect's serializer of the same description would emit for ``obj``."""
    if isinstance(serializer, CompressedSerializer):
        compress, _ = compression_functions(serializer.compressionlib)
        return base64.encodebytes(compress(dumps_text(serializer.serializer, obj)))
    if isinstance(serializer, PickleSerializer):
        return base64.encodebytes(serializer.dumps(obj))
    if isinstance(serializer, JSONSerializer):
        return serializer.dumps(obj)
    serializer_dict(serializer)  # raises the explanatory error
    raise AssertionError("unreachable")


def _b64(text: BytesLike) -> bytes:
    try:
        return base64.b64decode(bytes(text), validate=False)
    except (binascii.Error, ValueError) as exc:
        raise SerializationError(f"payload is not the base64 text Prefect writes: {exc}") from exc


def loads_text(serializer: Serializer, text: BytesLike, limit: int | None = None) -> Any:
    """Decode a payload in Prefect's text form. Compressed text may decompress to at most
    ``limit`` bytes (default: the ``max_payload_bytes`` setting): Prefect records do not
    state their size."""
    if isinstance(serializer, CompressedSerializer):
        if limit is None:
            limit = get_settings().max_payload_bytes
        inner = decompress_bounded(
            serializer.compressionlib, _b64(text), limit, why="the max_payload_bytes setting"
        )
        return loads_text(serializer.serializer, inner, limit)
    if isinstance(serializer, PickleSerializer):
        return serializer.loads(_b64(text))
    return serializer.loads(text)


def encode_combined(meta: ResultRecordMetadata, obj: Any) -> bytes:
    """A combined Prefect record for ``obj``."""
    text = dumps_text(meta.serializer, obj)
    return orjson.dumps({"metadata": metadata_dict(meta), "result": text.decode("utf-8")})
