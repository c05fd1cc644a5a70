"""Buffers: the one type of bytes moorage accepts wherever it reads or writes bytes."""

from __future__ import annotations

from typing import TypeAlias

__all__ = ["BytesLike"]

#: Bytes, or a buffer over bytes: what every payload, part and head may be.
BytesLike: TypeAlias = bytes | bytearray | memoryview
