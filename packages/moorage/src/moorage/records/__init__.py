"""Result records: what a record says about itself, as models.

`ResultRecordMetadata` (`moorage.records.metadata`) and expiry (`moorage.records.expiry`)
lie below the format layer, which turns metadata and payloads into bytes and back.
`ResultRecord`, a result with its metadata and Prefect's methods to turn it into bytes,
belongs to that layer (`moorage.format.record`); this face hands it on, loading each name
on first use so that importing either layer first works.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from moorage.faces import lazy_exports

if TYPE_CHECKING:
    from moorage.format.record import ResultRecord
    from moorage.records.metadata import ResultRecordMetadata

__all__ = ["ResultRecord", "ResultRecordMetadata"]

_LAZY = {
    "ResultRecord": "moorage.format.record",
    "ResultRecordMetadata": "moorage.records.metadata",
}

__getattr__ = lazy_exports(__name__, _LAZY)
