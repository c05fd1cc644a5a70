"""Result records: a value's metadata and payload, as models.

`ResultRecordMetadata` (`moorage.records.metadata`) and expiry (`moorage.records.expiry`)
lie below the format layer, which turns metadata and payloads into bytes and back;
`ResultRecord` (`moorage.format.record`) lies above it, its Prefect-compatible
``serialize``/``deserialize`` being calls into it. So this face loads each on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moorage.format.record import ResultRecord
    from moorage.records.metadata import ResultRecordMetadata

__all__ = ["ResultRecord", "ResultRecordMetadata"]

_LAZY = {
    "ResultRecord": "moorage.format.record",
    "ResultRecordMetadata": "moorage.records.metadata",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'moorage.records' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
