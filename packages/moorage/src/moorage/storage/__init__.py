"""The storage contract: what a backend implements (`Storage`), key rules, write
conditions, and storage in memory. `moorage.storage.objectstore` holds the base of fsspec
backends and `moorage.storage.upload` their chunked upload."""

from moorage.buffers import BytesLike
from moorage.storage.base import Storage
from moorage.storage.conditions import (
    ALWAYS,
    IF_ABSENT,
    PruneReport,
    WriteCondition,
    write_conflict,
)
from moorage.storage.entries import LIST_PAGE_SIZE, StorageEntry
from moorage.storage.keys import (
    MAX_KEY_BYTES,
    MAX_KEY_DEPTH,
    MAX_SEGMENT_BYTES,
    validate_key,
    validate_keys,
    validate_prefix,
)
from moorage.storage.memory import MemoryStorage

__all__ = [
    "ALWAYS",
    "IF_ABSENT",
    "LIST_PAGE_SIZE",
    "MAX_KEY_BYTES",
    "MAX_KEY_DEPTH",
    "MAX_SEGMENT_BYTES",
    "BytesLike",
    "MemoryStorage",
    "PruneReport",
    "Storage",
    "StorageEntry",
    "WriteCondition",
    "validate_key",
    "validate_keys",
    "validate_prefix",
    "write_conflict",
]
