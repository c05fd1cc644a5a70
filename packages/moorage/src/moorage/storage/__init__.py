"""The storage contract: what a backend implements, key rules, write conditions, and
storage in memory. `moorage.storage.objectstore` holds the base of fsspec backends."""

from moorage.storage.base import (
    ALWAYS,
    IF_ABSENT,
    MAX_KEY_BYTES,
    MAX_KEY_DEPTH,
    MAX_SEGMENT_BYTES,
    BytesLike,
    MemoryStorage,
    PruneReport,
    Storage,
    WriteCondition,
    validate_key,
    validate_prefix,
    write_conflict,
)

__all__ = [
    "ALWAYS",
    "IF_ABSENT",
    "MAX_KEY_BYTES",
    "MAX_KEY_DEPTH",
    "MAX_SEGMENT_BYTES",
    "BytesLike",
    "MemoryStorage",
    "PruneReport",
    "Storage",
    "WriteCondition",
    "validate_key",
    "validate_prefix",
    "write_conflict",
]
